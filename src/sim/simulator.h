// Discrete-event simulation of a Plan on a device: one compute stream, a device->host
// and a host->device copy stream, the events instructions wait on, and the device
// memory counter. No kernel runs; durations come from a CostModel.
//
//   sim::CostModel cm = sim::roofline_cost_model(g, sim::device_profile("v100-16gb"));
//   sim::SimResult r = sim::simulate(g, plan, cm);
//   r.makespan, r.stall_seconds, r.peak_device        // == plan.stats.peak_device
//   sim::write_chrome_trace("t.json", g, plan, r);    // sim/trace.h
//
// Note [Simulation semantics] -- the same rules the executor follows on the cpu
// backend, and a GPU runtime with one compute stream and two copy engines:
//  - Program order is issue order. The compute stream runs computes, frees and
//    compute-stream (de)compressions one after another; an instruction is *issued*
//    when the compute stream reaches it, i.e. when every earlier compute-stream
//    instruction has completed (a copy is a "trigger" at that point of the program,
//    as in Chen/Meng's swap-in triggers and Capuchin's in-triggers).
//  - A compute-stream instruction starts at max(issue, completion of what it waits
//    on); the difference is stall time. A copy starts at max(issue, its stream being
//    free, completion of what it waits on): each copy stream is FIFO.
//  - Memory: a device buffer counts from the first instruction that writes it -- a
//    copy's destination from the copy's issue, a compute's output from the compute's
//    start -- until its Free completes; preloaded buffers from time 0. These times
//    follow program order, so the simulated peak equals the plan's peak
//    (plan::compute_stats).
#pragma once

#include <cstdint>
#include <vector>

#include "ir/graph.h"
#include "plan/plan.h"
#include "sim/cost_model.h"

namespace dlmem::sim {

// One instruction on the timeline.
struct SimEvent {
  int instr = -1;
  plan::Stream stream = plan::Stream::compute;
  double issue = 0;  // when the compute stream reached it
  double start = 0;  // after its waits (and, for copies, its stream)
  double end = 0;
};

// Device bytes resident from `time` on (one sample per change).
struct MemorySample {
  double time = 0;
  uint64_t bytes = 0;
};

struct SimResult {
  double makespan = 0;          // all streams done
  double compute_seconds = 0;   // busy time of the compute stream (kernels)
  double recompute_seconds = 0; // of which recomputations
  double forward_seconds = 0;   // of which forward-phase nodes (first runs)
  double stall_seconds = 0;     // compute stream waiting on copies
  double d2h_seconds = 0;       // busy time of each copy stream
  double h2d_seconds = 0;
  uint64_t bytes_to_host = 0;
  uint64_t bytes_to_device = 0;
  uint64_t peak_device = 0;
  int peak_instr = -1;
  double peak_time = 0;
  uint64_t capacity = 0;        // the device profile's memory
  bool fits = true;             // peak_device <= capacity
  std::vector<SimEvent> timeline;  // one per instruction, in program order
  std::vector<MemorySample> memory;

  // No schedule of this plan's work is faster than its busiest stream.
  double bound() const;
  // A tighter reference for swapping activations: copies to the host overlap only the
  // forward and copies back only the backward (a stash leaves after it is made and
  // returns before it is read), so max(forward, d2h) + max(rest, h2d). Not a strict
  // bound for every plan (a swap-out may run on into the backward), but close to what
  // any swap schedule that lowers the forward/backward peak can reach.
  double phase_bound() const;
};

struct SimOptions {
  bool record_memory = true;  // fill SimResult::memory
};

// dlmem::Error when a wait names a later instruction (see plan::validate for the rest).
SimResult simulate(const ir::Graph&, const plan::Plan&, const CostModel&, const SimOptions& = {});

}  // namespace dlmem::sim
