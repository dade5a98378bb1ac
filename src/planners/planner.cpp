#include "planners/planner.h"

#include <algorithm>
#include <chrono>

#include "analysis/memory.h"
#include "planners/registry.h"
#include "sim/device_profile.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners {

uint64_t lowered_target(uint64_t target, uint64_t peak, uint64_t arena, uint64_t budget, uint64_t floor) {
  const uint64_t excess = arena - budget;
  const uint64_t reached = std::min(target, peak);
  return reached <= excess + floor ? 0 : reached - excess;
}

namespace {

// The heuristics' arena is over the budget while max live is not: the exact search
// (Note [Exact placement]) gets its time to place the device buffers within it.
void place_exactly(Plan& p, const PlanOptions& o) {
  if (o.place_time_limit_s <= 0) return;
  std::vector<BufferId> ids;
  const std::vector<Interval> iv = intervals(p, Space::device, &ids);
  Placement start;
  start.size = p.device_arena;
  start.offsets.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i)
    start.offsets[i] = static_cast<uint64_t>(std::max<int64_t>(0, p.buffers[static_cast<size_t>(ids[i])].offset));
  // A node budget (about a second's work at 300 buffers) so that the plan does not
  // depend on the machine's speed; the time limit only caps it.
  const uint64_t nodes = std::max<uint64_t>(1000, 20'000'000 / std::max<size_t>(iv.size(), 1));
  const ExactResult r = place_exact(iv, start, {.time_limit_s = o.place_time_limit_s, .node_limit = nodes});
  if (r.placement.size >= p.device_arena) return;
  for (size_t i = 0; i < ids.size(); ++i) p.buffers[static_cast<size_t>(ids[i])].offset = static_cast<int64_t>(r.placement.offsets[i]);
  p.device_arena = r.placement.size;
  p.placement = "exact";
}

}  // namespace

Plan make_plan(const ir::Graph& g, const sim::CostModel& cost, const PlanRequest& req) {
  const auto t0 = std::chrono::steady_clock::now();
  const Policy& policy = find_policy(req.policy);
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const uint64_t lower_bound = analysis::memory_report(g, live).lower_bound;

  PlanContext ctx{.graph = g, .live = live, .cost = cost, .budget = req.budget, .target = req.budget,
                  .options = req.options, .policy = policy.name};
  Plan p;
  for (int attempt = 0;; ++attempt) {
    try {
      Plan q = run_pipeline(ctx, policy.passes);
      p = std::move(q);
    } catch (const OutOfMemory&) {
      // A lowered target the policy cannot reach: what failed is placing the plan it
      // made within the budget, and the message says so.
      if (attempt == 0 || p.stats.peak_device > req.budget) throw;
      throw OutOfMemory("policy ", policy.name, " reaches ", human_bytes(p.stats.peak_device), " of live memory, within the budget of ",
                        human_bytes(req.budget), ", but placing its buffers needs an arena of ", human_bytes(p.device_arena),
                        " (", p.placement, "; the exact search found nothing lower in ", req.options.place_time_limit_s,
                        " s), and planning for less live memory to make room fails; use a budget of at least ",
                        human_bytes(p.device_arena), " or a longer --place-time-limit")
          .reach(p.device_arena);
    }
    p.policy = policy.name;
    p.budget = req.budget;
    compute_lifetimes(p);
    compute_stats(g, p);
    place(p, req.options.placement);
    if (req.budget && p.device_arena > req.budget && p.stats.peak_device <= req.budget) place_exactly(p, req.options);
    if (req.budget == 0 || p.device_arena <= req.budget || attempt == 4) break;
    const uint64_t next = lowered_target(ctx.target, p.stats.peak_device, p.device_arena, req.budget, lower_bound / 2);
    if (next == 0) break;
    ctx.target = next;
  }
  if (req.options.host_budget && p.host_arena > req.options.host_budget)
    throw OutOfMemory("policy ", policy.name, " keeps ", human_bytes(p.host_arena), " of swapped tensors in host memory, above "
                      "the host budget of ", human_bytes(req.options.host_budget),
                      " (--host-budget; by default what this machine reports available); give a larger --host-budget or "
                      "device --budget",
                      policy.name == "auto" ? std::string(" (auto's plans without swapping do not fit the device budget)")
                                            : std::string(", or a policy that swaps less (recompute:greedy, auto)"));
  p.stats.lower_bound = lower_bound;
  p.stats.plan_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  validate(g, p);
  return p;
}

Plan make_plan(const ir::Graph& g, const PlanRequest& req, std::string_view device) {
  return make_plan(g, sim::roofline_cost_model(g, sim::device_profile(std::string(device))), req);
}

}  // namespace dlmem::planners
