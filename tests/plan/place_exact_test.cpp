// The exact placement search (Note [Exact placement]) on problems whose optimum is known
// by construction, checked by an independent pairwise overlap test; the CSV problem
// format's errors; `dlmem place`.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "plan/place_problem.h"
#include "util/cli_run.h"
#include "util/error.h"

namespace dlmem::plan {
namespace {

struct Solved {
  uint64_t height = 0;
  uint64_t heuristic = 0;
  ExactResult exact;
};

Solved solve(const PlaceProblem& pb, const ExactOptions& o) {
  Solved s;
  const Placement h = place_intervals(pb.intervals, PlaceAlgo::best);
  s.heuristic = problem_height(pb, problem_offsets(pb, h));
  s.exact = place_exact(pb.intervals, h, o);
  const std::vector<uint64_t> off = problem_offsets(pb, s.exact.placement);
  EXPECT_EQ(find_overlap(pb, off), "");
  s.height = problem_height(pb, off);
  EXPECT_LE(s.height, s.heuristic);
  return s;
}

TEST(TightInstance, CoversTheRectangleExactly) {
  const PlaceProblem pb = tight_instance(100, 40, 30, 7);
  EXPECT_EQ(pb.ids.size(), 30u);
  EXPECT_EQ(problem_max_live(pb), 100u);
  uint64_t area = 0;
  for (size_t k = 0; k < pb.sizes.size(); ++k)
    area += pb.sizes[k] * static_cast<uint64_t>(pb.intervals[k].end - pb.intervals[k].begin);
  EXPECT_EQ(area, 100u * 40u);
}

// Small tight instances: the search reaches the optimum (= max live = the width) and
// proves it; a node limit keeps the test deterministic.
TEST(ExactPlacement, ReachesTheKnownOptimumOnSmallTightInstances) {
  int beaten = 0;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    const int pieces = 40 + static_cast<int>(seed % 4) * 20;
    SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(pieces) + " buffers");
    const PlaceProblem pb = tight_instance(1000, 2 * pieces, pieces, seed);
    const Solved s = solve(pb, {.time_limit_s = 60, .node_limit = 2'000'000});
    EXPECT_EQ(s.height, 1000u);
    EXPECT_TRUE(s.exact.optimal) << s.exact.status;
    beaten += s.heuristic > s.height;
  }
  // The heuristics alone miss some of these: the search is what closes the gap.
  EXPECT_GT(beaten, 0);
}

// Loose random problems: never an overlap, never above the heuristics, and when the
// search exhausts its space the height is proven (nothing lower exists).
TEST(ExactPlacement, RandomProblemsAreValidAndNoHigherThanTheHeuristics) {
  std::mt19937_64 gen(3);
  for (int round = 0; round < 30; ++round) {
    PlaceProblem pb;
    const int n = 5 + static_cast<int>(gen() % 12);
    for (int k = 0; k < n; ++k) {
      const int b = static_cast<int>(gen() % 20), d = 1 + static_cast<int>(gen() % 10);
      pb.ids.push_back(k);
      pb.sizes.push_back(1 + gen() % 50);
      pb.intervals.push_back({pb.sizes.back() * kAlignment, b, b + d});
    }
    const Solved s = solve(pb, {.time_limit_s = 60, .node_limit = 1'000'000});
    EXPECT_GE(s.height, problem_max_live(pb));
    if (s.exact.optimal) {
      EXPECT_EQ(s.exact.status, "optimal");
    }
  }
}

// The checker itself: half-open lifetimes and address ranges, zero sizes take nothing.
TEST(FindOverlap, FindsOverlapsAndOnlyThem) {
  const PlaceProblem pb = parse_place_csv("1,0,4,10\n2,4,8,10\n3,2,6,5\n4,1,3,0\n");
  EXPECT_EQ(find_overlap(pb, {0, 0, 10, 0}), "");    // 1 and 2 meet in time only; 3 above both
  EXPECT_EQ(find_overlap(pb, {0, 0, 9, 3}), "buffers 1 and 3 overlap");
  EXPECT_EQ(find_overlap(pb, {10, 0, 5, 0}), "buffers 2 and 3 overlap");  // 3 under 1, into 2
  EXPECT_EQ(find_overlap(pb, {0, 15, 10, 0}), "");                         // adjacent in memory
  EXPECT_EQ(find_overlap(pb, {0, 14, 10, 0}), "buffers 3 and 2 overlap");
  EXPECT_NE(find_overlap(pb, {0, 0}), "");
}

TEST(PlaceCsv, BadRowsNameTheLine) {
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case& c : std::vector<Case>{{"id,lower,upper,size\n0,0,4,8\n1,3,2,8\n", ":3: lower 3 >= upper 2"},
                                         {"0,0,4,-8\n", ":1: negative size"},
                                         {"0,0,4,8\n0,1,5,8\n", ":2: duplicate id 0"},
                                         {"0,0,4,8\n1,0,4.5,8\n", ":2: expected id,lower,upper,size"},
                                         {"0,0,4,8,16\n1,0,4,8,32\n", ":2: alignment 32 differs"},
                                         {"0,0,4\n", ":1: expected"},
                                         {"", "no buffers"}}) {
    SCOPED_TRACE(c.text);
    try {
      parse_place_csv(c.text, "p.csv");
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
  }
  const PlaceProblem pb = parse_place_csv("id,lower,upper,size,alignment\n7,0,4,10,8\n9,2,6,3,8\n");
  EXPECT_EQ(pb.alignment, 8u);
  EXPECT_EQ(pb.ids, (std::vector<int64_t>{7, 9}));
  const Placement pl = place_intervals(pb.intervals, PlaceAlgo::best);
  const std::vector<uint64_t> off = problem_offsets(pb, pl);
  EXPECT_EQ(find_overlap(pb, off), "");
  for (uint64_t o : off) EXPECT_EQ(o % 8, 0u);
  EXPECT_EQ(problem_height(pb, off), 19u);  // 16 (10 rounded to 8s) + 3
}

TEST(PlaceCli, SolvesAFileAndWritesOffsets) {
  const std::string in = "/tmp/dlmem_place_" + std::to_string(::getpid()) + ".csv";
  const std::string out = in + ".out";
  {
    const PlaceProblem pb = tight_instance(50, 20, 16, 11);
    std::ofstream(in) << to_csv(pb);
  }
  test_util::CliRun r = test_util::run_cli("place " + in + " --json --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["height"], 50);
  EXPECT_EQ(j["max_live"], 50);
  EXPECT_EQ(j["buffers"], 16);
  std::ifstream o(out);
  std::string header;
  std::getline(o, header);
  EXPECT_EQ(header, "id,offset");
  test_util::CliRun bad = test_util::run_cli("place /nonexistent.csv");
  EXPECT_EQ(bad.code, 2) << bad.out;
  std::remove(in.c_str());
  std::remove(out.c_str());
}

}  // namespace
}  // namespace dlmem::plan
