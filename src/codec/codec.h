// Activation codecs: encoders and decoders for f32 tensors, used by the compression
// planner (src/plan/compress) for stashed activations and for bytes swapped to host
// memory, and run by the executor. A codec knows the most bytes an encoding of n
// elements can take before it sees the data (bound), so a plan can reserve memory for
// it; the real size is what encode() returns.
//
//   const codec::Codec& c = codec::get("zvc");
//   std::vector<std::byte> buf(c.bound(n));
//   uint64_t size = c.encode(x, n, buf.data());       // <= c.bound(n)
//   c.decode(buf.data(), size, n, y);                  // y == x, bit for bit
//
// The codecs (MISSION.md, "Compression"):
//   bitmask    1 bit per element, x > 0 (Gist's binarisation, Jain et al. ISCA 2018,
//              Sec. 4.1): decodes to 1.0f where x > 0, else 0.0f. Keeps only the sign
//              pattern -- enough for a ReLU backward that tests y > 0, for nothing else.
//   sparse     blocks of 256 with narrow (u8) indices, a bit mask, or raw values, picked
//              per block by its non-zero count (Gist's sparse storage, Sec. 4.2); exact.
//   zvc        zero-value compression: a bit mask of non-zeros + the non-zero values
//              (cDMA, Rhu et al. HPCA 2018, Sec. IV-B); exact.
//   fp16, bf16, fp8-e4m3
//              reduced precision (Gist's delayed precision reduction, Sec. 4.3); lossy.
//   zstd, lz4  general-purpose byte compressors (level 1 / default) for host buffers; exact.
//
// "Exact" means bit-identical: -0.0, NaN payloads and infinities survive. Encoders
// never read past n elements and never write past bound(n) bytes; decoders never read
// past `size` bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dlmem::codec {

// What a decoded tensor keeps of the original.
enum class Preserves : uint8_t {
  exact,        // every bit
  sign,         // only whether each element is > 0 (decoded as 1.0f / 0.0f)
  approximate,  // values rounded to a narrower format (lossy)
};
std::string_view preserves_name(Preserves);

class Codec {
 public:
  virtual ~Codec() = default;
  virtual std::string_view name() const = 0;
  virtual Preserves preserves() const = 0;
  bool lossless() const { return preserves() == Preserves::exact; }
  // True when the encoded size depends on the data (otherwise encode() == bound()).
  virtual bool data_dependent() const = 0;
  // Most bytes an encoding of n elements takes; known before encoding.
  virtual uint64_t bound(uint64_t n) const = 0;
  // Encodes n floats into dst (bound(n) bytes available); returns the bytes written.
  virtual uint64_t encode(const float* src, uint64_t n, std::byte* dst) const = 0;
  // Decodes `size` bytes (as returned by encode) into n floats.
  virtual void decode(const std::byte* src, uint64_t size, uint64_t n, float* dst) const = 0;
};

// nullptr when unknown.
const Codec* find(std::string_view name);
// dlmem::Error for an unknown name, listing the known ones.
const Codec& get(std::string_view name);
// Every codec, in the order above.
const std::vector<const Codec*>& all();
// "bitmask, sparse, ..." for messages and help texts.
std::string names();

}  // namespace dlmem::codec
