// bitmask: one bit per element, set where x > 0 -- Gist's binarisation (Jain et al.,
// "Gist: Efficient Data Encoding for Deep Neural Network Training", ISCA 2018, Sec. 4.1).
// Format: ceil(n/8) bytes; element i is bit (i % 8) of byte i / 8. NaN and -0.0 are
// not > 0 and decode to 0.0f, as a ReLU backward that tests y > 0 treats them.
#include <cstring>

#include "codec/detail.h"
#include "util/error.h"

namespace dlmem::codec::detail {

namespace {

void encode_portable(const float* src, uint64_t n, uint8_t* dst) {
  const uint64_t full = n / 8;
  for (uint64_t b = 0; b < full; ++b) {
    const float* x = src + 8 * b;
    unsigned bits = 0;
    for (unsigned j = 0; j < 8; ++j) bits |= static_cast<unsigned>(x[j] > 0.0f) << j;
    dst[b] = static_cast<uint8_t>(bits);
  }
  if (n % 8) {
    unsigned bits = 0;
    for (uint64_t i = 8 * full; i < n; ++i) bits |= static_cast<unsigned>(src[i] > 0.0f) << (i % 8);
    dst[full] = static_cast<uint8_t>(bits);
  }
}

void decode_portable(const uint8_t* src, uint64_t n, float* dst) {
  for (uint64_t i = 0; i < n; ++i) dst[i] = static_cast<float>((src[i >> 3] >> (i & 7)) & 1u);
}

#if DLMEM_CODEC_X86
DLMEM_AVX2 void encode_avx2(const float* src, uint64_t n, uint8_t* dst) {
  const __m256 zero = _mm256_setzero_ps();
  uint64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const uint32_t m0 = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(src + i), zero, _CMP_GT_OQ)));
    const uint32_t m1 = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(src + i + 8), zero, _CMP_GT_OQ)));
    const uint32_t m2 = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(src + i + 16), zero, _CMP_GT_OQ)));
    const uint32_t m3 = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(src + i + 24), zero, _CMP_GT_OQ)));
    const uint32_t m = m0 | (m1 << 8) | (m2 << 16) | (m3 << 24);
    std::memcpy(dst + i / 8, &m, 4);  // little-endian: byte k holds elements 8k..8k+7
  }
  encode_portable(src + i, n - i, dst + i / 8);
}

DLMEM_AVX2 void decode_avx2(const uint8_t* src, uint64_t n, float* dst) {
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 one = _mm256_set1_ps(1.0f);
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i b = _mm256_and_si256(_mm256_set1_epi32(src[i / 8]), bits);
    const __m256 m = _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, bits));
    _mm256_storeu_ps(dst + i, _mm256_and_ps(m, one));
  }
  for (; i < n; ++i) dst[i] = static_cast<float>((src[i >> 3] >> (i & 7)) & 1u);
}
#endif

class Bitmask final : public Codec {
 public:
  std::string_view name() const override { return "bitmask"; }
  Preserves preserves() const override { return Preserves::sign; }
  bool data_dependent() const override { return false; }
  uint64_t bound(uint64_t n) const override { return (n + 7) / 8; }

  uint64_t encode(const float* src, uint64_t n, std::byte* dst) const override {
    auto* out = reinterpret_cast<uint8_t*>(dst);
#if DLMEM_CODEC_X86
    if (use_avx2()) {
      encode_avx2(src, n, out);
      return bound(n);
    }
#endif
    encode_portable(src, n, out);
    return bound(n);
  }

  void decode(const std::byte* src, uint64_t size, uint64_t n, float* dst) const override {
    DLMEM_CHECK(size == bound(n), "bitmask of ", n, " elements has ", size, " bytes, expected ", bound(n));
    const auto* in = reinterpret_cast<const uint8_t*>(src);
#if DLMEM_CODEC_X86
    if (use_avx2()) return decode_avx2(in, n, dst);
#endif
    decode_portable(in, n, dst);
  }
};

}  // namespace

std::unique_ptr<Codec> make_bitmask() { return std::make_unique<Bitmask>(); }

}  // namespace dlmem::codec::detail
