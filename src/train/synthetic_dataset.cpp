#include "train/synthetic_dataset.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "util/error.h"
#include "util/random.h"

namespace dlmem::train {

namespace {

class SplitMix {
 public:
  explicit SplitMix(uint64_t state) : state_(state) {}
  uint64_t next() { return splitmix64(state_++ * 0x9E3779B97F4A7C15ull); }
  // Uniform in [0, 1) with 24 random bits: exact in float.
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }

 private:
  uint64_t state_;
};

// Distinct streams for labels, class patterns and noise.
constexpr uint64_t kLabelStream = 0x4C4142454C530001ull;
constexpr uint64_t kClassStream = 0x434C415353000002ull;
constexpr uint64_t kNoiseStream = 0x4E4F495345000003ull;

}  // namespace

SyntheticDataset::SyntheticDataset(std::vector<int64_t> shape, int64_t num_classes,
                                   int64_t count, uint64_t seed)
    : shape_(std::move(shape)), num_classes_(num_classes), count_(count), seed_(seed) {
  if (shape_.size() != 3)
    throw Error("a synthetic dataset's sample shape must have 3 dimensions {C, H, W}, got ",
                shape_.size());
  int64_t numel = 1;
  for (int64_t d : shape_) {
    if (d <= 0)
      throw Error("a synthetic dataset's sample shape must be positive in every dimension, got ",
                  shape_[0], "x", shape_[1], "x", shape_[2]);
    if (d > (int64_t{1} << 31) / numel)
      throw Error("a synthetic dataset's sample shape ", shape_[0], "x", shape_[1], "x",
                  shape_[2], " is too large; keep C*H*W below 2^31");
    numel *= d;
  }
  if (num_classes_ < 1 || num_classes_ > std::numeric_limits<int32_t>::max())
    throw Error("a synthetic dataset needs between 1 and 2^31-1 classes, got ", num_classes_);
  if (count_ < 0) throw Error("a synthetic dataset's sample count cannot be negative, got ", count_);
}

void SyntheticDataset::get(int64_t index, float* image_out, int32_t* label_out) const {
  check_index(index);
  const auto i = static_cast<uint64_t>(index);
  const auto label =
      static_cast<int32_t>(splitmix64(splitmix64(seed_ ^ kLabelStream) ^ i) % static_cast<uint64_t>(num_classes_));

  constexpr float kTwoPi = 2.0f * std::numbers::pi_v<float>;
  SplitMix cls(splitmix64(seed_ ^ kClassStream) ^ static_cast<uint64_t>(label));
  const float fy = static_cast<float>(1 + cls.next() % 4);
  const float fx = static_cast<float>(1 + cls.next() % 4);
  const float phase_y = kTwoPi * cls.uniform();
  const float phase_x = kTwoPi * cls.uniform();

  const int64_t C = shape_[0], H = shape_[1], W = shape_[2];
  std::vector<float> row(static_cast<size_t>(H)), col(static_cast<size_t>(W));
  for (int64_t h = 0; h < H; ++h)
    row[h] = 2.0f * std::cos(kTwoPi * fy * static_cast<float>(h) / static_cast<float>(H) + phase_y);
  for (int64_t w = 0; w < W; ++w)
    col[w] = std::cos(kTwoPi * fx * static_cast<float>(w) / static_cast<float>(W) + phase_x);

  SplitMix noise(splitmix64(splitmix64(seed_ ^ kNoiseStream) ^ i));
  float* out = image_out;
  for (int64_t c = 0; c < C; ++c) {
    const float gain = (0.5f + cls.uniform()) * ((cls.next() & 1) != 0 ? 1.0f : -1.0f);
    for (int64_t h = 0; h < H; ++h) {
      const float r = gain * row[h];
      for (int64_t w = 0; w < W; ++w) {
        // Sum of four U[0,1) has mean 2 and variance 1/3: centre and scale to ~N(0, 1).
        const float z =
            (noise.uniform() + noise.uniform() + noise.uniform() + noise.uniform() - 2.0f) *
            1.7320508f;
        *out++ = r * col[w] + 0.5f * z;
      }
    }
  }
  *label_out = label;
}

std::string SyntheticDataset::name() const {
  return "synthetic(" + std::to_string(shape_[0]) + "x" + std::to_string(shape_[1]) + "x" +
         std::to_string(shape_[2]) + ", " + std::to_string(num_classes_) + " classes)";
}

}  // namespace dlmem::train
