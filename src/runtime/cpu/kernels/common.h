// What the CPU kernel files (one per op family, as src/ir/ops/) share.
//
// oneDNN primitives: every one is created on plain (row-major) memory descriptors,
// never format_tag::any: dlmem's tensors live in the memory plan in plain layout and
// are wrapped in place, so a blocked layout would need reorders and hidden copies.
// Batch normalisation's oneDNN primitive is kept only as the tests' reference (the ops
// run batch_norm.cpp's own loops).
//
// dlmem's own loops: oneDNN has no primitive for dropout, losses, embedding, optimizer
// updates, the causal mask or slice's gradient; the simple element-wise ones (scale,
// fill, accumulate, copy) are loops too, because a oneDNN primitive bakes its scalars
// (alpha, the fill value) into its descriptor and would need a new primitive per value.
// Determinism: loops run in parallel only over independent outputs, and every sum has
// a fixed order that depends neither on the thread count nor on scheduling (fixed-size
// chunks combined in chunk order).
#pragma once

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/cpu/context_impl.h"

namespace dlmem::cpu {

namespace kernels_detail {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;
using Args = std::unordered_map<int, memory>;

// A float parameter in a cache key, by its bits (std::to_string rounds to 6 decimals).
inline uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

// A tensor's dims as oneDNN takes them.
inline memory::dims to_dims(int rank, const int64_t* dims) { return memory::dims(dims, dims + rank); }

// Below this many elements an element-wise loop runs on the calling thread: starting
// the OpenMP team costs more than the loop.
inline constexpr int64_t kParallelMin = 1 << 15;

// Class labels and embedding ids index a table: std::invalid_argument naming the op,
// the first index out of [0, bound) and where it is ("label 12 of row 3").
inline void check_indices(const char* op, const char* what, const char* where, int64_t count, int64_t bound,
                          const int32_t* v) {
  for (int64_t i = 0; i < count; ++i)
    if (v[i] < 0 || v[i] >= bound)
      throw invalid_input(op, ": ", what, " ", v[i], " ", where, " ", i, " is out of range [0, ", bound, ")");
}

}  // namespace kernels_detail

using namespace kernels_detail;

}  // namespace dlmem::cpu
