#include "planners/recompute/chain.h"

#include <algorithm>
#include <cmath>

#include "planners/recompute/recompute.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners::recompute {

ChainDP::ChainDP(std::vector<ChainStage> stages, int max_memory)
    : st_(std::move(stages)), l_(static_cast<int>(st_.size())), m_(max_memory) {
  DLMEM_CHECK(l_ > 0 && m_ >= 0 && l_ < INT16_MAX, "chain of ", l_, " stages, memory ", m_);
  const size_t n = static_cast<size_t>(l_) * static_cast<size_t>(l_) * static_cast<size_t>(m_ + 1);
  cost_.assign(n, kInfinity);
  choice_.assign(n, -1);
  wg_prefix_.assign(static_cast<size_t>(l_) + 1, 0);
  for (int s = 0; s < l_; ++s) wg_prefix_[static_cast<size_t>(s) + 1] = wg_prefix_[static_cast<size_t>(s)] + st_[static_cast<size_t>(s)].wgrad;
  auto wg = [&](int a, int b) { return wg_prefix_[static_cast<size_t>(b) + 1] - wg_prefix_[static_cast<size_t>(a)]; };
  // Interval by interval; for each (s, t) the memories run innermost, so the table
  // rows read (C(s', t, .) and C(s, s'-1, .)) are walked contiguously.
  for (int len = 0; len < l_; ++len) {
    for (int s = 0; s + len < l_; ++s) {
      const int t = s + len;
      const ChainStage& a = st_[static_cast<size_t>(s)];
      const int dt = st_[static_cast<size_t>(t)].delta;
      double* best = &cost_[at(s, t, 0)];
      int16_t* how = &choice_[at(s, t, 0)];
      // all: forward_all(s), C(s+1, t, m - tape[s]), backward(s).
      const int need_all = std::max(dt + a.fwd_all, s == t ? a.bwd : a.bwd + wg(s + 1, t));
      for (int m = std::max(0, need_all); m <= m_; ++m) {
        if (s == t) {
          best[m] = a.cost;
          how[m] = 0;
        } else if (m - a.tape >= 0) {
          const double sub = cost_[at(s + 1, t, m - a.tape)];
          if (sub < kInfinity) {
            best[m] = a.cost + sub;
            how[m] = 0;
          }
        }
      }
      // checkpoint: forward(s..s'-1), C(s', t, m - x[s'-1]), C(s, s'-1, m - wgrad[s'..t]).
      double sweep = 0;
      int need_sweep = 0;  // memory the forwards s..s'-1 need
      for (int sp = s + 1; sp <= t; ++sp) {
        const int k = sp - 1;
        const ChainStage& f = st_[static_cast<size_t>(k)];
        need_sweep = std::max(need_sweep, dt + (k > s ? st_[static_cast<size_t>(k) - 1].x : 0) + f.fwd);
        sweep += f.cost;
        const int w = wg(sp, t);
        const double* c1 = &cost_[at(sp, t, 0)];
        const double* c2 = &cost_[at(s, sp - 1, 0)];
        for (int m = std::max({need_sweep, f.x, w}); m <= m_; ++m) {
          const double c = sweep + c1[m - f.x] + c2[m - w];
          if (c < best[m]) {
            best[m] = c;
            how[m] = static_cast<int16_t>(sp - s);
          }
        }
      }
    }
  }
}

size_t ChainDP::at(int s, int t, int m) const {
  return (static_cast<size_t>(s) * static_cast<size_t>(l_) + static_cast<size_t>(t)) * static_cast<size_t>(m_ + 1) +
         static_cast<size_t>(m);
}

double ChainDP::cost(int memory) const {
  if (memory < 0) return kInfinity;
  return cost_[at(0, l_ - 1, std::min(memory, m_))];
}

void ChainDP::build(int s, int t, int m, std::vector<ChainOp>& out) const {
  const int16_t how = choice_[at(s, t, m)];
  DLMEM_CHECK(how >= 0, "chain schedule through an infeasible state");
  if (how == 0) {
    out.push_back({ChainOpKind::forward_all, s});
    if (s < t) build(s + 1, t, m - st_[static_cast<size_t>(s)].tape, out);
    out.push_back({ChainOpKind::backward, s});
    return;
  }
  const int sp = s + how;
  for (int k = s; k < sp; ++k) {
    out.push_back({ChainOpKind::forward, k});
    if (k > s) out.push_back({ChainOpKind::drop, k - 1});  // the sweep keeps only its last output
  }
  build(sp, t, m - st_[static_cast<size_t>(sp) - 1].x, out);
  out.push_back({ChainOpKind::drop, sp - 1});
  build(s, sp - 1, m - (wg_prefix_[static_cast<size_t>(t) + 1] - wg_prefix_[static_cast<size_t>(sp)]), out);
}

std::vector<ChainOp> ChainDP::schedule(int memory) const {
  std::vector<ChainOp> ops;
  if (cost(memory) >= kInfinity) return ops;
  build(0, l_ - 1, std::min(memory, m_), ops);
  return ops;
}

namespace {

// Bytes of the chain model of one unit (Note [Chain model]), before slotting.
struct UnitBytes {
  double cost = 0;
  uint64_t x = 0, tape = 0, fwd = 0, fwd_all = 0, bwd = 0, delta = 0, wgrad = 0;
};

std::vector<UnitBytes> unit_bytes(const Problem& pb, const Chain& ch) {
  const ir::Graph& g = *pb.graph;
  const size_t nv = pb.kind.size();
  std::vector<int> unit_of_node(static_cast<size_t>(pb.num_nodes()), -1);
  for (size_t u = 0; u < ch.units.size(); ++u) {
    for (int i = ch.units[u].fwd_begin; i < ch.units[u].fwd_end; ++i) unit_of_node[static_cast<size_t>(i)] = static_cast<int>(u);
    for (int i = ch.units[u].bwd_begin; i < ch.units[u].bwd_end; ++i) unit_of_node[static_cast<size_t>(i)] = static_cast<int>(u);
  }
  // Per storage: last forward reader, last backward reader, last reader of all.
  std::vector<int> last_f(nv, -1), last_b(nv, -1), last_any(nv, -1);
  std::vector<bool> read_by_bwd(nv, false);
  for (const PNode& n : pb.nodes)
    for (ir::ValueId s : n.inputs) {
      const size_t i = static_cast<size_t>(s);
      last_any[i] = std::max(last_any[i], n.id);
      if (n.forward) {
        last_f[i] = std::max(last_f[i], n.id);
      } else if (n.id < ch.updates_begin) {
        last_b[i] = std::max(last_b[i], n.id);
        read_by_bwd[i] = true;
      }
    }
  auto kept = [&](ir::ValueId s) { return pb.kind[static_cast<size_t>(s)] == StoreKind::kept; };
  auto is_wgrad = [&](ir::ValueId s) { return g.value(s).role == ir::Role::weight_gradient; };

  std::vector<UnitBytes> out(ch.units.size());
  for (size_t u = 0; u < ch.units.size(); ++u) {
    const Unit& un = ch.units[u];
    UnitBytes& b = out[u];
    std::vector<bool> in_tape(nv, false);
    for (int i = un.fwd_begin; i < un.fwd_end; ++i) {
      b.cost += pb.node(i).flops;
      for (ir::ValueId o : pb.node(i).outputs)
        if (read_by_bwd[static_cast<size_t>(o)] || kept(o) || o == un.out) in_tape[static_cast<size_t>(o)] = true;
    }
    if (un.out != ir::kNoValue) b.x = pb.bytes[static_cast<size_t>(un.out)];
    // Forwards: keep only the output (fwd) or the whole tape (fwd_all).
    for (bool all : {false, true}) {
      uint64_t live = 0, peak = 0;
      for (int i = un.fwd_begin; i < un.fwd_end; ++i) {
        const PNode& p = pb.node(i);
        live += p.out_bytes;
        peak = std::max(peak, live + p.workspace);
        auto drop = [&](ir::ValueId s) {
          const size_t k = static_cast<size_t>(s);
          if (pb.producer[k] < un.fwd_begin || pb.producer[k] >= un.fwd_end) return;  // not this unit's
          if (last_f[k] > i || s == un.out || kept(s) || (all && in_tape[k])) return;
          live -= pb.bytes[k];
        };
        for (ir::ValueId s : p.inputs) drop(s);
        for (ir::ValueId s : p.outputs)
          if (last_f[static_cast<size_t>(s)] < 0) drop(s);
      }
      (all ? b.fwd_all : b.fwd) = peak;
      if (all) b.tape = live;
    }
    // Gradients flowing in: produced by earlier-run backward nodes, read from here on.
    for (size_t s = 0; s < nv; ++s) {
      const ir::NodeId p = pb.producer[s];
      if (p == ir::kNoNode || pb.node(p).forward || is_wgrad(static_cast<ir::ValueId>(s))) continue;
      if (un.bwd_end > un.bwd_begin && p < un.bwd_begin && last_any[s] >= un.bwd_begin) b.delta += pb.bytes[s];
    }
    // Backward: from the tape and the incoming gradient.
    uint64_t live = b.tape + b.delta, peak = live;
    for (int i = un.bwd_begin; i < un.bwd_end; ++i) {
      const PNode& p = pb.node(i);
      live += p.out_bytes;
      peak = std::max(peak, live + p.workspace);
      for (ir::ValueId o : p.outputs)
        if (is_wgrad(o)) b.wgrad += pb.bytes[static_cast<size_t>(o)];
      auto drop = [&](ir::ValueId s) {
        const size_t k = static_cast<size_t>(s);
        if (in_tape[k]) {
          if (last_b[k] == i && !kept(s)) live -= pb.bytes[k];
        } else if (pb.kind[k] == StoreKind::fixed && !pb.node(pb.producer[k]).forward && !is_wgrad(s) &&
                   last_any[k] <= i) {
          live -= pb.bytes[k];
        }
      };
      for (ir::ValueId s : p.inputs) drop(s);
      for (ir::ValueId s : p.outputs)
        if (last_any[static_cast<size_t>(s)] < 0) drop(s);
    }
    b.bwd = peak;
  }
  return out;
}

int slots(uint64_t bytes, uint64_t slot) { return static_cast<int>((bytes + slot / 2) / slot); }

std::vector<ChainStage> to_stages(const std::vector<UnitBytes>& ub, uint64_t slot) {
  std::vector<ChainStage> st(ub.size());
  for (size_t u = 0; u < ub.size(); ++u) {
    const UnitBytes& b = ub[u];
    st[u] = {b.cost,           slots(b.x, slot),   slots(b.tape, slot),  slots(b.fwd, slot),
             slots(b.fwd_all, slot), slots(b.bwd, slot), slots(b.delta, slot), slots(b.wgrad, slot)};
  }
  return st;
}

// Merges consecutive units into at most `max_units` groups of similar forward length
// (a group boundary is still a cut), keeping the last unit on its own.
Chain group_units(const Chain& ch, size_t max_units) {
  if (ch.units.size() <= max_units) return ch;
  Chain out;
  out.updates_begin = ch.updates_begin;
  const size_t body = ch.units.size() - 1, groups = max_units - 1;
  for (size_t gi = 0; gi < groups; ++gi) {
    const size_t a = gi * body / groups, b = (gi + 1) * body / groups;
    if (a == b) continue;
    Unit u = ch.units[a];
    u.fwd_end = ch.units[b - 1].fwd_end;
    u.out = ch.units[b - 1].out;
    // Backward blocks run in reverse: the group's block spans from its last unit's
    // beginning to its first unit's end (empty blocks take no part).
    int bb = INT32_MAX, be = -1;
    for (size_t k = a; k < b; ++k)
      if (ch.units[k].bwd_end > ch.units[k].bwd_begin) {
        bb = std::min(bb, ch.units[k].bwd_begin);
        be = std::max(be, ch.units[k].bwd_end);
      }
    u.bwd_begin = be < 0 ? 0 : bb;
    u.bwd_end = be < 0 ? 0 : be;
    for (size_t k = a; k < b; ++k) u.recomputable = u.recomputable && ch.units[k].recomputable;
    out.units.push_back(u);
  }
  out.units.push_back(ch.units.back());
  return out;
}

}  // namespace

std::vector<ChainStage> chain_stages(const Problem& pb, const Chain& ch, uint64_t slot) {
  return to_stages(unit_bytes(pb, ch), std::max<uint64_t>(slot, 1));
}

Sequence chain_sequence(const Problem& pb, const Chain& ch, const std::vector<ChainOp>& ops) {
  const ir::Graph& g = *pb.graph;
  Sequence seq;
  std::vector<bool> done(static_cast<size_t>(pb.num_nodes()), false);
  for (const ChainOp& op : ops) {
    const Unit& u = ch.units[static_cast<size_t>(op.stage)];
    if (op.kind == ChainOpKind::drop) continue;  // the emitter frees after the last reader
    if (op.kind == ChainOpKind::backward) {
      for (int i = u.bwd_begin; i < u.bwd_end; ++i) seq.push_back({i, false});
      continue;
    }
    for (int i = u.fwd_begin; i < u.fwd_end; ++i) {
      if (done[static_cast<size_t>(i)] && ir::op_def(g.node(i).op).view) continue;  // a view is its input
      seq.push_back({i, done[static_cast<size_t>(i)]});
      done[static_cast<size_t>(i)] = true;
    }
  }
  for (int i = ch.updates_begin; i < pb.num_nodes(); ++i) seq.push_back({i, false});
  return seq;
}

std::optional<Sequence> chain_within(const Problem& pb, uint64_t target, uint64_t* reach, size_t* stages) {
  // The DP is O(L^3 M): group long chains (resnet1001) into at most 100 stages.
  const Chain ch = group_units(articulation_chain(pb), 100);
  if (stages) *stages = ch.units.size();
  if (reach) *reach = evaluate(pb, plain_sequence(pb)).peak;
  if (ch.units.size() < 2) return std::nullopt;  // no cut to checkpoint at
  const std::vector<UnitBytes> ub = unit_bytes(pb, ch);

  // Slots: fine enough that a stage's sizes are many slots, bounded for the DP's table.
  uint64_t total = 0;
  for (const UnitBytes& b : ub) total += b.tape + b.wgrad + b.delta;
  for (const UnitBytes& b : ub) total = std::max(total, std::max(b.fwd_all, b.bwd));
  const int max_slots = 400;
  const uint64_t slot = std::max<uint64_t>(1, total / max_slots);
  const ChainDP dp(to_stages(ub, slot), max_slots);

  auto try_memory = [&](int m, uint64_t& peak) -> std::optional<Sequence> {
    if (dp.cost(m) >= ChainDP::kInfinity) return std::nullopt;
    Sequence seq = chain_sequence(pb, ch, dp.schedule(m));
    peak = evaluate(pb, seq).peak;
    return seq;
  };
  // The largest DP memory whose emitted plan fits the target: the DP's cost only
  // falls as its memory grows, and the plan's real peak (which the DP's model
  // over-estimates: the emitter frees at last use) mostly grows with it. Bisection.
  std::optional<Sequence> best;
  int lo = -1, bad = max_slots;  // lo: largest known to fit (or below the DP's range)
  auto fits = [&](int m) {
    uint64_t peak = 0;
    std::optional<Sequence> s = try_memory(m, peak);
    if (!s || peak > target) return false;
    best = std::move(s);
    return true;
  };
  if (!fits(bad)) {
    while (bad - lo > 1) {
      const int mid = lo + (bad - lo) / 2;
      if (dp.cost(mid) >= ChainDP::kInfinity || fits(mid))
        lo = mid;
      else
        bad = mid;
    }
  }
  if (!best && reach) {
    // The smallest real peak is near the DP's smallest feasible memory.
    int first = 0;
    while (first <= max_slots && dp.cost(first) >= ChainDP::kInfinity) ++first;
    for (int m = first; m <= max_slots && m < first + 16; ++m) {
      uint64_t peak = 0;
      if (try_memory(m, peak)) *reach = std::min(*reach, peak);
    }
  }
  return best;
}

Plan plan_chain(const ir::Graph& g, const analysis::Liveness& live, uint64_t target) {
  const Problem pb = make_problem(g, live);
  const Sequence plain = plain_sequence(pb);
  if (target == 0 || evaluate(pb, plain).peak <= target) return emit_plan(pb, plain);
  uint64_t reach = 0;
  size_t stages = 0;
  std::optional<Sequence> seq = chain_within(pb, target, &reach, &stages);
  if (!seq)
    throw OutOfMemory("recompute:chain (", stages, " stages of the articulation chain) cannot keep the step within ",
                      human_bytes(target), " of live device memory; the smallest it reaches is ", human_bytes(reach),
                      stages < 2 ? ", as the graph has no cut to checkpoint at" : "", " (no policy goes below ",
                      human_bytes(pb.lower_bound), ", what node '", pb.lower_bound_node,
                      "' needs with the weights and optimizer state); use a budget of at least ", human_bytes(reach),
                      " or recompute:greedy")
        .reach(reach);
  return emit_plan(pb, *seq);
}

Pass chain_pass() {
  return [](const PlanContext& ctx, Plan) { return plan_chain(ctx.graph, ctx.live, ctx.target); };
}

}  // namespace dlmem::planners::recompute
