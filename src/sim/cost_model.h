// The cost model: how long each instruction of a plan takes on a device. Two sources:
//  - roofline: a node takes max(FLOPs / achieved FLOP/s, bytes / achieved memory
//    bandwidth) plus a launch, from ir::op_cost and the DeviceProfile;
//  - measured: the per-instruction kernel times of a real run (runtime::ExecStats::
//    instr_seconds with ExecOptions::time_instructions), as Capuchin measures the
//    first iterations of training (Peng et al., ASPLOS 2020, section 4.2), with the
//    roofline for nodes the measured run did not execute.
// Copies take bytes / achieved link bandwidth plus a launch; (de)compression passes
// read and write their bytes at the memory bandwidth.
//
//   sim::CostModel cm = sim::roofline_cost_model(g, sim::device_profile("v100-16gb"));
//   sim::CostModel cm2 = sim::measured_cost_model(g, plan, stats.instr_seconds, profile);
//   cm.instr_seconds(g, plan, plan.program[i]);
//
// The simulator depends on nothing but this struct: measured times arrive as a plain
// vector, so src/sim never includes the runtime.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "plan/plan.h"
#include "sim/device_profile.h"
#include "sim/link_profile.h"

namespace dlmem::sim {

struct CostModel {
  std::string source;               // "roofline" or "measured"
  DeviceProfile device;
  LinkProfile link;                  // between data-parallel ranks (collectives)
  std::vector<double> node_seconds;  // per graph node: one execution of its kernel

  // Duration of one instruction (0 for a free).
  double instr_seconds(const ir::Graph&, const plan::Plan&, const plan::Instr&) const;
  // A copy of `bytes` on a copy stream (d2h or h2d).
  double copy_seconds(plan::Stream, uint64_t bytes) const;
};

// One execution of `node` on `device` by the roofline (0 for views: no kernel runs).
// Collectives (ir::OpDef::comm_factor) are priced on `link` (sim/link_profile.h).
double roofline_seconds(const ir::Graph&, const ir::Node&, const DeviceProfile&, const LinkProfile& = {});
CostModel roofline_cost_model(const ir::Graph&, const DeviceProfile&, const LinkProfile& = {});

// `instr_seconds` has one entry per instruction of `measured` (a plan of the same
// graph), e.g. the median over a few steps. A node computed more than once takes the
// mean of its runs. dlmem::Error when the sizes disagree.
CostModel measured_cost_model(const ir::Graph&, const plan::Plan& measured, const std::vector<double>& instr_seconds,
                              const DeviceProfile&);

}  // namespace dlmem::sim
