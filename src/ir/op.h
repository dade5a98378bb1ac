// The op registry: every fact about an op kind lives here, never in a planner
// (STYLE.md, rule 1). Planners ask the OpDef: what shape, what cost, which values the
// backward reads, which output may overwrite which input.
//
//   const ir::OpDef& def = ir::op_def(node.op);
//   auto saved = def.saved(node);           // what the backward of this node reads
//   if (def.may_alias(0, 0)) { ... }        // output 0 may be written over input 0
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "ir/attrs.h"
#include "ir/types.h"

namespace dlmem::ir {

class Graph;
struct Node;
class GradContext;

enum class OpKind : uint16_t {
  // forward
  conv2d, linear, matmul, add, mul, scale, relu, relu6, gelu, tanh, sigmoid, max_pool2d,
  avg_pool2d, global_avg_pool, batch_norm, layer_norm, dropout, softmax, causal_mask,
  softmax_xent, concat, reshape, transpose, slice, embedding,
  // forward ops ONNX models need (src/models/onnx): numpy-broadcasting sub/div,
  // element-wise math (pow: x^alpha), leaky ReLU (slope alpha), log-softmax over the
  // last dimension, and expand (broadcast to attrs.shape; the gradient of reduce_sum)
  sub, div, pow, sqrt, erf, exp, log, leaky_relu, log_softmax, expand,
  // backward
  conv2d_bwd_data, conv2d_bwd_weight, linear_bwd_data, linear_bwd_weight, relu_bwd,
  relu6_bwd, gelu_bwd, tanh_bwd, sigmoid_bwd, max_pool2d_bwd, avg_pool2d_bwd,
  global_avg_pool_bwd, batch_norm_bwd, layer_norm_bwd, dropout_bwd, softmax_bwd,
  causal_mask_bwd, softmax_xent_bwd, slice_bwd, reduce_sum, embedding_bwd, fill,
  erf_bwd, leaky_relu_bwd, log_softmax_bwd,
  // optimizer updates (mutate their inputs in place, no outputs)
  sgd_update, adam_update,
  // data parallelism (ir/parallel.h): collectives over the ranks, and a rank's slice
  allreduce, reduce_scatter, all_gather, all_gather_into, shard,
  // a node of an external graph (`dlmem remat`): a given cost and output size, no kernel
  external,
  kCount
};
inline constexpr int kNumOps = static_cast<int>(OpKind::kCount);

// Work of one execution of a node.
struct Cost {
  double flops = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

// Which forward inputs and outputs the backward of a node reads (bit i = input/output i).
struct Saved {
  uint32_t inputs = 0;
  uint32_t outputs = 0;
  bool input(int i) const { return (inputs >> i) & 1u; }
  bool output(int i) const { return (outputs >> i) & 1u; }
};

// Input types as seen by shape inference and cost functions.
using TypeList = std::span<const TensorType* const>;

struct OpDef {
  std::string_view name;
  int min_inputs = 1;
  int max_inputs = 1;  // -1: variadic
  // Output types from input types; throws dlmem::Error naming the node and the shapes.
  std::vector<TensorType> (*infer)(const Node&, TypeList inputs) = nullptr;
  // FLOPs and bytes moved; nullptr: no FLOPs, bytes = inputs read + outputs written.
  double (*flops)(const Node&, TypeList inputs, TypeList outputs) = nullptr;
  // What the backward of this node reads (forward ops only).
  Saved (*saved)(const Node&) = nullptr;
  // Builds the gradient nodes of one forward node (nullptr: not differentiable).
  void (*grad)(GradContext&) = nullptr;
  // (output, input) pairs: the output may be written over the input when the input
  // is not read afterwards. Op fact, used by the in-place pass.
  std::vector<std::pair<int, int>> inplace;
  // Output 0 is a view of input 0 (same bytes, new shape): no kernel runs, storage is
  // shared.
  bool view = false;
  // Inputs that the node updates in place (optimizer state, running statistics).
  std::vector<int> mutates;
  // Uses random numbers (replayed from a seed on recomputation).
  bool random = false;
  // Forward node that may be recomputed (deterministic given its inputs and seed).
  bool recomputable = true;
  // Collectives: the share of the whole tensor each rank sends over the interconnect
  // (ring algorithms), from attrs.ranks; nullptr: not communication.
  double (*comm_factor)(const Node&) = nullptr;

  bool may_alias(int output, int input) const;
  bool mutates_input(int input) const;
};

const OpDef& op_def(OpKind);
std::string_view op_name(OpKind);
std::optional<OpKind> parse_op(std::string_view);
Cost op_cost(const Graph&, const Node&);

}  // namespace dlmem::ir
