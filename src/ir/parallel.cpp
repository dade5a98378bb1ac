#include "ir/parallel.h"

#include <algorithm>

#include "util/error.h"

namespace dlmem::ir {

namespace {

bool is_update(OpKind k) { return k == OpKind::sgd_update || k == OpKind::adam_update; }

}  // namespace

std::vector<float> take_shard(std::span<const float> full, const Shard& s) {
  const int64_t n = static_cast<int64_t>(full.size()), size = (n + s.ranks - 1) / s.ranks;
  const int64_t lo = std::min(n, s.rank * size), hi = std::min(n, lo + size);
  std::vector<float> out(static_cast<size_t>(size), 0.0f);
  std::copy(full.begin() + lo, full.begin() + hi, out.begin());
  return out;
}

void make_data_parallel(Graph& g, const std::vector<ParamGrad>& params, const DataParallel& dp) {
  if (dp.ranks < 1) throw Error("data parallelism needs at least 1 rank, got ", dp.ranks);
  if (dp.rank < 0 || dp.rank >= dp.ranks) throw Error("rank ", dp.rank, " is not one of ", dp.ranks, " ranks");
  if (dp.zero < 0 || dp.zero > 3) throw Error("ZeRO stage ", dp.zero, " does not exist; use 0, 1, 2 or 3");
  if (dp.ranks == 1) return;
  const Graph old = std::move(g);
  g = Graph();
  const auto nv = static_cast<size_t>(old.num_values());

  // The trainable weights, their final gradients and their optimizer state.
  std::vector<ValueId> weight_of_grad(nv, kNoValue);
  std::vector<bool> param(nv, false), state(nv, false);
  for (const ParamGrad& p : params) {
    param[static_cast<size_t>(p.weight)] = true;
    weight_of_grad[static_cast<size_t>(p.grad)] = p.weight;
  }
  for (const Node& n : old.nodes())
    if (is_update(n.op) && param[static_cast<size_t>(n.inputs[0])])
      for (size_t i = 2; i < n.inputs.size(); ++i) state[static_cast<size_t>(n.inputs[i])] = true;

  Attrs comm;
  comm.ranks = dp.ranks;
  comm.rank = dp.rank;
  auto shard_type = [&](const TensorType& t) {
    return TensorType{{(t.numel() + dp.ranks - 1) / dp.ranks}, DType::f32};
  };

  std::vector<ValueId> map(nv, kNoValue);
  // Sources (inputs, labels, weights, state), sharded where the stage says.
  for (const Value& v : old.values()) {
    if (v.producer != kNoNode) continue;
    const bool sharded = (dp.zero >= 1 && state[static_cast<size_t>(v.id)]) || (dp.zero == 3 && param[static_cast<size_t>(v.id)]);
    const ValueId id = g.add_value(v.name, sharded ? shard_type(v.type) : v.type, v.role);
    Value& x = g.value(id);
    x.trainable = v.trainable;
    x.init = v.init;
    if (sharded) x.shard = Shard{v.type.shape, dp.rank, dp.ranks};
    map[static_cast<size_t>(v.id)] = id;
  }

  std::vector<NodeId> node_map(static_cast<size_t>(old.num_nodes()), kNoNode);
  // ZeRO 3: the gathered copy of each weight for the forward and for the backward.
  std::vector<ValueId> gathered[2] = {std::vector<ValueId>(nv, kNoValue), std::vector<ValueId>(nv, kNoValue)};
  auto add = [&](OpKind op, const std::string& name, const Attrs& a, std::vector<ValueId> ins, Role role, Phase ph) {
    return g.node(g.add_node(op, name, a, std::move(ins), role, ph)).outputs;
  };

  // ZeRO 0/1: final gradients waiting for their bucket's all-reduce (old ids).
  std::vector<ValueId> bucket;
  uint64_t bucket_bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    std::vector<ValueId> ins;
    for (ValueId o : bucket) ins.push_back(map[static_cast<size_t>(o)]);
    const std::string name = old.value(weight_of_grad[static_cast<size_t>(bucket.front())]).name +
                             (bucket.size() > 1 ? "/grad_mean_bucket" : "/grad_mean");
    const std::vector<ValueId> outs = add(OpKind::allreduce, name, comm, ins, Role::weight_gradient, Phase::backward);
    for (size_t k = 0; k < bucket.size(); ++k) {
      g.value(outs[k]).grad_of = map[static_cast<size_t>(weight_of_grad[static_cast<size_t>(bucket[k])])];
      map[static_cast<size_t>(bucket[k])] = outs[k];
    }
    bucket.clear();
    bucket_bytes = 0;
  };
  std::vector<bool> pending(nv, false);

  for (const Node& n : old.nodes()) {
    // A node that reads a gradient still waiting for its bucket: reduce the bucket first.
    for (ValueId v : n.inputs)
      if (pending[static_cast<size_t>(v)]) {
        flush();
        std::fill(pending.begin(), pending.end(), false);
        break;
      }
    const bool update = is_update(n.op) && param[static_cast<size_t>(n.inputs[0])];
    std::vector<ValueId> ins;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const ValueId v = n.inputs[i];
      if (dp.zero == 3 && param[static_cast<size_t>(v)] && !update) {
        const int which = n.phase == Phase::forward ? 0 : 1;
        ValueId& gv = gathered[which][static_cast<size_t>(v)];
        if (gv == kNoValue) {
          Attrs a = comm;
          a.shape = old.value(v).type.shape;
          gv = add(OpKind::all_gather, old.value(v).name + (which ? "/gather_bwd" : "/gather_fwd"), a,
                   {map[static_cast<size_t>(v)]}, Role::communication, n.phase)[0];
        }
        ins.push_back(gv);
      } else {
        ins.push_back(map[static_cast<size_t>(v)]);
      }
    }
    if (update && dp.zero >= 1 && dp.zero <= 2) {
      // Update this rank's shard of the weight, then gather the whole weight.
      const ValueId w = ins[0];
      const std::string& wname = old.value(n.inputs[0]).name;
      const ValueId w_shard = add(OpKind::shard, wname + "/shard", comm, {w}, Role::communication, Phase::update)[0];
      ValueId g_shard = ins[1];
      if (dp.zero == 1) g_shard = add(OpKind::shard, wname + "/grad_shard", comm, {ins[1]}, Role::weight_gradient, Phase::update)[0];
      std::vector<ValueId> uin = {w_shard, g_shard};
      uin.insert(uin.end(), ins.begin() + 2, ins.end());
      node_map[static_cast<size_t>(n.id)] = g.add_node(n.op, n.name, n.attrs, uin, Role::optimizer_state, n.phase);
      g.add_node(OpKind::all_gather_into, wname + "/gather", comm, {w, w_shard}, Role::weight, Phase::update);
      continue;
    }
    Attrs attrs = n.attrs;
    if (n.op == OpKind::dropout) {  // the rank's rows of the global batch's mask (cpu_backend.cpp)
      attrs.rank = dp.rank;
      attrs.ranks = dp.ranks;
    }
    const NodeId id = g.add_node(n.op, n.name, attrs, ins, Role::activation, n.phase);
    node_map[static_cast<size_t>(n.id)] = id;
    g.node(id).forward_of = n.forward_of == kNoNode ? kNoNode : node_map[static_cast<size_t>(n.forward_of)];
    const std::vector<ValueId> outs = g.node(id).outputs;  // a copy: adding nodes below moves the graph's
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const Value& o = old.value(n.outputs[k]);
      const ValueId xid = outs[k];
      g.value(xid).role = o.role;
      g.value(xid).grad_of = o.grad_of == kNoValue ? kNoValue : map[static_cast<size_t>(o.grad_of)];
      map[static_cast<size_t>(o.id)] = xid;
      // A final weight gradient: its collective as soon as the backward has made it (in a
      // bucket for ZeRO 0/1), and the update reads the result.
      const ValueId w = weight_of_grad[static_cast<size_t>(o.id)];
      if (w == kNoValue) continue;
      const std::string& wname = old.value(w).name;
      if (dp.zero <= 1) {
        bucket.push_back(o.id);
        pending[static_cast<size_t>(o.id)] = true;
        bucket_bytes += o.type.bytes();
        if (bucket_bytes >= dp.bucket_bytes) {
          flush();
          std::fill(pending.begin(), pending.end(), false);
        }
        continue;
      }
      const ValueId r = add(OpKind::reduce_scatter, wname + "/grad_shard", comm, {xid}, Role::weight_gradient,
                            Phase::backward)[0];
      g.value(r).grad_of = map[static_cast<size_t>(w)];
      map[static_cast<size_t>(o.id)] = r;
    }
  }
  flush();
  g.loss = map[static_cast<size_t>(old.loss)];
  for (ValueId o : old.outputs) g.outputs.push_back(map[static_cast<size_t>(o)]);
  g.verify();
}

}  // namespace dlmem::ir
