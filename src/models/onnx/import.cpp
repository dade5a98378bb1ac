// Note [ONNX import]
// ~~~~~~~~~~~~~~~~~~
// An ONNX graph mixes two kinds of values. Shape arithmetic -- Shape, Gather of a
// dimension, Concat of dimensions, Unsqueeze, Constant, Cast, small integer math --
// only ever depends on shapes, which dlmem fixes at import (the batch comes from
// ImportOptions). Those values are *static*: the importer evaluates them on the host
// as it walks the nodes (`Static` tensors below), and an op that needs one as a
// parameter (Reshape's shape, Slice's bounds, Expand's shape, Unsqueeze's axes) reads
// it as an attribute. Every other value is *dynamic*: an ir::Value computed by dlmem
// ops at run time. An op whose inputs are all static is folded (evaluated on the host)
// when it is one of the shape ops; float initializers are never folded, because they
// are weights a training run updates (Transpose(weight) stays a node, so the gradient
// reaches the initializer the exported file names).
//
// Each ONNX op maps onto dlmem's ops (src/ir/ops): one for one where they agree
// (Conv, Relu, Softmax over the last axis), a few where they do not (MatMul of rank 3
// by a weight is reshape-matmul-reshape; a Softmax over another axis is transposed
// there and back; Gather of activations by constant indices is slices; ReduceMean is
// reduce_sum and scale; numpy broadcasting of both operands expands one first). An op
// or attribute value dlmem cannot map is an Error that names the op, the node and the
// opset, never a silent approximation.
#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <type_traits>
#include <unordered_map>

#include "models/onnx/onnx.h"
#include "models/onnx/proto.h"
#include "util/error.h"

namespace dlmem::models::onnx {

namespace {

using ir::Attrs;
using ir::DType;
using ir::OpKind;
using ir::Shape;
using ir::ValueId;

// The exporters' opsets are 13 to 17 (PyTorch 1.13); models of older opsets import as long as each op
// has the form dlmem knows (older attribute forms are read where they differ).
// Opsets 18 to 20 change none of the supported ops but for ReduceMean's axes (an input
// from 18) and add Gelu (20).
constexpr int kMinOpset = 7, kMaxOpset = 20;
constexpr int kFloat = pb::TensorProto::FLOAT, kInt64 = pb::TensorProto::INT64, kBool = pb::TensorProto::BOOL;

// Elements of a shape; Error past 2^40 (a corrupt file: no model has such a tensor),
// which also keeps the products below from overflowing.
int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error("negative dimension in ", ir::shape_str(s));
    if (d > 0 && n > (int64_t{1} << 40) / d) throw Error("shape ", ir::shape_str(s), " has over 2^40 elements");
    n *= d;
  }
  return n;
}

// Static tensors are shape arithmetic and small constants, evaluated on the host.
constexpr int64_t kMaxStatic = int64_t{1} << 24;

// NumPy broadcasting of two shapes, or nullopt.
std::optional<Shape> broadcast(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (size_t i = 1; i <= out.size(); ++i) {
    const int64_t da = i <= a.size() ? a[a.size() - i] : 1, db = i <= b.size() ? b[b.size() - i] : 1;
    if (da != db && da != 1 && db != 1) return std::nullopt;
    out[out.size() - i] = da == 1 ? db : da;
  }
  return out;
}

// Flat index into `from` (broadcast onto `to`) of flat index k of `to`.
int64_t broadcast_index(const Shape& from, const Shape& to, int64_t k) {
  int64_t idx = 0, stride = 1;
  for (size_t i = 1; i <= to.size(); ++i) {
    const int64_t dt = to[to.size() - i], c = k % dt;
    k /= dt;
    if (i <= from.size()) {
      const int64_t df = from[from.size() - i];
      if (df != 1) idx += c * stride;
      stride *= df;
    }
  }
  return idx;
}

// A constant of int64 (ONNX shape arithmetic) or float elements.
template <class T>
Tensor make_tensor(Shape shape, std::vector<T> v) {
  Tensor t;
  t.shape = std::move(shape);
  if constexpr (std::is_same_v<T, int64_t>) {
    t.elem_type = kInt64;
    t.i = std::move(v);
  } else {
    t.elem_type = kFloat;
    t.f = std::move(v);
  }
  return t;
}
Tensor make_int(Shape shape, std::vector<int64_t> v) { return make_tensor(std::move(shape), std::move(v)); }
Tensor make_float(Shape shape, std::vector<float> v) { return make_tensor(std::move(shape), std::move(v)); }

double at(const Tensor& t, int64_t k) {
  return t.is_float() ? t.f[static_cast<size_t>(k)] : static_cast<double>(t.i[static_cast<size_t>(k)]);
}

// A permutation of `t`'s elements: element k of the result is element src(k) of t.
Tensor gather_elements(const Tensor& t, Shape shape, const std::function<int64_t(int64_t)>& src) {
  Tensor out;
  out.shape = std::move(shape);
  out.elem_type = t.elem_type;
  const int64_t n = numel(out.shape);
  if (n > kMaxStatic) throw Error("a constant of shape ", ir::shape_str(out.shape), " is too large to compute at import");
  for (int64_t k = 0; k < n; ++k) {
    if (t.is_float()) out.f.push_back(t.f[static_cast<size_t>(src(k))]);
    else out.i.push_back(t.i[static_cast<size_t>(src(k))]);
  }
  return out;
}

std::string list(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

class Importer;
using Handler = void (Importer::*)(const pb::NodeProto&);
const std::map<std::string, Handler>& handlers();

// The inputs an op must have (the handlers read inputs below this without checking).
int min_inputs(const std::string& op) {
  static const std::map<std::string, int> m = {
      {"Constant", 0}, {"Range", 3}, {"Where", 3}, {"BatchNormalization", 5}, {"Add", 2}, {"Sub", 2}, {"Mul", 2},
      {"Div", 2}, {"Equal", 2}, {"Less", 2}, {"Greater", 2}, {"LessOrEqual", 2}, {"GreaterOrEqual", 2}, {"Pow", 2},
      {"Conv", 2}, {"ConvTranspose", 2}, {"LayerNormalization", 2}, {"Gemm", 2}, {"MatMul", 2}, {"Reshape", 2}, {"Gather", 2}, {"Expand", 2}};
  auto it = m.find(op);
  return it == m.end() ? 1 : it->second;
}

class Importer {
 public:
  Importer(const std::string& file, const ImportOptions& o) : file_(file), opt_(o) {}

  Imported run(const pb::ModelProto& m);

  // ---- op handlers (one per ONNX op type; see handlers())
  void op_constant(const pb::NodeProto&);
  void op_shape(const pb::NodeProto&);
  void op_size(const pb::NodeProto&);
  void op_constant_of_shape(const pb::NodeProto&);
  void op_range(const pb::NodeProto&);
  void op_identity(const pb::NodeProto&);
  void op_cast(const pb::NodeProto&);
  void op_binary(const pb::NodeProto&);
  void op_compare(const pb::NodeProto&);
  void op_where(const pb::NodeProto&);
  void op_unary(const pb::NodeProto&);
  void op_pow(const pb::NodeProto&);
  void op_clip(const pb::NodeProto&);
  void op_softmax(const pb::NodeProto&);
  void op_conv(const pb::NodeProto&);
  void op_pool(const pb::NodeProto&);
  void op_conv_transpose(const pb::NodeProto&);
  void op_global_pool(const pb::NodeProto&);
  void op_batch_norm(const pb::NodeProto&);
  void op_layer_norm(const pb::NodeProto&);
  void op_gemm(const pb::NodeProto&);
  void op_matmul(const pb::NodeProto&);
  void op_dropout(const pb::NodeProto&);
  void op_reshape(const pb::NodeProto&);
  void op_flatten(const pb::NodeProto&);
  void op_squeeze(const pb::NodeProto&);
  void op_unsqueeze(const pb::NodeProto&);
  void op_transpose(const pb::NodeProto&);
  void op_concat(const pb::NodeProto&);
  void op_split(const pb::NodeProto&);
  void op_slice(const pb::NodeProto&);
  void op_gather(const pb::NodeProto&);
  void op_expand(const pb::NodeProto&);
  void op_reduce(const pb::NodeProto&);
  void op_pad(const pb::NodeProto&);

 private:
  // ---- values
  bool has(const std::string& name) const { return static_.count(name) || dyn_.count(name) || init_.count(name); }
  // A static tensor: a folded value, a Constant, or any initializer (its data).
  bool is_static(const std::string& name) const;
  // Static and foldable: not a float initializer (a weight).
  bool foldable(const std::string& name) const { return static_.count(name) > 0; }
  const Tensor& constant(const std::string& name, const char* what);
  // The runtime value of an input (weights and constants become graph values).
  ValueId value(const std::string& name);
  const ir::TensorType& type(ValueId v) const { return g_.value(v).type; }
  const Shape& shape_of(const std::string& name);
  void set(const pb::NodeProto& n, int output, ValueId v);
  void set(const pb::NodeProto& n, int output, Tensor t);
  void set_reshaped(const pb::NodeProto& n, const Shape& s);

  // ---- attributes and inputs
  const pb::AttributeProto* attr(const pb::NodeProto& n, const std::string& a) const;
  int64_t attr_i(const pb::NodeProto& n, const std::string& a, int64_t def) const;
  float attr_f(const pb::NodeProto& n, const std::string& a, float def) const;
  std::string attr_s(const pb::NodeProto& n, const std::string& a, const std::string& def) const;
  std::optional<std::vector<int64_t>> attr_ints(const pb::NodeProto& n, const std::string& a) const;
  bool has_input(const pb::NodeProto& n, int i) const { return n.input_size() > i && !n.input(i).empty(); }
  bool output_used(const pb::NodeProto& n, int i) const;
  // An int list given as input `i` (opset 13+) or as attribute `a` (earlier opsets).
  std::optional<std::vector<int64_t>> ints_arg(const pb::NodeProto& n, int i, const std::string& a);
  bool all_foldable(const pb::NodeProto& n) const;
  // Attribute `axis` normalised into [0, rank) ([0, rank] with `inclusive`), or an Error.
  int64_t axis_attr(const pb::NodeProto& n, int64_t def, int64_t rank, bool inclusive = false) const;
  [[noreturn]] void unsupported(const pb::NodeProto& n, const std::string& why) const;

  // ---- emitting dlmem ops
  ValueId emit(OpKind op, Attrs a, std::vector<ValueId> in, const std::string& suffix = "");
  ValueId binary(OpKind op, ValueId a, ValueId b, bool commutative);
  ValueId reshape(ValueId v, Shape s);
  ValueId expand(ValueId v, const Shape& s);
  ValueId scale(ValueId v, double alpha);
  ValueId frozen(const std::string& name, Tensor t);
  ValueId transpose(ValueId v, std::vector<int64_t> perm);

  void bind_inputs(const pb::GraphProto& gp);
  void add_zoo_loss(Imported& out);

  const std::string& file_;
  const ImportOptions& opt_;
  ir::Graph g_;
  int64_t opset_ = 0;
  std::string dir_;
  std::unordered_map<std::string, const pb::TensorProto*> init_;   // by name
  std::unordered_map<std::string, Tensor> static_;                 // folded values and constants
  std::unordered_map<std::string, ValueId> dyn_;                   // runtime values
  std::set<std::string> not_trainable_;                            // running statistics, frozen
  std::unordered_map<std::string, int> uses_;                      // consumers per value name
  std::set<std::string> graph_outputs_;
  std::string node_name_;  // the node being imported (dlmem node names)
  std::set<std::string> used_names_;
  uint64_t seed_ = 0;
};

[[noreturn]] void Importer::unsupported(const pb::NodeProto& n, const std::string& why) const {
  throw Error(file_, ": node '", node_name_, "' (", n.op_type(), ", opset ", opset_, "): ", why);
}

bool Importer::is_static(const std::string& name) const {
  return static_.count(name) || init_.count(name) || opt_.input_values.count(name);
}

const Tensor& Importer::constant(const std::string& name, const char* what) {
  if (auto it = static_.find(name); it != static_.end()) return it->second;
  if (auto it = init_.find(name); it != init_.end())
    return static_.emplace(name, from_proto(*it->second, file_, dir_)).first->second;
  if (auto it = opt_.input_values.find(name); it != opt_.input_values.end()) return it->second;
  throw Error(file_, ": node '", node_name_, "': ", what, " ('", name,
              "') must be a constant (an initializer, a Constant or computed from shapes); dlmem plans static "
              "shapes");
}

ValueId Importer::value(const std::string& name) {
  if (auto it = dyn_.find(name); it != dyn_.end()) return it->second;
  if (auto it = init_.find(name); it != init_.end()) {
    Tensor t = from_proto(*it->second, file_, dir_);
    if (!t.is_float())
      throw Error(file_, ": node '", node_name_, "' reads integer initializer '", name,
                  "' at run time; dlmem's runtime tensors of an imported model are float (or token ids, "
                  "which are graph inputs)");
    const bool trainable = !not_trainable_.count(name) &&
                           std::find(opt_.frozen.begin(), opt_.frozen.end(), name) == opt_.frozen.end();
    const ValueId v = g_.add_value(name, ir::TensorType{t.shape, DType::f32}, ir::Role::weight);
    g_.value(v).trainable = trainable;
    g_.value(v).init = ir::Init{.kind = ir::Init::Kind::given, .values = std::make_shared<const std::vector<float>>(std::move(t.f))};
    return dyn_[name] = v;
  }
  if (auto it = static_.find(name); it != static_.end()) {
    if (!it->second.is_float())
      throw Error(file_, ": node '", node_name_, "' computes on integer tensor '", name,
                  "' at run time; dlmem computes in float32 (integers only as token ids and in shape "
                  "computations)");
    return dyn_[name] = frozen(name, it->second);
  }
  throw Error(file_, ": node '", node_name_, "' reads '", name,
              "', which no node, initializer or graph input provides (a missing initializer?)");
}

ValueId Importer::frozen(const std::string& name, Tensor t) {
  std::string n = name;
  for (int k = 1; g_.find(n) != ir::kNoValue; ++k) n = name + "#" + std::to_string(k);
  const ValueId v = g_.add_value(n, ir::TensorType{t.shape, DType::f32}, ir::Role::weight);
  g_.value(v).trainable = false;
  g_.value(v).init = ir::Init{.kind = ir::Init::Kind::given, .values = std::make_shared<const std::vector<float>>(std::move(t.f))};
  return v;
}

const Shape& Importer::shape_of(const std::string& name) {
  if (auto it = static_.find(name); it != static_.end()) return it->second.shape;
  return type(value(name)).shape;
}

void Importer::set(const pb::NodeProto& n, int output, ValueId v) {
  if (output < n.output_size() && !n.output(output).empty()) dyn_[n.output(output)] = v;
}
void Importer::set(const pb::NodeProto& n, int output, Tensor t) {
  if (output < n.output_size() && !n.output(output).empty()) {
    t.name = n.output(output);
    static_[n.output(output)] = std::move(t);
  }
}

bool Importer::output_used(const pb::NodeProto& n, int i) const {
  if (i >= n.output_size() || n.output(i).empty()) return false;
  auto it = uses_.find(n.output(i));
  return (it != uses_.end() && it->second > 0) || graph_outputs_.count(n.output(i));
}

const pb::AttributeProto* Importer::attr(const pb::NodeProto& n, const std::string& a) const {
  for (const auto& x : n.attribute())
    if (x.name() == a) return &x;
  return nullptr;
}
int64_t Importer::attr_i(const pb::NodeProto& n, const std::string& a, int64_t def) const {
  const auto* x = attr(n, a);
  return x ? x->i() : def;
}
float Importer::attr_f(const pb::NodeProto& n, const std::string& a, float def) const {
  const auto* x = attr(n, a);
  return x ? x->f() : def;
}
std::string Importer::attr_s(const pb::NodeProto& n, const std::string& a, const std::string& def) const {
  const auto* x = attr(n, a);
  return x ? x->s() : def;
}
std::optional<std::vector<int64_t>> Importer::attr_ints(const pb::NodeProto& n, const std::string& a) const {
  const auto* x = attr(n, a);
  if (!x) return std::nullopt;
  return std::vector<int64_t>(x->ints().begin(), x->ints().end());
}
std::optional<std::vector<int64_t>> Importer::ints_arg(const pb::NodeProto& n, int i, const std::string& a) {
  if (has_input(n, i)) {
    const Tensor& t = constant(n.input(i), a.c_str());
    if (t.is_float()) unsupported(n, "'" + a + "' must be integers");
    return t.i;
  }
  return attr_ints(n, a);
}

int64_t Importer::axis_attr(const pb::NodeProto& n, int64_t def, int64_t rank, bool inclusive) const {
  const int64_t a = attr_i(n, "axis", def), limit = inclusive ? rank + 1 : rank;
  const int64_t ax = a < 0 ? a + rank : a;
  if (ax < 0 || ax >= limit) unsupported(n, "axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
  return ax;
}

bool Importer::all_foldable(const pb::NodeProto& n) const {
  for (const auto& in : n.input())
    if (!in.empty() && !foldable(in)) return false;
  return true;
}

ValueId Importer::emit(OpKind op, Attrs a, std::vector<ValueId> in, const std::string& suffix) {
  if (op == OpKind::dropout) a.seed = opt_.seed + seed_++;
  // Node names are unique: a second node of one ONNX node is named after its op.
  std::string name = node_name_ + suffix;
  if (!used_names_.insert(name).second) {
    name += "/" + std::string(ir::op_name(op));
    for (int k = 2; !used_names_.insert(name).second; ++k) name = node_name_ + suffix + "/" + std::string(ir::op_name(op)) + std::to_string(k);
  }
  const ir::NodeId id = g_.add_node(op, name, std::move(a), std::move(in), ir::Role::activation);
  return g_.node(id).outputs[0];
}

ValueId Importer::reshape(ValueId v, Shape s) {
  if (type(v).shape == s) return v;
  Attrs a;
  a.shape = std::move(s);
  return emit(OpKind::reshape, a, {v}, "/reshape" + std::to_string(g_.num_nodes()));
}

ValueId Importer::expand(ValueId v, const Shape& s) {
  if (type(v).shape == s) return v;
  Attrs a;
  a.shape = s;
  // expand right-aligns; a lower-rank operand is first given leading 1s (a view).
  return emit(OpKind::expand, a, {v}, "/expand" + std::to_string(g_.num_nodes()));
}

ValueId Importer::scale(ValueId v, double alpha) {
  if (alpha == 1.0) return v;
  Attrs a;
  a.alpha = alpha;
  return emit(OpKind::scale, a, {v}, "/scale" + std::to_string(g_.num_nodes()));
}

ValueId Importer::transpose(ValueId v, std::vector<int64_t> perm) {
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<int64_t>(i);
  if (identity) return v;
  Attrs a;
  a.perm = std::move(perm);
  return emit(OpKind::transpose, a, {v}, "/transpose" + std::to_string(g_.num_nodes()));
}

// dlmem's binary ops broadcast their second operand onto the first; ONNX broadcasts
// both ways. The output shape is the broadcast of both; an operand that is not the
// output shape goes second (when the op commutes) or is expanded first.
ValueId Importer::binary(OpKind op, ValueId a, ValueId b, bool commutative) {
  const Shape sa = type(a).shape, sb = type(b).shape;
  const auto out = broadcast(sa, sb);
  if (!out) throw Error("cannot broadcast ", ir::shape_str(sa), " and ", ir::shape_str(sb));
  if (sa != *out) {
    if (commutative && sb == *out) std::swap(a, b);
    else a = expand(a, *out);
  }
  return emit(op, {}, {a, b});
}

// ------------------------------------------------------------------ static ops

void Importer::op_constant(const pb::NodeProto& n) {
  if (const auto* a = attr(n, "value")) return set(n, 0, from_proto(a->t(), file_, dir_));
  if (const auto* a = attr(n, "value_float")) return set(n, 0, make_float({}, {a->f()}));
  if (const auto* a = attr(n, "value_floats"))
    return set(n, 0, make_float({a->floats_size()}, {a->floats().begin(), a->floats().end()}));
  if (const auto* a = attr(n, "value_int")) return set(n, 0, make_int({}, {a->i()}));
  if (const auto* a = attr(n, "value_ints"))
    return set(n, 0, make_int({a->ints_size()}, {a->ints().begin(), a->ints().end()}));
  unsupported(n, "only tensor, float(s) and int(s) constants are supported (not sparse or string ones)");
}

void Importer::op_shape(const pb::NodeProto& n) {
  const Shape& s = shape_of(n.input(0));
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t start = attr_i(n, "start", 0), end = attr_i(n, "end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, start, r);
  set(n, 0, make_int({end - start}, std::vector<int64_t>(s.begin() + start, s.begin() + end)));
}

void Importer::op_size(const pb::NodeProto& n) { set(n, 0, make_int({}, {numel(shape_of(n.input(0)))})); }

void Importer::op_constant_of_shape(const pb::NodeProto& n) {
  const Tensor& s = constant(n.input(0), "the shape");
  Tensor v = make_float({1}, {0.f});
  if (const auto* a = attr(n, "value")) v = from_proto(a->t(), file_, dir_);
  const Shape shape(s.i.begin(), s.i.end());
  set(n, 0, gather_elements(v, shape, [](int64_t) { return 0; }));
}

void Importer::op_range(const pb::NodeProto& n) {
  const Tensor &s = constant(n.input(0), "start"), &l = constant(n.input(1), "limit"), &d = constant(n.input(2), "delta");
  if (at(d, 0) == 0) unsupported(n, "delta is 0");
  const double steps = std::ceil((at(l, 0) - at(s, 0)) / at(d, 0));
  if (!(steps <= static_cast<double>(kMaxStatic))) unsupported(n, "the range is too long to compute at import");
  const int64_t count = std::max<int64_t>(0, static_cast<int64_t>(steps));
  Tensor out;
  out.shape = {count};
  out.elem_type = s.elem_type;
  for (int64_t k = 0; k < count; ++k) {
    if (s.is_float()) out.f.push_back(static_cast<float>(at(s, 0) + static_cast<double>(k) * at(d, 0)));
    else out.i.push_back(s.i[0] + k * d.i[0]);
  }
  set(n, 0, std::move(out));
}

void Importer::op_identity(const pb::NodeProto& n) {
  if (foldable(n.input(0))) return set(n, 0, static_.at(n.input(0)));
  set(n, 0, value(n.input(0)));
}

void Importer::op_cast(const pb::NodeProto& n) {
  const int to = static_cast<int>(attr_i(n, "to", kFloat));
  const bool to_float = to == kFloat || to == pb::TensorProto::DOUBLE || to == pb::TensorProto::FLOAT16;
  if (foldable(n.input(0))) {
    Tensor t = static_.at(n.input(0));
    if (to_float && !t.is_float()) {
      t.f.assign(t.i.begin(), t.i.end());
      t.i.clear();
    } else if (!to_float && t.is_float()) {
      for (float v : t.f) t.i.push_back(to == kBool ? (v != 0) : static_cast<int64_t>(v));
      t.f.clear();
    } else if (to == kBool) {
      for (int64_t& v : t.i) v = v != 0;
    }
    t.elem_type = to_float ? kFloat : to;
    return set(n, 0, std::move(t));
  }
  const ValueId v = value(n.input(0));
  const bool is_float = type(v).dtype == DType::f32;
  if (is_float != to_float)
    unsupported(n, "a Cast between float and integer of a runtime tensor (" + type(v).str() +
                       " to " + pb::TensorProto::DataType_Name(static_cast<pb::TensorProto::DataType>(to)) +
                       ") is not supported; dlmem computes in float32");
  set(n, 0, v);  // float to float (dlmem computes in f32) or int to int (ids stay i32)
}

void Importer::op_compare(const pb::NodeProto& n) {
  if (!all_foldable(n)) unsupported(n, "comparisons of runtime tensors are not supported (only of shapes)");
  const Tensor &a = static_.at(n.input(0)), &b = static_.at(n.input(1));
  const auto out = broadcast(a.shape, b.shape);
  if (!out) unsupported(n, "cannot broadcast " + ir::shape_str(a.shape) + " and " + ir::shape_str(b.shape));
  if (numel(*out) > kMaxStatic) unsupported(n, "a constant of shape " + ir::shape_str(*out) + " is too large to compute at import");
  Tensor r = make_int(*out, {});
  r.elem_type = kBool;
  for (int64_t k = 0; k < numel(*out); ++k) {
    const double x = at(a, broadcast_index(a.shape, *out, k)), y = at(b, broadcast_index(b.shape, *out, k));
    const std::string& op = n.op_type();
    r.i.push_back(op == "Equal" ? x == y : op == "Less" ? x < y : op == "Greater" ? x > y : op == "LessOrEqual" ? x <= y : x >= y);
  }
  set(n, 0, std::move(r));
}

void Importer::op_where(const pb::NodeProto& n) {
  if (!all_foldable(n)) unsupported(n, "Where of runtime tensors is not supported (only of shapes and constants)");
  const Tensor &c = static_.at(n.input(0)), &x = static_.at(n.input(1)), &y = static_.at(n.input(2));
  auto out = broadcast(c.shape, x.shape);
  if (out) out = broadcast(*out, y.shape);
  if (!out) unsupported(n, "the operands do not broadcast");
  if (numel(*out) > kMaxStatic) unsupported(n, "a constant of shape " + ir::shape_str(*out) + " is too large to compute at import");
  Tensor r;
  r.shape = *out;
  r.elem_type = x.elem_type;
  for (int64_t k = 0; k < numel(*out); ++k) {
    const bool pick = at(c, broadcast_index(c.shape, *out, k)) != 0;
    const Tensor& s = pick ? x : y;
    const int64_t j = broadcast_index(s.shape, *out, k);
    if (x.is_float()) r.f.push_back(static_cast<float>(at(s, j)));
    else r.i.push_back(s.i[static_cast<size_t>(j)]);
  }
  set(n, 0, std::move(r));
}

// ------------------------------------------------------------------ element-wise

void Importer::op_binary(const pb::NodeProto& n) {
  const std::string& op = n.op_type();
  if (all_foldable(n)) {
    const Tensor &a = static_.at(n.input(0)), &b = static_.at(n.input(1));
    const auto out = broadcast(a.shape, b.shape);
    if (!out) unsupported(n, "cannot broadcast " + ir::shape_str(a.shape) + " and " + ir::shape_str(b.shape));
    if (numel(*out) > kMaxStatic) unsupported(n, "a constant of shape " + ir::shape_str(*out) + " is too large to compute at import");
    const bool fl = a.is_float() || b.is_float();
    Tensor r;
    r.shape = *out;
    r.elem_type = fl ? kFloat : a.elem_type;
    for (int64_t k = 0; k < numel(*out); ++k) {
      const int64_t ia = broadcast_index(a.shape, *out, k), ib = broadcast_index(b.shape, *out, k);
      if (fl) {
        const double x = at(a, ia), y = at(b, ib);
        r.f.push_back(static_cast<float>(op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y));
      } else {
        // Two's complement wrap-around (as numpy's int64), never undefined behaviour.
        const uint64_t x = static_cast<uint64_t>(a.i[static_cast<size_t>(ia)]), y = static_cast<uint64_t>(b.i[static_cast<size_t>(ib)]);
        if (op == "Div" && y == 0) unsupported(n, "integer division by zero in a shape computation");
        const int64_t sx = static_cast<int64_t>(x), sy = static_cast<int64_t>(y);
        const uint64_t q = op == "Div" ? (sy == -1 ? 0 - x : static_cast<uint64_t>(sx / sy)) : 0;
        r.i.push_back(static_cast<int64_t>(op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : q));
      }
    }
    return set(n, 0, std::move(r));
  }
  // x * c, c * x and x / c by a constant scalar (not a weight) are scale ops.
  auto scalar = [&](const std::string& c) { return foldable(c) && numel(static_.at(c).shape) == 1 && static_.at(c).shape.size() <= 1; };
  const int side = op == "Div" ? (scalar(n.input(1)) ? 1 : -1)
                   : op == "Mul" ? (scalar(n.input(1)) ? 1 : scalar(n.input(0)) ? 0 : -1)
                                 : -1;
  if (side >= 0) {
    const ValueId x = value(n.input(1 - side));
    if (type(x).rank() >= 1 && type(x).dtype == DType::f32) {
      const double k = at(static_.at(n.input(side)), 0);
      return set(n, 0, scale(x, op == "Mul" ? k : 1.0 / k));
    }
  }
  const ValueId a = value(n.input(0)), b = value(n.input(1));
  if (type(a).dtype != DType::f32 || type(b).dtype != DType::f32)
    unsupported(n, "arithmetic on integer runtime tensors is not supported");
  const OpKind k = op == "Add" ? OpKind::add : op == "Sub" ? OpKind::sub : op == "Mul" ? OpKind::mul : OpKind::div;
  set(n, 0, binary(k, a, b, op == "Add" || op == "Mul"));
}

void Importer::op_unary(const pb::NodeProto& n) {
  if (all_foldable(n) && (n.op_type() == "Neg" || n.op_type() == "Sqrt" || n.op_type() == "Reciprocal")) {
    // Shape arithmetic (LayerNormalization's expanded function negates an axis).
    Tensor t = static_.at(n.input(0));
    if (n.op_type() != "Neg" && !t.is_float()) unsupported(n, "integer Sqrt and Reciprocal are not supported");
    for (int64_t& v : t.i) v = -v;
    for (float& v : t.f) v = n.op_type() == "Neg" ? -v : n.op_type() == "Sqrt" ? std::sqrt(v) : 1.f / v;
    return set(n, 0, std::move(t));
  }
  static const std::map<std::string, OpKind> kinds = {
      {"Relu", OpKind::relu}, {"Sigmoid", OpKind::sigmoid}, {"Tanh", OpKind::tanh}, {"Sqrt", OpKind::sqrt},
      {"Erf", OpKind::erf},   {"Exp", OpKind::exp},         {"Log", OpKind::log},   {"LeakyRelu", OpKind::leaky_relu},
      {"Gelu", OpKind::gelu}, {"Neg", OpKind::scale}, {"Reciprocal", OpKind::pow}};
  const ValueId x = value(n.input(0));
  if (type(x).dtype != DType::f32) unsupported(n, "the input must be float, got " + type(x).str());
  Attrs a;
  const OpKind k = kinds.at(n.op_type());
  if (k == OpKind::leaky_relu) a.alpha = attr_f(n, "alpha", 0.01f);
  if (k == OpKind::scale || k == OpKind::pow) a.alpha = -1;  // -x, x^-1
  if (k == OpKind::gelu && attr_s(n, "approximate", "none") != "none")
    unsupported(n, "only the exact (erf) GELU is supported, not approximate='" + attr_s(n, "approximate", "") + "'");
  set(n, 0, emit(k, a, {x}));
}

void Importer::op_pow(const pb::NodeProto& n) {
  if (all_foldable(n)) {
    const Tensor &a = static_.at(n.input(0)), &b = static_.at(n.input(1));
    if (numel(b.shape) != 1) unsupported(n, "only scalar exponents are supported");
    Tensor r = make_float(a.shape, {});
    for (int64_t k = 0; k < numel(a.shape); ++k) r.f.push_back(static_cast<float>(std::pow(at(a, k), at(b, 0))));
    return set(n, 0, std::move(r));
  }
  if (!is_static(n.input(1)) || numel(constant(n.input(1), "the exponent").shape) != 1)
    unsupported(n, "only a constant scalar exponent is supported (x^c, as LayerNorm's decomposition uses)");
  const double p = at(constant(n.input(1), "the exponent"), 0);
  const ValueId x = value(n.input(0));
  Attrs a;
  a.alpha = p;
  set(n, 0, p == 1.0 ? x : p == 0.5 ? emit(OpKind::sqrt, {}, {x}) : emit(OpKind::pow, a, {x}));
}

void Importer::op_clip(const pb::NodeProto& n) {
  const float inf = std::numeric_limits<float>::infinity();
  auto bound = [&](int i, float def) {
    if (opset_ < 11) return attr_f(n, i == 1 ? "min" : "max", def);  // attributes before opset 11
    return has_input(n, i) ? static_cast<float>(at(constant(n.input(i), i == 1 ? "min" : "max"), 0)) : def;
  };
  const float lo = bound(1, -std::numeric_limits<float>::max()), hi = bound(2, std::numeric_limits<float>::max());
  const ValueId x = value(n.input(0));
  if (lo == 0.f && hi == 6.f) return set(n, 0, emit(OpKind::relu6, {}, {x}));
  if (lo == 0.f && (hi == inf || hi == std::numeric_limits<float>::max())) return set(n, 0, emit(OpKind::relu, {}, {x}));
  unsupported(n, "Clip is supported as ReLU6 (min 0, max 6) and ReLU (min 0, no max), not [" + std::to_string(lo) +
                     ", " + std::to_string(hi) + "]");
}

void Importer::op_softmax(const pb::NodeProto& n) {
  const ValueId x = value(n.input(0));
  const int64_t r = type(x).rank();
  int64_t axis = attr_i(n, "axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) unsupported(n, "axis out of range for " + type(x).str());
  const OpKind k = n.op_type() == "Softmax" ? OpKind::softmax : OpKind::log_softmax;
  if (opset_ < 13) {
    // Before opset 13 the input is seen as 2-D, [prod(dims before axis), prod(the rest)],
    // with axis 1 by default.
    axis = axis_attr(n, 1, r, /*inclusive=*/true);
    const Shape& s = type(x).shape;
    const Shape flat = {numel(Shape(s.begin(), s.begin() + axis)), numel(Shape(s.begin() + axis, s.end()))};
    return set(n, 0, reshape(emit(k, {}, {reshape(x, flat)}), s));
  }
  // dlmem's softmax runs over the last axis: another axis is swapped there and back.
  std::vector<int64_t> perm(static_cast<size_t>(r));
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[static_cast<size_t>(axis)], perm.back());
  set(n, 0, transpose(emit(k, {}, {transpose(x, perm)}), perm));
}

void Importer::op_dropout(const pb::NodeProto& n) {
  const ValueId x = value(n.input(0));
  float ratio = attr_f(n, "ratio", 0.5f);
  if (has_input(n, 1)) ratio = static_cast<float>(at(constant(n.input(1), "ratio"), 0));
  bool training = false;
  if (has_input(n, 2)) training = at(constant(n.input(2), "training_mode"), 0) != 0;
  if (!(training || opt_.training) || ratio == 0.f) {
    if (output_used(n, 1)) unsupported(n, "the mask of an inactive dropout is not supported");
    return set(n, 0, x);
  }
  Attrs a;
  a.p = ratio;
  const ValueId y = emit(OpKind::dropout, a, {x});
  set(n, 0, y);
  if (output_used(n, 1)) unsupported(n, "dropout's mask output is not supported");
}

// ------------------------------------------------------------------ layers

// Symmetric 2-D pads from ONNX's pads/auto_pad (begin and end of each spatial axis).
std::array<int64_t, 2> pads_2d(const std::string& auto_pad,
                               const std::optional<std::vector<int64_t>>& pads, const Shape& x,
                               const std::array<int64_t, 2>& k, const std::array<int64_t, 2>& s,
                               const std::array<int64_t, 2>& d, const std::function<void(const std::string&)>& fail) {
  std::array<int64_t, 2> p{0, 0};
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (int i = 0; i < 2; ++i) {
      const int64_t in = x[static_cast<size_t>(2 + i)], out = (in + s[i] - 1) / s[i];
      const int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in);
      if (total % 2) fail("auto_pad " + auto_pad + " needs asymmetric padding here; dlmem pads symmetrically");
      p[i] = total / 2;
    }
    return p;
  }
  if (auto_pad != "NOTSET" && auto_pad != "VALID") fail("unknown auto_pad '" + auto_pad + "'");
  if (auto_pad == "VALID" || !pads) return p;
  if (pads->size() != 4) fail("pads must have 4 entries for a 2-D op");
  if ((*pads)[0] != (*pads)[2] || (*pads)[1] != (*pads)[3])
    fail("asymmetric pads [" + std::to_string((*pads)[0]) + ", " + std::to_string((*pads)[1]) + ", " +
         std::to_string((*pads)[2]) + ", " + std::to_string((*pads)[3]) + "] are not supported; dlmem pads symmetrically");
  return {(*pads)[0], (*pads)[1]};
}

std::array<int64_t, 2> pair_of(const std::optional<std::vector<int64_t>>& v, int64_t def,
                               const std::function<void(const std::string&)>& fail, const char* what) {
  if (!v) return {def, def};
  if (v->size() != 2) fail(std::string(what) + " must have 2 entries (dlmem supports 2-D convolution and pooling)");
  return {(*v)[0], (*v)[1]};
}

void Importer::op_conv(const pb::NodeProto& n) {
  auto fail = [&](const std::string& why) { unsupported(n, why); };
  const ValueId x = value(n.input(0)), w = value(n.input(1));
  if (type(x).rank() != 4) fail("only 2-D convolutions ([N, C, H, W] inputs) are supported, got " + type(x).str());
  const Shape& ws = type(w).shape;
  if (ws.size() != 4) fail("the weight must be [M, C/group, kH, kW], got " + type(w).str());
  Attrs a;
  a.kernel = pair_of(attr_ints(n, "kernel_shape"), 0, fail, "kernel_shape");
  if (!attr(n, "kernel_shape")) a.kernel = {ws.at(2), ws.at(3)};
  if (a.kernel[0] != ws.at(2) || a.kernel[1] != ws.at(3)) fail("kernel_shape disagrees with the weight " + type(w).str());
  a.stride = pair_of(attr_ints(n, "strides"), 1, fail, "strides");
  a.dilation = pair_of(attr_ints(n, "dilations"), 1, fail, "dilations");
  a.padding = pads_2d(attr_s(n, "auto_pad", "NOTSET"), attr_ints(n, "pads"), type(x).shape, a.kernel,
                      a.stride, a.dilation, fail);
  a.groups = attr_i(n, "group", 1);
  std::vector<ValueId> in = {x, w};
  if (has_input(n, 2)) in.push_back(value(n.input(2)));
  a.has_bias = in.size() == 3;
  set(n, 0, emit(OpKind::conv2d, a, in));
}

// ConvTranspose is the data gradient of the convolution that maps its output back to
// its input: dlmem's conv2d_bwd_data, whose gradients are registered for this use.
void Importer::op_conv_transpose(const pb::NodeProto& n) {
  auto fail = [&](const std::string& why) { unsupported(n, why); };
  const ValueId x = value(n.input(0)), w = value(n.input(1));
  if (type(x).rank() != 4) fail("only 2-D transposed convolutions ([N, C, H, W] inputs) are supported, got " + type(x).str());
  const Shape xs = type(x).shape, ws = type(w).shape;
  if (ws.size() != 4 || ws[0] != xs[1]) fail("the weight must be [C, M/group, kH, kW] with C = " + std::to_string(xs[1]) + ", got " + type(w).str());
  Attrs a;
  a.kernel = {ws[2], ws[3]};
  if (auto k = attr_ints(n, "kernel_shape"); k && (k->size() != 2 || (*k)[0] != ws[2] || (*k)[1] != ws[3]))
    fail("kernel_shape disagrees with the weight " + type(w).str());
  a.stride = pair_of(attr_ints(n, "strides"), 1, fail, "strides");
  a.dilation = pair_of(attr_ints(n, "dilations"), 1, fail, "dilations");
  a.groups = attr_i(n, "group", 1);
  if (a.groups <= 0 || xs[1] % a.groups) fail("group must divide the input channels");
  const auto opad = pair_of(attr_ints(n, "output_padding"), 0, fail, "output_padding");
  const int64_t m = ws[1] * a.groups;
  Shape out = {xs[0], m, 0, 0};
  const std::string auto_pad = attr_s(n, "auto_pad", "NOTSET");
  const auto out_shape = attr_ints(n, "output_shape");
  for (int i = 0; i < 2; ++i) {
    const int64_t full = a.stride[i] * (xs[2 + i] - 1) + opad[i] + (ws[2 + i] - 1) * a.dilation[i] + 1;
    int64_t total = 0;  // padding removed from both ends together
    if (out_shape) {
      if (out_shape->size() < 2) fail("output_shape must give H and W");
      total = full - (*out_shape)[out_shape->size() - 2 + i];
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      total = full - xs[2 + i] * a.stride[i];
    } else if (auto_pad == "NOTSET") {
      if (auto p = attr_ints(n, "pads")) {
        if (p->size() != 4) fail("pads must have 4 entries");
        if ((*p)[i] != (*p)[i + 2]) fail("asymmetric pads are not supported; dlmem pads symmetrically");
        total = 2 * (*p)[i];
      }
    } else if (auto_pad != "VALID") {
      fail("unknown auto_pad '" + auto_pad + "'");
    }
    if (total < 0 || total % 2) fail("the output size needs asymmetric or negative padding; dlmem pads symmetrically");
    a.padding[i] = total / 2;
    out[static_cast<size_t>(2 + i)] = full - total;
    // dlmem's convolution sees the output padding as extent its window does not reach.
    if (opad[i] >= a.stride[i] && opad[i] >= a.dilation[i]) fail("output_padding must be below stride or dilation");
  }
  a.shape = out;
  ValueId y = emit(OpKind::conv2d_bwd_data, a, {x, w});
  if (has_input(n, 2)) {
    const ValueId b = value(n.input(2));
    if (type(b).shape != Shape{m}) fail("the bias must be [" + std::to_string(m) + "], got " + type(b).str());
    y = binary(OpKind::add, y, reshape(b, {m, 1, 1}), true);
  }
  set(n, 0, y);
}

void Importer::op_pool(const pb::NodeProto& n) {
  auto fail = [&](const std::string& why) { unsupported(n, why); };
  const ValueId x = value(n.input(0));
  if (type(x).rank() != 4) fail("only 2-D pooling ([N, C, H, W] inputs) is supported, got " + type(x).str());
  Attrs a;
  a.kernel = pair_of(attr_ints(n, "kernel_shape"), 1, fail, "kernel_shape");
  a.stride = pair_of(attr_ints(n, "strides"), 1, fail, "strides");
  const auto dil = pair_of(attr_ints(n, "dilations"), 1, fail, "dilations");
  if (dil[0] != 1 || dil[1] != 1) fail("dilated pooling is not supported");
  a.padding = pads_2d(attr_s(n, "auto_pad", "NOTSET"), attr_ints(n, "pads"), type(x).shape, a.kernel,
                      a.stride, {1, 1}, fail);
  a.ceil_mode = attr_i(n, "ceil_mode", 0) != 0;
  const bool max = n.op_type() == "MaxPool";
  if (max) {
    if (output_used(n, 1)) fail("MaxPool's Indices output is not supported");
    if (attr_i(n, "storage_order", 0) != 0) fail("storage_order 1 is not supported");
  } else {
    a.count_include_pad = attr_i(n, "count_include_pad", 0) != 0;
  }
  set(n, 0, emit(max ? OpKind::max_pool2d : OpKind::avg_pool2d, a, {x}));
}

void Importer::op_global_pool(const pb::NodeProto& n) {
  const ValueId x = value(n.input(0));
  if (type(x).rank() != 4) unsupported(n, "only [N, C, H, W] inputs are supported, got " + type(x).str());
  const Shape s = type(x).shape;
  set(n, 0, reshape(emit(OpKind::global_avg_pool, {}, {x}), {s[0], s[1], 1, 1}));
}

void Importer::op_batch_norm(const pb::NodeProto& n) {
  // Opset 14+ says training_mode; opset 13's training form is the one with 5 outputs.
  const bool file_training = opset_ >= 14 ? attr_i(n, "training_mode", 0) != 0 : n.output_size() > 1;
  const bool training = file_training || opt_.training;
  if (attr_i(n, "spatial", 1) != 1) unsupported(n, "spatial=0 (per-activation statistics) is not supported");
  for (int i : {3, 4})
    if (init_.count(n.input(i))) not_trainable_.insert(n.input(i));
  std::vector<ValueId> in;
  for (int i = 0; i < 5; ++i) in.push_back(value(n.input(i)));
  if (opset_ < 14 && (output_used(n, 3) || output_used(n, 4)))
    unsupported(n, "the saved mean and variance outputs are not supported");
  Attrs a;
  a.eps = attr_f(n, "epsilon", 1e-5f);
  a.momentum = 1.0 - attr_f(n, "momentum", 0.9f);  // ONNX keeps the old statistics' share, PyTorch the new one's
  a.training = training;
  a.unbiased = false;  // ONNX updates the running variance with the batch variance itself
  set(n, 0, emit(OpKind::batch_norm, a, in));
  // The running statistics are updated in place: outputs 1 and 2 are the weights.
  set(n, 1, in[3]);
  set(n, 2, in[4]);
}

void Importer::op_layer_norm(const pb::NodeProto& n) {
  // dlmem's layer_norm normalises the last axis: normalising dims [axis, rank) is the
  // same on the input seen as [rows, cols] (views), with scale and bias flattened.
  ValueId x = value(n.input(0));
  const Shape s = type(x).shape;
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t axis = attr_i(n, "axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) unsupported(n, "axis out of range for " + type(x).str());
  const Shape lead(s.begin(), s.begin() + axis), tail(s.begin() + axis, s.end());
  const int64_t cols = numel(tail), rows = numel(lead);
  auto param = [&](int i) {
    const ValueId p = value(n.input(i));
    const auto shape = broadcast(type(p).shape, tail);
    if (!shape || *shape != tail) unsupported(n, "input " + std::to_string(i) + " " + type(p).str() + " does not match the normalised dims " + ir::shape_str(tail));
    return reshape(expand(p, tail), {cols});
  };
  const ValueId gamma = param(1);
  const ValueId beta = has_input(n, 2) ? param(2) : frozen(node_name_ + ".bias", make_float({cols}, std::vector<float>(static_cast<size_t>(cols), 0.f)));
  Attrs a;
  a.eps = attr_f(n, "epsilon", 1e-5f);
  if (attr_i(n, "stash_type", 1) != 1) unsupported(n, "only stash_type 1 (float statistics) is supported");
  const ir::NodeId id = g_.add_node(OpKind::layer_norm, node_name_, a, {reshape(x, {rows, cols}), gamma, beta}, ir::Role::activation);
  used_names_.insert(node_name_);
  const std::vector<ValueId> outs = g_.node(id).outputs;
  set(n, 0, reshape(outs[0], s));
  // Mean and InvStdDev have the input's shape with the normalised dims as 1.
  Shape stat = lead;
  stat.resize(static_cast<size_t>(r), 1);
  if (output_used(n, 1)) set(n, 1, reshape(outs[1], stat));
  if (output_used(n, 2)) {  // dlmem keeps the variance: InvStdDev = (var + eps)^-1/2
    const ValueId eps = frozen(node_name_ + ".epsilon", make_float({1}, {static_cast<float>(a.eps)}));
    Attrs p;
    p.alpha = -0.5;
    set(n, 2, reshape(emit(OpKind::pow, p, {emit(OpKind::add, {}, {outs[2], eps}, "/var_eps")}, "/inv_std"), stat));
  }
}

void Importer::op_gemm(const pb::NodeProto& n) {
  const ValueId a = value(n.input(0)), b = value(n.input(1));
  const bool ta = attr_i(n, "transA", 0) != 0, tb = attr_i(n, "transB", 0) != 0;
  const float alpha = attr_f(n, "alpha", 1.f), beta = attr_f(n, "beta", 1.f);
  if (type(a).rank() != 2 || type(b).rank() != 2) unsupported(n, "Gemm needs 2-D operands");
  const int64_t out_n = tb ? type(b).shape[0] : type(b).shape[1];
  const bool bias_1d = has_input(n, 2) && shape_of(n.input(2)) == Shape{out_n};
  if (!ta && tb && alpha == 1.f && beta == 1.f && (!has_input(n, 2) || bias_1d)) {
    // nn.Linear: y = x W^T + b
    Attrs at;
    std::vector<ValueId> in = {a, b};
    if (has_input(n, 2)) in.push_back(value(n.input(2)));
    at.has_bias = in.size() == 3;
    return set(n, 0, emit(OpKind::linear, at, in));
  }
  Attrs at;
  at.trans_a = ta;
  at.trans_b = tb;
  ValueId y = scale(emit(OpKind::matmul, at, {a, b}), alpha);
  if (has_input(n, 2) && beta != 0.f) y = binary(OpKind::add, y, scale(value(n.input(2)), beta), true);
  set(n, 0, y);
}

void Importer::op_matmul(const pb::NodeProto& n) {
  ValueId a = value(n.input(0)), b = value(n.input(1));
  Shape sa = type(a).shape, sb = type(b).shape;
  if (sa.empty() || sb.empty()) unsupported(n, "scalar operands are not supported");
  // 1-D operands as NumPy treats them: [K] is [1, K] on the left and [K, 1] on the right.
  const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) a = reshape(a, sa = {1, sa[0]});
  if (b1) b = reshape(b, sb = {sb[0], 1});
  const int64_t m = sa[sa.size() - 2], k = sa.back(), nn = sb.back();
  if (sb[sb.size() - 2] != k)
    unsupported(n, "inner dimensions differ: " + ir::shape_str(sa) + " x " + ir::shape_str(sb));
  Shape batch_a(sa.begin(), sa.end() - 2), batch_b(sb.begin(), sb.end() - 2);
  ValueId y;
  Shape out_batch;
  if (sb.size() == 2) {
    // [..., M, K] x [K, N]: one GEMM over the flattened leading dims.
    out_batch = batch_a;
    y = emit(OpKind::matmul, {}, {reshape(a, {numel(batch_a) * m, k}), b});
  } else {
    const auto bb = broadcast(batch_a, batch_b);
    if (!bb) unsupported(n, "batch dimensions do not broadcast");
    out_batch = *bb;
    auto full = [&](ValueId v, const Shape& batch, int64_t r, int64_t c) {
      Shape s(out_batch.size() - batch.size(), 1);
      s.insert(s.end(), batch.begin(), batch.end());
      s.push_back(r);
      s.push_back(c);
      Shape t = out_batch;
      t.push_back(r);
      t.push_back(c);
      return expand(reshape(v, s), t);
    };
    y = emit(OpKind::matmul, {}, {full(a, batch_a, m, k), full(b, batch_b, k, nn)});
  }
  Shape out = out_batch;
  if (!a1) out.push_back(m);
  if (!b1) out.push_back(nn);
  set(n, 0, reshape(y, out));
}

// ------------------------------------------------------------------ shapes

// Output 0 is input 0 with shape `s`: a static tensor with a new shape, or a view.
void Importer::set_reshaped(const pb::NodeProto& n, const Shape& s) {
  if (foldable(n.input(0))) {
    Tensor t = static_.at(n.input(0));
    t.shape = s;
    return set(n, 0, std::move(t));
  }
  set(n, 0, reshape(value(n.input(0)), s));
}

void Importer::op_reshape(const pb::NodeProto& n) {
  const Tensor& st = constant(n.input(1), "the target shape");
  const Shape& in = shape_of(n.input(0));
  Shape s(st.i.begin(), st.i.end());
  const bool allowzero = attr_i(n, "allowzero", 0) != 0;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == 0 && !allowzero) {
      if (i >= in.size()) unsupported(n, "a 0 in the target shape beyond the input's rank");
      s[i] = in[i];
    }
  int64_t known = 1;
  int neg = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) neg = static_cast<int>(i);
    else known *= s[i];
  }
  if (neg >= 0) {
    if (known == 0 || numel(in) % known) unsupported(n, "cannot reshape " + ir::shape_str(in) + " to " + ir::shape_str(s));
    s[static_cast<size_t>(neg)] = numel(in) / known;
  }
  if (numel(s) != numel(in)) unsupported(n, "cannot reshape " + ir::shape_str(in) + " to " + ir::shape_str(s));
  set_reshaped(n, s);
}

void Importer::op_flatten(const pb::NodeProto& n) {
  const Shape& in = shape_of(n.input(0));
  const int64_t axis = axis_attr(n, 1, static_cast<int64_t>(in.size()), /*inclusive=*/true);
  Shape s = {numel(Shape(in.begin(), in.begin() + axis)), numel(Shape(in.begin() + axis, in.end()))};
  set_reshaped(n, s);
}

void Importer::op_squeeze(const pb::NodeProto& n) {
  const Shape in = shape_of(n.input(0));
  const auto axes = ints_arg(n, 1, "axes");
  std::vector<bool> drop(in.size(), false);
  if (axes) {
    for (int64_t ax : *axes) {
      if (ax < 0) ax += static_cast<int64_t>(in.size());
      if (ax < 0 || ax >= static_cast<int64_t>(in.size()) || in[static_cast<size_t>(ax)] != 1)
        unsupported(n, "axis " + std::to_string(ax) + " of " + ir::shape_str(in) + " is not 1");
      drop[static_cast<size_t>(ax)] = true;
    }
  } else {
    for (size_t i = 0; i < in.size(); ++i) drop[i] = in[i] == 1;
  }
  Shape s;
  for (size_t i = 0; i < in.size(); ++i)
    if (!drop[i]) s.push_back(in[i]);
  set_reshaped(n, s);
}

void Importer::op_unsqueeze(const pb::NodeProto& n) {
  const Shape in = shape_of(n.input(0));
  const auto axes = ints_arg(n, 1, "axes");
  if (!axes) unsupported(n, "needs axes");
  const int64_t r = static_cast<int64_t>(in.size() + axes->size());
  std::vector<bool> ins(static_cast<size_t>(r), false);
  for (int64_t ax : *axes) {
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) unsupported(n, "axis out of range");
    ins[static_cast<size_t>(ax)] = true;
  }
  Shape s;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i) s.push_back(ins[static_cast<size_t>(i)] ? 1 : in[j++]);
  set_reshaped(n, s);
}

void Importer::op_transpose(const pb::NodeProto& n) {
  const Shape in = shape_of(n.input(0));
  std::vector<int64_t> perm(in.size());
  std::iota(perm.rbegin(), perm.rend(), 0);
  if (auto p = attr_ints(n, "perm")) perm = *p;
  if (perm.size() != in.size()) unsupported(n, "perm has the wrong length for " + ir::shape_str(in));
  if (foldable(n.input(0))) {
    const Tensor& t = static_.at(n.input(0));
    Shape s;
    for (int64_t p : perm) s.push_back(in[static_cast<size_t>(p)]);
    return set(n, 0, gather_elements(t, s, [&](int64_t k) {
      std::vector<int64_t> idx(in.size());
      for (size_t i = in.size(); i-- > 0;) {
        idx[static_cast<size_t>(perm[i])] = k % s[i];
        k /= s[i];
      }
      int64_t flat = 0;
      for (size_t i = 0; i < in.size(); ++i) flat = flat * in[i] + idx[i];
      return flat;
    }));
  }
  set(n, 0, transpose(value(n.input(0)), perm));
}

void Importer::op_concat(const pb::NodeProto& n) {
  if (all_foldable(n)) {
    const Tensor& t0 = static_.at(n.input(0));
    const int64_t axis = axis_attr(n, 0, static_cast<int64_t>(t0.shape.size()));
    for (const auto& in : n.input()) {
      const Shape& si = static_.at(in).shape;
      bool ok = si.size() == t0.shape.size() && static_.at(in).is_float() == t0.is_float();
      for (size_t d = 0; ok && d < si.size(); ++d) ok = static_cast<int64_t>(d) == axis || si[d] == t0.shape[d];
      if (!ok) unsupported(n, "inputs " + ir::shape_str(t0.shape) + " and " + ir::shape_str(si) + " do not concatenate");
    }
    // Row-major: blocks of the trailing size from each input in turn.
    Shape s = t0.shape;
    s[static_cast<size_t>(axis)] = 0;
    for (const auto& in : n.input()) s[static_cast<size_t>(axis)] += static_.at(in).shape[static_cast<size_t>(axis)];
    const int64_t outer = numel(Shape(s.begin(), s.begin() + axis));
    Tensor r;
    r.shape = s;
    r.elem_type = t0.elem_type;
    for (int64_t o = 0; o < outer; ++o)
      for (const auto& in : n.input()) {
        const Tensor& t = static_.at(in);
        const int64_t block = numel(Shape(t.shape.begin() + axis, t.shape.end()));
        for (int64_t k = 0; k < block; ++k) {
          if (r.is_float()) r.f.push_back(static_cast<float>(at(t, o * block + k)));
          else r.i.push_back(t.i[static_cast<size_t>(o * block + k)]);
        }
      }
    return set(n, 0, std::move(r));
  }
  std::vector<ValueId> in;
  for (const auto& x : n.input())
    if (!x.empty() && numel(shape_of(x)) > 0) in.push_back(value(x));
  Attrs a;
  a.axis = attr_i(n, "axis", 0);
  set(n, 0, in.size() == 1 ? in[0] : emit(OpKind::concat, a, in));
}

void Importer::op_split(const pb::NodeProto& n) {
  const ValueId x = value(n.input(0));
  const Shape& s = type(x).shape;
  const int64_t axis = axis_attr(n, 0, static_cast<int64_t>(s.size()));
  const int64_t ext = s[static_cast<size_t>(axis)];
  std::vector<int64_t> sizes;
  if (auto sp = ints_arg(n, 1, "split")) {
    sizes = *sp;
  } else {
    const int64_t parts = n.output_size(), each = (ext + parts - 1) / parts;
    for (int64_t p = 0, left = ext; p < parts; ++p, left -= each) sizes.push_back(std::min(each, left));
  }
  if (static_cast<int>(sizes.size()) != n.output_size() || std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != ext)
    unsupported(n, "split sizes do not add up to the axis' extent " + std::to_string(ext));
  int64_t start = 0;
  for (int i = 0; i < n.output_size(); ++i) {
    Attrs a;
    a.axis = axis;
    a.start = start;
    a.length = sizes[static_cast<size_t>(i)];
    start += a.length;
    if (output_used(n, i)) set(n, i, a.length == ext ? x : emit(OpKind::slice, a, {x}, ":" + std::to_string(i)));
  }
}

void Importer::op_slice(const pb::NodeProto& n) {
  const Shape in = shape_of(n.input(0));
  const int64_t r = static_cast<int64_t>(in.size());
  const auto starts = ints_arg(n, 1, "starts"), ends = ints_arg(n, 2, "ends");
  if (!starts || !ends || starts->size() != ends->size()) unsupported(n, "needs starts and ends of equal length");
  std::vector<int64_t> axes(starts->size()), steps(starts->size(), 1);
  std::iota(axes.begin(), axes.end(), 0);
  if (auto a = ints_arg(n, 3, "axes")) axes = *a;
  if (auto s = ints_arg(n, 4, "steps")) steps = *s;
  // Per axis [begin, end) after ONNX's clamping rules.
  std::vector<int64_t> begin(static_cast<size_t>(r), 0), end(in.begin(), in.end());
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t ax = axes[i] < 0 ? axes[i] + r : axes[i];
    if (ax < 0 || ax >= r) unsupported(n, "axis out of range");
    if (steps[i] != 1) unsupported(n, "only step 1 is supported");
    const int64_t d = in[static_cast<size_t>(ax)];
    int64_t b = (*starts)[i], e = (*ends)[i];
    if (b < 0) b += d;
    if (e < 0) e += d;
    begin[static_cast<size_t>(ax)] = std::clamp<int64_t>(b, 0, d);
    end[static_cast<size_t>(ax)] = std::clamp<int64_t>(e, 0, d);
  }
  Shape s;
  for (int64_t i = 0; i < r; ++i) s.push_back(std::max<int64_t>(0, end[static_cast<size_t>(i)] - begin[static_cast<size_t>(i)]));
  if (foldable(n.input(0))) {
    const Tensor& t = static_.at(n.input(0));
    return set(n, 0, gather_elements(t, s, [&](int64_t k) {
      int64_t flat = 0, mul = 1;
      for (int64_t i = r - 1; i >= 0; --i) {
        flat += (k % s[static_cast<size_t>(i)] + begin[static_cast<size_t>(i)]) * mul;
        k /= s[static_cast<size_t>(i)];
        mul *= in[static_cast<size_t>(i)];
      }
      return flat;
    }));
  }
  if (numel(s) == 0) unsupported(n, "an empty slice is not supported");
  ValueId v = value(n.input(0));
  for (int64_t i = 0; i < r; ++i) {
    if (s[static_cast<size_t>(i)] == in[static_cast<size_t>(i)]) continue;
    Attrs a;
    a.axis = i;
    a.start = begin[static_cast<size_t>(i)];
    a.length = s[static_cast<size_t>(i)];
    v = emit(OpKind::slice, a, {v}, "/axis" + std::to_string(i));
  }
  set(n, 0, v);
}

void Importer::op_gather(const pb::NodeProto& n) {
  const Shape data = shape_of(n.input(0));
  const int64_t r = static_cast<int64_t>(data.size());
  int64_t axis = attr_i(n, "axis", 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) unsupported(n, "axis out of range");
  const int64_t ext = data[static_cast<size_t>(axis)];
  auto out_shape = [&](const Shape& idx) {
    Shape s(data.begin(), data.begin() + axis);
    s.insert(s.end(), idx.begin(), idx.end());
    s.insert(s.end(), data.begin() + axis + 1, data.end());
    return s;
  };
  if (is_static(n.input(1)) && !dyn_.count(n.input(1))) {
    const Tensor& idx = constant(n.input(1), "indices");
    std::vector<int64_t> ix = idx.i;
    for (int64_t& i : ix) {
      if (i < 0) i += ext;
      if (i < 0 || i >= ext) unsupported(n, "index out of range [0, " + std::to_string(ext) + ")");
    }
    const Shape s = out_shape(idx.shape);
    if (foldable(n.input(0))) {
      const Tensor& t = static_.at(n.input(0));
      const int64_t inner = numel(Shape(data.begin() + axis + 1, data.end())), nidx = static_cast<int64_t>(ix.size());
      if (inner == 0 || nidx == 0 || numel(s) == 0) return set(n, 0, gather_elements(t, s, [](int64_t) { return 0; }));
      return set(n, 0, gather_elements(t, s, [&](int64_t k) {
        const int64_t in_pos = k % inner, rest = k / inner, j = rest % nidx, o = rest / nidx;
        return (o * ext + ix[static_cast<size_t>(j)]) * inner + in_pos;
      }));
    }
    // Runtime data, constant indices: one slice per index, concatenated.
    const ValueId x = value(n.input(0));
    std::vector<ValueId> parts;
    for (size_t j = 0; j < ix.size(); ++j) {
      Attrs a;
      a.axis = axis;
      a.start = ix[j];
      a.length = 1;
      parts.push_back(ext == 1 ? x : emit(OpKind::slice, a, {x}, ":" + std::to_string(j)));
    }
    if (parts.empty()) unsupported(n, "empty indices are not supported");
    Attrs a;
    a.axis = axis;
    const ValueId y = parts.size() == 1 ? parts[0] : emit(OpKind::concat, a, parts, "/concat");
    return set(n, 0, reshape(y, s));
  }
  // Runtime indices into a table: an embedding lookup.
  const ValueId ids = value(n.input(1));
  if (axis != 0 || r != 2 || type(ids).dtype != DType::i32)
    unsupported(n, "runtime indices are supported into a 2-D table along axis 0 (an embedding), got data " +
                       ir::shape_str(data) + " axis " + std::to_string(axis));
  set(n, 0, emit(OpKind::embedding, {}, {ids, value(n.input(0))}));
}

void Importer::op_expand(const pb::NodeProto& n) {
  const Tensor& st = constant(n.input(1), "the shape");
  const Shape in = shape_of(n.input(0));
  const auto out = broadcast(in, Shape(st.i.begin(), st.i.end()));
  if (!out) unsupported(n, "cannot expand " + ir::shape_str(in) + " to " + ir::shape_str(Shape(st.i.begin(), st.i.end())));
  if (foldable(n.input(0))) {
    const Tensor& t = static_.at(n.input(0));
    return set(n, 0, gather_elements(t, *out, [&](int64_t k) { return broadcast_index(in, *out, k); }));
  }
  set(n, 0, expand(value(n.input(0)), *out));
}

void Importer::op_reduce(const pb::NodeProto& n) {
  const ValueId x = value(n.input(0));
  const Shape in = type(x).shape;
  const int64_t r = static_cast<int64_t>(in.size());
  // ReduceSum takes axes as an input from opset 13, ReduceMean from opset 18.
  auto axes = n.op_type() == "ReduceSum" || opset_ >= 18 ? ints_arg(n, 1, "axes") : attr_ints(n, "axes");
  std::vector<bool> red(static_cast<size_t>(r), !axes || axes->empty());
  if (axes && axes->empty() && attr_i(n, "noop_with_empty_axes", 0)) return set(n, 0, x);
  if (axes)
    for (int64_t ax : *axes) {
      if (ax < 0) ax += r;
      if (ax < 0 || ax >= r) unsupported(n, "axis out of range");
      red[static_cast<size_t>(ax)] = true;
    }
  Shape keep, squeezed;
  int64_t count = 1;
  for (int64_t i = 0; i < r; ++i) {
    const bool d = red[static_cast<size_t>(i)];
    keep.push_back(d ? 1 : in[static_cast<size_t>(i)]);
    if (!d) squeezed.push_back(in[static_cast<size_t>(i)]);
    if (d) count *= in[static_cast<size_t>(i)];
  }
  Attrs a;
  a.shape = keep;
  ValueId y = keep == in ? x : emit(OpKind::reduce_sum, a, {x});
  if (n.op_type() == "ReduceMean") y = scale(y, 1.0 / static_cast<double>(count));
  set(n, 0, attr_i(n, "keepdims", 1) ? y : reshape(y, squeezed.empty() ? Shape{1} : squeezed));
}

void Importer::op_pad(const pb::NodeProto& n) {
  const auto pads = ints_arg(n, 1, "pads");
  if (attr_s(n, "mode", "constant") != "constant") unsupported(n, "only constant padding is supported");
  if (pads && std::any_of(pads->begin(), pads->end(), [](int64_t p) { return p != 0; }))
    unsupported(n, "only zero-width Pad (as PyTorch exports before pooling) is supported; fold padding into the "
                   "Conv or pooling node's pads");
  set(n, 0, value(n.input(0)));
}

// ------------------------------------------------------------------ the walk

void Importer::bind_inputs(const pb::GraphProto& gp) {
  for (const auto& in : gp.input()) {
    if (init_.count(in.name())) continue;  // an initializer listed as an input (IR version < 4)
    const auto& tt = in.type().tensor_type();
    Shape s;
    if (auto it = opt_.input_shapes.find(in.name()); it != opt_.input_shapes.end()) {
      s = it->second;
    } else {
      for (int i = 0; i < tt.shape().dim_size(); ++i) {
        const auto& d = tt.shape().dim(i);
        if (d.has_dim_value() && d.dim_value() > 0) s.push_back(d.dim_value());
        else if (i == 0) s.push_back(opt_.batch);
        else
          throw Error(file_, ": input '", in.name(), "' has a symbolic dimension '", d.dim_param(), "' at position ", i,
                      "; dlmem plans static shapes: export with a fixed size there (only the first, batch "
                      "dimension may be dynamic, bound by --batch), or give an input file to 'dlmem run'");
      }
    }
    numel(s);  // Error for a shape no tensor has
    const int et = tt.elem_type();
    if (auto it = opt_.input_values.find(in.name()); it != opt_.input_values.end() && !it->second.is_float()) {
      Tensor declared;
      declared.elem_type = et;
      if (declared.is_float())
        throw Error(file_, ": input '", in.name(), "' is a float input, the given value holds integers");
      Tensor t = it->second;
      t.elem_type = et;
      static_[in.name()] = std::move(t);
      if (et != kInt64 && et != pb::TensorProto::INT32) continue;  // bool and narrow ints: constants only
    }
    DType dt;
    if (et == kFloat) dt = DType::f32;
    else if (et == kInt64 || et == pb::TensorProto::INT32) dt = DType::i32;
    else
      throw Error(file_, ": input '", in.name(), "' is ",
                  pb::TensorProto::DataType_IsValid(et) ? pb::TensorProto::DataType_Name(static_cast<pb::TensorProto::DataType>(et)) : "of an unknown type",
                  "; dlmem computes in float32 and takes FLOAT inputs and INT64/INT32 token ids");
    std::string name = in.name();
    if (opt_.as_zoo_model) name = dt == DType::f32 ? "input" : "ids";
    const ValueId v = g_.add_value(name, ir::TensorType{s, dt}, ir::Role::input);
    dyn_[in.name()] = v;
  }
}

void Importer::add_zoo_loss(Imported& out) {
  if (out.inputs.size() != 1)
    throw Error(file_, ": training or planning an ONNX model needs one data input, it has ", out.inputs.size(),
                " (use 'dlmem run' for inference on several)");
  if (out.outputs.empty() || out.outputs[0].value == ir::kNoValue) throw Error(file_, ": the model has no runtime output");
  const ValueId logits = out.outputs[0].value;
  const Shape& s = g_.value(logits).type.shape;
  if (s.size() != 2 || s[0] != g_.value(out.inputs[0].value).type.shape[0])
    throw Error(file_, ": output '", out.outputs[0].name, "' is ", g_.value(logits).type.str(),
                "; --loss cross-entropy needs [batch, classes] logits as the model's first output");
  const ValueId label = g_.add_value("label", ir::TensorType{{s[0]}, DType::i32}, ir::Role::label);
  const ir::NodeId id = g_.add_node(OpKind::softmax_xent, "loss", {}, {logits, label}, ir::Role::activation);
  g_.loss = g_.node(id).outputs[0];
}

Imported Importer::run(const pb::ModelProto& m) {
  dir_ = std::filesystem::path(file_).parent_path().string();
  for (const auto& os : m.opset_import())
    if (os.domain().empty() || os.domain() == "ai.onnx") opset_ = os.version();
  if (opset_ < kMinOpset || opset_ > kMaxOpset)
    throw Error(file_, ": opset ", opset_, " of the default domain; dlmem imports opsets ", kMinOpset, " to ", kMaxOpset,
                " (convert with onnx.version_converter.convert_version(model, 17), or export with "
                "torch.onnx.export(..., opset_version=17))");
  const pb::GraphProto& gp = m.graph();
  for (const auto& t : gp.initializer()) init_[t.name()] = &t;
  for (const auto& t : gp.sparse_initializer())
    throw Error(file_, ": sparse initializer '", t.values().name(), "' is not supported");
  for (const auto& n : gp.node())
    for (const auto& in : n.input()) ++uses_[in];
  for (const auto& o : gp.output()) graph_outputs_.insert(o.name());
  bind_inputs(gp);

  Imported out;
  out.opset = opset_;
  out.producer = m.producer_name() + (m.producer_version().empty() ? "" : " " + m.producer_version());
  for (const auto& in : gp.input())
    if (!init_.count(in.name()))
      out.inputs.push_back({in.name(), dyn_.count(in.name()) ? dyn_.at(in.name()) : ir::kNoValue,
                            in.type().tensor_type().elem_type()});

  const auto& table = handlers();
  int index = 0;
  for (const auto& n : gp.node()) {
    node_name_ = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
    ++index;
    ++out.op_counts[n.op_type()];
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      throw Error(file_, ": node '", node_name_, "' is op ", n.op_type(), " of domain '", n.domain(),
                  "'; dlmem imports the default ONNX domain only");
    auto it = table.find(n.op_type());
    if (it != table.end() && n.input_size() < min_inputs(n.op_type()))
      throw Error(file_, ": node '", node_name_, "' (", n.op_type(), ") has ", n.input_size(), " inputs; it needs at least ",
                  min_inputs(n.op_type()));
    if (it != table.end() && n.output_size() < 1 && n.op_type() != "Identity")
      throw Error(file_, ": node '", node_name_, "' (", n.op_type(), ") has no output");
    if (it == table.end())
      throw Error(file_, ": node '", node_name_, "' is op ", n.op_type(), " (opset ", opset_,
                  "), which dlmem does not support; supported: ", list(supported_ops()));
    for (const auto& in : n.input())
      if (!in.empty() && !has(in))
        throw Error(file_, ": node '", node_name_, "' (", n.op_type(), ") reads '", in,
                    "', which no earlier node, initializer or graph input provides (a missing initializer, or "
                    "nodes out of topological order?)");
    try {
      (this->*(it->second))(n);
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.rfind(file_, 0) == 0) throw;  // already names the file
      throw Error(file_, ": node '", node_name_, "' (", n.op_type(), ", opset ", opset_, "): ", what);
    }
    for (const auto& in : n.input()) --uses_[in];
  }
  for (const auto& o : gp.output()) {
    Imported::Port p{o.name(), ir::kNoValue, o.type().tensor_type().elem_type()};
    if (auto it = dyn_.find(o.name()); it != dyn_.end()) {
      p.value = it->second;
      if (g_.value(p.value).role != ir::Role::weight) g_.outputs.push_back(p.value);
    } else if (auto st = static_.find(o.name()); st != static_.end()) {
      out.constants[o.name()] = st->second;
    } else if (init_.count(o.name())) {
      out.constants[o.name()] = constant(o.name(), "output");
    } else {
      throw Error(file_, ": graph output '", o.name(), "' is not produced by any node");
    }
    out.outputs.push_back(p);
  }
  if (opt_.as_zoo_model) {
    add_zoo_loss(out);
    g_.outputs.assign(1, out.outputs[0].value);
  }
  g_.verify();
  out.graph = std::move(g_);
  return out;
}

const std::map<std::string, Handler>& handlers() {
  static const std::map<std::string, Handler> h = {
      {"Constant", &Importer::op_constant},
      {"Shape", &Importer::op_shape},
      {"Size", &Importer::op_size},
      {"ConstantOfShape", &Importer::op_constant_of_shape},
      {"Range", &Importer::op_range},
      {"Identity", &Importer::op_identity},
      {"Cast", &Importer::op_cast},
      {"Add", &Importer::op_binary},
      {"Sub", &Importer::op_binary},
      {"Mul", &Importer::op_binary},
      {"Div", &Importer::op_binary},
      {"Equal", &Importer::op_compare},
      {"Less", &Importer::op_compare},
      {"Greater", &Importer::op_compare},
      {"LessOrEqual", &Importer::op_compare},
      {"GreaterOrEqual", &Importer::op_compare},
      {"Where", &Importer::op_where},
      {"Relu", &Importer::op_unary},
      {"Sigmoid", &Importer::op_unary},
      {"Tanh", &Importer::op_unary},
      {"Sqrt", &Importer::op_unary},
      {"Erf", &Importer::op_unary},
      {"Exp", &Importer::op_unary},
      {"Log", &Importer::op_unary},
      {"Neg", &Importer::op_unary},
      {"Reciprocal", &Importer::op_unary},
      {"LeakyRelu", &Importer::op_unary},
      {"Gelu", &Importer::op_unary},
      {"Pow", &Importer::op_pow},
      {"Clip", &Importer::op_clip},
      {"Softmax", &Importer::op_softmax},
      {"LogSoftmax", &Importer::op_softmax},
      {"Conv", &Importer::op_conv},
      {"ConvTranspose", &Importer::op_conv_transpose},
      {"MaxPool", &Importer::op_pool},
      {"AveragePool", &Importer::op_pool},
      {"GlobalAveragePool", &Importer::op_global_pool},
      {"BatchNormalization", &Importer::op_batch_norm},
      {"LayerNormalization", &Importer::op_layer_norm},
      {"Gemm", &Importer::op_gemm},
      {"MatMul", &Importer::op_matmul},
      {"Dropout", &Importer::op_dropout},
      {"Reshape", &Importer::op_reshape},
      {"Flatten", &Importer::op_flatten},
      {"Squeeze", &Importer::op_squeeze},
      {"Unsqueeze", &Importer::op_unsqueeze},
      {"Transpose", &Importer::op_transpose},
      {"Concat", &Importer::op_concat},
      {"Split", &Importer::op_split},
      {"Slice", &Importer::op_slice},
      {"Gather", &Importer::op_gather},
      {"Expand", &Importer::op_expand},
      {"ReduceMean", &Importer::op_reduce},
      {"ReduceSum", &Importer::op_reduce},
      {"Pad", &Importer::op_pad},
  };
  return h;
}

}  // namespace

std::vector<std::string> supported_ops() {
  std::vector<std::string> v;
  for (const auto& [k, _] : handlers()) v.push_back(k);
  return v;
}

std::vector<std::string> input_names(const std::string& path) {
  const pb::ModelProto m = read_model_proto(path);
  std::set<std::string> inits;
  for (const auto& t : m.graph().initializer()) inits.insert(t.name());
  std::vector<std::string> names;
  for (const auto& in : m.graph().input())
    if (!inits.count(in.name())) names.push_back(in.name());
  return names;
}

Imported import_model(const std::string& path, const ImportOptions& o) {
  const pb::ModelProto m = read_model_proto(path);
  return Importer(path, o).run(m);
}

Imported import_model_bytes(std::span<const std::byte> bytes, const std::string& name, const ImportOptions& o) {
  const pb::ModelProto m = parse_model_proto(bytes, name);
  return Importer(name, o).run(m);
}

}  // namespace dlmem::models::onnx
