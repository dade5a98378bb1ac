// The joint planner, `--policy auto`: per stashed tensor, the cheapest of keep, share
// (in place), recompute, swap and encode, under the budget, on the context's cost model
// (Note [Joint planning]). It composes the families' own passes instead of re-deciding
// what each does well: the recomputation planner decides which producers to run again
// down to a memory target, the swap planner which of the remaining tensors cross the
// link and when, the encoder which stashes shrink losslessly (or, with --lossy, in
// reduced precision), the in-place pass what shares a buffer -- and the split between
// them is searched, each mix measured by simulation.
//
//   plan::Plan p = planners::make_plan(g, cost, {.policy = "auto", .budget = 6_GiB});
//   planners::explain(g, p, cost)   // per tensor: what the plan does with it and at what cost
//
// Note [Joint planning]: with budget B (the placed arena) the candidates are
//  1. every lossless single family's program, as its policy plans it: share; the
//     stashes encoded over share; recompute:greedy, :chain and :sqrt, alone and with
//     in-place writes and encodings after them; swap:vdnn-conv and -all; swap:tensor
//     over the share and default programs; compress+swap:tensor's encoded bases (and
//     weight gradients first) -- so auto is never slower than one of those policies,
//     and reaches every budget they reach (recompute:milp, a solver with a time limit,
//     is not among them; the heuristic in 4 may in principle cost a swap base that
//     would have won);
//  2. the mixes: recompute:greedy down to a relaxed target T = B + f (P - B) (P: the
//     default program's peak; f in kSplits), then in-place writes and encodings, then
//     swap:tensor from T down to B over that recomputing program. Recomputation takes
//     the tensors whose rebuild is cheap per byte (greedy's scores are FLOPs per byte),
//     swapping the large ones whose gaps hide their copies (gap x size); f moves the
//     line between them.
// A candidate is discarded when its max live exceeds the attempt's target (placement
// cannot fix that); of the rest, Note [Choosing between plans] keeps the one whose
// placed arena fits, then the fastest by simulation. The search stops early once a
// candidate fits at the unmanaged step time (nothing can be faster).
//  3. A candidate faster than the one kept whose arena came out over the budget only by
//     placement is planned again at a target lowered by its excess (as make_plan does
//     for one policy), so auto does not lose to a family's second attempt.
//  4. Planning time: the swap:tensor searches dominate (a sequence of simulations
//     each). Inside auto a search gives up once its fitting plan is kGiveUpOver slower
//     than the best candidate so far (PlanContext::give_up_over), and once one swap
//     base is that hopeless the other swap bases do not apply (their step times differ
//     by a few percent: ResNet-152 b64 at 50%, 2.03x to 2.15x against recomputation's
//     1.09x). The recomputing candidates come first so that the incumbent exists.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "planners/pass.h"

namespace dlmem::planners {

// The joint planner as a source pass (Note [Joint planning]).
Pass auto_pass();

// What a plan does with one stashed tensor (a forward result a backward node reads).
enum class Decision : uint8_t { keep, share, recompute, swap, encode };
inline constexpr size_t kDecisions = 5;
std::string_view decision_name(Decision);

struct TensorDecision {
  ir::ValueId value = ir::kNoValue;  // the storage
  std::string name;
  uint64_t bytes = 0;
  Decision decision = Decision::keep;
  std::string detail;     // codec, "2 recomputations", ...
  double cost_seconds = 0;  // simulated time it adds: recomputations, codec passes, stalls waiting on its copies
  uint64_t saved = 0;       // bytes not resident during its gap (encode: raw minus the encoding)
};

struct Explanation {
  std::vector<TensorDecision> tensors;  // in forward order
  // Totals by decision (index: Decision).
  std::vector<int> count;
  std::vector<uint64_t> bytes, saved;
  std::vector<double> cost_seconds;
};

// Reads the decisions off any plan (whichever policy made it), costs from simulating it
// on `cost`.
Explanation explain(const ir::Graph&, const Plan&, const sim::CostModel& cost);
// {"tensors": [{name, bytes, decision, detail, cost_seconds, saved}...],
//  "totals": {decision: {tensors, bytes, saved, cost_seconds}}} (plan --explain --json).
nlohmann::json explanation_json(const Explanation&);

}  // namespace dlmem::planners
