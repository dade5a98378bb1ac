// What a kernel needs to know about a node, decoded once for every backend: the
// geometry of a convolution or a pooling window, the dimensions of a GEMM, batch
// normalisation's (n, c, hw), the rows and columns of a row-wise op, a broadcast
// operand's padded dims, the activation of an element-wise op. The cpu backend
// (oneDNN) and the cuda backend (cuDNN, cuBLAS, own kernels) both read these, so the
// two cannot disagree on what a node computes.
//
//   const runtime::Conv2dShape s = runtime::conv_shape(g, node);   // conv2d, its backward ops
//   const runtime::MatmulDims d = runtime::matmul_dims(g, node);   // linear*, matmul
#pragma once

#include <cstdint>
#include <vector>

#include "ir/graph.h"
#include "runtime/eltwise.h"

namespace dlmem::runtime {

// A convolution: NCHW activations, OIHW weights with O = k, I = c / groups.
struct Conv2dShape {
  int64_t n = 1, c = 1, h = 1, w = 1;  // input
  int64_t k = 1;                       // output channels
  int64_t r = 1, s = 1;                // kernel height, width
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;        // symmetric padding
  int64_t dil_h = 1, dil_w = 1;        // PyTorch convention: 1 = dense
  int64_t groups = 1;
  int64_t oh = 0, ow = 0;              // output, filled by infer_output()
  // std::invalid_argument naming the sizes when they are impossible.
  void infer_output();
};

// A pooling window over NCHW.
struct Pool2dShape {
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg pooling only (PyTorch's default is true)
  int64_t oh = 0, ow = 0;         // filled by infer_output() (PyTorch's formula)
  void infer_output();
};

// C[batch] = op(A) op(B): A is m x k, B is k x n (after the transposes).
struct MatmulDims {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  bool bias = false;  // linear: + bias over n; linear_bwd_weight: the bias gradient too
};

// Batch normalisation over x [N, C, ...]: (n, c, hw).
struct BatchNormDims {
  int64_t n = 1, c = 1, hw = 1;
};

// A row-wise op (softmax, layer norm, the loss) over its last dimension.
struct RowDims {
  int64_t rows = 1, cols = 1;
};

int64_t numel(const ir::Shape&);

// conv2d (x = input 0), conv2d_bwd_data (x = the attribute shape), conv2d_bwd_weight
// (x = input 1, the weight = output 0).
Conv2dShape conv_shape(const ir::Graph&, const ir::Node&);
// max/avg pooling and global average pooling, forward (x = input 0) and backward (x =
// the attribute shape).
Pool2dShape pool_shape(const ir::Graph&, const ir::Node&);
// linear (y = x W^T + b), linear_bwd_data (dx = dy W), linear_bwd_weight (dW = dy^T x),
// matmul (with its transposes and leading batch dims).
MatmulDims matmul_dims(const ir::Graph&, const ir::Node&);
// batch_norm, batch_norm_bwd: of input 0.
BatchNormDims batch_norm_dims(const ir::Graph&, const ir::Node&);
// softmax, layer_norm, softmax_xent and their backward ops: of input 0 (softmax_xent_bwd:
// of the probabilities, input 1).
RowDims row_dims(const ir::Graph&, const ir::Node&);
// `b`'s dims left-padded with 1s to `rank` (NumPy broadcasting of b onto a).
std::vector<int64_t> broadcast_dims(const ir::Shape& b, size_t rank);
// relu, relu6, gelu, tanh, sigmoid and their backward ops.
Eltwise eltwise_of(ir::OpKind);
// A negative axis counted from the end, made absolute.
int axis_of(int64_t axis, size_t rank);

}  // namespace dlmem::runtime
