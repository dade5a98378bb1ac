// The policies a user names with --policy: each a documented pipeline of passes
// (pass.h), one line in registry.cpp. The families (share/, recompute/, swap/,
// compress/) provide passes and never include this file; composing them is the
// registry's business alone.
//
//   const planners::Policy& p = planners::find_policy("compress+swap:tensor");
//   p.passes   // [best of the encoded and plain swap bases, coded swaps, encode the rest]
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "planners/pass.h"

namespace dlmem::planners {

struct Policy {
  std::string name;         // "share", "recompute:greedy", ...
  std::string description;  // one line for --help and docs
  Pipeline passes;          // the first is a source (Note [Sources and passes])
  bool lossy = false;       // changes the numbers (reduced-precision stashes): opt-in only
};

const std::vector<Policy>& policies();
// dlmem::Error naming the known policies when `name` is not one.
const Policy& find_policy(std::string_view name);

}  // namespace dlmem::planners
