// libFuzzer target: plan files (plan/json.h: what `dlmem plan --out` writes and
// `dlmem simulate` and `dlmem report` read) from arbitrary bytes, for one fixed graph:
// the MLP's training graph at batch 4, built here without kernel workspaces (the fuzz
// core has no backend), so a plan the CLI wrote for the cpu backend does not match it.
// Its seeds are that graph's own default plan, written by this binary when
// DLMEM_FUZZ_WRITE_SEEDS names a directory (scripts/fuzz.sh does). A plan that loads is
// validated; either may refuse it with dlmem::Error, nothing else may happen.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/liveness.h"
#include "ir/autodiff.h"
#include "models/zoo.h"
#include "plan/json.h"
#include "plan/placement.h"
#include "plan/plan.h"
#include "util/error.h"

namespace {

const dlmem::ir::Graph& graph() {
  static const dlmem::ir::Graph g = [] {
    dlmem::ir::Graph m = dlmem::models::build_model("mlp", {.batch = 4});
    dlmem::ir::build_training_graph(m, {});
    return m;
  }();
  return g;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("DLMEM_FUZZ_WRITE_SEEDS")) {
    const auto live = dlmem::analysis::compute_liveness(graph(), dlmem::analysis::default_schedule(graph()));
    dlmem::plan::Plan p = dlmem::plan::make_default_plan(graph(), live);
    dlmem::plan::compute_lifetimes(p);
    dlmem::plan::compute_stats(graph(), p);
    dlmem::plan::place(p);
    std::ofstream(std::string(dir) + "/mlp-default.json") << dlmem::plan::to_json(graph(), p).dump(1);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    const dlmem::plan::Plan p = dlmem::plan::from_json(graph(), j, "fuzz.json");
    dlmem::plan::validate(graph(), p);
  } catch (const dlmem::Error&) {
  }
  return 0;
}
