// Internals of src/codec: the factories the registry calls, and the x86 SIMD switch.
//
// Note [Codec SIMD]: dlmem is built for baseline x86-64 (no -march), so the hot loops
// exist twice: a portable version and one compiled for AVX2 (function attribute
// DLMEM_AVX2), picked once at run time by has_avx2(). Both produce the same bytes;
// the round-trip tests run whichever this machine takes, and codec_test also forces
// the portable one (set_simd(false)) so both stay covered.
#pragma once

#include <memory>

#include "codec/codec.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DLMEM_CODEC_X86 1
#include <immintrin.h>
#define DLMEM_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt,f16c,fma")))
#else
#define DLMEM_CODEC_X86 0
#endif

namespace dlmem::codec::detail {

// Whether the AVX2 paths run (the cpu has AVX2, BMI2, POPCNT and F16C, and tests
// have not switched them off).
bool use_avx2();
// Tests: false forces the portable loops; true restores detection.
void set_simd(bool enabled);

std::unique_ptr<Codec> make_bitmask();
std::unique_ptr<Codec> make_sparse();
std::unique_ptr<Codec> make_zvc();
std::unique_ptr<Codec> make_fp16();
std::unique_ptr<Codec> make_bf16();
std::unique_ptr<Codec> make_fp8_e4m3();
std::unique_ptr<Codec> make_zstd();
std::unique_ptr<Codec> make_lz4();

}  // namespace dlmem::codec::detail
