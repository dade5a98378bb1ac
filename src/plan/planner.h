// One entry point from a graph to a placed, validated Plan, by policy name. Every
// policy is a pass graph -> Plan (a Planner below); the placement pass ends all of
// them, and validate() checks the result. The executor and the simulator never know
// which planner made a plan.
//
//   plan::Plan p = plan::make_plan(g, {.policy = "recompute:greedy", .budget = 4_GiB});
//   // throws dlmem::OutOfMemory naming the smallest budget the policy reaches
//
// Note [Budget and placement]: planners decide residency against a target for the
// peak of resident bytes (max live). Placement may need a little more than max live
// (fragmentation), so when the placed arena exceeds the budget, make_plan asks the
// planner again with the target lowered by the excess, a few times, before it gives up.
#pragma once

#include <string>
#include <vector>

#include "analysis/liveness.h"
#include "ir/graph.h"
#include "plan/plan.h"
#include "plan/share/placement.h"

namespace dlmem::plan {

struct PlanRequest {
  std::string policy = "default";
  uint64_t budget = 0;          // device bytes the placed arena must fit in; 0: no limit
  PlaceAlgo placement = PlaceAlgo::best;
  double time_limit_s = 60;     // solvers (MILP)
  bool lossy = false;           // compression: allow lossy encodings
  std::string device = "host";  // device profile for planners that simulate (swap)
};

// A planner: the residency decisions of one policy. `target` is the max-live bytes to
// stay within (0: none; see Note [Budget and placement]). Returns an unplaced plan;
// throws dlmem::OutOfMemory when it cannot reach the target, with the smallest
// target it can reach in the message.
using PlannerFn = Plan (*)(const ir::Graph&, const analysis::Liveness&, const PlanRequest&, uint64_t target);

struct PolicyInfo {
  std::string name;         // "share", "recompute:greedy", ...
  std::string description;
  PlannerFn fn;
};
const std::vector<PolicyInfo>& known_policies();

// Builds, places and validates the plan. dlmem::Error for an unknown policy (listing
// the known ones); dlmem::OutOfMemory when it does not fit the budget.
Plan make_plan(const ir::Graph&, const PlanRequest&);

// Note [Budget and placement]'s step: after a plan made against `target` reached
// `peak` resident bytes and placed `arena` bytes over `budget`, the target to plan
// again at -- lowered by the excess -- or 0 when that would be at or below `floor`.
uint64_t lowered_target(uint64_t target, uint64_t peak, uint64_t arena, uint64_t budget, uint64_t floor);

// The default policy: compute in order, free after last use.
Plan plan_default(const ir::Graph&, const analysis::Liveness&, const PlanRequest&, uint64_t target);

}  // namespace dlmem::plan
