#include "plan/swap/emit.h"

#include <algorithm>

#include "util/error.h"

namespace dlmem::plan::swap {

std::vector<std::vector<int>> storage_accesses(const ir::Graph& g, const analysis::Liveness& L) {
  std::vector<std::vector<int>> acc(static_cast<size_t>(g.num_values()));
  for (int i = 0; i < L.steps; ++i) {
    const ir::Node& n = g.node(L.order[static_cast<size_t>(i)]);
    auto touch = [&](ir::ValueId v) {
      auto& a = acc[static_cast<size_t>(L.storage[static_cast<size_t>(v)])];
      if (a.empty() || a.back() != i) a.push_back(i);
    };
    for (ir::ValueId v : n.inputs) touch(v);
    for (ir::ValueId v : n.outputs) touch(v);
    if (n.workspace != ir::kNoValue) touch(n.workspace);
  }
  return acc;
}

bool swappable(const ir::Graph& g, const analysis::Liveness& L, ir::ValueId s) {
  const ir::Value& v = g.value(s);
  if (!L.is_storage(s) || analysis::is_persistent(v)) return false;
  if (v.role != ir::Role::activation && v.role != ir::Role::input) return false;
  const int last = L.last[static_cast<size_t>(s)];
  return last >= 0 && last < L.steps && v.type.bytes() > 0;
}

std::vector<int> compute_index(const Plan& p, const analysis::Liveness& L) {
  std::vector<int> pos_of_node(L.order.size() ? *std::max_element(L.order.begin(), L.order.end()) + 1 : 0, -1);
  for (size_t i = 0; i < L.order.size(); ++i) pos_of_node[static_cast<size_t>(L.order[i])] = static_cast<int>(i);
  std::vector<int> idx(L.order.size(), -1);
  for (size_t k = 0; k < p.program.size(); ++k) {
    const Instr& in = p.program[k];
    if (in.kind != InstrKind::compute || in.recompute) continue;
    if (in.node < 0 || static_cast<size_t>(in.node) >= pos_of_node.size()) continue;
    const int pos = pos_of_node[static_cast<size_t>(in.node)];
    if (pos >= 0) idx[static_cast<size_t>(pos)] = static_cast<int>(k);
  }
  return idx;
}

Plan emit_swap_plan(const ir::Graph& g, const analysis::Liveness& L, const std::vector<SwapItem>& items,
                    std::vector<EmittedSwap>* emitted) {
  Plan p = make_default_plan(g, L);
  const int steps = L.steps;
  // The default plan's frees, by position, as storages (the buffer is chosen at emission).
  std::vector<std::vector<ir::ValueId>> frees(static_cast<size_t>(steps));
  for (const Buffer& b : p.buffers) {
    const int last = L.last[static_cast<size_t>(b.value)];
    if (!b.persistent && last >= 0 && last < steps) frees[static_cast<size_t>(last)].push_back(b.value);
  }
  p.program.clear();

  struct Live {
    BufferId host = kNoBuffer, again = kNoBuffer;  // H, A2
    int out = -1, in = -1;                         // program indices of the copies
  };
  std::vector<Live> st(items.size());
  std::vector<int> item_of(static_cast<size_t>(g.num_values()), -1);
  std::vector<std::vector<size_t>> outs(static_cast<size_t>(steps) + 1), releases(static_cast<size_t>(steps)),
      triggers(static_cast<size_t>(steps)), syncs(static_cast<size_t>(steps));
  for (size_t k = 0; k < items.size(); ++k) {
    const SwapItem& it = items[k];
    DLMEM_CHECK(it.storage >= 0 && it.storage < g.num_values() && L.is_storage(it.storage), "swap item ", k,
                " names no storage");
    DLMEM_CHECK(item_of[static_cast<size_t>(it.storage)] < 0, "storage ", g.value(it.storage).name, " swapped twice");
    const int sync = it.sync_at < 0 ? it.use : it.sync_at;
    DLMEM_CHECK(it.out_after >= -1 && it.out_after <= it.last_before && it.last_before <= it.free_after &&
                    it.free_after < it.trigger && it.trigger <= sync && sync <= it.use && it.use < steps,
                "swap item for ", g.value(it.storage).name, " has positions out of order: out ", it.out_after, " last ",
                it.last_before, " free ", it.free_after, " trigger ", it.trigger, " sync ", sync, " use ", it.use);
    item_of[static_cast<size_t>(it.storage)] = static_cast<int>(k);
    const BufferId a = p.buffer_of(it.storage);
    const Buffer ab = p.buffers[static_cast<size_t>(a)];  // a copy: add_buffer reallocates
    DLMEM_CHECK(!ab.persistent && ab.space == Space::device, "swapping a persistent or host buffer");
    st[k].host = p.add_buffer(it.storage, ab.role, ab.bytes, Space::host);
    st[k].again = p.add_buffer(it.storage, ab.role, ab.bytes, Space::device);
    outs[static_cast<size_t>(it.out_after + 1)].push_back(k);
    releases[static_cast<size_t>(it.free_after)].push_back(k);
    triggers[static_cast<size_t>(it.trigger)].push_back(k);
    syncs[static_cast<size_t>(sync)].push_back(k);
  }
  // Swap-ins issued at one position go in the order of their uses (the h2d stream is FIFO).
  for (auto& t : triggers)
    std::stable_sort(t.begin(), t.end(), [&](size_t x, size_t y) { return items[x].use < items[y].use; });

  std::vector<BufferId> cur(static_cast<size_t>(g.num_values()), kNoBuffer);
  for (const ir::Value& v : g.values())
    if (L.is_storage(v.id)) cur[static_cast<size_t>(v.id)] = p.buffer_of(v.id);
  auto buf = [&](ir::ValueId v) { return cur[static_cast<size_t>(L.storage[static_cast<size_t>(v)])]; };
  auto emit = [&](Instr in) {
    p.program.push_back(std::move(in));
    return static_cast<int>(p.program.size()) - 1;
  };
  auto emit_outs = [&](int slot) {
    for (size_t k : outs[static_cast<size_t>(slot)]) {
      Instr in;
      in.kind = InstrKind::swap_out;
      in.stream = Stream::d2h;
      in.inputs = {buf(items[k].storage)};
      in.outputs = {st[k].host};
      st[k].out = emit(std::move(in));
    }
  };
  auto emit_free = [&](BufferId b, std::vector<int> waits) {
    Instr f;
    f.kind = InstrKind::free;
    f.buffer = b;
    f.waits = std::move(waits);
    emit(std::move(f));
  };

  emit_outs(0);
  for (int i = 0; i < steps; ++i) {
    for (size_t k : triggers[static_cast<size_t>(i)]) {
      Instr in;
      in.kind = InstrKind::swap_in;
      in.stream = Stream::h2d;
      in.inputs = {st[k].host};
      in.outputs = {st[k].again};
      in.waits = {st[k].out};
      st[k].in = emit(std::move(in));
      cur[static_cast<size_t>(items[k].storage)] = st[k].again;
    }
    const ir::Node& n = g.node(L.order[static_cast<size_t>(i)]);
    Instr c;
    c.kind = InstrKind::compute;
    c.node = n.id;
    for (ir::ValueId v : n.inputs) c.inputs.push_back(buf(v));
    for (ir::ValueId v : n.outputs) c.outputs.push_back(buf(v));
    if (n.workspace != ir::kNoValue) c.workspace = buf(n.workspace);
    for (size_t k : syncs[static_cast<size_t>(i)]) c.waits.push_back(st[k].in);
    std::sort(c.waits.begin(), c.waits.end());
    emit(std::move(c));
    emit_outs(i + 1);
    for (size_t k : syncs[static_cast<size_t>(i)]) emit_free(st[k].host, {st[k].in});
    for (size_t k : releases[static_cast<size_t>(i)]) emit_free(p.buffer_of(items[k].storage), {st[k].out});
    for (ir::ValueId v : frees[static_cast<size_t>(i)]) emit_free(cur[static_cast<size_t>(v)], {});
  }
  compute_lifetimes(p);
  compute_stats(g, p);
  if (emitted) {
    emitted->resize(items.size());
    for (size_t k = 0; k < items.size(); ++k) (*emitted)[k] = {st[k].out, st[k].in};
  }
  return p;
}

}  // namespace dlmem::plan::swap
