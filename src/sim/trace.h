// Chrome trace export of a simulation (opens in Perfetto, ui.perfetto.dev, and in
// chrome://tracing): one track per stream with a slice per instruction, compute-stream
// stalls as "wait" slices, and device memory as a counter track.
//
//   sim::SimResult r = sim::simulate(g, plan, cm);
//   sim::write_chrome_trace("step.json", g, plan, r);
//
// Format: the Trace Event Format's JSON object form ({"traceEvents": [...]}) with
// complete events ("ph": "X", microseconds), counter events ("ph": "C") and thread
// names ("ph": "M").
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "ir/graph.h"
#include "plan/plan.h"
#include "sim/simulator.h"

namespace dlmem::sim {

nlohmann::json chrome_trace(const ir::Graph&, const plan::Plan&, const SimResult&);
// Writes the trace atomically; dlmem::Error naming the path on failure.
void write_chrome_trace(const std::string& path, const ir::Graph&, const plan::Plan&, const SimResult&);

}  // namespace dlmem::sim
