// Batch normalisation (training statistics, running statistics updated in place) and
// layer normalisation over the last dimension.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

// batch_norm(x, gamma, beta, running_mean, running_var) -> y (, mean, var when training)
std::vector<TensorType> infer_bn(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  if (x.rank() != 4 && x.rank() != 2) fail(n, "input must be [N,C,H,W] or [N,C], got ", x.str());
  const int64_t c = x.shape[1];
  for (size_t i = 1; i < 5; ++i)
    if (in[i]->shape != Shape{c})
      fail(n, "parameter ", i, " must be [", c, "], got ", in[i]->str());
  if (!n.attrs.training) return {x};
  return {x, f32({c}), f32({c})};
}
double flops_norm(const Node&, TypeList in, TypeList) {
  return 8.0 * static_cast<double>(in[0]->numel());
}
// batch_norm and layer_norm: bwd(x, dy, gamma, mean, var) -> dx, dgamma, dbeta.
void grad_norm(GradContext& c, OpKind bwd) {
  Attrs a;
  a.eps = c.attrs().eps;
  auto outs = c.emit(bwd, "bwd", a, {c.x(0), c.dy(0), c.x(1), c.y(1), c.y(2)});
  c.set(0, outs[0]);
  c.set(1, outs[1]);
  c.set(2, outs[2]);
}
void grad_bn(GradContext& c) { grad_norm(c, OpKind::batch_norm_bwd); }
// batch_norm_bwd(x, dy, gamma, mean, var) -> dx, dgamma, dbeta
std::vector<TensorType> infer_norm_bwd(const Node& n, TypeList in) {
  if (in[0]->shape != in[1]->shape) fail(n, "x and dy differ");
  return {*in[0], *in[2], *in[2]};
}

// layer_norm(x[..., D], gamma[D], beta[D]) -> y, mean[rows], var[rows]
std::vector<TensorType> infer_ln(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  if (x.rank() < 1) fail(n, "input must have rank >= 1");
  const int64_t d = x.shape.back();
  for (size_t i = 1; i < 3; ++i)
    if (in[i]->shape != Shape{d}) fail(n, "parameter ", i, " must be [", d, "], got ", in[i]->str());
  const int64_t rows = x.numel() / d;
  return {x, f32({rows}), f32({rows})};
}
void grad_ln(GradContext& c) { grad_norm(c, OpKind::layer_norm_bwd); }

}  // namespace

void register_norm(Registry& r) {
  r[static_cast<size_t>(OpKind::batch_norm)] = OpDef{
      .name = "batch_norm", .min_inputs = 5, .max_inputs = 5, .infer = infer_bn,
      .flops = flops_norm, .saved = saved_mask<0b00011, 0b110>, .grad = grad_bn,
      .inplace = {{0, 0}}, .mutates = {3, 4}};
  r[static_cast<size_t>(OpKind::batch_norm_bwd)] = OpDef{
      .name = "batch_norm_bwd", .min_inputs = 5, .max_inputs = 5, .infer = infer_norm_bwd,
      .flops = flops_norm, .inplace = {{0, 1}, {0, 0}}};  // dx over dy, or over x
  r[static_cast<size_t>(OpKind::layer_norm)] = OpDef{
      .name = "layer_norm", .min_inputs = 3, .max_inputs = 3, .infer = infer_ln,
      .flops = flops_norm, .saved = saved_mask<0b011, 0b110>, .grad = grad_ln,
      .inplace = {{0, 0}}};
  r[static_cast<size_t>(OpKind::layer_norm_bwd)] = OpDef{
      .name = "layer_norm_bwd", .min_inputs = 5, .max_inputs = 5, .infer = infer_norm_bwd,
      .flops = flops_norm, .inplace = {{0, 1}, {0, 0}}};  // dx over dy, or over x
}

}  // namespace dlmem::ir::ops
