// The executor: predicted peak == measured peak, an enforced capacity, bound values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "runtime/backend.h"
#include "runtime/executor.h"
#include "train/init.h"
#include "train/trainer.h"
#include "util/error.h"

namespace dlmem::runtime {
namespace {

struct Model {
  const char* name;
  int64_t batch;
  int64_t image;
  int64_t seq;
};

class PeakAccounting : public ::testing::TestWithParam<Model> {};

TEST_P(PeakAccounting, MeasuredPeakEqualsPlannedPeak) {
  const Model m = GetParam();
  train::TrainConfig c;
  c.model = m.name;
  c.batch = m.batch;
  c.model_config.image_size = m.image;
  c.model_config.seq_len = m.seq;
  c.dataset = "synthetic";
  c.synthetic_size = 64;
  c.evaluate = false;
  c.epochs = 1;
  c.steps_per_epoch = 2;
  c.threads = 2;
  c.poison_freed = true;
  train::Trainer t(c);
  train::TrainResult r = t.run(nullptr);
  EXPECT_EQ(r.peak_device, t.plan().stats.peak_device);
  EXPECT_LE(r.peak_device, t.plan().device_arena);
  EXPECT_EQ(t.executor().stats().capacity, t.plan().device_arena);
  for (float l : r.losses) EXPECT_TRUE(std::isfinite(l));
  // Bytes by role at the peak add up to the peak.
  uint64_t sum = 0;
  for (uint64_t b : t.executor().stats().peak_by_role) sum += b;
  EXPECT_EQ(sum, r.peak_device);
}

INSTANTIATE_TEST_SUITE_P(Zoo, PeakAccounting,
                         ::testing::Values(Model{"lenet5", 8, 0, 0}, Model{"resnet18", 2, 32, 0},
                                           Model{"mobilenet_v2", 2, 32, 0}, Model{"lstm", 2, 0, 0}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(Executor, CapacityBelowTheArenaIsOutOfMemory) {
  ir::Graph g = models::build_model("lenet5", {.batch = 4});
  ir::build_training_graph(g, {});
  auto be = make_cpu_backend();
  plan::Plan p = planners::make_plan(g, {});
  try {
    Executor ex(g, p, *be, ExecOptions{.capacity = p.device_arena - 64});
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("needs"), std::string::npos) << m;
    EXPECT_NE(m.find("at least"), std::string::npos) << m;
  }
}

TEST(Executor, WriteAndReadCheckSizesAndBindings) {
  ir::Graph g = models::build_model("lenet5", {.batch = 2});
  ir::build_training_graph(g, {});
  auto be = make_cpu_backend();
  plan::Plan p = planners::make_plan(g, {});
  Executor ex(g, p, *be);
  const ir::ValueId w = g.find("fc2.bias");
  std::vector<float> ten(10, 1.5f), nine(9, 0.0f);
  ex.write_f32(w, ten);
  EXPECT_EQ(ex.read_f32(w), ten);
  EXPECT_THROW(ex.write_f32(w, nine), Error);
  plan::Plan q = p;
  q.placement.clear();
  EXPECT_THROW(Executor(g, q, *be), Error);
}

// The safety nets of the lossless tests, shown to catch what they are for (issue 22): a
// plan that frees an activation before its last reader is refused by plan::validate,
// and, run anyway (validation bypassed), by the executor at the read, naming the node
// and the buffer -- with or without freed memory poisoned -- instead of computing on
// dead bytes.
TEST(Executor, AReadAfterFreeIsRefusedByValidateAndByTheExecutor) {
  ir::Graph g = models::build_model("lenet5", {.batch = 4});
  ir::build_training_graph(g, {});
  auto be = make_cpu_backend({.threads = 1});
  attach_workspaces(g, *be);
  const plan::Plan good = planners::make_plan(g, {});
  // An activation buffer with two readers: its free moves to right after the first.
  plan::Plan bad = good;
  std::string reader;
  for (size_t f = 0; f < bad.program.size() && reader.empty(); ++f) {
    const plan::Instr fr = bad.program[f];
    if (fr.kind != plan::InstrKind::free || bad.buffers[static_cast<size_t>(fr.buffer)].role != ir::Role::activation) continue;
    std::vector<size_t> readers;
    for (size_t i = 0; i < f; ++i)
      if (bad.program[i].kind == plan::InstrKind::compute &&
          std::count(bad.program[i].inputs.begin(), bad.program[i].inputs.end(), fr.buffer))
        readers.push_back(i);
    if (readers.size() < 2) continue;
    reader = g.node(bad.program[readers[1]].node).name;  // the first to read it after the free
    bad.program.erase(bad.program.begin() + static_cast<std::ptrdiff_t>(f));
    bad.program.insert(bad.program.begin() + static_cast<std::ptrdiff_t>(readers[0]) + 1, fr);
  }
  ASSERT_FALSE(reader.empty()) << "no activation of LeNet-5 has two readers";
  EXPECT_THROW(plan::validate(g, bad), InternalError);
  for (bool poison : {false, true}) {
    Executor ex(g, bad, *be, ExecOptions{.poison_freed = poison});
    train::init_weights(ex, g, 42);
    try {
      ex.run_step(0);
      ADD_FAILURE() << "a step read a freed buffer (poison " << poison << ")";
    } catch (const InternalError& e) {
      EXPECT_NE(std::string(e.what()).find("not resident"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(reader), std::string::npos) << e.what();
    }
  }
  // The good plan runs, poisoned, to a finite loss.
  Executor ex(g, good, *be, ExecOptions{.poison_freed = true});
  train::init_weights(ex, g, 42);
  ex.run_step(0);
  EXPECT_TRUE(std::isfinite(ex.read_f32(g.loss)[0]));
}

TEST(CopyEngine, AsyncCopiesCompleteInOrderAndWaitsBlock) {
  auto be = make_cpu_backend();
  std::vector<float> src(1 << 20), mid(1 << 20), dst(1 << 20);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i);
  Event a = be->copy_async(Stream::d2h, mid.data(), src.data(), src.size() * 4);
  be->wait_event(Stream::h2d, a);  // the h2d copy starts after the d2h one
  Event b = be->copy_async(Stream::h2d, dst.data(), mid.data(), mid.size() * 4);
  be->wait_event(Stream::compute, b);
  EXPECT_TRUE(be->query(a));
  EXPECT_TRUE(be->query(b));
  EXPECT_EQ(dst, src);
}

}  // namespace
}  // namespace dlmem::runtime
