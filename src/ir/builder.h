// A builder that reads like a model definition. Layers create their weights, named as
// PyTorch names them ("features.0.weight"), initialised as PyTorch initialises them.
//
//   ir::Graph g;
//   ir::Builder b(g);
//   auto x = b.input("image", {64, 1, 28, 28});
//   auto y = b.label("label", {64});
//   auto h = b.relu(b.conv2d(x, 20, 5, {}, "conv1"));
//   h = b.max_pool(h, 2, 2);
//   auto logits = b.linear(b.flatten(h), 10, "fc");
//   b.softmax_xent(logits, y);          // sets g.loss
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace dlmem::ir {

struct ConvOpts {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
  std::optional<Init> weight_init;  // default: PyTorch's kaiming_uniform(a=sqrt(5))
};

class Builder {
 public:
  // `training`: batch-norm uses batch statistics and dropout is active; otherwise
  // batch-norm uses running statistics and dropout is the identity.
  explicit Builder(Graph& g, bool training = true, uint64_t seed = 0x5eed);

  Graph& graph() { return g_; }
  bool training() const { return training_; }

  // Prefixes the names of the layers created while the guard lives ("layer1.0.").
  class Scope {
   public:
    Scope(Builder& b, const std::string& name);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Builder& b_;
    size_t saved_;
  };
  Scope scope(const std::string& name) { return Scope(*this, name); }

  ValueId input(const std::string& name, Shape shape, DType dtype = DType::f32);
  ValueId label(const std::string& name, Shape shape);
  ValueId weight(const std::string& name, Shape shape, Init init, bool trainable = true);

  // Layers with weights.
  ValueId conv2d(ValueId x, int64_t out_channels, int64_t kernel, const ConvOpts& o,
                 const std::string& name);
  ValueId linear(ValueId x, int64_t out_features, const std::string& name, bool bias = true,
                 std::optional<Init> weight_init = std::nullopt);
  ValueId batch_norm(ValueId x, const std::string& name, double eps = 1e-5, double momentum = 0.1);
  ValueId layer_norm(ValueId x, const std::string& name, double eps = 1e-5);
  ValueId embedding(ValueId ids, int64_t vocab, int64_t dim, const std::string& name,
                    std::optional<Init> init = std::nullopt);
  // A linear layer whose weight is an existing value (weight tying, e.g. GPT-2's head).
  ValueId linear_with(ValueId x, ValueId weight, ValueId bias, const std::string& name);

  // Layers without weights.
  ValueId relu(ValueId x);
  ValueId relu6(ValueId x);
  ValueId gelu(ValueId x);
  ValueId tanh(ValueId x);
  ValueId sigmoid(ValueId x);
  ValueId dropout(ValueId x, double p);
  ValueId max_pool(ValueId x, int64_t kernel, int64_t stride, int64_t padding = 0,
                   bool ceil_mode = false);
  ValueId avg_pool(ValueId x, int64_t kernel, int64_t stride, int64_t padding = 0,
                   bool ceil_mode = false, bool count_include_pad = true);
  ValueId global_avg_pool(ValueId x);  // [N,C,H,W] -> [N,C]
  ValueId add(ValueId a, ValueId b);
  ValueId mul(ValueId a, ValueId b);
  ValueId scale(ValueId x, double alpha);
  ValueId matmul(ValueId a, ValueId b, bool trans_a = false, bool trans_b = false);
  ValueId softmax(ValueId x);
  ValueId causal_mask(ValueId x);
  ValueId reshape(ValueId x, Shape shape);
  ValueId flatten(ValueId x);  // [N, ...] -> [N, -1]
  ValueId transpose(ValueId x, std::vector<int64_t> perm);
  ValueId concat(const std::vector<ValueId>& xs, int64_t axis);
  ValueId slice(ValueId x, int64_t axis, int64_t start, int64_t length);

  // The mean softmax cross-entropy of logits against integer labels; becomes g.loss.
  // The logits are also recorded as a graph output.
  ValueId softmax_xent(ValueId logits, ValueId labels);

  const Shape& shape(ValueId v) const { return g_.value(v).type.shape; }

 private:
  std::string full(const std::string& name) const { return prefix_ + name; }
  std::string auto_name(const char* op);
  ValueId node1(OpKind op, const std::string& name, Attrs a, std::vector<ValueId> in);

  Graph& g_;
  bool training_;
  uint64_t seed_;
  std::string prefix_;
  int counter_ = 0;
};

// PyTorch's default for Conv/Linear weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// (kaiming_uniform with a = sqrt(5)).
Init default_uniform(int64_t fan_in);
// kaiming_normal(mode, nonlinearity='relu'): N(0, sqrt(2 / fan)).
Init kaiming_normal(int64_t fan);

}  // namespace dlmem::ir
