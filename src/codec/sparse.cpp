// sparse: block-adaptive sparse storage. Gist stores ReLU outputs that feed
// convolutions as a sparse matrix with narrow indices and decodes them before the
// (dense) backward convolution ("Sparse Storage and Dense Compute", Jain et al. ISCA
// 2018, Sec. 4.2). Density varies across a feature map, so dlmem picks the
// representation per block of 256 elements from its non-zero count c (length L):
//   indices  c u8 positions, then c f32 values        5c bytes       (c < L/8)
//   mask     ceil(L/8) bytes of bit mask, then values  L/8 + 4c bytes (zvc's layout)
//   raw      the L values                              4L bytes       (c >= 248 of 256)
// whichever is smallest (ties: raw, then mask). A block never grows, so the encoding
// is at most 4n + 2 bytes per block: the bound, known before encoding, is the raw size
// plus 0.2% (plus 32 bytes of room for vector stores).
// Format: u16 counts of all blocks (little-endian), then each block's payload in order.
// "Zero" is +0.0 only (bit pattern 0): -0.0 and NaN are values, decoding is bit-exact.
#include <cstring>

#include "codec/detail.h"
#include "codec/lanes.h"
#include "util/error.h"

namespace dlmem::codec::detail {

namespace {

constexpr uint64_t kBlock = 256;
constexpr uint64_t kSlack = 32;

enum class Mode { indices, mask, raw };

Mode mode_of(uint64_t c, uint64_t len) {
  const uint64_t raw = 4 * len, mask = (len + 7) / 8 + 4 * c, idx = 5 * c;
  if (raw <= mask && raw <= idx) return Mode::raw;
  return mask <= idx ? Mode::mask : Mode::indices;
}

uint64_t payload_bytes(uint64_t c, uint64_t len) {
  switch (mode_of(c, len)) {
    case Mode::raw: return 4 * len;
    case Mode::mask: return (len + 7) / 8 + 4 * c;
    case Mode::indices: return 5 * c;
  }
  return 0;
}

// Non-zero mask of one block (len <= 256) as 4 words; returns the count.
uint64_t block_mask_portable(const float* x, uint64_t len, uint64_t* words) {
  uint64_t c = 0;
  for (uint64_t q = 0; q < 4; ++q) {
    uint64_t w = 0;
    for (uint64_t j = 64 * q; j < std::min(len, 64 * q + 64); ++j) {
      uint32_t bits;
      std::memcpy(&bits, x + j, 4);
      w |= static_cast<uint64_t>(bits != 0) << (j - 64 * q);
    }
    words[q] = w;
    c += static_cast<uint64_t>(__builtin_popcountll(w));
  }
  return c;
}

// Writes the selected values in order; portable.
void pack_portable(const float* x, const uint64_t* words, std::byte* vals) {
  uint64_t k = 0;
  for (uint64_t q = 0; q < 4; ++q)
    for (uint64_t w = words[q]; w; w &= w - 1, ++k)
      std::memcpy(vals + 4 * k, x + 64 * q + static_cast<uint64_t>(__builtin_ctzll(w)), 4);
}

#if DLMEM_CODEC_X86
// A full block in one pass: packs the non-zeros in the mask layout (at p + 32) while it
// builds the mask; returns the count. The caller rewrites the block for the other modes.
// Stores reach up to 32 bytes past a 1024-byte payload (kSlack has room).
DLMEM_AVX2 uint64_t pack_block_avx2(const float* x, std::byte* p, uint64_t* words) {
  float* out = reinterpret_cast<float*>(p + kBlock / 8);
  const __m256i zero = _mm256_setzero_si256();
  uint64_t k = 0;
  for (uint64_t q = 0; q < 4; ++q) {
    uint64_t w = 0;
    for (unsigned g = 0; g < 8; ++g) {
      const __m256 v = _mm256_loadu_ps(x + 64 * q + 8 * g);
      const unsigned z =
          static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_castps_si256(v), zero))));
      const unsigned m = ~z & 0xFFu;
      _mm256_storeu_ps(out + k, _mm256_permutevar8x32_ps(v, lanes::compress(m)));
      k += static_cast<uint64_t>(_mm_popcnt_u32(m));
      w |= static_cast<uint64_t>(m) << (8 * g);
    }
    words[q] = w;
  }
  return k;
}

// `avail`: floats readable from `vals` on (this block's and those after it, up to the
// end of the encoding), so 8-lane loads may run past this block's values.
DLMEM_AVX2 void unpack_mask_avx2(const uint8_t* mask, const std::byte* vals, uint64_t avail, uint64_t len, float* dst) {
  const float* v = reinterpret_cast<const float*>(vals);
  uint64_t k = 0, i = 0;
  for (; i + 8 <= len && k + 8 <= avail; i += 8) {
    const unsigned m = mask[i / 8];
    _mm256_storeu_ps(dst + i, lanes::expand(v + k, m));
    k += static_cast<uint64_t>(_mm_popcnt_u32(m));
  }
  for (; i < len; ++i) {
    const bool set = (mask[i / 8] >> (i % 8)) & 1u;
    if (set) std::memcpy(dst + i, vals + 4 * k++, 4);
    else dst[i] = 0.0f;
  }
}
#endif

void unpack_mask_portable(const uint8_t* mask, const std::byte* vals, uint64_t len, float* dst) {
  std::memset(dst, 0, 4 * len);
  uint64_t k = 0;
  for (uint64_t i = 0; i < len; i += 8)
    for (unsigned m = mask[i / 8]; m; m &= m - 1, ++k) std::memcpy(dst + i + static_cast<uint64_t>(__builtin_ctz(m)), vals + 4 * k, 4);
}

class Sparse final : public Codec {
 public:
  std::string_view name() const override { return "sparse"; }
  Preserves preserves() const override { return Preserves::exact; }
  bool data_dependent() const override { return true; }
  uint64_t bound(uint64_t n) const override { return 2 * blocks(n) + 4 * n + kSlack; }

  uint64_t encode(const float* src, uint64_t n, std::byte* dst) const override {
    const uint64_t nb = blocks(n);
    std::byte* p = dst + 2 * nb;
#if DLMEM_CODEC_X86
    const bool simd = use_avx2();
#endif
    for (uint64_t b = 0; b < nb; ++b) {
      const float* x = src + b * kBlock;
      const uint64_t len = std::min(kBlock, n - b * kBlock);
      uint64_t words[4];
#if DLMEM_CODEC_X86
      if (simd && len == kBlock) {
        const uint64_t c = pack_block_avx2(x, p, words);
        const uint16_t c16 = static_cast<uint16_t>(c);
        std::memcpy(dst + 2 * b, &c16, 2);
        switch (mode_of(c, len)) {
          case Mode::mask: std::memcpy(p, words, kBlock / 8); break;
          case Mode::raw: std::memcpy(p, x, 4 * len); break;
          case Mode::indices: {
            std::memmove(p + c, p + kBlock / 8, 4 * c);  // values after c indices
            uint64_t k = 0;
            for (uint64_t q = 0; q < 4; ++q)
              for (uint64_t w = words[q]; w; w &= w - 1) p[k++] = static_cast<std::byte>(64 * q + static_cast<uint64_t>(__builtin_ctzll(w)));
            break;
          }
        }
        p += payload_bytes(c, len);
        continue;
      }
#endif
      const uint64_t c = block_mask_portable(x, len, words);
      const uint16_t c16 = static_cast<uint16_t>(c);
      std::memcpy(dst + 2 * b, &c16, 2);
      switch (mode_of(c, len)) {
        case Mode::raw: std::memcpy(p, x, 4 * len); break;
        case Mode::mask: {
          const uint64_t mb = (len + 7) / 8;
          std::memcpy(p, words, mb);  // little-endian words: byte j holds elements 8j..8j+7
          pack_portable(x, words, p + mb);
          break;
        }
        case Mode::indices: {
          uint64_t k = 0;
          for (uint64_t q = 0; q < 4; ++q)
            for (uint64_t w = words[q]; w; w &= w - 1, ++k) {
              const uint64_t j = 64 * q + static_cast<uint64_t>(__builtin_ctzll(w));
              p[k] = static_cast<std::byte>(j);
              std::memcpy(p + c + 4 * k, x + j, 4);
            }
          break;
        }
      }
      p += payload_bytes(c, len);
    }
    return static_cast<uint64_t>(p - dst);
  }

  void decode(const std::byte* src, uint64_t size, uint64_t n, float* dst) const override {
    const uint64_t nb = blocks(n);
    DLMEM_CHECK(size >= 2 * nb, "sparse data of ", size, " bytes cannot hold ", n, " elements");
    const std::byte* p = src + 2 * nb;
    const std::byte* end = src + size;
#if DLMEM_CODEC_X86
    const bool simd = use_avx2();
#endif
    for (uint64_t b = 0; b < nb; ++b) {
      float* y = dst + b * kBlock;
      const uint64_t len = std::min(kBlock, n - b * kBlock);
      uint16_t c16;
      std::memcpy(&c16, src + 2 * b, 2);
      const uint64_t c = c16;
      DLMEM_CHECK(c <= len && static_cast<uint64_t>(end - p) >= payload_bytes(c, len), "sparse block ", b,
                  " is truncated or corrupt");
      switch (mode_of(c, len)) {
        case Mode::raw: std::memcpy(y, p, 4 * len); break;
        case Mode::mask: {
          const auto* mask = reinterpret_cast<const uint8_t*>(p);
          const uint64_t mb = (len + 7) / 8;
#if DLMEM_CODEC_X86
          if (simd) {
            unpack_mask_avx2(mask, p + mb, static_cast<uint64_t>(end - (p + mb)) / 4, len, y);
            break;
          }
#endif
          unpack_mask_portable(mask, p + mb, len, y);
          break;
        }
        case Mode::indices:
          std::memset(y, 0, 4 * len);
          for (uint64_t k = 0; k < c; ++k) {
            const uint64_t j = static_cast<uint64_t>(p[k]);
            DLMEM_CHECK(j < len, "sparse block ", b, " names element ", j, " of ", len);
            std::memcpy(y + j, p + c + 4 * k, 4);
          }
          break;
      }
      p += payload_bytes(c, len);
    }
    DLMEM_CHECK(p == end, "sparse data has ", end - p, " bytes left over after ", n, " elements");
  }

 private:
  static uint64_t blocks(uint64_t n) { return (n + kBlock - 1) / kBlock; }
};

}  // namespace

std::unique_ptr<Codec> make_sparse() { return std::make_unique<Sparse>(); }

}  // namespace dlmem::codec::detail
