// The compression pass: which stashes it finds and what their backward readers need,
// the plans it writes, and training with them -- bit-identical losses, weights and
// optimizer state to the default plan for every lossless policy (LeNet-5 on
// Fashion-MNIST and ResNet-18 at 32x32 through train::Trainer, a small VGG built here),
// in a device of exactly the plan's arena, with freed memory poisoned.
#include "planners/compress/compress.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "codec/codec.h"
#include "ir/autodiff.h"
#include "ir/builder.h"
#include "planners/planner.h"
#include "runtime/executor.h"
#include "train/init.h"
#include "train/trainer.h"
#include "util/error.h"

namespace dlmem::planners {
namespace {

// conv-ReLU-conv-ReLU-pool-conv-ReLU-pool-fc-ReLU-fc: ReLU outputs feeding
// convolutions (exact), feeding max-pooling (sign only) and feeding a linear layer.
ir::Graph vgg_small(runtime::Backend& be, int64_t batch = 2) {
  ir::Graph g;
  ir::Builder b(g);
  auto x = b.input("input", {batch, 3, 16, 16});
  auto y = b.label("label", {batch});
  x = b.relu(b.conv2d(x, 8, 3, {.padding = 1}, "conv1"));
  x = b.relu(b.conv2d(x, 8, 3, {.padding = 1}, "conv2"));
  x = b.max_pool(x, 2, 2);
  x = b.relu(b.conv2d(x, 16, 3, {.padding = 1}, "conv3"));
  x = b.max_pool(x, 2, 2);
  x = b.relu(b.linear(b.flatten(x), 32, "fc1"));
  b.softmax_xent(b.linear(x, 10, "fc2"), y);
  ir::build_training_graph(g, {});
  runtime::attach_workspaces(g, be);
  g.verify();
  return g;
}

int count_codec(const Plan& p, std::string_view codec) {
  int n = 0;
  for (const Instr& in : p.program) n += in.kind == InstrKind::compress && in.codec == codec;
  return n;
}

// The outputs of the forward nodes of one op kind, in order.
std::vector<ir::ValueId> outputs_of(const ir::Graph& g, ir::OpKind op) {
  std::vector<ir::ValueId> out;
  for (const ir::Node& n : g.nodes())
    if (n.op == op && n.phase == ir::Phase::forward) out.push_back(n.outputs[0]);
  return out;
}

const Stash* stash_of(const std::vector<Stash>& s, ir::ValueId v) {
  for (const Stash& x : s)
    if (x.value == v) return &x;
  return nullptr;
}

TEST(CompressPass, FindsStashesAndWhatTheirBackwardReads) {
  auto be = runtime::make_cpu_backend({.threads = 2});  // workspace sizes depend on the thread count
  ir::Graph g = vgg_small(*be);
  const Plan p = make_plan(g, {});
  const std::vector<Stash> s = find_stashes(g, p);
  for (const Stash& x : s) {
    EXPECT_LT(x.last_forward, x.first_backward);
    EXPECT_EQ(p.buffers[static_cast<size_t>(x.buffer)].value, x.value);
  }
  // A ReLU before a pool: only relu_bwd reads it (the pool's backward reads its index).
  const auto relus = outputs_of(g, ir::OpKind::relu);
  const auto pools = outputs_of(g, ir::OpKind::max_pool2d);
  ASSERT_EQ(relus.size(), 4u);
  ASSERT_EQ(pools.size(), 2u);
  const Stash* r1 = stash_of(s, relus[0]);  // feeds conv2
  const Stash* r2 = stash_of(s, relus[1]);  // feeds the first pool
  const Stash* r3 = stash_of(s, relus[2]);  // feeds the second pool
  const Stash* r4 = stash_of(s, relus[3]);  // feeds fc2
  ASSERT_TRUE(r1 && r2 && r3 && r4);
  EXPECT_EQ(r1->need, StashNeed::exact);
  EXPECT_EQ(r2->need, StashNeed::sign);
  EXPECT_EQ(r3->need, StashNeed::sign);
  EXPECT_EQ(r4->need, StashNeed::exact);
  for (const Stash* r : {r1, r2, r3, r4}) {
    EXPECT_TRUE(r->relu_like);
    EXPECT_TRUE(r->feature_map);
  }
  // The input image is not an activation; the pools' outputs are ReLU-like, read exactly.
  EXPECT_EQ(stash_of(s, g.find("input")), nullptr);
  const Stash* pool = stash_of(s, pools[0]);
  ASSERT_NE(pool, nullptr);
  EXPECT_TRUE(pool->relu_like);
  EXPECT_EQ(pool->need, StashNeed::exact);

  EXPECT_EQ(choose_codec(g, *r2, {}), "bitmask");
  EXPECT_EQ(choose_codec(g, *r1, {}), "");
  EXPECT_EQ(choose_codec(g, *r1, {.sparse = true}), "sparse");
  EXPECT_EQ(choose_codec(g, *r1, {.lossy = "bf16"}), "bf16");
  EXPECT_EQ(choose_codec(g, *r2, {.lossy = "bf16"}), "bitmask");
  EXPECT_THROW(choose_codec(g, *r1, {.lossy = "zvc"}), Error);
}

// Resident device bytes when the backward pass starts: every stash is live.
uint64_t resident_at_backward(const ir::Graph& g, const Plan& p) {
  int pos = 0;
  while (p.program[static_cast<size_t>(pos)].kind != InstrKind::compute ||
         g.node(p.program[static_cast<size_t>(pos)].node).phase == ir::Phase::forward)
    ++pos;
  uint64_t bytes = 0;
  for (const Buffer& b : p.buffers)
    if (b.space == Space::device && b.begin <= pos && pos < b.end) bytes += b.bytes;
  return bytes;
}

TEST(CompressPass, PlansAreValidAndEncodingsShrinkTheStash) {
  auto be = runtime::make_cpu_backend({.threads = 2});  // workspace sizes depend on the thread count
  ir::Graph g = vgg_small(*be, 32);
  const Plan ref = make_plan(g, {});
  const Plan p = make_plan(g, {.policy = "compress"});
  EXPECT_EQ(count_codec(p, "bitmask"), 2);
  EXPECT_EQ(count_codec(p, "sparse"), 0);
  // This small net peaks late in the backward pass, where the first layers' stashes are
  // decoded again, so the peak does not fall; the resident stash does, by 31/32 of the
  // two ReLU outputs before the pools.
  EXPECT_LE(p.stats.peak_device, ref.stats.peak_device);
  const auto relus = outputs_of(g, ir::OpKind::relu);
  const uint64_t binarised = g.value(relus[1]).type.bytes() + g.value(relus[2]).type.bytes();
  EXPECT_EQ(resident_at_backward(g, ref) - resident_at_backward(g, p), binarised - binarised / 32);
  // Every compress is followed by the free of its source; every decompress by the free
  // of its encoding; the encoding reserves the codec's bound.
  for (size_t i = 0; i < p.program.size(); ++i) {
    const Instr& in = p.program[i];
    if (in.kind != InstrKind::compress && in.kind != InstrKind::decompress) continue;
    ASSERT_LT(i + 1, p.program.size());
    EXPECT_EQ(p.program[i + 1].kind, InstrKind::free);
    EXPECT_EQ(p.program[i + 1].buffer, in.inputs[0]);
    if (in.kind == InstrKind::compress) {
      const Buffer& e = p.buffers[static_cast<size_t>(in.outputs[0])];
      EXPECT_EQ(e.bytes, codec::get(in.codec).bound(static_cast<uint64_t>(g.value(e.value).type.numel())));
    }
  }
  const Plan sp = make_plan(g, {.policy = "compress:sparse"});
  EXPECT_EQ(count_codec(sp, "bitmask"), 2);
  EXPECT_EQ(count_codec(sp, "sparse"), 4);  // inputs of conv2, conv3, fc1 (pool 2) and fc2
  const Plan lossy = make_plan(g, {.policy = "compress", .options = {.lossy = "fp16"}});
  EXPECT_GT(count_codec(lossy, "fp16"), 0);
  EXPECT_LT(lossy.stats.peak_device, p.stats.peak_device);
  EXPECT_LT(resident_at_backward(g, lossy), resident_at_backward(g, p));
  EXPECT_EQ(count_codec(make_plan(g, {.policy = "compress:fp8-e4m3"}), "fp8-e4m3"), count_codec(lossy, "fp16"));
}

TEST(CompressPass, TargetBelowReachIsOutOfMemoryWithTheSmallestBudget) {
  auto be = runtime::make_cpu_backend({.threads = 2});  // workspace sizes depend on the thread count
  ir::Graph g = vgg_small(*be);
  try {
    make_plan(g, {.policy = "compress", .budget = 1024});
    FAIL();
  } catch (const OutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("smallest budget"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_plan(g, {.policy = "compress+swap:none"}), Error);
}

// ---------------------------------------------------------------- training

struct Trained {
  std::vector<float> losses;
  std::map<std::string, std::vector<float>> state;
  runtime::ExecStats stats;
  PlanStats plan;
  uint64_t arena = 0;
};

// Trains a Builder graph for a few steps on fixed random data, in a device of exactly
// the plan's arena. `swap_codec`: compress_swaps() with that codec on the plan first.
Trained train_graph(const ir::Graph& g, const std::string& policy, int steps, const std::string& swap_codec = "") {
  auto be = runtime::make_cpu_backend({.threads = 2});
  const uint64_t arena = make_plan(g, {.policy = policy}).device_arena;
  Plan p = make_plan(g, {.policy = policy, .budget = arena});
  if (!swap_codec.empty()) {
    EXPECT_GT(compress_swaps(g, p, {.codec = swap_codec}), 0);
    place(p);  // the host buffers grew to the codec's bound
    validate(g, p);
  }
  runtime::Executor ex(g, p, *be, {.poison_freed = true});
  train::init_weights(ex, g, 7);
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  const ir::ValueId input = g.find("input"), label = g.find("label");
  Trained r;
  for (int s = 0; s < steps; ++s) {
    std::vector<float> x(static_cast<size_t>(g.value(input).type.numel()));
    for (float& v : x) v = normal(rng);
    std::vector<int32_t> y(static_cast<size_t>(g.value(label).type.numel()));
    for (int32_t& v : y) v = static_cast<int32_t>(rng() % 10);
    ex.write_f32(input, x);
    ex.write(label, std::as_bytes(std::span<const int32_t>(y)));
    ex.run_step(static_cast<uint64_t>(s));
    r.losses.push_back(ex.read_f32(g.loss)[0]);
  }
  for (const ir::Value& v : g.values())
    if (v.role == ir::Role::weight || v.role == ir::Role::optimizer_state) r.state[v.name] = ex.read_f32(v.id);
  r.stats = ex.stats();
  r.plan = p.stats;
  r.arena = p.device_arena;
  EXPECT_LE(r.stats.peak_device, arena);
  EXPECT_EQ(r.stats.peak_device, p.stats.peak_device);
  EXPECT_LE(r.stats.peak_device_real, r.stats.peak_device);
  EXPECT_LE(r.stats.encoded_real, r.stats.encoded_bound);
  return r;
}

TEST(CompressTrain, SmallVggIsBitIdenticalForEveryLosslessPolicy) {
  auto be = runtime::make_cpu_backend({.threads = 2});  // workspace sizes depend on the thread count
  const ir::Graph g = vgg_small(*be, 4);
  const Trained ref = train_graph(g, "default", 3);
  for (float l : ref.losses) ASSERT_TRUE(std::isfinite(l));
  for (const char* policy : {"compress", "compress:sparse"}) {
    SCOPED_TRACE(policy);
    const Trained r = train_graph(g, policy, 3);
    EXPECT_EQ(ref.losses, r.losses);
    EXPECT_TRUE(ref.state == r.state);
    EXPECT_GT(r.stats.encoded_raw, 0u);
    EXPECT_LT(r.stats.encoded_real, r.stats.encoded_raw);
  }
  // Lossy stashes train (finite losses, close to f32's) but are not bit-identical.
  const Trained fp16 = train_graph(g, "compress:fp16", 3);
  EXPECT_NE(ref.state, fp16.state);
  for (size_t i = 0; i < ref.losses.size(); ++i) EXPECT_NEAR(ref.losses[i], fp16.losses[i], 1e-2);
}

TEST(CompressTrain, SwappedBytesAreEncodedAndTrainingIsBitIdentical) {
  auto be = runtime::make_cpu_backend({.threads = 2});  // workspace sizes depend on the thread count
  const ir::Graph g = vgg_small(*be, 4);
  const Trained swap = train_graph(g, "swap:vdnn-all", 2);
  const Trained cswap = train_graph(g, "compress+swap:vdnn-all", 2);
  EXPECT_EQ(swap.losses, cswap.losses);
  EXPECT_TRUE(swap.state == cswap.state);
  EXPECT_GT(cswap.stats.encoded_raw, 0u);
  EXPECT_LT(cswap.stats.bytes_to_host, swap.stats.bytes_to_host);
  EXPECT_LT(cswap.stats.bytes_to_device, swap.stats.bytes_to_device);
  EXPECT_LE(cswap.plan.peak_device, swap.plan.peak_device);
  // lz4 and zstd take every swapped f32 tensor (zvc only ReLU-like ones).
  for (const char* codec : {"lz4", "zstd"}) {
    SCOPED_TRACE(codec);
    const Trained r = train_graph(g, "swap:vdnn-all", 2, codec);
    EXPECT_EQ(swap.losses, r.losses);
    EXPECT_TRUE(swap.state == r.state);
    EXPECT_LT(r.stats.bytes_to_host, swap.stats.bytes_to_host);
  }
}

TEST(CompressTrain, OverInPlaceSharingIsBitIdentical) {
  auto be = runtime::make_cpu_backend({.threads = 2});  // workspace sizes depend on the thread count
  const ir::Graph g = vgg_small(*be, 4);
  const Trained ref = train_graph(g, "default", 2);
  const Trained shared = train_graph(g, "share", 2);
  const Trained both = train_graph(g, "compress+share", 2);
  EXPECT_EQ(ref.losses, both.losses);
  EXPECT_TRUE(ref.state == both.state);
  EXPECT_GT(both.stats.encoded_raw, 0u);
  EXPECT_LE(both.plan.peak_device, shared.plan.peak_device);
}

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
    c.steps_per_epoch = 2;
    c.synthetic_size = 16;
  }
  return c;
}

void expect_same_training(const std::string& model, const std::vector<std::string>& policies) {
  train::Trainer ref(config(model, "default"));
  const train::TrainResult r = ref.run(nullptr);
  for (float l : r.losses) ASSERT_TRUE(std::isfinite(l));
  for (const std::string& policy : policies) {
    SCOPED_TRACE(policy);
    const uint64_t arena = make_plan(ref.graph(), {.policy = policy}).device_arena;
    train::TrainConfig c = config(model, policy);
    c.budget = std::to_string(arena);
    train::Trainer t(c);
    const train::TrainResult s = t.run(nullptr);
    const runtime::ExecStats& st = t.executor().stats();
    EXPECT_EQ(st.capacity, arena);
    EXPECT_LE(st.peak_device, arena);
    EXPECT_EQ(st.peak_device, t.plan().stats.peak_device);
    EXPECT_LE(st.peak_device_real, st.peak_device);
    EXPECT_LE(st.encoded_real, st.encoded_bound);
    EXPECT_GT(st.encoded_raw, st.encoded_real);  // something was encoded, and it shrank
    EXPECT_EQ(r.losses, s.losses);
    EXPECT_TRUE(ref.state() == t.state());
  }
}

// compress:sparse encodes a superset of what compress does (bitmasks and sparse
// stashes); LeNet-5 has no stash that only a ReLU backward reads (Caffe's LeNet-5 has
// no ReLU before its pools), ResNet-18 has one (the stem's ReLU before max-pooling).
TEST(CompressTrain, Lenet5FashionMnistIsBitIdentical) { expect_same_training("lenet5", {"compress:sparse"}); }

TEST(CompressTrain, Resnet18IsBitIdentical) { expect_same_training("resnet18", {"compress:sparse"}); }

}  // namespace
}  // namespace dlmem::planners
