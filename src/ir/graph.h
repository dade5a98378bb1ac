// The graph IR: typed values and the nodes that produce them, kept in a topological
// order (nodes are appended only after their inputs exist). A training graph holds
// every byte of a training step as a value: inputs, weights, activations, gradients,
// weight gradients, optimizer state and kernel workspaces.
//
//   ir::Graph g;
//   auto x = g.add_value("x", {{8, 16}}, ir::Role::input);
//   auto n = g.add_node(ir::OpKind::relu, "act", {}, {x}, ir::Role::activation);
//   g.verify();
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ir/attrs.h"
#include "ir/op.h"
#include "ir/types.h"

namespace dlmem::ir {

using ValueId = int32_t;
using NodeId = int32_t;
inline constexpr ValueId kNoValue = -1;
inline constexpr NodeId kNoNode = -1;

// How a weight is initialised (as the reference implementations do it), or its given
// values (an imported model's initializers; shared between copies of a graph).
struct Init {
  enum class Kind : uint8_t { none, zeros, ones, uniform, normal, given };
  Kind kind = Kind::none;
  float a = 0;  // uniform: low;  normal: mean
  float b = 0;  // uniform: high; normal: std
  std::shared_ptr<const std::vector<float>> values;  // given: numel() floats
};

struct Shard {
  Shape full;
  int rank = 0;
  int ranks = 1;
};

struct Value {
  ValueId id = kNoValue;
  std::string name;
  TensorType type;
  Role role = Role::activation;
  NodeId producer = kNoNode;        // kNoNode for graph inputs, weights, state
  std::vector<NodeId> consumers;    // in order, may repeat when read twice by one node
  bool trainable = false;           // weights: updated by the optimizer, counted as parameters
  Init init;                        // weights and state: how to initialise
  ValueId grad_of = kNoValue;       // gradients: the value this is the gradient of
  // Data parallelism (ir/parallel.h): this value is rank `rank`'s shard of a tensor of
  // shape `full` (Note [Shards], runtime/comm.h); `init` initialises the whole tensor.
  std::optional<Shard> shard;
};

// Which part of a training step a node belongs to.
enum class Phase : uint8_t { forward, backward, update };

struct Node {
  NodeId id = kNoNode;
  OpKind op = OpKind::relu;
  std::string name;  // "layer1.0.conv1", "layer1.0.conv1/bwd_data"
  Attrs attrs;
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  ValueId workspace = kNoValue;  // the kernel's scratch, when it needs one
  Phase phase = Phase::forward;
  NodeId forward_of = kNoNode;   // backward nodes: the forward node they differentiate
};

class Graph {
 public:
  // A value without producer: input, label, weight or optimizer state.
  ValueId add_value(std::string name, TensorType type, Role role);
  // Appends a node; infers its outputs' types (dlmem::Error on a mismatch) and gives
  // them `out_role`. Outputs are named "<node name>" (one output) or "<name>:<i>".
  NodeId add_node(OpKind op, std::string name, Attrs attrs, std::vector<ValueId> inputs,
                  Role out_role, Phase phase = Phase::forward);
  // Gives node `n` a scratch value of `bytes` (role workspace).
  ValueId add_workspace(NodeId n, uint64_t bytes);

  const Value& value(ValueId v) const { return values_.at(static_cast<size_t>(v)); }
  Value& value(ValueId v) { return values_.at(static_cast<size_t>(v)); }
  const Node& node(NodeId n) const { return nodes_.at(static_cast<size_t>(n)); }
  Node& node(NodeId n) { return nodes_.at(static_cast<size_t>(n)); }
  const std::vector<Value>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  int num_values() const { return static_cast<int>(values_.size()); }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }

  // First value with this name, or kNoValue.
  ValueId find(std::string_view name) const;
  // Values with this role, in id order.
  std::vector<ValueId> values_with_role(Role r) const;
  // Number of trainable parameters (elements).
  int64_t parameter_count() const;

  // Checks the invariants: inputs exist before use, producer/consumer links agree,
  // output types equal what inference gives, names of weights unique.
  void verify() const;

  // Designated values.
  ValueId loss = kNoValue;
  std::vector<ValueId> outputs;  // e.g. logits / predictions

 private:
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, ValueId> by_name_;
};

// The types of a node's inputs, for shape inference and cost.
std::vector<const TensorType*> input_types(const Graph&, const Node&);
std::vector<const TensorType*> output_types(const Graph&, const Node&);

}  // namespace dlmem::ir
