// recompute:chain -- the optimal checkpointing dynamic program for chains whose stages
// differ in memory and compute (Gruslys et al., "Memory-efficient backpropagation
// through time", NeurIPS 2016, Section 3; in the heterogeneous form of Beaumont et
// al., "Optimal checkpointing for heterogeneous chains", 2019, Section 4), applied to
// the articulation chain of a general graph (problem.h): the segments between cuts
// are the stages.
//
//   recompute::ChainDP dp(stages, max_memory);   // memory in whole slots
//   double cost = dp.cost(m);                     // least forward work within m
//   auto ops = dp.schedule(m);                    // the operations that achieve it
//
// Note [Chain model]: stages 0..L-1; stage s reads a^{s-1} (a^{-1}, the input, is free)
// and writes a^s. Memory holds checkpoints a^j, tapes (everything a stage's backward
// reads; includes a^s), the current gradient delta^b, and the weight gradients of the
// stages already differentiated. With H what is held before an operation:
//   forward(s)      needs a^{s-1}; peak H + fwd[s]; then a^s is held (x[s]).
//   forward_all(s)  needs a^{s-1}; peak H - (a^s held ? x[s] : 0) + fwd_all[s]; then
//                   the tape of s is held (tape[s]).
//   backward(s)     only the next stage to differentiate (L-1 first), with its tape
//                   and a^{s-1}; peak H - tape[s] - delta[s] + bwd[s]; then delta^{s-1}
//                   replaces delta^s and wgrad[s] stays to the end.
// drop(j) frees checkpoint a^j. The DP is optimal among persistent schedules, as in
// Beaumont et al. (Section 4): a checkpoint stays until the stages after it are
// differentiated, except the intermediate outputs of a forward sweep, each dropped
// once the next forward has read it; and a stage's input stays while its tape is
// held (its backward reads it -- a convolution's weight gradient does). Schedules
// that drop a stored checkpoint early and rebuild it later can cost less; the greedy
// planner, not tied to this model, may find those. The cost is the total forward work (every
// forward counts, the first as well); the DP minimises it subject to every peak <= m.
// C(s, t, m) -- backpropagate stages s..t holding a^{s-1} (outside m) and delta^t
// (inside) -- is the better of
//   all:        forward_all(s), C(s+1, t, m - tape[s]), backward(s)
//   checkpoint: forward(s..s'-1) keeping only the last output, C(s', t, m - x[s'-1]),
//               then C(s, s'-1, m - wgrad[s'..t])
// which is Beaumont et al.'s recurrence with our weight gradients. tests/plan/recompute
// check it against an exhaustive search of the model.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "planners/recompute/schedule.h"

namespace dlmem::planners::recompute {

struct ChainStage {
  double cost = 0;   // forward work
  int x = 0;         // memory, in slots (see Note [Chain model])
  int tape = 0;
  int fwd = 0;
  int fwd_all = 0;
  int bwd = 0;
  int delta = 0;
  int wgrad = 0;
};

enum class ChainOpKind : uint8_t { forward, forward_all, backward, drop };  // drop: a checkpoint
struct ChainOp {
  ChainOpKind kind;
  int stage;
  bool operator==(const ChainOp&) const = default;
};

class ChainDP {
 public:
  static constexpr double kInfinity = std::numeric_limits<double>::infinity();
  ChainDP(std::vector<ChainStage> stages, int max_memory);
  // Least total forward work within `memory` slots; kInfinity when nothing fits.
  double cost(int memory) const;
  // The operations of an optimal schedule; empty when nothing fits.
  std::vector<ChainOp> schedule(int memory) const;
  int max_memory() const { return m_; }

 private:
  size_t at(int s, int t, int m) const;
  void build(int s, int t, int m, std::vector<ChainOp>& out) const;

  std::vector<ChainStage> st_;
  int l_ = 0, m_ = 0;
  std::vector<double> cost_;
  std::vector<int16_t> choice_;  // -1: infeasible, 0: all, k > 0: checkpoint at s' = s + k
  std::vector<int> wg_prefix_;
};

// The chain model of a graph's articulation chain, in slots of `slot` bytes.
std::vector<ChainStage> chain_stages(const Problem&, const Chain&, uint64_t slot);

// The graph sequence of a chain schedule.
Sequence chain_sequence(const Problem&, const Chain&, const std::vector<ChainOp>&);

}  // namespace dlmem::planners::recompute
