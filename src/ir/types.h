// Tensor types and value roles: the vocabulary every other layer speaks.
//
//   ir::TensorType t{{64, 3, 224, 224}, ir::DType::f32};
//   t.bytes();   // 38,535,168 -- exact, also for sub-byte dtypes (bit: ceil(n/8))
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dlmem::ir {

enum class DType : uint8_t { f32, f16, bf16, i32, u8, bit };
inline constexpr int kNumDTypes = 6;

// Width of one element in bits (bit: 1).
int dtype_bits(DType);
std::string_view dtype_name(DType);
std::optional<DType> parse_dtype(std::string_view);

using Shape = std::vector<int64_t>;

struct TensorType {
  Shape shape;
  DType dtype = DType::f32;

  int64_t numel() const;
  int rank() const { return static_cast<int>(shape.size()); }
  // Exact storage size: numel * bits / 8, rounded up to whole bytes.
  uint64_t bytes() const;
  std::string str() const;  // "f32[64,3,224,224]"
  bool operator==(const TensorType&) const = default;
};

std::string shape_str(const Shape&);

// What a value is for. Roles drive the memory breakdown that users see.
enum class Role : uint8_t {
  input,            // a mini-batch of data
  label,            // targets of the loss
  weight,           // parameters (and non-trainable state such as running statistics)
  activation,       // forward results (feature maps), some stashed for backward
  gradient,         // gradients of activations
  weight_gradient,  // gradients of parameters
  optimizer_state,  // momentum, Adam moments
  workspace,        // a kernel's temporary scratch space
  communication,    // data parallelism: gathered weights (ZeRO 3), a weight's shard being sent
};
inline constexpr int kNumRoles = 9;
std::string_view role_name(Role);

}  // namespace dlmem::ir
