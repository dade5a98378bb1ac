// Plan files: to_json -> from_json gives the same plan (programs, buffers, binding,
// statistics), and malformed or mismatched files are errors that name the problem.
#include <gtest/gtest.h>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "plan/json.h"
#include "planners/planner.h"
#include "util/error.h"

namespace dlmem::plan {
namespace {

ir::Graph lenet(int64_t batch) {
  ir::Graph g = models::build_model("lenet5", {.batch = batch});
  ir::build_training_graph(g, {});
  return g;
}

void expect_same(const Plan& a, const Plan& b) {
  EXPECT_EQ(a.policy, b.policy);
  EXPECT_EQ(a.budget, b.budget);
  EXPECT_EQ(a.device_arena, b.device_arena);
  EXPECT_EQ(a.host_arena, b.host_arena);
  EXPECT_EQ(a.placement, b.placement);
  EXPECT_EQ(a.binding, b.binding);
  ASSERT_EQ(a.buffers.size(), b.buffers.size());
  for (size_t i = 0; i < a.buffers.size(); ++i) {
    const Buffer &x = a.buffers[i], &y = b.buffers[i];
    EXPECT_EQ(x.value, y.value);
    EXPECT_EQ(x.role, y.role);
    EXPECT_EQ(x.bytes, y.bytes);
    EXPECT_EQ(x.space, y.space);
    EXPECT_EQ(x.preloaded, y.preloaded);
    EXPECT_EQ(x.persistent, y.persistent);
    EXPECT_EQ(x.offset, y.offset);
    EXPECT_EQ(x.begin, y.begin);
    EXPECT_EQ(x.end, y.end);
  }
  ASSERT_EQ(a.program.size(), b.program.size());
  for (size_t i = 0; i < a.program.size(); ++i) {
    const Instr &x = a.program[i], &y = b.program[i];
    EXPECT_EQ(x.kind, y.kind);
    EXPECT_EQ(x.stream, y.stream);
    EXPECT_EQ(x.node, y.node);
    EXPECT_EQ(x.recompute, y.recompute);
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.outputs, y.outputs);
    EXPECT_EQ(x.workspace, y.workspace);
    EXPECT_EQ(x.buffer, y.buffer);
    EXPECT_EQ(x.waits, y.waits);
  }
  EXPECT_EQ(a.stats.peak_device, b.stats.peak_device);
  EXPECT_EQ(a.stats.bytes_to_host, b.stats.bytes_to_host);
  EXPECT_EQ(a.stats.lower_bound, b.stats.lower_bound);
}

TEST(PlanJson, RoundTripsEveryPolicy) {
  const ir::Graph g = lenet(16);
  for (const char* policy : {"default", "swap:vdnn-all", "swap:tensor"}) {
    SCOPED_TRACE(policy);
    const Plan p = planners::make_plan(g, {.policy = policy});
    const nlohmann::json j = to_json(g, p);
    const Plan q = from_json(g, nlohmann::json::parse(j.dump()));
    expect_same(p, q);
    EXPECT_NO_THROW(validate(g, q));
  }
}

void expect_error(const ir::Graph& g, const nlohmann::json& j, const std::string& needle) {
  try {
    from_json(g, j, "p.json");
    FAIL() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("p.json"), std::string::npos) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
  }
}

TEST(PlanJson, BadFilesNameTheProblem) {
  const ir::Graph g = lenet(16);
  const nlohmann::json good = to_json(g, planners::make_plan(g, {.policy = "swap:vdnn-conv"}));
  expect_error(g, nlohmann::json::array(), "dlmem-plan");
  {
    auto j = good;
    j["version"] = 7;
    expect_error(g, j, "version 7");
  }
  {
    auto j = good;
    j["program"][0]["kind"] = "teleport";
    expect_error(g, j, "teleport");
  }
  {
    auto j = good;
    j["program"][3]["waits"] = {99999};
    expect_error(g, j, "99999");
  }
  {
    auto j = good;
    j["buffers"][1]["value"] = "no.such.value";
    expect_error(g, j, "no.such.value");
  }
  {
    auto j = good;
    j["program"][0]["inputs"] = {123456};
    expect_error(g, j, "123456");
  }
  {
    auto j = good;
    j.erase("buffers");
    expect_error(g, j, "buffers");
  }
  {
    auto j = good;
    j["stats"]["peak_device"] = 1;
    expect_error(g, j, "peak");
  }
  // The same plan read against another model's graph.
  expect_error(lenet(8), good, "another model");
}

}  // namespace
}  // namespace dlmem::plan
