// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 28x28 grey images of clothing in ten
// classes, 60000 for training and 10000 for testing, read from the four gzipped IDX
// files that Debian's dataset-fashion-mnist package installs.
//
//   FashionMnist train(FashionMnist::default_dir(), Split::Train);
//   train.size();            // 60000
//   train.sample_shape();    // {1, 28, 28}
//   std::vector<float> x(train.sample_numel());
//   int32_t y = 0;
//   train.get(7, x.data(), &y);
//   FashionMnist::class_name(y);   // "Sneaker", ...
//
// Pixels are scaled to [0, 1] and then normalised with the training set's mean 0.2860
// and standard deviation 0.3530 (the statistics of all 60000 training images, the
// values torchvision users pass to transforms.Normalize), so a sample has roughly zero
// mean and unit variance. Both splits use the training statistics, as they should.
//
// The files are validated as they are read: the IDX magic numbers (2051 for images,
// 2049 for labels), 28x28 images, the same count in both files, the exact length the
// header declares (no short file, no trailing bytes), a gzip stream that is complete,
// and labels below 10. Each failure is a dlmem::Error naming the file and the fault.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "train/dataset.h"

namespace dlmem::train {

enum class Split { Train, Test };

class FashionMnist : public Dataset {
 public:
  static constexpr float kMean = 0.2860f;
  static constexpr float kStd = 0.3530f;
  static constexpr int64_t kRows = 28;
  static constexpr int64_t kCols = 28;
  static constexpr int64_t kClasses = 10;

  // Loads `split` from `dir` (e.g. default_dir()). Throws dlmem::Error when a file is
  // missing (with the package that installs it) or malformed.
  FashionMnist(std::string dir, Split split);

  // Where Debian's dataset-fashion-mnist package puts the files:
  // /usr/share/datasets/fashion-mnist.
  static std::string default_dir();
  // "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", ...
  static std::string images_file(Split split);
  static std::string labels_file(Split split);
  // "T-shirt/top", "Trouser", ..., "Ankle boot"; "?" outside [0, 10).
  static std::string_view class_name(int64_t label);

  int64_t size() const override { return count_; }
  std::vector<int64_t> sample_shape() const override { return {1, kRows, kCols}; }
  int64_t num_classes() const override { return kClasses; }
  void get(int64_t index, float* image_out, int32_t* label_out) const override;
  std::string name() const override;

  Split split() const { return split_; }
  // The label of sample `index`, without decoding its image.
  int32_t label(int64_t index) const;

 private:
  std::string dir_;
  Split split_;
  int64_t count_ = 0;
  std::vector<uint8_t> pixels_;  // count_ * 28 * 28, as stored in the file
  std::vector<uint8_t> labels_;  // count_
};

}  // namespace dlmem::train
