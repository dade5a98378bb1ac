// One entry point from a graph to a placed, validated Plan: make_plan runs the named
// policy's pipeline of passes (registry.h, pass.h) on one cost model, places every
// buffer (plan/placement.h) and validates the result. The executor and the simulator
// never know which planner made a plan.
//
//   sim::CostModel cm = sim::roofline_cost_model(g, sim::device_profile("v100-16gb"));
//   plan::Plan p = planners::make_plan(g, cm, {.policy = "recompute:greedy", .budget = 4_GiB});
//   // throws dlmem::OutOfMemory naming the smallest budget the policy reaches
//
// Callers that build a model from a name go through session::Session, which builds the
// training graph, the kernel workspaces and the cost model once (session/session.h).
//
// Note [Budget and placement]: planners decide residency against a target for the
// peak of resident bytes (max live). Placement may need a little more than max live
// (fragmentation), so when the placed arena exceeds the budget, make_plan runs the
// pipeline again with the target lowered by the excess, a few times, before it gives up.
#pragma once

#include <string>
#include <string_view>

#include "ir/graph.h"
#include "planners/pass.h"
#include "sim/cost_model.h"

namespace dlmem::planners {

struct PlanRequest {
  std::string policy = "default";
  uint64_t budget = 0;  // device bytes the placed arena must fit in; 0: no limit
  PlanOptions options;
};

// Builds, places and validates the plan. dlmem::Error for an unknown policy (listing
// the known ones); dlmem::OutOfMemory when it does not fit the budget.
Plan make_plan(const ir::Graph&, const sim::CostModel&, const PlanRequest&);
// The same on the roofline cost model of a named device profile (sim::device_profile).
Plan make_plan(const ir::Graph&, const PlanRequest&, std::string_view device = "host");

// Note [Budget and placement]'s step: after a plan made against `target` reached
// `peak` resident bytes and placed `arena` bytes over `budget`, the target to plan
// again at -- lowered by the excess -- or 0 when that would be at or below `floor`.
uint64_t lowered_target(uint64_t target, uint64_t peak, uint64_t arena, uint64_t budget, uint64_t floor);

}  // namespace dlmem::planners
