// Training a zoo model end to end: the training graph (model + autodiff + optimizer
// + kernel workspaces), a plan under a policy and a budget, the executor on a backend,
// data, evaluation, checkpoints.
//
//   train::TrainConfig c;  c.model = "lenet5";  c.epochs = 2;  c.budget = "40%";
//   train::Trainer t(c);
//   train::TrainResult r = t.run(std::cerr);   // progress bar, accuracy per epoch
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <span>
#include <ostream>
#include <string>
#include <vector>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "session/session.h"
#include "runtime/executor.h"
#include "train/dataset.h"

namespace dlmem::train {

struct TrainConfig {
  std::string model = "lenet5";
  models::ModelConfig model_config;      // batch is taken from `batch` below
  std::string dataset = "auto";          // fashion-mnist | synthetic | auto | none (the caller's batches: step_on)
  std::string data_dir;                  // fashion-mnist: default /usr/share/datasets/fashion-mnist
  int64_t epochs = 2;
  int64_t batch = 64;
  int64_t steps_per_epoch = 0;           // 0: the whole dataset
  int64_t synthetic_size = 2048;         // samples of a synthetic dataset
  std::string budget;                    // "", "64MiB", "40%" (of the default plan's need)
  std::string policy = "default";
  planners::PlanOptions plan_options;    // time limit, --lossy, placement
  ir::TrainOptions optim;
  int threads = 0;
  std::string device = "cpu";            // cpu | cuda | a device profile (session/session.h, Note [Devices])
  uint64_t seed = 42;
  std::string save;                      // checkpoint written after training
  std::string resume;                    // checkpoint to start from
  bool evaluate = true;                  // test accuracy after each epoch
  bool poison_freed = false;             // executor option (tests)
  // Device memory: "static" (the plan's offsets) or "pool" (a pooled allocator over the
  // arena; without a budget the arena is as large as a plan that shares nothing needs).
  std::string allocator = "static";
  bool profile = false;                  // time every instruction (see Trainer::profile())
  // Stop between steps when it becomes true (the CLI's SIGINT handler sets it): the
  // current step finishes, the checkpoint is written if `save` is set, and run()
  // returns with TrainResult::interrupted. Resuming from that checkpoint continues
  // bit-identically, mid-epoch included.
  const std::atomic<bool>* interrupt = nullptr;
  // Check every node's outputs for NaN or infinity after it runs (runtime::ExecOptions).
  bool check_finite = false;
  // Data parallelism (ir/parallel.h, Note [Data parallelism]): this trainer is rank
  // comm->rank() of comm->size() (not owned; nullptr or one rank: a single process). It
  // trains on rows [rank b, (rank + 1) b) of every global batch of `batch` samples
  // (b = batch / ranks), in the order a single process reads them; losses, accuracies
  // and checkpoints are the whole run's. Every rank must make the same calls.
  runtime::Communicator* comm = nullptr;
  int zero = 0;      // ZeRO stage 0..3
  double bucket_mib = 25;  // ZeRO 0/1: gradients all-reduced in buckets of this many MiB (0: per tensor)
  std::string link;  // the interconnect the plan's collectives are simulated on ("": the device's)
};

struct EpochResult {
  int64_t epoch = 0;
  double train_loss = 0;
  double train_accuracy = 0;
  double test_accuracy = -1;  // -1: not evaluated
  double seconds = 0;
  double samples_per_second = 0;
};

struct TrainResult {
  std::vector<EpochResult> epochs;
  std::vector<float> losses;  // every step's loss
  uint64_t peak_device = 0;   // measured by the executor
  uint64_t planned_peak = 0;  // predicted by the plan
  uint64_t arena = 0;
  uint64_t budget = 0;
  bool interrupted = false;   // stopped by TrainConfig::interrupt
};

// The session a config trains in (training graph) or evaluates in (inference graph).
session::SessionOptions session_options(const TrainConfig&, bool training);

class Trainer {
 public:
  explicit Trainer(TrainConfig config);
  ~Trainer();

  // Runs the configured epochs; progress and per-epoch lines go to `log` (nullptr: quiet).
  TrainResult run(std::ostream* log);
  // The same with this many epochs of `steps_per_epoch` steps (0: the whole dataset).
  TrainResult run(std::ostream* log, int64_t epochs, int64_t steps_per_epoch);
  // One training step on the next batch; returns the loss.
  float step();
  // One training step on the caller's batch (the Python bindings' NumPy arrays, read in
  // place): `input` is the model's "input" (f32) or "ids" (i32) bytes, `labels` its
  // "label" (i32). Error naming the argument when a size does not match.
  float step_on(std::span<const std::byte> input, std::span<const std::byte> labels);
  // The logits of the inference graph (batch-norm on running statistics, no dropout)
  // on one batch of the caller's input.
  std::vector<float> predict(std::span<const std::byte> input);
  // Sets weights (and optimizer state) by name, as state() returns them.
  void load_state(const std::map<std::string, std::vector<float>>& state);
  // Accuracy over the test split (or a held-out synthetic set).
  double evaluate();

  void save(const std::string& path) const;
  // Every weight and optimizer state, by name (tests compare runs with this); whole
  // tensors, shards gathered (a collective: every rank calls it).
  std::map<std::string, std::vector<float>> state() const;
  int ranks() const;
  int rank() const;

  const ir::Graph& graph() const { return session_->graph(); }
  const session::Session& session() const { return *session_; }
  const plan::Plan& plan() const { return *plan_; }
  const runtime::Executor& executor() const { return *exec_; }
  uint64_t steps_done() const { return step_; }
  const TrainConfig& config() const { return cfg_; }
  // With TrainConfig::profile: seconds per node summed over the steps run, by node.
  const std::vector<double>& node_seconds() const { return node_seconds_; }

 private:
  void load_batch(const Batch& b, runtime::Executor& ex, const ir::Graph& g);
  void resume(const std::string& path);
  void sync_eval_weights();
  float run_loaded_step();  // builds the inference graph once, then copies the weights over
  Batch rank_rows(const Batch& global) const;  // this rank's rows of a global batch
  double sum_over_ranks(double v) const;       // in rank order; v itself for one rank
  bool next_batch(Batch& b);

  TrainConfig cfg_;
  std::unique_ptr<session::Session> session_;  // graph, backend, cost model
  std::unique_ptr<plan::Plan> plan_;
  std::unique_ptr<runtime::Executor> exec_;
  std::unique_ptr<Dataset> train_data_, test_data_;
  std::unique_ptr<class BatchIterator> batches_;
  bool token_model_ = false;
  std::vector<int32_t> last_labels_;  // the labels of the last training batch (host copy)
  std::vector<double> node_seconds_;
  uint64_t step_ = 0;
  int64_t epoch_ = 0;
  int64_t epoch_step_ = 0;  // steps already done in run_epoch_ (resumed mid-epoch)
  int64_t run_epoch_ = 0;   // the epoch run() is in
  int64_t iter_epoch_ = 0;  // the batch iterator's epoch and the batches taken from it since
  int64_t iter_batch_ = 0;
  void reset_batches(int64_t epoch);
  // Evaluation (built lazily): the same model in inference mode.
  std::unique_ptr<ir::Graph> eval_graph_;
  std::unique_ptr<plan::Plan> eval_plan_;
  std::unique_ptr<runtime::Executor> eval_exec_;
};

}  // namespace dlmem::train
