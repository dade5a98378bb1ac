// The narrow, read-only view of a training graph that every recomputation planner
// reads (STYLE.md rule 2): nodes in schedule order with the storages they read and
// write, what each storage costs in bytes, and whether a planner may drop it and
// rebuild it. Built once per planning call; planners never touch the graph beyond it.
//
//   recompute::Problem pb = recompute::make_problem(g, live);
//   for (const auto& n : pb.nodes) if (n.recomputable) ...;     // forward, deterministic
//   pb.evictable(s)                                            // may be dropped and rebuilt
//   recompute::Chain ch = recompute::articulation_chain(pb);    // cut values of the forward
//
// Note [Storages and kinds]: views share their input's storage (analysis::Liveness),
// so a planner reasons about storages, never views: a view node reads its storage and
// produces nothing. A storage is
//  - preloaded: no producer (inputs, labels, weights, optimizer state); resident from
//    the start, never recomputed;
//  - kept: read from outside after the step (the loss, the graph outputs); one
//    materialisation that is never freed, so its producer is never recomputed;
//  - evictable: produced by a recomputable forward node; planners may free it after a
//    use and materialise it again by recomputing its producer;
//  - fixed: everything else (gradients, outputs of non-recomputable nodes): produced
//    once, freed after its last reader.
// Workspaces are no storage (kind none): each computation of a node has its own,
// for as long as it runs (PNode::workspace).
// A forward node is recomputable when its op is deterministic given its inputs and
// seed (OpDef::recomputable), it is not a view, it produces no kept storage, and every
// storage it reads is preloaded, kept or evictable (so its inputs can be rebuilt).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/liveness.h"
#include "ir/graph.h"

namespace dlmem::planners::recompute {

enum class StoreKind : uint8_t { none, preloaded, kept, evictable, fixed };

struct PNode {
  ir::NodeId id = ir::kNoNode;
  bool forward = false;
  bool recomputable = false;
  double flops = 0;             // one execution (ir::op_cost)
  std::vector<ir::ValueId> inputs;   // storages read, without repeats
  std::vector<ir::ValueId> outputs;  // storages produced (none for views)
  uint64_t out_bytes = 0;       // sum of the outputs' bytes
  uint64_t workspace = 0;       // scratch bytes while it runs
};

struct Problem {
  const ir::Graph* graph = nullptr;
  const analysis::Liveness* live = nullptr;
  std::vector<PNode> nodes;                 // by node id == schedule position
  int num_forward = 0;                      // forward nodes are [0, num_forward)
  std::vector<StoreKind> kind;              // per value; none for non-storages
  std::vector<uint64_t> bytes;              // per storage
  std::vector<ir::NodeId> producer;         // per storage (kNoNode: preloaded)
  std::vector<std::vector<ir::NodeId>> readers;  // per storage, ascending, no repeats
  uint64_t preloaded_bytes = 0;             // every preloaded storage
  uint64_t persistent_bytes = 0;            // weights and optimizer state
  uint64_t lower_bound = 0;                 // largest single node's working set (analysis)
  std::string lower_bound_node;

  ir::ValueId storage(ir::ValueId v) const { return live->storage[static_cast<size_t>(v)]; }
  bool evictable(ir::ValueId s) const { return kind[static_cast<size_t>(s)] == StoreKind::evictable; }
  // A preloaded storage the plan frees after its last reader (inputs, labels), as
  // make_default_plan does; the others (weights, state, unread ones) stay.
  bool preloaded_freed(ir::ValueId s) const;
  const PNode& node(ir::NodeId n) const { return nodes[static_cast<size_t>(n)]; }
  int num_nodes() const { return static_cast<int>(nodes.size()); }
  // FLOPs of one execution of every forward node (what "% of the step" compares with
  // is the whole step: plan stats).
  double forward_flops() const;
};

// Requires the default schedule (node order): forward, backward, updates.
Problem make_problem(const ir::Graph&, const analysis::Liveness&);

// Note [Articulation chain]: the forward of a general graph seen as a chain. A cut is
// an evictable storage c such that, right after its producer runs, c is the only
// non-preloaded storage that later forward nodes still read: everything after it
// depends on the step's inputs only through c (Chen et al. 2016, Section 4, use
// these as the candidate stage-splitting points; on a chain every layer is one).
// Units are the forward nodes between consecutive cuts; the last unit runs to the
// end of the forward and holds the loss. The backward nodes of a unit are those that
// differentiate its nodes, contiguous in the backward (autodiff emits them in reverse
// forward order).
struct Unit {
  ir::NodeId fwd_begin = 0, fwd_end = 0;   // forward nodes [begin, end)
  ir::NodeId bwd_begin = 0, bwd_end = 0;   // backward nodes [begin, end)
  ir::ValueId out = ir::kNoValue;          // the cut it ends with (kNoValue: last unit)
  bool recomputable = true;                // every node of it may run again
};
struct Chain {
  std::vector<Unit> units;                 // in forward order
  ir::NodeId updates_begin = 0;            // first node after the backward
};
Chain articulation_chain(const Problem&);

}  // namespace dlmem::planners::recompute
