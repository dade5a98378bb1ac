// libFuzzer target: rematerialisation graphs (networkx node-link JSON,
// models/remat_graph.h, `dlmem remat --graph`) from arbitrary bytes; a graph that
// parses is also scheduled in its topological order and the plan validated.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "analysis/liveness.h"
#include "models/remat_graph.h"
#include "plan/plan.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    const dlmem::models::RematGraph rg = dlmem::models::parse_remat_graph(j, "fuzz.json");
    if (rg.graph.num_nodes() <= 256) {
      const auto live = dlmem::analysis::compute_liveness(rg.graph, dlmem::analysis::default_schedule(rg.graph));
      dlmem::plan::Plan p = dlmem::plan::make_default_plan(rg.graph, live);
      dlmem::plan::compute_lifetimes(p);
      dlmem::plan::validate(rg.graph, p);
    }
  } catch (const dlmem::Error&) {
  }
  return 0;
}
