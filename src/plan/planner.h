// One entry point from a graph to a placed, validated Plan, by policy name. Every
// policy is a pass graph -> Plan; the placement pass ends all of them.
//
//   plan::Plan p = plan::make_plan(g, {.policy = "default", .budget = 64 << 20});
//   // throws dlmem::OutOfMemory naming the smallest budget the policy reaches
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "plan/plan.h"
#include "plan/share/placement.h"

namespace dlmem::plan {

struct PlanRequest {
  std::string policy = "default";
  uint64_t budget = 0;  // 0: no limit
  PlaceAlgo placement = PlaceAlgo::best;
};

struct PolicyInfo {
  std::string name;
  std::string description;
};
std::vector<PolicyInfo> known_policies();

// Builds, places and validates the plan. dlmem::Error for an unknown policy (listing
// the known ones); dlmem::OutOfMemory when it does not fit the budget.
Plan make_plan(const ir::Graph&, const PlanRequest&);

}  // namespace dlmem::plan
