// A Plan is the single contract between planning and execution (DESIGN.md): a linear
// program of instructions over buffers, and a placement of every buffer. It is plain
// data -- offsets, not pointers -- validated by one checker before anything runs. The
// simulator replays it; the executor runs it; neither knows which planner made it.
//
//   auto live = analysis::compute_liveness(g, analysis::default_schedule(g));
//   plan::Plan p = plan::make_default_plan(g, live);     // compute in order, free at last use
//   plan::place(p);                                      // offsets in one device arena
//   plan::validate(g, p);                                // throws if anything is off
//
// Note [Buffers and values]: a Buffer is one materialisation of one storage. A value
// may be materialised more than once (recomputed, or swapped out and back in: each
// time a new buffer); several values may share one buffer (views, and in-place
// results, where a Compute's output buffer is one of its input buffers). Instructions
// name buffers, never values, so the executor needs nothing but the plan.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analysis/memory.h"
#include "ir/graph.h"

namespace dlmem::plan {

using BufferId = int32_t;
inline constexpr BufferId kNoBuffer = -1;

enum class Space : uint8_t { device, host };
enum class Stream : uint8_t { compute, d2h, h2d };
enum class InstrKind : uint8_t { compute, free, swap_out, swap_in, compress, decompress };
std::string_view instr_name(InstrKind);
std::string_view stream_name(Stream);

struct Instr {
  InstrKind kind = InstrKind::compute;
  Stream stream = Stream::compute;
  ir::NodeId node = ir::kNoNode;   // compute: the node run
  bool recompute = false;          // compute: a second computation of a forward node
  // compute: one buffer per node input / output (an output equal to an input is an
  // in-place write). swap_out/swap_in/compress/decompress: inputs = {source},
  // outputs = {destination}.
  std::vector<BufferId> inputs;
  std::vector<BufferId> outputs;
  BufferId workspace = kNoBuffer;  // compute: the kernel's scratch
  BufferId buffer = kNoBuffer;     // free: the buffer released
  std::vector<int> waits;          // instructions that must complete first (other streams)
  std::string codec;               // compress/decompress
  bool operator==(const Instr&) const = default;
};

struct Buffer {
  BufferId id = kNoBuffer;
  ir::ValueId value = ir::kNoValue;  // the storage it materialises
  ir::Role role = ir::Role::activation;
  uint64_t bytes = 0;
  Space space = Space::device;
  bool preloaded = false;   // holds data before the program starts (inputs, weights, state)
  bool persistent = false;  // never freed (weights, optimizer state, kept outputs)
  int64_t offset = -1;      // placement inside its space's arena (-1: not placed)
  // Derived by compute_lifetimes(): resident in [begin, end) program positions.
  int begin = -1;
  int end = -1;
};

struct PlanStats {
  uint64_t peak_device = 0;              // max resident device bytes (before placement)
  int peak_instr = -1;
  analysis::RoleBytes peak_by_role{};
  uint64_t no_reuse = 0;                 // sum of all device buffers (nothing shared)
  uint64_t lower_bound = 0;              // graph's largest-op lower bound (analysis)
  double flops = 0;                      // all computes, recomputations included
  double extra_flops = 0;                // recomputations only
  uint64_t bytes_to_host = 0, bytes_to_device = 0;
  double plan_seconds = 0;
  // Planners that solve an optimisation problem (recompute:milp): the objective of the
  // plan found and the solver's proven bound, in the planner's cost unit (FLOPs), and
  // how the solve ended ("optimal", "time limit", ...). Empty status: no solver ran.
  double solver_objective = 0, solver_bound = 0;
  std::string solver_status;
  // Policies that choose between candidate programs (auto): the one chosen, in words
  // ("recompute:greedy to 75%, in place, encoded, swap:tensor"). Empty: no choice made.
  std::string chosen;
};

struct Plan {
  std::string policy = "default";
  uint64_t budget = 0;  // device bytes the plan must fit in; 0: no limit
  std::vector<Instr> program;
  std::vector<Buffer> buffers;
  // Per graph value: the buffer the executor reads or writes it through from outside
  // the program (inputs and labels before a step; weights, state and kept outputs
  // between steps). kNoBuffer for values the outside never touches.
  std::vector<BufferId> binding;
  uint64_t device_arena = 0;  // after placement: bytes of the device arena used
  uint64_t host_arena = 0;
  std::string placement;      // the placement algorithm that produced the offsets
  PlanStats stats;

  BufferId add_buffer(ir::ValueId value, ir::Role role, uint64_t bytes, Space space);
  BufferId buffer_of(ir::ValueId v) const {
    return v >= 0 && static_cast<size_t>(v) < binding.size() ? binding[static_cast<size_t>(v)] : kNoBuffer;
  }
};

// Recomputes every buffer's [begin, end) from the program, then the statistics.
void compute_lifetimes(Plan&);
void compute_stats(const ir::Graph&, Plan&);
// Resident device bytes by role at every instruction (from the buffers' lifetimes):
// the memory-over-time picture (`dlmem plan --plot`).
std::vector<analysis::RoleBytes> resident_by_role(const Plan&);

// The nodes in the order the program first computes them (recomputations apart): the
// schedule a plan was made over.
std::vector<ir::NodeId> schedule_of(const Plan&);

struct DefaultPlanOptions {
  uint64_t budget = 0;
};
// Compute in schedule order; free each buffer right after its last use.
Plan make_default_plan(const ir::Graph&, const analysis::Liveness&, const DefaultPlanOptions& = {});

// The first violation of the plan contract, naming the instruction and the buffer (and
// the value it holds): every compute's inputs resident when read, no access to a freed
// buffer, copies known complete before what depends on them (Note [Copy ordering]),
// every node computed once, alignment, arena bounds, no two device buffers resident
// at once overlapping. std::nullopt for a valid plan. The budget is not a rule of the
// contract: validate checks it.
std::optional<std::string> find_violation(const ir::Graph&, const Plan&);

// For plans dlmem made: dlmem::InternalError (a bug) with find_violation's answer, or
// dlmem::OutOfMemory when the arena exceeds the plan's budget. A plan a user loads
// from a file is checked with find_violation instead, and its violation is the user's
// error (`dlmem simulate --plan`: exit 2).
void validate(const ir::Graph&, const Plan&);

// Bytes every placed buffer is aligned to (what oneDNN and cuDNN want).
inline constexpr uint64_t kAlignment = 64;
inline uint64_t align_up(uint64_t b) { return (b + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace dlmem::plan
