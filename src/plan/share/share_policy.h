// The "share" policy: nothing is dropped, swapped or compressed; memory is saved by
// sharing alone. The default plan (compute in order, free every buffer after its last
// use) goes through the in-place pass (plan/share/inplace.h); make_plan then places
// every buffer in one arena (plan/share/placement.h), smallest of three heuristics.
//
//   plan::Plan p = plan::make_plan(g, {.policy = "share"});
//   p.device_arena, p.stats.peak_device   // placed arena, its max-live lower bound
#pragma once

#include "plan/planner.h"

namespace dlmem::plan {

// A PlannerFn (plan/planner.h). Sharing has nothing to trade: `target` is not
// used; make_plan reports a budget the placed arena does not fit.
Plan plan_share(const ir::Graph&, const analysis::Liveness&, const PlanRequest&, uint64_t target);

}  // namespace dlmem::plan
