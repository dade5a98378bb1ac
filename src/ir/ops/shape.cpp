// Data movement: reshape (a view), transpose, concat, slice, embedding lookup.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

// reshape(x) -> attrs.shape (one -1 allowed); output 0 is a view of input 0.
std::vector<TensorType> infer_reshape(const Node& n, TypeList in) {
  Shape s = n.attrs.shape;
  int64_t known = 1;
  int neg = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (neg >= 0) fail(n, "at most one -1 in the target shape ", shape_str(s));
      neg = static_cast<int>(i);
    } else if (s[i] <= 0) {
      fail(n, "target shape ", shape_str(s), " has a non-positive dimension");
    } else {
      known *= s[i];
    }
  }
  const int64_t total = in[0]->numel();
  if (neg >= 0) {
    if (known == 0 || total % known != 0)
      fail(n, "cannot reshape ", in[0]->str(), " to ", shape_str(s));
    s[static_cast<size_t>(neg)] = total / known;
  }
  if (prod(s) != total) fail(n, "cannot reshape ", in[0]->str(), " to ", shape_str(s));
  return {TensorType{s, in[0]->dtype}};
}
void grad_reshape(GradContext& c) {
  Attrs a;
  a.shape = c.type(c.x(0)).shape;
  c.set(0, c.emit1(OpKind::reshape, "bwd", a, {c.dy(0)}));
}

std::vector<TensorType> infer_transpose(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  const auto& p = n.attrs.perm;
  if (static_cast<int>(p.size()) != x.rank()) fail(n, "permutation must have ", x.rank(), " entries");
  std::vector<bool> seen(p.size(), false);
  Shape s;
  for (int64_t d : p) {
    if (d < 0 || d >= x.rank() || seen[static_cast<size_t>(d)])
      fail(n, "invalid permutation for ", x.str());
    seen[static_cast<size_t>(d)] = true;
    s.push_back(x.shape[static_cast<size_t>(d)]);
  }
  return {TensorType{s, x.dtype}};
}
void grad_transpose(GradContext& c) {
  Attrs a;
  const auto& p = c.attrs().perm;
  a.perm.assign(p.size(), 0);
  for (size_t i = 0; i < p.size(); ++i) a.perm[static_cast<size_t>(p[i])] = static_cast<int64_t>(i);
  c.set(0, c.emit1(OpKind::transpose, "bwd", a, {c.dy(0)}));
}

int64_t norm_axis(const Node& n, int64_t axis, int rank) {
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) fail(n, "axis ", n.attrs.axis, " out of range for rank ", rank);
  return axis;
}

std::vector<TensorType> infer_concat(const Node& n, TypeList in) {
  const TensorType& x0 = *in[0];
  const int64_t ax = norm_axis(n, n.attrs.axis, x0.rank());
  Shape s = x0.shape;
  for (size_t i = 1; i < in.size(); ++i) {
    const TensorType& x = *in[i];
    bool ok = x.rank() == x0.rank() && x.dtype == x0.dtype;
    for (int d = 0; ok && d < x.rank(); ++d)
      ok = d == ax || x.shape[static_cast<size_t>(d)] == x0.shape[static_cast<size_t>(d)];
    if (!ok) fail(n, "input ", i, " ", x.str(), " does not match ", x0.str(), " off axis ", ax);
    s[static_cast<size_t>(ax)] += x.shape[static_cast<size_t>(ax)];
  }
  return {TensorType{s, x0.dtype}};
}
void grad_concat(GradContext& c) {
  const int64_t ax = norm_axis(Node{}, c.attrs().axis, c.type(c.x(0)).rank());
  int64_t offset = 0;
  for (int i = 0; i < c.num_inputs(); ++i) {
    const int64_t len = c.type(c.x(i)).shape[static_cast<size_t>(ax)];
    if (c.needs(i)) {
      Attrs a;
      a.axis = ax;
      a.start = offset;
      a.length = len;
      c.set(i, c.emit1(OpKind::slice, "bwd" + std::to_string(i), a, {c.dy(0)}));
    }
    offset += len;
  }
}

std::vector<TensorType> infer_slice(const Node& n, TypeList in) {
  const TensorType& x = *in[0];
  const int64_t ax = norm_axis(n, n.attrs.axis, x.rank());
  const int64_t ext = x.shape[static_cast<size_t>(ax)];
  if (n.attrs.start < 0 || n.attrs.length <= 0 || n.attrs.start + n.attrs.length > ext)
    fail(n, "slice [", n.attrs.start, ", ", n.attrs.start + n.attrs.length, ") is outside axis ",
         ax, " of ", x.str());
  Shape s = x.shape;
  s[static_cast<size_t>(ax)] = n.attrs.length;
  return {TensorType{s, x.dtype}};
}
void grad_slice(GradContext& c) {
  Attrs a = c.attrs();
  a.shape = c.type(c.x(0)).shape;
  c.set(0, c.emit1(OpKind::slice_bwd, "bwd", a, {c.dy(0)}));
}
std::vector<TensorType> infer_slice_bwd(const Node& n, TypeList) { return {f32(n.attrs.shape)}; }

// embedding(ids[...] i32, table[V, D]) -> [..., D]
std::vector<TensorType> infer_embedding(const Node& n, TypeList in) {
  expect_dtype(n, *in[0], DType::i32, "ids");
  expect_rank(n, *in[1], 2, "table");
  Shape s = in[0]->shape;
  s.push_back(in[1]->shape[1]);
  return {f32(s)};
}
void grad_embedding(GradContext& c) {
  Attrs a;
  a.shape = c.type(c.x(1)).shape;
  c.set(1, c.emit1(OpKind::embedding_bwd, "bwd", a, {c.dy(0), c.x(0)}));
}
// embedding_bwd(dy, ids) -> dtable (attrs.shape)
std::vector<TensorType> infer_embedding_bwd(const Node& n, TypeList) {
  return {f32(n.attrs.shape)};
}
double flops_in(const Node&, TypeList in, TypeList) { return static_cast<double>(in[0]->numel()); }

}  // namespace

void register_shape(Registry& r) {
  r[static_cast<size_t>(OpKind::reshape)] = OpDef{
      .name = "reshape", .infer = infer_reshape, .saved = saved_mask<0, 0>, .grad = grad_reshape,
      .view = true};
  r[static_cast<size_t>(OpKind::transpose)] = OpDef{
      .name = "transpose", .infer = infer_transpose, .saved = saved_mask<0, 0>,
      .grad = grad_transpose};
  r[static_cast<size_t>(OpKind::concat)] = OpDef{
      .name = "concat", .min_inputs = 1, .max_inputs = -1, .infer = infer_concat,
      .saved = saved_mask<0, 0>, .grad = grad_concat};
  r[static_cast<size_t>(OpKind::slice)] = OpDef{
      .name = "slice", .infer = infer_slice, .saved = saved_mask<0, 0>, .grad = grad_slice};
  r[static_cast<size_t>(OpKind::slice_bwd)] = OpDef{.name = "slice_bwd", .infer = infer_slice_bwd};
  r[static_cast<size_t>(OpKind::embedding)] = OpDef{
      .name = "embedding", .min_inputs = 2, .max_inputs = 2, .infer = infer_embedding,
      .saved = saved_mask<0b01, 0>, .grad = grad_embedding};
  r[static_cast<size_t>(OpKind::embedding_bwd)] = OpDef{
      .name = "embedding_bwd", .min_inputs = 2, .max_inputs = 2, .infer = infer_embedding_bwd,
      .flops = flops_in};
}

}  // namespace dlmem::ir::ops
