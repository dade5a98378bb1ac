// Element-wise ops: add/mul/sub/div with broadcasting, scale, activations, math
// (pow, sqrt, erf, exp, log), dropout, causal mask, fill, reduce_sum (the gradient of
// a broadcast) and expand (its inverse).
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

std::vector<TensorType> same_as_input(const Node&, TypeList in) { return {*in[0]}; }
double flops_per_element(const Node&, TypeList, TypeList out) {
  return static_cast<double>(out[0]->numel());
}

// b broadcasts onto a: aligned on the right, each of b's dims equal to a's or 1.
std::vector<TensorType> infer_binary(const Node& n, TypeList in) {
  const TensorType& a = *in[0];
  const TensorType& b = *in[1];
  bool ok = b.rank() <= a.rank();
  for (int i = 1; ok && i <= b.rank(); ++i) {
    int64_t db = b.shape[static_cast<size_t>(b.rank() - i)];
    ok = db == 1 || db == a.shape[static_cast<size_t>(a.rank() - i)];
  }
  if (!ok) fail(n, "cannot broadcast ", b.str(), " onto ", a.str());
  if (a.dtype != DType::f32 || b.dtype != DType::f32) fail(n, "operands must be f32");
  return {a};
}

// The gradient w.r.t. a broadcast operand: dy summed down to the operand's shape.
ValueId unbroadcast(GradContext& c, ValueId grad, ValueId operand, const char* suffix) {
  if (c.type(grad).shape == c.type(operand).shape) return grad;
  Attrs a;
  a.shape = c.type(operand).shape;
  return c.emit1(OpKind::reduce_sum, suffix, a, {grad});
}

void grad_add(GradContext& c) {
  if (c.needs(0)) c.set(0, unbroadcast(c, c.dy(0), c.x(0), "reduce_a"));
  if (c.needs(1)) c.set(1, unbroadcast(c, c.dy(0), c.x(1), "reduce_b"));
}
void grad_mul(GradContext& c) {
  if (c.needs(0)) c.set(0, unbroadcast(c, c.emit1(OpKind::mul, "bwd_a", {}, {c.dy(0), c.x(1)}),
                                       c.x(0), "reduce_a"));
  if (c.needs(1)) {
    // dy * a has a's shape; summed down to b's.
    c.set(1, unbroadcast(c, c.emit1(OpKind::mul, "bwd_b", {}, {c.dy(0), c.x(0)}), c.x(1),
                         "reduce_b"));
  }
}
void grad_scale(GradContext& c) {
  Attrs a;
  a.alpha = c.attrs().alpha;
  c.set(0, c.emit1(OpKind::scale, "bwd", a, {c.dy(0)}));
}

template <OpKind Bwd, bool UsesOutput>
void grad_eltwise(GradContext& c) {
  c.set(0, c.emit1(Bwd, "bwd", {}, {c.dy(0), UsesOutput ? c.y(0) : c.x(0)}));
}

// x_bwd(dy, saved) -> dx
std::vector<TensorType> infer_eltwise_bwd(const Node& n, TypeList in) {
  if (in[0]->shape != in[1]->shape) fail(n, "dy ", in[0]->str(), " and ", in[1]->str(), " differ");
  return {*in[0]};
}

// dropout(x) -> (y, mask u8)
std::vector<TensorType> infer_dropout(const Node& n, TypeList in) {
  if (n.attrs.p < 0 || n.attrs.p >= 1) fail(n, "p must be in [0, 1), got ", n.attrs.p);
  return {*in[0], TensorType{in[0]->shape, DType::u8}};
}
void grad_dropout(GradContext& c) {
  Attrs a;
  a.p = c.attrs().p;
  c.set(0, c.emit1(OpKind::dropout_bwd, "bwd", a, {c.dy(0), c.y(1)}));
}

std::vector<TensorType> infer_causal(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  if (x.rank() < 2 || x.shape[x.shape.size() - 1] != x.shape[x.shape.size() - 2])
    fail(n, "needs [..., T, T], got ", x.str());
  return {x};
}
void grad_causal(GradContext& c) {
  c.set(0, c.emit1(OpKind::causal_mask_bwd, "bwd", {}, {c.dy(0)}));
}

std::vector<TensorType> infer_fill(const Node& n, TypeList) {
  if (n.attrs.shape.empty()) fail(n, "needs a shape");
  return {f32(n.attrs.shape)};
}
std::vector<TensorType> infer_reduce_sum(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  const Shape& s = n.attrs.shape;
  if (s.size() > x.shape.size()) fail(n, "cannot reduce ", x.str(), " to ", shape_str(s));
  for (size_t i = 1; i <= s.size(); ++i) {
    int64_t d = s[s.size() - i];
    if (d != 1 && d != x.shape[x.shape.size() - i])
      fail(n, "cannot reduce ", x.str(), " to ", shape_str(s));
  }
  return {f32(s)};
}

Attrs alpha_attrs(double alpha) {
  Attrs a;
  a.alpha = alpha;
  return a;
}

void grad_sub(GradContext& c) {
  if (c.needs(0)) c.set(0, unbroadcast(c, c.dy(0), c.x(0), "reduce_a"));
  if (c.needs(1))
    c.set(1, unbroadcast(c, c.emit1(OpKind::scale, "neg_b", alpha_attrs(-1), {c.dy(0)}), c.x(1), "reduce_b"));
}
// y = a / b: da = dy / b, db = -(dy * y) / b.
void grad_div(GradContext& c) {
  if (c.needs(0))
    c.set(0, unbroadcast(c, c.emit1(OpKind::div, "bwd_a", {}, {c.dy(0), c.x(1)}), c.x(0), "reduce_a"));
  if (c.needs(1)) {
    ValueId t = c.emit1(OpKind::mul, "bwd_b_dy_y", {}, {c.dy(0), c.y(0)});
    t = c.emit1(OpKind::div, "bwd_b_div", {}, {t, c.x(1)});
    c.set(1, unbroadcast(c, c.emit1(OpKind::scale, "bwd_b", alpha_attrs(-1), {t}), c.x(1), "reduce_b"));
  }
}
// y = x^p: dx = p * dy * x^(p-1).
void grad_pow(GradContext& c) {
  const double p = c.attrs().alpha;
  ValueId t = c.emit1(OpKind::pow, "bwd_pow", alpha_attrs(p - 1), {c.x(0)});
  t = c.emit1(OpKind::mul, "bwd_mul", {}, {c.dy(0), t});
  c.set(0, c.emit1(OpKind::scale, "bwd", alpha_attrs(p), {t}));
}
// y = sqrt(x): dx = dy / (2 y).
void grad_sqrt(GradContext& c) {
  c.set(0, c.emit1(OpKind::scale, "bwd", alpha_attrs(0.5),
                   {c.emit1(OpKind::div, "bwd_div", {}, {c.dy(0), c.y(0)})}));
}
void grad_exp(GradContext& c) { c.set(0, c.emit1(OpKind::mul, "bwd", {}, {c.dy(0), c.y(0)})); }
void grad_log(GradContext& c) { c.set(0, c.emit1(OpKind::div, "bwd", {}, {c.dy(0), c.x(0)})); }
void grad_erf(GradContext& c) { c.set(0, c.emit1(OpKind::erf_bwd, "bwd", {}, {c.dy(0), c.x(0)})); }
void grad_leaky_relu(GradContext& c) {
  c.set(0, c.emit1(OpKind::leaky_relu_bwd, "bwd", alpha_attrs(c.attrs().alpha), {c.dy(0), c.x(0)}));
}

// expand(x) -> attrs.shape: x broadcast (aligned on the right, dims equal or 1).
std::vector<TensorType> infer_expand(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  const Shape& s = n.attrs.shape;
  bool ok = x.rank() <= static_cast<int>(s.size());
  for (int i = 1; ok && i <= x.rank(); ++i) {
    const int64_t d = x.shape[static_cast<size_t>(x.rank() - i)];
    ok = d == 1 || d == s[s.size() - static_cast<size_t>(i)];
  }
  if (!ok) fail(n, "cannot expand ", x.str(), " to ", shape_str(s));
  expect_dtype(n, x, DType::f32, "input");
  return {f32(s)};
}
// The gradients of expand and reduce_sum are each other.
void grad_expand(GradContext& c) {
  Attrs a;
  a.shape = c.type(c.x(0)).shape;
  c.set(0, c.emit1(OpKind::reduce_sum, "bwd", a, {c.dy(0)}));
}
void grad_reduce_sum(GradContext& c) {
  Attrs a;
  a.shape = c.type(c.x(0)).shape;
  c.set(0, c.emit1(OpKind::expand, "bwd", a, {c.dy(0)}));
}

// A forward element-wise op whose backward is built from other ops (`grad`).
OpDef unary(std::string_view name, Saved (*saved)(const Node&), void (*grad)(GradContext&)) {
  return OpDef{.name = name, .infer = same_as_input, .flops = flops_per_element, .saved = saved,
               .grad = grad, .inplace = {{0, 0}}};
}

void set_eltwise(Registry& r, OpKind fwd, OpKind bwd, std::string_view fname,
                 std::string_view bname, bool uses_output) {
  r[static_cast<size_t>(fwd)] = OpDef{
      .name = fname, .infer = same_as_input, .flops = flops_per_element,
      .saved = uses_output ? saved_mask<0, 1> : saved_mask<1, 0>, .grad = nullptr,
      .inplace = {{0, 0}}};
  r[static_cast<size_t>(bwd)] = OpDef{
      .name = bname, .min_inputs = 2, .max_inputs = 2, .infer = infer_eltwise_bwd,
      .flops = flops_per_element, .inplace = {{0, 0}, {0, 1}}};  // dx over dy, or over the saved y / x
}

}  // namespace

void register_elementwise(Registry& r) {
  r[static_cast<size_t>(OpKind::add)] = OpDef{
      .name = "add", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary,
      .flops = flops_per_element, .saved = saved_mask<0, 0>, .grad = grad_add,
      .inplace = {{0, 0}, {0, 1}}};
  r[static_cast<size_t>(OpKind::mul)] = OpDef{
      .name = "mul", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary,
      .flops = flops_per_element, .saved = saved_mask<0b11, 0>, .grad = grad_mul,
      .inplace = {{0, 0}, {0, 1}}};
  r[static_cast<size_t>(OpKind::sub)] = OpDef{
      .name = "sub", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary,
      .flops = flops_per_element, .saved = saved_mask<0, 0>, .grad = grad_sub,
      .inplace = {{0, 0}, {0, 1}}};
  r[static_cast<size_t>(OpKind::div)] = OpDef{
      .name = "div", .min_inputs = 2, .max_inputs = 2, .infer = infer_binary,
      .flops = flops_per_element, .saved = saved_mask<0b10, 0b1>, .grad = grad_div,
      .inplace = {{0, 0}, {0, 1}}};
  r[static_cast<size_t>(OpKind::pow)] = unary("pow", saved_mask<1, 0>, grad_pow);
  r[static_cast<size_t>(OpKind::sqrt)] = unary("sqrt", saved_mask<0, 1>, grad_sqrt);
  r[static_cast<size_t>(OpKind::exp)] = unary("exp", saved_mask<0, 1>, grad_exp);
  r[static_cast<size_t>(OpKind::log)] = unary("log", saved_mask<1, 0>, grad_log);
  r[static_cast<size_t>(OpKind::erf)] = unary("erf", saved_mask<1, 0>, grad_erf);
  r[static_cast<size_t>(OpKind::leaky_relu)] = unary("leaky_relu", saved_mask<1, 0>, grad_leaky_relu);
  for (auto [k, name] : {std::pair{OpKind::erf_bwd, "erf_bwd"}, std::pair{OpKind::leaky_relu_bwd, "leaky_relu_bwd"}})
    r[static_cast<size_t>(k)] = OpDef{.name = name, .min_inputs = 2, .max_inputs = 2, .infer = infer_eltwise_bwd,
                                      .flops = flops_per_element, .inplace = {{0, 0}, {0, 1}}};
  r[static_cast<size_t>(OpKind::expand)] = OpDef{
      .name = "expand", .infer = infer_expand, .flops = flops_per_element, .saved = saved_mask<0, 0>,
      .grad = grad_expand};
  r[static_cast<size_t>(OpKind::scale)] = OpDef{
      .name = "scale", .infer = same_as_input, .flops = flops_per_element,
      .saved = saved_mask<0, 0>, .grad = grad_scale, .inplace = {{0, 0}}};

  set_eltwise(r, OpKind::relu, OpKind::relu_bwd, "relu", "relu_bwd", true);
  set_eltwise(r, OpKind::relu6, OpKind::relu6_bwd, "relu6", "relu6_bwd", true);
  set_eltwise(r, OpKind::tanh, OpKind::tanh_bwd, "tanh", "tanh_bwd", true);
  set_eltwise(r, OpKind::sigmoid, OpKind::sigmoid_bwd, "sigmoid", "sigmoid_bwd", true);
  set_eltwise(r, OpKind::gelu, OpKind::gelu_bwd, "gelu", "gelu_bwd", false);
  r[static_cast<size_t>(OpKind::relu)].grad = grad_eltwise<OpKind::relu_bwd, true>;
  r[static_cast<size_t>(OpKind::relu6)].grad = grad_eltwise<OpKind::relu6_bwd, true>;
  r[static_cast<size_t>(OpKind::tanh)].grad = grad_eltwise<OpKind::tanh_bwd, true>;
  r[static_cast<size_t>(OpKind::sigmoid)].grad = grad_eltwise<OpKind::sigmoid_bwd, true>;
  r[static_cast<size_t>(OpKind::gelu)].grad = grad_eltwise<OpKind::gelu_bwd, false>;

  r[static_cast<size_t>(OpKind::dropout)] = OpDef{
      .name = "dropout", .infer = infer_dropout, .flops = flops_per_element,
      .saved = saved_mask<0, 0b10>, .grad = grad_dropout, .inplace = {{0, 0}}, .random = true};
  r[static_cast<size_t>(OpKind::dropout_bwd)] = OpDef{
      .name = "dropout_bwd", .min_inputs = 2, .max_inputs = 2, .infer = same_as_input,
      .flops = flops_per_element, .inplace = {{0, 0}}};
  r[static_cast<size_t>(OpKind::causal_mask)] = OpDef{
      .name = "causal_mask", .infer = infer_causal, .flops = flops_per_element,
      .saved = saved_mask<0, 0>, .grad = grad_causal, .inplace = {{0, 0}}};
  r[static_cast<size_t>(OpKind::causal_mask_bwd)] = OpDef{
      .name = "causal_mask_bwd", .infer = same_as_input, .flops = flops_per_element,
      .inplace = {{0, 0}}};
  r[static_cast<size_t>(OpKind::fill)] = OpDef{
      .name = "fill", .min_inputs = 0, .max_inputs = 0, .infer = infer_fill};
  r[static_cast<size_t>(OpKind::reduce_sum)] = OpDef{
      .name = "reduce_sum", .infer = infer_reduce_sum,
      .flops = [](const Node&, TypeList in, TypeList) { return static_cast<double>(in[0]->numel()); },
      .saved = saved_mask<0, 0>, .grad = grad_reduce_sum};
}

}  // namespace dlmem::ir::ops
