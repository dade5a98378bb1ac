// `dlmem remat`: graphs from the rematerialisation literature (networkx node-link
// JSON, models/remat_graph.h) read into external nodes, and the recomputation planners
// run on them (planners/remat.h): the order and the forward/backward split the file
// asks for, every bad file named, budgets reached with the schedule's peak measured
// independently here from the plan, greedy against the MILP's proven optimum, and the
// command line.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/liveness.h"
#include "models/remat_graph.h"
#include "plan/plan.h"
#include "planners/remat.h"
#include "util/cli_run.h"
#include "util/temp_dir.h"
#include "util/error.h"

namespace dlmem::planners {
namespace {

using nlohmann::json;

models::RematGraph parse(const std::string& text) { return models::parse_remat_graph(json::parse(text), "t.json"); }

TEST(RematGraph, ReadsNodeLinkJsonInTopologicalOrderForwardFirst) {
  // Ids as strings and numbers, Moccasin's key names, the loss named: "b" and "g" are
  // not ancestors of the loss, so they are the backward; "g" comes before "b" in the
  // file but reads it.
  const models::RematGraph rg = parse(R"({"directed": true, "graph": {"name": "tiny", "loss": 2},
    "nodes": [{"id": "g", "duration": 4, "out_cost": 10}, {"id": 0, "duration": 1, "out_cost": 100},
              {"id": 1, "duration": 2, "out_cost": 200}, {"id": 2, "duration": 3, "out_cost": 8},
              {"id": "b", "duration": 5, "out_cost": 200}],
    "links": [{"source": 0, "target": 1}, {"source": 1, "target": 2}, {"source": 2, "target": "b"},
              {"source": 1, "target": "b"}, {"source": "b", "target": "g"}, {"source": 0, "target": "g"},
              {"source": 0, "target": 1}]})");
  EXPECT_EQ(rg.name, "tiny");
  ASSERT_EQ(rg.ids, (std::vector<std::string>{"0", "1", "2", "b", "g"}));
  EXPECT_EQ(rg.num_backward, 2);
  EXPECT_DOUBLE_EQ(rg.total_cost, 15);
  const ir::Graph& g = rg.graph;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g.node(i).phase, ir::Phase::forward) << i;
  for (int i = 3; i < 5; ++i) EXPECT_EQ(g.node(i).phase, ir::Phase::backward) << i;
  EXPECT_EQ(g.value(g.node(1).outputs[0]).type.bytes(), 200u);
  EXPECT_EQ(g.node(1).inputs.size(), 1u);  // the repeated link counts once
  EXPECT_EQ(g.node(3).inputs.size(), 2u);
  EXPECT_DOUBLE_EQ(rg.cost_scale, 1e6);  // the smallest cost becomes 1e6 (Note [External costs])
  EXPECT_DOUBLE_EQ(ir::op_cost(g, g.node(4)).flops, 4 * rg.cost_scale);
  ASSERT_EQ(g.outputs.size(), 1u);  // the sink "g" is the result
  EXPECT_EQ(g.outputs[0], g.node(4).outputs[0]);
}

TEST(RematGraph, BadFilesAreNamedWithWhatWouldWork) {
  const std::string ok_nodes = R"("nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 4}, {"id": 1, "cost_cpu": 1, "cost_ram": 4}])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[1, 2]", "node-link JSON"},
      {R"({"nodes": []})", "\"links\" array"},
      {R"({"nodes": [], "links": []})", "has no nodes"},
      {R"({"directed": false, )" + ok_nodes + R"(, "links": []})", "undirected"},
      {R"({"nodes": [{"id": 0, "cost_ram": 4}], "links": []})", "has no cost: give it \"cost_cpu\" or \"duration\""},
      {R"({"nodes": [{"id": 0, "cost_cpu": 1}], "links": []})", "has no output size in bytes"},
      {R"({"nodes": [{"id": 0, "cost_cpu": -1, "cost_ram": 4}], "links": []})", "must be a number >= 0"},
      {R"({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 4.5}], "links": []})", "whole number of bytes"},
      {R"({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": "4"}], "links": []})", "must be a number >= 0"},
      {R"({"nodes": [{"cost_cpu": 1, "cost_ram": 4}], "links": []})", "needs an \"id\""},
      {R"({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 4}, {"id": 0, "cost_cpu": 1, "cost_ram": 4}], "links": []})",
       "two nodes have the id 0"},
      {"{" + ok_nodes + R"(, "links": [{"source": 0, "target": 7}]})", "names node 7, which \"nodes\" does not list"},
      {"{" + ok_nodes + R"(, "links": [{"source": 0}]})", "needs a \"source\" and a \"target\""},
      {"{" + ok_nodes + R"(, "links": [{"source": 1, "target": 1}]})", "reads itself"},
      {"{" + ok_nodes + R"(, "links": [{"source": 0, "target": 1}, {"source": 1, "target": 0}]})", "cycle through node"},
      {R"({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 4, "backward": true}, {"id": 1, "cost_cpu": 1, "cost_ram": 4}],
          "links": [{"source": 0, "target": 1}]})",
       "forward node 1 reads backward node 0"},
      {R"({"graph": {"loss": 9}, )" + ok_nodes + R"(, "links": []})", "the loss names node 9"},
      {R"({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 4, "backward": 1}], "links": []})", "must be true or false"},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    try {
      parse(text);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("t.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(models::read_remat_graph("/nonexistent/graph.json"), Error);
}

// The peak of a plan's program, recomputed here from its instructions: the sum of the
// buffers resident after each compute (allocated at their compute, released at their
// free), independent of the plan's statistics.
uint64_t program_peak(const plan::Plan& p) {
  std::vector<bool> resident(p.buffers.size(), false);
  uint64_t cur = 0, peak = 0;
  auto take = [&](plan::BufferId b) {
    if (b == plan::kNoBuffer || resident[static_cast<size_t>(b)]) return;
    resident[static_cast<size_t>(b)] = true;
    cur += p.buffers[static_cast<size_t>(b)].bytes;
  };
  for (const plan::Buffer& b : p.buffers)
    if (b.preloaded) take(b.id);
  peak = cur;
  for (const plan::Instr& in : p.program) {
    if (in.kind == plan::InstrKind::compute)
      for (plan::BufferId b : in.outputs) take(b);
    peak = std::max(peak, cur);
    if (in.kind == plan::InstrKind::free && resident[static_cast<size_t>(in.buffer)]) {
      resident[static_cast<size_t>(in.buffer)] = false;
      cur -= p.buffers[static_cast<size_t>(in.buffer)].bytes;
    }
  }
  return peak;
}

TEST(Remat, GreedyReachesEachBudgetOnGeneratedGraphsAndRecomputes) {
  struct G {
    std::string name;
    std::vector<models::RematNode> nodes;
  };
  const std::vector<G> graphs = {{"chain-32", models::remat_chain(32, 1)},
                                 {"unet-4", models::remat_unet(4, 2)},
                                 {"random-200", models::remat_random_layered(200, 3)}};
  for (const G& gr : graphs) {
    const models::RematGraph rg = models::parse_remat_graph(models::remat_graph_json(gr.nodes, gr.name), gr.name);
    EXPECT_EQ(rg.graph.num_nodes(), static_cast<int>(gr.nodes.size()));
    double last_extra = -1;
    for (double f : {1.0, 0.8, 0.6}) {
      SCOPED_TRACE(gr.name + " at " + std::to_string(f));
      const RematResult r = solve_remat(rg, {.policy = "greedy", .budget_fraction = f});
      EXPECT_EQ(r.policy, "recompute:greedy");
      EXPECT_LE(r.peak, r.budget);
      EXPECT_LE(r.budget, r.topo_peak);
      EXPECT_DOUBLE_EQ(r.base_cost, rg.total_cost);
      EXPECT_GE(r.peak, r.lower_bound);
      EXPECT_EQ(program_peak(r.plan), r.peak);
      if (f == 1.0) {
        EXPECT_EQ(r.computations, rg.graph.num_nodes());
        EXPECT_EQ(r.extra_cost_pct, 0);
      } else {
        // Below the topological peak something must be computed again, and a lower
        // budget never costs less.
        EXPECT_GT(r.computations, rg.graph.num_nodes());
        EXPECT_GT(r.extra_cost_pct, 0);
        EXPECT_GE(r.extra_cost_pct, last_extra);
      }
      last_extra = r.extra_cost_pct;
    }
  }
}

TEST(Remat, ThePeakIsTheProgramsAndGreedyIsNearTheMilpOptimum) {
  // A small training chain, where CBC proves its optimum quickly: greedy's cost within
  // 5% of it (the issue's target), and both schedules' peaks within the budget
  // by a count of the program's own buffers.
  const models::RematGraph rg = models::parse_remat_graph(models::remat_graph_json(models::remat_chain(8, 5), "c8"), "c8");
  const analysis::Liveness live = analysis::compute_liveness(rg.graph, analysis::default_schedule(rg.graph));
  plan::Plan plain = plan::make_default_plan(rg.graph, live);
  plan::compute_lifetimes(plain);
  plan::compute_stats(rg.graph, plain);
  EXPECT_EQ(program_peak(plain), plain.stats.peak_device);
  const RematResult milp =
      solve_remat(rg, {.policy = "milp", .budget_fraction = 0.7, .time_limit_s = 60});
  const RematResult greedy = solve_remat(rg, {.policy = "greedy", .budget_fraction = 0.7});
  ASSERT_TRUE(milp.optimal) << milp.status;
  EXPECT_EQ(milp.gap_pct, 0);
  EXPECT_LE(milp.peak, milp.budget);
  EXPECT_EQ(program_peak(milp.plan), milp.peak);
  EXPECT_EQ(program_peak(greedy.plan), greedy.peak);
  EXPECT_GT(milp.extra_cost_pct, 0);
  EXPECT_LE(milp.extra_cost_pct, greedy.extra_cost_pct + 1e-9);  // nothing beats the optimum
  EXPECT_LE(greedy.cost, 1.05 * milp.cost);  // the issue's target, on the total cost
}

TEST(Remat, CostsInAnyUnitGiveTheSameSchedule) {
  // The same chain with costs in seconds (0.001-0.1) and in their thousandths (1-100):
  // the planners see the same relative costs (Note [External costs]), so the same
  // schedule, and the figures come back in the file's unit.
  std::vector<models::RematNode> ints = models::remat_chain(12, 9), secs = ints;
  for (models::RematNode& n : secs) n.cost /= 1000;
  const models::RematGraph a = models::parse_remat_graph(models::remat_graph_json(ints, "ints"), "ints");
  const models::RematGraph b = models::parse_remat_graph(models::remat_graph_json(secs, "secs"), "secs");
  for (const char* policy : {"greedy", "milp"}) {
    SCOPED_TRACE(policy);
    const RematResult ra = solve_remat(a, {.policy = policy, .budget_fraction = 0.7});
    const RematResult rb = solve_remat(b, {.policy = policy, .budget_fraction = 0.7});
    EXPECT_EQ(ra.computations, rb.computations);
    EXPECT_EQ(ra.peak, rb.peak);
    EXPECT_NEAR(ra.extra_cost_pct, rb.extra_cost_pct, 1e-9);
    EXPECT_NEAR(rb.base_cost, b.total_cost, 1e-9 * b.total_cost);
    EXPECT_NEAR(ra.base_cost, 1000 * rb.base_cost, 1e-6 * ra.base_cost);
    EXPECT_GT(ra.computations, a.graph.num_nodes());
  }
}

TEST(Remat, ImpossibleBudgetsAndPoliciesAreRefused) {
  const models::RematGraph rg = models::parse_remat_graph(models::remat_graph_json(models::remat_chain(16, 7), "c"), "c");
  try {
    solve_remat(rg, {.policy = "greedy", .budget_fraction = 0.05});
    ADD_FAILURE() << "5% of the peak accepted";
  } catch (const OutOfMemory& e) {
    EXPECT_GT(e.min_budget, 0u) << e.what();
  }
  EXPECT_THROW(solve_remat(rg, {.policy = "share", .budget_fraction = 0.8}), Error);
  EXPECT_THROW(solve_remat(rg, {.policy = "swap:tensor", .budget_fraction = 0.8}), Error);
  EXPECT_THROW(solve_remat(rg, {.policy = "greedy", .budget_fraction = 1.5}), Error);
  EXPECT_THROW(solve_remat(rg, {.policy = "greedy", .budget_fraction = 0}), Error);
}

TEST(RematCli, PrintsEachPolicyAndJsonAndNamesBadInput) {
  const test_util::TempDir tmp;  // the sanitizer suite runs this test at the same time
  const std::filesystem::path dir = tmp.path();
  const std::string file = (dir / "unet.json").string();
  std::ofstream(file) << models::remat_graph_json(models::remat_unet(3, 11), "unet-3").dump();

  auto r = test_util::run_cli("remat --graph " + file + " --budget 0.8 --policy greedy,chain --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j.at("name"), "unet-3");
  ASSERT_EQ(j.at("results").size(), 2u);
  EXPECT_EQ(j.at("results")[0].at("policy"), "recompute:greedy");
  EXPECT_LE(j.at("results")[0].at("peak").get<uint64_t>(), j.at("budget").get<uint64_t>());
  const RematResult direct = solve_remat(models::read_remat_graph(file), {.policy = "greedy", .budget_fraction = 0.8});
  EXPECT_EQ(j.at("results")[0].at("peak").get<uint64_t>(), direct.peak);
  EXPECT_DOUBLE_EQ(j.at("results")[0].at("extra_cost_pct").get<double>(), direct.extra_cost_pct);

  r = test_util::run_cli("remat --graph " + file + " --budget 80%");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("recompute:greedy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("extra cost"), std::string::npos) << r.out;

  r = test_util::run_cli("remat --graph " + file + " --budget 1.5");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("fraction"), std::string::npos) << r.out;
  r = test_util::run_cli("remat --graph " + file + " --policy share");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("sqrt, chain, milp or greedy"), std::string::npos) << r.out;
  r = test_util::run_cli("remat --graph " + file + " --budget 0.01");
  EXPECT_EQ(r.code, 2) << r.out;
  r = test_util::run_cli("remat --graph " + (dir / "missing.json").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("missing.json"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dlmem::planners
