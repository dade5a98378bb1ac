#include "report/html.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "planners/auto/auto.h"
#include "sim/simulator.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace dlmem::report {

// The page's script and styles (src/report/report.js, report.css), embedded at build
// time by cmake/embed.cmake so that the page needs nothing but itself.
extern const char kReportJs[];
extern const char kReportCss[];

namespace {

using plan::InstrKind;

// How a buffer came to hold its data: the instruction that first writes it.
enum class Origin : int { preloaded, computed, recomputed, host_copy, swapped_in, encoded, decoded, workspace };
const std::vector<std::string> kOrigins = {"preloaded",  "computed", "recomputed", "host copy",
                                          "swapped in", "encoded",  "decoded",    "workspace"};

std::vector<int> origins(const plan::Plan& p) {
  std::vector<int> o(p.buffers.size(), -1);
  auto set = [&](plan::BufferId b, Origin k) {
    if (b != plan::kNoBuffer && o[static_cast<size_t>(b)] < 0) o[static_cast<size_t>(b)] = static_cast<int>(k);
  };
  for (const plan::Buffer& b : p.buffers)
    if (b.preloaded) set(b.id, Origin::preloaded);
  for (const plan::Instr& in : p.program) {
    Origin k = Origin::computed;
    switch (in.kind) {
      case InstrKind::compute: k = in.recompute ? Origin::recomputed : Origin::computed; break;
      case InstrKind::swap_out: k = Origin::host_copy; break;
      case InstrKind::swap_in: k = Origin::swapped_in; break;
      case InstrKind::compress: k = Origin::encoded; break;
      case InstrKind::decompress: k = Origin::decoded; break;
      case InstrKind::free: continue;
    }
    for (plan::BufferId b : in.outputs) set(b, k);
    set(in.workspace, Origin::workspace);
  }
  for (int& x : o) x = std::max(x, 0);
  return o;
}

// Interns names into one array so that columns can refer to them by index.
class Names {
 public:
  int operator()(const std::string& s) {
    auto [it, fresh] = index_.try_emplace(s, static_cast<int>(names_.size()));
    if (fresh) names_.push_back(s);
    return it->second;
  }
  const std::vector<std::string>& all() const { return names_; }

 private:
  std::unordered_map<std::string, int> index_;
  std::vector<std::string> names_;
};

int64_t ns(double seconds) { return std::llround(seconds * 1e9); }

}  // namespace

nlohmann::json plan_data(const ir::Graph& g, const plan::Plan& p, const sim::CostModel& cost, const plan::Plan& unmanaged,
                         const PlanInfo& info) {
  const sim::SimResult r = sim::simulate(g, p, cost, {.record_memory = false});
  const sim::SimResult ru = sim::simulate(g, unmanaged, cost, {.record_memory = false});
  const planners::Explanation e = planners::explain(g, p, cost);
  Names names;

  std::vector<int> decision(static_cast<size_t>(g.num_values()), -1);
  for (const planners::TensorDecision& d : e.tensors) decision[static_cast<size_t>(d.value)] = static_cast<int>(d.decision);

  const std::vector<int> origin = origins(p);
  std::vector<int> bv, br, bs, ba, be, bo, bd;
  std::vector<uint64_t> bb;
  for (const plan::Buffer& b : p.buffers) {
    bv.push_back(names(g.value(b.value).name));
    br.push_back(static_cast<int>(b.role));
    bb.push_back(b.bytes);
    bs.push_back(b.space == plan::Space::device ? 0 : 1);
    ba.push_back(b.begin);
    be.push_back(b.end);
    bo.push_back(origin[static_cast<size_t>(b.id)]);
    bd.push_back(decision[static_cast<size_t>(b.value)]);
  }
  std::vector<int> ik, is, in_node, iw, isrc, iph;
  std::vector<int64_t> ii, i0, i1;
  for (size_t i = 0; i < p.program.size(); ++i) {
    const plan::Instr& in = p.program[i];
    const sim::SimEvent& ev = r.timeline[i];
    ik.push_back(in.kind == InstrKind::compute && in.recompute ? 6 : static_cast<int>(in.kind));
    is.push_back(static_cast<int>(in.stream));
    const bool node = in.kind == InstrKind::compute;
    in_node.push_back(node ? names(g.node(in.node).name) : -1);
    iph.push_back(node ? static_cast<int>(g.node(in.node).phase) : -1);
    iw.push_back(in.kind == InstrKind::free ? in.buffer : in.outputs.empty() ? -1 : in.outputs[0]);
    isrc.push_back(in.kind != InstrKind::compute && in.kind != InstrKind::free && !in.inputs.empty() ? in.inputs[0] : -1);
    ii.push_back(ns(ev.issue));
    i0.push_back(ns(ev.start));
    i1.push_back(ns(ev.end));
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const planners::TensorDecision& d : e.tensors)
    rows.push_back({names(d.name), d.bytes, static_cast<int>(d.decision), d.detail, d.cost_seconds, d.saved});

  std::vector<std::string> roles, decisions;
  for (int k = 0; k < ir::kNumRoles; ++k) roles.emplace_back(ir::role_name(static_cast<ir::Role>(k)));
  for (size_t k = 0; k < planners::kDecisions; ++k) decisions.emplace_back(planners::decision_name(static_cast<planners::Decision>(k)));

  nlohmann::json j;
  j["header"] = {{"model", info.model},
                 {"batch", info.batch},
                 {"device", info.device},
                 {"device_description", cost.device.description},
                 {"device_memory", cost.device.memory_bytes},
                 {"cost_model", cost.source},
                 {"source", info.source},
                 {"policy", p.policy},
                 {"chosen", p.stats.chosen},
                 {"budget", p.budget},
                 {"planned_peak", p.stats.peak_device},
                 {"planned_peak_instr", p.stats.peak_instr},
                 {"simulated_peak", r.peak_device},
                 {"arena", p.device_arena},
                 {"host_arena", p.host_arena},
                 {"placement", p.placement},
                 {"lower_bound", p.stats.lower_bound},
                 {"flops", p.stats.flops},
                 {"extra_flops", p.stats.extra_flops},
                 {"step_seconds", r.makespan},
                 {"bound_seconds", r.bound()},
                 {"phase_bound_seconds", r.phase_bound()},
                 {"compute_seconds", r.compute_seconds},
                 {"recompute_seconds", r.recompute_seconds},
                 {"stall_seconds", r.stall_seconds},
                 {"d2h_seconds", r.d2h_seconds},
                 {"h2d_seconds", r.h2d_seconds},
                 {"bytes_to_host", r.bytes_to_host},
                 {"bytes_to_device", r.bytes_to_device},
                 {"unmanaged_step_seconds", ru.makespan},
                 {"unmanaged_peak", unmanaged.stats.peak_device},
                 {"unmanaged_arena", unmanaged.device_arena}};
  j["roles"] = roles;
  j["decisions"] = decisions;
  j["origins"] = kOrigins;
  j["buffers"] = {{"v", bv}, {"r", br}, {"b", bb}, {"s", bs}, {"a", ba}, {"e", be}, {"o", bo}, {"d", bd}};
  j["program"] = {{"k", ik}, {"s", is}, {"n", in_node}, {"ph", iph}, {"w", iw}, {"src", isrc},
                  {"i", ii}, {"t0", i0}, {"t1", i1}};
  j["explain"] = rows;
  j["names"] = names.all();
  return j;
}

std::string html(const std::vector<nlohmann::json>& plans) {
  if (plans.empty() || plans.size() > 2)
    throw Error("a report shows one plan or compares two, not ", plans.size());
  // JSON inside <script>: "</script" would end the element and "<!--" change how it is
  // parsed, so every '<' (only ever inside a JSON string) is written \u003c, the same
  // string to a JSON parser.
  const std::string json = nlohmann::json(plans).dump();
  std::string data;
  data.reserve(json.size());
  for (char c : json) {
    if (c == '<') data += "\\u003c";
    else data += c;
  }
  const nlohmann::json& h = plans[0]["header"];
  std::string title = "dlmem plan: " + h.value("model", std::string()) + ", " + h.value("policy", std::string());
  if (plans.size() == 2) title += " vs " + plans[1]["header"].value("policy", std::string());
  std::string escaped;
  for (char c : title) {
    if (c == '<') escaped += "&lt;";
    else if (c == '&') escaped += "&amp;";
    else escaped += c;
  }
  std::string out;
  out.reserve(data.size() + 64 * 1024);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>";
  out += escaped;
  out += "</title>\n<style>\n";
  out += kReportCss;
  out += "</style>\n</head>\n<body>\n<div id=\"app\"></div>\n<script id=\"dlmem-data\" type=\"application/json\">";
  out += data;
  out += "</script>\n<script>\n";
  out += kReportJs;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

void write_html(const std::string& path, const std::vector<nlohmann::json>& plans) {
  const std::string page = html(plans);
  write_file_atomic(path, std::as_bytes(std::span<const char>(page.data(), page.size())));
}

}  // namespace dlmem::report
