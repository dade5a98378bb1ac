// AVX2 lane shuffles shared by zvc and sparse: compressing the selected lanes of 8
// floats to the front (what AVX-512's vcompressps does) and expanding packed values
// back to the selected lanes, each through a 256-entry permutation table.
#pragma once

#include <array>
#include <cstdint>

#include "codec/detail.h"

#if DLMEM_CODEC_X86
namespace dlmem::codec::detail::lanes {

struct Tables {
  alignas(32) std::array<std::array<int32_t, 8>, 256> compress{};  // [m][k]: lane of the k-th set bit
  alignas(32) std::array<std::array<int32_t, 8>, 256> expand{};    // [m][j]: rank of set bit j
};

constexpr Tables make_tables() {
  Tables t;
  for (int m = 0; m < 256; ++m) {
    int k = 0;
    for (int j = 0; j < 8; ++j)
      if ((m >> j) & 1) {
        t.compress[m][k] = j;
        t.expand[m][j] = k;
        ++k;
      }
  }
  return t;
}
inline constexpr Tables kTables = make_tables();

// The lanes set in m, moved to the front (the rest: don't care).
DLMEM_AVX2 inline __m256i compress(unsigned m) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(kTables.compress[m].data()));
}

// 8 floats whose lanes set in m take the next values of `packed` in order, the
// others 0.0f. Reads packed[0, 8).
DLMEM_AVX2 inline __m256 expand(const float* packed, unsigned m) {
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 v = _mm256_loadu_ps(packed);
  const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(kTables.expand[m].data()));
  const __m256i sel = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(m)), bits), bits);
  return _mm256_and_ps(_mm256_permutevar8x32_ps(v, idx), _mm256_castsi256_ps(sel));
}

}  // namespace dlmem::codec::detail::lanes
#endif
