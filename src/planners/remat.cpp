#include "planners/remat.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <chrono>

#include "analysis/liveness.h"
#include "analysis/memory.h"
#include "planners/registry.h"
#include "sim/cost_model.h"
#include "sim/device_profile.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners {

nlohmann::json remat_json(const RematResult& r) {
  return {{"policy", r.policy},
          {"topological_peak", r.topo_peak},
          {"budget", r.budget},
          {"peak", r.peak},
          {"peak_over_budget", r.budget ? static_cast<double>(r.peak) / static_cast<double>(r.budget) : 0.0},
          {"lower_bound", r.lower_bound},
          {"cost", r.cost},
          {"base_cost", r.base_cost},
          {"extra_cost_pct", r.extra_cost_pct},
          {"computations", r.computations},
          {"status", r.status},
          {"optimal", r.optimal},
          {"objective", r.objective},
          {"bound", r.bound},
          {"gap_pct", r.gap_pct},
          {"seconds", r.seconds}};
}

void parse_remat_budget(std::string_view text, RematRequest& req) {
  double f = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, f);
  if (ec == std::errc() && ptr == end) {
    if (!(f > 0 && f <= 1))
      throw Error("--budget ", text, ": a plain number is a fraction of the topological order's peak, in (0, 1] "
                  "(0.8); give a percentage (80%) or bytes with a unit (1.5GiB) otherwise");
    req.budget_fraction = f;
    req.budget_bytes = 0;
    return;
  }
  const Budget b = parse_budget(text);
  if (b.is_fraction) {
    req.budget_fraction = b.fraction;
    req.budget_bytes = 0;
  } else {
    req.budget_bytes = b.bytes;
  }
}

std::string remat_policy(const std::string& p) {
  const std::string name = p.starts_with("recompute:") ? p : "recompute:" + p;
  const bool known = name != "recompute:" && std::any_of(policies().begin(), policies().end(),
                                                         [&](const Policy& q) { return q.name == name; });
  if (!known) throw Error("remat: policy '", p, "' is not a recomputation policy; use sqrt, chain, milp or greedy");
  return name;
}

namespace {

RematBudget budget_on(const ir::Graph& g, const analysis::Liveness& live, const RematRequest& req) {
  if (req.budget_bytes == 0 && !(req.budget_fraction > 0 && req.budget_fraction <= 1))
    throw Error("remat: --budget must be a fraction in (0, 1] of the topological order's peak (0.8), or bytes, got ",
                req.budget_fraction);
  Plan plain = make_default_plan(g, live);
  compute_lifetimes(plain);
  compute_stats(g, plain);
  const uint64_t peak = plain.stats.peak_device;
  return {.topo_peak = peak,
          .budget = req.budget_bytes ? req.budget_bytes
                                     : static_cast<uint64_t>(static_cast<double>(peak) * req.budget_fraction)};
}

}  // namespace

RematBudget remat_budget(const ir::Graph& g, const RematRequest& req) {
  return budget_on(g, analysis::compute_liveness(g, analysis::default_schedule(g)), req);
}

RematResult solve_remat(const models::RematGraph& rg, const RematRequest& req) {
  const ir::Graph& g = rg.graph;
  const std::string name = remat_policy(req.policy);
  const Policy* policy = &find_policy(name);
  const auto t0 = std::chrono::steady_clock::now();
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const RematBudget rb = budget_on(g, live, req);

  RematResult r;
  r.policy = name;
  r.topo_peak = rb.topo_peak;
  r.budget = rb.budget;
  const sim::CostModel cm = sim::roofline_cost_model(g, sim::device_profile("host"));
  const PlanOptions opts{.time_limit_s = req.time_limit_s};
  const PlanContext ctx{.graph = g, .live = live, .cost = cm, .budget = 0, .target = r.budget, .options = opts,
                        .policy = policy->name};
  Plan p = run_pipeline(ctx, policy->passes);
  compute_lifetimes(p);
  compute_stats(g, p);
  validate(g, p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.peak = p.stats.peak_device;
  if (r.peak > r.budget)
    throw OutOfMemory("remat: ", name, " keeps ", r.peak, " bytes live, above the budget of ", r.budget, " bytes")
        .reach(r.peak);
  r.lower_bound = analysis::memory_report(g, live).lower_bound;
  const double scale = rg.cost_scale > 0 ? rg.cost_scale : 1;
  double base = 0;  // one computation of every node, as the planners count it
  for (const ir::Node& n : g.nodes()) base += ir::op_cost(g, n).flops;
  r.base_cost = base / scale;
  r.cost = p.stats.flops / scale;
  r.extra_cost_pct = r.base_cost > 0 ? 100 * (r.cost - r.base_cost) / r.base_cost : 0;
  for (const Instr& in : p.program) r.computations += in.kind == InstrKind::compute ? 1 : 0;
  if (p.stats.solver_status.empty()) {
    r.status = "heuristic";
  } else {
    r.status = p.stats.solver_status;
    r.objective = p.stats.solver_objective / scale;
    // A coarsened model (stages merged to fit the solver) proves nothing about the
    // whole problem: its optimum and bound are of fewer schedules.
    const bool coarse = r.status.find("coarsened") != std::string::npos;
    r.bound = coarse || !std::isfinite(p.stats.solver_bound) ? 0 : std::clamp(p.stats.solver_bound / scale, 0.0, r.objective);
    r.optimal = r.status.starts_with("optimal") && !coarse;
    r.gap_pct = r.optimal || r.objective <= 0 ? 0 : 100 * (r.objective - r.bound) / r.objective;
  }
  r.plan = std::move(p);
  return r;
}

}  // namespace dlmem::planners
