#include "sim/trace.h"

#include "util/atomic_file.h"

namespace dlmem::sim {

namespace {

int tid_of(plan::Stream s) { return static_cast<int>(s); }

std::string label(const ir::Graph& g, const plan::Plan& p, const plan::Instr& in) {
  auto value_of = [&](plan::BufferId b) { return g.value(p.buffers[static_cast<size_t>(b)].value).name; };
  switch (in.kind) {
    case plan::InstrKind::compute: return g.node(in.node).name + (in.recompute ? " (recompute)" : "");
    case plan::InstrKind::free: return "free " + value_of(in.buffer);
    default: return std::string(plan::instr_name(in.kind)) + " " + value_of(in.inputs.at(0));
  }
}

}  // namespace

nlohmann::json chrome_trace(const ir::Graph& g, const plan::Plan& p, const SimResult& r) {
  constexpr double us = 1e6;
  nlohmann::json ev = nlohmann::json::array();
  for (plan::Stream s : {plan::Stream::compute, plan::Stream::d2h, plan::Stream::h2d})
    ev.push_back({{"ph", "M"}, {"pid", 0}, {"tid", tid_of(s)}, {"name", "thread_name"},
                  {"args", {{"name", std::string(plan::stream_name(s)) + " stream"}}}});
  ev.push_back({{"ph", "M"}, {"pid", 0}, {"name", "process_name"}, {"args", {{"name", "dlmem simulation: " + p.policy}}}});
  for (const SimEvent& e : r.timeline) {
    const plan::Instr& in = p.program[static_cast<size_t>(e.instr)];
    if (in.stream == plan::Stream::compute && e.start > e.issue)
      ev.push_back({{"ph", "X"}, {"pid", 0}, {"tid", tid_of(in.stream)}, {"name", "wait"}, {"cat", "stall"},
                    {"ts", e.issue * us}, {"dur", (e.start - e.issue) * us}});
    if (in.kind == plan::InstrKind::free) continue;
    nlohmann::json args = {{"instr", e.instr}};
    if (in.kind == plan::InstrKind::compute) args["op"] = ir::op_name(g.node(in.node).op);
    if (in.kind == plan::InstrKind::swap_in || in.kind == plan::InstrKind::swap_out)
      args["bytes"] = p.buffers[static_cast<size_t>(in.inputs.at(0))].bytes;
    ev.push_back({{"ph", "X"}, {"pid", 0}, {"tid", tid_of(in.stream)}, {"name", label(g, p, in)},
                  {"cat", plan::instr_name(in.kind)}, {"ts", e.start * us}, {"dur", (e.end - e.start) * us},
                  {"args", std::move(args)}});
  }
  for (const MemorySample& m : r.memory)
    ev.push_back({{"ph", "C"}, {"pid", 0}, {"name", "device memory"}, {"ts", m.time * us},
                  {"args", {{"bytes", m.bytes}}}});
  return {{"traceEvents", std::move(ev)},
          {"displayTimeUnit", "ms"},
          {"otherData",
           {{"policy", p.policy},
            {"makespan_s", r.makespan},
            {"stall_s", r.stall_seconds},
            {"peak_device", r.peak_device}}}};
}

void write_chrome_trace(const std::string& path, const ir::Graph& g, const plan::Plan& p, const SimResult& r) {
  const std::string text = chrome_trace(g, p, r).dump();
  write_file_atomic(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace dlmem::sim
