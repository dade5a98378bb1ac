// Issue 5's benchmark: the recomputation planners across the zoo.
//  - sweep: per model, 8 budgets from the smallest max-live recompute:greedy reaches to
//    the peak without recomputation; per planner, its extra FLOPs (absolute, and as a
//    share of the step), its peak, its solve time, and -- where CBC proves the MILP
//    optimal within the time limit -- the ratio of its extra FLOPs to that optimum.
//  - sqrt_scaling: Chen's sqrt(N) schedule on CIFAR ResNets of growing depth (up to
//    ResNet-1001): activation bytes kept per depth, next to the plain plan's, and the
//    ratio to sqrt(depth) (constant when memory is O(sqrt N)).
// Budgets are max-live bytes (what the planners target; placement is not part of it).
// Every figure is relative to a reference from the same run: the plain plan of the same
// graph (peak, FLOPs of the step) and the MILP optimum of the same budget. One JSON
// object per line on stdout.
//
//   recompute_bench [--quick] [--time-limit S] [--models m1,m2,...]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/liveness.h"
#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/recompute/recompute.h"
#include "runtime/backend.h"
#include "util/error.h"
#include "common.h"

using namespace dlmem;
using bench::load_average;
using bench::training_graph;
using namespace dlmem::planners::recompute;
using Clock = std::chrono::steady_clock;

namespace {

struct Case {
  std::string model;
  int64_t batch;
  int64_t image_size = 0;
  bool milp = false;   // small enough for CBC
  bool quick = false;  // part of --quick
};

// The zoo at batches where activations matter, plus MLP chains of uniform and mixed
// widths, small enough for CBC to prove optimality (the Checkmate reference), and an
// 8-layer one where it does not within the limit (its bound is reported instead).
const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"mlp-256-256-256-256", 2048, 0, true, true},
      {"mlp-512-64-512-64", 2048, 0, true, false},
      {"mlp-256-512-128-1024", 1024, 0, true, false},
      {"mlp-256-256-256-256-256-256-256-256", 2048, 0, true, false},
      {"resnet11", 16, 0, true, true},
      {"lenet5", 256, 0, true, false},
      {"alexnet", 64},
      {"vgg16", 16},
      {"resnet18", 32},
      {"resnet50", 32},
      {"resnet152", 64, 0, false, true},
      {"densenet121", 16},
      {"mobilenet_v2", 32},
      {"lstm", 32},
      {"bert-base", 8},
      {"bert-large", 8, 0, false, true},
      {"gpt2-small", 4},
  };
  return c;
}

struct Result {
  bool feasible = false;
  uint64_t peak = 0;
  double extra = 0, seconds = 0;
  std::string status;
  double objective = 0, bound = 0;
  bool optimal = false;
};

Result run_planner(const planners::Pass& pass, const ir::Graph& g, const analysis::Liveness& live, uint64_t budget,
                   double time_limit) {
  Result r;
  // The recomputation planners read no costs but the graph's FLOPs: any profile serves.
  const sim::CostModel cm = sim::roofline_cost_model(g, sim::device_profile("v100-16gb"));
  const planners::PlanOptions opts{.time_limit_s = time_limit};
  const planners::PlanContext ctx{.graph = g, .live = live, .cost = cm, .target = budget, .options = opts};
  const auto t0 = Clock::now();
  try {
    plan::Plan p = pass(ctx, {});
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    plan::compute_lifetimes(p);
    plan::compute_stats(g, p);
    r.feasible = p.stats.peak_device <= budget;
    r.peak = p.stats.peak_device;
    r.extra = p.stats.extra_flops;
    r.status = p.stats.solver_status;
    r.objective = p.stats.solver_objective;
    r.bound = p.stats.solver_bound;
    r.optimal = r.status.rfind("optimal", 0) == 0;
  } catch (const OutOfMemory& e) {
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.status = e.what();
  }
  return r;
}

void sweep(const Case& c, bool quick, double time_limit) {
  auto be = runtime::make_cpu_backend();
  const ir::Graph g = training_graph(c.model, c.batch, c.image_size, *be);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const Problem pb = make_problem(g, live);
  const uint64_t plain = evaluate(pb, plain_sequence(pb)).peak;
  double step_flops = 0;
  for (const PNode& n : pb.nodes) step_flops += n.flops;
  const auto t0 = Clock::now();
  const uint64_t least = greedy_min_peak(pb);
  const double min_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const int budgets = quick ? 4 : 8;
  struct Planner {
    const char* name;
    planners::Pass fn;
  };
  std::vector<Planner> planners = {{"sqrt", sqrt_pass()}, {"chain", chain_pass()}, {"greedy", greedy_pass()}};
  if (c.milp) planners.push_back({"milp", milp_pass()});
  std::map<std::string, double> worst_ratio, worst_seconds;
  int optimal_budgets = 0;
  for (int k = 0; k < budgets; ++k) {
    const uint64_t budget = least + (plain - least) * static_cast<uint64_t>(k) / static_cast<uint64_t>(budgets - 1);
    std::map<std::string, Result> res;
    for (const Planner& p : planners) res[p.name] = run_planner(p.fn, g, live, budget, time_limit);
    const Result& m = res["milp"];
    const bool have_opt = c.milp && m.feasible && m.optimal;
    optimal_budgets += have_opt;
    for (const Planner& p : planners) {
      const Result& r = res[p.name];
      nlohmann::json j = {{"bench", "recompute"},
                          {"model", c.model},
                          {"batch", c.batch},
                          {"nodes", g.num_nodes()},
                          {"planner", p.name},
                          {"budget", budget},
                          {"budget_step", k},
                          {"budget_over_plain", static_cast<double>(budget) / static_cast<double>(plain)},
                          {"plain_peak", plain},
                          {"greedy_min_peak", least},
                          {"feasible", r.feasible},
                          {"seconds", r.seconds}};
      if (r.feasible) {
        j["peak"] = r.peak;
        j["extra_flops"] = r.extra;
        j["extra_over_step"] = r.extra / step_flops;
        if (have_opt) {
          const double ratio = m.extra > 0 ? r.extra / m.extra : (r.extra > 0 ? INFINITY : 1.0);
          j["ratio_to_optimum"] = ratio;
          worst_ratio[p.name] = std::max(worst_ratio[p.name], ratio);
        } else if (c.milp && m.feasible && m.bound > 0) {
          j["ratio_to_bound"] = r.extra / m.bound;  // CBC's proven bound: the optimum is at least this
        }
      }
      if (std::string(p.name) == "milp") {
        j["solver_status"] = r.status.substr(0, 160);
        if (r.feasible) {
          j["objective"] = r.objective;
          j["bound"] = r.bound;
        }
      }
      worst_seconds[p.name] = std::max(worst_seconds[p.name], r.seconds);
      std::cout << j.dump() << std::endl;
    }
  }
  nlohmann::json s = {{"bench", "recompute_summary"}, {"model", c.model},          {"batch", c.batch},
                      {"nodes", g.num_nodes()},        {"plain_peak", plain},       {"greedy_min_peak", least},
                      {"min_over_plain", static_cast<double>(least) / static_cast<double>(plain)},
                      {"greedy_min_seconds", min_seconds}, {"budgets_with_proven_optimum", optimal_budgets},
                      {"load_average", load_average()}};
  for (const auto& [name, v] : worst_seconds) s["max_seconds_" + name] = v;
  for (const auto& [name, v] : worst_ratio) s["max_ratio_to_optimum_" + name] = v;
  std::cout << s.dump() << std::endl;
}

// Chen's sqrt(N) on CIFAR ResNets 9n+2: activation bytes over depth.
void sqrt_scaling(bool quick) {
  const std::vector<int> ns = quick ? std::vector<int>{4, 16, 64} : std::vector<int>{4, 8, 16, 32, 64, 111};
  for (int n : ns) {
    const int depth = 9 * n + 2;
    auto be = runtime::make_cpu_backend();
    const ir::Graph g = training_graph("resnet" + std::to_string(depth), 16, 0, *be);
    const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
    const Problem pb = make_problem(g, live);
    const uint64_t plain = evaluate(pb, plain_sequence(pb)).peak;
    const auto t0 = Clock::now();
    plan::Plan p = plan_sqrt(g, live, 0);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    plan::compute_lifetimes(p);
    plan::compute_stats(g, p);
    // Activation bytes: what is not preloaded (weights, state, inputs) at the peak.
    const uint64_t fixed = pb.preloaded_bytes;
    const double act = static_cast<double>(p.stats.peak_device - fixed);
    const double plain_act = static_cast<double>(plain - fixed);
    double step = 0;
    for (const PNode& node : pb.nodes) step += node.flops;
    std::cout << nlohmann::json{{"bench", "recompute_sqrt_scaling"},
                                {"model", "resnet" + std::to_string(depth)},
                                {"depth", depth},
                                {"batch", 16},
                                {"plain_peak", plain},
                                {"sqrt_peak", p.stats.peak_device},
                                {"plain_activation_bytes", plain_act},
                                {"sqrt_activation_bytes", act},
                                {"sqrt_over_plain", act / plain_act},
                                {"sqrt_activation_bytes_over_sqrt_depth", act / std::sqrt(static_cast<double>(depth))},
                                {"plain_activation_bytes_over_depth", plain_act / depth},
                                {"extra_over_step", p.stats.extra_flops / step},
                                {"seconds", seconds}}
                     .dump()
              << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  double time_limit = 60;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--time-limit" && i + 1 < argc) {
      time_limit = std::stod(argv[++i]);
    } else if (a == "--models" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      for (std::string m; std::getline(ss, m, ',');) only.push_back(m);
    } else {
      std::cerr << "usage: recompute_bench [--quick] [--time-limit S] [--models m1,m2,...]\n";
      return 2;
    }
  }
  if (quick && time_limit == 60) time_limit = 10;
  try {
    for (const Case& c : cases()) {
      if (!only.empty() && std::find(only.begin(), only.end(), c.model) == only.end()) continue;
      if (only.empty() && quick && !c.quick) continue;
      sweep(c, quick, time_limit);
    }
    if (only.empty() || std::find(only.begin(), only.end(), "sqrt_scaling") != only.end()) sqrt_scaling(quick);
  } catch (const std::exception& e) {
    std::cerr << "recompute_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
