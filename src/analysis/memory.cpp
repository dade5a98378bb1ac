#include "analysis/memory.h"

#include <algorithm>
#include <unordered_set>

namespace dlmem::analysis {

uint64_t total(const RoleBytes& r) {
  uint64_t t = 0;
  for (uint64_t b : r) t += b;
  return t;
}

uint64_t storage_bytes(const ir::Graph& g, const Liveness& L, ir::ValueId v) {
  return L.is_storage(v) ? g.value(v).type.bytes() : 0;
}

MemoryProfile memory_profile(const ir::Graph& g, const Liveness& L) {
  MemoryProfile p;
  const size_t steps = static_cast<size_t>(L.steps);
  // Difference arrays per role: +bytes at the first live step, -bytes after the last.
  std::vector<RoleBytes> delta(steps + 1, RoleBytes{});
  for (const ir::Value& v : g.values()) {
    if (!L.is_storage(v.id) || steps == 0) continue;
    const size_t r = static_cast<size_t>(v.role);
    const size_t a = static_cast<size_t>(std::max(L.first[static_cast<size_t>(v.id)], 0));
    const size_t b = std::min(static_cast<size_t>(std::max(L.last[static_cast<size_t>(v.id)], 0)), steps - 1);
    if (a > b) continue;
    delta[a][r] += v.type.bytes();
    delta[b + 1][r] -= v.type.bytes();
  }
  p.during.resize(steps);
  RoleBytes cur{};
  for (size_t i = 0; i < steps; ++i) {
    for (size_t r = 0; r < cur.size(); ++r) cur[r] += delta[i][r];
    p.during[i] = cur;
    const uint64_t t = total(cur);
    if (t > p.peak || p.peak_step < 0) {
      p.peak = t;
      p.peak_step = static_cast<int>(i);
      p.at_peak = cur;
    }
  }
  return p;
}

MemoryReport memory_report(const ir::Graph& g, const Liveness& L) {
  MemoryReport r;
  r.parameters = g.parameter_count();
  uint64_t persistent = 0;
  for (const ir::Value& v : g.values()) {
    if (!L.is_storage(v.id)) continue;
    r.by_role[static_cast<size_t>(v.role)] += v.type.bytes();
    r.no_free += v.type.bytes();
    if (is_persistent(v)) persistent += v.type.bytes();
  }

  // Stashed: forward storages (activations) that some backward node reads.
  std::vector<bool> stashed(static_cast<size_t>(g.num_values()), false);
  for (const ir::Node& n : g.nodes()) {
    if (n.phase != ir::Phase::backward) continue;
    for (ir::ValueId v : n.inputs) {
      const ir::ValueId s = L.storage[static_cast<size_t>(v)];
      const ir::Value& sv = g.value(s);
      if (sv.role == ir::Role::activation && sv.producer != ir::kNoNode &&
          g.node(sv.producer).phase == ir::Phase::forward)
        stashed[static_cast<size_t>(s)] = true;
    }
  }
  for (size_t v = 0; v < stashed.size(); ++v)
    if (stashed[v]) r.stashed_activations += g.value(static_cast<ir::ValueId>(v)).type.bytes();

  MemoryProfile p = memory_profile(g, L);
  r.free_at_last_use = p.peak;
  r.peak_step = p.peak_step;
  r.at_peak = p.at_peak;
  if (p.peak_step >= 0) r.peak_node = g.node(L.order[static_cast<size_t>(p.peak_step)]).name;

  for (const ir::Node& n : g.nodes()) {
    std::unordered_set<ir::ValueId> ws;
    for (ir::ValueId v : n.inputs) ws.insert(L.storage[static_cast<size_t>(v)]);
    for (ir::ValueId v : n.outputs) ws.insert(L.storage[static_cast<size_t>(v)]);
    if (n.workspace != ir::kNoValue) ws.insert(n.workspace);
    uint64_t b = persistent;
    for (ir::ValueId v : ws)
      if (!is_persistent(g.value(v))) b += g.value(v).type.bytes();
    if (b > r.lower_bound) {
      r.lower_bound = b;
      r.lower_bound_node = n.name;
    }
    const double f = ir::op_cost(g, n).flops;
    if (n.phase == ir::Phase::forward) r.flops_forward += f;
    else if (n.phase == ir::Phase::backward) r.flops_backward += f;
    else r.flops_update += f;

    if (n.phase == ir::Phase::forward) {
      LayerRow row{n.id, n.name, std::string(ir::op_name(n.op))};
      row.flops = f;
      for (ir::ValueId v : n.outputs) {
        if (!L.is_storage(v)) continue;
        row.output_bytes += g.value(v).type.bytes();
        if (stashed[static_cast<size_t>(v)]) row.stashed_bytes += g.value(v).type.bytes();
      }
      r.layers.push_back(std::move(row));
    }
  }
  if (r.lower_bound == 0) r.lower_bound = persistent;
  return r;
}

}  // namespace dlmem::analysis
