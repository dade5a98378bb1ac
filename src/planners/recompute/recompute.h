// Recomputation planners: drop forward activations after their forward use and
// rebuild them before the backward reads them (MISSION.md, "Recomputation"). Each is a
// source pass (planners/pass.h, Note [Sources and passes]) -- it writes the whole
// program, in an order of computations it chooses -- registered as --policy
// recompute:<name> (planners/registry.cpp):
//
//   plan::Plan p = planners::make_plan(g, {.policy = "recompute:greedy", .budget = 4_GiB});
//   p.stats.extra_flops                                  // the recomputed FLOPs
//   plan::Plan q = recompute::plan_greedy(g, live, 4_GiB);  // the same, unplaced
//
//   sqrt    Chen et al. 2016: sqrt(N) segments of the articulation chain; with a
//           budget, Chen's budgeted greedy segmentation (sqrt.cpp)
//   chain   the optimal dynamic program for heterogeneous chains (Gruslys et al. 2016,
//           Beaumont et al. 2019) on the articulation chain (chain.cpp)
//   milp    Checkmate (Jain et al. 2020): the optimal rematerialisation as a MILP,
//           solved by CBC within PlanOptions::time_limit_s (milp.cpp)
//   greedy  simulated eviction with DTR / Belady scores and a local search, plus the
//           chain DP and Chen's schedules: the best of them, for any graph (greedy.cpp)
//
// All of them write a Sequence (schedule.h) that one emitter turns into a Plan, so a
// plan's peak and extra FLOPs mean the same thing whichever planner made it. Without a
// budget, sqrt gives Chen's sqrt(N) schedule and the others recompute nothing (no
// memory pressure, nothing to trade); with one they throw dlmem::OutOfMemory naming
// the smallest peak they reach when the budget is below it.
#pragma once

#include <optional>

#include "planners/pass.h"
#include "planners/recompute/problem.h"
#include "planners/recompute/schedule.h"

namespace dlmem::planners::recompute {

// The planners over the schedule `live`, within `target` max-live bytes (0: none).
Plan plan_sqrt(const ir::Graph&, const analysis::Liveness&, uint64_t target);
Plan plan_chain(const ir::Graph&, const analysis::Liveness&, uint64_t target);
Plan plan_milp(const ir::Graph&, const analysis::Liveness&, uint64_t target, double time_limit_s);
Plan plan_greedy(const ir::Graph&, const analysis::Liveness&, uint64_t target);

// As source passes over the context's schedule and target (milp: its time limit).
Pass sqrt_pass();
Pass chain_pass();
Pass milp_pass();
Pass greedy_pass();

// The smallest max-live bytes recompute:greedy reaches (bisection on its budget).
uint64_t greedy_min_peak(const Problem&);
// recompute:greedy's sequence within `target` max-live bytes, if it finds one.
std::optional<Sequence> greedy_sequence(const Problem&, uint64_t target);
// The chain DP's and Chen's budgeted sequences within `target` (nullopt: none fits;
// `reach`, when given, receives the smallest peak they found).
std::optional<Sequence> chain_within(const Problem&, uint64_t target, uint64_t* reach = nullptr,
                                     size_t* stages = nullptr);
std::optional<Sequence> chen_within(const Problem&, uint64_t target, uint64_t* reach = nullptr);

}  // namespace dlmem::planners::recompute
