#include "sim/simulator.h"

#include <algorithm>

#include "util/error.h"

namespace dlmem::sim {

double SimResult::bound() const { return std::max({compute_seconds, d2h_seconds, h2d_seconds}); }

double SimResult::phase_bound() const {
  return std::max(forward_seconds, d2h_seconds) + std::max(compute_seconds - forward_seconds, h2d_seconds);
}

SimResult simulate(const ir::Graph& g, const plan::Plan& p, const CostModel& cm, const SimOptions& opt) {
  using plan::InstrKind;
  using plan::Stream;
  const size_t n = p.program.size();
  SimResult r;
  r.capacity = cm.device.memory_bytes;
  r.timeline.resize(n);

  // Memory: +bytes at the first write of a device buffer, -bytes at its Free.
  std::vector<bool> resident(p.buffers.size(), false);
  uint64_t live = 0;
  for (const plan::Buffer& b : p.buffers)
    if (b.preloaded && b.begin < b.end) {
      resident[static_cast<size_t>(b.id)] = true;
      if (b.space == plan::Space::device) live += b.bytes;
    }
  r.peak_device = live;
  r.peak_instr = n ? 0 : -1;
  if (opt.record_memory) r.memory.push_back({0.0, live});
  auto sample = [&](double t) {
    if (!opt.record_memory) return;
    if (!r.memory.empty() && r.memory.back().time == t) r.memory.back().bytes = live;
    else r.memory.push_back({t, live});
  };
  auto alloc = [&](plan::BufferId id, double t, size_t i) {
    if (id == plan::kNoBuffer || resident[static_cast<size_t>(id)]) return;
    resident[static_cast<size_t>(id)] = true;
    const plan::Buffer& b = p.buffers[static_cast<size_t>(id)];
    if (b.space != plan::Space::device) return;
    live += b.bytes;
    sample(t);
    if (live > r.peak_device) {
      r.peak_device = live;
      r.peak_instr = static_cast<int>(i);
      r.peak_time = t;
    }
  };

  double tc = 0;                    // the compute stream's clock
  double copy_free[2] = {0.0, 0.0};  // d2h, h2d
  for (size_t i = 0; i < n; ++i) {
    const plan::Instr& in = p.program[i];
    SimEvent& ev = r.timeline[i];
    ev.instr = static_cast<int>(i);
    ev.stream = in.stream;
    ev.issue = tc;
    double ready = tc;
    for (int w : in.waits) {
      if (w < 0 || static_cast<size_t>(w) >= i)
        throw Error("instruction ", i, " waits on instruction ", w, ", which is not an earlier instruction");
      ready = std::max(ready, r.timeline[static_cast<size_t>(w)].end);
    }
    const double dur = cm.instr_seconds(g, p, in);
    const bool copy = in.stream != Stream::compute;
    // Destinations are resident from when the executor makes them so: a copy's at its
    // issue, a compute's once its waits are over.
    for (plan::BufferId b : in.outputs) alloc(b, copy ? tc : ready, i);
    alloc(in.workspace, copy ? tc : ready, i);
    if (copy) {
      double& free_at = copy_free[in.stream == Stream::d2h ? 0 : 1];
      ev.start = std::max(ready, free_at);
      ev.end = ev.start + dur;
      free_at = ev.end;
    } else {
      ev.start = ready;
      ev.end = ready + dur;
      r.stall_seconds += ready - tc;
      tc = ev.end;
    }
    switch (in.kind) {
      case InstrKind::compute:
        r.compute_seconds += dur;
        if (in.recompute) r.recompute_seconds += dur;
        else if (g.node(in.node).phase == ir::Phase::forward) r.forward_seconds += dur;
        break;
      case InstrKind::swap_out:
      case InstrKind::swap_in: {
        const uint64_t bytes = p.buffers[static_cast<size_t>(in.inputs.at(0))].bytes;
        (in.kind == InstrKind::swap_out ? r.bytes_to_host : r.bytes_to_device) += bytes;
        break;
      }
      case InstrKind::compress:
      case InstrKind::decompress:
        if (!copy) r.compute_seconds += dur;
        break;
      case InstrKind::free: {
        const plan::BufferId id = in.buffer;
        if (id >= 0 && static_cast<size_t>(id) < p.buffers.size() && resident[static_cast<size_t>(id)]) {
          resident[static_cast<size_t>(id)] = false;
          const plan::Buffer& b = p.buffers[static_cast<size_t>(id)];
          if (b.space == plan::Space::device) {
            live -= b.bytes;
            sample(ev.end);
          }
        }
        break;
      }
    }
    if (copy) (in.stream == Stream::d2h ? r.d2h_seconds : r.h2d_seconds) += dur;
  }
  r.makespan = std::max({tc, copy_free[0], copy_free[1]});
  r.fits = r.capacity == 0 || r.peak_device <= r.capacity;
  return r;
}

}  // namespace dlmem::sim
