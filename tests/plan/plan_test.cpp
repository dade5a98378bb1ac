// The default plan, the validator and the budget check.
#include <gtest/gtest.h>

#include "util/graphs.h"

#include "analysis/liveness.h"
#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "util/error.h"

namespace dlmem::plan {
namespace {

ir::Graph training(const char* model, int64_t batch, int64_t image = 0, int64_t seq = 0) {
  return test_util::training_graph(model, {.batch = batch, .image_size = image, .seq_len = seq});
}

TEST(DefaultPlan, ValidForEveryZooModel) {
  for (const auto& m : models::list_models()) {
    SCOPED_TRACE(m.name);
    const bool tokens = m.name.find("bert") == 0 || m.name.find("gpt2") == 0;
    ir::Graph g = training(m.name.c_str(), 2, 0, tokens ? 16 : 0);
    Plan p = planners::make_plan(g, {});
    EXPECT_NO_THROW(validate(g, p));
    EXPECT_GE(p.device_arena, p.stats.peak_device);
    EXPECT_LE(p.stats.peak_device, p.stats.no_reuse);
    EXPECT_LE(p.stats.lower_bound, p.stats.peak_device);
  }
}

TEST(DefaultPlan, PeakEqualsAnalysisMaxLive) {
  ir::Graph g = training("resnet18", 4, 64);
  analysis::Liveness L = analysis::compute_liveness(g, analysis::default_schedule(g));
  Plan p = planners::make_plan(g, {});
  EXPECT_EQ(p.stats.peak_device, analysis::memory_report(g, L).free_at_last_use);
}

TEST(Validate, CatchesReadAfterFree) {
  ir::Graph g = training("lenet5", 2);
  Plan p = planners::make_plan(g, {});
  // Move the first Free one instruction earlier than the read it follows.
  for (size_t i = 1; i < p.program.size(); ++i) {
    if (p.program[i].kind == InstrKind::free) {
      std::swap(p.program[i], p.program[i - 1]);
      break;
    }
  }
  compute_lifetimes(p);
  EXPECT_THROW(validate(g, p), InternalError);
}

TEST(Validate, CatchesOverlappingBuffers) {
  ir::Graph g = training("lenet5", 2);
  Plan p = planners::make_plan(g, {});
  // Two weights are resident together: put them at the same offset.
  std::vector<Buffer*> w;
  for (Buffer& b : p.buffers)
    if (b.role == ir::Role::weight) w.push_back(&b);
  ASSERT_GE(w.size(), 2u);
  w[1]->offset = w[0]->offset;
  EXPECT_THROW(validate(g, p), InternalError);
}

TEST(Validate, CatchesMisalignedAndOutOfArena) {
  ir::Graph g = training("lenet5", 2);
  Plan p = planners::make_plan(g, {});
  Plan q = p;
  q.buffers[0].offset += 4;
  EXPECT_THROW(validate(g, q), InternalError);
  Plan r = p;
  r.device_arena = r.device_arena / 2;
  EXPECT_THROW(validate(g, r), InternalError);
}

TEST(Validate, NodeNeverComputedOrTwice) {
  ir::Graph g = training("lenet5", 2);
  Plan p = planners::make_plan(g, {});
  Plan q = p;
  q.program.push_back(q.program.front());  // a forward node run twice, not as a recomputation
  compute_lifetimes(q);
  EXPECT_THROW(validate(g, q), InternalError);
}

TEST(Budget, TooSmallNamesTheSmallestReachable) {
  ir::Graph g = training("lenet5", 64);
  Plan full = planners::make_plan(g, {});
  try {
    planners::make_plan(g, {.budget = full.device_arena / 2});
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("smallest budget"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(planners::make_plan(g, {.budget = full.device_arena}));
}

TEST(Policies, UnknownPolicyListsKnownOnes) {
  ir::Graph g = training("lenet5", 2);
  try {
    planners::make_plan(g, {.policy = "magic"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("default"), std::string::npos);
  }
}

}  // namespace
}  // namespace dlmem::plan
