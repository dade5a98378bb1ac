// Issue 16: offset placement against a known optimum. One JSON line per row.
//
//   "tight":  generated tight instances (plan::tight_instance: a W x T rectangle cut by
//             guillotine cuts, optimum = W = max live) of 100..500 buffers: the best
//             heuristic's height over the optimum, the exact search's (Note [Exact
//             placement]) within --time-limit, whether it proved optimality, seconds.
//             Targets: exact == optimum on >= 95% within 10 s each, worst <= 1.01.
//   "large":  10k and 100k buffers: the heuristics' time and height over max live
//             (targets: <= 1 s, <= 1.02).
//
//   place_bench [--quick] [--time-limit S] [--seeds N] [--only tight|large]
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "plan/place_problem.h"
#include "common.h"

using namespace dlmem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void tight(const std::vector<int>& sizes, int seeds, double limit) {
  for (int n : sizes)
    for (int seed = 0; seed < seeds; ++seed) {
      const uint64_t width = 1000;
      const plan::PlaceProblem pb = plan::tight_instance(width, 2 * n, n, static_cast<uint64_t>(seed));
      const auto t0 = std::chrono::steady_clock::now();
      const plan::Placement h = plan::place_intervals(pb.intervals, plan::PlaceAlgo::best);
      const double hs = seconds_since(t0);
      const plan::ExactResult r = plan::place_exact(pb.intervals, h, {.time_limit_s = limit});
      const std::vector<uint64_t> off = plan::problem_offsets(pb, r.placement);
      const uint64_t height = plan::problem_height(pb, off);
      std::cout << nlohmann::json{{"bench", "place"},
                                  {"kind", "tight"},
                                  {"buffers", pb.ids.size()},
                                  {"seed", seed},
                                  {"optimum", width},
                                  {"heuristic_over_optimum",
                                   static_cast<double>(plan::problem_height(pb, plan::problem_offsets(pb, h))) / width},
                                  {"heuristic_s", hs},
                                  {"heuristic", plan::place_algo_name(h.algo)},
                                  {"exact_over_optimum", static_cast<double>(height) / width},
                                  {"exact_status", r.status},
                                  {"exact_s", r.seconds},
                                  {"nodes", r.nodes},
                                  {"valid", plan::find_overlap(pb, off).empty()},
                                  {"load", bench::load_average()}}
                       .dump()
                << std::endl;
    }
}

void large(const std::vector<int>& sizes) {
  for (int n : sizes) {
    const plan::PlaceProblem pb = plan::tight_instance(1 << 20, n / 2, n, 1);
    for (plan::PlaceAlgo a : {plan::PlaceAlgo::greedy_by_size, plan::PlaceAlgo::first_fit, plan::PlaceAlgo::best}) {
      const auto t0 = std::chrono::steady_clock::now();
      const plan::Placement p = plan::place_intervals(pb.intervals, a);
      const double s = seconds_since(t0);
      std::cout << nlohmann::json{{"bench", "place"},
                                  {"kind", "large"},
                                  {"buffers", pb.ids.size()},
                                  {"algorithm", plan::place_algo_name(a)},
                                  {"seconds", s},
                                  {"height_over_max_live", static_cast<double>(p.size) /
                                                               static_cast<double>(plan::max_live(pb.intervals))},
                                  {"load", bench::load_average()}}
                       .dump()
                << std::endl;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string only;
  double limit = 10;
  int seeds = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--time-limit" && i + 1 < argc) limit = std::stod(argv[++i]);
    else if (a == "--seeds" && i + 1 < argc) seeds = std::stoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else {
      std::cerr << "usage: place_bench [--quick] [--time-limit S] [--seeds N] [--only tight|large]\n";
      return 2;
    }
  }
  if (quick) {
    tight({100}, 3, 1);
    large({10'000});
    return 0;
  }
  if (only != "large") tight({100, 200, 300, 400, 500}, seeds, limit);
  if (only != "tight") large({10'000, 100'000});
  return 0;
}
