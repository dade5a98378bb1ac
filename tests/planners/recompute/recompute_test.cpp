// Recomputation planners (src/plan/recompute): one parametrised test runs every
// planner on every model -- LeNet-5 on Fashion-MNIST, ResNet-18 and DenseNet-121 at
// 32x32 on synthetic data (through train::Trainer), and a transformer block with
// dropout built here -- and checks that the plan validates, fits its budget, and trains
// to bit-identical losses, weights and optimizer state with freed memory poisoned.
// Then: the emitter's accounting, the chain DP against an exhaustive search of its
// model, the MILP against greedy on a small graph, impossible budgets, and Chen's
// O(sqrt N) memory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <tuple>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "planners/planner.h"
#include "planners/recompute/chain.h"
#include "planners/recompute/greedy.h"
#include "planners/recompute/recompute.h"
#include "runtime/executor.h"
#include "train/init.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/cli_run.h"

namespace dlmem::planners::recompute {
namespace {

// ---------------------------------------------------------------------------------
// Models.

train::TrainConfig config(const std::string& model, const std::string& policy, uint64_t budget) {
  train::TrainConfig c;
  c.model = model;
  c.policy = policy;
  if (budget) c.budget = std::to_string(budget);
  c.epochs = 1;
  c.evaluate = false;
  c.threads = 2;
  c.poison_freed = true;
  if (model == "lenet5" || model.starts_with("mlp")) {
    c.dataset = "fashion-mnist";
    c.batch = model == "lenet5" ? 32 : 512;
    c.steps_per_epoch = 2;
  } else {
    c.dataset = "synthetic";
    c.model_config.image_size = 32;
    c.batch = 2;
    c.synthetic_size = 8;
    c.steps_per_epoch = 1;  // one step covers forward, backward and update; kernels dominate
  }
  return c;
}

// The training graph the trainer builds for a config (to choose budgets).
ir::Graph training_graph(const train::TrainConfig& c) {
  const session::Session s(train::session_options(c, true));
  return session::build_graph(s.options(), &s.backend());
}

// A pre-LN transformer block (GPT-2's layout) small enough for a unit test, with
// dropout after the embedding, on the attention probabilities and after both
// projections (p = 0.2), so recomputed dropout must replay its mask.
ir::Graph transformer_block() {
  const int64_t n = 2, t = 6, h = 16, heads = 2, vocab = 32;
  ir::Graph g;
  ir::Builder b(g, true, 0xb10c);
  const ir::ValueId ids = b.input("ids", {n, t}, ir::DType::i32);
  const ir::ValueId y = b.label("label", {n, t});
  const ir::ValueId pos = b.weight("wpe", {t, h}, ir::Init{ir::Init::Kind::normal, 0, 0.02f});
  ir::ValueId x = b.dropout(b.add(b.embedding(ids, vocab, h, "wte"), pos), 0.2);
  auto heads_of = [&](ir::ValueId v) { return b.transpose(b.reshape(v, {n, t, heads, h / heads}), {0, 2, 1, 3}); };
  {
    const ir::ValueId a = b.layer_norm(x, "ln1");
    const ir::ValueId q = heads_of(b.linear(a, h, "q")), k = heads_of(b.linear(a, h, "k")),
                      v = heads_of(b.linear(a, h, "v"));
    const ir::ValueId att = b.dropout(b.softmax(b.causal_mask(b.scale(b.matmul(q, k, false, true), 0.35))), 0.2);
    const ir::ValueId ctx = b.reshape(b.transpose(b.matmul(att, v), {0, 2, 1, 3}), {n, t, h});
    x = b.add(b.dropout(b.linear(ctx, h, "proj"), 0.2), x);
  }
  const ir::ValueId m = b.gelu(b.linear(b.layer_norm(x, "ln2"), 4 * h, "fc"));
  x = b.add(b.dropout(b.linear(m, h, "fc_proj"), 0.2), x);
  b.softmax_xent(b.linear(b.layer_norm(x, "lnf"), vocab, "head"), y);
  ir::build_training_graph(g, {.optimizer = ir::Optimizer::adam, .lr = 1e-2});
  return g;
}

// DenseNet-121's structure at a size a unit test trains in milliseconds: a stem, two
// dense blocks of three bottleneck layers (BN-ReLU-conv1x1-BN-ReLU-conv3x3, each
// concatenating every earlier feature map) with a transition (BN-ReLU-conv1x1-avgpool)
// between them, then BN-ReLU-global pool-linear. DenseNet-121 itself takes seconds per
// step on the cpu backend, and its memory is dominated by the same concatenations.
ir::Graph densenet_small() {
  const int64_t n = 2, growth = 6;
  ir::Graph g;
  ir::Builder b(g);
  const ir::ValueId img = b.input("input", {n, 3, 12, 12});
  const ir::ValueId y = b.label("label", {n});
  auto conv = [&](ir::ValueId v, int64_t out, int64_t k, const std::string& name) {
    return b.conv2d(v, out, k, {.padding = k / 2, .bias = false}, name);
  };
  auto bn_relu = [&](ir::ValueId v, const std::string& name) { return b.relu(b.batch_norm(v, name)); };
  ir::ValueId h = bn_relu(conv(img, 8, 3, "conv0"), "norm0");
  for (int block = 0; block < 2; ++block) {
    std::vector<ir::ValueId> feats = {h};
    for (int layer = 0; layer < 3; ++layer) {
      const std::string p = "block" + std::to_string(block) + ".layer" + std::to_string(layer) + ".";
      const ir::ValueId cat = feats.size() == 1 ? feats[0] : b.concat(feats, 1);
      const ir::ValueId z = conv(bn_relu(cat, p + "norm1"), 4 * growth, 1, p + "conv1");
      feats.push_back(conv(bn_relu(z, p + "norm2"), growth, 3, p + "conv2"));
    }
    h = b.concat(feats, 1);
    if (block == 0) {
      const int64_t c = b.shape(h)[1];
      h = b.avg_pool(conv(bn_relu(h, "transition.norm"), c / 2, 1, "transition.conv"), 2, 2);
    }
  }
  b.softmax_xent(b.linear(b.global_avg_pool(bn_relu(h, "norm5")), 10, "classifier"), y);
  ir::build_training_graph(g, {.optimizer = ir::Optimizer::sgd, .lr = 0.05, .momentum = 0.9});
  return g;
}

struct Outcome {
  std::vector<float> losses;
  std::map<std::string, std::vector<float>> state;
  uint64_t peak = 0;
};

// Three steps on the executor with deterministic inputs (token ids or images).
Outcome train_graph(const ir::Graph& g, const Plan& p) {
  auto be = runtime::make_cpu_backend({.threads = 2});
  runtime::Executor ex(g, p, *be, {.poison_freed = true});
  train::init_weights(ex, g, 3);
  std::mt19937 gen(9);
  Outcome o;
  for (uint64_t step = 0; step < 3; ++step) {
    for (const ir::Value& v : g.values()) {
      if ((v.role != ir::Role::input && v.role != ir::Role::label) || !ex.is_bound(v.id)) continue;
      const size_t n = static_cast<size_t>(v.type.numel());
      if (v.type.dtype == ir::DType::i32) {
        std::vector<int32_t> d(n);
        for (int32_t& x : d) x = static_cast<int32_t>(gen() % 10);  // < vocab and < classes
        ex.write(v.id, std::as_bytes(std::span<const int32_t>(d)));
      } else {
        std::vector<float> d(n);
        for (float& x : d) x = static_cast<float>(gen() % 2001) / 1000.0f - 1.0f;
        ex.write_f32(v.id, d);
      }
    }
    ex.run_step(step);
    o.losses.push_back(ex.read_f32(g.loss)[0]);
  }
  for (const ir::Value& v : g.values())
    if (v.role == ir::Role::weight || v.role == ir::Role::optimizer_state) o.state[v.name] = ex.read_f32(v.id);
  o.peak = ex.stats().peak_device;
  return o;
}

// ---------------------------------------------------------------------------------
// Budgets: between the smallest max-live greedy reaches and no recomputation.

struct Budgets {
  uint64_t tight = 0;  // halfway between greedy's minimum and the plain peak (max live)
  uint64_t loose = 0;  // the default plan's arena: always reachable
  uint64_t lower = 0;  // the graph's largest-op bound: never reachable
  bool range = false;  // recomputation can save a few percent at all
};

Budgets budgets_for(const ir::Graph& g) {
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const Problem pb = make_problem(g, live);
  const uint64_t plain = evaluate(pb, plain_sequence(pb)).peak;
  const uint64_t least = greedy_min_peak(pb);
  EXPECT_LE(least, plain);
  EXPECT_GE(least, pb.lower_bound);
  Budgets b;
  b.tight = least + (plain - least) / 2;
  b.loose = make_plan(g, {.policy = "default"}).device_arena;
  b.lower = pb.lower_bound;
  b.range = plain - least > plain / 50;
  return b;
}

// The plan a planner gives at the tighter budget it reaches (an OutOfMemory at the
// tight one must say what it reaches; placement may need a little more than max live).
// Where a planner does not reach the tight budget, the smallest it says it reaches (and
// halfway from there to the loose one) come before the loose budget, at which a planner
// recomputes nothing: a bit-identity check there would compare the default with itself.
std::pair<Plan, uint64_t> plan_within(const ir::Graph& g, const std::string& policy, const Budgets& b, double time_limit) {
  std::vector<uint64_t> budgets{b.tight};
  for (size_t k = 0; k < budgets.size(); ++k) {
    const uint64_t budget = budgets[k];
    try {
      return {make_plan(g, {.policy = policy, .budget = budget, .options = {.time_limit_s = time_limit}}), budget};
    } catch (const OutOfMemory& e) {
      EXPECT_NE(budget, b.loose) << policy << ": " << e.what();
      EXPECT_TRUE(std::string(e.what()).find("reach") != std::string::npos) << e.what();
      if (policy == "recompute:greedy" && b.range && k == 0)
        ADD_FAILURE() << "greedy must reach the midpoint of its own range: " << e.what();
      if (k == 0 && e.min_budget > budget && e.min_budget < b.loose) {
        budgets.push_back(e.min_budget);
        budgets.push_back(e.min_budget + (b.loose - e.min_budget) / 2);
      }
      if (budgets.back() != b.loose) budgets.push_back(b.loose);
    }
  }
  return {Plan{}, 0};
}

void expect_recompute_only_forward(const ir::Graph& g, const Plan& p) {
  for (const Instr& in : p.program)
    if (in.kind == InstrKind::compute && in.recompute) {
      EXPECT_EQ(g.node(in.node).phase, ir::Phase::forward);
    }
}

// ---------------------------------------------------------------------------------
// Every planner on every model: zoo models through train::Trainer, the transformer
// block and the small DenseNet on the executor. A plan that recomputes nothing is the
// default plan's order; it is validated, not trained again.

const char* const kPlanners[] = {"recompute:sqrt", "recompute:chain", "recompute:greedy", "recompute:milp"};

class RecomputeTrain : public ::testing::TestWithParam<std::string> {};

TEST_P(RecomputeTrain, EveryPlannerIsBitIdenticalWithinItsBudget) {
  const std::string model = GetParam();
  const train::TrainConfig base = config(model, "default", 0);
  train::Trainer ref(base);
  const train::TrainResult r = ref.run(nullptr);
  for (float l : r.losses) ASSERT_TRUE(std::isfinite(l));
  const ir::Graph g = training_graph(base);
  const Budgets b = budgets_for(g);
  int recomputing_runs = 0;

  auto check = [&](const std::string& policy, uint64_t budget) {
    SCOPED_TRACE(policy + " within " + std::to_string(budget));
    train::Trainer t(config(model, policy, budget));
    const train::TrainResult res = t.run(nullptr);
    const Plan& p = t.plan();
    validate(t.graph(), p);
    expect_recompute_only_forward(t.graph(), p);
    if (budget) {
      EXPECT_LE(p.device_arena, budget);
      EXPECT_LE(p.stats.peak_device, budget);
      EXPECT_LE(t.executor().stats().peak_device, budget);
    }
    EXPECT_EQ(t.executor().stats().peak_device, p.stats.peak_device);
    EXPECT_EQ(r.losses, res.losses);
    EXPECT_TRUE(ref.state() == t.state()) << "weights or optimizer state differ";
    if (p.stats.extra_flops > 0) ++recomputing_runs;
  };

  // Chen's sqrt(N) schedule (no budget) recomputes on every model with a cut.
  check("recompute:sqrt", 0);
  for (const char* policy : kPlanners) {
    if (std::string(policy) == "recompute:milp" && model != "lenet5") continue;  // small graphs only
    auto [p, budget] = plan_within(g, policy, b, 10);
    ASSERT_GT(budget, 0u) << policy;
    if (p.stats.extra_flops > 0) {
      check(policy, budget);
    } else {
      EXPECT_LE(p.device_arena, budget);
      EXPECT_EQ(p.stats.peak_device, make_plan(g, {.policy = "default"}).stats.peak_device) << policy;
    }
  }
  EXPECT_GT(recomputing_runs, b.range ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(Models, RecomputeTrain, ::testing::Values("lenet5", "resnet18"));

class RecomputeGraph : public ::testing::TestWithParam<std::string> {};

TEST_P(RecomputeGraph, EveryPlannerIsBitIdenticalWithinItsBudget) {
  auto be = runtime::make_cpu_backend({.threads = 2});
  ir::Graph g = GetParam() == "transformer" ? transformer_block() : densenet_small();
  runtime::attach_workspaces(g, *be);
  const Outcome ref = train_graph(g, make_plan(g, {.policy = "default"}));
  for (float l : ref.losses) ASSERT_TRUE(std::isfinite(l));
  EXPECT_NE(ref.losses.front(), ref.losses.back());
  const Budgets b = budgets_for(g);
  ASSERT_TRUE(b.range);
  bool dropout_recomputed = false;
  for (const char* policy : kPlanners) {
    if (std::string(policy) == "recompute:milp" && GetParam() != "transformer") continue;  // small graphs only
    SCOPED_TRACE(policy);
    auto [p, budget] = plan_within(g, policy, b, 2);
    ASSERT_GT(budget, 0u);
    // A managed run must manage something (issue 22): a plan that recomputes nothing
    // would compare the default with itself.
    EXPECT_GT(p.stats.extra_flops, 0) << "the plan within " << budget << " recomputes nothing";
    expect_recompute_only_forward(g, p);
    for (const Instr& in : p.program)
      dropout_recomputed = dropout_recomputed || (in.recompute && g.node(in.node).op == ir::OpKind::dropout);
    const Outcome o = train_graph(g, p);
    EXPECT_EQ(ref.losses, o.losses);
    EXPECT_TRUE(ref.state == o.state) << "weights or optimizer state differ";
    EXPECT_LE(o.peak, budget);
    EXPECT_EQ(o.peak, p.stats.peak_device);
  }
  if (GetParam() == "transformer") {
    EXPECT_TRUE(dropout_recomputed) << "no planner recomputed a dropout: the seed replay is untested";
  }
}

INSTANTIATE_TEST_SUITE_P(Graphs, RecomputeGraph, ::testing::Values("transformer", "densenet"));

// ---------------------------------------------------------------------------------
// The MILP on a chain small enough for CBC to prove optimality: the optimum is never
// above what greedy finds (greedy's schedule is one of the program's), the plan's
// extra FLOPs are the objective, and training with it is bit-identical.

TEST(RecomputeMilp, ProvesTheOptimumOfAnMlpChainAndTrainsBitIdentically) {
  const train::TrainConfig base = config("mlp-128-128-128-128", "default", 0);
  const ir::Graph g = training_graph(base);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const Problem pb = make_problem(g, live);
  const uint64_t plain = evaluate(pb, plain_sequence(pb)).peak, least = greedy_min_peak(pb);
  ASSERT_LT(least, plain);
  train::Trainer ref(base);
  const train::TrainResult r = ref.run(nullptr);
  for (double f : {0.2, 0.7}) {
    const uint64_t target = least + static_cast<uint64_t>(f * static_cast<double>(plain - least));
    SCOPED_TRACE("target " + std::to_string(target));
    Plan m = plan_milp(g, live, target, 30);
    compute_lifetimes(m);
    compute_stats(g, m);
    validate(g, m);
    ASSERT_EQ(m.stats.solver_status.rfind("optimal", 0), 0u) << m.stats.solver_status;
    EXPECT_LE(m.stats.peak_device, target);
    EXPECT_GT(m.stats.extra_flops, 0);
    EXPECT_NEAR(m.stats.solver_objective, m.stats.extra_flops, 100);  // ops of no FLOPs count 1
    EXPECT_NEAR(m.stats.solver_bound, m.stats.solver_objective, 1e-6 * m.stats.solver_objective + 1);
    const std::optional<Sequence> greedy = greedy_sequence(pb, target);
    ASSERT_TRUE(greedy);
    EXPECT_GE(evaluate(pb, *greedy).extra_flops, m.stats.extra_flops - 100);
  }
  // Train with the MILP's plan through the trainer (it plans again, within the budget).
  const uint64_t budget = make_plan(g, {.policy = "recompute:milp", .budget = (least + plain) / 2}).device_arena;
  train::Trainer t(config("mlp-128-128-128-128", "recompute:milp", std::max(budget, (least + plain) / 2)));
  const train::TrainResult res = t.run(nullptr);
  EXPECT_GT(t.plan().stats.extra_flops, 0);
  EXPECT_EQ(r.losses, res.losses);
  EXPECT_TRUE(ref.state() == t.state());
  EXPECT_LE(t.executor().stats().peak_device, t.plan().budget);
}

// ---------------------------------------------------------------------------------
// Impossible budgets name the smallest the policy reaches.

TEST(RecomputeBudget, ImpossibleBudgetNamesWhatThePolicyReaches) {
  ir::Graph g = transformer_block();
  auto be = runtime::make_cpu_backend();
  runtime::attach_workspaces(g, *be);
  const Budgets b = budgets_for(g);
  for (const char* policy : kPlanners) {
    SCOPED_TRACE(policy);
    try {
      make_plan(g, {.policy = policy, .budget = b.lower - 1, .options = {.time_limit_s = 3}});
      ADD_FAILURE() << "planned below the largest op's working set";
    } catch (const OutOfMemory& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(policy), std::string::npos) << m;
      if (std::string(policy) != "recompute:milp") {
        EXPECT_NE(m.find("smallest it reaches is"), std::string::npos) << m;
      }
    }
  }
}

TEST(RecomputeBudget, WithoutBudgetOnlySqrtRecomputes) {
  ir::Graph g = transformer_block();
  auto be = runtime::make_cpu_backend();
  runtime::attach_workspaces(g, *be);
  const Plan d = make_plan(g, {.policy = "default"});
  for (const char* policy : kPlanners) {
    const Plan p = make_plan(g, {.policy = policy});
    if (std::string(policy) == "recompute:sqrt") {
      EXPECT_GT(p.stats.extra_flops, 0);  // on a graph this small it need not save memory
    } else {
      EXPECT_EQ(p.stats.extra_flops, 0) << policy;
      EXPECT_EQ(p.stats.peak_device, d.stats.peak_device) << policy;
    }
  }
}

// ---------------------------------------------------------------------------------
// The command line: what `dlmem plan` prints for a recomputing plan, and the answer to
// an impossible budget (exit 2, one line naming the smallest budget that works).

TEST(RecomputeCli, PlanPrintsExtraFlopsAndImpossibleBudgetsTheSmallestReachable) {
  test_util::CliRun r = test_util::run_cli("plan --model resnet20 --batch 8 --policy recompute:greedy --budget 60%");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("extra FLOPs (recomputation)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("% of the step"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("budget"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("planned in"), std::string::npos) << r.out;
  r = test_util::run_cli("plan --model resnet20 --batch 8 --policy recompute:chain --budget 1MiB");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("smallest it reaches is"), std::string::npos) << r.out;
  r = test_util::run_cli("plan --model mlp-128-128-128-128 --batch 512 --policy recompute:milp --budget 97% --time-limit 10 --json");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"solver\""), std::string::npos) << r.out;
}

// ---------------------------------------------------------------------------------
// Chen et al.'s claim: with sqrt(N) segments, the activations an N-layer network keeps
// grow as sqrt(N). CIFAR ResNets of 4, 16 and 64 blocks per stage (16x the depth):
// the plain plan's activation bytes grow about 16x, sqrt(N)'s about 4x.

TEST(RecomputeSqrt, ActivationMemoryGrowsAsTheSquareRootOfDepth) {
  std::vector<double> plain_act, sqrt_act;
  for (int n : {4, 16, 64}) {
    models::ModelConfig mc;
    mc.batch = 4;
    ir::Graph g = models::build_model("resnet" + std::to_string(9 * n + 2), mc);
    ir::build_training_graph(g, {});
    const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
    const Problem pb = make_problem(g, live);
    Plan p = plan_sqrt(g, live, 0);
    compute_lifetimes(p);
    compute_stats(g, p);
    validate(g, p);
    plain_act.push_back(static_cast<double>(evaluate(pb, plain_sequence(pb)).peak - pb.preloaded_bytes));
    sqrt_act.push_back(static_cast<double>(p.stats.peak_device - pb.preloaded_bytes));
    EXPECT_GT(p.stats.extra_flops, 0);
    EXPECT_LT(p.stats.extra_flops, 0.5 * p.stats.flops);  // about one extra forward
  }
  EXPECT_GT(plain_act[2] / plain_act[0], 10.0);
  EXPECT_LT(sqrt_act[2] / sqrt_act[0], 6.0);
  EXPECT_LT(sqrt_act[2], plain_act[2] / 3);
}

// ---------------------------------------------------------------------------------
// The emitter: its plan of the plain order is the default plan; evaluate() agrees with
// the plan's own statistics for every planner's sequence.

TEST(RecomputeEmitter, PlainSequenceIsTheDefaultPlanAndEvaluateMatchesStats) {
  for (const std::string model : {"lenet5", "resnet18", "mobilenet_v2"}) {
    SCOPED_TRACE(model);
    const ir::Graph g = training_graph(config(model, "default", 0));
    const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
    const Problem pb = make_problem(g, live);
    const Plan d = make_default_plan(g, live);
    std::vector<Sequence> seqs = {plain_sequence(pb)};
    std::vector<bool> keep(pb.kind.size(), false);
    seqs.push_back(keep_sequence(pb, keep));  // keep nothing: everything rebuilt
    const uint64_t plain = evaluate(pb, seqs[0]).peak;
    EXPECT_EQ(plain, d.stats.peak_device);
    if (auto s = greedy_sequence(pb, greedy_min_peak(pb))) seqs.push_back(*s);
    for (const Sequence& s : seqs) {
      Plan p = emit_plan(pb, s);
      compute_lifetimes(p);
      compute_stats(g, p);
      validate(g, p);
      const SequenceCost c = evaluate(pb, s);
      EXPECT_EQ(c.peak, p.stats.peak_device);
      EXPECT_DOUBLE_EQ(c.extra_flops, p.stats.extra_flops);
    }
  }
}

TEST(RecomputeEmitter, ArticulationChainOfResnetHasABlockPerUnit) {
  train::TrainConfig c = config("resnet18", "default", 0);
  const ir::Graph g = training_graph(c);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const Problem pb = make_problem(g, live);
  const Chain ch = articulation_chain(pb);
  // Stem (conv, bn, relu, maxpool: a cut after each), 8 basic blocks, and the head
  // (global pool, fc, loss) -- whose fc and loss may not run twice.
  ASSERT_GE(ch.units.size(), 12u);
  EXPECT_FALSE(ch.units.back().recomputable);
  for (size_t u = 0; u + 1 < ch.units.size(); ++u) {
    EXPECT_TRUE(ch.units[u].recomputable);
    EXPECT_EQ(ch.units[u].fwd_end, ch.units[u + 1].fwd_begin);
    if (ch.units[u].bwd_end > ch.units[u].bwd_begin && ch.units[u + 1].bwd_end > ch.units[u + 1].bwd_begin) {
      EXPECT_EQ(ch.units[u + 1].bwd_end, ch.units[u].bwd_begin);  // reverse order, contiguous
    }
  }
}

// ---------------------------------------------------------------------------------
// The chain DP is optimal for its model (Note [Chain model]): an exhaustive search
// (Dijkstra over every state of the model: checkpoints, tapes, the next stage to
// differentiate, and what a persistent schedule may drop) finds the same least cost
// at every memory, and the DP's schedule replays within that memory at that cost.

struct ModelState {
  uint32_t ck = 0, tp = 0;
  int next = 0;        // the next stage to differentiate (-1: done)
  int last_f = -2;     // stage of the last operation when it was a forward, else -2
  int sweep = -1;      // a^sweep: made by the forward right before the one that read it
  auto operator<=>(const ModelState&) const = default;
};

int held(const std::vector<ChainStage>& st, const ModelState& s) {
  int m = 0;
  for (int j = 0; j < static_cast<int>(st.size()); ++j) {
    if (s.tp >> j & 1u) m += st[static_cast<size_t>(j)].tape;
    else if (s.ck >> j & 1u) m += st[static_cast<size_t>(j)].x;
    if (j > s.next) m += st[static_cast<size_t>(j)].wgrad;
  }
  if (s.next >= 0) m += st[static_cast<size_t>(s.next)].delta;
  return m;
}
bool available(const ModelState& s, int j) { return j < 0 || ((s.ck | s.tp) >> j & 1u); }

// Applies op to s within memory m; false when not allowed.
bool apply(const std::vector<ChainStage>& st, ModelState& s, const ChainOp& op, int m) {
  const int u = op.stage;
  const ChainStage& a = st[static_cast<size_t>(u)];
  const int h = held(st, s);
  switch (op.kind) {
    case ChainOpKind::forward:
      if (u > s.next || !available(s, u - 1) || available(s, u) || h + a.fwd > m) return false;
      s.ck |= 1u << u;
      s.sweep = s.last_f == u - 1 && u > 0 ? u - 1 : -1;
      s.last_f = u;
      return true;
    case ChainOpKind::forward_all:
      if (u > s.next || !available(s, u - 1) || (s.tp >> u & 1u)) return false;
      if (h - ((s.ck >> u & 1u) ? a.x : 0) + a.fwd_all > m) return false;
      s.tp |= 1u << u;
      s.ck &= ~(1u << u);
      s.last_f = -2;
      s.sweep = -1;
      return true;
    case ChainOpKind::backward:
      if (u != s.next || !(s.tp >> u & 1u) || !available(s, u - 1) || h - a.tape - a.delta + a.bwd > m) return false;
      s.tp &= ~(1u << u);
      s.next = u - 1;
      s.last_f = -2;
      s.sweep = -1;
      return true;
    case ChainOpKind::drop:
      // Persistent schedules: a checkpoint goes once the stages after it are
      // differentiated, or as a sweep's intermediate; never while its tape is held.
      if (!(s.ck >> u & 1u) || (s.tp >> (u + 1) & 1u) || (u < s.next && u != s.sweep)) return false;
      s.ck &= ~(1u << u);
      s.sweep = -1;
      return true;
  }
  return false;
}

double exhaustive(const std::vector<ChainStage>& st, int m) {
  const int l = static_cast<int>(st.size());
  std::map<ModelState, double> dist;
  using Item = std::pair<double, ModelState>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> q;
  const ModelState start{0, 0, l - 1, -2, -1};
  dist[start] = 0;
  q.push({0, start});
  while (!q.empty()) {
    auto [d, s] = q.top();
    q.pop();
    if (d > dist[s]) continue;
    if (s.next < 0) return d;
    auto relax = [&](const ModelState& n, double c) {
      auto it = dist.find(n);
      if (it == dist.end() || c < it->second) {
        dist[n] = c;
        q.push({c, n});
      }
    };
    for (int u = 0; u < l; ++u) {
      for (ChainOpKind k : {ChainOpKind::forward, ChainOpKind::forward_all, ChainOpKind::backward, ChainOpKind::drop}) {
        ModelState n = s;
        const bool fwd = k == ChainOpKind::forward || k == ChainOpKind::forward_all;
        if (apply(st, n, {k, u}, m)) relax(n, d + (fwd ? st[static_cast<size_t>(u)].cost : 0));
      }
    }
  }
  return ChainDP::kInfinity;
}

TEST(RecomputeChain, DynamicProgramMatchesExhaustiveSearch) {
  std::mt19937 gen(2016);
  auto r = [&](int lo, int hi) { return lo + static_cast<int>(gen() % static_cast<unsigned>(hi - lo + 1)); };
  int feasible = 0, with_recompute = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const int l = r(2, 5);
    std::vector<ChainStage> st(static_cast<size_t>(l));
    for (ChainStage& s : st) {
      s.cost = r(1, 9);
      s.x = r(1, 4);
      s.tape = s.x + r(0, 4);
      s.fwd = s.x + r(0, 2);
      s.fwd_all = s.tape + r(0, 2);
      s.delta = r(1, 4);
      s.wgrad = r(0, 2);
    }
    st.back().delta = 0;  // the loss's seed
    for (int i = 0; i < l; ++i) {
      ChainStage& s = st[static_cast<size_t>(i)];
      const int din = s.delta, dout = i > 0 ? st[static_cast<size_t>(i) - 1].delta : 0;
      s.bwd = s.tape + din + dout + s.wgrad + r(0, 2);
    }
    const int max_m = 40;
    const ChainDP dp(st, max_m);
    double total = 0;
    for (const ChainStage& s : st) total += s.cost;
    for (int m = 0; m <= max_m; ++m) {
      SCOPED_TRACE("trial " + std::to_string(trial) + " memory " + std::to_string(m));
      const double want = exhaustive(st, m);
      ASSERT_EQ(dp.cost(m), want);
      if (want >= ChainDP::kInfinity) {
        EXPECT_TRUE(dp.schedule(m).empty());
        continue;
      }
      ++feasible;
      with_recompute += want > total;
      // Replay the DP's schedule in the model.
      ModelState s{0, 0, l - 1, -2, -1};
      double cost = 0;
      for (const ChainOp& op : dp.schedule(m)) {
        ASSERT_TRUE(apply(st, s, op, m)) << "operation " << static_cast<int>(op.kind) << " on stage " << op.stage;
        if (op.kind == ChainOpKind::forward || op.kind == ChainOpKind::forward_all)
          cost += st[static_cast<size_t>(op.stage)].cost;
      }
      EXPECT_EQ(s.next, -1);
      EXPECT_EQ(cost, want);
    }
  }
  EXPECT_GT(feasible, 100);
  EXPECT_GT(with_recompute, 20);
}

}  // namespace
}  // namespace dlmem::planners::recompute
