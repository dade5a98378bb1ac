// Optimizer updates as graph nodes: they update the weight and its state in place and
// produce no new values, so weights and optimizer state keep one storage for the
// whole run.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

std::vector<TensorType> infer_update(const Node& n, TypeList in) {
  for (size_t i = 1; i < in.size(); ++i)
    if (in[i]->shape != in[0]->shape)
      fail(n, "operand ", i, " ", in[i]->str(), " differs from the weight ", in[0]->str());
  return {};
}

}  // namespace

void register_optim(Registry& r) {
  r[static_cast<size_t>(OpKind::sgd_update)] = OpDef{
      .name = "sgd_update", .min_inputs = 3, .max_inputs = 3, .infer = infer_update,
      .flops = [](const Node&, TypeList in, TypeList) { return 4.0 * static_cast<double>(in[0]->numel()); },
      .mutates = {0, 2}, .recomputable = false};
  r[static_cast<size_t>(OpKind::adam_update)] = OpDef{
      .name = "adam_update", .min_inputs = 4, .max_inputs = 4, .infer = infer_update,
      .flops = [](const Node&, TypeList in, TypeList) { return 12.0 * static_cast<double>(in[0]->numel()); },
      .mutates = {0, 2, 3}, .recomputable = false};
}

}  // namespace dlmem::ir::ops
