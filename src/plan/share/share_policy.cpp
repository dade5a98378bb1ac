#include "plan/share/share_policy.h"

#include "plan/share/inplace.h"

namespace dlmem::plan {

Plan plan_share(const ir::Graph& g, const analysis::Liveness& live, const PlanRequest& req, uint64_t) {
  Plan p = make_default_plan(g, live, {.budget = req.budget});
  apply_inplace(g, p);
  return p;
}

}  // namespace dlmem::plan
