// The program every swap planner emits: given a base plan -- the schedule's computes in
// order with frees between them: the default plan, or the share policy's (the default
// plan through the in-place pass, where a buffer may hold a chain of values), either
// of them with stashes encoded (plan/compress: Compress after a stash's last forward
// use, Decompress before its first backward one; the encoded buffer is swappable like
// any other) -- and,
// per swapped base buffer, when its copy to the host starts, when its device bytes are
// released, when the copy back starts (the trigger) and where the compute stream waits
// for it, emit_swap_plan() writes the base program with SwapOut / SwapIn / Free
// instructions on the copy streams and host buffers. Planners differ only in the base
// and the SwapItems they choose.
//
//   plan::Plan base = swap::share_base(g, live);   // or make_default_plan(g, live), a recomputing plan
//   std::vector<swap::SwapItem> items = ...;       // one per swapped base buffer
//   plan::Plan p = swap::emit_swap_plan(g, base, items);
//
// Positions are the base program's computes in order, recomputations included: a
// base may come from a recomputation planner (the joint planner swaps over them), and
// a node computed twice has two positions.
//
// Note [Swap protocol] (positions are schedule positions, i.e. computes):
//   after compute `out_after`    SwapOut(A -> H) on d2h       (-1: before the first compute)
//   after compute `free_after`   Free(A), waits on the SwapOut (A stays counted until then)
//   before compute `trigger`     SwapIn(H -> A2) on h2d, waits on the SwapOut; A2 is a new
//                                device buffer, counted from here
//   compute `sync_at` (<= use)   waits on the SwapIn; computes from `use` on read A2
//   after compute `sync_at`      Free(H), waits on the SwapIn
//   after A2's last reader       Free(A2) (the default plan's free at last use)
// The gap (last_before, use) holds no access to the buffer, so the value is never read
// while absent; `out_after` is the last write of the buffer at or before `last_before`
// (in a shared buffer the last in-place write, e.g. a ReLU over its input), so the copy
// carries what the buffer holds in the gap and nothing writes A while it is in flight.
// Computes from `use` on -- in-place writes included (a gradient over the swapped-in
// activation) -- read and write A2, and the base plan's Free of the buffer frees A2.
#pragma once

#include <vector>

#include "analysis/liveness.h"
#include "ir/graph.h"
#include "plan/plan.h"
#include "planners/pass.h"

namespace dlmem::planners::swap {

struct SwapItem {
  BufferId buffer = kNoBuffer;  // a buffer of the base plan
  uint64_t bytes = 0;
  int out_after = -1;    // the last write at or before last_before, or -1 for a preloaded value
  int last_before = -1;  // last access before the gap
  int use = -1;          // first access after the gap
  int free_after = -1;   // in [last_before, trigger)
  int trigger = -1;      // in (free_after, use]
  int sync_at = -1;      // in [trigger, use]; -1: use
};

// The share policy's program as a base: the default plan through the in-place pass
// (plan/share/inplace.h), unplaced.
Plan share_base(const ir::Graph&, const analysis::Liveness&);

// A base program and the schedule it computes in (for planners that try several; the
// liveness must outlive the planning).
struct SwapBase {
  Plan plan;
  const analysis::Liveness* live = nullptr;
};

// The schedule position each instruction of a base plan belongs to: a compute's own;
// what follows a compute (its frees, stash encodings) that compute's; a stash decoding,
// and what follows it up to the next compute, the next compute's (it runs just before
// it, Note [Swap protocol] treats it as an access there).
std::vector<int> position_of_instrs(const Plan& base);

// Per base buffer, the schedule positions of the computes that access it (read, write
// or workspace; views included, as they name their storage's buffer) and of those that
// write it (views write nothing), in order; stash encodings count at their positions
// (position_of_instrs). A preloaded value has no write.
struct BufferAccesses {
  std::vector<int> at;
  std::vector<int> writes;
  // The last write at or before `pos`, or -1.
  int last_write(int pos) const;
};
std::vector<BufferAccesses> buffer_accesses(const ir::Graph&, const Plan& base);

// Whether a base buffer may be swapped at all: a device buffer of an activation or an
// input (its first value's role: not persistent, not a workspace, not kept past the
// step) with bytes.
bool swappable(const Plan& base, BufferId);

// Program indices of one item's copies in an emitted plan.
struct EmittedSwap {
  int swap_out = -1;
  int swap_in = -1;
};

// Checks the items' positions (DLMEM_CHECK: planners must get them right) and emits the
// plan: the base plan's buffers and binding, plus a host buffer and a second device
// buffer per item (both naming the value the buffer holds in the gap). Lifetimes and
// statistics are computed. `emitted`, when given, receives where each item's copies
// landed.
Plan emit_swap_plan(const ir::Graph&, const Plan& base, const std::vector<SwapItem>&,
                    std::vector<EmittedSwap>* emitted = nullptr);

// For each position, the program index of its compute (emit_swap_plan keeps the base's
// computes in their order, so a base and the plans emitted over it agree).
std::vector<int> compute_index(const Plan&);
// For each position, the node its compute runs.
std::vector<ir::NodeId> position_nodes(const Plan&);

}  // namespace dlmem::planners::swap
