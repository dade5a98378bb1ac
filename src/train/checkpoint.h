// Checkpoints: named tensors plus training metadata in one self-checking file.
//
//   Checkpoint ck;
//   ck.model = "resnet18";
//   ck.step = 1200;
//   ck.optimizer = "adamw";
//   ck.meta = {{"lr", 1e-3}, {"batch", 64}};
//   ck.tensors.push_back(make_checkpoint_tensor("fc.weight", {10, 512}, weights));
//   save_checkpoint("run/step1200.ckpt", ck);          // atomic replace
//   Checkpoint back = load_checkpoint("run/step1200.ckpt");
//   std::vector<float> w = back.find("fc.weight")->to_f32();
//
// File format, version 1; every integer little-endian whatever the host:
//   offset 0   8 bytes   magic "DLMEMCK1"
//          8   u32       format version (1)
//         12   u64       header length H
//         20   H bytes   header: UTF-8 JSON, padded with spaces so the data starts at a
//                        multiple of 64 bytes
//     20 + H   D bytes   tensor data; each tensor starts at a multiple of 64 bytes
//                        from the start of this region, gaps are zero
//  20 + H + D  u32       CRC-32 (zlib's) of every byte before it
// The header is {"model", "step", "epoch", "optimizer", "meta", "data_bytes": D,
// "tensors": [{"name", "dtype", "shape", "offset", "bytes"}, ...]}, with offsets
// relative to the data region. Tensor elements are stored little-endian.
//
// load_checkpoint() trusts nothing in the file: it checks the magic, the version, every
// length against the file size, the checksum, the JSON and each tensor's dtype, shape,
// size and place, and reports any fault as a dlmem::Error naming the path. It never
// reads outside the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dlmem::train {

constexpr uint32_t kCheckpointVersion = 1;

// Bytes per element of a checkpoint dtype name: f64 f32 f16 bf16 i64 i32 i16 i8 u8
// bool. nullopt for any other name.
std::optional<size_t> checkpoint_dtype_size(std::string_view dtype);

struct CheckpointTensor {
  std::string name;
  std::string dtype;                // a name checkpoint_dtype_size() knows
  std::vector<int64_t> shape;       // {} is a scalar (one element)
  std::vector<std::byte> data;      // product(shape) * dtype size bytes, host order

  int64_t numel() const;
  // A copy of the elements; throws dlmem::Error when dtype is not the one asked for.
  std::vector<float> to_f32() const;
  std::vector<int32_t> to_i32() const;
  std::vector<int64_t> to_i64() const;
};

// Copies `values` (exactly product(shape) of them, else dlmem::Error).
CheckpointTensor make_checkpoint_tensor(std::string name, std::vector<int64_t> shape,
                                        std::span<const float> values);
CheckpointTensor make_checkpoint_tensor(std::string name, std::vector<int64_t> shape,
                                        std::span<const int32_t> values);
CheckpointTensor make_checkpoint_tensor(std::string name, std::vector<int64_t> shape,
                                        std::span<const int64_t> values);

struct Checkpoint {
  std::string model;
  int64_t step = 0;
  int64_t epoch = 0;
  std::string optimizer;
  nlohmann::json meta;  // anything JSON; null when unset
  std::vector<CheckpointTensor> tensors;

  // The tensor called `name`, or nullptr.
  const CheckpointTensor* find(std::string_view name) const;
};

// Writes `ck` to `path` with write_file_atomic(). Throws dlmem::Error for an unknown
// dtype, a data size that does not match the shape, a repeated tensor name, text that
// is not valid UTF-8, or an I/O failure.
void save_checkpoint(const std::string& path, const Checkpoint& ck);

// Reads and validates a checkpoint. Throws dlmem::Error naming the path on any fault.
Checkpoint load_checkpoint(const std::string& path);

// The same, in memory. `source` names the bytes in error messages (a path, "buffer").
std::vector<std::byte> encode_checkpoint(const Checkpoint& ck, const std::string& source);
Checkpoint decode_checkpoint(std::span<const std::byte> file, const std::string& source);

}  // namespace dlmem::train
