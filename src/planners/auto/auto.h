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
//  1. every single family's program, as their policies plan it: share; the stashes
//     encoded over share; swap:tensor over the share and default programs;
//     compress+swap:tensor's encoded bases (plain and weight gradients first);
//     recompute:greedy and recompute:chain at B, with in-place writes and encodings
//     afterwards -- so auto is never slower than a single family, and reaches every
//     budget one of them reaches;
//  2. the mixes: recompute:greedy down to a relaxed target T = B + f (P - B) (P: the
//     default program's peak; f in kSplits), then in-place writes and encodings, then
//     swap:tensor from T down to B over that recomputing program. Recomputation takes
//     the tensors whose rebuild is cheap per byte (greedy's scores are FLOPs per byte),
//     swapping the large ones whose gaps hide their copies (gap x size); f moves the
//     line between them (f = 0 is pure recomputation, f = 1 pure swapping).
// A candidate is discarded when its max live exceeds the attempt's target (placement
// cannot fix that); of the rest, Note [Choosing between plans] keeps the one whose
// placed arena fits, then the fastest by simulation. The search stops early once a
// candidate fits at the unmanaged step time (nothing can be faster). Cost: each
// candidate is one run of its passes; the mixes cost one recomputation and one swap
// planning each (docs/architecture.md, "The joint planner", has the measured times).
#pragma once

#include <string>
#include <vector>

#include "planners/pass.h"

namespace dlmem::planners {

// The joint planner as a source pass (Note [Joint planning]).
Pass auto_pass();

// What a plan does with one stashed tensor (a forward result a backward node reads).
enum class Decision : uint8_t { keep, share, recompute, swap, encode };
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

}  // namespace dlmem::planners
