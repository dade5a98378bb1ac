// Static offset placement (src/plan/share/placement.h): golden offsets on a tiny
// hand-made interval set, properties on random interval sets for every heuristic
// (no two intervals live at once overlap, alignment, arena >= max live, best <= each),
// and placed plans of real models accepted by plan::validate.
#include <gtest/gtest.h>

#include <random>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "plan/placement.h"
#include "util/error.h"

namespace dlmem::plan {
namespace {

constexpr PlaceAlgo kAlgos[] = {PlaceAlgo::greedy_by_size, PlaceAlgo::greedy_by_breadth, PlaceAlgo::first_fit,
                                PlaceAlgo::hill_climb, PlaceAlgo::best};

// Independent of placement.cpp: every pair of occupying intervals that share a
// position must not share an address.
::testing::AssertionResult no_overlap(const std::vector<Interval>& iv, const Placement& pl) {
  if (pl.offsets.size() != iv.size()) return ::testing::AssertionFailure() << "offsets for " << pl.offsets.size();
  for (size_t a = 0; a < iv.size(); ++a) {
    if (iv[a].begin >= iv[a].end || iv[a].bytes == 0) continue;
    if (pl.offsets[a] % kAlignment) return ::testing::AssertionFailure() << "interval " << a << " is misaligned";
    if (pl.offsets[a] + iv[a].bytes > pl.size) return ::testing::AssertionFailure() << "interval " << a << " exceeds the arena";
    for (size_t b = a + 1; b < iv.size(); ++b) {
      if (iv[b].begin >= iv[b].end || iv[b].bytes == 0) continue;
      const bool time = iv[a].begin < iv[b].end && iv[b].begin < iv[a].end;
      const bool space = pl.offsets[a] < pl.offsets[b] + iv[b].bytes && pl.offsets[b] < pl.offsets[a] + iv[a].bytes;
      if (time && space) return ::testing::AssertionFailure() << "intervals " << a << " and " << b << " overlap";
    }
  }
  return ::testing::AssertionSuccess();
}

// Six tensors, program positions 0..6. Event order (+ allocate, - free):
//   pos 0: +0   pos 1: +1   pos 2: -0 +2   pos 3: +3   pos 4: -1 +5   pos 5: -2 +4   pos 6: -3 -5
//   // +0 +1 -0 +2 +3 -1 +5 -2 +4 -3 -5 -4
// Live bytes by position: 1024 1536 2560 2816 2816 1792 1024 -> max live 2816.
const std::vector<Interval> kTiny = {
    {1024, 0, 2},  // t0
    {512, 1, 4},   // t1
    {2048, 2, 5},  // t2
    {256, 3, 6},   // t3
    {1024, 5, 7},  // t4
    {512, 4, 6},   // t5
};

TEST(SharePlacement, GoldenGreedyBySize) {
  // Order t2 t0 t4 t1 t5 t3. t2, t0, t4 never meet: all at 0. t1 meets t2 and t0: on
  // top of t2 (2048). t5 meets t2 and t4, not t1: 2048. t3 meets t2, t4, t1, t5: 2560.
  Placement p = place_intervals(kTiny, PlaceAlgo::greedy_by_size);
  EXPECT_EQ(p.offsets, (std::vector<uint64_t>{0, 2048, 0, 2560, 0, 2048}));
  EXPECT_EQ(p.size, 2816u);
  EXPECT_EQ(max_live(kTiny), 2816u);
}

TEST(SharePlacement, GoldenGreedyByBreadth) {
  // Widest positions: 3 (2816), 4 (2816), 2, 5, 1, 0, 6. Each tensor goes with the
  // widest position of its lifetime: t2 t1 t3 at 3, t5 at 4, t4 at 5, t0 at 1.
  // t2: 0; t1: 2048; t3: 2560; t5 (meets t2, t3) best fits the 512 gap at 2048;
  // t4 (meets t3, t5) takes the 2048 gap under t5 at 0; t0 (meets t1) at 0.
  Placement p = place_intervals(kTiny, PlaceAlgo::greedy_by_breadth);
  EXPECT_EQ(p.offsets, (std::vector<uint64_t>{0, 2048, 0, 2560, 0, 2048}));
  EXPECT_EQ(p.size, 2816u);
}

TEST(SharePlacement, GoldenFirstFitInTime) {
  // In order of birth: t0 0; t1 1024; t2 (t0 gone, t1 at 1024 leaves a 1024 gap, too
  // small) 1536; t3 takes the gap at 0; t5 (t1 gone) the gap at 256; t4 (t2 gone) 768.
  // t2 at 1536..3584 makes the arena larger than max live.
  Placement p = place_intervals(kTiny, PlaceAlgo::first_fit);
  EXPECT_EQ(p.offsets, (std::vector<uint64_t>{0, 1024, 1536, 0, 768, 256}));
  EXPECT_EQ(p.size, 3584u);
}

TEST(SharePlacement, BestKeepsTheSmallest) {
  Placement p = place_intervals(kTiny, PlaceAlgo::best);
  EXPECT_EQ(p.size, 2816u);
  EXPECT_EQ(p.algo, PlaceAlgo::greedy_by_size);  // the first of the smallest
}

TEST(SharePlacement, SizesAreAlignedAndEmptyIntervalsTakeNothing) {
  const std::vector<Interval> iv = {{1, 0, 3}, {65, 1, 2}, {100, 2, 2}, {0, 0, 5}, {64, 2, 4}};
  for (PlaceAlgo a : kAlgos) {
    Placement p = place_intervals(iv, a);
    EXPECT_TRUE(no_overlap(iv, p)) << place_algo_name(a);
    EXPECT_EQ(p.size, 64u + 128u) << place_algo_name(a);  // {0,1} then {0,4} at once
  }
  EXPECT_EQ(max_live(iv), 192u);
}

TEST(SharePlacement, IntervalsSpanningTheProgramAreStackedAtTheBottom) {
  // Two weights live throughout; the rest sits above them.
  const std::vector<Interval> iv = {{640, 2, 4}, {128, 0, 9}, {640, 5, 7}, {256, 0, 9}};
  for (PlaceAlgo a : kAlgos) {
    Placement p = place_intervals(iv, a);
    EXPECT_EQ(p.offsets[3], 0u) << place_algo_name(a);
    EXPECT_EQ(p.offsets[1], 256u) << place_algo_name(a);
    EXPECT_EQ(p.offsets[0], 384u) << place_algo_name(a);
    EXPECT_EQ(p.offsets[2], 384u) << place_algo_name(a);
    EXPECT_EQ(p.size, 1024u) << place_algo_name(a);
  }
}

// Random interval sets of three kinds: short-lived, long-lived nested (as stashed
// activations), and a few spanning everything (as weights).
std::vector<Interval> random_intervals(uint32_t seed, int n) {
  std::mt19937 gen(seed);
  std::vector<Interval> iv;
  const int horizon = 4 * n;
  for (int i = 0; i < n; ++i) {
    Interval x;
    const int kind = static_cast<int>(gen() % 10);
    x.bytes = 1 + gen() % (kind < 2 ? 100000 : 5000);
    if (kind == 0) {
      x.begin = 0;
      x.end = horizon;
    } else if (kind < 4) {
      const int mid = horizon / 2;
      x.begin = static_cast<int>(gen() % static_cast<uint32_t>(mid));
      x.end = horizon - x.begin + static_cast<int>(gen() % 3);
    } else {
      x.begin = static_cast<int>(gen() % static_cast<uint32_t>(horizon));
      x.end = x.begin + 1 + static_cast<int>(gen() % 12);
    }
    iv.push_back(x);
  }
  return iv;
}

TEST(SharePlacement, RandomSetsEveryHeuristicIsValidAndAboveMaxLive) {
  int climbed = 0;
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    const auto iv = random_intervals(seed, 20 + static_cast<int>(seed % 7) * 30);
    const uint64_t lb = max_live(iv);
    uint64_t smallest = UINT64_MAX, greedy = UINT64_MAX;
    for (PlaceAlgo a : {PlaceAlgo::greedy_by_size, PlaceAlgo::greedy_by_breadth, PlaceAlgo::first_fit,
                        PlaceAlgo::hill_climb}) {
      Placement p = place_intervals(iv, a);
      SCOPED_TRACE(std::string(place_algo_name(a)) + " seed " + std::to_string(seed));
      EXPECT_TRUE(no_overlap(iv, p));
      EXPECT_GE(p.size, lb);
      EXPECT_EQ(p.algo, a);
      smallest = std::min(smallest, p.size);
      if (a == PlaceAlgo::greedy_by_size || a == PlaceAlgo::greedy_by_breadth) greedy = std::min(greedy, p.size);
      // The climb starts from the better best-fit greedy order and never ends worse.
      if (a == PlaceAlgo::hill_climb) {
        EXPECT_LE(p.size, greedy);
        climbed += p.size < greedy;
      }
    }
    Placement best = place_intervals(iv, PlaceAlgo::best);
    EXPECT_TRUE(no_overlap(iv, best));
    EXPECT_EQ(best.size, smallest) << "seed " << seed;
    // Deterministic: the same intervals always give the same offsets.
    EXPECT_EQ(place_intervals(iv, PlaceAlgo::best).offsets, best.offsets);
  }
  EXPECT_GT(climbed, 5);  // the climb does improve on the greedy orders
}

TEST(SharePlacement, ChainOfDisjointIntervalsReusesOneSlot) {
  std::vector<Interval> iv;
  for (int i = 0; i < 100; ++i) iv.push_back({4096, i, i + 1});
  for (PlaceAlgo a : kAlgos) EXPECT_EQ(place_intervals(iv, a).size, 4096u) << place_algo_name(a);
}

TEST(SharePlacement, PlansOfZooModelsValidateUnderEveryHeuristic) {
  for (const char* model : {"lenet5", "resnet18", "mobilenet_v2"}) {
    models::ModelConfig mc;
    mc.batch = 2;
    mc.image_size = std::string(model) == "lenet5" ? 0 : 32;
    ir::Graph g = models::build_model(model, mc);
    ir::build_training_graph(g, {});
    for (PlaceAlgo a : kAlgos) {
      for (const char* policy : {"default", "share"}) {
        SCOPED_TRACE(std::string(model) + " " + policy + " " + std::string(place_algo_name(a)));
        Plan p = planners::make_plan(g, {.policy = policy, .options = {.placement = a}});
        EXPECT_NO_THROW(validate(g, p));
        EXPECT_GE(p.device_arena, max_live(intervals(p, Space::device)));
        EXPECT_GE(max_live(intervals(p, Space::device)), p.stats.peak_device);
      }
    }
  }
}

}  // namespace
}  // namespace dlmem::plan
