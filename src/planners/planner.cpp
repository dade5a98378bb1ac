#include "planners/planner.h"

#include <algorithm>
#include <chrono>

#include "analysis/memory.h"
#include "planners/registry.h"
#include "sim/device_profile.h"
#include "util/error.h"

namespace dlmem::planners {

uint64_t lowered_target(uint64_t target, uint64_t peak, uint64_t arena, uint64_t budget, uint64_t floor) {
  const uint64_t excess = arena - budget;
  const uint64_t reached = std::min(target, peak);
  return reached <= excess + floor ? 0 : reached - excess;
}

Plan make_plan(const ir::Graph& g, const sim::CostModel& cost, const PlanRequest& req) {
  const auto t0 = std::chrono::steady_clock::now();
  const Policy& policy = find_policy(req.policy);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const uint64_t lower_bound = analysis::memory_report(g, live).lower_bound;

  PlanContext ctx{.graph = g, .live = live, .cost = cost, .budget = req.budget, .target = req.budget,
                  .options = req.options, .policy = policy.name};
  Plan p;
  for (int attempt = 0;; ++attempt) {
    p = run_pipeline(ctx, policy.passes);
    p.policy = policy.name;
    p.budget = req.budget;
    compute_lifetimes(p);
    compute_stats(g, p);
    place(p, req.options.placement);
    if (req.budget == 0 || p.device_arena <= req.budget || attempt == 4) break;
    const uint64_t next = lowered_target(ctx.target, p.stats.peak_device, p.device_arena, req.budget, lower_bound / 2);
    if (next == 0) break;
    ctx.target = next;
  }
  p.stats.lower_bound = lower_bound;
  p.stats.plan_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  validate(g, p);
  return p;
}

Plan make_plan(const ir::Graph& g, const PlanRequest& req, std::string_view device) {
  return make_plan(g, sim::roofline_cost_model(g, sim::device_profile(std::string(device))), req);
}

}  // namespace dlmem::planners
