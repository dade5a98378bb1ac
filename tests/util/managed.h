// What the bit-identity tests of managed runs share (issue 22, "tests that can fail"):
// whether a plan manages memory at all, and bit-for-bit equality of trained state.
//
//   ASSERT_TRUE(test_util::manages_something(t.plan()));   // else it is the default plan
//   EXPECT_TRUE(test_util::same_bits(t.state(), ref.state()));
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace dlmem::test_util {

// Recomputes, swaps, encodes or writes in place something: a plan that does none of
// these runs the default program, and comparing it with the default tests nothing.
inline bool manages_something(const plan::Plan& p) {
  if (p.stats.extra_flops > 0 || p.stats.bytes_to_host > 0) return true;
  for (const plan::Instr& in : p.program) {
    if (in.kind == plan::InstrKind::compress) return true;
    if (in.kind == plan::InstrKind::compute)
      for (plan::BufferId o : in.outputs)
        if (std::find(in.inputs.begin(), in.inputs.end(), o) != in.inputs.end()) return true;
  }
  return false;
}

// Bit for bit (memcmp: -0.0 and +0.0 differ, as do NaN payloads; float == would not).
inline bool same_bits(const std::map<std::string, std::vector<float>>& a,
                      const std::map<std::string, std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, v] : a) {
    const auto it = b.find(name);
    if (it == b.end() || it->second.size() != v.size() ||
        std::memcmp(v.data(), it->second.data(), v.size() * sizeof(float)) != 0)
      return false;
  }
  return true;
}

}  // namespace dlmem::test_util
