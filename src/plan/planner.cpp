#include "plan/planner.h"

#include <chrono>

#include "analysis/liveness.h"
#include "analysis/memory.h"
#include "util/error.h"

namespace dlmem::plan {

std::vector<PolicyInfo> known_policies() {
  return {
      {"default", "compute in order, free every buffer after its last use, static placement"},
  };
}

Plan make_plan(const ir::Graph& g, const PlanRequest& req) {
  const auto t0 = std::chrono::steady_clock::now();
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  Plan p;
  if (req.policy == "default") {
    p = make_default_plan(g, live, {.budget = req.budget});
  } else {
    std::string names;
    for (const PolicyInfo& i : known_policies()) names += (names.empty() ? "" : ", ") + i.name;
    throw Error("unknown policy '", req.policy, "'; known policies: ", names);
  }
  p.policy = req.policy;
  p.budget = req.budget;
  place(p, req.placement);
  p.stats.lower_bound = analysis::memory_report(g, live).lower_bound;
  p.stats.plan_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  validate(g, p);
  return p;
}

}  // namespace dlmem::plan
