// softmax and log-softmax over the last dimension and the mean softmax cross-entropy loss.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

std::vector<TensorType> same(const Node&, TypeList in) { return {*in[0]}; }
double flops_softmax(const Node&, TypeList in, TypeList) {
  return 5.0 * static_cast<double>(in[0]->numel());
}
void grad_softmax(GradContext& c) {
  c.set(0, c.emit1(OpKind::softmax_bwd, "bwd", {}, {c.dy(0), c.y(0)}));
}
// log_softmax_bwd(dy, y) -> dx = dy - exp(y) * sum(dy) per row.
void grad_log_softmax(GradContext& c) {
  c.set(0, c.emit1(OpKind::log_softmax_bwd, "bwd", {}, {c.dy(0), c.y(0)}));
}

// softmax_xent(logits[..., C] f32, labels[...] i32) -> loss[1], probs[..., C]
std::vector<TensorType> infer_xent(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  const TensorType& l = *in[1];
  expect_dtype(n, l, DType::i32, "labels");
  if (x.rank() < 2 || Shape(x.shape.begin(), x.shape.end() - 1) != l.shape)
    fail(n, "labels ", l.str(), " must have the logits' shape ", x.str(), " without its last dimension");
  return {f32({1}), x};
}
void grad_xent(GradContext& c) {
  c.set(0, c.emit1(OpKind::softmax_xent_bwd, "bwd", {}, {c.dy(0), c.y(1), c.x(1)}));
}
// softmax_xent_bwd(dloss[1], probs, labels) -> dlogits
std::vector<TensorType> infer_xent_bwd(const Node&, TypeList in) { return {*in[1]}; }

}  // namespace

void register_loss(Registry& r) {
  r[static_cast<size_t>(OpKind::softmax)] = OpDef{
      .name = "softmax", .infer = same, .flops = flops_softmax, .saved = saved_mask<0, 1>,
      .grad = grad_softmax, .inplace = {{0, 0}}};
  r[static_cast<size_t>(OpKind::softmax_bwd)] = OpDef{
      .name = "softmax_bwd", .min_inputs = 2, .max_inputs = 2, .infer = same,
      .flops = flops_softmax, .inplace = {{0, 0}, {0, 1}}};
  r[static_cast<size_t>(OpKind::log_softmax)] = OpDef{
      .name = "log_softmax", .infer = same, .flops = flops_softmax, .saved = saved_mask<0, 1>,
      .grad = grad_log_softmax, .inplace = {{0, 0}}};
  r[static_cast<size_t>(OpKind::log_softmax_bwd)] = OpDef{
      .name = "log_softmax_bwd", .min_inputs = 2, .max_inputs = 2, .infer = same,
      .flops = flops_softmax, .inplace = {{0, 0}, {0, 1}}};
  r[static_cast<size_t>(OpKind::softmax_xent)] = OpDef{
      .name = "softmax_xent", .min_inputs = 2, .max_inputs = 2, .infer = infer_xent,
      .flops = flops_softmax, .saved = saved_mask<0b10, 0b10>, .grad = grad_xent};
  r[static_cast<size_t>(OpKind::softmax_xent_bwd)] = OpDef{
      // dlogits over probs (both kernels read probs[label] before writing the row;
      // tests/runtime/cpu/inplace_ops_test.cpp checks the pair bit for bit).
      .name = "softmax_xent_bwd", .min_inputs = 3, .max_inputs = 3, .infer = infer_xent_bwd,
      .flops = flops_softmax, .inplace = {{0, 1}}};
}

}  // namespace dlmem::ir::ops
