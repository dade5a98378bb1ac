// recompute:greedy -- the fast planner for general graphs (DenseNet, transformers) at
// any budget between the smallest it reaches and no recomputation. It returns the
// schedule with the fewest extra FLOPs among (1) simulated eviction (below) under
// every score and lookahead, refined by a local search that protects the storages
// whose rebuilds cost most (improve() in greedy.cpp), (2) the chain DP's and (3)
// Chen's budgeted schedules on the articulation chain -- all evaluated exactly by the
// shared emitter, so the choice is on real peaks and FLOPs.
//
//   auto seq = recompute::simulate_eviction(pb, budget, {.score = recompute::Score::lookahead});
//   if (seq) plan = recompute::emit_plan(pb, *seq);
//
// Note [Simulated eviction]: the training step is executed symbolically in its own
// order with a memory of `budget` bytes, as DTR does at run time (Kirisame et al.,
// ICLR 2021, Section 3): a node runs once its inputs are resident; a missing input is
// rebuilt by recomputing its producer (depth first); when the outputs and workspace of
// the next computation do not fit, the resident forward storage with the smallest
// score is evicted (never one the pending computations read). Because the plan is
// static, the whole future is known, so besides DTR's staleness the score may use the
// distance to the next use (Belady's MIN rule): lookahead = c / (bytes x distance),
// dtr = c / (bytes x staleness), where c is DTR's e* cost -- the node's FLOPs plus the
// FLOPs of the evicted storages around it (union-find classes, Section 3.2), which
// grows as neighbours go, so evictions spread out (on a chain this gives O(sqrt N)
// memory for O(N) extra work, Theorem 3.1). Storages with no reader left score 0;
// cost_per_byte drops time altogether (cheapest rebuild per byte first).
// The emitted plan frees each materialisation at its last reader, never later than
// the simulation evicted it, so its peak is at most `budget`.
#pragma once

#include <optional>
#include <vector>

#include "planners/recompute/schedule.h"

namespace dlmem::planners::recompute {

enum class Score : uint8_t { lookahead, dtr, lookahead_size, cost_per_byte };

struct EvictionOptions {
  Score score = Score::lookahead;
  // > 0: storages the next `lookahead` original nodes will miss are rebuilt before the
  // current one when that fits without evicting anything.
  int lookahead = 0;
  // Early rebuilds may evict by score (else only storages no one reads again).
  bool early_evicts = false;
  // Storages (by value id) never evicted while an original node still reads them.
  const std::vector<bool>* keep = nullptr;
};

// The sequence that runs the step within `budget` max-live bytes, or nullopt when the
// simulation finds nothing left to evict.
std::optional<Sequence> simulate_eviction(const Problem&, uint64_t budget, const EvictionOptions&);

}  // namespace dlmem::planners::recompute
