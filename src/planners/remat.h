// Recomputation on a graph from outside dlmem (`dlmem remat`, models/remat_graph.h):
// one recomputation policy's pipeline run on it against a peak target, the way the
// rematerialisation literature compares solvers -- the budget a fraction of the peak
// of the topological order, the cost the extra computation over one computation of
// every node. Nothing is placed: the figures are max live, as in those papers.
//
//   const models::RematGraph rg = models::read_remat_graph("unet.json");
//   planners::RematResult r = planners::solve_remat(rg, {.policy = "greedy", .budget_fraction = 0.8});
//   r.peak, r.extra_cost_pct, r.status
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ir/graph.h"
#include "models/remat_graph.h"
#include "plan/plan.h"

namespace dlmem::planners {

struct RematRequest {
  std::string policy = "greedy";  // sqrt, chain, milp, greedy (or recompute:<name>)
  double budget_fraction = 0.8;   // of the topological order's peak
  uint64_t budget_bytes = 0;      // instead of the fraction, when > 0
  double time_limit_s = 60;       // recompute:milp
};

struct RematResult {
  std::string policy;             // recompute:<name>
  uint64_t topo_peak = 0;         // every node once, in order, each output freed after its last reader
  uint64_t budget = 0;            // the peak target
  uint64_t peak = 0;              // the schedule's max live
  uint64_t lower_bound = 0;       // the largest node's working set: no schedule is lower
  double cost = 0;                // every computation of the schedule
  double base_cost = 0;           // one computation of every node
  double extra_cost_pct = 0;      // 100 * (cost - base_cost) / base_cost
  int computations = 0;           // nodes run, recomputations included
  std::string status;             // the solver's (recompute:milp), else "heuristic"
  double objective = 0, bound = 0;  // the solver's extra cost and its proven lower bound
  double gap_pct = 0;             // 100 * (objective - bound) / objective; 0 when proven
  bool optimal = false;           // proven by the solver
  double seconds = 0;
  plan::Plan plan;                // the schedule (not placed)
};

// "recompute:<name>" for a recomputation policy given as <name> or in full; dlmem::Error
// naming the ones that work otherwise.
std::string remat_policy(const std::string& name);

// The result's figures as `dlmem remat --json` and the Python package give them.
nlohmann::json remat_json(const RematResult&);

// --budget as `dlmem remat` reads it into `req`: a plain number is a fraction of the
// topological order's peak in (0, 1] ("0.8", the literature's convention), else a
// percentage ("80%") or bytes ("1.5GiB"). dlmem::Error naming the text otherwise.
void parse_remat_budget(std::string_view text, RematRequest& req);

// The peak of the graph's topological order (every node once, each output freed after
// its last reader) and the budget `req` asks for on it. dlmem::Error for a fraction
// outside (0, 1].
struct RematBudget {
  uint64_t topo_peak = 0;
  uint64_t budget = 0;
};
RematBudget remat_budget(const ir::Graph&, const RematRequest&);

// dlmem::Error for an unknown or non-recomputing policy or a fraction outside (0, 1];
// dlmem::OutOfMemory (with min_budget where the policy knows its floor) when the
// policy cannot reach the budget. Costs are reported in the file's unit (the graph's
// cost_scale undone: Note [External costs]).
RematResult solve_remat(const models::RematGraph&, const RematRequest&);

}  // namespace dlmem::planners
