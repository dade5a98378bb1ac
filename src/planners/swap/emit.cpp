#include "planners/swap/emit.h"

#include <algorithm>

#include "planners/share/inplace.h"
#include "util/error.h"

namespace dlmem::planners::swap {

Plan share_base(const ir::Graph& g, const analysis::Liveness& L) {
  Plan p = make_default_plan(g, L);
  apply_inplace(g, p);
  return p;
}

int BufferAccesses::last_write(int pos) const {
  const auto it = std::upper_bound(writes.begin(), writes.end(), pos);
  return it == writes.begin() ? -1 : *(it - 1);
}

std::vector<int> position_of_instrs(const Plan& base) {
  std::vector<int> at(base.program.size(), 0);
  int pos = -1;
  bool before_next = false;  // a decompress seen since the last compute
  for (size_t k = 0; k < base.program.size(); ++k) {
    const Instr& in = base.program[k];
    if (in.kind == InstrKind::compute) {
      at[k] = ++pos;
      before_next = false;
      continue;
    }
    before_next = before_next || in.kind == InstrKind::decompress;
    at[k] = before_next ? pos + 1 : std::max(pos, 0);
  }
  return at;
}

std::vector<BufferAccesses> buffer_accesses(const ir::Graph& g, const Plan& base) {
  std::vector<BufferAccesses> acc(base.buffers.size());
  const std::vector<int> at = position_of_instrs(base);
  for (size_t k = 0; k < base.program.size(); ++k) {
    const Instr& in = base.program[k];
    if (in.kind == InstrKind::free) continue;
    const int pos = at[k];
    auto touch = [&](BufferId b) {
      auto& a = acc[static_cast<size_t>(b)].at;
      if (a.empty() || a.back() != pos) a.push_back(pos);
    };
    for (BufferId b : in.inputs) touch(b);
    for (BufferId b : in.outputs) touch(b);
    if (in.workspace != kNoBuffer) touch(in.workspace);
    if (in.kind == InstrKind::compute && ir::op_def(g.node(in.node).op).view) continue;
    for (BufferId b : in.outputs) {
      auto& w = acc[static_cast<size_t>(b)].writes;
      if (w.empty() || w.back() != pos) w.push_back(pos);
    }
  }
  return acc;
}

bool swappable(const Plan& base, BufferId b) {
  const Buffer& buf = base.buffers[static_cast<size_t>(b)];
  if (buf.persistent || buf.space != Space::device || buf.bytes == 0) return false;
  return buf.role == ir::Role::activation || buf.role == ir::Role::input || buf.role == ir::Role::gradient;
}

std::vector<int> compute_index(const Plan& p) {
  std::vector<int> idx;
  for (size_t k = 0; k < p.program.size(); ++k)
    if (p.program[k].kind == InstrKind::compute) idx.push_back(static_cast<int>(k));
  return idx;
}

std::vector<ir::NodeId> position_nodes(const Plan& p) {
  std::vector<ir::NodeId> nodes;
  for (const Instr& in : p.program)
    if (in.kind == InstrKind::compute) nodes.push_back(in.node);
  return nodes;
}

Plan emit_swap_plan(const ir::Graph& g, const Plan& base, const std::vector<SwapItem>& items,
                    std::vector<EmittedSwap>* emitted) {
  const std::vector<ir::ValueId> storage = analysis::storages(g);
  Plan p = base;
  p.program.clear();

  struct Live {
    BufferId host = kNoBuffer, again = kNoBuffer;  // H, A2
    int out = -1, in = -1;                         // program indices of the copies
  };
  // What a buffer holds after the compute at a position writes it (the value of that
  // node's output in it; views write nothing).
  std::vector<const Instr*> compute_at;
  for (const Instr& in : base.program) {
    DLMEM_CHECK(in.waits.empty() && in.kind != InstrKind::swap_out && in.kind != InstrKind::swap_in,
                "a swap base plan holds computes, frees and stash encodings, with no waits");
    if (in.kind == InstrKind::compute) compute_at.push_back(&in);
  }
  const int steps = static_cast<int>(compute_at.size());
  const std::vector<int> at = position_of_instrs(base);
  std::vector<Live> st(items.size());
  std::vector<int> item_of(base.buffers.size(), -1);
  std::vector<std::vector<size_t>> outs(static_cast<size_t>(steps) + 1), releases(static_cast<size_t>(steps)),
      triggers(static_cast<size_t>(steps)), syncs(static_cast<size_t>(steps));
  auto held = [&](BufferId b, int written_at) {
    if (written_at < 0) return base.buffers[static_cast<size_t>(b)].value;
    const Instr& c = *compute_at[static_cast<size_t>(written_at)];
    const ir::Node& n = g.node(c.node);
    for (size_t k = 0; k < c.outputs.size(); ++k)
      if (c.outputs[k] == b) return storage[static_cast<size_t>(n.outputs[k])];
    // Written by a stash encoding at that position (an encoded or decoded stash): the
    // buffer names the value it carries.
    for (size_t k = 0; k < base.program.size(); ++k) {
      const Instr& e = base.program[k];
      if (at[k] == written_at && (e.kind == InstrKind::compress || e.kind == InstrKind::decompress) &&
          e.outputs.at(0) == b)
        return base.buffers[static_cast<size_t>(b)].value;
    }
    DLMEM_CHECK(false, "swap item's out_after ", written_at, " (", n.name, ") does not write its buffer");
    return ir::kNoValue;
  };
  for (size_t k = 0; k < items.size(); ++k) {
    const SwapItem& it = items[k];
    DLMEM_CHECK(it.buffer >= 0 && static_cast<size_t>(it.buffer) < base.buffers.size(), "swap item ", k,
                " names no base buffer");
    const Buffer ab = base.buffers[static_cast<size_t>(it.buffer)];
    DLMEM_CHECK(item_of[static_cast<size_t>(it.buffer)] < 0, "buffer of ", g.value(ab.value).name, " swapped twice");
    const int sync = it.sync_at < 0 ? it.use : it.sync_at;
    DLMEM_CHECK(it.out_after >= -1 && it.out_after <= it.last_before && it.last_before <= it.free_after &&
                    it.free_after < it.trigger && it.trigger <= sync && sync <= it.use && it.use < steps,
                "swap item for ", g.value(ab.value).name, " has positions out of order: out ", it.out_after, " last ",
                it.last_before, " free ", it.free_after, " trigger ", it.trigger, " sync ", sync, " use ", it.use);
    DLMEM_CHECK(!ab.persistent && ab.space == Space::device, "swapping a persistent or host buffer");
    item_of[static_cast<size_t>(it.buffer)] = static_cast<int>(k);
    const ir::ValueId v = held(it.buffer, it.out_after);
    st[k].host = p.add_buffer(v, ab.role, ab.bytes, Space::host);
    st[k].again = p.add_buffer(v, ab.role, ab.bytes, Space::device);
    outs[static_cast<size_t>(it.out_after + 1)].push_back(k);
    releases[static_cast<size_t>(it.free_after)].push_back(k);
    triggers[static_cast<size_t>(it.trigger)].push_back(k);
    syncs[static_cast<size_t>(sync)].push_back(k);
  }
  // Swap-ins issued at one position go in the order of their uses (the h2d stream is FIFO).
  for (auto& t : triggers)
    std::stable_sort(t.begin(), t.end(), [&](size_t x, size_t y) { return items[x].use < items[y].use; });

  // The device buffer each base buffer is read and written through now (A2 after a swap-in).
  std::vector<BufferId> cur(base.buffers.size());
  for (size_t b = 0; b < cur.size(); ++b) cur[b] = static_cast<BufferId>(b);
  auto map = [&](BufferId b) { return b == kNoBuffer ? b : cur[static_cast<size_t>(b)]; };
  auto emit = [&](Instr in) {
    p.program.push_back(std::move(in));
    return static_cast<int>(p.program.size()) - 1;
  };
  auto emit_outs = [&](int slot) {
    for (size_t k : outs[static_cast<size_t>(slot)]) {
      Instr in;
      in.kind = InstrKind::swap_out;
      in.stream = Stream::d2h;
      in.inputs = {map(items[k].buffer)};
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

  // Per position: its swap-ins, the instructions of the base before its compute (stash
  // decodings, which read what may have been swapped), the compute, those after it
  // (encodings, frees), and then the swap-outs of what is now written, the host frees
  // of synchronised swap-ins and the device releases.
  std::vector<bool> opened(static_cast<size_t>(steps), false);
  auto open = [&](int pos) {
    if (pos >= steps || opened[static_cast<size_t>(pos)]) return;
    opened[static_cast<size_t>(pos)] = true;
    for (size_t k : triggers[static_cast<size_t>(pos)]) {
      Instr in;
      in.kind = InstrKind::swap_in;
      in.stream = Stream::h2d;
      in.inputs = {st[k].host};
      in.outputs = {st[k].again};
      in.waits = {st[k].out};
      st[k].in = emit(std::move(in));
      cur[static_cast<size_t>(items[k].buffer)] = st[k].again;
    }
  };
  int i = -1;
  bool pending = false;  // the end of position i is still to be emitted
  auto close = [&]() {
    if (!pending) return;
    pending = false;
    emit_outs(i + 1);
    for (size_t k : syncs[static_cast<size_t>(i)]) emit_free(st[k].host, {st[k].in});
    for (size_t k : releases[static_cast<size_t>(i)]) emit_free(items[k].buffer, {st[k].out});
  };
  auto mapped = [&](const Instr& bi) {
    Instr c = bi;
    for (BufferId& b : c.inputs) b = map(b);
    for (BufferId& b : c.outputs) b = map(b);
    c.workspace = map(c.workspace);
    c.buffer = map(c.buffer);
    return c;
  };
  // A compute, or a decoding before it, waits on the swap-ins synchronised at its position.
  auto emit_synced = [&](const Instr& bi, int pos) {
    Instr c = mapped(bi);
    for (size_t q : syncs[static_cast<size_t>(pos)]) c.waits.push_back(st[q].in);
    std::sort(c.waits.begin(), c.waits.end());
    emit(std::move(c));
  };
  emit_outs(0);
  for (size_t k = 0; k < base.program.size(); ++k) {
    const Instr& bi = base.program[k];
    if (bi.kind == InstrKind::compute) {
      close();
      open(++i);
      emit_synced(bi, i);
      pending = true;
    } else if (at[k] > i) {  // before the next compute: a decoding (and its frees)
      close();
      open(at[k]);
      if (bi.kind == InstrKind::free) emit(mapped(bi));
      else emit_synced(bi, at[k]);
    } else {
      emit(mapped(bi));  // the base's free of what the buffer is now, or an encoding
    }
  }
  close();
  compute_lifetimes(p);
  compute_stats(g, p);
  if (emitted) {
    emitted->resize(items.size());
    for (size_t k = 0; k < items.size(); ++k) (*emitted)[k] = {st[k].out, st[k].in};
  }
  return p;
}

}  // namespace dlmem::planners::swap
