#include "ir/types.h"

#include <array>
#include <sstream>

#include "util/error.h"

namespace dlmem::ir {

namespace {
constexpr std::array<std::string_view, kNumDTypes> kDTypeNames = {"f32", "f16", "bf16",
                                                                  "i32", "u8",  "bit"};
constexpr std::array<int, kNumDTypes> kDTypeBits = {32, 16, 16, 32, 8, 1};
constexpr std::array<std::string_view, kNumRoles> kRoleNames = {
    "input",    "label",           "weight",         "activation",
    "gradient", "weight-gradient", "optimizer-state", "workspace", "communication"};
}  // namespace

int dtype_bits(DType t) { return kDTypeBits[static_cast<int>(t)]; }
std::string_view dtype_name(DType t) { return kDTypeNames[static_cast<int>(t)]; }

std::optional<DType> parse_dtype(std::string_view s) {
  for (int i = 0; i < kNumDTypes; ++i)
    if (kDTypeNames[i] == s) return static_cast<DType>(i);
  return std::nullopt;
}

std::string_view role_name(Role r) { return kRoleNames[static_cast<int>(r)]; }

int64_t TensorType::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t TensorType::bytes() const {
  const uint64_t bits = static_cast<uint64_t>(numel()) * static_cast<uint64_t>(dtype_bits(dtype));
  return (bits + 7) / 8;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << ']';
  return os.str();
}

std::string TensorType::str() const { return std::string(dtype_name(dtype)) + shape_str(shape); }

}  // namespace dlmem::ir
