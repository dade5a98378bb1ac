// `dlmem report`: the plan report (report/html.h) of one plan file, or of two compared
// side by side (two policies, two budgets), simulated on a device profile.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "report/html.h"
#include "util/error.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct ReportArgs {
  std::vector<std::string> plans;
  std::string onnx;
  std::string device = "host";
  std::string html;
  bool json = false;
};

int run(const ReportArgs& a) {
  if (a.plans.empty() || a.plans.size() > 2)
    throw Error("dlmem report takes one plan file, or two to compare; got ", a.plans.size());
  std::vector<nlohmann::json> data;
  for (const std::string& path : a.plans) {
    const PlanFile f = load_plan_file(path, a.onnx, a.device);
    data.push_back(report_data(*f.session, f.plan, f.session->cost_model(), f.model, path));
  }
  report::write_html(a.html, data);
  if (a.json) {
    nlohmann::json out = {{"html", a.html}, {"plans", nlohmann::json::array()}};
    for (size_t k = 0; k < data.size(); ++k) {
      nlohmann::json h = data[k]["header"];
      out["plans"].push_back({{"plan", a.plans[k]}, {"model", h["model"]}, {"policy", h["policy"]},
                              {"peak", h["planned_peak"]}, {"arena", h["arena"]}, {"step_seconds", h["step_seconds"]},
                              {"instructions", data[k]["program"]["k"].size()}, {"buffers", data[k]["buffers"]["b"].size()}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  Table t({{"plan", Align::Left}, {"model", Align::Left}, {"policy", Align::Left}, {"peak", Align::Right},
           {"arena", Align::Right}, {"step", Align::Right}});
  for (size_t k = 0; k < data.size(); ++k) {
    const nlohmann::json& h = data[k]["header"];
    t.add_row({a.plans[k], h["model"].get<std::string>(), h["policy"].get<std::string>(),
               human_bytes(h["planned_peak"].get<uint64_t>()), human_bytes(h["arena"].get<uint64_t>()),
               human_duration(h["step_seconds"].get<double>())});
  }
  std::cout << t.str() << "wrote " << a.html << " (open it in a browser)\n";
  return 0;
}

}  // namespace

std::function<int()> add_report(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "write a plan's report, or two plans' comparison, as one HTML page");
  auto a = std::make_shared<ReportArgs>();
  cmd->add_option("plans", a->plans, "one plan file (dlmem plan --out), or two to compare")->required()->expected(1, 2);
  cmd->add_option("--html", a->html, "the page to write (self-contained: opens from disk, no network)")->required();
  cmd->add_option("--onnx", a->onnx, "the ONNX model of plans made with 'plan --onnx', when it is no longer where the header says");
  cmd->add_option("--device,-d", a->device, "the profile the plans are simulated on: " + profile_choices())
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "print what was written as one JSON object");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
