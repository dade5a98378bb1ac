#include "train/synthetic_dataset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "util/error.h"

namespace dlmem::train {
namespace {

std::vector<float> image_of(const Dataset& d, int64_t i, int32_t* label) {
  std::vector<float> x(static_cast<size_t>(d.sample_numel()));
  d.get(i, x.data(), label);
  return x;
}

TEST(SyntheticDataset, ShapeAndName) {
  SyntheticDataset d({3, 8, 5}, 10, 100, 7);
  EXPECT_EQ(d.size(), 100);
  EXPECT_EQ(d.sample_shape(), (std::vector<int64_t>{3, 8, 5}));
  EXPECT_EQ(d.sample_numel(), 120);
  EXPECT_EQ(d.num_classes(), 10);
  EXPECT_EQ(d.name(), "synthetic(3x8x5, 10 classes)");
}

TEST(SyntheticDataset, DeterministicAndIndependentOfAccessOrder) {
  SyntheticDataset a({2, 6, 6}, 5, 50, 42), b({2, 6, 6}, 5, 50, 42), c({2, 6, 6}, 5, 50, 43);
  int32_t la = 0, lb = 0, lc = 0;
  const auto b9 = image_of(b, 9, &lb);  // b reads 9 first, a reads 0..9 in order
  std::vector<float> a9;
  for (int64_t i = 0; i <= 9; ++i) a9 = image_of(a, i, &la);
  EXPECT_EQ(la, lb);
  EXPECT_EQ(std::memcmp(a9.data(), b9.data(), a9.size() * sizeof(float)), 0);
  const auto c9 = image_of(c, 9, &lc);
  EXPECT_NE(std::memcmp(a9.data(), c9.data(), a9.size() * sizeof(float)), 0);
}

TEST(SyntheticDataset, LabelsCoverTheClassesAndValuesAreNormalisedish) {
  SyntheticDataset d({1, 16, 16}, 4, 4000, 1);
  std::vector<int64_t> hist(4);
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < d.size(); ++i) {
    int32_t y = -1;
    const auto x = image_of(d, i, &y);
    ASSERT_GE(y, 0);
    ASSERT_LT(y, 4);
    ++hist[static_cast<size_t>(y)];
    for (float v : x) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sum_sq += double{v} * v;
      ++n;
    }
  }
  for (int64_t h : hist) EXPECT_NEAR(h, 1000, 150);
  const double mean = sum / static_cast<double>(n);
  const double stddev = std::sqrt(sum_sq / static_cast<double>(n) - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.2);
  EXPECT_GT(stddev, 0.5);
  EXPECT_LT(stddev, 2.0);
}

// The data is learnable: the nearest class mean, estimated on the first half, labels
// the second half well above chance.
TEST(SyntheticDataset, ClassesAreSeparable) {
  const int64_t classes = 10, count = 2000;
  SyntheticDataset d({3, 12, 12}, classes, count, 5);
  const auto numel = static_cast<size_t>(d.sample_numel());
  std::vector<std::vector<double>> mean(classes, std::vector<double>(numel));
  std::vector<int64_t> seen(classes);
  int32_t y = 0;
  for (int64_t i = 0; i < count / 2; ++i) {
    const auto x = image_of(d, i, &y);
    for (size_t k = 0; k < numel; ++k) mean[static_cast<size_t>(y)][k] += x[k];
    ++seen[static_cast<size_t>(y)];
  }
  for (int64_t c = 0; c < classes; ++c)
    for (double& v : mean[static_cast<size_t>(c)]) v /= std::max<int64_t>(seen[static_cast<size_t>(c)], 1);
  int64_t correct = 0;
  for (int64_t i = count / 2; i < count; ++i) {
    const auto x = image_of(d, i, &y);
    int64_t best = -1;
    double best_d = 1e300;
    for (int64_t c = 0; c < classes; ++c) {
      double dist = 0;
      for (size_t k = 0; k < numel; ++k) dist += (x[k] - mean[static_cast<size_t>(c)][k]) * (x[k] - mean[static_cast<size_t>(c)][k]);
      if (dist < best_d) best_d = dist, best = c;
    }
    correct += best == y;
  }
  EXPECT_GT(static_cast<double>(correct) / (count / 2), 0.9);
}

TEST(SyntheticDataset, RejectsBadArguments) {
  EXPECT_THROW(SyntheticDataset({3, 32}, 10, 10), Error);
  EXPECT_THROW(SyntheticDataset({3, 0, 32}, 10, 10), Error);
  EXPECT_THROW(SyntheticDataset({3, 32, 32}, 0, 10), Error);
  EXPECT_THROW(SyntheticDataset({3, 32, 32}, 10, -1), Error);
  EXPECT_THROW(SyntheticDataset({1 << 16, 1 << 16, 1 << 16}, 10, 10), Error);
  SyntheticDataset d({1, 2, 2}, 2, 3);
  std::vector<float> x(4);
  int32_t y = 0;
  EXPECT_THROW(d.get(3, x.data(), &y), Error);
  SyntheticDataset empty({1, 2, 2}, 2, 0);
  EXPECT_THROW(empty.get(0, x.data(), &y), Error);
}

}  // namespace
}  // namespace dlmem::train
