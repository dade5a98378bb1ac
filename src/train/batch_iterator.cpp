#include "train/batch_iterator.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "util/error.h"
#include "util/random.h"

namespace dlmem::train {

namespace {


// Uniform in [0, bound), bound > 0, without modulo bias: reject the lowest
// 2^64 mod bound values so the rest split evenly into `bound` classes.
uint64_t draw_below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // == 2^64 mod bound
  for (;;) {
    const uint64_t x = rng();
    if (x >= threshold) return x % bound;
  }
}

}  // namespace

BatchIterator::BatchIterator(const Dataset& data, BatchOptions options)
    : data_(data), options_(options) {
  if (options_.batch_size <= 0)
    throw Error("the batch size must be positive, got ", options_.batch_size);
  reset(0);
}

void BatchIterator::reset(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  order_.resize(static_cast<size_t>(data_.size()));
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (!options_.shuffle || order_.size() < 2) return;
  std::mt19937_64 rng(splitmix64(splitmix64(options_.seed) ^ static_cast<uint64_t>(epoch)));
  for (size_t i = order_.size() - 1; i > 0; --i) {
    const auto j = static_cast<size_t>(draw_below(rng, i + 1));
    std::swap(order_[i], order_[j]);
  }
}

int64_t BatchIterator::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(order_.size()), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

bool BatchIterator::next(Batch& batch) {
  const int64_t n = static_cast<int64_t>(order_.size());
  const int64_t end = options_.drop_last ? batches_per_epoch() * options_.batch_size : n;
  if (position_ >= end) return false;
  const int64_t size = std::min(options_.batch_size, end - position_);
  const int64_t numel = data_.sample_numel();
  batch.size = size;
  batch.images.resize(static_cast<size_t>(size * numel));
  batch.labels.resize(static_cast<size_t>(size));
  for (int64_t k = 0; k < size; ++k)
    data_.get(order_[static_cast<size_t>(position_ + k)], batch.images.data() + k * numel,
              &batch.labels[static_cast<size_t>(k)]);
  position_ += size;
  return true;
}

}  // namespace dlmem::train
