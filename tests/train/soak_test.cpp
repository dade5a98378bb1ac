// Soak (issue 22): 10,000 training steps under swap:tensor, whose swaps run on the copy
// engine's stream threads: the process's resident memory stays flat after warm-up (no
// allocation per step, no growing queue), every step moves the planned bytes, the
// measured peak stays the planned one, and the loss stays finite.
// DLMEM_SOAK_STEPS overrides the count (docs/benchmarks.md, "Reliability").
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "train/trainer.h"

namespace dlmem::train {
namespace {

uint64_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

TEST(Soak, TenThousandSwapStepsKeepResidentMemoryFlat) {
  const char* env = std::getenv("DLMEM_SOAK_STEPS");
  const int64_t steps = env ? std::atoll(env) : 10'000;
  TrainConfig c;
  c.model = "resnet20";
  c.batch = 2;
  c.model_config.image_size = 16;
  c.dataset = "synthetic";
  c.synthetic_size = 64;
  c.evaluate = false;
  c.threads = 1;
  c.policy = "swap:tensor";
  c.budget = "90%";
  Trainer t(c);
  const uint64_t per_step = t.plan().stats.bytes_to_host;
  ASSERT_GT(per_step, 0u) << "the plan swaps nothing: the soak would not exercise the copy threads";
  const int64_t warm = std::min<int64_t>(500, steps / 4);
  for (int64_t s = 0; s < warm; ++s) ASSERT_TRUE(std::isfinite(t.step())) << "step " << s;
  const uint64_t rss0 = resident_bytes();
  float loss = 0;
  for (int64_t s = warm; s < steps; ++s) {
    loss = t.step();
    if (!std::isfinite(loss)) FAIL() << "step " << s << ": loss " << loss;
  }
  const uint64_t rss1 = resident_bytes();
  const runtime::ExecStats& st = t.executor().stats();
  EXPECT_EQ(st.bytes_to_host, per_step * static_cast<uint64_t>(steps));
  EXPECT_EQ(st.peak_device, t.plan().stats.peak_device);
  // Flat: within 2 MiB over the steps after warm-up (the allocator's own caches).
  EXPECT_LT(rss1, rss0 + (2u << 20)) << "resident " << rss0 << " B after " << warm << " steps, " << rss1 << " B after "
                                     << steps;
  std::cout << "soak: " << steps << " steps, " << per_step << " B swapped out per step, resident " << rss0 << " -> "
            << rss1 << " B, last loss " << loss << "\n";
}

}  // namespace
}  // namespace dlmem::train
