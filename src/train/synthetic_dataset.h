// Deterministic pseudo-random images for models that have no real dataset at hand
// (benchmarks, memory experiments, tests). Each class has its own smooth pattern and
// every sample is that pattern plus noise, so a model can learn to tell them apart.
//
//   SyntheticDataset data({3, 32, 32}, /*num_classes=*/10, /*count=*/50000, /*seed=*/1);
//   std::vector<float> x(data.sample_numel());
//   int32_t y = 0;
//   data.get(123, x.data(), &y);   // the same x and y on every call and every run
//
// Sample i depends only on (seed, i), not on the order of access, so shuffling, several
// threads or a restart all see the same data. The label is a hash of (seed, i) modulo
// num_classes (close to balanced). The image is
//   a_c * 2 cos(2π fy h/H + φy) cos(2π fx w/W + φx) + 0.5 * noise
// where fy, fx in 1..4, the phases φ and the per-channel gains a_c in ±[0.5, 1.5] are
// drawn per class from the seed, and the noise is approximately standard normal (a sum
// of four uniforms). Values have mean about 0 and a spread about 1, like normalised
// real images. Nothing is precomputed, so a dataset of any count costs no memory.
// The values use std::cos, so they can differ in the last bits between C libraries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/dataset.h"

namespace dlmem::train {

class SyntheticDataset : public Dataset {
 public:
  // shape = {C, H, W}, all positive; num_classes >= 1; count >= 0. Throws dlmem::Error
  // otherwise.
  SyntheticDataset(std::vector<int64_t> shape, int64_t num_classes, int64_t count,
                   uint64_t seed = 0);

  int64_t size() const override { return count_; }
  std::vector<int64_t> sample_shape() const override { return shape_; }
  int64_t num_classes() const override { return num_classes_; }
  void get(int64_t index, float* image_out, int32_t* label_out) const override;
  std::string name() const override;

  uint64_t seed() const { return seed_; }

 private:
  std::vector<int64_t> shape_;
  int64_t num_classes_;
  int64_t count_;
  uint64_t seed_;
};

}  // namespace dlmem::train
