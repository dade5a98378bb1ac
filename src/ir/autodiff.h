// Autodiff: a forward graph with a loss becomes one training graph -- forward,
// backward (gradients summed at fan-out) and optimizer updates -- so that every byte
// of a training step is a value in one graph (DESIGN.md, "Core types").
//
//   ir::Graph g = models::build("lenet5", {.batch = 64});
//   ir::TrainOptions opt{.optimizer = ir::Optimizer::sgd, .lr = 0.01, .momentum = 0.9};
//   ir::build_training_graph(g, opt);   // appends backward and update nodes
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace dlmem::ir {

enum class Optimizer : uint8_t { none, sgd, adam };
std::string_view optimizer_name(Optimizer);

struct TrainOptions {
  Optimizer optimizer = Optimizer::sgd;
  double lr = 0.01;
  double momentum = 0.9;  // sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam
  double weight_decay = 0.0;
  // Where the update of a weight runs: after the whole backward (as
  // torch.optim.Optimizer.step(), all weight gradients live at once), or as soon as the
  // weight's gradient is complete (each weight gradient dies at once).
  bool eager_update = false;
};

// Appends the backward and (unless optimizer == none) update nodes to `g`, whose
// `loss` must be set. Returns, per trainable weight, the weight and its gradient.
struct ParamGrad {
  ValueId weight;
  ValueId grad;
};
std::vector<ParamGrad> build_training_graph(Graph& g, const TrainOptions& opt);

// The interface a gradient builder (OpDef::grad) sees: the forward node, the gradients
// of its outputs, and a way to emit backward nodes and set input gradients.
class GradContext {
 public:
  GradContext(Graph& g, NodeId forward, std::vector<ValueId> dys, std::vector<bool> needs);

  const Attrs& attrs() const { return fwd_.attrs; }
  const std::string& name() const { return fwd_.name; }
  int num_inputs() const { return static_cast<int>(fwd_.inputs.size()); }
  ValueId x(int i) const { return fwd_.inputs.at(static_cast<size_t>(i)); }
  ValueId y(int i) const { return fwd_.outputs.at(static_cast<size_t>(i)); }
  ValueId dy(int i) const { return dys_.at(static_cast<size_t>(i)); }
  const TensorType& type(ValueId v) const { return g_.value(v).type; }
  bool needs(int input) const { return needs_.at(static_cast<size_t>(input)); }

  // Adds one backward node (named "<forward>/<suffix>") and returns its outputs.
  std::vector<ValueId> emit(OpKind op, const std::string& suffix, Attrs attrs,
                            std::vector<ValueId> inputs);
  ValueId emit1(OpKind op, const std::string& suffix, Attrs attrs, std::vector<ValueId> inputs);
  // The gradient of forward input `i` (ignored when !needs(i)).
  void set(int i, ValueId grad);
  const std::vector<ValueId>& dxs() const { return dxs_; }

 private:
  Graph& g_;
  Node fwd_;  // a copy: emitting nodes may reallocate the graph's node vector
  std::vector<ValueId> dys_;
  std::vector<bool> needs_;
  std::vector<ValueId> dxs_;
};

}  // namespace dlmem::ir
