// vDNN (Rhu et al., MICRO 2016, section III): layer-wise offload and prefetch with
// per-layer synchronisation. See swap.h.
#include <algorithm>

#include "planners/swap/emit.h"
#include "planners/swap/swap.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners {

namespace {

Plan plan_vdnn(const ir::Graph& g, const Plan& base, uint64_t target, bool conv_only) {
  const char* name = conv_only ? "swap:vdnn-conv" : "swap:vdnn-all";
  const analysis::Liveness L = analysis::compute_liveness(g, schedule_of(base));
  const int steps = L.steps;
  auto node_at = [&](int i) -> const ir::Node& { return g.node(L.order[static_cast<size_t>(i)]); };

  // Backward "layers": maximal runs of backward nodes that differentiate one forward
  // node (its bwd_data, bwd_weight and gradient accumulations).
  std::vector<int> layer_of(static_cast<size_t>(steps), -1), layer_start;
  ir::NodeId prev = ir::kNoNode;
  for (int i = 0; i < steps; ++i) {
    const ir::Node& n = node_at(i);
    if (n.phase != ir::Phase::backward) {
      prev = ir::kNoNode;
      continue;
    }
    if (layer_start.empty() || n.forward_of != prev || layer_of[static_cast<size_t>(i - 1)] < 0)
      layer_start.push_back(i);
    prev = n.forward_of;
    layer_of[static_cast<size_t>(i)] = static_cast<int>(layer_start.size()) - 1;
  }

  // Layer inputs (vdnn-conv: convolution inputs only).
  std::vector<bool> wanted(static_cast<size_t>(g.num_values()), false);
  for (const ir::Node& n : g.nodes()) {
    if (n.phase != ir::Phase::forward) continue;
    if (conv_only && n.op != ir::OpKind::conv2d) continue;
    const ir::Saved saved = ir::op_def(n.op).saved ? ir::op_def(n.op).saved(n) : ir::Saved{};
    for (size_t k = 0; k < n.inputs.size(); ++k)
      if (conv_only ? k == 0 : saved.input(static_cast<int>(k)))
        wanted[static_cast<size_t>(L.storage[static_cast<size_t>(n.inputs[k])])] = true;
    if (!conv_only)
      for (size_t k = 0; k < n.outputs.size(); ++k)
        if (saved.output(static_cast<int>(k))) wanted[static_cast<size_t>(L.storage[static_cast<size_t>(n.outputs[k])])] = true;
  }

  const auto acc = swap::buffer_accesses(g, base);
  std::vector<swap::SwapItem> items;
  for (const ir::Value& v : g.values()) {
    if (!wanted[static_cast<size_t>(v.id)]) continue;
    const BufferId b = base.buffer_of(v.id);
    if (!swap::swappable(base, b)) continue;
    const auto& a = acc[static_cast<size_t>(b)].at;
    int last_fwd = -1, first_bwd = -1;
    for (int i : a) {
      const ir::Phase ph = node_at(i).phase;
      if (ph == ir::Phase::forward) last_fwd = i;
      else if (first_bwd < 0 && i > last_fwd) first_bwd = i;
    }
    if (last_fwd < 0 || first_bwd < 0 || layer_of[static_cast<size_t>(first_bwd)] < 0) continue;
    // Only a forward use before the backward ones: the stash is what vDNN moves.
    if (std::any_of(a.begin(), a.end(), [&](int i) { return i > first_bwd && node_at(i).phase == ir::Phase::forward; }))
      continue;
    const int layer = layer_of[static_cast<size_t>(first_bwd)];
    swap::SwapItem it;
    it.buffer = b;
    it.bytes = base.buffers[static_cast<size_t>(b)].bytes;
    it.out_after = acc[static_cast<size_t>(b)].last_write(last_fwd);
    it.last_before = last_fwd;
    it.use = first_bwd;
    it.free_after = last_fwd;  // the layer ends when its offload completes
    // Prefetch when the backward of the layer processed just before starts; the
    // layer's own backward waits for it at its start.
    it.sync_at = std::max(layer_start[static_cast<size_t>(layer)], last_fwd + 1);
    it.trigger = std::max(layer > 0 ? layer_start[static_cast<size_t>(layer - 1)] : it.sync_at, last_fwd + 1);
    it.trigger = std::min(it.trigger, it.sync_at);
    if (it.use <= it.last_before + 1) continue;  // no gap to hide anything in
    items.push_back(it);
  }
  Plan p = swap::emit_swap_plan(g, base, items);
  if (target > 0 && p.stats.peak_device > target)
    throw OutOfMemory("policy ", name, " keeps a peak of ", human_bytes(p.stats.peak_device),
                      " resident (it swaps the same layers whatever the budget), above the target ", human_bytes(target),
                      "; the smallest budget it reaches is ", human_bytes(p.stats.peak_device),
                      " (swap:tensor chooses tensors to meet a budget)")
        .reach(p.stats.peak_device);
  return p;
}

}  // namespace

Pass vdnn_pass(bool conv_only) {
  return [conv_only](const PlanContext& ctx, Plan base) { return plan_vdnn(ctx.graph, base, ctx.target, conv_only); };
}

}  // namespace dlmem::planners
