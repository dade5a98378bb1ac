// The in-place pass (src/plan/share/inplace.h): which outputs share their input's
// buffer on small hand-made graphs (chains, a second reader, views, preloaded and kept
// values), that check_contents catches an input overwritten while still needed, that
// a real model gets forward in-place, intra-layer reuse in the backward and in-place
// gradient accumulation, and, on random graphs, that the shared plan validates, reads
// only live values, and trains to bit-identical numbers on the cpu backend with freed
// memory poisoned -- with the static placement and with the pooled allocator.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "planners/share/inplace.h"
#include "runtime/executor.h"
#include "train/init.h"
#include "util/error.h"

namespace dlmem::planners {
namespace {

using ir::ValueId;

// The buffer that node `name`'s output 0 is written to.
BufferId out_buffer(const ir::Graph& g, const Plan& p, ValueId v) {
  for (const Instr& in : p.program)
    if (in.kind == InstrKind::compute)
      for (size_t k = 0; k < g.node(in.node).outputs.size(); ++k)
        if (g.node(in.node).outputs[k] == v) return in.outputs[k];
  return kNoBuffer;
}

Plan share_plan(const ir::Graph& g) {
  Plan p = make_plan(g, {.policy = "share"});
  check_contents(g, p);
  return p;
}

TEST(ShareInplace, ChainCollapsesIntoOneBuffer) {
  ir::Graph g;
  ir::Builder b(g);
  ValueId x = b.input("input", {4, 8});
  ValueId h = b.linear(x, 8, "fc1");
  ValueId r = b.relu(h);
  ValueId s = b.sigmoid(r);
  ValueId t = b.tanh(s);
  g.outputs.push_back(b.linear(t, 3, "fc2"));
  Plan p = share_plan(g);
  const BufferId hb = out_buffer(g, p, h);
  EXPECT_EQ(out_buffer(g, p, r), hb);
  EXPECT_EQ(out_buffer(g, p, s), hb);
  EXPECT_EQ(out_buffer(g, p, t), hb);
  EXPECT_EQ(count_inplace(g, p).writes, 3);
  EXPECT_EQ(count_inplace(g, p).bytes, 3u * 4 * 8 * 4);
  // The default plan writes nothing in place, and needs more memory in all.
  Plan d = make_plan(g, {.policy = "default"});
  EXPECT_EQ(count_inplace(g, d).writes, 0);
  EXPECT_EQ(d.stats.no_reuse, p.stats.no_reuse + 3u * 4 * 8 * 4);
}

TEST(ShareInplace, InputReadLaterIsNotOverwritten) {
  ir::Graph g;
  ir::Builder b(g);
  ValueId x = b.input("input", {4, 8});
  ValueId h = b.linear(x, 8, "fc1");
  ValueId r = b.relu(h);        // h is read again by the add: not in place
  ValueId u = b.add(h, r);      // both die here: u over h (the first listed pair)
  ValueId xr = b.relu(x);       // x is preloaded (an input): not in place
  ValueId v = b.add(u, xr);
  ValueId k = b.relu(v);        // a kept output: not in place
  g.outputs.push_back(k);
  Plan p = share_plan(g);
  const BufferId hb = out_buffer(g, p, h);
  EXPECT_NE(out_buffer(g, p, r), hb);
  EXPECT_EQ(out_buffer(g, p, u), hb);
  EXPECT_NE(out_buffer(g, p, xr), p.buffer_of(x));
  EXPECT_EQ(out_buffer(g, p, v), hb);
  EXPECT_NE(out_buffer(g, p, k), hb);
  EXPECT_TRUE(p.buffers[static_cast<size_t>(out_buffer(g, p, k))].persistent);
}

TEST(ShareInplace, SameBufferTwiceInOneNodeIsNotOverwritten) {
  ir::Graph g;
  ir::Builder b(g);
  ValueId x = b.input("input", {4, 8});
  ValueId h = b.linear(x, 8, "fc1");
  ValueId sq = b.mul(h, h);  // h read twice by one node
  g.outputs.push_back(b.linear(sq, 3, "fc2"));
  Plan p = share_plan(g);
  EXPECT_NE(out_buffer(g, p, sq), out_buffer(g, p, h));
  EXPECT_EQ(count_inplace(g, p).writes, 0);
}

TEST(ShareInplace, AViewReadLaterKeepsItsStorage) {
  ir::Graph g;
  ir::Builder b(g);
  ValueId x = b.input("input", {4, 8});
  ValueId h = b.linear(x, 8, "fc1");
  ValueId v = b.reshape(h, {32});  // shares h's storage
  ValueId r = b.relu(h);           // v is read later: h's storage is still needed
  ValueId s = b.sigmoid(v);        // the last reader of the storage: in place
  g.outputs.push_back(b.linear(b.add(b.reshape(s, {4, 8}), r), 3, "fc2"));
  Plan p = share_plan(g);
  const BufferId hb = out_buffer(g, p, h);
  EXPECT_EQ(p.buffer_of(v), hb);
  EXPECT_NE(out_buffer(g, p, r), hb);
  EXPECT_EQ(out_buffer(g, p, s), hb);
}

TEST(ShareInplace, CheckContentsCatchesAnInputOverwrittenWhileNeeded) {
  ir::Graph g;
  ir::Builder b(g);
  ValueId x = b.input("input", {4, 8});
  ValueId h = b.linear(x, 8, "fc1");
  ValueId r = b.relu(h);
  g.outputs.push_back(b.linear(b.add(h, r), 3, "fc2"));
  Plan p = make_plan(g, {.policy = "default"});
  EXPECT_NO_THROW(check_contents(g, p));
  // Force relu over h although the add reads h afterwards.
  for (Instr& in : p.program)
    if (in.kind == InstrKind::compute && g.node(in.node).op == ir::OpKind::relu) in.outputs[0] = in.inputs[0];
  try {
    check_contents(g, p);
    FAIL() << "an overwritten input was not noticed";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("reads 'fc1'"), std::string::npos) << e.what();
  }
}

TEST(ShareInplace, ResnetGetsForwardIntraLayerAndAccumulationWrites) {
  models::ModelConfig mc;
  mc.batch = 2;
  mc.image_size = 32;
  ir::Graph g = models::build_model("resnet18", mc);
  ir::build_training_graph(g, {});
  Plan p = share_plan(g);
  std::map<std::string, int> by_op;
  for (const Instr& in : p.program) {
    if (in.kind != InstrKind::compute || in.outputs.empty()) continue;
    const ir::Node& n = g.node(in.node);
    for (size_t k = 0; k < in.inputs.size(); ++k)
      if (in.outputs[0] == in.inputs[k] && !ir::op_def(n.op).view)
        by_op[std::string(ir::op_name(n.op)) + ":" + std::to_string(k)]++;
  }
  EXPECT_GT(by_op["relu:0"], 0);            // relu over the batch-norm output
  EXPECT_GT(by_op["add:0"], 0);             // residual adds and gradient accumulation
  EXPECT_GT(by_op["relu_bwd:0"] + by_op["relu_bwd:1"], 0);  // dx over dy or the stashed y
  EXPECT_GT(by_op["batch_norm_bwd:0"] + by_op["batch_norm_bwd:1"], 0);  // dx over x or dy
  // Sharing never needs more memory than the default plan.
  Plan d = make_plan(g, {.policy = "default"});
  EXPECT_LE(p.stats.peak_device, d.stats.peak_device);
  EXPECT_LT(p.stats.no_reuse, d.stats.no_reuse);
  EXPECT_NO_THROW(validate(g, p));
}

// ---------------------------------------------------------------- random graphs

ir::Graph random_graph(uint32_t seed) {
  std::mt19937 gen(seed);
  ir::Graph g;
  ir::Builder b(g, true, seed);
  const int64_t n = 4, d = 8;
  ValueId x = b.input("input", {n, d});
  ValueId y = b.label("label", {n});
  std::vector<ValueId> pool = {b.linear(x, d, "in")};
  auto pick = [&] { return pool[gen() % pool.size()]; };
  const int layers = 6 + static_cast<int>(gen() % 12);
  for (int i = 0; i < layers; ++i) {
    const std::string id = std::to_string(i);
    const ValueId a = pick();
    ValueId out;
    switch (gen() % 13) {
      case 0: out = b.relu(a); break;
      case 1: out = b.tanh(a); break;
      case 2: out = b.sigmoid(a); break;
      case 3: out = b.gelu(a); break;
      case 4: out = b.add(a, pick()); break;
      case 5: out = b.mul(a, pick()); break;
      case 6: out = b.scale(a, 0.5); break;
      case 7: out = b.dropout(a, 0.25); break;
      case 8: out = b.softmax(a); break;
      case 9: out = b.linear(a, d, "fc" + id); break;
      case 10: out = b.reshape(b.relu6(b.reshape(a, {n * d})), {n, d}); break;
      case 11: out = b.layer_norm(a, "ln" + id); break;
      default: out = b.batch_norm(a, "bn" + id); break;
    }
    pool.push_back(out);
  }
  ValueId h = b.add(pool.back(), pick());
  b.softmax_xent(b.linear(h, 5, "head"), y);
  return g;
}

struct Outcome {
  std::vector<float> losses;
  std::map<std::string, std::vector<float>> state;
};

Outcome train_steps(const ir::Graph& g, const Plan& p, runtime::Backend& be, runtime::AllocatorKind alloc,
                    uint32_t seed) {
  runtime::Executor ex(g, p, be,
                       {.capacity = alloc == runtime::AllocatorKind::pool ? p.stats.no_reuse + (4u << 20) : 0,
                        .poison_freed = true,
                        .allocator = alloc});
  train::init_weights(ex, g, seed);
  std::mt19937 gen(seed);
  Outcome o;
  for (uint64_t step = 0; step < 3; ++step) {
    std::vector<float> in(static_cast<size_t>(g.value(g.find("input")).type.numel()));
    for (float& v : in) v = static_cast<float>(gen() % 2001) / 1000.0f - 1.0f;
    std::vector<int32_t> lab(4);
    for (int32_t& l : lab) l = static_cast<int32_t>(gen() % 5);
    ex.write_f32(g.find("input"), in);
    ex.write(g.find("label"), std::as_bytes(std::span<const int32_t>(lab)));
    ex.run_step(step);
    o.losses.push_back(ex.read_f32(g.loss)[0]);
  }
  for (const ir::Value& v : g.values())
    if (v.role == ir::Role::weight || v.role == ir::Role::optimizer_state) o.state[v.name] = ex.read_f32(v.id);
  return o;
}

TEST(ShareInplace, RandomGraphsTrainBitIdenticallyWithPoisonedFrees) {
  auto be = runtime::make_cpu_backend({.threads = 2});
  int writes = 0;
  for (uint32_t seed = 1; seed <= 25; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ir::Graph g = random_graph(seed);
    ir::build_training_graph(g, {.optimizer = ir::Optimizer::sgd, .lr = 0.05, .momentum = 0.9});
    runtime::attach_workspaces(g, *be);
    const Plan d = make_plan(g, {.policy = "default"});
    const Plan s = make_plan(g, {.policy = "share"});
    ASSERT_NO_THROW(validate(g, s));
    ASSERT_NO_THROW(check_contents(g, s));
    EXPECT_LE(s.stats.peak_device, d.stats.peak_device);
    writes += count_inplace(g, s).writes;
    const Outcome ref = train_steps(g, d, *be, runtime::AllocatorKind::planned, seed);
    const Outcome shared = train_steps(g, s, *be, runtime::AllocatorKind::planned, seed);
    const Outcome pooled = train_steps(g, s, *be, runtime::AllocatorKind::pool, seed);
    for (float l : ref.losses) ASSERT_TRUE(std::isfinite(l));
    EXPECT_EQ(ref.losses, shared.losses);
    EXPECT_EQ(ref.state, shared.state);
    EXPECT_EQ(ref.losses, pooled.losses);
    EXPECT_EQ(ref.state, pooled.state);
  }
  EXPECT_GT(writes, 100);  // the comparison is not vacuous
}

}  // namespace
}  // namespace dlmem::planners
