#include "ir/op.h"

#include <algorithm>
#include <array>

#include "ir/graph.h"
#include "ir/ops/common.h"

namespace dlmem::ir {

namespace {
const ops::Registry& registry() {
  static const ops::Registry r = [] {
    ops::Registry reg{};
    ops::register_conv(reg);
    ops::register_linear(reg);
    ops::register_elementwise(reg);
    ops::register_pool(reg);
    ops::register_norm(reg);
    ops::register_loss(reg);
    ops::register_shape(reg);
    ops::register_optim(reg);
    ops::register_comm(reg);
    ops::register_external(reg);
    for (int i = 0; i < kNumOps; ++i)
      DLMEM_CHECK(!reg[static_cast<size_t>(i)].name.empty() && reg[static_cast<size_t>(i)].infer,
                  "op kind ", i, " is not registered");
    return reg;
  }();
  return r;
}
}  // namespace

bool OpDef::may_alias(int output, int input) const {
  return std::find(inplace.begin(), inplace.end(), std::pair{output, input}) != inplace.end();
}
bool OpDef::mutates_input(int input) const {
  return std::find(mutates.begin(), mutates.end(), input) != mutates.end();
}

const OpDef& op_def(OpKind k) { return registry()[static_cast<size_t>(k)]; }
std::string_view op_name(OpKind k) { return op_def(k).name; }

std::optional<OpKind> parse_op(std::string_view s) {
  for (int i = 0; i < kNumOps; ++i)
    if (registry()[static_cast<size_t>(i)].name == s) return static_cast<OpKind>(i);
  return std::nullopt;
}

Cost op_cost(const Graph& g, const Node& n) {
  const OpDef& def = op_def(n.op);
  Cost c;
  if (def.view) return c;
  auto ins = input_types(g, n);
  auto outs = output_types(g, n);
  for (auto* t : ins) c.bytes_read += t->bytes();
  for (auto* t : outs) c.bytes_written += t->bytes();
  if (def.flops) c.flops = def.flops(n, ins, outs);
  return c;
}

}  // namespace dlmem::ir
