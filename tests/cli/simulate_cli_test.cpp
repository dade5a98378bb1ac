// `dlmem plan --out` -> `dlmem simulate` (table, JSON, Chrome trace, --measure) and
// `dlmem calibrate`, as a user runs them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "util/atomic_file.h"
#include "util/temp_dir.h"
#include "util/cli_run.h"

namespace {

using dlmem::test_util::CliRun;
using dlmem::test_util::run_cli;

nlohmann::json read_json(const std::string& path) {
  const auto bytes = dlmem::read_file(path);
  return nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data()),
                               reinterpret_cast<const char*>(bytes.data()) + bytes.size());
}

TEST(SimulateCli, PlanThenSimulateWithTrace) {
  dlmem::test_util::TempDir dir;
  const std::string plan = dir.file("p.json"), trace = dir.file("t.json");
  CliRun r = run_cli("plan --model resnet20 --batch 8 --policy swap:tensor --budget 60% --device v100 --out " + plan);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_json(plan).at("model").at("name"), "resnet20");

  r = run_cli("simulate --plan " + plan + " --device v100-16gb --trace " + trace);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("step time"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stall"), std::string::npos) << r.out;
  const nlohmann::json t = read_json(trace);
  bool counter = false;
  for (const auto& e : t.at("traceEvents")) counter = counter || (e.at("ph") == "C" && e.at("name") == "device memory");
  EXPECT_TRUE(counter);

  r = run_cli("simulate --plan " + plan + " --device h100 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("peak_device"), j.at("planned_peak"));
  EXPECT_GT(j.at("bytes_to_host").get<uint64_t>(), 0u);
  EXPECT_GE(j.at("step_over_bound").get<double>(), 1.0);
  EXPECT_EQ(j.at("device"), "h100-80gb");
}

TEST(SimulateCli, MeasureRunsThePlanAndReportsThePredictionError) {
  dlmem::test_util::TempDir dir;
  const std::string plan = dir.file("p.json");
  ASSERT_EQ(run_cli("plan --model lenet5 --batch 16 --policy swap:vdnn-conv --out " + plan).code, 0);
  CliRun r = run_cli("simulate --plan " + plan + " --device " + dir.file("none.json") + " --json");
  EXPECT_EQ(r.code, 2) << r.out;  // a missing profile file is a user error
  const std::string prof = dir.file("host.json");
  r = run_cli("calibrate --repeats 1 --threads 2 --out " + prof);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("GEMM"), std::string::npos) << r.out;
  r = run_cli("simulate --plan " + plan + " --device " + prof + " --measure 2 --threads 2 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("cost_model"), "measured");
  EXPECT_GT(j.at("measured_step_seconds").get<double>(), 0.0);
}

TEST(SimulateCli, BadInputExits2WithOneLine) {
  dlmem::test_util::TempDir dir;
  CliRun r = run_cli("simulate --plan " + dir.file("missing.json"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("missing.json"), std::string::npos) << r.out;
  const std::string plan = dir.file("p.json");
  ASSERT_EQ(run_cli("plan --model lenet5 --batch 4 --out " + plan).code, 0);
  r = run_cli("simulate --plan " + plan + " --device quantum-9000");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("v100-16gb"), std::string::npos) << r.out;
}

// A plan file that breaks the plan contract (a buffer freed before its reader) is the
// user's input: exit 2 with the instruction and the value named, never an internal error.
TEST(SimulateCli, InconsistentPlanFileIsAUserError) {
  dlmem::test_util::TempDir dir;
  const std::string plan = dir.file("p.json");
  ASSERT_EQ(run_cli("plan --model lenet5 --batch 4 --out " + plan).code, 0);
  nlohmann::json j = read_json(plan);
  auto& prog = j["program"];
  // The first free of a compute's output moves before that buffer's reader.
  size_t at = 0;
  for (size_t i = 1; i < prog.size(); ++i)
    if (prog[i]["kind"] == "free" && prog[i - 1]["kind"] == "compute" && i >= 3 && prog[i]["buffer"] == prog[i - 1]["inputs"][0]) {
      at = i;
      break;
    }
  ASSERT_GT(at, 0u);
  std::swap(prog[at], prog[at - 1]);
  const std::string bad = dir.file("bad.json"), text = j.dump();
  dlmem::write_file_atomic(bad, std::as_bytes(std::span<const char>(text.data(), text.size())));
  const CliRun r = run_cli("simulate --plan " + bad);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("inconsistent"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("instruction " + std::to_string(at)), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("internal error"), std::string::npos) << r.out;
}

}  // namespace

// One rank of a data-parallel run, planned without running it: the shards are in the
// plan, the file's header rebuilds the rank's graph for simulate and report, and the
// collectives cost more on a slower interconnect.
TEST(SimulateCli, PlanOneRankOfADataParallelRun) {
  dlmem::test_util::TempDir dir;
  const std::string plan = dir.file("rank.json");
  CliRun one = run_cli("plan --model bert-tiny --batch 16 --device h100 --json");
  ASSERT_EQ(one.code, 0) << one.out;
  CliRun r = run_cli("plan --model bert-tiny --batch 128 --ranks 8 --zero 3 --device h100 --json --out " + plan);
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json single = nlohmann::json::parse(one.out), rank = nlohmann::json::parse(r.out);
  // 128 over 8 ranks is the single run's 16 per rank; ZeRO 3 keeps about 1/8 of the weights.
  const auto weights = [](const nlohmann::json& j) { return j.at("peak_by_role").at("weight").get<uint64_t>(); };
  EXPECT_LE(weights(rank), weights(single) / 8 + 64 * 1024);
  EXPECT_LT(rank.at("peak_device").get<uint64_t>(), single.at("peak_device").get<uint64_t>());
  EXPECT_EQ(read_json(plan).at("model").at("ranks"), 8);

  auto step = [&](const std::string& link) {
    CliRun s = run_cli("simulate --plan " + plan + " --device h100 --json" + link);
    EXPECT_EQ(s.code, 0) << s.out;
    return nlohmann::json::parse(s.out).at("step_seconds").get<double>();
  };
  const double nvlink = step("");
  r = run_cli("plan --model bert-tiny --batch 128 --ranks 8 --zero 3 --device h100 --link ethernet-10 --out " + plan);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_GT(step(""), 2 * nvlink);  // 1.25 GB/s instead of 450 GB/s each way

  r = run_cli("report " + plan + " --device h100 --html " + dir.file("rank.html"));
  EXPECT_EQ(r.code, 0) << r.out;
  r = run_cli("plan --model bert-tiny --batch 100 --ranks 8 --device h100");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("does not split over 8 ranks"), std::string::npos) << r.out;
  r = run_cli("plan --model bert-tiny --batch 16 --zero 2 --device h100");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("give --ranks N"), std::string::npos) << r.out;
}
