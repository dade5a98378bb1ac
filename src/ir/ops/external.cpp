// OpKind::external: a node of a computation graph from outside dlmem. `dlmem remat`
// reads the rematerialisation literature's graphs (models/remat_graph.h), whose nodes
// carry only a cost and the size of their output; each becomes one external node with
// attrs.cost (the cost, in the graph's own unit, which the planners minimise like
// FLOPs) and one output of attrs.shape[0] bytes (u8). The planners, the analysis and the
// simulator's cost model take it like any node; no backend has a kernel for it, and
// the executors refuse it by name.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

std::vector<TensorType> infer_external(const Node& n, TypeList) {
  if (n.attrs.shape.size() != 1 || n.attrs.shape[0] < 0)
    fail(n, "needs its output size in bytes as a one-element shape, got ", shape_str(n.attrs.shape));
  if (!(n.attrs.cost >= 0)) fail(n, "needs a cost >= 0, got ", n.attrs.cost);
  return {TensorType{n.attrs.shape, DType::u8}};
}

}  // namespace

void register_external(Registry& r) {
  r[static_cast<size_t>(OpKind::external)] = OpDef{
      .name = "external", .min_inputs = 0, .max_inputs = -1, .infer = infer_external,
      .flops = [](const Node& n, TypeList, TypeList) { return n.attrs.cost; }};
}

}  // namespace dlmem::ir::ops
