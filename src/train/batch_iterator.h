// Walks a Dataset in mini-batches, in a shuffled order that is the same on every
// platform for the same seed and epoch.
//
//   BatchIterator it(data, {.batch_size = 64, .seed = 42, .drop_last = true});
//   Batch b;
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     it.reset(epoch);                 // a new order per epoch
//     while (it.next(b)) train_step(b.images, b.labels, b.size);
//   }
//
// Note [Portable shuffle]: std::shuffle and std::uniform_int_distribution are
// implementation-defined algorithms, so libstdc++, libc++ and MSVC give different
// orders for the same std::mt19937_64 seed. The order here is a plain Fisher-Yates
// (Knuth, TAOCP vol. 2, 3.4.2, Algorithm P) over std::mt19937_64 (whose output the
// standard fixes), with our own unbiased bounded draw, so it is identical everywhere.
// The epoch's generator is seeded with a SplitMix64 mix of (seed, epoch).
//
// The iterator keeps a reference to the dataset, which must outlive it.
#pragma once

#include <cstdint>
#include <vector>

#include "train/dataset.h"

namespace dlmem::train {

struct BatchOptions {
  int64_t batch_size = 32;  // > 0
  bool shuffle = true;      // false: 0, 1, 2, ... every epoch
  uint64_t seed = 0;
  bool drop_last = false;   // skip the final batch when it is smaller than batch_size
};

class BatchIterator {
 public:
  // Starts at epoch 0. Throws dlmem::Error for batch_size <= 0.
  BatchIterator(const Dataset& data, BatchOptions options);

  // Fills `batch` with the next mini-batch (reusing its vectors' memory) and returns
  // true, or returns false at the end of the epoch, leaving `batch` as it was.
  bool next(Batch& batch);

  // Starts epoch `epoch` from its first batch, with that epoch's order.
  void reset(int64_t epoch);

  int64_t batches_per_epoch() const;
  int64_t epoch() const { return epoch_; }
  // This epoch's sample order: a permutation of 0..size()-1.
  const std::vector<int64_t>& order() const { return order_; }
  const BatchOptions& options() const { return options_; }

 private:
  const Dataset& data_;
  BatchOptions options_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;  // index into order_ of the next sample
  std::vector<int64_t> order_;
};

}  // namespace dlmem::train
