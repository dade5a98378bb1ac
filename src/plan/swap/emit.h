// The program every swap planner emits: given, per swapped storage, when its copy to
// the host starts, when its device bytes are released, when the copy back starts
// (the trigger) and where the compute stream waits for it, emit_swap_plan() writes the
// default schedule with SwapOut / SwapIn / Free instructions on the copy streams and
// host buffers. Planners differ only in the SwapItems they choose.
//
//   std::vector<swap::SwapItem> items = ...;     // one per swapped storage
//   plan::Plan p = swap::emit_swap_plan(g, live, items);
//
// Note [Swap protocol] (positions are schedule positions, i.e. computes):
//   after compute `out_after`    SwapOut(A -> H) on d2h       (-1: before the first compute)
//   after compute `free_after`   Free(A), waits on the SwapOut (A stays counted until then)
//   before compute `trigger`     SwapIn(H -> A2) on h2d, waits on the SwapOut; A2 is a new
//                                device buffer, counted from here
//   compute `sync_at` (<= use)   waits on the SwapIn; computes from `use` on read A2
//   after compute `sync_at`      Free(H), waits on the SwapIn
//   after A2's last reader       Free(A2) (the default plan's free at last use)
// The gap (last_before, use) holds no access to the storage, so the value is never read
// while absent.
#pragma once

#include <vector>

#include "analysis/liveness.h"
#include "ir/graph.h"
#include "plan/plan.h"

namespace dlmem::plan::swap {

struct SwapItem {
  ir::ValueId storage = ir::kNoValue;  // storage representative (analysis::Liveness::storage)
  uint64_t bytes = 0;
  int out_after = -1;    // the producer's position, or -1 for a preloaded value
  int last_before = -1;  // last access before the gap
  int use = -1;          // first access after the gap
  int free_after = -1;   // in [last_before, trigger)
  int trigger = -1;      // in (free_after, use]
  int sync_at = -1;      // in [trigger, use]; -1: use
};

// Accesses of every storage, in schedule order (producer and every reader, views
// included; a preloaded value has no producer access).
std::vector<std::vector<int>> storage_accesses(const ir::Graph&, const analysis::Liveness&);

// Whether a storage may be swapped at all: a device activation or input (not
// persistent, not a workspace, not kept past the step) with a gap in its accesses.
bool swappable(const ir::Graph&, const analysis::Liveness&, ir::ValueId storage);

// Program indices of one item's copies in an emitted plan.
struct EmittedSwap {
  int swap_out = -1;
  int swap_in = -1;
};

// Checks the items' positions (DLMEM_CHECK: planners must get them right) and emits the
// plan: the default plan's buffers and binding, plus a host buffer and a second device
// buffer per item. Lifetimes and statistics are computed. `emitted`, when given,
// receives where each item's copies landed.
Plan emit_swap_plan(const ir::Graph&, const analysis::Liveness&, const std::vector<SwapItem>&,
                    std::vector<EmittedSwap>* emitted = nullptr);

// For each schedule position, the program index of its compute in a plan made by
// emit_swap_plan (or make_default_plan).
std::vector<int> compute_index(const Plan&, const analysis::Liveness&);

}  // namespace dlmem::plan::swap
