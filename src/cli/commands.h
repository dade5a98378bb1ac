// The `dlmem` command line: one file per sub-command, registered in main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "session/session.h"

namespace dlmem::cli {

// Options shared by the commands that build a model.
struct ModelArgs {
  std::string model = "lenet5";
  int64_t batch = 1;
  int64_t image_size = 0;
  int64_t seq_len = 0;
  int64_t num_classes = 0;
  std::string optimizer = "sgd";
  // Data parallelism for planning and simulating one rank (plan --ranks): the global
  // batch splits over `ranks`; ZeRO stage; the interconnect ("": the device's).
  int ranks = 1;
  int zero = 0;
  double bucket_mib = 25;
  std::string link;
  void add(CLI::App& app, int64_t default_batch);
  // plan's --ranks, --zero and --link.
  void add_parallel(CLI::App& app);
  models::ModelConfig config(bool training = true) const;
  ir::Optimizer parsed_optimizer() const;
  // The session of a training graph with this optimizer (session/session.h, Note [Devices]).
  session::SessionOptions session(const std::string& device, int threads = 0) const;
};

// The policy plan and train use: --policy, else `auto` when --budget is given, else
// `default`; with --lossy[=CODEC], compress becomes compress:CODEC and auto keeps its
// name (it reads PlanOptions::lossy); dlmem::Error for --lossy with any other policy.
std::string resolve_policy(const std::string& policy, const std::string& budget, const std::string& lossy);

// A plan file (`dlmem plan --out`) with the session that rebuilds its graph from the
// file's model header and the plan read and checked against that graph: what simulate
// and report load. `onnx` (may be empty) says where the header's ONNX model is now;
// `device` is the profile simulated. dlmem::Error naming the file for a missing,
// malformed or truncated file, or a plan made for another graph.
struct PlanFile {
  ModelArgs model;
  std::unique_ptr<session::Session> session;
  plan::Plan plan;
};
PlanFile load_plan_file(const std::string& path, const std::string& onnx, const std::string& device, int threads = 0);
// report::plan_data for a plan of `ses`, against its default plan, on `cost`.
nlohmann::json report_data(const session::Session& ses, const plan::Plan& p, const sim::CostModel& cost,
                           const ModelArgs& m, const std::string& source);

// "k40 | ... | h200 | host | profile.json": what --device takes where a profile is simulated.
std::string profile_choices();

// Each returns the command's action; main() runs it and maps errors to exit codes.
std::function<int()> add_models(CLI::App& app);
std::function<int()> add_analyze(CLI::App& app);
std::function<int()> add_plan(CLI::App& app);
std::function<int()> add_train(CLI::App& app);
std::function<int()> add_compress(CLI::App& app);
std::function<int()> add_infer(CLI::App& app);
std::function<int()> add_run(CLI::App& app);
std::function<int()> add_simulate(CLI::App& app);
std::function<int()> add_calibrate(CLI::App& app);
std::function<int()> add_place(CLI::App& app);
std::function<int()> add_report(CLI::App& app);
std::function<int()> add_remat(CLI::App& app);

}  // namespace dlmem::cli
