// Canonical Huffman coding: round trips as properties over many random alphabets and
// distributions, optimality against the merge-sum formula, the length limit, and
// malformed codes and streams rejected with an Error.
#include <gtest/gtest.h>

#include <queue>
#include <random>

#include "deploy/huffman.h"
#include "util/error.h"

namespace dlmem::deploy {
namespace {

// The cost of an optimal prefix code: the sum of the weights of the merged nodes.
uint64_t optimal_cost(const std::vector<uint64_t>& freqs) {
  std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<>> q;
  for (uint64_t f : freqs)
    if (f) q.push(f);
  if (q.size() == 1) return q.top();  // one symbol: one bit each
  uint64_t cost = 0;
  while (q.size() > 1) {
    const uint64_t a = q.top();
    q.pop();
    const uint64_t b = q.top();
    q.pop();
    cost += a + b;
    q.push(a + b);
  }
  return cost;
}

std::vector<uint32_t> round_trip(const std::vector<uint32_t>& symbols, uint32_t alphabet, HuffmanCode* out = nullptr) {
  const HuffmanCode code = HuffmanCode::build(histogram(symbols, alphabet));
  BitWriter w;
  code.encode(symbols, w);
  EXPECT_EQ(w.bits(), code.cost(histogram(symbols, alphabet)));
  const HuffmanCode back = HuffmanCode::from_lengths(unpack_lengths(pack_lengths(code.lengths()), alphabet), "test");
  BitReader r(w.bytes(), w.bits(), "test");
  std::vector<uint32_t> got;
  for (size_t i = 0; i < symbols.size(); ++i) got.push_back(back.decode(r));
  EXPECT_EQ(r.remaining(), 0u);
  if (out) *out = code;
  return got;
}

TEST(Huffman, RoundTripsRandomAlphabetsAndDistributions) {
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 300; ++trial) {
    const uint32_t alphabet = 1 + static_cast<uint32_t>(rng() % (trial % 3 == 0 ? kMaxAlphabet : 64));
    const size_t n = rng() % 3000;
    std::vector<uint32_t> symbols(n);
    const int shape = trial % 3;
    std::geometric_distribution<uint32_t> geo(0.3);
    for (uint32_t& s : symbols) {
      if (shape == 0) s = static_cast<uint32_t>(rng() % alphabet);      // uniform
      else if (shape == 1) s = std::min(geo(rng), alphabet - 1);        // skewed
      else s = static_cast<uint32_t>(rng() % std::min<uint32_t>(alphabet, 3));  // few symbols
    }
    HuffmanCode code;
    ASSERT_EQ(round_trip(symbols, alphabet, &code), symbols) << "trial " << trial;
    const auto h = histogram(symbols, alphabet);
    uint32_t used = 0, max_len = 0;
    for (uint32_t s = 0; s < alphabet; ++s) {
      used += h[s] > 0;
      max_len = std::max<uint32_t>(max_len, code.lengths()[s]);
      EXPECT_EQ(h[s] > 0, code.lengths()[s] > 0) << "a code exactly for the symbols that occur";
    }
    EXPECT_LE(max_len, static_cast<uint32_t>(kMaxCodeLength));
    // Optimal whenever the length limit did not bind.
    if (max_len < kMaxCodeLength) {
      EXPECT_EQ(code.cost(h), optimal_cost(h)) << "trial " << trial;
    }
  }
}

TEST(Huffman, SingleSymbolAndEmptyStreams) {
  EXPECT_EQ(round_trip({5, 5, 5}, 8), (std::vector<uint32_t>{5, 5, 5}));
  HuffmanCode c;
  round_trip({0}, 1, &c);
  EXPECT_EQ(c.lengths(), std::vector<uint8_t>{1});
  EXPECT_TRUE(round_trip({}, 4).empty());
}

TEST(Huffman, LengthLimitHoldsOnFibonacciFrequencies) {
  // Fibonacci frequencies make the optimal code a chain: 39 symbols need 38 bits.
  std::vector<uint64_t> f = {1, 1};
  while (f.size() < 39) f.push_back(f[f.size() - 1] + f[f.size() - 2]);
  const HuffmanCode code = HuffmanCode::build(f);
  for (uint8_t l : code.lengths()) {
    EXPECT_GE(l, 1);
    EXPECT_LE(l, kMaxCodeLength);
  }
  // Still a complete prefix code, and close to optimal (within 1%).
  uint64_t kraft = 0;
  for (uint8_t l : code.lengths()) kraft += uint64_t{1} << (kMaxCodeLength - l);
  EXPECT_EQ(kraft, uint64_t{1} << kMaxCodeLength);
  EXPECT_LE(static_cast<double>(code.cost(f)), 1.01 * static_cast<double>(optimal_cost(f)));
  std::vector<uint32_t> symbols;
  for (uint32_t s = 0; s < 39; ++s) symbols.insert(symbols.end(), s < 20 ? 1 + s : 3, s);
  EXPECT_EQ(round_trip(symbols, 39), symbols);
}

TEST(Huffman, CanonicalCodesFollowDeflate) {
  // RFC 1951, 3.2.2's example: lengths (3, 3, 3, 3, 3, 2, 4, 4) give
  // F=00 A=010 B=011 C=100 D=101 E=110 G=1110 H=1111.
  const HuffmanCode c = HuffmanCode::from_lengths({3, 3, 3, 3, 3, 2, 4, 4}, "rfc");
  BitWriter w;
  c.encode(std::vector<uint32_t>{5, 0, 6, 7}, w);  // F A G H = 00 010 1110 1111
  ASSERT_EQ(w.bits(), 13u);
  EXPECT_EQ(static_cast<uint8_t>(w.bytes()[0]), 0b00010111);
  EXPECT_EQ(static_cast<uint8_t>(w.bytes()[1]), 0b01111000);
}

TEST(Huffman, MalformedCodesAndStreamsAreErrors) {
  EXPECT_THROW(HuffmanCode::from_lengths({1, 1, 1}, "t"), Error);           // over-subscribed
  EXPECT_THROW(HuffmanCode::from_lengths({16, 1}, "t"), Error);             // too long
  EXPECT_THROW(HuffmanCode::from_lengths({}, "t"), Error);                  // no alphabet
  EXPECT_THROW(HuffmanCode::from_lengths(std::vector<uint8_t>(kMaxAlphabet + 1, 12), "t"), Error);
  // An incomplete code: the pattern 11 is no code.
  const HuffmanCode c = HuffmanCode::from_lengths({1, 2, 0}, "t");
  const std::vector<std::byte> ones = {std::byte{0xff}};
  BitReader r(ones, 8, "stream");
  try {
    c.decode(r);
    FAIL() << "decoded an unassigned pattern";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stream"), std::string::npos) << e.what();
  }
  // A stream that ends inside a code.
  const HuffmanCode d = HuffmanCode::from_lengths({1, 2, 2}, "t");
  BitReader short_stream(ones, 1, "stream");
  EXPECT_THROW(d.decode(short_stream), Error);
  // Random garbage never crashes: every decode returns a symbol or throws.
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> lengths(1 + rng() % 40);
    for (uint8_t& l : lengths) l = static_cast<uint8_t>(rng() % 16);
    HuffmanCode code;
    try {
      code = HuffmanCode::from_lengths(lengths, "fuzz");
    } catch (const Error&) {
      continue;
    }
    std::vector<std::byte> bytes(rng() % 16);
    for (auto& b : bytes) b = std::byte{static_cast<uint8_t>(rng())};
    BitReader br(bytes, bytes.size() * 8, "fuzz");
    try {
      while (true) EXPECT_LT(code.decode(br), lengths.size());
    } catch (const Error&) {
    }
  }
}

TEST(Huffman, PackedLengthsRoundTrip) {
  const std::vector<uint8_t> l = {15, 0, 3, 7, 1};
  const auto packed = pack_lengths(l);
  ASSERT_EQ(packed.size(), 3u);
  EXPECT_EQ(static_cast<uint8_t>(packed[0]), 0xf0);
  EXPECT_EQ(unpack_lengths(packed, 5), l);
}

}  // namespace
}  // namespace dlmem::deploy
