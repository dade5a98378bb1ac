#include "plan/plan.h"

#include <algorithm>
#include <array>
#include <unordered_set>

#include "util/error.h"

namespace dlmem::plan {

std::string_view instr_name(InstrKind k) {
  static constexpr std::array<std::string_view, 6> names = {"compute",  "free",     "swap_out",
                                                            "swap_in",  "compress", "decompress"};
  return names[static_cast<size_t>(k)];
}
std::string_view stream_name(Stream s) {
  static constexpr std::array<std::string_view, 3> names = {"compute", "d2h", "h2d"};
  return names[static_cast<size_t>(s)];
}

BufferId Plan::add_buffer(ir::ValueId value, ir::Role role, uint64_t bytes, Space space) {
  Buffer b;
  b.id = static_cast<BufferId>(buffers.size());
  b.value = value;
  b.role = role;
  b.bytes = bytes;
  b.space = space;
  buffers.push_back(b);
  return b.id;
}

std::vector<ir::NodeId> schedule_of(const Plan& p) {
  std::vector<ir::NodeId> order;
  for (const Instr& in : p.program)
    if (in.kind == InstrKind::compute && !in.recompute) order.push_back(in.node);
  return order;
}

void compute_lifetimes(Plan& p) {
  const int n = static_cast<int>(p.program.size());
  for (Buffer& b : p.buffers) {
    b.begin = b.preloaded ? 0 : -1;
    b.end = n;
  }
  auto touch = [&](BufferId id, int i) {
    DLMEM_CHECK(id >= 0 && static_cast<size_t>(id) < p.buffers.size(), "instruction ", i,
                " names buffer ", id, " which does not exist");
    Buffer& b = p.buffers[static_cast<size_t>(id)];
    if (b.begin < 0) b.begin = i;
  };
  for (int i = 0; i < n; ++i) {
    const Instr& in = p.program[static_cast<size_t>(i)];
    for (BufferId b : in.inputs) touch(b, i);
    for (BufferId b : in.outputs) touch(b, i);
    if (in.workspace != kNoBuffer) touch(in.workspace, i);
    if (in.kind == InstrKind::free) {
      touch(in.buffer, i);
      p.buffers[static_cast<size_t>(in.buffer)].end = i;
    }
  }
  for (Buffer& b : p.buffers)
    if (b.begin < 0) b.begin = b.end = 0;  // never used: occupies nothing
}

std::vector<analysis::RoleBytes> resident_by_role(const Plan& p) {
  const size_t n = p.program.size();
  std::vector<analysis::RoleBytes> delta(n + 1, analysis::RoleBytes{});
  for (const Buffer& b : p.buffers) {
    if (b.space != Space::device || b.begin >= b.end) continue;
    delta[static_cast<size_t>(b.begin)][static_cast<size_t>(b.role)] += b.bytes;
    delta[static_cast<size_t>(b.end)][static_cast<size_t>(b.role)] -= b.bytes;
  }
  std::vector<analysis::RoleBytes> out(n);
  analysis::RoleBytes cur{};
  for (size_t i = 0; i < n; ++i) {
    for (size_t r = 0; r < cur.size(); ++r) cur[r] += delta[i][r];
    out[i] = cur;
  }
  return out;
}

void compute_stats(const ir::Graph& g, Plan& p) {
  // Only the figures derived here are reset: planners may have set others (a solver's
  // objective and gap, the planning time, the lower bound).
  PlanStats& s = p.stats;
  s.peak_device = 0;
  s.peak_instr = -1;
  s.peak_by_role = {};
  s.no_reuse = 0;
  s.flops = s.extra_flops = 0;
  s.bytes_to_host = s.bytes_to_device = 0;
  for (const Buffer& b : p.buffers)
    if (b.space == Space::device && b.begin < b.end) s.no_reuse += b.bytes;
  const std::vector<analysis::RoleBytes> live = resident_by_role(p);
  for (size_t i = 0; i < live.size(); ++i) {
    const uint64_t t = analysis::total(live[i]);
    if (t > s.peak_device || s.peak_instr < 0) {
      s.peak_device = t;
      s.peak_instr = static_cast<int>(i);
      s.peak_by_role = live[i];
    }
  }
  for (const Instr& in : p.program) {
    if (in.kind == InstrKind::compute) {
      const double f = ir::op_cost(g, g.node(in.node)).flops;
      s.flops += f;
      if (in.recompute) s.extra_flops += f;
    } else if (in.kind == InstrKind::swap_out) {
      s.bytes_to_host += p.buffers[static_cast<size_t>(in.inputs.at(0))].bytes;
    } else if (in.kind == InstrKind::swap_in) {
      s.bytes_to_device += p.buffers[static_cast<size_t>(in.outputs.at(0))].bytes;
    }
  }
}

Plan make_default_plan(const ir::Graph& g, const analysis::Liveness& L, const DefaultPlanOptions& o) {
  Plan p;
  p.budget = o.budget;
  p.binding.assign(static_cast<size_t>(g.num_values()), kNoBuffer);
  for (const ir::Value& v : g.values()) {
    if (!L.is_storage(v.id)) continue;
    BufferId b = p.add_buffer(v.id, v.role, v.type.bytes(), Space::device);
    Buffer& buf = p.buffers[static_cast<size_t>(b)];
    buf.preloaded = v.producer == ir::kNoNode;
    buf.persistent = analysis::is_persistent(v) || L.last[static_cast<size_t>(v.id)] >= L.steps ||
                     (buf.preloaded && L.last[static_cast<size_t>(v.id)] < 0);
    p.binding[static_cast<size_t>(v.id)] = b;
  }
  for (const ir::Value& v : g.values())
    p.binding[static_cast<size_t>(v.id)] = p.binding[static_cast<size_t>(L.storage[static_cast<size_t>(v.id)])];

  // Buffers to free after each schedule position.
  std::vector<std::vector<BufferId>> frees(static_cast<size_t>(L.steps));
  for (const Buffer& b : p.buffers) {
    const int last = L.last[static_cast<size_t>(b.value)];
    if (!b.persistent && last >= 0 && last < L.steps) frees[static_cast<size_t>(last)].push_back(b.id);
  }
  for (size_t i = 0; i < L.order.size(); ++i) {
    const ir::Node& n = g.node(L.order[i]);
    Instr in;
    in.kind = InstrKind::compute;
    in.node = n.id;
    for (ir::ValueId v : n.inputs) in.inputs.push_back(p.buffer_of(v));
    for (ir::ValueId v : n.outputs) in.outputs.push_back(p.buffer_of(v));
    if (n.workspace != ir::kNoValue) in.workspace = p.buffer_of(n.workspace);
    p.program.push_back(std::move(in));
    for (BufferId b : frees[i]) {
      Instr f;
      f.kind = InstrKind::free;
      f.buffer = b;
      p.program.push_back(std::move(f));
    }
  }
  compute_lifetimes(p);
  compute_stats(g, p);
  return p;
}

}  // namespace dlmem::plan
