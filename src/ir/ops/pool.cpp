// Pooling: max (with a u8 index of the maximum in its window, read by the backward
// instead of the input), average, and global average.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

// PyTorch's output size, including ceil_mode's rule that the last window must start
// inside the input or the left padding.
int64_t pool_out(const Node& n, int64_t in, int i) {
  const auto& a = n.attrs;
  const int64_t k = a.kernel[i], s = a.stride[i], p = a.padding[i];
  if (k <= 0 || s <= 0 || p < 0 || 2 * p > k)
    fail(n, "kernel and stride must be positive and padding at most half the kernel (kernel ",
         k, ", stride ", s, ", padding ", p, ")");
  int64_t span = in + 2 * p - k;
  if (span < 0) fail(n, "kernel ", k, " is larger than the padded input extent ", in + 2 * p);
  int64_t out = (a.ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (a.ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

std::vector<TensorType> infer_pool(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  expect_rank(n, x, 4, "input");
  return {f32({x.shape[0], x.shape[1], pool_out(n, x.shape[2], 0), pool_out(n, x.shape[3], 1)})};
}
std::vector<TensorType> infer_max_pool(const Node& n, TypeList in) {
  if (n.attrs.kernel[0] * n.attrs.kernel[1] > 256)
    fail(n, "max-pool windows are limited to 256 elements (the index is one byte)");
  auto out = infer_pool(n, in);
  out.push_back(TensorType{out[0].shape, DType::u8});
  return out;
}
double flops_pool(const Node& n, TypeList, TypeList out) {
  return static_cast<double>(out[0]->numel() * n.attrs.kernel[0] * n.attrs.kernel[1]);
}
void grad_max_pool(GradContext& c) {
  Attrs a = c.attrs();
  a.shape = c.type(c.x(0)).shape;
  c.set(0, c.emit1(OpKind::max_pool2d_bwd, "bwd", a, {c.dy(0), c.y(1)}));
}
void grad_avg_pool(GradContext& c) {
  Attrs a = c.attrs();
  a.shape = c.type(c.x(0)).shape;
  c.set(0, c.emit1(OpKind::avg_pool2d_bwd, "bwd", a, {c.dy(0)}));
}
std::vector<TensorType> infer_to_shape(const Node& n, TypeList) {
  if (n.attrs.shape.empty()) fail(n, "needs the input shape");
  return {f32(n.attrs.shape)};
}

// global_avg_pool(x[N,C,H,W]) -> [N,C]
std::vector<TensorType> infer_gap(const Node& n, TypeList in) {
  expect_rank(n, *in[0], 4, "input");
  return {f32({in[0]->shape[0], in[0]->shape[1]})};
}
void grad_gap(GradContext& c) {
  Attrs a;
  a.shape = c.type(c.x(0)).shape;
  c.set(0, c.emit1(OpKind::global_avg_pool_bwd, "bwd", a, {c.dy(0)}));
}
double flops_in(const Node&, TypeList in, TypeList) { return static_cast<double>(in[0]->numel()); }
double flops_out(const Node&, TypeList, TypeList out) {
  return static_cast<double>(out[0]->numel());
}

}  // namespace

void register_pool(Registry& r) {
  r[static_cast<size_t>(OpKind::max_pool2d)] = OpDef{
      .name = "max_pool2d", .infer = infer_max_pool, .flops = flops_pool,
      .saved = saved_mask<0, 0b10>, .grad = grad_max_pool};
  r[static_cast<size_t>(OpKind::max_pool2d_bwd)] = OpDef{
      .name = "max_pool2d_bwd", .min_inputs = 2, .max_inputs = 2, .infer = infer_to_shape,
      .flops = flops_out};
  r[static_cast<size_t>(OpKind::avg_pool2d)] = OpDef{
      .name = "avg_pool2d", .infer = infer_pool, .flops = flops_pool,
      .saved = saved_mask<0, 0>, .grad = grad_avg_pool};
  r[static_cast<size_t>(OpKind::avg_pool2d_bwd)] = OpDef{
      .name = "avg_pool2d_bwd", .infer = infer_to_shape, .flops = flops_out};
  r[static_cast<size_t>(OpKind::global_avg_pool)] = OpDef{
      .name = "global_avg_pool", .infer = infer_gap, .flops = flops_in,
      .saved = saved_mask<0, 0>, .grad = grad_gap};
  r[static_cast<size_t>(OpKind::global_avg_pool_bwd)] = OpDef{
      .name = "global_avg_pool_bwd", .infer = infer_to_shape, .flops = flops_out};
}

}  // namespace dlmem::ir::ops
