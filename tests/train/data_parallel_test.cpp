// Data-parallel training (ir/parallel.h, runtime/comm.h) with ranks as threads: every
// ZeRO stage gives the same losses and weights bit for bit (the same rank-order sums),
// matches one process on the same global batch to rounding, keeps the weights equal
// on every rank, and cuts what each stage promises -- counted by the executor, equal to
// the plan. MPI across processes is tested by tests/dist/mpi_test.py (ctest: mpi).
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "runtime/comm.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/temp_dir.h"

namespace dlmem::train {
namespace {

struct RankRun {
  std::vector<float> losses;
  std::map<std::string, std::vector<float>> state;
  uint64_t planned = 0, measured = 0;
  analysis::RoleBytes planned_roles{}, measured_roles{};
  int buckets = 0;  // all-reduces of more than one gradient
};

TrainConfig config(const std::string& model, const std::string& optimizer) {
  TrainConfig c;
  c.model = model;
  c.dataset = "synthetic";
  c.synthetic_size = 256;
  c.batch = 16;
  c.evaluate = false;
  c.threads = 1;
  c.seed = 5;
  c.optim.optimizer = optimizer == "adam" ? ir::Optimizer::adam : ir::Optimizer::sgd;
  c.optim.lr = optimizer == "adam" ? 1e-3 : 0.05;
  return c;
}

std::vector<RankRun> train_ranks(TrainConfig c, int ranks, int zero, int steps) {
  const auto comms = runtime::make_thread_comms(ranks);
  std::vector<RankRun> out(static_cast<size_t>(ranks));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      TrainConfig cr = c;
      cr.comm = comms[static_cast<size_t>(r)].get();
      cr.zero = zero;
      try {
        Trainer t(cr);
        const TrainResult res = t.run(nullptr, 1, steps);
        RankRun& o = out[static_cast<size_t>(r)];
        o.losses = res.losses;
        o.state = t.state();
        o.planned = res.planned_peak;
        o.measured = res.peak_device;
        o.planned_roles = t.plan().stats.peak_by_role;
        o.measured_roles = t.executor().stats().peak_by_role;
        for (const ir::Node& n : t.graph().nodes()) o.buckets += n.op == ir::OpKind::allreduce && n.inputs.size() > 1;
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
        runtime::abort_thread_group(*cr.comm, "rank " + std::to_string(r) + " failed");
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

RankRun train_single(const TrainConfig& c, int steps) {
  Trainer t(c);
  const TrainResult res = t.run(nullptr, 1, steps);
  RankRun o;
  o.losses = res.losses;
  o.state = t.state();
  o.planned = res.planned_peak;
  o.measured = res.peak_device;
  o.measured_roles = t.executor().stats().peak_by_role;
  return o;
}

uint64_t role(const analysis::RoleBytes& b, ir::Role r) { return b[static_cast<size_t>(r)]; }

// The largest difference relative to the tensor's largest magnitude (a tensor whose
// gradient is ~0, such as attention's key bias under Adam, moves by rounding alone).
double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, scale = 1e-6;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return m / scale;
}

class ZeroStages : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(ZeroStages, EveryStageTrainsAlikeAndCutsWhatItPromises) {
  const auto [model, optimizer] = GetParam();
  const TrainConfig c = config(model, optimizer);
  const int steps = 4;
  const RankRun single = train_single(c, steps);
  std::vector<std::vector<RankRun>> runs;
  for (int zero = 0; zero <= 3; ++zero) runs.push_back(train_ranks(c, 2, zero, steps));
  for (int zero = 0; zero <= 3; ++zero) {
    SCOPED_TRACE("ZeRO " + std::to_string(zero));
    const std::vector<RankRun>& r = runs[static_cast<size_t>(zero)];
    // The same rank-order sums in every stage: bit-identical losses and weights.
    EXPECT_EQ(r[0].losses, runs[0][0].losses);
    for (const auto& [name, v] : runs[0][0].state) {
      const bool running_stat = name.find("running") != std::string::npos;
      if (running_stat) continue;  // per rank, as DDP's (Note [Data parallelism])
      EXPECT_EQ(r[0].state.at(name), v) << name;
      EXPECT_EQ(r[1].state.at(name), r[0].state.at(name)) << name << ": ranks disagree";
    }
    // One process on the same global batch sums in another order: rounding apart, the same.
    ASSERT_EQ(r[0].losses.size(), single.losses.size());
    for (size_t s = 0; s < single.losses.size(); ++s)
      EXPECT_NEAR(r[0].losses[s], single.losses[s], 1e-5 * std::abs(single.losses[s])) << "step " << s;
    // (Adam divides by the gradient's own scale: a tensor whose true gradient is zero,
    // attention's key bias, moves by +-lr on rounding alone; its losses are compared.)
    for (const auto& [name, v] : single.state) {
      if (name.find("running") != std::string::npos || optimizer == "adam") continue;
      EXPECT_LT(max_rel(r[0].state.at(name), v), 1e-3) << name;
    }
    // What the executor counted is what the plan said, on every rank.
    for (const RankRun& k : r) {
      EXPECT_EQ(k.measured, k.planned);
      EXPECT_EQ(k.measured_roles, k.planned_roles);
    }
  }
  // Gradients all-reduced one by one instead of in buckets: the same element-wise sums,
  // the same bits.
  TrainConfig per_tensor = c;
  per_tensor.bucket_mib = 0;
  const std::vector<RankRun> unbucketed = train_ranks(per_tensor, 2, 0, steps);
  EXPECT_EQ(unbucketed[0].losses, runs[0][0].losses);
  EXPECT_EQ(unbucketed[0].state, runs[0][0].state);
  EXPECT_EQ(unbucketed[0].measured, unbucketed[0].planned);
  EXPECT_EQ(unbucketed[0].buckets, 0);
  // Small buckets (50 KiB): several per step, flushed when full and before a reader,
  // the same bits again.
  TrainConfig small = c;
  small.bucket_mib = 0.05;
  const std::vector<RankRun> small_buckets = train_ranks(small, 2, 0, steps);
  EXPECT_GT(small_buckets[0].buckets, runs[0][0].buckets);
  EXPECT_EQ(small_buckets[0].losses, runs[0][0].losses);
  EXPECT_EQ(small_buckets[0].state, runs[0][0].state);
  EXPECT_EQ(small_buckets[0].measured, small_buckets[0].planned);
  // ZeRO 1 halves the optimizer state (2 ranks; shards round up), ZeRO 3 the trainable
  // weights, ZeRO 2 holds less weight gradient at the peak than ZeRO 1.
  const auto state0 = role(runs[0][0].measured_roles, ir::Role::optimizer_state);
  EXPECT_EQ(state0, role(single.measured_roles, ir::Role::optimizer_state));
  for (int zero = 1; zero <= 3; ++zero) {
    const auto s = role(runs[static_cast<size_t>(zero)][0].measured_roles, ir::Role::optimizer_state);
    EXPECT_LE(s, state0 / 2 + 64 * 16) << "ZeRO " << zero;
    EXPECT_GE(s, state0 / 2) << "ZeRO " << zero;
  }
  EXPECT_LT(role(runs[2][0].measured_roles, ir::Role::weight_gradient),
            role(runs[1][0].measured_roles, ir::Role::weight_gradient));
  EXPECT_LT(role(runs[3][0].measured_roles, ir::Role::weight), role(runs[2][0].measured_roles, ir::Role::weight));
  EXPECT_LT(runs[3][0].measured, runs[0][0].measured);
}

INSTANTIATE_TEST_SUITE_P(DataParallel, ZeroStages,
                         ::testing::Values(std::make_tuple("lenet5", "sgd"), std::make_tuple("bert-tiny", "sgd"),
                                           std::make_tuple("bert-tiny", "adam")),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(DataParallel, CheckpointsHoldWholeTensorsAndResumeOnAnotherRankCount) {
  test_util::TempDir dir;
  TrainConfig c = config("lenet5", "sgd");
  c.save = dir.path() + "/zero3.ckpt";
  const std::vector<RankRun> two = train_ranks(c, 2, 3, 3);
  const Checkpoint ck = load_checkpoint(c.save);
  for (const CheckpointTensor& t : ck.tensors) {
    if (t.name.find("running") != std::string::npos) continue;
    EXPECT_EQ(t.to_f32(), two[0].state.at(t.name)) << t.name;
  }
  // One process continues from the 2-rank checkpoint, and 2 ranks from the 1-process one.
  TrainConfig one = config("lenet5", "sgd");
  one.resume = c.save;
  one.save = dir.path() + "/one.ckpt";
  const RankRun resumed = train_single(one, 2);
  EXPECT_TRUE(std::isfinite(resumed.losses.back()));
  TrainConfig back = config("lenet5", "sgd");
  back.resume = one.save;
  const std::vector<RankRun> again = train_ranks(back, 2, 2, 1);
  EXPECT_TRUE(std::isfinite(again[0].losses.back()));
}

TEST(DataParallel, ThreeRanksShardTensorsThatDoNotSplitEvenly) {
  // LeNet-5's last bias has 10 elements: shards of 4, 4 and 2 (zero-padded) over 3 ranks.
  TrainConfig c = config("lenet5", "sgd");
  c.batch = 12;
  const int steps = 3;
  const RankRun single = train_single(c, steps);
  std::vector<RankRun> zero0;
  for (int zero = 0; zero <= 3; ++zero) {
    SCOPED_TRACE("ZeRO " + std::to_string(zero));
    const std::vector<RankRun> r = train_ranks(c, 3, zero, steps);
    if (zero == 0) zero0 = r;
    EXPECT_EQ(r[0].losses, zero0[0].losses);
    for (const auto& [name, v] : zero0[0].state) {
      if (name.find("running") != std::string::npos) continue;
      EXPECT_EQ(r[0].state.at(name), v) << name;
    }
    for (size_t s = 0; s < single.losses.size(); ++s)
      EXPECT_NEAR(r[0].losses[s], single.losses[s], 1e-5 * std::abs(single.losses[s])) << "step " << s;
    for (const RankRun& k : r) EXPECT_EQ(k.measured, k.planned);
  }
  // Without sharding every rank holds whole weights of its own: all equal.
  for (const auto& [name, v] : zero0[0].state) {
    if (name.find("running") != std::string::npos) continue;
    EXPECT_EQ(zero0[1].state.at(name), v) << name;
    EXPECT_EQ(zero0[2].state.at(name), v) << name;
  }
}

TEST(DataParallel, BadRankSetupsAreRefusedByName) {
  TrainConfig c = config("lenet5", "sgd");
  c.batch = 15;
  try {
    train_ranks(c, 2, 0, 1);
    FAIL() << "an odd batch over 2 ranks trained";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not split over 2 ranks"), std::string::npos) << e.what();
  }
  c.batch = 16;
  EXPECT_THROW(train_ranks(c, 2, 4, 1), Error);  // ZeRO 4 does not exist
  c.bucket_mib = -1;
  try {
    train_ranks(c, 2, 0, 1);
    FAIL() << "a negative bucket size trained";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--bucket-mb"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dlmem::train
