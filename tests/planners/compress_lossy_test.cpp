// Lossy stashes (opt-in): LeNet-5 trained on Fashion-MNIST with its feature maps
// stashed in fp16 (Gist's delayed precision reduction) reaches the test accuracy of the
// f32 run within 0.5 percentage points. The issue asks for two epochs; two full
// trainings of two epochs take about 7 CPU-minutes here, so the test trains 200 steps
// of batch 64 (a fifth of an epoch) each and evaluates on the whole test split; the
// two-epoch figures (fp16, bf16, fp8-e4m3) are measured with `dlmem train` and recorded
// in docs/benchmarks.md (issue 7). Kept in its own suite, CompressLossy.
#include <gtest/gtest.h>

#include <cmath>

#include "train/trainer.h"

namespace dlmem::planners {
namespace {

train::TrainResult train_lenet5(const std::string& policy) {
  train::TrainConfig c;
  c.model = "lenet5";
  c.dataset = "fashion-mnist";
  c.policy = policy;
  c.epochs = 1;
  c.steps_per_epoch = 200;
  c.batch = 64;
  c.threads = 2;
  c.optim.optimizer = ir::Optimizer::adam;  // as `dlmem train` does
  c.optim.lr = 1e-3;
  train::Trainer t(c);
  return t.run(nullptr);
}

TEST(CompressLossy, Lenet5Fp16StashesWithinHalfAPointOfF32) {
  const train::TrainResult f32 = train_lenet5("default");
  const train::TrainResult f16 = train_lenet5("compress:fp16");
  ASSERT_EQ(f32.epochs.size(), 1u);
  ASSERT_EQ(f16.epochs.size(), 1u);
  const double a = f32.epochs.back().test_accuracy, b = f16.epochs.back().test_accuracy;
  RecordProperty("f32_accuracy", std::to_string(a));
  RecordProperty("fp16_accuracy", std::to_string(b));
  EXPECT_GT(a, 0.80);
  EXPECT_LE(std::abs(a - b), 0.005) << "f32 " << a << ", fp16 stashes " << b;
  EXPECT_NE(f32.losses, f16.losses);  // the stashes really were narrowed
}

}  // namespace
}  // namespace dlmem::planners
