// Pruning thresholds and masks, k-means weight sharing, and relative indices with
// filler entries, checked by hand and as properties.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "deploy/kmeans.h"
#include "deploy/prune.h"
#include "deploy/sparse_index.h"
#include "util/error.h"

namespace dlmem::deploy {
namespace {

TEST(Prune, QualityTimesStdAndMasksOnlyShrink) {
  std::vector<float> w = {-3, -1, -0.5f, 0, 0.5f, 1, 3, 2};
  const double sd = stddev(w);
  EXPECT_NEAR(sd, std::sqrt(3.0), 1e-6);  // population std: mean 0.25, variance 3
  std::vector<uint8_t> mask(w.size(), 1);
  EXPECT_EQ(prune(w, mask, static_cast<float>(0.5 * sd)), 5u);  // |w| >= 0.83 stays
  EXPECT_EQ(mask, (std::vector<uint8_t>{1, 1, 0, 0, 0, 1, 1, 1}));
  // A weight pruned earlier stays pruned even if retraining made it large.
  w[2] = 10;
  EXPECT_EQ(prune(w, mask, 0.1f), 5u);
  EXPECT_EQ(w[2], 0.0f);
  EXPECT_FALSE(std::signbit(w[2]));  // +0.0, not -0.0
  EXPECT_FLOAT_EQ(round_threshold(2.0f, 1, 4), 0.5f);
  EXPECT_FLOAT_EQ(round_threshold(2.0f, 4, 4), 2.0f);
}

TEST(Prune, DensityThresholdKeepsThatFraction) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> w(10000);
  for (float& x : w) x = nd(rng);
  for (double d : {0.01, 0.08, 0.26, 0.5, 1.0}) {
    std::vector<float> x = w;
    std::vector<uint8_t> mask(x.size(), 1);
    const uint64_t kept = prune(x, mask, density_threshold(x, d));
    EXPECT_EQ(kept, static_cast<uint64_t>(std::llround(d * 10000))) << d;
  }
}

TEST(KMeans, LinearInitialisationAndLloydOnSeparatedData) {
  // Four well-separated groups, 2 bits: each group becomes one cluster at its mean.
  std::vector<float> w;
  for (float c : {-2.0f, -0.5f, 0.5f, 2.0f})
    for (int i = -2; i <= 2; ++i) w.push_back(c + 0.01f * static_cast<float>(i));
  std::shuffle(w.begin(), w.end(), std::mt19937(1));
  const Clusters c = kmeans(w, 2);
  ASSERT_EQ(c.centroids.size(), 4u);
  EXPECT_NEAR(c.centroids[0], -2.0f, 1e-6);
  EXPECT_NEAR(c.centroids[1], -0.5f, 1e-6);
  EXPECT_NEAR(c.centroids[2], 0.5f, 1e-6);
  EXPECT_NEAR(c.centroids[3], 2.0f, 1e-6);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(c.centroids[c.assignment[i]], w[i], 0.03f);
}

TEST(KMeans, PropertiesOnRandomLayers) {
  std::mt19937 rng(5);
  int converged = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const int bits = 1 + trial % 8;
    std::vector<float> w(1 + rng() % 3000);
    std::student_t_distribution<float> heavy(3);
    for (float& x : w) x = 0.05f * heavy(rng);
    const Clusters c = kmeans(w, bits);
    ASSERT_EQ(c.assignment.size(), w.size());
    ASSERT_LE(c.centroids.size(), size_t{1} << bits);
    EXPECT_TRUE(std::is_sorted(c.centroids.begin(), c.centroids.end()));
    const auto [lo, hi] = std::minmax_element(w.begin(), w.end());
    std::vector<int> used(c.centroids.size(), 0);
    for (uint32_t a : c.assignment) used.at(a) = 1;
    for (size_t j = 0; j < c.centroids.size(); ++j) {
      EXPECT_TRUE(used[j]) << "every centroid is used";
      EXPECT_GE(c.centroids[j], *lo);
      EXPECT_LE(c.centroids[j], *hi);
    }
    // Lloyd never does worse than its linear initialisation's nearest-centroid assignment.
    Clusters init;
    const size_t k = size_t{1} << bits;
    for (size_t j = 0; j < k; ++j)
      init.centroids.push_back(k == 1 ? (*lo + *hi) / 2 : *lo + (*hi - *lo) * static_cast<float>(j) / static_cast<float>(k - 1));
    for (float x : w) {
      uint32_t best = 0;
      for (uint32_t j = 1; j < k; ++j)
        if (std::fabs(x - init.centroids[j]) < std::fabs(x - init.centroids[best])) best = j;
      init.assignment.push_back(best);
    }
    EXPECT_LE(within_cluster_ss(w, c), within_cluster_ss(w, init) * (1 + 1e-5) + 1e-12) << "trial " << trial;
    // Converged (no assignment changed): each weight sits with its nearest centroid.
    if (c.iterations == KMeansOptions{}.max_iterations) continue;
    ++converged;
    for (size_t i = 0; i < w.size(); i += 7) {
      float best = INFINITY;
      for (float cj : c.centroids) best = std::min(best, std::fabs(w[i] - cj));
      EXPECT_NEAR(std::fabs(w[i] - c.centroids[c.assignment[i]]), best, 1e-6f);
    }
  }
  EXPECT_GE(converged, 30);  // of 40
}

TEST(KMeans, FewDistinctValuesAndEmptyInput) {
  const Clusters c = kmeans(std::vector<float>{1, 1, 1, 4, 4}, 5);
  EXPECT_EQ(c.centroids, (std::vector<float>{1, 4}));
  EXPECT_EQ(c.assignment, (std::vector<uint32_t>{0, 0, 0, 1, 1}));
  EXPECT_TRUE(kmeans(std::vector<float>{}, 3).centroids.empty());
}

TEST(RelativeIndex, FillersBridgeLongGaps) {
  // Deep Compression's Fig. 2 idea with 3 bits: symbols 0..6 are gaps, 7 a filler.
  const std::vector<uint64_t> pos = {1, 3, 20};
  const auto sym = relative_indices(pos, 3);
  EXPECT_EQ(sym, (std::vector<uint32_t>{1, 1, 7, 7, 2}));
  RelativeIndexDecoder d(24, 3, "t");
  std::vector<uint64_t> back;
  for (uint32_t s : sym)
    if (auto p = d.next(s)) back.push_back(*p);
  EXPECT_EQ(back, pos);
}

TEST(RelativeIndex, RoundTripsRandomMasks) {
  std::mt19937_64 rng(9);
  for (int trial = 0; trial < 200; ++trial) {
    const int bits = 1 + trial % kMaxIndexBits;
    const uint64_t n = 1 + rng() % 5000;
    const double density = std::pow(10.0, -static_cast<double>(rng() % 300) / 100.0);
    std::vector<uint64_t> pos;
    for (uint64_t i = 0; i < n; ++i)
      if (static_cast<double>(rng() % 1000000) < density * 1e6) pos.push_back(i);
    const auto sym = relative_indices(pos, bits);
    RelativeIndexDecoder d(n, bits, "t");
    std::vector<uint64_t> back;
    for (uint32_t s : sym)
      if (auto p = d.next(s)) back.push_back(*p);
    ASSERT_EQ(back, pos) << "trial " << trial;
  }
}

TEST(RelativeIndex, DecoderRejectsRunningOffTheTensor) {
  RelativeIndexDecoder d(10, 2, "layer fc1");  // filler = 3
  EXPECT_THROW(d.next(4), Error);              // outside the alphabet
  EXPECT_EQ(d.next(3), std::nullopt);          // cursor 3
  EXPECT_EQ(d.next(3), std::nullopt);          // cursor 6
  EXPECT_EQ(*d.next(2), 8u);                   // cursor 9
  try {
    d.next(1);  // position 10: past the end
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc1"), std::string::npos);
  }
}

}  // namespace
}  // namespace dlmem::deploy
