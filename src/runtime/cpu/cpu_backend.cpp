// The cpu backend: "device" memory is ordinary host memory (the executor makes it one
// arena of exactly the budget), copy streams are threads, kernels are oneDNN
// primitives (src/runtime/cpu/kernels.h).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "runtime/backend.h"
#include "runtime/comm.h"
#include "runtime/op_args.h"
#include "runtime/cpu/copy_engine.h"
#include "runtime/cpu/kernels.h"
#include "util/error.h"

namespace dlmem::runtime {

namespace {

using ir::OpKind;
using ir::Shape;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuOptions& o) : ctx_(o.threads) {}
  ~CpuBackend() override { copies_.synchronize(); }

  std::string name() const override { return "cpu"; }

  // The communicator of a data-parallel rank's graph (Backend::set_communicator).
  Communicator& comm() const {
    if (!comm_) throw Error("the graph has communication nodes but no communicator: run it with --data-parallel");
    return *comm_;
  }

  void* allocate(Space, uint64_t bytes) override {
    const uint64_t rounded = std::max<uint64_t>(4096, (bytes + 4095) / 4096 * 4096);
    void* p = std::aligned_alloc(4096, rounded);
    if (!p) throw OutOfMemory("cannot allocate ", bytes, " bytes of host memory");
    return p;
  }
  void deallocate(Space, void* p) override { std::free(p); }
  void upload(void* dst, const void* src, uint64_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, uint64_t bytes) override { std::memcpy(dst, src, bytes); }

  Event copy_async(Stream s, void* dst, const void* src, uint64_t bytes) override {
    return copies_.copy(s, dst, src, bytes);
  }
  void wait_event(Stream waiter, Event e) override { copies_.wait(waiter, e); }
  bool query(Event e) override { return copies_.done(e); }
  void synchronize() override { copies_.synchronize(); }

  uint64_t workspace_bytes(const ir::Graph& g, const ir::Node& n) override;
  void run(const ir::Graph& g, const ir::Node& n, const KernelArgs& a) override;

 private:
  cpu::Context ctx_;
  cpu::CopyEngine copies_;
};

uint64_t CpuBackend::workspace_bytes(const ir::Graph& g, const ir::Node& n) {
  auto shape = [&](ir::ValueId v) -> const Shape& { return g.value(v).type.shape; };
  const ir::Attrs& at = n.attrs;
  switch (n.op) {
    case OpKind::conv2d:
      return cpu::conv2d_fwd_scratch_bytes(ctx_, conv_shape(g, n), at.has_bias);
    case OpKind::conv2d_bwd_data:
      return cpu::conv2d_bwd_data_scratch_bytes(ctx_, conv_shape(g, n));
    case OpKind::conv2d_bwd_weight:
      return cpu::conv2d_bwd_weight_scratch_bytes(ctx_, conv_shape(g, n), at.has_bias);
    case OpKind::max_pool2d: return cpu::max_pool2d_fwd_scratch_bytes(ctx_, pool_shape(g, n));
    case OpKind::max_pool2d_bwd: return cpu::max_pool2d_bwd_scratch_bytes(ctx_, pool_shape(g, n));
    case OpKind::avg_pool2d: return cpu::avg_pool2d_fwd_scratch_bytes(ctx_, pool_shape(g, n));
    case OpKind::avg_pool2d_bwd: return cpu::avg_pool2d_bwd_scratch_bytes(ctx_, pool_shape(g, n));
    case OpKind::global_avg_pool: return cpu::avg_pool2d_fwd_scratch_bytes(ctx_, pool_shape(g, n));
    case OpKind::global_avg_pool_bwd: return cpu::avg_pool2d_bwd_scratch_bytes(ctx_, pool_shape(g, n));
    case OpKind::batch_norm: {
      const BatchNormDims d = batch_norm_dims(g, n);
      return cpu::batch_norm_fwd_scratch_bytes(ctx_, d.n, d.c, d.hw, at.training);
    }
    case OpKind::batch_norm_bwd: {
      const BatchNormDims d = batch_norm_dims(g, n);
      return cpu::batch_norm_bwd_scratch_bytes(ctx_, d.n, d.c, d.hw);
    }
    case OpKind::layer_norm: {
      const RowDims d = row_dims(g, n);
      return cpu::layer_norm_fwd_scratch_bytes(ctx_, d.rows, d.cols);
    }
    case OpKind::layer_norm_bwd: {
      const RowDims d = row_dims(g, n);
      return cpu::layer_norm_bwd_scratch_bytes(ctx_, d.rows, d.cols);
    }
    case OpKind::linear:
    case OpKind::linear_bwd_data:
    case OpKind::linear_bwd_weight:
    case OpKind::matmul: {
      // linear's bias is part of its primitive; linear_bwd_weight's is a separate sum.
      const MatmulDims d = matmul_dims(g, n);
      return cpu::matmul_scratch_bytes(ctx_, d.batch, d.m, d.n, d.k, d.trans_a, d.trans_b,
                                       n.op == OpKind::linear && d.bias);
    }
    case OpKind::reduce_sum: {
      const Shape& x = shape(n.inputs[0]);
      auto y = broadcast_dims(at.shape, x.size());
      return cpu::reduce_sum_scratch_bytes(ctx_, static_cast<int>(x.size()), x.data(), y.data());
    }
    case OpKind::allreduce:
      if (n.inputs.size() > 1) {  // a bucket: packed, reduced at once, unpacked
        int64_t total = 0;
        for (ir::ValueId v : n.inputs) total += g.value(v).type.numel();
        return static_cast<uint64_t>(total + comm().workspace_floats(total, false)) * sizeof(float);
      }
      return static_cast<uint64_t>(comm().workspace_floats(g.value(n.inputs[0]).type.numel(), false)) * sizeof(float);
    case OpKind::reduce_scatter:
      return static_cast<uint64_t>(comm().workspace_floats(g.value(n.inputs[0]).type.numel(), true)) * sizeof(float);
    default: return 0;
  }
}

void CpuBackend::run(const ir::Graph& g, const ir::Node& n, const KernelArgs& a) {
  auto shape = [&](ir::ValueId v) -> const Shape& { return g.value(v).type.shape; };
  auto in = [&](size_t i) { return static_cast<const float*>(a.inputs[i]); };
  auto out = [&](size_t i) { return static_cast<float*>(a.outputs[i]); };
  auto in_u8 = [&](size_t i) { return static_cast<const uint8_t*>(a.inputs[i]); };
  auto in_i32 = [&](size_t i) { return static_cast<const int32_t*>(a.inputs[i]); };
  const ir::Attrs& at = n.attrs;
  const Shape& x0 = shape(n.inputs.empty() ? n.outputs[0] : n.inputs[0]);
  void* ws = a.workspace;

  try {
    switch (n.op) {
      case OpKind::conv2d:
        cpu::conv2d_fwd(ctx_, conv_shape(g, n), in(0), in(1), at.has_bias ? in(2) : nullptr, out(0), ws);
        break;
      case OpKind::conv2d_bwd_data:
        cpu::conv2d_bwd_data(ctx_, conv_shape(g, n), in(0), in(1), out(0), ws);
        break;
      case OpKind::conv2d_bwd_weight:
        cpu::conv2d_bwd_weight(ctx_, conv_shape(g, n), in(0), in(1), out(0), at.has_bias ? out(1) : nullptr, ws);
        break;
      case OpKind::linear:
      case OpKind::linear_bwd_data:
      case OpKind::linear_bwd_weight:
      case OpKind::matmul: {
        const MatmulDims d = matmul_dims(g, n);
        const bool fused_bias = n.op == OpKind::linear && d.bias;
        cpu::matmul(ctx_, d.batch, d.m, d.n, d.k, d.trans_a, d.trans_b, in(0), in(1), fused_bias ? in(2) : nullptr,
                    out(0), ws);
        if (n.op == OpKind::linear_bwd_weight && d.bias) cpu::bias_grad(ctx_, d.k, d.m, in(0), out(1));
        break;
      }
      case OpKind::add:
      case OpKind::mul:
      case OpKind::sub:
      case OpKind::div: {
        auto bd = broadcast_dims(shape(n.inputs[1]), x0.size());
        const cpu::Binary op = n.op == OpKind::add   ? cpu::Binary::add
                               : n.op == OpKind::mul ? cpu::Binary::mul
                               : n.op == OpKind::sub ? cpu::Binary::sub
                                                     : cpu::Binary::div;
        cpu::binary(ctx_, op, static_cast<int>(x0.size()), x0.data(), bd.data(), in(0), in(1), out(0));
        break;
      }
      case OpKind::pow:
      case OpKind::sqrt:
      case OpKind::erf:
      case OpKind::exp:
      case OpKind::log:
      case OpKind::leaky_relu: {
        const cpu::Math m = n.op == OpKind::pow    ? cpu::Math::pow
                            : n.op == OpKind::sqrt ? cpu::Math::sqrt
                            : n.op == OpKind::erf  ? cpu::Math::erf
                            : n.op == OpKind::exp  ? cpu::Math::exp
                            : n.op == OpKind::log  ? cpu::Math::log
                                                   : cpu::Math::leaky_relu;
        cpu::math_fwd(ctx_, m, numel(x0), static_cast<float>(at.alpha), in(0), out(0));
        break;
      }
      case OpKind::erf_bwd: cpu::erf_bwd(ctx_, numel(x0), in(0), in(1), out(0)); break;
      case OpKind::leaky_relu_bwd:
        cpu::leaky_relu_bwd(ctx_, numel(x0), static_cast<float>(at.alpha), in(0), in(1), out(0));
        break;
      case OpKind::expand: {
        auto xd = broadcast_dims(x0, at.shape.size());
        cpu::expand(ctx_, static_cast<int>(at.shape.size()), xd.data(), at.shape.data(), in(0), out(0));
        break;
      }
      case OpKind::log_softmax:
        cpu::log_softmax_fwd(ctx_, row_dims(g, n).rows, row_dims(g, n).cols, in(0), out(0));
        break;
      case OpKind::log_softmax_bwd:
        cpu::log_softmax_bwd(ctx_, row_dims(g, n).rows, row_dims(g, n).cols, in(0), in(1), out(0));
        break;
      case OpKind::scale: cpu::scale(ctx_, numel(x0), static_cast<float>(at.alpha), in(0), out(0)); break;
      case OpKind::relu:
      case OpKind::relu6:
      case OpKind::gelu:
      case OpKind::tanh:
      case OpKind::sigmoid: cpu::eltwise_fwd(ctx_, eltwise_of(n.op), numel(x0), in(0), out(0)); break;
      case OpKind::relu_bwd:
      case OpKind::relu6_bwd:
      case OpKind::gelu_bwd:
      case OpKind::tanh_bwd:
      case OpKind::sigmoid_bwd: cpu::eltwise_bwd(ctx_, eltwise_of(n.op), numel(x0), in(0), in(1), out(0)); break;
      case OpKind::dropout:
        // A data-parallel rank's rows are elements [rank n, (rank + 1) n) of the global
        // batch's tensor: the same mask as one process drawing the whole batch.
        cpu::dropout_fwd(ctx_, numel(x0), static_cast<float>(at.p), at.seed, a.step, in(0), out(0),
                         static_cast<uint8_t*>(a.outputs[1]), at.rank * numel(x0));
        break;
      case OpKind::dropout_bwd: cpu::dropout_bwd(ctx_, numel(x0), static_cast<float>(at.p), in(0), in_u8(1), out(0)); break;
      case OpKind::max_pool2d:
        cpu::max_pool2d_fwd(ctx_, pool_shape(g, n), in(0), out(0), static_cast<uint8_t*>(a.outputs[1]), ws);
        break;
      case OpKind::max_pool2d_bwd: cpu::max_pool2d_bwd(ctx_, pool_shape(g, n), in(0), in_u8(1), out(0), ws); break;
      case OpKind::avg_pool2d:
      case OpKind::global_avg_pool: cpu::avg_pool2d_fwd(ctx_, pool_shape(g, n), in(0), out(0), ws); break;
      case OpKind::avg_pool2d_bwd:
      case OpKind::global_avg_pool_bwd: cpu::avg_pool2d_bwd(ctx_, pool_shape(g, n), in(0), out(0), ws); break;
      case OpKind::batch_norm: {
        const BatchNormDims d = batch_norm_dims(g, n);
        float* rm = static_cast<float*>(a.inputs[3]);
        float* rv = static_cast<float*>(a.inputs[4]);
        if (at.training) {
          cpu::batch_norm_fwd_training(ctx_, d.n, d.c, d.hw, static_cast<float>(at.eps), in(0), in(1), in(2), out(0),
                                       out(1), out(2), ws);
          if (!a.recompute)
            cpu::batch_norm_update_running(ctx_, d.c, d.n * d.hw, static_cast<float>(at.momentum), out(1), out(2), rm,
                                           rv, at.unbiased);
        } else {
          cpu::batch_norm_fwd_inference(ctx_, d.n, d.c, d.hw, static_cast<float>(at.eps), in(0), in(1), in(2), rm, rv,
                                        out(0), ws);
        }
        break;
      }
      case OpKind::batch_norm_bwd: {
        const BatchNormDims d = batch_norm_dims(g, n);
        cpu::batch_norm_bwd(ctx_, d.n, d.c, d.hw, static_cast<float>(at.eps), in(0), in(1), in(2), in(3), in(4),
                            out(0), out(1), out(2), ws);
        break;
      }
      case OpKind::layer_norm:
        cpu::layer_norm_fwd(ctx_, row_dims(g, n).rows, row_dims(g, n).cols, static_cast<float>(at.eps), in(0), in(1), in(2),
                            out(0), out(1), out(2), ws);
        break;
      case OpKind::layer_norm_bwd:
        cpu::layer_norm_bwd(ctx_, row_dims(g, n).rows, row_dims(g, n).cols, static_cast<float>(at.eps), in(0), in(1), in(2),
                            in(3), in(4), out(0), out(1), out(2), ws);
        break;
      case OpKind::softmax: cpu::softmax_fwd(ctx_, row_dims(g, n).rows, row_dims(g, n).cols, in(0), out(0)); break;
      case OpKind::softmax_bwd:
        cpu::softmax_bwd(ctx_, row_dims(g, n).rows, row_dims(g, n).cols, in(0), in(1), out(0));
        break;
      case OpKind::causal_mask: {
        const int64_t t = x0.back();
        cpu::causal_mask_fwd(ctx_, numel(x0) / (t * t), t, in(0), out(0));
        break;
      }
      case OpKind::causal_mask_bwd: {
        const int64_t t = x0.back();
        cpu::causal_mask_bwd(ctx_, numel(x0) / (t * t), t, in(0), out(0));
        break;
      }
      case OpKind::softmax_xent:
        cpu::softmax_xent_fwd(ctx_, row_dims(g, n).rows, row_dims(g, n).cols, in(0), in_i32(1), out(0), out(1));
        break;
      case OpKind::softmax_xent_bwd:
        cpu::softmax_xent_bwd(ctx_, row_dims(g, n).rows, row_dims(g, n).cols, in(0), in(1), in_i32(2), out(0));
        break;
      case OpKind::concat: {
        std::vector<const int64_t*> dims;
        std::vector<const float*> ptrs;
        for (size_t i = 0; i < n.inputs.size(); ++i) {
          dims.push_back(shape(n.inputs[i]).data());
          ptrs.push_back(in(i));
        }
        cpu::concat(ctx_, static_cast<int>(x0.size()), dims.data(), static_cast<int>(dims.size()),
                    axis_of(at.axis, x0.size()), ptrs.data(), out(0));
        break;
      }
      case OpKind::slice: {
        cpu::slice(ctx_, static_cast<int>(x0.size()), x0.data(), axis_of(at.axis, x0.size()), at.start, at.length,
                   in(0), out(0));
        break;
      }
      case OpKind::slice_bwd: {
        cpu::slice_bwd(ctx_, static_cast<int>(at.shape.size()), at.shape.data(), axis_of(at.axis, at.shape.size()),
                       at.start, at.length, in(0), out(0));
        break;
      }
      case OpKind::transpose: {
        std::vector<int> perm(at.perm.begin(), at.perm.end());
        cpu::transpose(ctx_, static_cast<int>(x0.size()), x0.data(), perm.data(), in(0), out(0));
        break;
      }
      case OpKind::reshape:
        if (a.outputs[0] != a.inputs[0]) cpu::copy(ctx_, g.value(n.inputs[0]).type.bytes(), a.inputs[0], a.outputs[0]);
        break;
      case OpKind::embedding: {
        const Shape& table = shape(n.inputs[1]);
        cpu::embedding_fwd(ctx_, numel(x0), table[0], table[1], in_i32(0), in(1), out(0));
        break;
      }
      case OpKind::embedding_bwd:
        cpu::embedding_bwd(ctx_, numel(shape(n.inputs[1])), at.shape[0], at.shape[1], in_i32(1), in(0), out(0));
        break;
      case OpKind::fill: cpu::fill(ctx_, numel(shape(n.outputs[0])), static_cast<float>(at.alpha), out(0)); break;
      case OpKind::reduce_sum: {
        auto y = broadcast_dims(at.shape, x0.size());
        cpu::reduce_sum(ctx_, static_cast<int>(x0.size()), x0.data(), y.data(), in(0), out(0), ws);
        break;
      }
      case OpKind::sgd_update:
        cpu::sgd_update(ctx_, numel(x0), static_cast<float>(at.lr), static_cast<float>(at.momentum),
                        static_cast<float>(at.weight_decay), a.step == 0, static_cast<float*>(a.inputs[0]), in(1),
                        static_cast<float*>(a.inputs[2]));
        break;
      case OpKind::adam_update:
        cpu::adam_update(ctx_, numel(x0), static_cast<float>(at.lr), static_cast<float>(at.beta1),
                         static_cast<float>(at.beta2), static_cast<float>(at.eps), static_cast<float>(at.weight_decay),
                         static_cast<int64_t>(a.step) + 1, static_cast<float*>(a.inputs[0]), in(1),
                         static_cast<float*>(a.inputs[2]), static_cast<float*>(a.inputs[3]));
        break;
      // Data parallelism (runtime/comm.h): the collectives on this rank's buffers.
      case OpKind::allreduce: {
        if (n.inputs.size() == 1) {
          comm().allreduce_mean(in(0), out(0), numel(x0), static_cast<float*>(a.workspace));
          break;
        }
        // A bucket: one collective over the packed gradients (the same element-wise
        // rank-order sums, so the same bits as one collective per tensor).
        float* packed = static_cast<float*>(a.workspace);
        int64_t total = 0;
        for (size_t i = 0; i < n.inputs.size(); ++i) {
          const int64_t k = numel(shape(n.inputs[i]));
          std::copy(in(i), in(i) + k, packed + total);
          total += k;
        }
        comm().allreduce_mean(packed, packed, total, packed + total);
        total = 0;
        for (size_t i = 0; i < n.outputs.size(); ++i) {
          const int64_t k = numel(shape(n.outputs[i]));
          std::copy(packed + total, packed + total + k, out(i));
          total += k;
        }
        break;
      }
      case OpKind::reduce_scatter:
        comm().reduce_scatter_mean(in(0), out(0), numel(x0), static_cast<float*>(a.workspace));
        break;
      case OpKind::all_gather: comm().all_gather(in(0), out(0), numel(at.shape)); break;
      case OpKind::all_gather_into: comm().all_gather(in(1), static_cast<float*>(a.inputs[0]), numel(x0)); break;
      case OpKind::shard: {
        const int64_t n_all = numel(x0), s = shard_size(n_all, at.ranks);
        const int64_t lo = std::min(n_all, at.rank * s), hi = std::min(n_all, lo + s);
        std::copy(in(0) + lo, in(0) + hi, out(0));
        std::fill(out(0) + (hi - lo), out(0) + s, 0.f);
        break;
      }
      case OpKind::external:
        throw Error("node '", n.name, "' is a node of an external graph (dlmem remat): it has a cost and a size, no kernel");
      case OpKind::kCount: DLMEM_CHECK(false, "invalid op kind");
    }
  } catch (const std::invalid_argument& e) {
    // Data errors a user can cause (a label or token id out of range).
    throw Error("node '", n.name, "': ", e.what());
  }
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& o) { return std::make_unique<CpuBackend>(o); }

void attach_workspaces(ir::Graph& g, Backend& be) {
  for (ir::NodeId id = 0; id < g.num_nodes(); ++id) {
    if (g.node(id).workspace != ir::kNoValue) continue;
    const uint64_t b = be.workspace_bytes(g, g.node(id));
    if (b > 0) g.add_workspace(id, b);
  }
}

}  // namespace dlmem::runtime
