// `dlmem simulate`: replays a plan file on a device profile (sim/simulator.h) and prints
// the predicted step time, stalls, copies and peak; optionally writes a Chrome trace and
// measures the same plan on the cpu backend to set the prediction beside the truth.
//
// Note [Plan files and graphs]: a plan names buffers and nodes, not their shapes or
// costs. `dlmem plan --out` writes a "model" header (model, batch, image size, sequence
// length, classes, optimizer) from which simulate rebuilds the exact training graph --
// the same builder, autodiff and cpu kernel workspaces -- and plan::from_json checks
// every buffer and node against it by id and name.
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "report/html.h"
#include "sim/result_json.h"
#include "plan/json.h"
#include "session/session.h"
#include "runtime/backend.h"
#include "runtime/executor.h"
#include "sim/cost_model.h"
#include "sim/simulator.h"
#include "sim/trace.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct SimulateArgs {
  std::string onnx;
  std::string plan;
  std::string device = "host";
  std::string trace;
  std::string html;
  bool json = false;
  int measure = 0;
  int threads = 0;
};

std::string pct(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * x);
  return buf;
}
std::string ratio(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fx", x);
  return buf;
}

int run(const SimulateArgs& a) {
  if (a.measure < 0) throw Error("--measure takes a number of steps >= 0, got ", a.measure);
  PlanFile f = load_plan_file(a.plan, a.onnx, a.device, a.threads);
  const ModelArgs& m = f.model;
  const session::Session& ses = *f.session;
  const ir::Graph& g = ses.graph();
  runtime::Backend& be = ses.backend();
  const plan::Plan& p = f.plan;

  const sim::DeviceProfile& dev = ses.profile();
  sim::CostModel cm = ses.cost_model();
  double measured_step = -1;
  if (a.measure > 0) {
    // Capuchin-style: time the plan itself, then predict from its kernel times.
    runtime::Executor ex(g, p, be, {.time_instructions = true});
    std::vector<std::vector<double>> per_instr(p.program.size());
    std::vector<double> steps;
    for (int s = 0; s <= a.measure; ++s) {
      ex.run_step(static_cast<uint64_t>(s));
      if (s == 0) continue;  // warm-up: primitive creation
      steps.push_back(ex.stats().last_step_seconds);
      for (size_t i = 0; i < p.program.size(); ++i) per_instr[i].push_back(ex.stats().instr_seconds[i]);
    }
    std::vector<double> med(p.program.size());
    for (size_t i = 0; i < med.size(); ++i) {
      std::sort(per_instr[i].begin(), per_instr[i].end());
      med[i] = per_instr[i][per_instr[i].size() / 2];
    }
    std::sort(steps.begin(), steps.end());
    measured_step = steps[steps.size() / 2];
    cm = sim::measured_cost_model(g, p, med, dev);
  }
  const sim::SimResult r = sim::simulate(g, p, cm);
  // The unmanaged run of the same graph on the same cost model, for reference.
  const plan::Plan unmanaged = ses.plan({.policy = "default"});
  const sim::SimResult ru = sim::simulate(g, unmanaged, cm, {.record_memory = false});
  if (!a.trace.empty()) sim::write_chrome_trace(a.trace, g, p, r);
  if (!a.html.empty()) report::write_html(a.html, {report_data(ses, p, cm, m, a.plan)});

  if (a.json) {
    nlohmann::json out = sim::result_json(r, ru, p, dev);
    out["plan"] = a.plan;
    out["model"] = m.model;
    out["batch"] = m.batch;
    out["policy"] = p.policy;
    out["cost_model"] = cm.source;
    if (measured_step >= 0) {
      out["measured_step_seconds"] = measured_step;
      out["prediction_error"] = r.makespan / measured_step - 1.0;
    }
    if (!a.trace.empty()) out["trace"] = a.trace;
    if (!a.html.empty()) out["html"] = a.html;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << m.model << "  batch " << m.batch << "  policy " << p.policy << "  on " << dev.name << " ("
            << dev.description << "), " << cm.source << " costs\n\n";
  Table t({{"", Align::Left}, {"value", Align::Right}, {"note", Align::Left}});
  t.add_row({"step time", human_duration(r.makespan), ratio(r.makespan / std::max(r.bound(), 1e-12)) + " the bound, " +
                                                          ratio(r.makespan / std::max(ru.makespan, 1e-12)) + " unmanaged (" +
                                                          human_duration(ru.makespan) + ")"});
  t.add_row({"bound: busiest stream", human_duration(r.bound()), "max(compute, d2h, h2d)"});
  t.add_row({"bound: by phase", human_duration(r.phase_bound()),
             "max(forward, d2h) + max(backward, h2d): " + ratio(r.makespan / std::max(r.phase_bound(), 1e-12))});
  t.add_row({"compute", human_duration(r.compute_seconds),
             r.recompute_seconds > 0 ? "of which recomputation " + human_duration(r.recompute_seconds) : ""});
  t.add_row({"stall (compute waits on copies)", human_duration(r.stall_seconds), pct(r.stall_seconds / std::max(r.makespan, 1e-12)) + " of the step"});
  t.add_row({"device -> host copies", human_duration(r.d2h_seconds), human_bytes(r.bytes_to_host)});
  t.add_row({"host -> device copies", human_duration(r.h2d_seconds), human_bytes(r.bytes_to_device)});
  t.add_row({"peak device memory", human_bytes(r.peak_device),
             "planned " + human_bytes(p.stats.peak_device) + ", arena " + human_bytes(p.device_arena)});
  t.add_row({"device memory", human_bytes(dev.memory_bytes), p.device_arena <= dev.memory_bytes ? "fits" : "DOES NOT FIT"});
  if (measured_step >= 0)
    t.add_row({"measured on cpu", human_duration(measured_step),
               "prediction error " + pct(r.makespan / measured_step - 1.0) + " (median of " + std::to_string(a.measure) + " steps)"});
  std::cout << t.str();
  if (!a.trace.empty()) std::cout << "\nwrote " << a.trace << " (open it in ui.perfetto.dev or chrome://tracing)\n";
  if (!a.html.empty()) std::cout << (a.trace.empty() ? "\n" : "") << "wrote " << a.html << " (open it in a browser)\n";
  return 0;
}

}  // namespace

std::function<int()> add_simulate(CLI::App& app) {
  auto* cmd = app.add_subcommand("simulate", "predict a plan's step time, stalls and memory on a device profile");
  auto a = std::make_shared<SimulateArgs>();
  cmd->add_option("--plan", a->plan, "plan file written by 'dlmem plan --out'")->required();
  cmd->add_option("--onnx", a->onnx, "the ONNX model of a plan made with 'plan --onnx', when it is no longer where the plan's header says");
  cmd->add_option("--device,-d", a->device, profile_choices())->capture_default_str();
  cmd->add_option("--trace", a->trace, "write a Chrome trace (Perfetto) with a memory counter track");
  cmd->add_option("--html", a->html, "write the plan report: one self-contained HTML page (memory over time, streams, decisions)");
  cmd->add_flag("--json", a->json, "one JSON object");
  cmd->add_option("--measure", a->measure,
                  "run the plan this many steps on the cpu backend: predict from its measured kernel times and "
                  "print the measured step time beside the prediction");
  cmd->add_option("--threads", a->threads, "cpu threads for --measure (0: default)");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
