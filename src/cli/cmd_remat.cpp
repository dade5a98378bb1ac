// `dlmem remat --graph FILE.json`: the recomputation planners on a graph from the
// rematerialisation literature (networkx node-link JSON, models/remat_graph.h), at a
// budget that is a fraction of its topological order's peak (planners/remat.h).
#include <algorithm>
#include <optional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "models/remat_graph.h"
#include "planners/remat.h"
#include "util/error.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct RematArgs {
  std::string graph;
  std::string budget = "0.8";
  std::string policy = "greedy";
  double time_limit = 60;
  bool json = false;
};

std::vector<std::string> split_policies(const std::string& s) {
  if (s == "all") return {"sqrt", "chain", "greedy", "milp"};
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == ',') {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  if (out.empty()) throw Error("--policy needs a policy: sqrt, chain, milp, greedy, a comma-separated list, or all");
  return out;
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", v);
  return buf;
}

int run(const RematArgs& a) {
  if (a.time_limit <= 0) throw Error("--time-limit must be > 0 seconds, got ", a.time_limit);
  planners::RematRequest base{.time_limit_s = a.time_limit};
  planners::parse_remat_budget(a.budget, base);
  const models::RematGraph rg = models::read_remat_graph(a.graph);
  const int n = rg.graph.num_nodes();

  struct Row {
    std::string policy;
    std::optional<planners::RematResult> r;
    std::string failure;
    uint64_t reach = 0;
  };
  std::vector<Row> rows;
  const planners::RematBudget rb = planners::remat_budget(rg.graph, base);
  const uint64_t topo_peak = rb.topo_peak, budget = rb.budget;
  std::vector<std::string> policies = split_policies(a.policy);
  for (std::string& p : policies) p = planners::remat_policy(p);  // every name checked before any runs
  for (const std::string& p : policies) {
    planners::RematRequest req = base;
    req.policy = p;
    Row row{.policy = p, .r = std::nullopt, .failure = {}, .reach = 0};
    try {
      row.r = planners::solve_remat(rg, req);
    } catch (const OutOfMemory& e) {
      if (policies.size() == 1) throw;  // one policy asked for: its error is the answer (exit 2)
      row.failure = e.what();
      row.reach = e.min_budget;
    }
    rows.push_back(std::move(row));
  }
  const bool none = std::none_of(rows.begin(), rows.end(), [](const Row& r) { return r.r.has_value(); });

  if (a.json) {
    nlohmann::json out{{"graph", a.graph},         {"name", rg.name},     {"nodes", n},
                       {"backward_nodes", rg.num_backward}, {"topological_peak", topo_peak}, {"budget", budget},
                       {"base_cost", rg.total_cost}, {"results", nlohmann::json::array()}};
    for (const Row& row : rows) {
      nlohmann::json j{{"policy", row.policy}};
      if (row.r) {
        j = planners::remat_json(*row.r);
      } else {
        j["error"] = row.failure;
        if (row.reach) j["min_budget"] = row.reach;
      }
      out["results"].push_back(std::move(j));
    }
    std::cout << out.dump(2) << "\n";
    return none ? 2 : 0;
  }

  std::cout << rg.name << ": " << n << " nodes (" << n - rg.num_backward << " forward, " << rg.num_backward
            << " backward), topological order peaks at " << human_bytes(topo_peak) << "; budget "
            << human_bytes(budget) << "\n";
  Table t({{"policy", Align::Left},
           {"peak", Align::Right},
           {"of budget", Align::Right},
           {"extra cost", Align::Right},
           {"computations", Align::Right},
           {"time", Align::Right},
           {"status", Align::Left}});
  for (const Row& row : rows) {
    if (!row.r) {
      t.add_row({row.policy, "-", "-", "-", "-", "-", row.failure});
      continue;
    }
    const planners::RematResult& r = *row.r;
    std::string status = r.status;
    if (!r.optimal && r.bound > 0) status += " (proven: at least " + pct(100 * r.bound / r.base_cost) + " extra)";
    t.add_row({r.policy, human_bytes(r.peak), pct(100.0 * static_cast<double>(r.peak) / static_cast<double>(r.budget)),
               pct(r.extra_cost_pct), std::to_string(r.computations), human_duration(r.seconds), status});
  }
  std::cout << t.str();
  if (none) std::cerr << "dlmem: error: no policy reaches the budget of " << human_bytes(budget) << "\n";
  return none ? 2 : 0;
}

}  // namespace

std::function<int()> add_remat(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "remat", "recomputation planners on a graph from the literature (networkx node-link JSON: docs/recomputation.md)");
  auto a = std::make_shared<RematArgs>();
  cmd->add_option("--graph,-g", a->graph, "node-link JSON: nodes with cost_cpu and cost_ram (or duration and out_cost), links")
      ->required();
  cmd->add_option("--budget,-b", a->budget,
                  "peak target: a fraction of the topological order's peak (0.8), a percentage (80%), or bytes (1.5GiB)")
      ->capture_default_str();
  cmd->add_option("--policy,-p", a->policy, "sqrt, chain, milp, greedy, a comma-separated list, or all")
      ->capture_default_str();
  cmd->add_option("--time-limit", a->time_limit, "seconds recompute:milp's solver may take")->capture_default_str();
  cmd->add_flag("--json", a->json, "one JSON object");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
