// The dataset interface training reads from, and the batch it fills.
//
//   FashionMnist data(FashionMnist::default_dir(), Split::Train);   // fashion_mnist.h
//   std::vector<float> image(data.sample_numel());
//   int32_t label = 0;
//   data.get(0, image.data(), &label);                              // one sample
//   BatchIterator it(data, {.batch_size = 64, .seed = 1});           // batch_iterator.h
//
// A Dataset is immutable after construction: get() is const and may be called from
// several threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dlmem::train {

// A mini-batch: `size` samples, images in NCHW f32 (size * C * H * W floats, sample
// after sample) and one class label per sample.
struct Batch {
  std::vector<float> images;
  std::vector<int32_t> labels;
  int64_t size = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  // Number of samples.
  virtual int64_t size() const = 0;
  // The shape of one image: {C, H, W}.
  virtual std::vector<int64_t> sample_shape() const = 0;
  // Labels lie in [0, num_classes()).
  virtual int64_t num_classes() const = 0;
  // Writes sample `index` (0 <= index < size()) as sample_numel() floats, CHW, to
  // image_out and its label to *label_out. Throws dlmem::Error for an index out of range.
  virtual void get(int64_t index, float* image_out, int32_t* label_out) const = 0;
  // For logs and reports: "fashion-mnist/train", "synthetic(3x32x32, 10 classes)".
  virtual std::string name() const = 0;

  // C * H * W.
  int64_t sample_numel() const;

 protected:
  // Throws the out-of-range error get() promises.
  void check_index(int64_t index) const;
};

}  // namespace dlmem::train
