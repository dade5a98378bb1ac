// Element-wise ops: add/mul with broadcasting, scale, activations, dropout, causal
// mask, fill, reduce_sum (the gradient of a broadcast).
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
      .flops = [](const Node&, TypeList in, TypeList) { return static_cast<double>(in[0]->numel()); }};
}

}  // namespace dlmem::ir::ops
