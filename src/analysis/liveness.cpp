#include "analysis/liveness.h"

#include <numeric>
#include <utility>

#include "util/error.h"

namespace dlmem::analysis {

Schedule default_schedule(const ir::Graph& g) {
  Schedule s(static_cast<size_t>(g.num_nodes()));
  std::iota(s.begin(), s.end(), 0);
  return s;
}

Schedule weight_gradients_first(const ir::Graph& g) {
  Schedule s = default_schedule(g);
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const ir::Node& a = g.node(s[i]);
    const ir::Node& b = g.node(s[i + 1]);
    // Adjacent gradients of one convolution (the same incoming gradient), the weight
    // gradient reading nothing the data gradient writes.
    if (a.op != ir::OpKind::conv2d_bwd_data || b.op != ir::OpKind::conv2d_bwd_weight || a.inputs.empty() ||
        b.inputs.empty() || a.inputs[0] != b.inputs[0])
      continue;
    bool reads_a = false;
    for (ir::ValueId v : b.inputs)
      for (ir::ValueId o : a.outputs) reads_a = reads_a || v == o;
    if (reads_a) continue;
    std::swap(s[i], s[i + 1]);
    ++i;
  }
  return s;
}

bool is_persistent(const ir::Value& v) {
  return v.role == ir::Role::weight || v.role == ir::Role::optimizer_state;
}

std::vector<ir::ValueId> storages(const ir::Graph& g) {
  std::vector<ir::ValueId> storage(static_cast<size_t>(g.num_values()));
  std::iota(storage.begin(), storage.end(), 0);
  // Views share their input's storage. Nodes are in topological order, so the input's
  // representative is final when we get here.
  for (const ir::Node& n : g.nodes())
    if (ir::op_def(n.op).view) storage[static_cast<size_t>(n.outputs[0])] = storage[static_cast<size_t>(n.inputs[0])];
  return storage;
}

Liveness compute_liveness(const ir::Graph& g, const Schedule& sched) {
  const size_t nv = static_cast<size_t>(g.num_values());
  Liveness L;
  L.steps = static_cast<int>(sched.size());
  L.order = sched;
  L.storage.resize(nv);
  L.first.assign(nv, -1);
  L.last.assign(nv, -1);
  std::iota(L.storage.begin(), L.storage.end(), 0);

  std::vector<int> pos(static_cast<size_t>(g.num_nodes()), -1);
  for (size_t i = 0; i < sched.size(); ++i) {
    ir::NodeId n = sched[i];
    if (n < 0 || n >= g.num_nodes() || pos[static_cast<size_t>(n)] != -1)
      throw Error("schedule entry ", i, " (node ", n, ") is out of range or repeated");
    pos[static_cast<size_t>(n)] = static_cast<int>(i);
  }
  for (const ir::Node& n : g.nodes()) {
    if (pos[static_cast<size_t>(n.id)] < 0) throw Error("schedule misses node '", n.name, "'");
    for (ir::ValueId v : n.inputs) {
      const ir::Value& val = g.value(v);
      if (val.producer != ir::kNoNode && pos[static_cast<size_t>(val.producer)] > pos[static_cast<size_t>(n.id)])
        throw Error("schedule runs '", n.name, "' before its input '", val.name, "' is produced");
    }
  }
  L.storage = storages(g);

  for (const ir::Value& v : g.values()) {
    const size_t s = static_cast<size_t>(L.storage[static_cast<size_t>(v.id)]);
    if (v.producer != ir::kNoNode && L.storage[static_cast<size_t>(v.id)] == v.id)
      L.first[s] = pos[static_cast<size_t>(v.producer)];
    for (ir::NodeId c : v.consumers) L.last[s] = std::max(L.last[s], pos[static_cast<size_t>(c)]);
    if (v.producer != ir::kNoNode) L.last[s] = std::max(L.last[s], pos[static_cast<size_t>(v.producer)]);
  }
  auto keep = [&](ir::ValueId v) {
    if (v != ir::kNoValue) L.last[static_cast<size_t>(L.storage[static_cast<size_t>(v)])] = L.steps;
  };
  for (const ir::Value& v : g.values())
    if (is_persistent(v)) keep(v.id);
  keep(g.loss);
  for (ir::ValueId v : g.outputs) keep(v);
  // Values that are never read and never produced (an unused input) still occupy memory
  // from the start; give them an empty-but-valid interval.
  for (size_t v = 0; v < nv; ++v)
    if (L.storage[v] == static_cast<ir::ValueId>(v) && L.last[v] < L.first[v]) L.last[v] = L.first[v];
  // Views inherit their storage's interval.
  for (size_t v = 0; v < nv; ++v) {
    const size_t s = static_cast<size_t>(L.storage[v]);
    L.first[v] = L.first[s];
    L.last[v] = L.last[s];
  }
  return L;
}

}  // namespace dlmem::analysis
