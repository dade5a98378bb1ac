// The `dlmem` command line: one file per sub-command, registered in main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
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
  void add(CLI::App& app, int64_t default_batch);
  models::ModelConfig config(bool training = true) const;
  ir::Optimizer parsed_optimizer() const;
  // The session of a training graph with this optimizer (session/session.h, Note [Devices]).
  session::SessionOptions session(const std::string& device, int threads = 0) const;
};

// The policy plan and train use: --policy, else `auto` when --budget is given, else
// `default`; with --lossy[=CODEC], compress becomes compress:CODEC and auto keeps its
// name (it reads PlanOptions::lossy); dlmem::Error for --lossy with any other policy.
std::string resolve_policy(const std::string& policy, const std::string& budget, const std::string& lossy);

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

}  // namespace dlmem::cli
