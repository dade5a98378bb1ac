// zvc: zero-value compression -- a bit mask of the non-zero elements followed by the
// non-zero values in order (cDMA: Rhu et al., "Compressing DMA Engine: Leveraging
// Activation Sparsity for Training Deep Neural Networks", HPCA 2018, Sec. IV-B; cDMA
// works on 32-element windows in hardware, dlmem on 64-element words).
// Format: ceil(n/64) little-endian u64 mask words (bit i%64 of word i/64 is set when
// element i's bits are not all zero), then the non-zero f32 values. "Zero" is +0.0
// only: -0.0 and NaN are stored as values, so decoding is bit-exact.
#include <cstring>

#include "codec/detail.h"
#include "codec/lanes.h"
#include "util/error.h"

namespace dlmem::codec::detail {

namespace {

uint64_t mask_bytes(uint64_t n) { return (n + 63) / 64 * 8; }

// Elements [i, end) of one word: mask bits and compacted values; returns the new count.
uint64_t encode_word_portable(const float* src, uint64_t i, uint64_t end, float* vals, uint64_t k, uint64_t* word) {
  uint64_t w = 0;
  for (uint64_t j = i; j < end; ++j) {
    uint32_t bits;
    std::memcpy(&bits, src + j, 4);
    const uint64_t nz = bits != 0;
    vals[k] = src[j];  // written always, kept only when non-zero (k stays below j + 1)
    k += nz;
    w |= nz << (j - i);
  }
  *word = w;
  return k;
}

uint64_t encode_portable(const float* src, uint64_t n, std::byte* dst) {
  float* vals = reinterpret_cast<float*>(dst + mask_bytes(n));
  uint64_t k = 0;
  for (uint64_t i = 0; i < n; i += 64) {
    uint64_t w;
    k = encode_word_portable(src, i, std::min(n, i + 64), vals, k, &w);
    std::memcpy(dst + i / 8, &w, 8);
  }
  return mask_bytes(n) + 4 * k;
}

// Scatters the values of one mask word over dst[0, len) (zeros elsewhere).
uint64_t decode_word_portable(uint64_t w, const float* vals, uint64_t k, float* dst, uint64_t len) {
  std::memset(dst, 0, len * 4);
  while (w) {
    dst[__builtin_ctzll(w)] = vals[k++];
    w &= w - 1;
  }
  return k;
}

void decode_portable(const std::byte* src, uint64_t nnz, uint64_t n, float* dst) {
  const float* vals = reinterpret_cast<const float*>(src + mask_bytes(n));
  uint64_t k = 0;
  for (uint64_t i = 0; i < n; i += 64) {
    uint64_t w;
    std::memcpy(&w, src + i / 8, 8);
    DLMEM_CHECK(k + static_cast<uint64_t>(__builtin_popcountll(w)) <= nnz, "zvc data holds fewer values than its mask");
    k = decode_word_portable(w, vals, k, dst + i, std::min<uint64_t>(64, n - i));
  }
  DLMEM_CHECK(k == nnz, "zvc data holds ", nnz, " values but its mask ", k);
}

#if DLMEM_CODEC_X86
DLMEM_AVX2 uint64_t encode_avx2(const float* src, uint64_t n, std::byte* dst) {
  float* vals = reinterpret_cast<float*>(dst + mask_bytes(n));
  const __m256i zero = _mm256_setzero_si256();
  uint64_t k = 0, i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t w = 0;
    for (unsigned g = 0; g < 8; ++g) {
      const __m256 v = _mm256_loadu_ps(src + i + 8 * g);
      const unsigned zero_lanes =
          static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_castps_si256(v), zero))));
      const unsigned m = ~zero_lanes & 0xFFu;
      // Stores 8 lanes; those past the count are overwritten next (bound() has room:
      // k + 8 <= i + 8g + 8 <= n).
      _mm256_storeu_ps(vals + k, _mm256_permutevar8x32_ps(v, lanes::compress(m)));
      k += static_cast<uint64_t>(_mm_popcnt_u32(m));
      w |= static_cast<uint64_t>(m) << (8 * g);
    }
    std::memcpy(dst + i / 8, &w, 8);
  }
  if (i < n) {
    uint64_t w;
    k = encode_word_portable(src, i, n, vals, k, &w);
    std::memcpy(dst + i / 8, &w, 8);
  }
  return mask_bytes(n) + 4 * k;
}

DLMEM_AVX2 void decode_avx2(const std::byte* src, uint64_t nnz, uint64_t n, float* dst) {
  const float* vals = reinterpret_cast<const float*>(src + mask_bytes(n));
  uint64_t k = 0, i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t w;
    std::memcpy(&w, src + i / 8, 8);
    const uint64_t count = static_cast<uint64_t>(_mm_popcnt_u64(w));
    DLMEM_CHECK(k + count <= nnz, "zvc data holds fewer values than its mask");
    if (k + 64 <= nnz) {  // every 8-lane load below stays inside the values
      for (unsigned g = 0; g < 8; ++g) {
        const unsigned m = static_cast<unsigned>(w >> (8 * g)) & 0xFFu;
        _mm256_storeu_ps(dst + i + 8 * g, lanes::expand(vals + k, m));
        k += static_cast<uint64_t>(_mm_popcnt_u32(m));
      }
    } else {
      k = decode_word_portable(w, vals, k, dst + i, 64);
    }
  }
  if (i < n) {
    uint64_t w;
    std::memcpy(&w, src + i / 8, 8);
    DLMEM_CHECK(k + static_cast<uint64_t>(__builtin_popcountll(w)) <= nnz, "zvc data holds fewer values than its mask");
    k = decode_word_portable(w, vals, k, dst + i, n - i);
  }
  DLMEM_CHECK(k == nnz, "zvc data holds ", nnz, " values but its mask ", k);
}
#endif

class Zvc final : public Codec {
 public:
  std::string_view name() const override { return "zvc"; }
  Preserves preserves() const override { return Preserves::exact; }
  bool data_dependent() const override { return true; }
  uint64_t bound(uint64_t n) const override { return mask_bytes(n) + 4 * n; }

  uint64_t encode(const float* src, uint64_t n, std::byte* dst) const override {
#if DLMEM_CODEC_X86
    if (use_avx2()) return encode_avx2(src, n, dst);
#endif
    return encode_portable(src, n, dst);
  }

  void decode(const std::byte* src, uint64_t size, uint64_t n, float* dst) const override {
    DLMEM_CHECK(size >= mask_bytes(n) && (size - mask_bytes(n)) % 4 == 0 && size <= bound(n), "zvc data of ", size,
                " bytes cannot hold ", n, " elements");
    const uint64_t nnz = (size - mask_bytes(n)) / 4;
#if DLMEM_CODEC_X86
    if (use_avx2()) return decode_avx2(src, nnz, n, dst);
#endif
    decode_portable(src, nnz, n, dst);
  }
};

}  // namespace

std::unique_ptr<Codec> make_zvc() { return std::make_unique<Zvc>(); }

}  // namespace dlmem::codec::detail
