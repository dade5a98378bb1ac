// The compressed model file, .dlmz: a zoo model's name and configuration and every
// weight, the pruned and weight-shared ones as Deep Compression stores them (Han, Mao
// and Dally, ICLR 2016): a small codebook, Huffman-coded relative indices and
// Huffman-coded codebook indices.
//
//   deploy::DlmzModel m{.model = "lenet5"};
//   m.tensors.push_back(deploy::DlmzTensor::shared_sparse("fc1.weight", {500, 800}, s));
//   m.tensors.push_back(deploy::DlmzTensor::dense("fc1.bias", {500}, bias));
//   deploy::save_dlmz("m.dlmz", m);                 // atomic replace
//   deploy::DlmzModel back = deploy::load_dlmz("m.dlmz");
//   back.tensors[0].values() == m.tensors[0].values()   // bit for bit
//
// File format, version 1; integers little-endian, varints are unsigned LEB128 (at
// most 10 bytes, no redundant trailing zero groups):
//   magic     8 bytes   "DLMZ\r\n\x1a\n" (PNG's trick: catches text-mode transfers)
//   version   u32       1
//   sections  each: kind u8, length u32, then `length` bytes of body
//     kind 1, model (exactly one, first):
//       name: varint n + n bytes (a zoo name, printable ASCII)
//       image_size varint, num_classes varint (ModelConfig overrides, 0 = default)
//       tensor count varint
//     kind 2, tensor (one per tensor, as many as the model section says):
//       name: varint n + n bytes (printable ASCII); rank u8 (<= 8); dims varint each
//       encoding u8:
//         0 dense: numel f32
//         1 shared sparse (SharedSparse below):
//             index_bits u8 (1..12); nnz varint (<= numel); k varint (codebook
//             entries, 1..4096, 0 iff nnz = 0); codebook k f32; and when nnz > 0:
//             index code: 2^index_bits nibble-packed lengths (deploy/huffman.h)
//             weight code: k nibble-packed lengths
//             index stream: bits varint + ceil(bits / 8) bytes
//             weight stream: bits varint + ceil(bits / 8) bytes
//       the body ends exactly where its last field does
//   crc32     u32       CRC-32 (zlib's) of every byte before it
//
// decode_dlmz() trusts nothing: it checks the magic, version, checksum, every length
// against the bytes present, names, ranks, element counts, codebooks (finite values),
// the Huffman codes (prefix codes), and decodes both streams in full (every relative
// index inside the tensor, every codebook index inside the codebook, both streams
// consumed exactly). Any fault is a dlmem::Error naming the source and the byte
// offset; nothing is read outside the buffer, and nothing is allocated beyond what
// the bytes present can describe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "deploy/weights.h"
#include "models/zoo.h"

namespace dlmem::deploy {

inline constexpr uint32_t kDlmzVersion = 1;
// Largest tensor a .dlmz may declare (elements): 2^36, 256 GiB of f32.
inline constexpr uint64_t kDlmzMaxElements = uint64_t{1} << 36;

// A pruned, weight-shared tensor: which elements survive and the codebook entry of each.
struct SharedSparse {
  uint64_t numel = 0;
  int index_bits = 5;                // relative-index width (deploy/sparse_index.h)
  std::vector<float> codebook;       // at most 4096 entries
  std::vector<uint64_t> positions;   // strictly ascending, < numel
  std::vector<uint32_t> codes;       // per position, < codebook.size()

  // Dense values: codebook[codes[i]] at positions[i], +0.0 elsewhere.
  std::vector<float> expand() const;
};

struct DlmzTensor {
  std::string name;
  std::vector<int64_t> shape;
  bool is_shared = false;
  std::vector<float> dense_values;   // !is_shared
  SharedSparse sparse;               // is_shared

  static DlmzTensor dense(std::string name, std::vector<int64_t> shape, std::vector<float> values);
  static DlmzTensor shared_sparse(std::string name, std::vector<int64_t> shape, SharedSparse s);
  uint64_t numel() const;
  std::vector<float> values() const;  // dense values either way
};

struct DlmzModel {
  std::string model;           // zoo name
  int64_t image_size = 0;      // models::ModelConfig overrides (0: the model's default)
  int64_t num_classes = 0;
  std::vector<DlmzTensor> tensors;

  const DlmzTensor* find(const std::string& name) const;
};

// What each tensor takes in the file (for reports).
struct DlmzTensorStats {
  std::string name;
  uint64_t bytes = 0;          // its whole section
  uint64_t index_bits = 0;     // shared: Huffman-coded relative indices, fillers included
  uint64_t weight_bits = 0;    // shared: Huffman-coded codebook indices
  uint64_t table_bytes = 0;    // shared: codebook + both code tables
  uint64_t fillers = 0;        // shared: filler entries
};

// DLMEM_CHECK on an inconsistent model (these come from dlmem's own pipeline).
std::vector<std::byte> encode_dlmz(const DlmzModel&, std::vector<DlmzTensorStats>* stats = nullptr);
// `source` names the bytes in error messages (a path, "buffer").
DlmzModel decode_dlmz(std::span<const std::byte> file, const std::string& source);

// write_file_atomic / read_file + the above; the file's size is returned by save.
uint64_t save_dlmz(const std::string& path, const DlmzModel&, std::vector<DlmzTensorStats>* stats = nullptr);
DlmzModel load_dlmz(const std::string& path);

// A .dlmz's model configuration (image size, classes; batch and mode from the caller).
models::ModelConfig dlmz_config(const DlmzModel& m, int64_t batch);

// The dense weights of a .dlmz for the zoo model it names, after checking them against
// that model: every weight present with its shape, no tensor the model lacks. Nothing
// is expanded before every shape has matched. dlmem::Error naming `source` otherwise
// (an unknown model included).
WeightMap dlmz_weights(const DlmzModel& m, const std::string& source);

}  // namespace dlmem::deploy
