// A swap plan run directly by the executor on the cpu backend -- the copy threads, the
// events and the waits of the swap path, without the trainer -- against the default
// plan: bit-identical results, and the executor's own accounting equal to the plan's.
// Light enough to run under ThreadSanitizer (the tsan preset). One compute thread: every
// kernel then runs on the thread that waited for the copies it reads, so TSan sees the
// whole happens-before chain (copy thread -> event -> kernel); OpenMP worker threads
// would hide it behind libgomp's uninstrumented barriers (tests/tsan.supp).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/compress/compress.h"
#include "planners/share/inplace.h"
#include "plan/placement.h"
#include "planners/swap/emit.h"
#include "planners/planner.h"
#include "planners/swap/swap.h"
#include "runtime/backend.h"
#include "runtime/executor.h"

namespace dlmem::planners {
namespace {

struct Outcome {
  std::vector<float> loss;
  std::vector<std::vector<float>> weights;
  uint64_t peak = 0, to_host = 0, to_device = 0;
};

Outcome run_plan(const ir::Graph& g, const Plan& p, runtime::Backend& be, int steps) {
  runtime::Executor ex(g, p, be, {.poison_freed = true});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  // Deterministic weights and one fixed batch, written before every step.
  for (const ir::Value& v : g.values())
    if (v.role == ir::Role::weight && ex.is_bound(v.id)) {
      std::vector<float> w(static_cast<size_t>(v.type.numel()));
      for (float& x : w) x = 0.1f * u(rng);
      ex.write_f32(v.id, w);
    }
  std::vector<float> image(static_cast<size_t>(g.value(g.find("input")).type.numel()));
  for (float& x : image) x = u(rng);
  std::vector<int32_t> label(static_cast<size_t>(g.value(g.find("label")).type.numel()));
  for (size_t i = 0; i < label.size(); ++i) label[i] = static_cast<int32_t>(i % 10);
  Outcome r;
  for (int s = 0; s < steps; ++s) {
    ex.write_f32(g.find("input"), image);
    ex.write(g.find("label"), std::as_bytes(std::span<const int32_t>(label)));
    ex.run_step(static_cast<uint64_t>(s));
    r.loss.push_back(ex.read_f32(g.loss)[0]);
  }
  for (const ir::Value& v : g.values())
    if (v.role == ir::Role::weight && ex.is_bound(v.id)) r.weights.push_back(ex.read_f32(v.id));
  r.peak = ex.stats().peak_device;
  r.to_host = ex.stats().bytes_to_host;
  r.to_device = ex.stats().bytes_to_device;
  return r;
}

// Every swappable buffer of `base` (written at least `min_writes` times: in-place
// chains) swapped across its longest gap with a compute inside, released right after
// its last access before the gap. The swap-in is issued at the use, or, `early`, right
// after the gap opens (then in flight across computes).
std::vector<swap::SwapItem> swap_longest_gaps(const ir::Graph& g, const Plan& base, bool early,
                                              size_t min_writes = 0) {
  const auto acc = swap::buffer_accesses(g, base);
  std::vector<swap::SwapItem> items;
  for (const Buffer& b : base.buffers) {
    const auto& a = acc[static_cast<size_t>(b.id)];
    if (!swap::swappable(base, b.id) || a.writes.size() < min_writes) continue;
    swap::SwapItem it;
    for (size_t k = 1; k < a.at.size(); ++k)
      if (a.at[k] - a.at[k - 1] >= 2 && (it.use < 0 || a.at[k] - a.at[k - 1] > it.use - it.last_before)) {
        it.last_before = a.at[k - 1];
        it.use = a.at[k];
      }
    if (it.use < 0) continue;
    it.buffer = b.id;
    it.bytes = b.bytes;
    it.out_after = a.last_write(it.last_before);
    it.free_after = it.last_before;
    it.trigger = early ? it.last_before + 1 : it.use;
    items.push_back(it);
  }
  return items;
}

TEST(SwapExecutor, VdnnPlanRunsBitIdenticalWithOverlappedCopies) {
  ir::Graph g = models::build_model("lenet5", {.batch = 16});
  ir::build_training_graph(g, {});
  auto be = runtime::make_cpu_backend({.threads = 1});
  runtime::attach_workspaces(g, *be);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));

  Plan base = make_default_plan(g, live);
  place(base);
  Plan swap = make_plan(g, {.policy = "swap:vdnn-all"});
  swap.policy = "swap:vdnn-all";
  place(swap);
  validate(g, base);
  validate(g, swap);
  ASSERT_GT(swap.stats.bytes_to_host, 0u);

  const int steps = 3;
  const Outcome a = run_plan(g, base, *be, steps), b = run_plan(g, swap, *be, steps);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(b.peak, swap.stats.peak_device);
  EXPECT_EQ(b.to_host, swap.stats.bytes_to_host * steps);
  EXPECT_EQ(b.to_device, swap.stats.bytes_to_device * steps);
}

// Swapping over the share policy's program: every buffer that holds an in-place chain
// (a convolution output overwritten by its ReLU, later by the gradient written over
// it) swapped across its longest gap. The copy leaves after the chain's last write
// before the gap, and in-place writes after it land in the swapped-in buffer; the
// executor gives the unmanaged run's numbers bit for bit, and counts what the plan says.
TEST(SwapExecutor, SwapsOfInPlaceChainsRunBitIdentical) {
  ir::Graph g = models::build_model("resnet20", {.batch = 4});
  ir::build_training_graph(g, {});
  auto be = runtime::make_cpu_backend({.threads = 1});
  runtime::attach_workspaces(g, *be);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));

  Plan base = make_default_plan(g, live);
  place(base);
  const Plan share = swap::share_base(g, live);
  ASSERT_GT(count_inplace(g, share).writes, 0);
  const std::vector<swap::SwapItem> items = swap_longest_gaps(g, share, /*early=*/false, /*min_writes=*/2);
  ASSERT_GT(items.size(), 0u);
  const auto acc = swap::buffer_accesses(g, share);
  int written_after_use = 0;
  for (const swap::SwapItem& it : items)
    written_after_use += acc[static_cast<size_t>(it.buffer)].last_write(static_cast<int>(live.steps)) >= it.use;
  EXPECT_GT(written_after_use, 0);  // some chains continue in the swapped-in buffer
  Plan swap = swap::emit_swap_plan(g, share, items);
  swap.policy = "swap:tensor";
  place(swap);
  validate(g, swap);
  check_contents(g, swap);
  EXPECT_GT(count_inplace(g, swap).writes, 0);
  EXPECT_LT(swap.stats.peak_device, base.stats.peak_device);

  const int steps = 2;
  const Outcome a = run_plan(g, base, *be, steps), b = run_plan(g, swap, *be, steps);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(b.peak, swap.stats.peak_device);
  EXPECT_EQ(b.to_host, swap.stats.bytes_to_host * steps);
  EXPECT_EQ(b.to_device, swap.stats.bytes_to_device * steps);

  // cDMA over it: a swapped shared buffer names the chain's first value (a convolution
  // or batch-norm output); the ReLU output it holds in the gap is what the codec sees.
  Plan coded = swap::emit_swap_plan(g, share, items);
  coded.policy = "compress+swap:tensor";
  EXPECT_GT(compress_swaps(g, coded), 0);
  place(coded);
  validate(g, coded);
  const Outcome c = run_plan(g, coded, *be, steps);
  EXPECT_EQ(a.loss, c.loss);
  EXPECT_EQ(a.weights, c.weights);
  EXPECT_LT(c.to_host, b.to_host);
}

// Swapping over a program whose stashes are encoded (compress+swap:tensor, Note
// [Swapping encoded stashes]): the encoded buffers (the bitmask of the stem's ReLU map,
// which max-pooling follows) are swapped like any other, the decoding waits for its
// swap-in, and the executor carries the encoded size across the copies. Every swappable
// buffer is swapped across its longest gap (the decoded copies have none here).
TEST(SwapExecutor, SwapsOfEncodedStashesRunBitIdentical) {
  ir::Graph g = models::build_model("resnet18", {.batch = 2, .image_size = 32, .num_classes = 10});
  ir::build_training_graph(g, {});
  auto be = runtime::make_cpu_backend({.threads = 1});
  runtime::attach_workspaces(g, *be);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));

  Plan base = make_default_plan(g, live);
  place(base);
  Plan encoded = swap::share_base(g, live);
  ASSERT_GT(encode_stashes(g, encoded, {}), 0);
  std::vector<bool> is_encoding(encoded.buffers.size(), false);
  for (const Instr& in : encoded.program)
    if (in.kind == InstrKind::compress) is_encoding[static_cast<size_t>(in.outputs.at(0))] = true;
  const std::vector<swap::SwapItem> items = swap_longest_gaps(g, encoded, /*early=*/true);
  int encodings = 0;
  for (const swap::SwapItem& it : items) encodings += is_encoding[static_cast<size_t>(it.buffer)];
  EXPECT_GT(encodings, 0);  // the stem's ReLU map before pooling is a bitmask
  Plan swap = swap::emit_swap_plan(g, encoded, items);
  swap.policy = "compress+swap:tensor";
  EXPECT_GT(compress_swaps(g, swap), 0);  // zvc on the swapped ReLU maps
  EXPECT_EQ(compress_swaps(g, swap), 0);  // and nothing twice
  for (const Instr& in : swap.program)
    if (in.kind == InstrKind::swap_out && !in.codec.empty()) {
      EXPECT_FALSE(is_encoding[static_cast<size_t>(in.inputs.at(0))]) << "an encoding was recoded";
    }
  place(swap);
  validate(g, swap);
  EXPECT_LT(swap.stats.peak_device, base.stats.peak_device);

  const int steps = 2;
  const Outcome a = run_plan(g, base, *be, steps), b = run_plan(g, swap, *be, steps);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(b.peak, swap.stats.peak_device);
}

// compress+swap:tensor's second schedule: weight gradients before data gradients, the
// stashes encoded and the backward's sign-only tails too (encode_sign_tails: a block
// input that the convolution's weight gradient has read and only a ReLU backward still
// reads, later, kept as a bitmask in between), then every buffer with a gap swapped.
// The program runs in another order than the reference, with the same numbers.
TEST(SwapExecutor, SignTailsUnderWeightGradientsFirstRunBitIdentical) {
  ir::Graph g = models::build_model("resnet18", {.batch = 2, .image_size = 32, .num_classes = 10});
  ir::build_training_graph(g, {});
  auto be = runtime::make_cpu_backend({.threads = 1});
  runtime::attach_workspaces(g, *be);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const analysis::Liveness wgf = analysis::compute_liveness(g, analysis::weight_gradients_first(g));
  ASSERT_NE(wgf.order, live.order);

  Plan base = make_default_plan(g, live);
  place(base);
  Plan encoded = swap::share_base(g, wgf);
  ASSERT_GT(encode_stashes(g, encoded, {}), 0);
  const int tails = encode_sign_tails(g, encoded);
  EXPECT_GT(tails, 0);
  EXPECT_EQ(encode_sign_tails(g, encoded), 0);  // encoded buffers are not encoded again
  const std::vector<swap::SwapItem> items = swap_longest_gaps(g, encoded, /*early=*/false);
  ASSERT_GT(items.size(), 0u);
  Plan swap = swap::emit_swap_plan(g, encoded, items);
  swap.policy = "compress+swap:tensor";
  compress_swaps(g, swap);
  place(swap);
  validate(g, swap);

  Plan tails_only = swap::share_base(g, wgf);
  encode_stashes(g, tails_only, {});
  encode_sign_tails(g, tails_only);
  place(tails_only);
  validate(g, tails_only);

  const int steps = 2;
  const Outcome a = run_plan(g, base, *be, steps), b = run_plan(g, swap, *be, steps),
                c = run_plan(g, tails_only, *be, steps);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(b.peak, swap.stats.peak_device);
  EXPECT_EQ(a.loss, c.loss);
  EXPECT_EQ(a.weights, c.weights);
  EXPECT_EQ(c.peak, tails_only.stats.peak_device);
}

}  // namespace
}  // namespace dlmem::planners
