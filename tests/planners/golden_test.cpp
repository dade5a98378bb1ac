// Every plan the zoo produces stays what it was when the planners became passes (Issue
// 10): tests/golden/plans.jsonl holds, for every zoo model at two batch sizes and every
// policy of that commit, with no budget and at 70% of the default plan's arena, what
// `dlmem plan --device v100-16gb --json` reported (tests/golden/make_plan_golden.py
// wrote it) -- or that the policy refused the budget. This plans the same cases through
// the library, as the CLI does (session::Session), and asserts the same peak, arena,
// extra FLOPs and bytes moved. Cases that took 2 s or more to plan are left to the
// script (it can re-check them all); one test a model, so ctest spreads them.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "session/session.h"
#include "util/error.h"

namespace dlmem::planners {
namespace {

constexpr double kMaxSeconds = 2.0;

std::vector<nlohmann::json> golden_rows() {
  std::ifstream f(std::string(DLMEM_SOURCE_DIR) + "/tests/golden/plans.jsonl");
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

std::vector<std::string> golden_models() {
  std::vector<std::string> models;
  std::set<std::string> seen;
  for (const auto& r : golden_rows())
    if (seen.insert(r["model"].get<std::string>()).second) models.push_back(r["model"]);
  return models;
}

class GoldenPlans : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenPlans, SameFiguresAsBeforeThePassLayout) {
  const std::string model = GetParam();
  std::map<int64_t, std::unique_ptr<session::Session>> sessions;
  int checked = 0;
  for (const nlohmann::json& r : golden_rows()) {
    if (r["model"] != model || r["seconds"].get<double>() >= kMaxSeconds) continue;
    const int64_t batch = r["batch"];
    auto& ses = sessions[batch];
    if (!ses) ses = std::make_unique<session::Session>(session::SessionOptions{
                  .model = model, .config = {.batch = batch}, .device = "v100-16gb"});
    const std::string policy = r["policy"], budget = r["budget"];
    SCOPED_TRACE(model + " b" + std::to_string(batch) + " " + policy + " budget '" + budget + "'");
    ++checked;
    // Without the exact placement search (issue 16, after this golden file): the
    // figures are the passes' own; tests/plan/place_exact_test.cpp tests the search.
    const PlanRequest req{.policy = policy, .budget = ses->budget(budget), .options = {.place_time_limit_s = 0}};
    if (r.value("refused", false)) {
      EXPECT_THROW(ses->plan(req), Error);
      continue;
    }
    const plan::Plan p = ses->plan(req);
    EXPECT_EQ(p.budget, r["budget_bytes"].get<uint64_t>());
    EXPECT_EQ(p.stats.peak_device, r["peak_device"].get<uint64_t>());
    EXPECT_EQ(p.device_arena, r["device_arena"].get<uint64_t>());
    EXPECT_EQ(p.stats.extra_flops, r["extra_flops"].get<double>());
    EXPECT_EQ(p.stats.bytes_to_host, r["bytes_to_host"].get<uint64_t>());
    EXPECT_EQ(p.stats.bytes_to_device, r["bytes_to_device"].get<uint64_t>());
  }
  EXPECT_GT(checked, 30);  // 18 policies x 2 batches x 2 budgets, less the slow ones
}

INSTANTIATE_TEST_SUITE_P(Zoo, GoldenPlans, ::testing::ValuesIn(golden_models()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace dlmem::planners
