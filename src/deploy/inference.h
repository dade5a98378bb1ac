// Inference with a static memory plan: the model in inference mode (batch-norm running
// statistics, no dropout), planned once by the sharing planner -- activations of
// layers that are not live at the same time share memory -- and run by the executor
// in an arena of exactly the planned size. Used for test accuracy during compression
// and by `dlmem infer` on a .dlmz file.
//
//   deploy::InferenceSession s("lenet5", mc, {.batch = 100, .threads = 2});
//   s.set_weights(weights, "m.dlmz");
//   deploy::InferenceResult r = s.run(*data.test);
//   r.accuracy, r.images_per_second, s.memory().activation_arena
//
// Note [Activation arena]: the plan holds the weights (resident throughout) and the
// transient buffers: the input batch, activations, kernel workspaces and the loss's
// labels. memory() reports the whole device arena, and the transient buffers alone:
// their sum (each with its own memory, as without a planner) against the arena they
// need when placed by plan::place_intervals -- the same placement the planner ran --
// and the max-live lower bound no placement goes below.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include "deploy/dlmz.h"
#include "deploy/finetune.h"
#include "models/zoo.h"
#include "plan/plan.h"
#include "runtime/backend.h"
#include "runtime/executor.h"
#include "train/dataset.h"

namespace dlmem::deploy {

struct InferenceOptions {
  int64_t batch = 100;
  int threads = 0;
  std::string policy;  // "": "share"
};

struct InferenceMemory {
  std::string policy;
  uint64_t arena = 0;                // plan.device_arena: everything, placed
  uint64_t planned_peak = 0;         // plan.stats.peak_device
  uint64_t weight_bytes = 0;         // persistent buffers (weights, running statistics)
  uint64_t activation_sum = 0;       // Note [Activation arena]: transient buffers, no reuse
  uint64_t activation_arena = 0;     // the same, placed
  uint64_t activation_max_live = 0;  // their lower bound
};

struct InferenceResult {
  int64_t images = 0;
  double accuracy = 0;
  double seconds = 0;                // executor time (upload, run, download), warm-up excluded
  double images_per_second = 0;
  uint64_t measured_peak = 0;        // the executor's accounting, over every step
};

class InferenceSession {
 public:
  InferenceSession(const std::string& model, models::ModelConfig mc, InferenceOptions opt);
  ~InferenceSession();
  InferenceSession(const InferenceSession&) = delete;
  InferenceSession& operator=(const InferenceSession&) = delete;

  // Every weight of the model, by name and size; dlmem::Error naming `source` otherwise.
  void set_weights(const WeightMap& w, const std::string& source);
  // The whole dataset in batches (the last one padded); accuracy over its samples.
  // Progress to `log` (nullptr: quiet).
  InferenceResult run(const train::Dataset& data, std::ostream* log = nullptr);

  const InferenceMemory& memory() const { return memory_; }
  const ir::Graph& graph() const { return *graph_; }
  const plan::Plan& plan() const { return *plan_; }
  const runtime::Executor& executor() const { return *exec_; }

 private:
  InferenceOptions opt_;
  std::unique_ptr<runtime::Backend> backend_;
  std::unique_ptr<ir::Graph> graph_;
  std::unique_ptr<plan::Plan> plan_;
  std::unique_ptr<runtime::Executor> exec_;
  InferenceMemory memory_;
};

}  // namespace dlmem::deploy
