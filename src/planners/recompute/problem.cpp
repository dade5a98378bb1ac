#include "planners/recompute/problem.h"

#include <algorithm>

#include "analysis/memory.h"
#include "util/error.h"

namespace dlmem::planners::recompute {

double Problem::forward_flops() const {
  double f = 0;
  for (int i = 0; i < num_forward; ++i) f += nodes[static_cast<size_t>(i)].flops;
  return f;
}

bool Problem::preloaded_freed(ir::ValueId s) const {
  if (kind[static_cast<size_t>(s)] != StoreKind::preloaded) return false;
  const int last = live->last[static_cast<size_t>(s)];
  return !analysis::is_persistent(graph->value(s)) && last < live->steps && last >= 0;
}

Problem make_problem(const ir::Graph& g, const analysis::Liveness& live) {
  const size_t nv = static_cast<size_t>(g.num_values());
  const size_t nn = static_cast<size_t>(g.num_nodes());
  DLMEM_CHECK(live.order.size() == nn, "liveness covers ", live.order.size(), " of ", nn, " nodes");
  for (size_t i = 0; i < nn; ++i)
    DLMEM_CHECK(live.order[i] == static_cast<ir::NodeId>(i), "recomputation planners need the default schedule");

  Problem pb;
  pb.graph = &g;
  pb.live = &live;
  pb.kind.assign(nv, StoreKind::none);
  pb.bytes.assign(nv, 0);
  pb.producer.assign(nv, ir::kNoNode);
  pb.readers.assign(nv, {});

  // Forward nodes come first (autodiff appends the backward and the updates).
  while (pb.num_forward < g.num_nodes() && g.node(pb.num_forward).phase == ir::Phase::forward) ++pb.num_forward;
  for (int i = pb.num_forward; i < g.num_nodes(); ++i)
    DLMEM_CHECK(g.node(i).phase != ir::Phase::forward, "forward node ", g.node(i).name, " after the backward began");

  for (const ir::Value& v : g.values()) {
    const size_t s = static_cast<size_t>(v.id);
    // Workspaces are scratch of one computation (PNode::workspace), not storages.
    if (!live.is_storage(v.id) || v.role == ir::Role::workspace) continue;
    pb.bytes[s] = v.type.bytes();
    pb.producer[s] = v.producer;
    if (v.producer == ir::kNoNode) {
      pb.kind[s] = StoreKind::preloaded;
      pb.preloaded_bytes += pb.bytes[s];
      if (analysis::is_persistent(v)) pb.persistent_bytes += pb.bytes[s];
    } else if (live.last[s] >= live.steps) {
      pb.kind[s] = StoreKind::kept;
    } else {
      pb.kind[s] = StoreKind::fixed;  // refined below for recomputable producers
    }
  }

  pb.nodes.resize(nn);
  for (const ir::Node& n : g.nodes()) {
    PNode& p = pb.nodes[static_cast<size_t>(n.id)];
    p.id = n.id;
    p.forward = n.phase == ir::Phase::forward;
    p.flops = ir::op_cost(g, n).flops;
    const ir::OpDef& def = ir::op_def(n.op);
    for (ir::ValueId v : n.inputs) {
      const ir::ValueId s = pb.storage(v);
      if (std::find(p.inputs.begin(), p.inputs.end(), s) == p.inputs.end()) p.inputs.push_back(s);
    }
    if (!def.view)
      for (ir::ValueId o : n.outputs) {
        DLMEM_CHECK(live.is_storage(o), "output ", g.value(o).name, " of ", n.name, " is not a storage");
        p.outputs.push_back(o);
        p.out_bytes += pb.bytes[static_cast<size_t>(o)];
      }
    if (n.workspace != ir::kNoValue) p.workspace = g.value(n.workspace).type.bytes();
    for (ir::ValueId s : p.inputs) pb.readers[static_cast<size_t>(s)].push_back(n.id);
    if (def.view)  // a view of a storage keeps it alive as long as the view is read
      for (ir::ValueId o : n.outputs) DLMEM_CHECK(pb.storage(o) == pb.storage(n.inputs[0]), "view ", n.name);
  }

  // Recomputable forward nodes, in topological order so that an input's producer is
  // decided before its readers (Note [Storages and kinds]).
  for (int i = 0; i < pb.num_forward; ++i) {
    PNode& p = pb.nodes[static_cast<size_t>(i)];
    const ir::Node& n = g.node(i);
    bool ok = ir::op_def(n.op).recomputable && !ir::op_def(n.op).view && !p.outputs.empty();
    for (ir::ValueId o : p.outputs) ok = ok && pb.kind[static_cast<size_t>(o)] != StoreKind::kept;
    for (ir::ValueId s : p.inputs) {
      const StoreKind k = pb.kind[static_cast<size_t>(s)];
      ok = ok && (k == StoreKind::preloaded || k == StoreKind::kept || k == StoreKind::evictable);
    }
    p.recomputable = ok;
    if (ok)
      for (ir::ValueId o : p.outputs) pb.kind[static_cast<size_t>(o)] = StoreKind::evictable;
  }

  const analysis::MemoryReport rep = analysis::memory_report(g, live);
  pb.lower_bound = rep.lower_bound;
  pb.lower_bound_node = rep.lower_bound_node;
  return pb;
}

Chain articulation_chain(const Problem& pb) {
  const ir::Graph& g = *pb.graph;
  const int nf = pb.num_forward;
  // Last forward reader of each produced storage.
  std::vector<int> last_fwd(pb.kind.size(), -1);
  for (int i = 0; i < nf; ++i)
    for (ir::ValueId s : pb.node(i).inputs)
      if (pb.kind[static_cast<size_t>(s)] != StoreKind::preloaded) last_fwd[static_cast<size_t>(s)] = i;

  // Candidate cuts: sweep the forward keeping the produced storages still read later.
  struct Cut {
    ir::NodeId after;  // the cut's producer: units split after it
    ir::ValueId value;
  };
  std::vector<Cut> cuts;
  std::vector<ir::ValueId> open;
  for (int i = 0; i < nf; ++i) {
    for (ir::ValueId o : pb.node(i).outputs)
      if (last_fwd[static_cast<size_t>(o)] > i) open.push_back(o);
    std::erase_if(open, [&](ir::ValueId s) { return last_fwd[static_cast<size_t>(s)] <= i; });
    if (open.size() == 1 && pb.evictable(open[0]) && pb.producer[static_cast<size_t>(open[0])] == i)
      cuts.push_back({i, open[0]});
  }

  ir::NodeId first_update = pb.num_nodes();
  for (int i = nf; i < pb.num_nodes(); ++i)
    if (g.node(i).phase == ir::Phase::update) {
      first_update = i;
      break;
    }

  // Units are the ranges between enabled cuts; merging units disables the cuts
  // between them, until (1) each unit's backward nodes are contiguous, in reverse unit
  // order, and (2) a unit's backward reads no evictable storage of another unit except
  // the cut it starts from, and (3) only the last unit holds nodes that cannot run twice.
  std::vector<bool> enabled(cuts.size(), true);
  std::vector<int> unit_of(static_cast<size_t>(nf));
  std::vector<ir::ValueId> start_cut;  // per unit: the cut it starts from
  auto number = [&] {
    start_cut.assign(1, ir::kNoValue);
    size_t c = 0;
    int u = 0;
    for (int i = 0; i < nf; ++i) {
      unit_of[static_cast<size_t>(i)] = u;
      for (; c < cuts.size() && cuts[c].after == i; ++c)
        if (enabled[c]) {
          ++u;
          start_cut.push_back(cuts[c].value);
        }
    }
    return u + 1;
  };
  auto merge = [&](int a, int b) {  // units a..b become one
    bool changed = false;
    int u = 0;
    for (size_t c = 0; c < cuts.size(); ++c) {
      if (!enabled[c]) continue;
      if (u >= a && u < b) {
        enabled[c] = false;
        changed = true;
      }
      ++u;
    }
    return changed;
  };
  std::vector<int> bunit(static_cast<size_t>(pb.num_nodes()), 0);
  int num_units = 0;
  for (bool changed = true; changed;) {
    changed = false;
    num_units = number();
    int prev = num_units - 1, lowest = num_units - 1;
    for (int i = nf; i < first_update && !changed; ++i) {
      const ir::Node& n = g.node(i);
      const int u = n.forward_of != ir::kNoNode && n.forward_of < nf ? unit_of[static_cast<size_t>(n.forward_of)] : prev;
      bunit[static_cast<size_t>(i)] = u;
      prev = u;
      if (u > lowest) changed = merge(lowest, u);
      lowest = std::min(lowest, u);
      for (ir::ValueId s : pb.node(i).inputs) {
        if (changed || !pb.evictable(s)) continue;
        const int pu = unit_of[static_cast<size_t>(pb.producer[static_cast<size_t>(s)])];
        if (pu == u || (pu == u - 1 && start_cut[static_cast<size_t>(u)] == s)) continue;
        changed = merge(std::min(pu, u), std::max(pu, u));
      }
    }
    if (changed) continue;
    for (int i = 0; i < nf && !changed; ++i)
      if (!pb.node(i).recomputable && !ir::op_def(g.node(i).op).view)
        changed = merge(unit_of[static_cast<size_t>(i)], num_units - 1);
  }

  Chain ch;
  ch.updates_begin = first_update;
  ch.units.resize(static_cast<size_t>(num_units));
  for (int u = 0; u < num_units; ++u) {
    Unit& un = ch.units[static_cast<size_t>(u)];
    un.fwd_begin = nf;
    un.fwd_end = 0;
    un.bwd_begin = first_update;
    un.bwd_end = nf;
    un.out = u + 1 < num_units ? start_cut[static_cast<size_t>(u) + 1] : ir::kNoValue;
  }
  for (int i = 0; i < nf; ++i) {
    Unit& un = ch.units[static_cast<size_t>(unit_of[static_cast<size_t>(i)])];
    un.fwd_begin = std::min(un.fwd_begin, i);
    un.fwd_end = std::max(un.fwd_end, i + 1);
    if (!pb.node(i).recomputable && !ir::op_def(g.node(i).op).view) un.recomputable = false;
  }
  for (int i = nf; i < first_update; ++i) {
    Unit& un = ch.units[static_cast<size_t>(bunit[static_cast<size_t>(i)])];
    un.bwd_begin = std::min(un.bwd_begin, i);
    un.bwd_end = std::max(un.bwd_end, i + 1);
  }
  for (Unit& un : ch.units)
    if (un.bwd_end <= un.bwd_begin) un.bwd_begin = un.bwd_end = 0;  // nothing to differentiate
  return ch;
}

}  // namespace dlmem::planners::recompute
