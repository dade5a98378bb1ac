// Helpers shared by the op definitions in this folder (private to src/ir/ops).
#pragma once

#include <array>

#include "ir/autodiff.h"
#include "ir/graph.h"
#include "ir/op.h"
#include "util/error.h"

namespace dlmem::ir::ops {

using Registry = std::array<OpDef, kNumOps>;

template <typename... Args>
[[noreturn]] void fail(const Node& n, const Args&... args) {
  throw Error("node '", n.name, "' (", op_name(n.op), "): ", args...);
}

inline TensorType f32(Shape s) { return TensorType{std::move(s), DType::f32}; }

// Saved-for-backward masks: bits of inputs and outputs.
template <uint32_t In, uint32_t Out>
Saved saved_mask(const Node&) {
  return Saved{In, Out};
}

inline void expect_rank(const Node& n, const TensorType& t, int rank, const char* what) {
  if (t.rank() != rank) fail(n, what, " must have rank ", rank, ", got ", t.str());
}
inline void expect_dtype(const Node& n, const TensorType& t, DType d, const char* what) {
  if (t.dtype != d) fail(n, what, " must be ", dtype_name(d), ", got ", t.str());
}
inline int64_t prod(const Shape& s, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < s.size() && i < to; ++i) p *= s[i];
  return p;
}

void register_conv(Registry&);
void register_linear(Registry&);
void register_elementwise(Registry&);
void register_pool(Registry&);
void register_norm(Registry&);
void register_loss(Registry&);
void register_shape(Registry&);
void register_optim(Registry&);
void register_comm(Registry&);
void register_external(Registry&);

}  // namespace dlmem::ir::ops
