// Memory profile and breakdown of a graph under a schedule with free-at-last-use.
//
//   auto live = analysis::compute_liveness(g, analysis::default_schedule(g));
//   auto prof = analysis::memory_profile(g, live);   // live bytes by role at every step
//   auto rep  = analysis::memory_report(g, live);    // what `dlmem analyze` prints
#pragma once

#include <array>
#include <string>
#include <vector>

#include "analysis/liveness.h"

namespace dlmem::analysis {

using RoleBytes = std::array<uint64_t, ir::kNumRoles>;
uint64_t total(const RoleBytes&);

// Live bytes while each scheduled node runs (its inputs, outputs and workspace are all
// live then), by the role of each storage.
struct MemoryProfile {
  std::vector<RoleBytes> during;  // one entry per schedule position
  uint64_t peak = 0;
  int peak_step = -1;
  RoleBytes at_peak{};
};
MemoryProfile memory_profile(const ir::Graph&, const Liveness&);

struct LayerRow {
  ir::NodeId node;
  std::string name;
  std::string op;
  uint64_t output_bytes = 0;   // new storage the node produces
  uint64_t stashed_bytes = 0;  // of those, read again by the backward
  double flops = 0;
};

struct MemoryReport {
  int64_t parameters = 0;
  RoleBytes by_role{};                // every storage, by role
  uint64_t stashed_activations = 0;   // forward storages read by a backward node
  uint64_t no_free = 0;               // peak if nothing were ever freed
  uint64_t free_at_last_use = 0;      // peak of the profile (max live)
  int peak_step = -1;
  std::string peak_node;
  RoleBytes at_peak{};
  // No policy that writes every output apart from its inputs (recomputation, swapping
  // of the default program) goes below this on the device: weights and optimizer state
  // plus the largest single node's working set (inputs + outputs + workspace). In-place
  // writes (share, swap:tensor over the share program) can: an output over an input
  // counts once.
  uint64_t lower_bound = 0;
  std::string lower_bound_node;
  double flops_forward = 0, flops_backward = 0, flops_update = 0;
  std::vector<LayerRow> layers;       // forward nodes, in order
};
MemoryReport memory_report(const ir::Graph&, const Liveness&);

// Bytes of the storage of v (0 for views: counted at their storage).
uint64_t storage_bytes(const ir::Graph&, const Liveness&, ir::ValueId v);

}  // namespace dlmem::analysis
