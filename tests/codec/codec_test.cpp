// Round-trip properties of every codec: random, ReLU-like, all-zero, no-zero and
// special values (NaN, Inf, -0.0, subnormals) at odd lengths, with the SIMD paths on
// and off; encoders stay within bound(n), decoders within the encoded size, and the
// SIMD and portable paths write the same bytes.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "codec/codec.h"
#include "codec/detail.h"
#include "util/error.h"

namespace dlmem::codec {
namespace {

constexpr std::byte kGuard{0xAB};
constexpr size_t kGuardBytes = 64;

struct SimdGuard {
  explicit SimdGuard(bool on) { detail::set_simd(on); }
  ~SimdGuard() { detail::set_simd(true); }
};

std::vector<float> pattern(const std::string& kind, uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(n);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(),
                            std::bit_cast<float>(0x7FA00001u),  // signalling NaN with payload
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            -0.0f,
                            0.0f,
                            std::numeric_limits<float>::denorm_min(),
                            -1e-40f,
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            65504.0f,
                            65520.0f,
                            448.0f,
                            464.0f,
                            1e-8f,
                            1.0f};
  for (uint64_t i = 0; i < n; ++i) {
    const float v = normal(rng);
    if (kind == "random") x[i] = v;
    else if (kind == "relu") x[i] = v > 0 ? v : 0.0f;
    else if (kind == "sparse") x[i] = rng() % 16 == 0 ? std::abs(v) : 0.0f;
    else if (kind == "zeros") x[i] = 0.0f;
    else if (kind == "nozero") x[i] = v == 0 ? 1.0f : v;
    else x[i] = specials[rng() % std::size(specials)];
  }
  return x;
}

// Whether b is an acceptable decoding of a, per codec.
bool decoded_ok(const Codec& c, float a, float b) {
  const uint32_t ab = std::bit_cast<uint32_t>(a), bb = std::bit_cast<uint32_t>(b);
  switch (c.preserves()) {
    case Preserves::exact: return ab == bb;
    case Preserves::sign: return bb == std::bit_cast<uint32_t>(a > 0 ? 1.0f : 0.0f);
    case Preserves::approximate: break;
  }
  const bool fp8 = c.name() == "fp8-e4m3";
  if (std::isnan(a)) return std::isnan(b);
  if (std::isinf(a)) return fp8 ? std::isnan(b) : ab == bb;
  if (std::signbit(a) != std::signbit(b)) return false;
  const float mag = std::abs(a), err = std::abs(a - b);
  if (c.name() == "fp16") return mag >= 65520.0f ? std::isinf(b) : err <= std::max(mag * 0x1p-11f, 0x1p-25f);
  if (c.name() == "bf16") return mag > 0x1.fefffep127f ? std::isinf(b) : err <= std::max(mag * 0x1p-8f, 0x1p-133f);
  return mag >= 448.0f ? std::abs(b) == 448.0f : err <= std::max(mag * 0x1p-4f, 0x1p-10f);
}

void expect_decoded(const Codec& c, const std::vector<float>& x, const std::vector<float>& y) {
  for (size_t i = 0; i < x.size(); ++i)
    if (!decoded_ok(c, x[i], y[i])) {
      ADD_FAILURE() << c.name() << " element " << i << " of " << x.size() << ": " << x[i] << " (0x" << std::hex
                    << std::bit_cast<uint32_t>(x[i]) << ") decodes to " << y[i] << " (0x" << std::bit_cast<uint32_t>(y[i])
                    << ")";
      return;
    }
}

// Encodes and decodes with guard bytes around both buffers; returns the encoding.
std::vector<std::byte> round_trip(const Codec& c, const std::vector<float>& x) {
  const uint64_t n = x.size();
  std::vector<std::byte> enc(c.bound(n) + kGuardBytes, kGuard);
  const uint64_t size = c.encode(x.data(), n, enc.data());
  EXPECT_LE(size, c.bound(n)) << c.name();
  if (!c.data_dependent()) {
    EXPECT_EQ(size, c.bound(n)) << c.name();
  }
  for (uint64_t i = c.bound(n); i < enc.size(); ++i)
    if (enc[i] != kGuard) ADD_FAILURE() << c.name() << " wrote past its bound";
  enc.resize(size);
  std::vector<std::byte> exact(enc);  // decoding reads exactly `size` bytes (ASan checks it)
  std::vector<float> y(n + kGuardBytes / 4, std::bit_cast<float>(0xDEADBEEFu));
  c.decode(exact.data(), size, n, y.data());
  for (uint64_t i = n; i < y.size(); ++i)
    if (std::bit_cast<uint32_t>(y[i]) != 0xDEADBEEFu) ADD_FAILURE() << c.name() << " wrote past n";
  y.resize(n);
  expect_decoded(c, x, y);
  return enc;
}

TEST(Codec, RegistryKnowsEveryCodec) {
  EXPECT_EQ(names(), "bitmask, sparse, zvc, fp16, bf16, fp8-e4m3, zstd, lz4");
  for (const Codec* c : all()) EXPECT_EQ(&get(c->name()), c);
  EXPECT_EQ(find("nope"), nullptr);
  try {
    get("zip");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("known codecs: bitmask"), std::string::npos);
  }
  EXPECT_TRUE(get("zvc").lossless());
  EXPECT_FALSE(get("bitmask").lossless());
  EXPECT_EQ(get("bitmask").preserves(), Preserves::sign);
  EXPECT_EQ(get("fp16").preserves(), Preserves::approximate);
}

TEST(Codec, RoundTripEveryPatternAndLength) {
  const uint64_t lengths[] = {0, 1, 2, 7, 8, 9, 31, 33, 63, 64, 65, 255, 256, 257, 511, 1000, 4097, 70001};
  for (bool simd : {true, false}) {
    SimdGuard g(simd);
    for (const Codec* c : all())
      for (const char* kind : {"random", "relu", "sparse", "zeros", "nozero", "special"})
        for (uint64_t n : lengths) {
          SCOPED_TRACE(testing::Message() << c->name() << " " << kind << " n=" << n << " simd=" << simd);
          round_trip(*c, pattern(kind, n, static_cast<uint32_t>(n * 7 + 1)));
          if (HasFatalFailure()) return;
        }
  }
}

TEST(Codec, SimdAndPortableWriteTheSameBytes) {
  for (const Codec* c : all()) {
    if (c->name() == "zstd" || c->name() == "lz4") continue;  // no SIMD paths of ours
    for (const char* kind : {"random", "relu", "sparse", "special"})
      for (uint64_t n : {uint64_t{1000}, uint64_t{65536 + 13}}) {
        SCOPED_TRACE(testing::Message() << c->name() << " " << kind << " n=" << n);
        const auto x = pattern(kind, n, 3);
        std::vector<std::byte> a, b;
        {
          SimdGuard g(true);
          a = round_trip(*c, x);
        }
        {
          SimdGuard g(false);
          b = round_trip(*c, x);
        }
        EXPECT_TRUE(a == b);
      }
  }
}

// fp8-e4m3's vector encoder against the scalar one on every exponent, both signs and
// the mantissas where rounding decides: exact ties (to even either way), one ulp
// either side of them, the carries into the next exponent, and pseudo-random ones --
// this covers the subnormal, normal, saturating and NaN/Inf paths at their edges.
TEST(Codec, Fp8VectorEncoderMatchesScalarAtEveryRoundingEdge) {
  std::vector<float> x;
  uint32_t lcg = 12345;
  for (uint32_t sign : {0u, 0x80000000u})
    for (uint32_t e = 0; e < 256; ++e)
      for (uint32_t top = 0; top < 8; ++top) {  // the 3 mantissa bits kept
        const uint32_t base = sign | (e << 23) | (top << 20);
        for (uint32_t low : {0u, 1u, 0x7FFFFu, 0x80000u, 0x80001u, 0xFFFFFu}) x.push_back(std::bit_cast<float>(base | low));
        for (int k = 0; k < 4; ++k) {
          lcg = lcg * 1664525u + 1013904223u;
          x.push_back(std::bit_cast<float>(base | (lcg & 0xFFFFFu)));
        }
      }
  const Codec& c = get("fp8-e4m3");
  std::vector<std::byte> a(x.size()), b(x.size());
  {
    SimdGuard g(true);
    c.encode(x.data(), x.size(), a.data());
  }
  {
    SimdGuard g(false);
    c.encode(x.data(), x.size(), b.data());
  }
  for (size_t i = 0; i < x.size(); ++i)
    if (a[i] != b[i]) {
      ADD_FAILURE() << "0x" << std::hex << std::bit_cast<uint32_t>(x[i]) << ": vector 0x" << static_cast<int>(a[i])
                    << ", scalar 0x" << static_cast<int>(b[i]);
      return;
    }
}

TEST(Codec, KnownEncodings) {
  auto enc = [](const char* name, std::vector<float> x) {
    const Codec& c = get(name);
    std::vector<std::byte> out(c.bound(x.size()));
    out.resize(c.encode(x.data(), x.size(), out.data()));
    return out;
  };
  auto u16 = [](const std::vector<std::byte>& b, size_t i) {
    uint16_t v;
    std::memcpy(&v, b.data() + 2 * i, 2);
    return v;
  };
  // fp16: 1, max finite, rounds to Inf, smallest subnormal, a tie rounding to even.
  auto h = enc("fp16", {1.0f, 65504.0f, 65520.0f, 0x1p-24f, 1.0f + 0x1p-11f, -0.0f});
  EXPECT_EQ(u16(h, 0), 0x3C00);
  EXPECT_EQ(u16(h, 1), 0x7BFF);
  EXPECT_EQ(u16(h, 2), 0x7C00);
  EXPECT_EQ(u16(h, 3), 0x0001);
  EXPECT_EQ(u16(h, 4), 0x3C00);
  EXPECT_EQ(u16(h, 5), 0x8000);
  // bf16: ties to even, and a NaN stays NaN.
  auto bf = enc("bf16", {std::bit_cast<float>(0x3F808000u), std::bit_cast<float>(0x3F818000u),
                         std::bit_cast<float>(0x7F800001u)});
  EXPECT_EQ(u16(bf, 0), 0x3F80);
  EXPECT_EQ(u16(bf, 1), 0x3F82);
  EXPECT_EQ(u16(bf, 2) & 0x7FC0, 0x7FC0);
  // fp8-e4m3: 1, 448 (max), saturation, 2^-9 (smallest subnormal), 2^-6 (smallest
  // normal, reached by rounding up from the subnormals), -0, NaN, Inf.
  auto f8 = enc("fp8-e4m3", {1.0f, 448.0f, 1e6f, 0x1p-9f, 0x1.fp-7f, -0.0f, NAN, INFINITY, 0.1875f});
  const uint8_t want[] = {0x38, 0x7E, 0x7E, 0x01, 0x08, 0x80, 0x7F, 0x7F, 0x24};
  for (size_t i = 0; i < std::size(want); ++i) EXPECT_EQ(static_cast<uint8_t>(f8[i]), want[i]) << i;
  // bitmask: x > 0 per bit, LSB first.
  auto bm = enc("bitmask", {1, 0, -1, 2, NAN, 3, -0.0f, 4, 5});
  ASSERT_EQ(bm.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(bm[0]), 0b10101001);
  EXPECT_EQ(static_cast<uint8_t>(bm[1]), 0b1);
}

TEST(Codec, SizesFollowDensity) {
  const uint64_t n = 1 << 16;
  auto size = [&](const char* name, const std::vector<float>& x) {
    const Codec& c = get(name);
    std::vector<std::byte> out(c.bound(n));
    return c.encode(x.data(), n, out.data());
  };
  const auto zeros = pattern("zeros", n, 1), sparse = pattern("sparse", n, 1), relu = pattern("relu", n, 1),
             dense = pattern("nozero", n, 1);
  // zvc: the mask plus 4 bytes per non-zero.
  EXPECT_EQ(size("zvc", zeros), n / 8);
  EXPECT_EQ(size("zvc", dense), n / 8 + 4 * n);
  // sparse: 2 bytes per block of 256 for all zeros; never above raw + 2 per block.
  EXPECT_EQ(size("sparse", zeros), 2 * n / 256);
  EXPECT_EQ(size("sparse", dense), 2 * n / 256 + 4 * n);
  // 1 in 16 non-zero: narrow indices beat zvc's mask.
  EXPECT_LT(size("sparse", sparse), size("zvc", sparse));
  EXPECT_LT(size("sparse", sparse), 4 * n / 10);
  // ReLU of a normal: about half zeros, so a bit under 2x for zvc and sparse alike.
  EXPECT_LT(size("zvc", relu), 4 * n * 6 / 10);
  EXPECT_LT(size("sparse", relu), 4 * n * 6 / 10);
}

}  // namespace
}  // namespace dlmem::codec
