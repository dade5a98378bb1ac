#include "ir/autodiff.h"

#include "util/error.h"

namespace dlmem::ir {

std::string_view optimizer_name(Optimizer o) {
  switch (o) {
    case Optimizer::none: return "none";
    case Optimizer::sgd: return "sgd";
    case Optimizer::adam: return "adam";
  }
  return "?";
}

GradContext::GradContext(Graph& g, NodeId forward, std::vector<ValueId> dys,
                         std::vector<bool> needs)
    : g_(g), fwd_(g.node(forward)), dys_(std::move(dys)), needs_(std::move(needs)),
      dxs_(fwd_.inputs.size(), kNoValue) {}

std::vector<ValueId> GradContext::emit(OpKind op, const std::string& suffix, Attrs attrs,
                                       std::vector<ValueId> inputs) {
  NodeId n = g_.add_node(op, fwd_.name + "/" + suffix, std::move(attrs), std::move(inputs),
                         Role::gradient, Phase::backward);
  g_.node(n).forward_of = fwd_.id;
  return g_.node(n).outputs;
}

ValueId GradContext::emit1(OpKind op, const std::string& suffix, Attrs attrs,
                           std::vector<ValueId> inputs) {
  auto outs = emit(op, suffix, std::move(attrs), std::move(inputs));
  DLMEM_CHECK(outs.size() == 1, "emit1 of ", op_name(op), " gave ", outs.size(), " outputs");
  return outs[0];
}

void GradContext::set(int i, ValueId grad) {
  if (needs(i)) dxs_.at(static_cast<size_t>(i)) = grad;
}

namespace {

bool is_float(DType d) { return d == DType::f32 || d == DType::f16 || d == DType::bf16; }

ValueId add_state(Graph& g, ValueId w, const char* what) {
  const Value& wv = g.value(w);
  ValueId s = g.add_value(wv.name + "/" + what, TensorType{wv.type.shape, DType::f32},
                          Role::optimizer_state);
  g.value(s).init = Init{Init::Kind::zeros};
  return s;
}

void emit_update(Graph& g, const TrainOptions& opt, ValueId w, ValueId dw) {
  Attrs a;
  a.lr = opt.lr;
  a.momentum = opt.momentum;
  a.beta1 = opt.beta1;
  a.beta2 = opt.beta2;
  a.eps = opt.eps;
  a.weight_decay = opt.weight_decay;
  const std::string name = g.value(w).name + "/update";
  if (opt.optimizer == Optimizer::sgd) {
    g.add_node(OpKind::sgd_update, name, a, {w, dw, add_state(g, w, "momentum")},
               Role::optimizer_state, Phase::update);
  } else {
    ValueId m = add_state(g, w, "adam_m");
    ValueId v = add_state(g, w, "adam_v");
    g.add_node(OpKind::adam_update, name, a, {w, dw, m, v}, Role::optimizer_state, Phase::update);
  }
}

}  // namespace

std::vector<ParamGrad> build_training_graph(Graph& g, const TrainOptions& opt) {
  if (g.loss == kNoValue) throw Error("the model has no loss: cannot build a training graph");
  const int n_forward = g.num_nodes();
  for (const Node& n : g.nodes())
    DLMEM_CHECK(n.phase == Phase::forward, "graph ", n.name, " is already a training graph");

  // Which values depend on a trainable weight.
  std::vector<bool> req(static_cast<size_t>(g.num_values()), false);
  for (const Value& v : g.values())
    if (v.role == Role::weight && v.trainable) req[static_cast<size_t>(v.id)] = true;
  for (const Node& n : g.nodes()) {
    bool any = false;
    for (ValueId v : n.inputs) any = any || req[static_cast<size_t>(v)];
    if (any && op_def(n.op).grad)
      for (ValueId o : n.outputs) req[static_cast<size_t>(o)] = is_float(g.value(o).type.dtype);
  }
  if (!req[static_cast<size_t>(g.loss)])
    throw Error("the loss does not depend on any trainable weight");

  // Pending differentiable consumers per weight, for eager updates.
  std::vector<int> pending(static_cast<size_t>(g.num_values()), 0);
  for (const Node& n : g.nodes())
    for (ValueId v : n.inputs)
      if (g.value(v).role == Role::weight && g.value(v).trainable) pending[static_cast<size_t>(v)]++;

  std::vector<ValueId> grads(static_cast<size_t>(g.num_values()), kNoValue);
  {
    Attrs a;
    a.shape = g.value(g.loss).type.shape;
    a.alpha = 1.0;
    NodeId seed = g.add_node(OpKind::fill, g.value(g.loss).name + "/grad_seed", a, {},
                             Role::gradient, Phase::backward);
    grads[static_cast<size_t>(g.loss)] = g.node(seed).outputs[0];
    g.node(seed).forward_of = g.value(g.loss).producer;
  }

  std::vector<ParamGrad> params;
  auto finalize_weight = [&](ValueId w) {
    ValueId dw = grads[static_cast<size_t>(w)];
    if (dw == kNoValue) return;
    Value& dv = g.value(dw);
    if (dv.grad_of != kNoValue && dv.grad_of != w) {
      // The same value is also another tensor's gradient (an identity pass-through):
      // give the weight its own copy so roles and lifetimes stay separate.
      Attrs a;
      a.shape = dv.type.shape;
      NodeId c = g.add_node(OpKind::reduce_sum, g.value(w).name + "/grad", a, {dw},
                            Role::weight_gradient, Phase::backward);
      dw = g.node(c).outputs[0];
    }
    g.value(dw).role = Role::weight_gradient;
    g.value(dw).grad_of = w;
    params.push_back({w, dw});
    if (opt.optimizer != Optimizer::none && opt.eager_update) emit_update(g, opt, w, dw);
  };

  for (NodeId id = n_forward - 1; id >= 0; --id) {
    const Node& n = g.node(id);
    const OpDef& def = op_def(n.op);
    std::vector<ValueId> dys;
    bool any = false;
    for (ValueId o : n.outputs) {
      dys.push_back(grads[static_cast<size_t>(o)]);
      any = any || dys.back() != kNoValue;
    }
    std::vector<bool> needs;
    bool any_need = false;
    for (ValueId v : n.inputs) {
      needs.push_back(req[static_cast<size_t>(v)]);
      any_need = any_need || needs.back();
    }
    if (any && any_need) {
      DLMEM_CHECK(def.grad != nullptr, "op ", def.name, " has no gradient");
      DLMEM_CHECK(dys[0] != kNoValue, "node ", n.name, ": gradient of a secondary output only");
      GradContext ctx(g, id, dys, needs);
      def.grad(ctx);
      const std::vector<ValueId> inputs = g.node(id).inputs;  // copy: the graph grows
      for (size_t i = 0; i < inputs.size(); ++i) {
        ValueId dx = ctx.dxs()[i];
        if (dx == kNoValue || !needs[i]) continue;
        ValueId x = inputs[i];
        ValueId& acc = grads[static_cast<size_t>(x)];
        if (acc == kNoValue) {
          acc = dx;
        } else {
          NodeId s = g.add_node(OpKind::add, g.value(x).name + "/grad_acc" + std::to_string(id), {},
                                {acc, dx}, Role::gradient, Phase::backward);
          g.node(s).forward_of = id;
          acc = g.node(s).outputs[0];
        }
        if (g.value(acc).grad_of == kNoValue) g.value(acc).grad_of = x;
      }
    }
    // Weights whose last differentiable consumer was this node have final gradients.
    for (ValueId v : g.node(id).inputs) {
      const Value& val = g.value(v);
      if (val.role == Role::weight && val.trainable && --pending[static_cast<size_t>(v)] == 0)
        finalize_weight(v);
    }
  }
  if (opt.optimizer != Optimizer::none && !opt.eager_update)
    for (const ParamGrad& p : params) emit_update(g, opt, p.weight, p.grad);
  return params;
}

}  // namespace dlmem::ir
