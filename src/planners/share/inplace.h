// The in-place pass (memory sharing): a node whose op allows it writes its output
// over an input that is not read afterwards, so the output needs no memory of its own.
//
//   plan::Plan p = plan::make_default_plan(g, live);           // free at last use
//   planners::InplaceStats s = planners::apply_inplace(g, p);  // s.writes outputs now share
//   planners::check_contents(g, p);                            // every read sees its value
//
// Which output may overwrite which input is an op fact (ir::OpDef::inplace), verified
// for every pair against the cpu kernels (tests/runtime/cpu/inplace_ops_test.cpp).
// The same rule covers forward in-place ops (relu over the batch-norm output, dropout,
// the residual add), Layrub's intra-layer reuse in the backward -- a gradient written
// over the activation it replaces when that activation dies there (relu_bwd's dx over
// the stashed y, softmax_bwd's over the stashed probabilities, batch_norm_bwd's over
// the stashed input) -- and gradient accumulation (add over a partial sum). The rule is
// the "inplace operation" of Chen, Xu, Zhang & Guestrin 2016 ("Training deep nets with
// sublinear memory cost", section 3), with Layrub's intra-layer reuse (Jin et al.
// 2018, "Layer-centric memory reuse and data migration for extreme-scale deep
// learning on many-core architectures").
//
// Note [In-place condition]: output o of compute i may take input k's buffer B when
//  - the OpDef lists (o, k) and the node does not mutate input k;
//  - B is read by no instruction after i (buffers, not values: a view shares its
//    storage's buffer, so a later read through any alias keeps B alive), and B is not
//    read twice by i (another operand would see the partial output);
//  - B and the output's buffer are on the device, equally large, neither preloaded
//    (inputs, labels, weights, state) nor persistent (weights, state, kept outputs),
//    and the output's buffer is first written by i.
// The output's buffer disappears; B stays resident until the output's last use (the
// Free of B moves there). Chains (conv -> bn -> relu -> ...) collapse into one buffer.
#pragma once

#include <cstdint>

#include "ir/graph.h"
#include "plan/plan.h"
#include "planners/pass.h"

namespace dlmem::planners {

struct InplaceStats {
  int writes = 0;      // compute outputs written over an input
  uint64_t bytes = 0;  // bytes of the output buffers that no longer exist
};

// Rewrites the plan (unplaced, or placed: offsets must be recomputed after it) so that
// every output meeting Note [In-place condition] shares its input's buffer; then
// recomputes lifetimes and statistics. Instruction indices in `waits` are kept valid.
InplaceStats apply_inplace(const ir::Graph&, Plan&);

// In-place writes already in a plan (what `dlmem plan` reports).
InplaceStats count_inplace(const ir::Graph&, const Plan&);

// Follows which value every buffer holds through the program and checks that each
// instruction reads the value it means to (no input overwritten while still needed).
// Throws InternalError naming the instruction, the buffer and both values.
void check_contents(const ir::Graph&, const Plan&);

// The pass: apply_inplace on the plan it is given. The `share` policy is
// [default_program, inplace_pass]: nothing dropped, swapped or encoded.
Pass inplace_pass();

}  // namespace dlmem::planners
