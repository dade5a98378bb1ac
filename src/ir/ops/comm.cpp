// Collectives of data parallelism (ir/parallel.h, runtime/comm.h) as graph nodes, so
// that their buffers are planned bytes of each rank's budget and the simulator costs
// them on the interconnect. attrs.ranks / attrs.rank name the group and this rank;
// attrs.shape is the full tensor's shape where a node's types do not say it.
#include "ir/ops/common.h"

namespace dlmem::ir::ops {

namespace {

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}
// Elements per shard (Note [Shards], runtime/comm.h).
int64_t shard_of(const Node& n, int64_t numel) {
  if (n.attrs.ranks < 1 || n.attrs.rank < 0 || n.attrs.rank >= n.attrs.ranks)
    fail(n, "rank ", n.attrs.rank, " of ", n.attrs.ranks, " ranks");
  return (numel + n.attrs.ranks - 1) / n.attrs.ranks;
}
void check_f32(const Node& n, const TensorType& t) {
  if (t.dtype != DType::f32) fail(n, "collectives move f32 tensors, got ", t.str());
}

// allreduce(x_1, ..., x_k) -> the mean over ranks of each (k > 1: a bucket of
// gradients reduced in one collective, as DDP's buckets)
std::vector<TensorType> infer_allreduce(const Node& n, TypeList in) {
  std::vector<TensorType> out;
  for (const TensorType* t : in) {
    check_f32(n, *t);
    out.push_back(*t);
  }
  shard_of(n, in[0]->numel());
  return out;
}
// reduce_scatter(x) -> [s]: this rank's shard of the mean; shard(x) -> [s]: its own slice
std::vector<TensorType> infer_to_shard(const Node& n, TypeList in) {
  check_f32(n, *in[0]);
  return {TensorType{{shard_of(n, in[0]->numel())}, DType::f32}};
}
// all_gather(x[s]) -> attrs.shape: every rank's shard
std::vector<TensorType> infer_all_gather(const Node& n, TypeList in) {
  check_f32(n, *in[0]);
  if (in[0]->shape != Shape{shard_of(n, numel_of(n.attrs.shape))})
    fail(n, "a shard of ", TensorType{n.attrs.shape, DType::f32}.str(), " over ", n.attrs.ranks, " ranks has ",
         shard_of(n, numel_of(n.attrs.shape)), " elements, got ", in[0]->str());
  return {TensorType{n.attrs.shape, DType::f32}};
}
// all_gather_into(w, w_shard): w = every rank's shard, in place
std::vector<TensorType> infer_gather_into(const Node& n, TypeList in) {
  check_f32(n, *in[0]);
  if (in[1]->shape != Shape{shard_of(n, in[0]->numel())})
    fail(n, "a shard of ", in[0]->str(), " has ", shard_of(n, in[0]->numel()), " elements, got ", in[1]->str());
  return {};
}

// Ring algorithms (Patarasuk and Yuan 2009; NCCL's): each rank sends and receives
// 2(N-1)/N of the tensor for an all-reduce, (N-1)/N for a reduce-scatter or all-gather.
double ring_allreduce(const Node& n) { return 2.0 * static_cast<double>(n.attrs.ranks - 1) / static_cast<double>(n.attrs.ranks); }
double ring_half(const Node& n) { return static_cast<double>(n.attrs.ranks - 1) / static_cast<double>(n.attrs.ranks); }

}  // namespace

void register_comm(Registry& r) {
  r[static_cast<size_t>(OpKind::allreduce)] =
      OpDef{.name = "allreduce", .max_inputs = -1, .infer = infer_allreduce, .inplace = {{0, 0}}, .recomputable = false,
            .comm_factor = ring_allreduce};
  r[static_cast<size_t>(OpKind::reduce_scatter)] =
      OpDef{.name = "reduce_scatter", .infer = infer_to_shard, .recomputable = false, .comm_factor = ring_half};
  r[static_cast<size_t>(OpKind::all_gather)] =
      OpDef{.name = "all_gather", .infer = infer_all_gather, .recomputable = false, .comm_factor = ring_half};
  r[static_cast<size_t>(OpKind::all_gather_into)] = OpDef{.name = "all_gather_into", .min_inputs = 2, .max_inputs = 2,
                                                          .infer = infer_gather_into, .mutates = {0},
                                                          .recomputable = false, .comm_factor = ring_half};
  r[static_cast<size_t>(OpKind::shard)] = OpDef{.name = "shard", .infer = infer_to_shard, .recomputable = false};
}

}  // namespace dlmem::ir::ops
