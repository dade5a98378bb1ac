#include "planners/recompute/schedule.h"

#include <algorithm>
#include <limits>

#include "util/error.h"

namespace dlmem::planners::recompute {

namespace {

void check_step(const Problem& pb, const Step& st, std::vector<int>& runs) {
  DLMEM_CHECK(st.node >= 0 && st.node < pb.num_nodes(), "sequence names node ", st.node);
  if (st.recompute)
    DLMEM_CHECK(pb.node(st.node).recomputable, "sequence recomputes ", pb.graph->node(st.node).name,
                " which may not run twice");
  else
    runs[static_cast<size_t>(st.node)]++;
}

}  // namespace

Sequence plain_sequence(const Problem& pb) {
  Sequence s;
  s.reserve(pb.nodes.size());
  for (const PNode& n : pb.nodes) s.push_back({n.id, false});
  return s;
}

Plan emit_plan(const Problem& pb, const Sequence& seq) {
  const ir::Graph& g = *pb.graph;
  Plan p;
  p.binding.assign(static_cast<size_t>(g.num_values()), kNoBuffer);
  std::vector<BufferId> cur(static_cast<size_t>(g.num_values()), kNoBuffer);
  for (const ir::Value& v : g.values()) {
    const size_t s = static_cast<size_t>(v.id);
    if (pb.kind[s] != StoreKind::preloaded) continue;
    const BufferId b = p.add_buffer(v.id, v.role, pb.bytes[s], Space::device);
    Buffer& buf = p.buffers[static_cast<size_t>(b)];
    buf.preloaded = true;
    buf.persistent = !pb.preloaded_freed(v.id);
    cur[s] = p.binding[s] = b;
  }

  // Computes, with the buffers they read and write; frees are added afterwards.
  std::vector<Instr> computes;
  computes.reserve(seq.size());
  std::vector<int> last_read;  // per buffer: index of its last compute
  last_read.assign(p.buffers.size(), -1);
  std::vector<int> runs(static_cast<size_t>(g.num_nodes()), 0);
  for (const Step& st : seq) {
    check_step(pb, st, runs);
    const ir::Node& n = g.node(st.node);
    const int k = static_cast<int>(computes.size());
    Instr in;
    in.kind = InstrKind::compute;
    in.node = n.id;
    in.recompute = st.recompute;
    for (ir::ValueId v : n.inputs) {
      const BufferId b = cur[static_cast<size_t>(pb.storage(v))];
      DLMEM_CHECK(b != kNoBuffer, "step ", k, " (", n.name, ") reads ", g.value(v).name, " before it exists");
      in.inputs.push_back(b);
      last_read[static_cast<size_t>(b)] = k;
    }
    if (ir::op_def(n.op).view) {
      for (size_t o = 0; o < n.outputs.size(); ++o) in.outputs.push_back(in.inputs.at(0));
    } else {
      for (ir::ValueId o : n.outputs) {
        const size_t s = static_cast<size_t>(o);
        const ir::Value& val = g.value(o);
        if (pb.kind[s] == StoreKind::kept)
          DLMEM_CHECK(cur[s] == kNoBuffer, "kept value ", val.name, " materialised twice");
        const BufferId b = p.add_buffer(o, val.role, pb.bytes[s], Space::device);
        p.buffers[static_cast<size_t>(b)].persistent = pb.kind[s] == StoreKind::kept;
        last_read.push_back(k);
        cur[s] = b;
        if (p.binding[s] == kNoBuffer) p.binding[s] = b;
        in.outputs.push_back(b);
      }
    }
    if (n.workspace != ir::kNoValue) {
      const ir::Value& ws = g.value(n.workspace);
      in.workspace = p.add_buffer(ws.id, ws.role, ws.type.bytes(), Space::device);
      last_read.push_back(k);
      if (p.binding[static_cast<size_t>(ws.id)] == kNoBuffer) p.binding[static_cast<size_t>(ws.id)] = in.workspace;
    }
    computes.push_back(std::move(in));
  }
  for (const PNode& n : pb.nodes)
    DLMEM_CHECK(runs[static_cast<size_t>(n.id)] == 1, "sequence runs ", g.node(n.id).name, " ",
                runs[static_cast<size_t>(n.id)], " times (not as a recomputation)");
  // Views share their storage's buffer.
  for (const ir::Value& v : g.values())
    if (!pb.live->is_storage(v.id)) p.binding[static_cast<size_t>(v.id)] = p.binding[static_cast<size_t>(pb.storage(v.id))];

  std::vector<std::vector<BufferId>> frees(computes.size());
  for (const Buffer& b : p.buffers) {
    const int last = last_read[static_cast<size_t>(b.id)];
    if (!b.persistent && last >= 0) frees[static_cast<size_t>(last)].push_back(b.id);
  }
  p.program.reserve(computes.size() * 2);
  for (size_t k = 0; k < computes.size(); ++k) {
    p.program.push_back(std::move(computes[k]));
    for (BufferId b : frees[k]) {
      Instr f;
      f.kind = InstrKind::free;
      f.buffer = b;
      p.program.push_back(std::move(f));
    }
  }
  return p;
}

SequenceCost evaluate(const Problem& pb, const Sequence& seq) {
  // The emitter's accounting without building the plan: every materialisation lives
  // from its compute to its last reader; preloaded ones from the start.
  const ir::Graph& g = *pb.graph;
  constexpr int kForever = std::numeric_limits<int>::max();
  struct Mat {
    uint64_t bytes;
    int begin, last;
  };
  std::vector<Mat> mats;
  std::vector<int> cur(static_cast<size_t>(g.num_values()), -1);
  for (const ir::Value& v : g.values()) {
    const size_t s = static_cast<size_t>(v.id);
    if (pb.kind[s] != StoreKind::preloaded) continue;
    cur[s] = static_cast<int>(mats.size());
    mats.push_back({pb.bytes[s], 0, !pb.preloaded_freed(v.id) ? kForever : -1});
  }
  SequenceCost c;
  const int n = static_cast<int>(seq.size());
  std::vector<uint64_t> ws(static_cast<size_t>(n), 0);
  for (int k = 0; k < n; ++k) {
    const Step& st = seq[static_cast<size_t>(k)];
    const PNode& node = pb.node(st.node);
    for (ir::ValueId s : node.inputs) {
      const int m = cur[static_cast<size_t>(s)];
      DLMEM_CHECK(m >= 0, "step ", k, " reads ", g.value(s).name, " before it exists");
      if (mats[static_cast<size_t>(m)].last != kForever) mats[static_cast<size_t>(m)].last = k;
    }
    for (ir::ValueId o : node.outputs) {
      cur[static_cast<size_t>(o)] = static_cast<int>(mats.size());
      mats.push_back({pb.bytes[static_cast<size_t>(o)], k, pb.kind[static_cast<size_t>(o)] == StoreKind::kept ? kForever : k});
    }
    ws[static_cast<size_t>(k)] = node.workspace;
    if (st.recompute) {
      c.extra_flops += node.flops;
      c.recomputations++;
    }
  }
  std::vector<int64_t> delta(static_cast<size_t>(n) + 1, 0);
  for (const Mat& m : mats) {
    if (m.last < 0 && m.begin == 0 && m.last != kForever) {
      continue;  // a preloaded storage nobody reads and that is not persistent: never touched
    }
    delta[static_cast<size_t>(m.begin)] += static_cast<int64_t>(m.bytes);
    if (m.last != kForever) delta[static_cast<size_t>(m.last) + 1] -= static_cast<int64_t>(m.bytes);
  }
  int64_t live = 0;
  for (int k = 0; k < n; ++k) {
    live += delta[static_cast<size_t>(k)];
    c.peak = std::max(c.peak, static_cast<uint64_t>(live) + ws[static_cast<size_t>(k)]);
  }
  return c;
}

Sequence keep_sequence(const Problem& pb, const std::vector<bool>& keep) {
  Sequence seq;
  seq.reserve(pb.nodes.size() * 2);
  const size_t nv = pb.kind.size();
  std::vector<bool> resident(nv, true);
  for (int i = 0; i < pb.num_forward; ++i) seq.push_back({i, false});
  for (size_t s = 0; s < nv; ++s)
    if (pb.kind[s] == StoreKind::evictable) resident[s] = keep[s];

  // Depth-first rebuild of storage s: its producer runs after its missing inputs.
  std::vector<std::pair<ir::NodeId, size_t>> stack;  // (node, next input to check)
  auto rebuild = [&](ir::ValueId s) {
    stack.push_back({pb.producer[static_cast<size_t>(s)], 0});
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      const PNode& p = pb.node(node);
      if (next < p.inputs.size()) {
        const ir::ValueId in = p.inputs[next++];
        if (!resident[static_cast<size_t>(in)]) {
          DLMEM_CHECK(pb.evictable(in), "cannot rebuild ", pb.graph->value(in).name);
          stack.push_back({pb.producer[static_cast<size_t>(in)], 0});
        }
        continue;
      }
      seq.push_back({node, true});
      for (ir::ValueId o : p.outputs) resident[static_cast<size_t>(o)] = true;
      stack.pop_back();
    }
  };
  for (int i = pb.num_forward; i < pb.num_nodes(); ++i) {
    for (ir::ValueId s : pb.node(i).inputs)
      if (!resident[static_cast<size_t>(s)]) rebuild(s);
    seq.push_back({i, false});
  }
  return seq;
}

}  // namespace dlmem::planners::recompute
