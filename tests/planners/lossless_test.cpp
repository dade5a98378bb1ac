// Every registered lossless policy against the unmanaged run on the cpu backend
// (issue 22): LeNet-5 (batch 64) and ResNet-20 (batch 32) under SGD with momentum, freed
// memory poisoned, 2 steps; the losses and every weight and momentum tensor bit for bit
// (memcmp), the measured peak the planned one and within the budget -- 70% of the
// default plan's need, else 85%, else 100% (in-place writes and encodings still
// manage something there) -- and only where the plan manages something (else it
// would compare the default with itself); every policy must manage something on one of
// the two models.
#include <gtest/gtest.h>

#include "util/managed.h"

namespace dlmem::planners {
namespace {

TEST(Lossless, EveryRegisteredPolicyIsBitIdenticalToTheUnmanagedRun) {
  test_util::every_lossless_policy_is_bit_identical("cpu");
}

}  // namespace
}  // namespace dlmem::planners
