// Retraining under Deep Compression's constraints: after pruning, the survivors are
// retrained while pruned weights stay zero (Han et al. NeurIPS 2015, Sec. 3); after
// weight sharing, only the shared values (centroids) are trained, each with the sum of
// the gradients of the weights in its cluster (Han, Mao and Dally, ICLR 2016, Sec. 3.3
// and Fig. 3).
//
//   deploy::FineTuner ft("lenet5", mc, *data.train, {.lr = 1e-3});
//   ft.set_weights(trained);
//   ft.constrain_mask("fc1.weight", mask);             // pruned weights stay +0.0
//   ft.train(steps, &std::cerr, "retrain");
//   ft.constrain_shared("fc1.weight", positions, clusters);
//   ft.train(steps, &std::cerr, "fine-tune centroids");
//   deploy::WeightMap w = ft.weights();
//
// Note [Host-side updates]: the training graph is built with ir::Optimizer::none and
// every weight gradient is a graph output, so the executor keeps them readable after a
// step (the pattern of tests/ir/gradcheck_test.cpp). The update then runs on the host,
// where the constraints are applied exactly: a masked weight's gradient is dropped and
// the weight rewritten as +0.0; a shared weight is rewritten from its centroid. The
// weights are written back with Executor::write_f32 before the next step. Nothing in
// src/train changes; the cost is one copy of the weights and gradients per step.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "deploy/kmeans.h"
#include "deploy/weights.h"
#include "ir/autodiff.h"
#include "models/zoo.h"
#include "runtime/backend.h"
#include "runtime/executor.h"
#include "train/dataset.h"

namespace dlmem::train {
class BatchIterator;
}

namespace dlmem::deploy {

// The training and test images a model reads: "fashion-mnist" (models with a
// [N,1,28,28] input), "synthetic", or "auto" (Fashion-MNIST when the input fits).
struct ImageData {
  std::unique_ptr<train::Dataset> train, test;
  std::string name;  // the dataset chosen
};
ImageData open_image_data(const ir::Graph& g, const std::string& model, const std::string& dataset,
                          const std::string& data_dir, int64_t synthetic_size, uint64_t seed);

// The weights of a checkpoint written by 'dlmem train --save' for `model`; dlmem::Error
// naming the path when the model differs or a weight is missing or has another shape.
WeightMap load_checkpoint_weights(const std::string& path, const std::string& model, const ir::Graph& g);

struct FineTuneOptions {
  int64_t batch = 64;
  int threads = 0;
  uint64_t seed = 42;
  ir::Optimizer optimizer = ir::Optimizer::adam;  // adam or sgd (with momentum)
  double lr = 1e-3;
  double momentum = 0.9;
};

class FineTuner {
 public:
  // `mc.batch` and `mc.training` are set from the options. The dataset must outlive
  // the FineTuner.
  FineTuner(const std::string& model, models::ModelConfig mc, const train::Dataset& data, FineTuneOptions opt);
  ~FineTuner();
  FineTuner(const FineTuner&) = delete;
  FineTuner& operator=(const FineTuner&) = delete;

  // Every weight of the graph must be in `w` with its size (dlmem::Error otherwise).
  void set_weights(const WeightMap& w);
  WeightMap weights() const;

  // Pruning: weight i trains only where mask[i] != 0, and stays +0.0 elsewhere.
  void constrain_mask(const std::string& weight, std::vector<uint8_t> mask);
  // Weight sharing: position positions[j] holds centroid c.assignment[j]; other
  // positions are +0.0. The centroids train with the summed gradients of their members.
  void constrain_shared(const std::string& weight, std::vector<uint64_t> positions, const Clusters& c);
  // The shared weight's current centroids (DLMEM_CHECK that it is shared).
  const std::vector<float>& centroids(const std::string& weight) const;
  // The learning rate of the steps that follow (dlmem::Error unless positive).
  void set_lr(double lr);
  // Drops every constraint and the optimizer state.
  void clear_constraints();

  // `steps` mini-batches; returns the mean loss. Progress to `log` (nullptr: quiet).
  double train(int64_t steps, std::ostream* log, const std::string& label);
  int64_t batches_per_epoch() const;
  const ir::Graph& graph() const { return *graph_; }
  uint64_t steps_done() const { return step_; }

 private:
  struct Param;
  void update(Param& p, std::vector<float>& grad);

  FineTuneOptions opt_;
  std::unique_ptr<runtime::Backend> backend_;
  std::unique_ptr<ir::Graph> graph_;
  std::unique_ptr<plan::Plan> plan_;
  std::unique_ptr<runtime::Executor> exec_;
  std::unique_ptr<train::BatchIterator> batches_;
  std::vector<Param> params_;
  uint64_t step_ = 0;
  int64_t epoch_ = 0;
};

}  // namespace dlmem::deploy
