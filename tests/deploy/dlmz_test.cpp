// The .dlmz format: bit-exact round trips, and a loader that refuses every truncation,
// every flipped byte and random mutations (with the checksum fixed up, so they reach
// the parser) with a dlmem::Error -- never a crash, an over-read (run under ASan) or
// an internal error.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "deploy/dlmz.h"
#include "deploy/kmeans.h"
#include "deploy/layers.h"
#include "deploy/prune.h"
#include "models/zoo.h"
#include "util/temp_dir.h"
#include "util/atomic_file.h"
#include "util/crc32.h"
#include "util/error.h"

namespace dlmem::deploy {
namespace {

// A small model's weights, pruned to `density` and shared with `bits` bits, as the
// pipeline would write them (random values: no training needed to test the format).
DlmzModel make_model(const std::string& name, int64_t image, double density, int bits, uint64_t seed) {
  models::ModelConfig mc;
  mc.image_size = image;
  const ir::Graph g = models::build_model(name, mc);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> nd(0.0f, 0.1f);
  DlmzModel m;
  m.model = name;
  m.image_size = image;
  const auto layers = compressible_layers(g);
  for (const ir::Value& v : g.values()) {
    if (v.role != ir::Role::weight) continue;
    std::vector<float> w(static_cast<size_t>(v.type.numel()));
    for (float& x : w) x = nd(rng);
    const bool compressible = std::any_of(layers.begin(), layers.end(), [&](const Layer& l) { return l.weight == v.name; });
    if (!compressible) {
      m.tensors.push_back(DlmzTensor::dense(v.name, v.type.shape, w));
      continue;
    }
    std::vector<uint8_t> mask(w.size(), 1);
    prune(w, mask, density_threshold(w, density));
    SharedSparse s;
    s.numel = w.size();
    s.index_bits = bits;
    std::vector<float> kept;
    for (size_t i = 0; i < w.size(); ++i)
      if (mask[i]) {
        s.positions.push_back(i);
        kept.push_back(w[i]);
      }
    const Clusters c = kmeans(kept, bits);
    s.codebook = c.centroids;
    s.codes = c.assignment;
    m.tensors.push_back(DlmzTensor::shared_sparse(v.name, v.type.shape, std::move(s)));
  }
  return m;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void fix_crc(std::vector<std::byte>& f) {
  if (f.size() < 4) return;
  const uint32_t c = crc32(std::span<const std::byte>(f).first(f.size() - 4));
  for (int i = 0; i < 4; ++i) f[f.size() - 4 + static_cast<size_t>(i)] = std::byte{static_cast<uint8_t>(c >> (8 * i))};
}

// Decoding `f` must end in a model or a dlmem::Error; a model it returns must also be
// checked against its zoo model without anything but dlmem::Error.
void must_fail_cleanly_or_decode(const std::vector<std::byte>& f, const char* what) {
  try {
    const DlmzModel m = decode_dlmz(f, "fuzz.dlmz");
    try {
      const WeightMap w = dlmz_weights(m, "fuzz.dlmz");
      EXPECT_EQ(w.size(), m.tensors.size());
    } catch (const Error&) {
    }
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fuzz.dlmz"), std::string::npos) << what << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": not a dlmem::Error: " << e.what();
  }
}

TEST(Dlmz, RoundTripIsBitExact) {
  for (int bits : {1, 3, 5, 8}) {
    const DlmzModel m = make_model("lenet-300-100", 0, 0.08, bits, static_cast<uint64_t>(bits));
    std::vector<DlmzTensorStats> stats;
    const std::vector<std::byte> f = encode_dlmz(m, &stats);
    ASSERT_EQ(stats.size(), m.tensors.size());
    uint64_t section_bytes = 0;
    for (const auto& s : stats) section_bytes += s.bytes;
    EXPECT_LT(section_bytes, f.size());
    const DlmzModel back = decode_dlmz(f, "mem");
    EXPECT_EQ(back.model, "lenet-300-100");
    ASSERT_EQ(back.tensors.size(), m.tensors.size());
    for (size_t i = 0; i < m.tensors.size(); ++i) {
      EXPECT_EQ(back.tensors[i].name, m.tensors[i].name);
      EXPECT_EQ(back.tensors[i].shape, m.tensors[i].shape);
      EXPECT_EQ(back.tensors[i].sparse.positions, m.tensors[i].sparse.positions);
      EXPECT_EQ(back.tensors[i].sparse.codes, m.tensors[i].sparse.codes);
      EXPECT_TRUE(same_bits(back.tensors[i].values(), m.tensors[i].values())) << m.tensors[i].name;
    }
    // Re-encoding the decoded model gives the same bytes.
    EXPECT_EQ(encode_dlmz(back), f);
  }
}

TEST(Dlmz, DenseValuesKeepEveryBit) {
  DlmzModel m;
  m.model = "lenet5";
  const std::vector<float> odd = {-0.0f, 1e-42f, INFINITY, -INFINITY, std::nanf("0x1234"), 3.25f};
  m.tensors.push_back(DlmzTensor::dense("odd", {2, 3}, odd));
  SharedSparse empty;  // a tensor pruned away completely
  empty.numel = 7;
  m.tensors.push_back(DlmzTensor::shared_sparse("empty", {7}, empty));
  const DlmzModel back = decode_dlmz(encode_dlmz(m), "mem");
  EXPECT_TRUE(same_bits(back.tensors[0].values(), odd));
  EXPECT_EQ(back.tensors[1].values(), std::vector<float>(7, 0.0f));
}

TEST(Dlmz, SaveIsAtomicAndLoadNamesThePath) {
  test_util::TempDir dir;
  const DlmzModel m = make_model("mlp-32-16", 8, 0.2, 4, 1);
  const std::string path = dir.file("m.dlmz");
  const uint64_t bytes = save_dlmz(path, m);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.dlmz"});
  EXPECT_EQ(read_file(path).size(), bytes);
  EXPECT_EQ(load_dlmz(path).tensors.size(), m.tensors.size());
  const WeightMap w = dlmz_weights(load_dlmz(path), path);
  EXPECT_TRUE(same_bits(w.at("fc1.weight"), m.find("fc1.weight")->values()));

  auto message = [](const std::vector<std::byte>& f) {
    try {
      decode_dlmz(f, "x.dlmz");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::vector<std::byte> f = encode_dlmz(m);
  std::vector<std::byte> text(f.size(), std::byte{'a'});
  EXPECT_NE(message(text).find("not a .dlmz"), std::string::npos) << message(text);
  std::vector<std::byte> v2 = f;
  v2[8] = std::byte{2};
  EXPECT_NE(message(v2).find("version 2"), std::string::npos) << message(v2);
  std::vector<std::byte> flipped = f;
  flipped[f.size() / 2] ^= std::byte{0x10};
  EXPECT_NE(message(flipped).find("checksum"), std::string::npos) << message(flipped);
}

TEST(Dlmz, EveryTruncationIsRefused) {
  const std::vector<std::byte> f = encode_dlmz(make_model("mlp-32-16", 8, 0.2, 4, 2));
  for (size_t n = 0; n < f.size(); ++n) {
    const std::vector<std::byte> cut(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(decode_dlmz(cut, "cut.dlmz"), Error) << n;
    std::vector<std::byte> fixed = cut;  // even with a valid checksum over what is left
    fix_crc(fixed);
    EXPECT_THROW(decode_dlmz(fixed, "cut.dlmz"), Error) << n;
  }
}

TEST(Dlmz, EveryFlippedByteIsRefusedOrHarmless) {
  const std::vector<std::byte> f = encode_dlmz(make_model("mlp-32-16", 8, 0.2, 4, 3));
  for (size_t i = 0; i < f.size(); ++i) {
    std::vector<std::byte> g = f;
    g[i] ^= std::byte{static_cast<uint8_t>(1u << (i % 8))};
    EXPECT_THROW(decode_dlmz(g, "flip.dlmz"), Error) << i;  // CRC-32 catches every one
    fix_crc(g);
    must_fail_cleanly_or_decode(g, "flip with checksum fixed");
  }
}

TEST(Dlmz, RandomMutationsNeverCrash) {
  const std::vector<std::byte> f = encode_dlmz(make_model("mlp-32-16", 8, 0.2, 4, 4));
  std::mt19937_64 rng(11);
  int decoded = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::byte> g = f;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % g.size();
      switch (rng() % 5) {
        case 0: g[at] = std::byte{static_cast<uint8_t>(rng())}; break;                        // random byte
        case 1: g[at] ^= std::byte{static_cast<uint8_t>(1u << (rng() % 8))}; break;           // bit flip
        case 2: g.insert(g.begin() + static_cast<std::ptrdiff_t>(at), std::byte{static_cast<uint8_t>(rng())}); break;
        case 3: if (g.size() > 1) g.erase(g.begin() + static_cast<std::ptrdiff_t>(at)); break;
        default: g[at] = std::byte{static_cast<uint8_t>(rng() % 2 ? 0xff : 0x00)}; break;    // extremes
      }
    }
    if (rng() % 4) fix_crc(g);  // mostly reach the parser
    must_fail_cleanly_or_decode(g, "mutation");
    try {
      decode_dlmz(g, "fuzz.dlmz");
      ++decoded;
    } catch (const Error&) {
    }
  }
  EXPECT_LT(decoded, 3000);  // most mutations are caught
}

TEST(Dlmz, WeightsAreCheckedAgainstTheModel) {
  DlmzModel m = make_model("mlp-32-16", 8, 0.2, 4, 5);
  auto fails = [](const DlmzModel& x, const std::string& needle) {
    try {
      dlmz_weights(x, "m.dlmz");
    } catch (const Error& e) {
      return std::string(e.what()).find(needle) != std::string::npos && std::string(e.what()).find("m.dlmz") != std::string::npos;
    }
    return false;
  };
  DlmzModel missing = m;
  missing.tensors.pop_back();
  EXPECT_TRUE(fails(missing, "no tensor"));
  DlmzModel wrong = m;
  wrong.image_size = 9;  // fc1 would need 81 inputs
  EXPECT_TRUE(fails(wrong, "fc1.weight"));
  DlmzModel extra = m;
  extra.tensors.push_back(DlmzTensor::dense("stray", {1}, {1.0f}));
  EXPECT_TRUE(fails(extra, "stray"));
  DlmzModel unknown = m;
  unknown.model = "lenet7";
  EXPECT_TRUE(fails(unknown, "lenet7"));
}

}  // namespace
}  // namespace dlmem::deploy
