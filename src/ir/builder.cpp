#include "ir/builder.h"

#include <cmath>

#include "util/error.h"

namespace dlmem::ir {

Init default_uniform(int64_t fan_in) {
  const float b = fan_in > 0 ? 1.0f / std::sqrt(static_cast<float>(fan_in)) : 0.0f;
  return Init{Init::Kind::uniform, -b, b};
}
Init kaiming_normal(int64_t fan) {
  return Init{Init::Kind::normal, 0.0f, std::sqrt(2.0f / static_cast<float>(fan))};
}

Builder::Builder(Graph& g, bool training, uint64_t seed) : g_(g), training_(training), seed_(seed) {}

Builder::Scope::Scope(Builder& b, const std::string& name) : b_(b), saved_(b.prefix_.size()) {
  b_.prefix_ += name + ".";
}
Builder::Scope::~Scope() { b_.prefix_.resize(saved_); }

std::string Builder::auto_name(const char* op) { return full(op + std::to_string(counter_++)); }

ValueId Builder::node1(OpKind op, const std::string& name, Attrs a, std::vector<ValueId> in) {
  NodeId n = g_.add_node(op, name, std::move(a), std::move(in), Role::activation);
  return g_.node(n).outputs[0];
}

ValueId Builder::input(const std::string& name, Shape shape, DType dtype) {
  for (int64_t d : shape)
    if (d <= 0) throw Error("input '", name, "' has a non-positive dimension: ", shape_str(shape));
  return g_.add_value(name, TensorType{std::move(shape), dtype}, Role::input);
}
ValueId Builder::label(const std::string& name, Shape shape) {
  return g_.add_value(name, TensorType{std::move(shape), DType::i32}, Role::label);
}
ValueId Builder::weight(const std::string& name, Shape shape, Init init, bool trainable) {
  ValueId w = g_.add_value(full(name), TensorType{std::move(shape), DType::f32}, Role::weight);
  g_.value(w).trainable = trainable;
  g_.value(w).init = init;
  return w;
}

ValueId Builder::conv2d(ValueId x, int64_t out_channels, int64_t kernel, const ConvOpts& o,
                        const std::string& name) {
  const Shape& xs = shape(x);
  if (xs.size() != 4) throw Error("conv2d '", full(name), "': input must be [N,C,H,W], got ", shape_str(xs));
  if (o.groups <= 0 || xs[1] % o.groups != 0)
    throw Error("conv2d '", full(name), "': groups ", o.groups, " must divide ", xs[1], " input channels");
  const int64_t fan_in = xs[1] / o.groups * kernel * kernel;
  std::vector<ValueId> in = {x, weight(name + ".weight", {out_channels, xs[1] / o.groups, kernel, kernel},
                                       o.weight_init.value_or(default_uniform(fan_in)))};
  if (o.bias) in.push_back(weight(name + ".bias", {out_channels}, default_uniform(fan_in)));
  Attrs a;
  a.kernel = {kernel, kernel};
  a.stride = {o.stride, o.stride};
  a.padding = {o.padding, o.padding};
  a.dilation = {o.dilation, o.dilation};
  a.groups = o.groups;
  a.has_bias = o.bias;
  return node1(OpKind::conv2d, full(name), a, in);
}

ValueId Builder::linear(ValueId x, int64_t out_features, const std::string& name, bool bias,
                        std::optional<Init> weight_init) {
  const int64_t in_f = shape(x).back();
  ValueId w = weight(name + ".weight", {out_features, in_f}, weight_init.value_or(default_uniform(in_f)));
  ValueId b = bias ? weight(name + ".bias", {out_features},
                            weight_init ? Init{Init::Kind::zeros} : default_uniform(in_f))
                   : kNoValue;
  return linear_with(x, w, b, name);
}

ValueId Builder::linear_with(ValueId x, ValueId w, ValueId b, const std::string& name) {
  Attrs a;
  a.has_bias = b != kNoValue;
  std::vector<ValueId> in = {x, w};
  if (b != kNoValue) in.push_back(b);
  return node1(OpKind::linear, full(name), a, in);
}

ValueId Builder::batch_norm(ValueId x, const std::string& name, double eps, double momentum) {
  const int64_t c = shape(x).at(1);
  ValueId gamma = weight(name + ".weight", {c}, Init{Init::Kind::ones});
  ValueId beta = weight(name + ".bias", {c}, Init{Init::Kind::zeros});
  ValueId rm = weight(name + ".running_mean", {c}, Init{Init::Kind::zeros}, false);
  ValueId rv = weight(name + ".running_var", {c}, Init{Init::Kind::ones}, false);
  Attrs a;
  a.eps = eps;
  a.momentum = momentum;
  a.training = training_;
  return node1(OpKind::batch_norm, full(name), a, {x, gamma, beta, rm, rv});
}

ValueId Builder::layer_norm(ValueId x, const std::string& name, double eps) {
  const int64_t d = shape(x).back();
  ValueId gamma = weight(name + ".weight", {d}, Init{Init::Kind::ones});
  ValueId beta = weight(name + ".bias", {d}, Init{Init::Kind::zeros});
  Attrs a;
  a.eps = eps;
  return node1(OpKind::layer_norm, full(name), a, {x, gamma, beta});
}

ValueId Builder::embedding(ValueId ids, int64_t vocab, int64_t dim, const std::string& name,
                           std::optional<Init> init) {
  ValueId table = weight(name + ".weight", {vocab, dim}, init.value_or(Init{Init::Kind::normal, 0, 1}));
  return node1(OpKind::embedding, full(name), {}, {ids, table});
}

ValueId Builder::relu(ValueId x) { return node1(OpKind::relu, auto_name("relu"), {}, {x}); }
ValueId Builder::relu6(ValueId x) { return node1(OpKind::relu6, auto_name("relu6"), {}, {x}); }
ValueId Builder::gelu(ValueId x) { return node1(OpKind::gelu, auto_name("gelu"), {}, {x}); }
ValueId Builder::tanh(ValueId x) { return node1(OpKind::tanh, auto_name("tanh"), {}, {x}); }
ValueId Builder::sigmoid(ValueId x) { return node1(OpKind::sigmoid, auto_name("sigmoid"), {}, {x}); }

ValueId Builder::dropout(ValueId x, double p) {
  if (!training_ || p == 0.0) return x;
  Attrs a;
  a.p = p;
  // Each dropout gets its own stream: the seed mixes the builder's seed and a counter.
  a.seed = seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(counter_);
  NodeId n = g_.add_node(OpKind::dropout, auto_name("dropout"), a, {x}, Role::activation);
  return g_.node(n).outputs[0];
}

ValueId Builder::max_pool(ValueId x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  Attrs a;
  a.kernel = {kernel, kernel};
  a.stride = {stride, stride};
  a.padding = {padding, padding};
  a.ceil_mode = ceil_mode;
  NodeId n = g_.add_node(OpKind::max_pool2d, auto_name("maxpool"), a, {x}, Role::activation);
  return g_.node(n).outputs[0];
}

ValueId Builder::avg_pool(ValueId x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                          bool count_include_pad) {
  Attrs a;
  a.kernel = {kernel, kernel};
  a.stride = {stride, stride};
  a.padding = {padding, padding};
  a.ceil_mode = ceil_mode;
  a.count_include_pad = count_include_pad;
  return node1(OpKind::avg_pool2d, auto_name("avgpool"), a, {x});
}

ValueId Builder::global_avg_pool(ValueId x) {
  return node1(OpKind::global_avg_pool, auto_name("gap"), {}, {x});
}
ValueId Builder::add(ValueId a, ValueId b) { return node1(OpKind::add, auto_name("add"), {}, {a, b}); }
ValueId Builder::mul(ValueId a, ValueId b) { return node1(OpKind::mul, auto_name("mul"), {}, {a, b}); }
ValueId Builder::scale(ValueId x, double alpha) {
  Attrs a;
  a.alpha = alpha;
  return node1(OpKind::scale, auto_name("scale"), a, {x});
}
ValueId Builder::matmul(ValueId a, ValueId b, bool trans_a, bool trans_b) {
  Attrs at;
  at.trans_a = trans_a;
  at.trans_b = trans_b;
  return node1(OpKind::matmul, auto_name("matmul"), at, {a, b});
}
ValueId Builder::softmax(ValueId x) { return node1(OpKind::softmax, auto_name("softmax"), {}, {x}); }
ValueId Builder::causal_mask(ValueId x) {
  return node1(OpKind::causal_mask, auto_name("causal_mask"), {}, {x});
}
ValueId Builder::reshape(ValueId x, Shape s) {
  Attrs a;
  a.shape = std::move(s);
  return node1(OpKind::reshape, auto_name("reshape"), a, {x});
}
ValueId Builder::flatten(ValueId x) { return reshape(x, {shape(x).at(0), -1}); }
ValueId Builder::transpose(ValueId x, std::vector<int64_t> perm) {
  Attrs a;
  a.perm = std::move(perm);
  return node1(OpKind::transpose, auto_name("transpose"), a, {x});
}
ValueId Builder::concat(const std::vector<ValueId>& xs, int64_t axis) {
  if (xs.size() == 1) return xs[0];
  Attrs a;
  a.axis = axis;
  return node1(OpKind::concat, auto_name("concat"), a, xs);
}
ValueId Builder::slice(ValueId x, int64_t axis, int64_t start, int64_t length) {
  Attrs a;
  a.axis = axis;
  a.start = start;
  a.length = length;
  return node1(OpKind::slice, auto_name("slice"), a, {x});
}

ValueId Builder::softmax_xent(ValueId logits, ValueId labels) {
  NodeId n = g_.add_node(OpKind::softmax_xent, full("loss"), {}, {logits, labels}, Role::activation);
  g_.loss = g_.node(n).outputs[0];
  g_.outputs.push_back(logits);
  return g_.loss;
}

}  // namespace dlmem::ir
