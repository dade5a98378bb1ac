// The command line as a user meets it: exit codes and one-line errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "util/cli_run.h"

namespace {

using dlmem::test_util::CliRun;
using dlmem::test_util::run_cli;

TEST(Cli, ModelsListsTheZoo) {
  CliRun r = run_cli("models");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("resnet50"), std::string::npos);
  EXPECT_NE(r.out.find("25557032"), std::string::npos);
}

TEST(Cli, UnknownModelListsKnownOnesAndExits2) {
  CliRun r = run_cli("analyze --model resnet9000x");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("resnet9000x"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lenet5"), std::string::npos) << r.out;
}

TEST(Cli, BadValuesExit2WithOneLine) {
  for (const char* args : {"analyze --model lenet5 --batch 0", "analyze --model lenet5 --batch -3",
                           "analyze --model lenet5 --dtype f64", "analyze --model lenet5 --optimizer rmsprop",
                           "analyze --frobnicate", "plan --model lenet5 --budget 12parsecs",
                           "plan --model lenet5 --policy magic", "plan --model lenet5 --budget 1KiB",
                           "train --model lenet5 --epochs 1 --steps 1 --data-dir /nonexistent"}) {
    CliRun r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("error"), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("internal error"), std::string::npos) << args << "\n" << r.out;
  }
}

TEST(Cli, AnalyzeJsonIsOneObjectWithTheBreakdown) {
  CliRun r = run_cli("analyze --model resnet50 --batch 64 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameters"], 25557032);
  EXPECT_GT(j["peak_no_free"].get<uint64_t>(), j["peak_free_at_last_use"].get<uint64_t>());
  EXPECT_GT(j["peak_free_at_last_use"].get<uint64_t>(), j["lower_bound"].get<uint64_t>());
  EXPECT_GT(j["bytes_by_role"]["weight"].get<uint64_t>(), 25557032ull * 4 - 1);
}

TEST(Cli, SwapPlansFitTheHostBudget) {
  // swap:tensor at 50% keeps tens of MiB of ResNet-20's stash in host memory: refused
  // under a 1 MiB host budget with the numbers, planned under the default (what the
  // machine reports available) and under a budget that holds it.
  const std::string base = "plan --model resnet20 --batch 64 --device v100 --budget 50% --json";
  CliRun r = run_cli(base + " --policy swap:tensor");
  ASSERT_EQ(r.code, 0) << r.out;
  const uint64_t host = nlohmann::json::parse(r.out)["host_arena"].get<uint64_t>();
  ASSERT_GT(host, 1u << 20);
  r = run_cli(base + " --policy swap:tensor --host-budget 1MiB");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("host budget of 1.00 MiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--host-budget"), std::string::npos) << r.out;
  r = run_cli(base + " --policy swap:tensor --host-budget " + std::to_string(host));
  EXPECT_EQ(r.code, 0) << r.out;
  // auto takes a plan that swaps nothing when the host holds nothing and one exists.
  r = run_cli(base + " --host-budget 1MiB");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["host_arena"].get<uint64_t>(), 0u) << r.out;
  r = run_cli(base + " --host-budget 12parsecs");
  EXPECT_EQ(r.code, 2) << r.out;
}

TEST(Cli, PlanWritesJsonAtomically) {
  const std::string out = "/tmp/dlmem_cli_plan_" + std::to_string(::getpid()) + ".json";
  CliRun r = run_cli("plan --model lenet5 --batch 8 --json --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto stats = nlohmann::json::parse(r.out);
  EXPECT_GE(stats["device_arena"].get<uint64_t>(), stats["peak_device"].get<uint64_t>());
  FILE* f = fopen(out.c_str(), "r");
  ASSERT_NE(f, nullptr);
  fclose(f);
  std::remove(out.c_str());
  // Into a directory that does not exist: an error, and no file.
  CliRun bad = run_cli("plan --model lenet5 --out /nonexistent/dir/plan.json");
  EXPECT_EQ(bad.code, 2) << bad.out;
}

TEST(Cli, TrainJsonReportsPlannedEqualsMeasured) {
  CliRun r = run_cli("train --model lenet5 --epochs 1 --steps 3 --batch 16 --no-eval --json --threads 2");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["planned_peak"], j["measured_peak"]);
}

}  // namespace

// With --budget and no --policy, plan uses the joint planner; --explain lists every
// stash with its decision and the totals by decision (here and in --json).
TEST(Cli, BudgetWithoutPolicyPlansWithAutoAndExplains) {
  CliRun r = run_cli("plan --model resnet20 --batch 16 --device v100-16gb --budget 60% --explain --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["policy"], "auto");
  EXPECT_FALSE(j["chosen"].get<std::string>().empty());
  const auto& tensors = j["explain"]["tensors"];
  ASSERT_FALSE(tensors.empty());
  int managed = 0, listed = 0;
  for (const auto& t : tensors) {
    EXPECT_TRUE(j["explain"]["totals"].contains(t["decision"].get<std::string>())) << t.dump();
    managed += t["decision"] != "keep";
  }
  for (const auto& [name, tot] : j["explain"]["totals"].items()) listed += tot["tensors"].get<int>();
  EXPECT_EQ(listed, static_cast<int>(tensors.size()));
  EXPECT_GT(managed, 0);

  CliRun table = run_cli("plan --model resnet20 --batch 16 --device v100-16gb --budget 60% --explain");
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_NE(table.out.find("policy auto ("), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("totals by decision"), std::string::npos) << table.out;
  // No budget: the default policy, as before.
  CliRun plain = run_cli("plan --model resnet20 --batch 16 --json");
  ASSERT_EQ(plain.code, 0) << plain.out;
  EXPECT_EQ(nlohmann::json::parse(plain.out)["policy"], "default");
}

TEST(Cli, LossyTakesCompressOrAutoAndNamesThem) {
  CliRun ok = run_cli("plan --model resnet20 --batch 16 --budget 60% --lossy=bf16 --json");
  ASSERT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(nlohmann::json::parse(ok.out)["policy"], "auto");
  CliRun bad = run_cli("plan --model resnet20 --batch 16 --policy share --lossy");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--policy compress and --policy auto"), std::string::npos) << bad.out;
}
