// conv2d and its backward (data and weight). NCHW activations, OIHW weights.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

int64_t conv_out(const Node& n, int64_t in, int64_t k, int i) {
  const auto& a = n.attrs;
  int64_t eff = a.dilation[i] * (k - 1) + 1;
  int64_t out = (in + 2 * a.padding[i] - eff) / a.stride[i] + 1;
  if (a.stride[i] <= 0 || a.dilation[i] <= 0 || a.padding[i] < 0)
    fail(n, "stride and dilation must be positive and padding non-negative");
  if (in + 2 * a.padding[i] < eff || out <= 0)
    fail(n, "kernel ", k, " (dilation ", a.dilation[i], ") does not fit input extent ", in,
         " with padding ", a.padding[i]);
  return out;
}

std::vector<TensorType> infer_conv(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  const TensorType& w = *in[1];
  expect_rank(n, x, 4, "input");
  expect_rank(n, w, 4, "weight");
  const int64_t g = n.attrs.groups;
  if (g <= 0 || x.shape[1] % g != 0 || w.shape[0] % g != 0)
    fail(n, "groups ", g, " must divide input channels ", x.shape[1], " and output channels ",
         w.shape[0]);
  if (w.shape[1] * g != x.shape[1])
    fail(n, "input has ", x.shape[1], " channels but weight ", w.str(), " expects ",
         w.shape[1] * g, " (groups ", g, ")");
  if (in.size() == 3 && (in[2]->rank() != 1 || in[2]->shape[0] != w.shape[0]))
    fail(n, "bias must be [", w.shape[0], "], got ", in[2]->str());
  return {f32({x.shape[0], w.shape[0], conv_out(n, x.shape[2], w.shape[2], 0),
               conv_out(n, x.shape[3], w.shape[3], 1)})};
}

// 2 * N * K * OH * OW * (C/g) * R * S multiply-adds, from the (x, w, y) types.
double conv_flops_xwy(const TensorType& x, const TensorType& w, const TensorType& y) {
  (void)x;
  return 2.0 * static_cast<double>(y.numel()) * static_cast<double>(w.shape[1] * w.shape[2] * w.shape[3]);
}

double flops_conv(const Node&, TypeList in, TypeList out) {
  return conv_flops_xwy(*in[0], *in[1], *out[0]) + (in.size() == 3 ? out[0]->numel() : 0);
}

void grad_conv(GradContext& c) {
  Attrs a = c.attrs();
  if (c.needs(0)) {
    Attrs ad = a;
    ad.shape = c.type(c.x(0)).shape;
    c.set(0, c.emit1(OpKind::conv2d_bwd_data, "bwd_data", ad, {c.dy(0), c.x(1)}));
  }
  const bool bias = c.num_inputs() == 3;
  if (c.needs(1) || (bias && c.needs(2))) {
    Attrs aw = a;
    aw.has_bias = bias;
    aw.kernel = {c.type(c.x(1)).shape[2], c.type(c.x(1)).shape[3]};
    auto outs = c.emit(OpKind::conv2d_bwd_weight, "bwd_weight", aw, {c.dy(0), c.x(0)});
    c.set(1, outs[0]);
    if (bias) c.set(2, outs[1]);
  }
}

// conv2d_bwd_data(dy, w) -> dx; attrs.shape is x's shape.
std::vector<TensorType> infer_bwd_data(const Node& n, TypeList in) {
  expect_rank(n, *in[0], 4, "dy");
  expect_rank(n, *in[1], 4, "weight");
  if (n.attrs.shape.size() != 4) fail(n, "needs the input shape");
  return {f32(n.attrs.shape)};
}
double flops_bwd_data(const Node&, TypeList in, TypeList out) {
  return conv_flops_xwy(*out[0], *in[1], *in[0]);
}
// conv2d_bwd_data as a forward op is the transposed convolution (ONNX ConvTranspose):
// y = conv^T(x, w). Its adjoints are the convolution itself and its weight gradient:
// dx = conv2d(dy, w), dw = conv2d_bwd_weight(x, dy).
void grad_bwd_data(GradContext& c) {
  const Attrs& f = c.attrs();
  Attrs a;
  a.stride = f.stride;
  a.padding = f.padding;
  a.dilation = f.dilation;
  a.groups = f.groups;
  a.kernel = {c.type(c.x(1)).shape[2], c.type(c.x(1)).shape[3]};
  if (c.needs(0)) c.set(0, c.emit1(OpKind::conv2d, "bwd_data", a, {c.dy(0), c.x(1)}));
  if (c.needs(1)) c.set(1, c.emit(OpKind::conv2d_bwd_weight, "bwd_weight", a, {c.x(0), c.dy(0)})[0]);
}

// conv2d_bwd_weight(dy, x) -> dw (, db)
std::vector<TensorType> infer_bwd_weight(const Node& n, TypeList in) {
  const TensorType& dy = *in[0];
  const TensorType& x = *in[1];
  expect_rank(n, dy, 4, "dy");
  expect_rank(n, x, 4, "input");
  std::vector<TensorType> out = {
      f32({dy.shape[1], x.shape[1] / n.attrs.groups, n.attrs.kernel[0], n.attrs.kernel[1]})};
  if (n.attrs.has_bias) out.push_back(f32({dy.shape[1]}));
  return out;
}
double flops_bwd_weight(const Node&, TypeList in, TypeList out) {
  return conv_flops_xwy(*in[1], *out[0], *in[0]) + (out.size() == 2 ? in[0]->numel() : 0);
}

}  // namespace

void register_conv(Registry& r) {
  r[static_cast<size_t>(OpKind::conv2d)] = OpDef{
      .name = "conv2d", .min_inputs = 2, .max_inputs = 3, .infer = infer_conv,
      .flops = flops_conv, .saved = saved_mask<0b011, 0>, .grad = grad_conv};
  r[static_cast<size_t>(OpKind::conv2d_bwd_data)] = OpDef{
      .name = "conv2d_bwd_data", .min_inputs = 2, .max_inputs = 2, .infer = infer_bwd_data,
      .flops = flops_bwd_data, .saved = saved_mask<0b11, 0>, .grad = grad_bwd_data};
  r[static_cast<size_t>(OpKind::conv2d_bwd_weight)] = OpDef{
      .name = "conv2d_bwd_weight", .min_inputs = 2, .max_inputs = 2, .infer = infer_bwd_weight,
      .flops = flops_bwd_weight};
}

}  // namespace dlmem::ir::ops
