// Training with the "share" policy (in-place writes + static placement) and with the
// pooled allocator gives bit-identical losses, weights and optimizer state to the
// default plan: LeNet-5 on Fashion-MNIST and ResNet-18 at 32x32 through train::Trainer,
// and a transformer block built here with the Builder. Freed memory is poisoned, the
// device arena is exactly the budget, and the measured peak stays within it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "planners/planner.h"
#include "planners/share/inplace.h"
#include "runtime/executor.h"
#include "train/init.h"
#include "train/trainer.h"

namespace dlmem::planners {
namespace {

train::TrainConfig config(const std::string& model, const std::string& policy) {
  train::TrainConfig c;
  c.model = model;
  c.policy = policy;
  c.epochs = 1;
  c.evaluate = false;
  c.threads = 2;
  c.poison_freed = true;
  if (model == "lenet5") {
    c.dataset = "fashion-mnist";
    c.batch = 32;
    c.steps_per_epoch = 4;
  } else {
    c.dataset = "synthetic";
    c.model_config.image_size = 32;
    c.batch = 2;
    c.steps_per_epoch = 3;
    c.synthetic_size = 16;
  }
  return c;
}

void expect_same_training(const std::string& model) {
  train::Trainer ref(config(model, "default"));
  const train::TrainResult r = ref.run(nullptr);
  for (float l : r.losses) ASSERT_TRUE(std::isfinite(l));

  // The shared plan, run in a device of exactly its own arena.
  const uint64_t arena = make_plan(ref.graph(), {.policy = "share"}).device_arena;
  train::TrainConfig c = config(model, "share");
  c.budget = std::to_string(arena);
  train::Trainer shared(c);
  const train::TrainResult s = shared.run(nullptr);
  EXPECT_EQ(shared.plan().device_arena, arena);
  EXPECT_GT(count_inplace(shared.graph(), shared.plan()).writes, 0);
  EXPECT_LE(shared.executor().stats().peak_device, arena);
  EXPECT_EQ(shared.executor().stats().capacity, arena);
  EXPECT_EQ(shared.executor().stats().peak_device, shared.plan().stats.peak_device);
  EXPECT_LE(shared.plan().stats.peak_device, ref.plan().stats.peak_device);
  EXPECT_EQ(r.losses, s.losses);
  EXPECT_EQ(ref.state(), shared.state());

  // The pooled allocator ignores the offsets and must not change a bit either.
  train::TrainConfig pc = config(model, "share");
  pc.allocator = "pool";
  train::Trainer pooled(pc);
  const train::TrainResult p = pooled.run(nullptr);
  ASSERT_NE(pooled.executor().pool(), nullptr);
  const runtime::PoolStats ps = pooled.executor().pool()->stats();
  EXPECT_EQ(ps.allocs, ps.frees + ps.blocks.current);
  EXPECT_GE(ps.allocated.peak, pooled.executor().stats().peak_device);
  EXPECT_LE(ps.allocated.peak, ps.reserved.peak);
  EXPECT_LE(ps.reserved.peak, ps.capacity);
  EXPECT_EQ(pooled.executor().stats().peak_device, pooled.plan().stats.peak_device);
  EXPECT_EQ(r.losses, p.losses);
  EXPECT_EQ(ref.state(), pooled.state());
}

TEST(ShareTrain, Lenet5FashionMnistIsBitIdentical) { expect_same_training("lenet5"); }

TEST(ShareTrain, Resnet18At32IsBitIdentical) { expect_same_training("resnet18"); }

// A pre-LN transformer decoder block (GPT-2's layout, src/models/transformer.cpp) small
// enough for a unit test: embedding + positions, causal self-attention with two heads,
// MLP with GELU, dropout everywhere, LM head.
ir::Graph transformer_block() {
  const int64_t n = 2, t = 8, h = 16, heads = 2, vocab = 40;
  ir::Graph g;
  ir::Builder b(g, true, 7);
  ir::ValueId ids = b.input("ids", {n, t}, ir::DType::i32);
  ir::ValueId y = b.label("label", {n, t});
  ir::ValueId x = b.embedding(ids, vocab, h, "wte");
  x = b.dropout(b.add(x, b.slice(b.weight("wpe.weight", {t, h}, ir::Init{ir::Init::Kind::normal, 0, 0.02f}), 0, 0, t)),
                0.1);
  auto split = [&](ir::ValueId v) { return b.transpose(b.reshape(v, {n, t, heads, h / heads}), {0, 2, 1, 3}); };
  {
    ir::ValueId a = b.layer_norm(x, "ln_1");
    ir::ValueId qkv = b.linear(a, 3 * h, "c_attn");
    ir::ValueId q = split(b.slice(qkv, 2, 0, h)), k = split(b.slice(qkv, 2, h, h)), v = split(b.slice(qkv, 2, 2 * h, h));
    ir::ValueId p = b.dropout(b.softmax(b.causal_mask(b.scale(b.matmul(q, k, false, true), 0.25))), 0.1);
    ir::ValueId ctx = b.reshape(b.transpose(b.matmul(p, v), {0, 2, 1, 3}), {n, t, h});
    x = b.add(b.dropout(b.linear(ctx, h, "c_proj"), 0.1), x);
  }
  ir::ValueId m = b.gelu(b.linear(b.layer_norm(x, "ln_2"), 4 * h, "c_fc"));
  x = b.add(b.dropout(b.linear(m, h, "mlp_proj"), 0.1), x);
  b.softmax_xent(b.linear(b.layer_norm(x, "ln_f"), vocab, "lm_head"), y);
  return g;
}

struct Outcome {
  std::vector<float> losses;
  std::map<std::string, std::vector<float>> state;
  uint64_t peak = 0;
};

Outcome train_block(const ir::Graph& g, const Plan& p, runtime::Backend& be, runtime::AllocatorKind alloc) {
  runtime::Executor ex(g, p, be,
                       {.capacity = alloc == runtime::AllocatorKind::pool ? p.stats.no_reuse + (4u << 20) : 0,
                        .poison_freed = true,
                        .allocator = alloc});
  train::init_weights(ex, g, 11);
  std::mt19937 gen(5);
  Outcome o;
  for (uint64_t step = 0; step < 4; ++step) {
    std::vector<int32_t> ids(16), next(16);
    for (size_t i = 0; i < ids.size(); ++i) {
      ids[i] = static_cast<int32_t>(gen() % 40);
      next[i] = static_cast<int32_t>((ids[i] + 3) % 40);
    }
    ex.write(g.find("ids"), std::as_bytes(std::span<const int32_t>(ids)));
    ex.write(g.find("label"), std::as_bytes(std::span<const int32_t>(next)));
    ex.run_step(step);
    o.losses.push_back(ex.read_f32(g.loss)[0]);
  }
  for (const ir::Value& v : g.values())
    if (v.role == ir::Role::weight || v.role == ir::Role::optimizer_state) o.state[v.name] = ex.read_f32(v.id);
  o.peak = ex.stats().peak_device;
  return o;
}

TEST(ShareTrain, TransformerBlockIsBitIdentical) {
  auto be = runtime::make_cpu_backend({.threads = 2});
  ir::Graph g = transformer_block();
  ir::build_training_graph(g, {.optimizer = ir::Optimizer::adam, .lr = 1e-2});
  runtime::attach_workspaces(g, *be);
  const Plan d = make_plan(g, {.policy = "default"});
  const Plan probe = make_plan(g, {.policy = "share"});
  const Plan s = make_plan(g, {.policy = "share", .budget = probe.device_arena});  // exactly its arena
  check_contents(g, s);
  EXPECT_GT(count_inplace(g, s).writes, 10);
  const Outcome ref = train_block(g, d, *be, runtime::AllocatorKind::planned);
  const Outcome shared = train_block(g, s, *be, runtime::AllocatorKind::planned);
  const Outcome pooled = train_block(g, s, *be, runtime::AllocatorKind::pool);
  for (float l : ref.losses) ASSERT_TRUE(std::isfinite(l));
  EXPECT_NE(ref.losses.front(), ref.losses.back());  // it trains
  EXPECT_EQ(ref.losses, shared.losses);
  EXPECT_EQ(ref.state, shared.state);
  EXPECT_EQ(ref.losses, pooled.losses);
  EXPECT_EQ(ref.state, pooled.state);
  EXPECT_LE(shared.peak, s.budget);
  EXPECT_EQ(shared.peak, s.stats.peak_device);
}

}  // namespace
}  // namespace dlmem::planners
