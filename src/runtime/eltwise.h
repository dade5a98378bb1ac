// The element-wise activations every backend implements, by one name (op_args.h maps
// an op to it). No dependencies, so the CUDA sources (nvcc, C++17) include it too.
#pragma once

namespace dlmem::runtime {

// gelu: the erf form. Backward reads the forward output y (relu, relu6, tanh,
// sigmoid) or the input x (gelu).
enum class Eltwise { relu, relu6, gelu, tanh, sigmoid };

}  // namespace dlmem::runtime
