// Issue 2's "done when": `dlmem analyze` on every zoo model at batch 1 and 64 in under
// a second each. Times what the command does (build, autodiff, workspace queries,
// liveness, report) in-process and prints one JSON line per row with the ratio to the
// one-second target.
//
//   analyze_bench [--quick]
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/liveness.h"
#include "analysis/memory.h"
#include "ir/autodiff.h"
#include "models/zoo.h"
#include "runtime/backend.h"

using namespace dlmem;

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  for (const auto& m : models::list_models()) {
    if (quick && m.name != "resnet50" && m.name != "bert-base" && m.name != "lenet5") continue;
    for (int64_t batch : {1, 64}) {
      const auto t0 = std::chrono::steady_clock::now();
      auto be = runtime::make_cpu_backend();  // a fresh primitive cache, as a new process has
      models::ModelConfig c;
      c.batch = batch;
      ir::Graph g = models::build_model(m.name, c);
      ir::build_training_graph(g, {});
      runtime::attach_workspaces(g, *be);
      const auto r = analysis::memory_report(g, analysis::compute_liveness(g, analysis::default_schedule(g)));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << nlohmann::json{{"bench", "analyze"},          {"model", m.name},
                                  {"batch", batch},              {"seconds", s},
                                  {"ratio_to_1s_target", s},     {"nodes", g.num_nodes()},
                                  {"peak_free_at_last_use", r.free_at_last_use}}
                       .dump()
                << std::endl;
    }
  }
  return 0;
}
