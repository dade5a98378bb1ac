#include <cctype>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "planners/auto/auto.h"
#include "planners/compress/compress.h"
#include "plan/json.h"
#include "planners/registry.h"
#include "planners/share/inplace.h"
#include "report/html.h"
#include "runtime/backend.h"
#include "session/session.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/host_memory.h"
#include "util/format.h"
#include "util/svg_plot.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct PlanArgs {
  ModelArgs model;
  std::string policy;  // resolve_policy: auto with --budget, else default
  std::string budget;
  bool json = false;
  bool explain = false;
  std::string out;
  std::string plot;
  std::string html;
  std::string device = "host";
  std::string lossy;  // --lossy[=CODEC]
  double time_limit = 60;
  double place_time_limit = 1;
  std::string host_budget;  // "" : what the machine reports available
};

// Resident device bytes by role over the program, as an SVG stacked area chart.
void write_plot(const plan::Plan& p, const PlanArgs& a) {
  const std::string svg = plan::memory_svg(p, a.model.model + " batch " + std::to_string(a.model.batch) + ", policy " +
                                                  p.policy + ": resident device memory by role");
  write_file_atomic(a.plot, std::as_bytes(std::span<const char>(svg.data(), svg.size())));
}

// Recomputed FLOPs as a share of the step without them.
double extra_percent(const plan::Plan& p) {
  return 100.0 * p.stats.extra_flops / std::max(1.0, p.stats.flops - p.stats.extra_flops);
}
// A solver's relative gap between its plan and its proven bound (0: optimal).
double solver_gap(const plan::Plan& p) {
  return p.stats.solver_objective > 0 ? (p.stats.solver_objective - p.stats.solver_bound) / p.stats.solver_objective : 0;
}
std::string fixed(double v, int digits) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(digits);
  os << v;
  return os.str();
}

std::string ms(double seconds) { return seconds > 0 ? fixed(1e3 * seconds, 3) : "-"; }

void print_explain(const planners::Explanation& e, std::ostream& os) {
  Table t({{"tensor", Align::Left}, {"bytes", Align::Right}, {"decision", Align::Left}, {"detail", Align::Left},
           {"cost ms", Align::Right}, {"saved", Align::Right}});
  for (const planners::TensorDecision& d : e.tensors)
    t.add_row({d.name, human_bytes(d.bytes), std::string(planners::decision_name(d.decision)), d.detail,
               ms(d.cost_seconds), d.saved ? human_bytes(d.saved) : "-"});
  os << "\nstashed tensors (forward results the backward reads), in forward order:\n" << t.str();
  Table tot({{"decision", Align::Left}, {"tensors", Align::Right}, {"bytes", Align::Right}, {"saved", Align::Right},
             {"cost ms", Align::Right}});
  for (size_t k = 0; k < e.count.size(); ++k) {
    if (e.count[k] == 0) continue;
    tot.add_row({std::string(planners::decision_name(static_cast<planners::Decision>(k))), std::to_string(e.count[k]),
                 human_bytes(e.bytes[k]), e.saved[k] ? human_bytes(e.saved[k]) : "-", ms(e.cost_seconds[k])});
  }
  os << "\ntotals by decision (cost: simulated seconds added -- recomputations, codec passes, waits on copies):\n"
     << tot.str();
}

// --host-budget's default, what this machine reports available, is for plans that run
// here (cpu, cuda, host); a plan for another machine's profile has no host limit
// unless one is given.
uint64_t plan_host_budget(const PlanArgs& a) {
  const bool here = a.device == "cpu" || a.device == "cuda" || a.device == "host";
  return a.host_budget.empty() && !here ? 0 : host_budget(a.host_budget);
}

int run(const PlanArgs& a) {
  const session::Session ses(a.model.session(a.device));
  const ir::Graph& g = ses.graph();
  uint64_t budget = ses.budget(a.budget);
  if (a.budget.empty() && ses.cuda()) budget = runtime::cuda_device_info().free_bytes;  // the real device's memory
  plan::Plan p = ses.plan({.policy = resolve_policy(a.policy, a.budget, a.lossy),
                           .budget = budget,
                           .options = {.host_budget = plan_host_budget(a),
                                       .time_limit_s = a.time_limit,
                                       .place_time_limit_s = a.place_time_limit,
                                       .lossy = a.lossy}});
  const double ratio = p.stats.peak_device ? static_cast<double>(p.device_arena) / static_cast<double>(p.stats.peak_device) : 0;
  const planners::InplaceStats inplace = planners::count_inplace(g, p);
  if (!a.plot.empty()) write_plot(p, a);
  if (!a.html.empty()) report::write_html(a.html, {report_data(ses, p, ses.cost_model(), a.model, a.out)});
  if (!a.out.empty()) {
    nlohmann::json pj = plan::to_json(g, p);
    // Note [Plan files and graphs] (cmd_simulate.cpp): what rebuilds the graph.
    pj["model"] = {{"name", a.model.model},         {"batch", a.model.batch},
                   {"image_size", a.model.image_size}, {"seq_len", a.model.seq_len},
                   {"num_classes", a.model.num_classes}, {"optimizer", a.model.optimizer},
                   {"device", ses.profile_name()}, {"backend", ses.cuda() ? "cuda" : "cpu"},
                   {"ranks", a.model.ranks}, {"zero", a.model.zero}, {"link", a.model.link},
                   {"bucket_mib", a.model.bucket_mib}};
    const std::string text = pj.dump(1);
    write_file_atomic(a.out, std::as_bytes(std::span<const char>(text.data(), text.size())));
  }
  if (a.json) {
    nlohmann::json j = plan::stats_json(p);
    j["model"] = a.model.model;
    j["batch"] = a.model.batch;
    j["arena_over_max_live"] = ratio;
    if (const planners::CompressionSummary cs = planners::summarize_compression(g, p); cs.stashes + cs.swaps > 0)
      j["encoded"] = {{"stashes", cs.stashes}, {"swaps", cs.swaps}, {"raw", cs.raw}, {"reserved", cs.reserved}, {"codecs", cs.codecs}};
    j["inplace_writes"] = inplace.writes;
    j["inplace_bytes"] = inplace.bytes;
    j["extra_flops_percent"] = extra_percent(p);
    if (!p.stats.chosen.empty()) j["chosen"] = p.stats.chosen;
    if (!p.stats.solver_status.empty())
      j["solver"] = {{"status", p.stats.solver_status},
                     {"objective", p.stats.solver_objective},
                     {"bound", p.stats.solver_bound},
                     {"gap", solver_gap(p)}};
    if (!a.out.empty()) j["out"] = a.out;
    if (!a.html.empty()) j["html"] = a.html;
    if (a.explain) j["explain"] = planners::explanation_json(planners::explain(g, p, ses.cost_model()));
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << a.model.model << "  batch " << a.model.batch << "  policy " << p.policy
            << (p.stats.chosen.empty() ? "" : " (" + p.stats.chosen + ")") << "\n\n";
  Table t({{"", Align::Left}, {"bytes", Align::Right}, {"note", Align::Left}});
  t.add_row({"device arena", human_bytes(p.device_arena), "placement: " + p.placement});
  t.add_row({"max live (lower bound of placement)", human_bytes(p.stats.peak_device),
             "arena / max live = " + std::to_string(ratio).substr(0, 5)});
  t.add_row({"no reuse (sum of buffers)", human_bytes(p.stats.no_reuse), ""});
  if (inplace.writes)
    t.add_row({"written in place", human_bytes(inplace.bytes),
               std::to_string(inplace.writes) + " outputs over a dying input"});
  t.add_row({"largest-op lower bound", human_bytes(p.stats.lower_bound),
             inplace.writes ? "out of place; in-place writes can go below" : "no policy goes below"});
  if (p.budget) t.add_row({"budget", human_bytes(p.budget), "fits"});
  if (p.stats.extra_flops > 0)
    t.add_row({"extra FLOPs (recomputation)", human_count(static_cast<uint64_t>(p.stats.extra_flops)),
               fixed(extra_percent(p), 2) + "% of the step's " + human_count(static_cast<uint64_t>(p.stats.flops - p.stats.extra_flops))});
  if (p.host_arena) t.add_row({"host arena", human_bytes(p.host_arena), "swapped bytes"});
  if (const planners::CompressionSummary cs = planners::summarize_compression(g, p); cs.stashes + cs.swaps > 0)
    t.add_row({"encoded tensors (reserved)", human_bytes(cs.reserved),
               human_bytes(cs.raw) + " raw: " + cs.codecs + (cs.swaps ? " (swaps: real size at run time)" : "")});
  std::cout << t.str();
  std::cout << "\nplanned in " << human_duration(p.stats.plan_seconds) << "; " << p.program.size() << " instructions, "
            << p.buffers.size() << " buffers";
  if (p.stats.extra_flops > 0)
    std::cout << "; extra FLOPs " << human_count(static_cast<uint64_t>(p.stats.extra_flops)) << " ("
              << std::to_string(100.0 * p.stats.extra_flops / std::max(1.0, p.stats.flops - p.stats.extra_flops)).substr(0, 5)
              << "% of the step)";
  std::cout << "\n";
  if (!p.stats.solver_status.empty())
    std::cout << "solver: " << p.stats.solver_status << "; objective "
              << human_count(static_cast<uint64_t>(p.stats.solver_objective)) << " FLOPs, bound "
              << human_count(static_cast<uint64_t>(p.stats.solver_bound)) << ", gap " << fixed(100 * solver_gap(p), 2) << "%\n";
  if (a.explain) print_explain(planners::explain(g, p, ses.cost_model()), std::cout);
  if (!a.out.empty()) std::cout << "wrote " << a.out << "\n";
  if (!a.plot.empty()) std::cout << "wrote " << a.plot << "\n";
  if (!a.html.empty()) std::cout << "wrote " << a.html << " (open it in a browser)\n";
  return 0;
}

}  // namespace

std::function<int()> add_plan(CLI::App& app) {
  auto* cmd = app.add_subcommand("plan", "plan a training step under a policy and a budget");
  auto a = std::make_shared<PlanArgs>();
  a->model.add(*cmd, 64);
  a->model.add_parallel(*cmd);
  std::string policies;
  for (const auto& p : planners::policies()) policies += (policies.empty() ? "" : " | ") + p.name;
  cmd->add_option("--policy,-p", a->policy, policies + " (default: auto with --budget, else default)");
  cmd->add_flag("--explain", a->explain,
                "per stashed tensor: the decision (keep, share, recompute, swap, encode), its simulated cost and the "
                "memory it saves, with totals by decision (in --json too)");
  cmd->add_flag("--lossy{fp16}", a->lossy,
                "with --policy compress or auto: stash feature maps in reduced precision (lossy, opt-in): --lossy (fp16), "
                "--lossy=bf16, --lossy=fp8-e4m3");
  cmd->add_option("--budget", a->budget, "device bytes (e.g. 4GiB) or a share of the default plan's need (40%)");
  cmd->add_flag("--json", a->json, "one JSON object");
  cmd->add_option("--out,-o", a->out, "write the plan as JSON (atomically)");
  cmd->add_option("--device,-d", a->device,
                  "cpu | cuda (the backend whose kernel workspaces are planned; cuda: the GPU's free memory is the "
                  "default budget and its profile is simulated), or the device profile the swap planners simulate "
                  "on (v100-16gb, h100-80gb, host, file.json)")
      ->capture_default_str();
  cmd->add_option("--plot", a->plot, "write resident memory over the program as an SVG chart");
  cmd->add_option("--html", a->html,
                  "write the plan report: one self-contained HTML page with memory over time (hover: the tensors "
                  "resident), the streams and their stalls, and every stashed tensor's decision");
  cmd->add_option("--time-limit", a->time_limit, "seconds a solver may take (recompute:milp)")->capture_default_str();
  cmd->add_option("--host-budget", a->host_budget,
                  "host memory swapped tensors may fill: bytes (16GiB) or a share of what this machine reports available "
                  "(50%); default: what it reports available when the plan runs here (--device cpu, cuda or host), none for "
                  "another machine's profile (a plan over it is refused)");
  cmd->add_option("--place-time-limit", a->place_time_limit,
                  "seconds the exact placement search may take when the heuristics' arena is over the budget (0: never)")
      ->capture_default_str();
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
