// Typed attributes of a node. One flat struct (not a string-keyed map): every op reads
// the fields it documents in its OpDef; the others keep their defaults.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace dlmem::ir {

struct Attrs {
  // convolution / pooling
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  // collectives (ir/ops/comm.cpp): the ranks and this one
  int64_t ranks = 1;
  int64_t rank = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;
  bool has_bias = false;  // conv2d / linear: whether input 2 is a bias
  // matmul
  bool trans_a = false;
  bool trans_b = false;
  // shape ops: reshape target, transpose permutation, slice/concat axis
  std::vector<int64_t> shape;
  std::vector<int64_t> perm;
  int64_t axis = 0;
  int64_t start = 0;
  int64_t length = 0;
  // normalisation
  double eps = 1e-5;
  double momentum = 0.1;  // batch-norm running statistics (PyTorch's convention)
  bool training = true;   // batch-norm / dropout: training or inference behaviour
  // batch-norm's running variance: PyTorch's unbiased batch variance (n / (n - 1)),
  // or the batch variance itself (ONNX's BatchNormalization)
  bool unbiased = true;
  // dropout / scale / fill
  double p = 0.0;
  double alpha = 1.0;
  uint64_t seed = 0;
  // optimizers
  double lr = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double weight_decay = 0.0;
  // external nodes (ir/ops/external.cpp): the given cost of one execution
  double cost = 0.0;
};

}  // namespace dlmem::ir
