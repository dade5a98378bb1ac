// Reduced precision for stashed activations: fp16, bf16 and fp8-e4m3 -- Gist's delayed
// precision reduction (Jain et al., ISCA 2018, Sec. 4.3): the forward pass computes in
// f32 and only the copy kept for the backward pass is narrowed. Lossy: opt-in only.
//   fp16      IEEE binary16, round to nearest even; overflow -> Inf; NaN stays NaN.
//   bf16      the upper half of an f32, round to nearest even; NaN stays NaN.
//   fp8-e4m3  OCP FP8 E4M3 ("e4m3fn": bias 7, no infinities, max 448), round to nearest
//             even, saturating: |x| >= 448 -> 448 (as NVIDIA's satfinite); NaN and
//             +-Inf -> NaN (the format has no Inf).
// Signs are kept (also of zeros). The portable and AVX2 (F16C) paths give the same bytes.
#include <bit>
#include <limits>
#include <cstring>

#include "codec/detail.h"
#include "util/error.h"

namespace dlmem::codec::detail {

namespace {

// ------------------------------------------------------------------ fp16
// After F. Giesen's float_to_half_fast3_rtne / half_to_float (public domain).
inline uint16_t f32_to_f16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint16_t o;
  if (u >= (127u + 16u) << 23) {  // >= 65536, Inf or NaN
    o = u > 0x7F800000u ? static_cast<uint16_t>(0x7E00u | ((u >> 13) & 0x3FFu)) : uint16_t{0x7C00};
  } else if (u < 113u << 23) {  // below 2^-14: subnormal half or zero
    const float magic = std::bit_cast<float>(((127u - 15u) + (23u - 10u) + 1u) << 23);
    o = static_cast<uint16_t>(std::bit_cast<uint32_t>(std::bit_cast<float>(u) + magic) - std::bit_cast<uint32_t>(magic));
  } else {
    const uint32_t odd = (u >> 13) & 1u;
    u += ((15u - 127u) << 23) + 0xFFFu + odd;
    o = static_cast<uint16_t>(u >> 13);  // a carry into exponent 31 gives Inf
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t shifted_exp = 0x7C00u << 13;
  uint32_t o = (h & 0x7FFFu) << 13;
  const uint32_t exp = shifted_exp & o;
  o += (127u - 15u) << 23;
  if (exp == shifted_exp) {
    o += (128u - 16u) << 23;  // Inf / NaN
  } else if (exp == 0) {      // zero / subnormal: renormalise
    o += 1u << 23;
    o = std::bit_cast<uint32_t>(std::bit_cast<float>(o) - std::bit_cast<float>(113u << 23));
  }
  return std::bit_cast<float>(o | (static_cast<uint32_t>(h & 0x8000u) << 16));
}

// ------------------------------------------------------------------ bf16
[[gnu::always_inline]] inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;  // quiet, keeps the sign and the top payload
  return static_cast<uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

[[gnu::always_inline]] inline void bf16_encode_loop(const float* src, uint64_t n, uint16_t* dst) {
  for (uint64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}
[[gnu::always_inline]] inline void bf16_decode_loop(const uint16_t* src, uint64_t n, float* dst) {
  for (uint64_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(static_cast<uint32_t>(src[i]) << 16);
}

// ------------------------------------------------------------------ fp8-e4m3
[[gnu::always_inline]] inline uint8_t f32_to_e4m3(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t ax = u & 0x7FFFFFFFu;
  const float a = std::bit_cast<float>(ax);
  // Normal results (|x| >= 2^-6): round the mantissa to 3 bits, rebias 127 -> 7.
  const uint32_t r = ax + 0x7FFFFu + ((ax >> 20) & 1u);
  const uint32_t normal = (((r >> 23) - 120u) << 3) | ((r >> 20) & 7u);
  // Subnormal results: round(|x| * 2^9) to an integer 0..8 (8 is the smallest normal).
  const uint32_t sub = std::bit_cast<uint32_t>(a * 512.0f + 8388608.0f) - 0x4B000000u;
  uint32_t code = ax < 0x3C800000u ? sub : normal;  // 2^-6
  code = ax >= 0x43E00000u ? 0x7Eu : code;          // >= 448: saturate
  code = ax >= 0x7F800000u ? 0x7Fu : code;          // Inf, NaN
  return static_cast<uint8_t>(sign | code);
}

struct E4m3Table {
  float v[256];
};
constexpr E4m3Table make_e4m3_table() {
  E4m3Table t{};
  for (uint32_t c = 0; c < 256; ++c) {
    const uint32_t s = (c & 0x80u) << 24, e = (c >> 3) & 15u, m = c & 7u;
    float mag;
    if (e == 15 && m == 7) mag = std::bit_cast<float>(0x7FC00000u);
    else if (e == 0) mag = static_cast<float>(m) * (1.0f / 512.0f);
    else mag = std::bit_cast<float>(((e + 120u) << 23) | (m << 20));
    t.v[c] = std::bit_cast<float>(std::bit_cast<uint32_t>(mag) | s);
  }
  return t;
}
constexpr E4m3Table kE4m3 = make_e4m3_table();

[[gnu::always_inline]] inline void e4m3_encode_loop(const float* src, uint64_t n, uint8_t* dst) {
  for (uint64_t i = 0; i < n; ++i) dst[i] = f32_to_e4m3(src[i]);
}

#if DLMEM_CODEC_X86
DLMEM_AVX2 void fp16_encode_avx2(const float* src, uint64_t n, uint16_t* dst) {
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}
DLMEM_AVX2 void fp16_decode_avx2(const uint16_t* src, uint64_t n, float* dst) {
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}
// 8 lanes of f32_to_bf16 (as u32 in 0..0xFFFF).
DLMEM_AVX2 inline __m256i bf16_lanes(const float* src) {
  const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)), 16);
  const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i is_nan =
      _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)), _mm256_set1_epi32(0x7F800000));
  return _mm256_blendv_epi8(rounded, nan, is_nan);
}
DLMEM_AVX2 void bf16_encode_avx2(const float* src, uint64_t n, uint16_t* dst) {
  uint64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // packus works per 128-bit lane: [a0-3 b0-3 | a4-7 b4-7] -> reorder the 64-bit quarters.
    const __m256i q = _mm256_packus_epi32(bf16_lanes(src + i), bf16_lanes(src + i + 8));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_permute4x64_epi64(q, 0xD8));
  }
  bf16_encode_loop(src + i, n - i, dst + i);
}
DLMEM_AVX2 void bf16_decode_avx2(const uint16_t* src, uint64_t n, float* dst) { bf16_decode_loop(src, n, dst); }

// 8 lanes of f32_to_e4m3's magnitude code (as u32 in 0..127; the sign is added after
// packing), the same rounding in fewer steps: (r >> 20) is the rounded biased exponent
// and 3 mantissa bits at once, so rebiasing folds into the rounding constant;
// saturation is a float minimum; the subnormal scaling is one exact FMA; the range
// tests are float comparisons. Codec.Fp8VectorEncoderMatchesScalarAtEveryRoundingEdge
// holds it to the scalar encoder bit for bit.
DLMEM_AVX2 inline __m256i e4m3_magnitude_lanes(__m256i u) {
  const __m256 absf = _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)));
  // Saturation first, in the float domain: min(x, 448) is 448 for anything larger, Inf
  // and (second operand) NaN, so those code 0x7E; Inf and NaN get one more at the end.
  const __m256 axf = _mm256_min_ps(absf, _mm256_set1_ps(448.0f));
  const __m256i ax = _mm256_castps_si256(axf);
  // ((ax + 0x7FFFF + lsb) >> 20) - (120 << 3), the rebias folded into the rounding
  // constant: lanes below 2^-6 wrap, and take the subnormal code below.
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(ax, 20), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(_mm256_add_epi32(ax, _mm256_set1_epi32(0x7FFFF - (120 << 23))), lsb);
  const __m256i normal = _mm256_srli_epi32(r, 20);
  const __m256 scaled = _mm256_fmadd_ps(axf, _mm256_set1_ps(512.0f), _mm256_set1_ps(8388608.0f));
  const __m256i sub = _mm256_sub_epi32(_mm256_castps_si256(scaled), _mm256_set1_epi32(0x4B000000));
  // The range tests are float comparisons (they run beside the integer work): below
  // 2^-6, and Inf or NaN (not less than Inf, unordered included).
  const __m256 tiny = _mm256_cmp_ps(axf, _mm256_set1_ps(0x1p-6f), _CMP_LT_OQ);
  const __m256 special = _mm256_cmp_ps(absf, _mm256_set1_ps(std::numeric_limits<float>::infinity()), _CMP_NLT_UQ);
  const __m256i code = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(normal), _mm256_castsi256_ps(sub), tiny));
  return _mm256_sub_epi32(code, _mm256_castps_si256(special));  // all-ones lanes are -1
}
DLMEM_AVX2 void e4m3_encode_avx2(const float* src, uint64_t n, uint8_t* dst) {
  uint64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i u[4];
    for (int k = 0; k < 4; ++k) u[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 8 * k));
    const __m256i ab = _mm256_packus_epi32(e4m3_magnitude_lanes(u[0]), e4m3_magnitude_lanes(u[1]));
    const __m256i cd = _mm256_packus_epi32(e4m3_magnitude_lanes(u[2]), e4m3_magnitude_lanes(u[3]));
    // The signs, packed the same way: (u >> 24) arithmetic is negative exactly when the
    // sign is set, and signed saturation keeps it so.
    const __m256i sab = _mm256_packs_epi32(_mm256_srai_epi32(u[0], 24), _mm256_srai_epi32(u[1], 24));
    const __m256i scd = _mm256_packs_epi32(_mm256_srai_epi32(u[2], 24), _mm256_srai_epi32(u[3], 24));
    const __m256i sign = _mm256_and_si256(_mm256_packs_epi16(sab, scd), _mm256_set1_epi8(static_cast<char>(0x80)));
    // Dwords now hold [a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7]: put them in order.
    const __m256i q = _mm256_or_si256(_mm256_packus_epi16(ab, cd), sign);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  e4m3_encode_loop(src + i, n - i, dst + i);
}
DLMEM_AVX2 void e4m3_decode_avx2(const uint8_t* src, uint64_t n, float* dst) {
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i)));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x80)), 24);
    const __m256i m7 = _mm256_and_si256(c, _mm256_set1_epi32(0x7F));
    const __m256i normal = _mm256_add_epi32(_mm256_slli_epi32(m7, 20), _mm256_set1_epi32(120 << 23));
    const __m256i sub = _mm256_castps_si256(
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(c, _mm256_set1_epi32(7))), _mm256_set1_ps(1.0f / 512.0f)));
    __m256i mag = _mm256_blendv_epi8(normal, sub, _mm256_cmpgt_epi32(_mm256_set1_epi32(8), m7));
    mag = _mm256_blendv_epi8(mag, _mm256_set1_epi32(0x7FC00000), _mm256_cmpeq_epi32(m7, _mm256_set1_epi32(0x7F)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_or_si256(mag, sign));
  }
  for (; i < n; ++i) dst[i] = kE4m3.v[src[i]];
}
#endif

// One class for the three formats: element width and the four loops.
class Precision final : public Codec {
 public:
  enum class Format { fp16, bf16, e4m3 };
  explicit Precision(Format f) : f_(f) {}

  std::string_view name() const override {
    switch (f_) {
      case Format::fp16: return "fp16";
      case Format::bf16: return "bf16";
      case Format::e4m3: return "fp8-e4m3";
    }
    return "";
  }
  Preserves preserves() const override { return Preserves::approximate; }
  bool data_dependent() const override { return false; }
  uint64_t bound(uint64_t n) const override { return f_ == Format::e4m3 ? n : 2 * n; }

  uint64_t encode(const float* src, uint64_t n, std::byte* dst) const override {
#if DLMEM_CODEC_X86
    const bool simd = use_avx2();
#else
    const bool simd = false;
#endif
    auto* d16 = reinterpret_cast<uint16_t*>(dst);
    auto* d8 = reinterpret_cast<uint8_t*>(dst);
    switch (f_) {
      case Format::fp16:
#if DLMEM_CODEC_X86
        if (simd) return fp16_encode_avx2(src, n, d16), bound(n);
#endif
        for (uint64_t i = 0; i < n; ++i) d16[i] = f32_to_f16(src[i]);
        break;
      case Format::bf16:
#if DLMEM_CODEC_X86
        if (simd) return bf16_encode_avx2(src, n, d16), bound(n);
#endif
        bf16_encode_loop(src, n, d16);
        break;
      case Format::e4m3:
#if DLMEM_CODEC_X86
        if (simd) return e4m3_encode_avx2(src, n, d8), bound(n);
#endif
        e4m3_encode_loop(src, n, d8);
        break;
    }
    (void)simd;
    return bound(n);
  }

  void decode(const std::byte* src, uint64_t size, uint64_t n, float* dst) const override {
    DLMEM_CHECK(size == bound(n), name(), " data of ", size, " bytes does not hold ", n, " elements");
#if DLMEM_CODEC_X86
    const bool simd = use_avx2();
#endif
    const auto* s16 = reinterpret_cast<const uint16_t*>(src);
    const auto* s8 = reinterpret_cast<const uint8_t*>(src);
    switch (f_) {
      case Format::fp16:
#if DLMEM_CODEC_X86
        if (simd) return fp16_decode_avx2(s16, n, dst);
#endif
        for (uint64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s16[i]);
        break;
      case Format::bf16:
#if DLMEM_CODEC_X86
        if (simd) return bf16_decode_avx2(s16, n, dst);
#endif
        bf16_decode_loop(s16, n, dst);
        break;
      case Format::e4m3:
#if DLMEM_CODEC_X86
        if (simd) return e4m3_decode_avx2(s8, n, dst);
#endif
        for (uint64_t i = 0; i < n; ++i) dst[i] = kE4m3.v[s8[i]];
        break;
    }
  }

 private:
  Format f_;
};

}  // namespace

std::unique_ptr<Codec> make_fp16() { return std::make_unique<Precision>(Precision::Format::fp16); }
std::unique_ptr<Codec> make_bf16() { return std::make_unique<Precision>(Precision::Format::bf16); }
std::unique_ptr<Codec> make_fp8_e4m3() { return std::make_unique<Precision>(Precision::Format::e4m3); }

}  // namespace dlmem::codec::detail
