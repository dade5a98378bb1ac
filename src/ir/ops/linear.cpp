// linear (y = x W^T + b over the last dimension) and batched matmul, with backward.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

// linear(x[..., in], w[out, in] (, b[out])) -> y[..., out]
std::vector<TensorType> infer_linear(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  const TensorType& w = *in[1];
  expect_rank(n, w, 2, "weight");
  if (x.rank() < 1 || x.shape.back() != w.shape[1])
    fail(n, "input ", x.str(), " has last dimension ", x.rank() ? x.shape.back() : 0,
         " but weight ", w.str(), " expects ", w.shape[1]);
  if (in.size() == 3 && (in[2]->rank() != 1 || in[2]->shape[0] != w.shape[0]))
    fail(n, "bias must be [", w.shape[0], "], got ", in[2]->str());
  Shape s = x.shape;
  s.back() = w.shape[0];
  return {f32(s)};
}
double flops_linear(const Node&, TypeList in, TypeList out) {
  return 2.0 * static_cast<double>(out[0]->numel()) * static_cast<double>(in[1]->shape[1]) +
         (in.size() == 3 ? out[0]->numel() : 0);
}
void grad_linear(GradContext& c) {
  if (c.needs(0)) {
    Attrs a;
    a.shape = c.type(c.x(0)).shape;
    c.set(0, c.emit1(OpKind::linear_bwd_data, "bwd_data", a, {c.dy(0), c.x(1)}));
  }
  const bool bias = c.num_inputs() == 3;
  if (c.needs(1) || (bias && c.needs(2))) {
    Attrs a;
    a.has_bias = bias;
    auto outs = c.emit(OpKind::linear_bwd_weight, "bwd_weight", a, {c.dy(0), c.x(0)});
    c.set(1, outs[0]);
    if (bias) c.set(2, outs[1]);
  }
}
// linear_bwd_data(dy[..., out], w[out, in]) -> dx (attrs.shape)
std::vector<TensorType> infer_linear_bwd_data(const Node& n, TypeList in) {
  if (in[0]->shape.back() != in[1]->shape[0]) fail(n, "dy and weight disagree");
  return {f32(n.attrs.shape)};
}
double flops_linear_bwd_data(const Node&, TypeList in, TypeList out) {
  return 2.0 * static_cast<double>(out[0]->numel()) * static_cast<double>(in[1]->shape[0]);
}
// linear_bwd_weight(dy[..., out], x[..., in]) -> dw[out, in] (, db[out])
std::vector<TensorType> infer_linear_bwd_weight(const Node& n, TypeList in) {
  std::vector<TensorType> out = {f32({in[0]->shape.back(), in[1]->shape.back()})};
  if (n.attrs.has_bias) out.push_back(f32({in[0]->shape.back()}));
  return out;
}
double flops_linear_bwd_weight(const Node&, TypeList in, TypeList out) {
  return 2.0 * static_cast<double>(in[0]->numel()) * static_cast<double>(in[1]->shape.back()) +
         (out.size() == 2 ? in[0]->numel() : 0);
}

// matmul(a, b): per batch, op(a)[M,K] * op(b)[K,N]; leading (batch) dims equal.
struct MatDims {
  int64_t batch, m, n, k;
};
MatDims mat_dims(const Node& nd, const TensorType& a, const TensorType& b) {
  if (a.rank() < 2 || a.rank() != b.rank())
    fail(nd, "operands must have equal rank >= 2, got ", a.str(), " and ", b.str());
  for (int i = 0; i + 2 < a.rank(); ++i)
    if (a.shape[static_cast<size_t>(i)] != b.shape[static_cast<size_t>(i)])
      fail(nd, "batch dimensions differ: ", a.str(), " and ", b.str());
  const size_t r = a.shape.size();
  int64_t m = nd.attrs.trans_a ? a.shape[r - 1] : a.shape[r - 2];
  int64_t ka = nd.attrs.trans_a ? a.shape[r - 2] : a.shape[r - 1];
  int64_t kb = nd.attrs.trans_b ? b.shape[r - 1] : b.shape[r - 2];
  int64_t n = nd.attrs.trans_b ? b.shape[r - 2] : b.shape[r - 1];
  if (ka != kb)
    fail(nd, "inner dimensions differ: ", a.str(), nd.attrs.trans_a ? "^T" : "", " x ", b.str(),
         nd.attrs.trans_b ? "^T" : "");
  return {prod(a.shape, 0, r - 2), m, n, ka};
}
std::vector<TensorType> infer_matmul(const Node& n, TypeList in) {
  MatDims d = mat_dims(n, *in[0], *in[1]);
  Shape s(in[0]->shape.begin(), in[0]->shape.end() - 2);
  s.push_back(d.m);
  s.push_back(d.n);
  return {f32(s)};
}
double flops_matmul(const Node& n, TypeList in, TypeList) {
  MatDims d = mat_dims(n, *in[0], *in[1]);
  return 2.0 * static_cast<double>(d.batch) * static_cast<double>(d.m) * static_cast<double>(d.n) *
         static_cast<double>(d.k);
}
void grad_matmul(GradContext& c) {
  const bool ta = c.attrs().trans_a, tb = c.attrs().trans_b;
  auto mm = [&](const char* suffix, ValueId a, ValueId b, bool t1, bool t2) {
    Attrs at;
    at.trans_a = t1;
    at.trans_b = t2;
    return c.emit1(OpKind::matmul, suffix, at, {a, b});
  };
  const ValueId A = c.x(0), B = c.x(1), dC = c.dy(0);
  // C = op(A) op(B); see the four cases in docs/architecture.md ("matmul gradients").
  if (c.needs(0)) {
    if (!ta) c.set(0, tb ? mm("bwd_a", dC, B, false, false) : mm("bwd_a", dC, B, false, true));
    else c.set(0, tb ? mm("bwd_a", B, dC, true, true) : mm("bwd_a", B, dC, false, true));
  }
  if (c.needs(1)) {
    if (!tb) c.set(1, ta ? mm("bwd_b", A, dC, false, false) : mm("bwd_b", A, dC, true, false));
    else c.set(1, ta ? mm("bwd_b", dC, A, true, true) : mm("bwd_b", dC, A, true, false));
  }
}

}  // namespace

void register_linear(Registry& r) {
  r[static_cast<size_t>(OpKind::linear)] = OpDef{
      .name = "linear", .min_inputs = 2, .max_inputs = 3, .infer = infer_linear,
      .flops = flops_linear, .saved = saved_mask<0b011, 0>, .grad = grad_linear};
  r[static_cast<size_t>(OpKind::linear_bwd_data)] = OpDef{
      .name = "linear_bwd_data", .min_inputs = 2, .max_inputs = 2,
      .infer = infer_linear_bwd_data, .flops = flops_linear_bwd_data};
  r[static_cast<size_t>(OpKind::linear_bwd_weight)] = OpDef{
      .name = "linear_bwd_weight", .min_inputs = 2, .max_inputs = 2,
      .infer = infer_linear_bwd_weight, .flops = flops_linear_bwd_weight};
  r[static_cast<size_t>(OpKind::matmul)] = OpDef{
      .name = "matmul", .min_inputs = 2, .max_inputs = 2, .infer = infer_matmul,
      .flops = flops_matmul, .saved = saved_mask<0b11, 0>, .grad = grad_matmul};
}

}  // namespace dlmem::ir::ops
