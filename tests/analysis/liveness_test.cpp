// Liveness, memory profile and lower bound on a graph small enough to check by hand.
#include <gtest/gtest.h>

#include "analysis/liveness.h"
#include "analysis/memory.h"
#include "ir/autodiff.h"
#include "ir/builder.h"
#include "models/zoo.h"
#include "util/error.h"

namespace dlmem::analysis {
namespace {

using ir::Builder;

// x[4,8] -> fc1 (w 8x8, b 8) -> relu -> reshape -> fc2 (w 3x8... ) -> loss
struct Tiny {
  ir::Graph g;
  ir::ValueId x, h, r, v, logits;
  Tiny() {
    Builder b(g);
    x = b.input("x", {4, 8});
    auto y = b.label("y", {4});
    h = b.linear(x, 8, "fc1");
    r = b.relu(h);
    v = b.reshape(r, {4, 8});
    logits = b.linear(v, 3, "fc2");
    b.softmax_xent(logits, y);
  }
};

TEST(Liveness, ForwardIntervalsAndViews) {
  Tiny t;
  Liveness L = compute_liveness(t.g, default_schedule(t.g));
  // nodes: 0 fc1, 1 relu, 2 reshape, 3 fc2, 4 loss
  EXPECT_EQ(L.first[static_cast<size_t>(t.x)], -1);  // preloaded
  EXPECT_EQ(L.last[static_cast<size_t>(t.x)], 0);
  EXPECT_EQ(L.first[static_cast<size_t>(t.h)], 0);
  EXPECT_EQ(L.last[static_cast<size_t>(t.h)], 1);
  // The reshape is a view: r and v are one storage, alive until fc2 reads v.
  EXPECT_EQ(L.storage[static_cast<size_t>(t.v)], t.r);
  EXPECT_EQ(L.last[static_cast<size_t>(t.r)], 3);
  // Logits are a graph output: kept to the end.
  EXPECT_EQ(L.last[static_cast<size_t>(t.logits)], L.steps);
  // Weights are persistent.
  EXPECT_EQ(L.last[static_cast<size_t>(t.g.find("fc1.weight"))], L.steps);
}

TEST(Liveness, RejectsInvalidSchedules) {
  Tiny t;
  EXPECT_THROW(compute_liveness(t.g, {1, 0, 2, 3, 4}), Error);  // relu before fc1
  EXPECT_THROW(compute_liveness(t.g, {0, 1, 2, 3}), Error);     // misses the loss
  EXPECT_THROW(compute_liveness(t.g, {0, 0, 1, 2, 3, 4}), Error);
}

TEST(MemoryProfile, ExactBytesByRole) {
  Tiny t;
  Liveness L = compute_liveness(t.g, default_schedule(t.g));
  MemoryProfile p = memory_profile(t.g, L);
  ASSERT_EQ(p.during.size(), 5u);
  const uint64_t weights = (8 * 8 + 8 + 3 * 8 + 3) * 4;
  const uint64_t act = 4 * 8 * 4;
  // While fc1 runs: weights, x, label, h.
  EXPECT_EQ(p.during[0][static_cast<size_t>(ir::Role::weight)], weights);
  EXPECT_EQ(p.during[0][static_cast<size_t>(ir::Role::input)], act);
  EXPECT_EQ(p.during[0][static_cast<size_t>(ir::Role::label)], 16u);
  EXPECT_EQ(p.during[0][static_cast<size_t>(ir::Role::activation)], act);
  // While relu runs: h and r (x is dead).
  EXPECT_EQ(p.during[1][static_cast<size_t>(ir::Role::input)], 0u);
  EXPECT_EQ(p.during[1][static_cast<size_t>(ir::Role::activation)], 2 * act);
  // While the loss runs: logits [4,3], loss [1], probs [4,3].
  EXPECT_EQ(p.during[4][static_cast<size_t>(ir::Role::activation)], (12 + 1 + 12) * 4u);
  EXPECT_EQ(p.peak, total(p.during[p.peak_step]));
}

TEST(MemoryReport, LowerBoundBelowPeakBelowNoFree) {
  for (const char* m : {"lenet5", "resnet18", "bert-base", "lstm"}) {
    models::ModelConfig c;
    c.batch = 4;
    if (std::string(m) == "resnet18") c.image_size = 64;
    if (std::string(m) == "bert-base") c.seq_len = 16;
    ir::Graph g = models::build_model(m, c);
    ir::build_training_graph(g, {});
    Liveness L = compute_liveness(g, default_schedule(g));
    MemoryReport r = memory_report(g, L);
    SCOPED_TRACE(m);
    EXPECT_GT(r.lower_bound, 0u);
    EXPECT_LE(r.lower_bound, r.free_at_last_use);
    EXPECT_LT(r.free_at_last_use, r.no_free);
    EXPECT_GT(r.stashed_activations, 0u);
    EXPECT_LE(r.stashed_activations, r.by_role[static_cast<size_t>(ir::Role::activation)]);
    EXPECT_EQ(r.parameters, g.parameter_count());
    EXPECT_GT(r.flops_backward, r.flops_forward);  // backward does about twice the forward
    EXPECT_FALSE(r.layers.empty());
  }
}

}  // namespace
}  // namespace dlmem::analysis
