// The one emitter every recomputation planner shares: a planner decides only the
// order in which nodes run -- each node once as itself, and forward nodes again as
// recomputations -- and emit_plan turns that sequence into a Plan.
//
//   recompute::Sequence seq = recompute::keep_sequence(pb, keep);  // Chen-style
//   plan::Plan p = recompute::emit_plan(pb, seq);                  // buffers, frees
//
// Note [Sequences]: a Sequence lists compute steps. Every node appears exactly once
// with recompute = false, in an order that respects the graph (so the executor and
// validate() see the step they expect); recomputable forward nodes may appear again
// with recompute = true. Frees are not part of a sequence: the emitter gives every
// computation of a node new buffers for its outputs (and its workspace), binds each
// reader to the latest materialisation of the storage it reads, and frees each
// materialisation right after its last reader -- the earliest point a plan could --
// so the plan's peak is a function of the order alone. A planner that keeps a value
// "until its next use" and one that frees it at once write the same sequence when
// the value is rebuilt before that use; the emitter picks the cheaper memory.
#pragma once

#include <cstdint>
#include <vector>

#include "plan/plan.h"
#include "planners/pass.h"
#include "planners/recompute/problem.h"

namespace dlmem::planners::recompute {

struct Step {
  ir::NodeId node = ir::kNoNode;
  bool recompute = false;
};
using Sequence = std::vector<Step>;

// The unplaced plan of a sequence (see Note [Sequences]). A sequence that reads a
// storage before any materialisation, or recomputes a node that may not run twice,
// is a planner bug: InternalError.
Plan emit_plan(const Problem&, const Sequence&);

// What a sequence costs: the emitted plan's max-live bytes and recomputed FLOPs.
struct SequenceCost {
  uint64_t peak = 0;
  double extra_flops = 0;
  int recomputations = 0;
};
SequenceCost evaluate(const Problem&, const Sequence&);

// The default order with no recomputation.
Sequence plain_sequence(const Problem&);

// Chen et al. 2016 (Section 4: keep some results, recompute the others segment by
// segment in the backward): run the forward once; an evictable storage not in `keep` is freed after
// its last forward reader; before each backward or update node, every storage it
// reads that is not resident is rebuilt by recomputing its producer, after the
// producer's own missing inputs (depth first), and stays until its last reader.
// `keep` is indexed by value id (storages only).
Sequence keep_sequence(const Problem&, const std::vector<bool>& keep);

}  // namespace dlmem::planners::recompute
