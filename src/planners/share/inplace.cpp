#include "planners/share/inplace.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "util/error.h"

namespace dlmem::planners {

namespace {

// Union of buffers that became one (the representative is the input's buffer, the
// earliest of the group).
struct Groups {
  std::vector<BufferId> rep;
  explicit Groups(size_t n) : rep(n) { std::iota(rep.begin(), rep.end(), 0); }
  BufferId find(BufferId b) {
    if (b == kNoBuffer) return b;
    BufferId r = b;
    while (rep[static_cast<size_t>(r)] != r) r = rep[static_cast<size_t>(r)];
    while (rep[static_cast<size_t>(b)] != r) b = std::exchange(rep[static_cast<size_t>(b)], r);
    return r;
  }
};

template <typename F>
void for_each_use(const Instr& in, F&& f) {  // every buffer an instruction touches, frees excluded
  for (BufferId b : in.inputs) f(b);
  for (BufferId b : in.outputs) f(b);
  if (in.workspace != kNoBuffer) f(in.workspace);
}

}  // namespace

InplaceStats apply_inplace(const ir::Graph& g, Plan& p) {
  const size_t nb = p.buffers.size();
  const int n = static_cast<int>(p.program.size());
  std::vector<int> first(nb, n), last(nb, -1);
  for (int i = 0; i < n; ++i)
    for_each_use(p.program[static_cast<size_t>(i)], [&](BufferId b) {
      DLMEM_CHECK(b >= 0 && static_cast<size_t>(b) < nb, "instruction ", i, " names buffer ", b);
      first[static_cast<size_t>(b)] = std::min(first[static_cast<size_t>(b)], i);
      last[static_cast<size_t>(b)] = i;
    });

  Groups groups(nb);
  InplaceStats stats;
  for (int i = 0; i < n; ++i) {
    const Instr& in = p.program[static_cast<size_t>(i)];
    if (in.kind != InstrKind::compute) continue;
    const ir::Node& node = g.node(in.node);
    const ir::OpDef& def = ir::op_def(node.op);
    if (def.view) continue;
    for (const auto& [o, k] : def.inplace) {
      if (static_cast<size_t>(o) >= in.outputs.size() || static_cast<size_t>(k) >= in.inputs.size()) continue;
      if (def.mutates_input(k)) continue;
      const BufferId bi = groups.find(in.inputs[static_cast<size_t>(k)]);
      const BufferId bo = groups.find(in.outputs[static_cast<size_t>(o)]);
      if (bi == bo) continue;
      const Buffer& src = p.buffers[static_cast<size_t>(bi)];
      const Buffer& dst = p.buffers[static_cast<size_t>(bo)];
      // Note [In-place condition].
      if (src.space != Space::device || dst.space != Space::device) continue;
      if (src.preloaded || src.persistent || dst.preloaded || dst.persistent) continue;
      if (src.bytes != dst.bytes) continue;
      if (last[static_cast<size_t>(bi)] != i || first[static_cast<size_t>(bo)] != i) continue;
      int reads = 0;
      bool clash = groups.find(in.workspace) == bi || groups.find(in.workspace) == bo;
      for (BufferId b : in.inputs) {
        const BufferId r = groups.find(b);
        reads += r == bi;
        clash = clash || r == bo;
      }
      for (size_t q = 0; q < in.outputs.size(); ++q)
        clash = clash || (q != static_cast<size_t>(o) && groups.find(in.outputs[q]) == bi);
      if (reads != 1 || clash) continue;
      groups.rep[static_cast<size_t>(bo)] = bi;
      last[static_cast<size_t>(bi)] = last[static_cast<size_t>(bo)];
      stats.writes++;
      stats.bytes += dst.bytes;
    }
  }
  if (stats.writes == 0) return stats;

  // Each group is freed once, where its last member was freed.
  std::vector<int> final_free(nb, -1);
  for (int i = 0; i < n; ++i) {
    const Instr& in = p.program[static_cast<size_t>(i)];
    if (in.kind == InstrKind::free) final_free[static_cast<size_t>(groups.find(in.buffer))] = i;
  }
  // Surviving buffers get dense new ids; the program is rewritten through them.
  std::vector<BufferId> new_id(nb, kNoBuffer);
  std::vector<Buffer> buffers;
  for (size_t b = 0; b < nb; ++b) {
    if (groups.find(static_cast<BufferId>(b)) != static_cast<BufferId>(b)) continue;
    new_id[b] = static_cast<BufferId>(buffers.size());
    buffers.push_back(p.buffers[b]);
    buffers.back().id = new_id[b];
  }
  auto map = [&](BufferId b) { return b == kNoBuffer ? b : new_id[static_cast<size_t>(groups.find(b))]; };
  std::vector<int> new_pos(static_cast<size_t>(n), -1);
  std::vector<Instr> program;
  program.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Instr in = std::move(p.program[static_cast<size_t>(i)]);
    if (in.kind == InstrKind::free && final_free[static_cast<size_t>(groups.find(in.buffer))] != i) continue;
    for (BufferId& b : in.inputs) b = map(b);
    for (BufferId& b : in.outputs) b = map(b);
    in.workspace = map(in.workspace);
    in.buffer = map(in.buffer);
    for (int& w : in.waits) {
      DLMEM_CHECK(new_pos[static_cast<size_t>(w)] >= 0, "instruction ", i, " waits on a free that the in-place pass removed");
      w = new_pos[static_cast<size_t>(w)];
    }
    new_pos[static_cast<size_t>(i)] = static_cast<int>(program.size());
    program.push_back(std::move(in));
  }
  for (BufferId& b : p.binding) b = map(b);
  p.program = std::move(program);
  p.buffers = std::move(buffers);
  compute_lifetimes(p);
  compute_stats(g, p);
  return stats;
}

InplaceStats count_inplace(const ir::Graph& g, const Plan& p) {
  InplaceStats s;
  for (const Instr& in : p.program) {
    if (in.kind != InstrKind::compute || ir::op_def(g.node(in.node).op).view) continue;
    for (BufferId o : in.outputs)
      if (std::find(in.inputs.begin(), in.inputs.end(), o) != in.inputs.end()) {
        s.writes++;
        s.bytes += p.buffers[static_cast<size_t>(o)].bytes;
      }
  }
  return s;
}

void check_contents(const ir::Graph& g, const Plan& p) {
  // The storage of each value: views hold their source's bytes.
  std::vector<ir::ValueId> storage(static_cast<size_t>(g.num_values()));
  std::iota(storage.begin(), storage.end(), 0);
  for (const ir::Node& n : g.nodes())
    if (ir::op_def(n.op).view)
      storage[static_cast<size_t>(n.outputs[0])] = storage[static_cast<size_t>(n.inputs[0])];
  auto name = [&](ir::ValueId v) { return v == ir::kNoValue ? std::string("nothing") : "'" + g.value(v).name + "'"; };

  std::vector<ir::ValueId> holds(p.buffers.size(), ir::kNoValue);
  for (const Buffer& b : p.buffers)
    if (b.preloaded) holds[static_cast<size_t>(b.id)] = b.value;
  for (size_t i = 0; i < p.program.size(); ++i) {
    const Instr& in = p.program[i];
    switch (in.kind) {
      case InstrKind::compute: {
        const ir::Node& n = g.node(in.node);
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          const ir::ValueId want = storage[static_cast<size_t>(n.inputs[k])];
          const ir::ValueId got = holds[static_cast<size_t>(in.inputs[k])];
          DLMEM_CHECK(got == want, "instruction ", i, " (", n.name, ") reads ", name(want), " from buffer ",
                      in.inputs[k], ", which holds ", name(got));
        }
        for (size_t k = 0; k < n.outputs.size(); ++k)
          holds[static_cast<size_t>(in.outputs[k])] = storage[static_cast<size_t>(n.outputs[k])];
        if (in.workspace != kNoBuffer) holds[static_cast<size_t>(in.workspace)] = ir::kNoValue;
        break;
      }
      case InstrKind::free: holds[static_cast<size_t>(in.buffer)] = ir::kNoValue; break;
      default: holds[static_cast<size_t>(in.outputs.at(0))] = holds[static_cast<size_t>(in.inputs.at(0))]; break;
    }
  }
}

Pass inplace_pass() {
  return [](const PlanContext& ctx, Plan p) {
    apply_inplace(ctx.graph, p);
    return p;
  };
}

}  // namespace dlmem::planners
