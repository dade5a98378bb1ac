#include <iostream>
#include <nlohmann/json.hpp>

#include "analysis/liveness.h"
#include "analysis/memory.h"
#include "analysis/report_json.h"
#include "cli/commands.h"
#include "runtime/backend.h"
#include "util/error.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct AnalyzeArgs {
  ModelArgs model;
  std::string dtype = "f32";
  bool layers = false;
  bool json = false;
  bool workspace = true;
};

// Analysis at another float width: every f32 value of the graph counted at `d`
// (shapes are unchanged; the graph is for analysis only, not execution).
void cast_floats(ir::Graph& g, ir::DType d) {
  for (const ir::Value& v : g.values())
    if (v.type.dtype == ir::DType::f32) g.value(v.id).type.dtype = d;
}

int run(const AnalyzeArgs& a) {
  const auto dt = ir::parse_dtype(a.dtype);
  if (!dt || (*dt != ir::DType::f32 && *dt != ir::DType::f16 && *dt != ir::DType::bf16))
    throw Error("--dtype must be f32, f16 or bf16, got '", a.dtype, "'");
  std::unique_ptr<runtime::Backend> be;
  if (a.workspace) be = runtime::make_cpu_backend();
  ir::Graph g = session::build_graph(a.model.session("cpu"), be.get());
  if (*dt != ir::DType::f32) cast_floats(g, *dt);
  const auto live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const analysis::MemoryReport r = analysis::memory_report(g, live);
  auto role = [&](ir::Role x) { return r.by_role[static_cast<size_t>(x)]; };

  if (a.json) {
    nlohmann::json j = analysis::report_json(r, a.layers);
    j["model"] = a.model.model;
    j["batch"] = a.model.batch;
    j["dtype"] = a.dtype;
    j["optimizer"] = a.model.optimizer;
    j["nodes"] = g.num_nodes();
    j["values"] = g.num_values();
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::cout << a.model.model << "  batch " << a.model.batch << "  " << a.dtype << "  optimizer " << a.model.optimizer
            << "  (" << g.num_nodes() << " nodes, " << g.num_values() << " values in the training graph)\n";
  std::cout << "parameters  " << r.parameters << " (" << human_count(static_cast<uint64_t>(r.parameters)) << ")\n\n";
  Table t({{"memory", Align::Left}, {"bytes", Align::Right}, {"note", Align::Left}});
  t.add_row({"weights", human_bytes(role(ir::Role::weight)), "incl. non-trainable state (running statistics)"});
  t.add_row({"weight gradients", human_bytes(role(ir::Role::weight_gradient)), ""});
  t.add_row({"optimizer state", human_bytes(role(ir::Role::optimizer_state)), a.model.optimizer});
  t.add_row({"activations", human_bytes(role(ir::Role::activation)), "every forward result"});
  t.add_row({"  stashed for backward", human_bytes(r.stashed_activations), "read again by the backward"});
  t.add_row({"gradients", human_bytes(role(ir::Role::gradient)), "of activations"});
  t.add_row({"workspace", human_bytes(role(ir::Role::workspace)), a.workspace ? "oneDNN scratchpads" : "not counted"});
  t.add_row({"inputs and labels", human_bytes(role(ir::Role::input) + role(ir::Role::label)), ""});
  std::cout << t.str() << "\n";
  Table p({{"peak", Align::Left}, {"bytes", Align::Right}, {"where", Align::Left}});
  p.add_row({"nothing freed", human_bytes(r.no_free), "every value kept for the whole step"});
  p.add_row({"free at last use", human_bytes(r.free_at_last_use), "at " + r.peak_node});
  p.add_row({"lower bound", human_bytes(r.lower_bound), "weights + state + largest op (" + r.lower_bound_node + ")"});
  std::cout << p.str() << "\n";
  std::cout << "FLOPs per step  forward " << human_count(static_cast<uint64_t>(r.flops_forward)) << "  backward "
            << human_count(static_cast<uint64_t>(r.flops_backward)) << "  update "
            << human_count(static_cast<uint64_t>(r.flops_update)) << "\n";
  if (a.layers) {
    std::cout << "\n";
    Table l({{"layer", Align::Left}, {"op", Align::Left}, {"output", Align::Right}, {"stashed", Align::Right}, {"FLOPs", Align::Right}});
    for (const auto& row : r.layers)
      l.add_row({row.name, row.op, human_bytes(row.output_bytes), human_bytes(row.stashed_bytes),
                 human_count(static_cast<uint64_t>(row.flops))});
    std::cout << l.str();
  }
  return 0;
}

}  // namespace

std::function<int()> add_analyze(CLI::App& app) {
  auto* cmd = app.add_subcommand("analyze", "memory breakdown, liveness peak and lower bound of a training step");
  auto a = std::make_shared<AnalyzeArgs>();
  a->model.add(*cmd, 64);
  cmd->add_option("--dtype", a->dtype, "float width counted: f32, f16, bf16")->capture_default_str();
  cmd->add_flag("--layers", a->layers, "per-layer rows");
  cmd->add_flag("--json", a->json, "one JSON object");
  cmd->add_flag("!--no-workspace", a->workspace, "do not count kernel workspaces");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
