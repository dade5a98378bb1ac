// Liveness of a graph's values over a schedule (an order of its nodes).
//
//   auto sched = analysis::default_schedule(g);       // forward, backward, updates
//   auto live = analysis::compute_liveness(g, sched);
//   live.first[v], live.last[v]                        // schedule positions
//
// Views (ops whose OpDef says `view`) share their input's storage: every value maps to
// a storage representative, and liveness is per storage. Values with no producer
// (inputs, labels, weights, optimizer state) are resident from before the first step
// (first = -1); weights and optimizer state, the loss and the graph outputs stay
// resident to the end (last = size of the schedule).
#pragma once

#include <vector>

#include "ir/graph.h"

namespace dlmem::analysis {

using Schedule = std::vector<ir::NodeId>;

// The graph's own order: forward in topological order, then the backward in reverse,
// then the updates (autodiff appends them in that order).
Schedule default_schedule(const ir::Graph&);

// The default schedule with each convolution's weight gradient computed just before its
// data gradient instead of just after. Both read the incoming gradient; the weight
// gradient also reads the forward input, which can then die (or be encoded for the
// sign test that remains) before the data gradient allocates its output. The same
// numbers, a different peak: the swap planner tries both (compress+swap:tensor).
Schedule weight_gradients_first(const ir::Graph&);

// Weights (incl. non-trainable state) and optimizer state: resident for the whole run.
bool is_persistent(const ir::Value&);

struct Liveness {
  std::vector<ir::ValueId> storage;  // value -> representative value of its storage
  std::vector<int> first;            // per value: position of the producing node, -1 if preloaded
  std::vector<int> last;             // per value: position of the last reader (storage-wide)
  int steps = 0;                     // schedule length
  Schedule order;                    // the schedule itself

  bool is_storage(ir::ValueId v) const { return storage[static_cast<size_t>(v)] == v; }
};

// Per value, the representative value of its storage (views share their input's),
// whatever the schedule: Liveness::storage.
std::vector<ir::ValueId> storages(const ir::Graph&);

// Throws dlmem::Error if the schedule is not a valid order of the graph's nodes.
Liveness compute_liveness(const ir::Graph&, const Schedule&);

}  // namespace dlmem::analysis
