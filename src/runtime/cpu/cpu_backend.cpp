// The cpu backend: "device" memory is ordinary host memory (the executor makes it one
// arena of exactly the budget), copy streams are threads, kernels are oneDNN
// primitives (src/runtime/cpu/kernels.h).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "runtime/backend.h"
#include "runtime/cpu/copy_engine.h"
#include "runtime/cpu/kernels.h"
#include "util/error.h"

namespace dlmem::runtime {

namespace {

using ir::OpKind;
using ir::Shape;

cpu::Conv2dShape conv_shape(const Shape& x, const Shape& w, const ir::Attrs& a) {
  cpu::Conv2dShape s;
  s.n = x[0];
  s.c = x[1];
  s.h = x[2];
  s.w = x[3];
  s.k = w[0];
  s.r = w[2];
  s.s = w[3];
  s.stride_h = a.stride[0];
  s.stride_w = a.stride[1];
  s.pad_h = a.padding[0];
  s.pad_w = a.padding[1];
  s.dil_h = a.dilation[0];
  s.dil_w = a.dilation[1];
  s.groups = a.groups;
  s.infer_output();
  return s;
}

cpu::Pool2dShape pool_shape(const Shape& x, const ir::Attrs& a) {
  cpu::Pool2dShape s;
  s.n = x[0];
  s.c = x[1];
  s.h = x[2];
  s.w = x[3];
  s.kh = a.kernel[0];
  s.kw = a.kernel[1];
  s.stride_h = a.stride[0];
  s.stride_w = a.stride[1];
  s.pad_h = a.padding[0];
  s.pad_w = a.padding[1];
  s.ceil_mode = a.ceil_mode;
  s.count_include_pad = a.count_include_pad;
  s.infer_output();
  return s;
}

cpu::Pool2dShape global_pool_shape(const Shape& x) {
  cpu::Pool2dShape s;
  s.n = x[0];
  s.c = x[1];
  s.h = x[2];
  s.w = x[3];
  s.kh = x[2];
  s.kw = x[3];
  s.infer_output();
  return s;
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Batch dims product, m, n, k of a matmul node from its input shapes.
struct MM {
  int64_t batch, m, n, k;
};
MM mm_dims(const Shape& a, const Shape& b, const ir::Attrs& at) {
  const size_t r = a.size();
  MM d;
  d.batch = 1;
  for (size_t i = 0; i + 2 < r; ++i) d.batch *= a[i];
  d.m = at.trans_a ? a[r - 1] : a[r - 2];
  d.k = at.trans_a ? a[r - 2] : a[r - 1];
  d.n = at.trans_b ? b[r - 2] : b[r - 1];
  return d;
}

// b's dims left-padded with 1s to a's rank.
std::vector<int64_t> pad_to(const Shape& b, size_t rank) {
  std::vector<int64_t> out(rank - b.size(), 1);
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<int64_t> nchw_of_bn(const Shape& x) {
  // [N,C,H,W] or [N,C]: (n, c, hw)
  int64_t hw = 1;
  for (size_t i = 2; i < x.size(); ++i) hw *= x[i];
  return {x[0], x[1], hw};
}

cpu::Eltwise eltwise_of(OpKind k) {
  switch (k) {
    case OpKind::relu: case OpKind::relu_bwd: return cpu::Eltwise::relu;
    case OpKind::relu6: case OpKind::relu6_bwd: return cpu::Eltwise::relu6;
    case OpKind::gelu: case OpKind::gelu_bwd: return cpu::Eltwise::gelu;
    case OpKind::tanh: case OpKind::tanh_bwd: return cpu::Eltwise::tanh;
    default: return cpu::Eltwise::sigmoid;
  }
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuOptions& o) : ctx_(o.threads) {}
  ~CpuBackend() override { copies_.synchronize(); }

  std::string name() const override { return "cpu"; }

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
      return cpu::conv2d_fwd_scratch_bytes(ctx_, conv_shape(shape(n.inputs[0]), shape(n.inputs[1]), at), at.has_bias);
    case OpKind::conv2d_bwd_data:
      return cpu::conv2d_bwd_data_scratch_bytes(ctx_, conv_shape(at.shape, shape(n.inputs[1]), at));
    case OpKind::conv2d_bwd_weight:
      return cpu::conv2d_bwd_weight_scratch_bytes(ctx_, conv_shape(shape(n.inputs[1]), shape(n.outputs[0]), at),
                                                  at.has_bias);
    case OpKind::max_pool2d: return cpu::max_pool2d_fwd_scratch_bytes(ctx_, pool_shape(shape(n.inputs[0]), at));
    case OpKind::max_pool2d_bwd: return cpu::max_pool2d_bwd_scratch_bytes(ctx_, pool_shape(at.shape, at));
    case OpKind::avg_pool2d: return cpu::avg_pool2d_fwd_scratch_bytes(ctx_, pool_shape(shape(n.inputs[0]), at));
    case OpKind::avg_pool2d_bwd: return cpu::avg_pool2d_bwd_scratch_bytes(ctx_, pool_shape(at.shape, at));
    case OpKind::global_avg_pool:
      return cpu::avg_pool2d_fwd_scratch_bytes(ctx_, global_pool_shape(shape(n.inputs[0])));
    case OpKind::global_avg_pool_bwd: return cpu::avg_pool2d_bwd_scratch_bytes(ctx_, global_pool_shape(at.shape));
    case OpKind::batch_norm: {
      auto d = nchw_of_bn(shape(n.inputs[0]));
      return cpu::batch_norm_fwd_scratch_bytes(ctx_, d[0], d[1], d[2], at.training);
    }
    case OpKind::batch_norm_bwd: {
      auto d = nchw_of_bn(shape(n.inputs[0]));
      return cpu::batch_norm_bwd_scratch_bytes(ctx_, d[0], d[1], d[2]);
    }
    case OpKind::layer_norm: {
      const Shape& x = shape(n.inputs[0]);
      return cpu::layer_norm_fwd_scratch_bytes(ctx_, numel(x) / x.back(), x.back());
    }
    case OpKind::layer_norm_bwd: {
      const Shape& x = shape(n.inputs[0]);
      return cpu::layer_norm_bwd_scratch_bytes(ctx_, numel(x) / x.back(), x.back());
    }
    case OpKind::linear: {
      const Shape& x = shape(n.inputs[0]);
      const Shape& w = shape(n.inputs[1]);
      return cpu::matmul_scratch_bytes(ctx_, 1, numel(x) / w[1], w[0], w[1], false, true, at.has_bias);
    }
    case OpKind::linear_bwd_data: {
      const Shape& dy = shape(n.inputs[0]);
      const Shape& w = shape(n.inputs[1]);
      return cpu::matmul_scratch_bytes(ctx_, 1, numel(dy) / w[0], w[1], w[0], false, false, false);
    }
    case OpKind::linear_bwd_weight: {
      const Shape& dy = shape(n.inputs[0]);
      const Shape& x = shape(n.inputs[1]);
      return cpu::matmul_scratch_bytes(ctx_, 1, dy.back(), x.back(), numel(dy) / dy.back(), true, false, false);
    }
    case OpKind::matmul: {
      MM d = mm_dims(shape(n.inputs[0]), shape(n.inputs[1]), at);
      return cpu::matmul_scratch_bytes(ctx_, d.batch, d.m, d.n, d.k, at.trans_a, at.trans_b, false);
    }
    case OpKind::reduce_sum: {
      const Shape& x = shape(n.inputs[0]);
      auto y = pad_to(at.shape, x.size());
      return cpu::reduce_sum_scratch_bytes(ctx_, static_cast<int>(x.size()), x.data(), y.data());
    }
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
        cpu::conv2d_fwd(ctx_, conv_shape(x0, shape(n.inputs[1]), at), in(0), in(1), at.has_bias ? in(2) : nullptr,
                        out(0), ws);
        break;
      case OpKind::conv2d_bwd_data:
        cpu::conv2d_bwd_data(ctx_, conv_shape(at.shape, shape(n.inputs[1]), at), in(0), in(1), out(0), ws);
        break;
      case OpKind::conv2d_bwd_weight:
        cpu::conv2d_bwd_weight(ctx_, conv_shape(shape(n.inputs[1]), shape(n.outputs[0]), at), in(0), in(1), out(0),
                               at.has_bias ? out(1) : nullptr, ws);
        break;
      case OpKind::linear: {
        const Shape& w = shape(n.inputs[1]);
        cpu::matmul(ctx_, 1, numel(x0) / w[1], w[0], w[1], false, true, in(0), in(1), at.has_bias ? in(2) : nullptr,
                    out(0), ws);
        break;
      }
      case OpKind::linear_bwd_data: {
        const Shape& w = shape(n.inputs[1]);
        cpu::matmul(ctx_, 1, numel(x0) / w[0], w[1], w[0], false, false, in(0), in(1), nullptr, out(0), ws);
        break;
      }
      case OpKind::linear_bwd_weight: {
        const Shape& x = shape(n.inputs[1]);
        const int64_t rows = numel(x0) / x0.back();
        cpu::matmul(ctx_, 1, x0.back(), x.back(), rows, true, false, in(0), in(1), nullptr, out(0), ws);
        if (at.has_bias) cpu::bias_grad(ctx_, rows, x0.back(), in(0), out(1));
        break;
      }
      case OpKind::matmul: {
        MM d = mm_dims(x0, shape(n.inputs[1]), at);
        cpu::matmul(ctx_, d.batch, d.m, d.n, d.k, at.trans_a, at.trans_b, in(0), in(1), nullptr, out(0), ws);
        break;
      }
      case OpKind::add:
      case OpKind::mul: {
        auto bd = pad_to(shape(n.inputs[1]), x0.size());
        cpu::binary(ctx_, n.op == OpKind::add ? cpu::Binary::add : cpu::Binary::mul, static_cast<int>(x0.size()),
                    x0.data(), bd.data(), in(0), in(1), out(0));
        break;
      }
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
        cpu::dropout_fwd(ctx_, numel(x0), static_cast<float>(at.p), at.seed, a.step, in(0), out(0),
                         static_cast<uint8_t*>(a.outputs[1]));
        break;
      case OpKind::dropout_bwd: cpu::dropout_bwd(ctx_, numel(x0), static_cast<float>(at.p), in(0), in_u8(1), out(0)); break;
      case OpKind::max_pool2d:
        cpu::max_pool2d_fwd(ctx_, pool_shape(x0, at), in(0), out(0), static_cast<uint8_t*>(a.outputs[1]), ws);
        break;
      case OpKind::max_pool2d_bwd: cpu::max_pool2d_bwd(ctx_, pool_shape(at.shape, at), in(0), in_u8(1), out(0), ws); break;
      case OpKind::avg_pool2d: cpu::avg_pool2d_fwd(ctx_, pool_shape(x0, at), in(0), out(0), ws); break;
      case OpKind::avg_pool2d_bwd: cpu::avg_pool2d_bwd(ctx_, pool_shape(at.shape, at), in(0), out(0), ws); break;
      case OpKind::global_avg_pool: cpu::avg_pool2d_fwd(ctx_, global_pool_shape(x0), in(0), out(0), ws); break;
      case OpKind::global_avg_pool_bwd: cpu::avg_pool2d_bwd(ctx_, global_pool_shape(at.shape), in(0), out(0), ws); break;
      case OpKind::batch_norm: {
        auto d = nchw_of_bn(x0);
        float* rm = static_cast<float*>(a.inputs[3]);
        float* rv = static_cast<float*>(a.inputs[4]);
        if (at.training) {
          cpu::batch_norm_fwd_training(ctx_, d[0], d[1], d[2], static_cast<float>(at.eps), in(0), in(1), in(2), out(0),
                                       out(1), out(2), ws);
          if (!a.recompute)
            cpu::batch_norm_update_running(ctx_, d[1], d[0] * d[2], static_cast<float>(at.momentum), out(1), out(2),
                                           rm, rv);
        } else {
          cpu::batch_norm_fwd_inference(ctx_, d[0], d[1], d[2], static_cast<float>(at.eps), in(0), in(1), in(2), rm, rv,
                                        out(0), ws);
        }
        break;
      }
      case OpKind::batch_norm_bwd: {
        auto d = nchw_of_bn(x0);
        cpu::batch_norm_bwd(ctx_, d[0], d[1], d[2], static_cast<float>(at.eps), in(0), in(1), in(2), in(3), in(4),
                            out(0), out(1), out(2), ws);
        break;
      }
      case OpKind::layer_norm:
        cpu::layer_norm_fwd(ctx_, numel(x0) / x0.back(), x0.back(), static_cast<float>(at.eps), in(0), in(1), in(2),
                            out(0), out(1), out(2), ws);
        break;
      case OpKind::layer_norm_bwd:
        cpu::layer_norm_bwd(ctx_, numel(x0) / x0.back(), x0.back(), static_cast<float>(at.eps), in(0), in(1), in(2),
                            in(3), in(4), out(0), out(1), out(2), ws);
        break;
      case OpKind::softmax: cpu::softmax_fwd(ctx_, numel(x0) / x0.back(), x0.back(), in(0), out(0)); break;
      case OpKind::softmax_bwd: cpu::softmax_bwd(ctx_, numel(x0) / x0.back(), x0.back(), in(0), in(1), out(0)); break;
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
        cpu::softmax_xent_fwd(ctx_, numel(x0) / x0.back(), x0.back(), in(0), in_i32(1), out(0), out(1));
        break;
      case OpKind::softmax_xent_bwd: {
        const Shape& p = shape(n.inputs[1]);
        cpu::softmax_xent_bwd(ctx_, numel(p) / p.back(), p.back(), in(0), in(1), in_i32(2), out(0));
        break;
      }
      case OpKind::concat: {
        std::vector<const int64_t*> dims;
        std::vector<const float*> ptrs;
        for (size_t i = 0; i < n.inputs.size(); ++i) {
          dims.push_back(shape(n.inputs[i]).data());
          ptrs.push_back(in(i));
        }
        int64_t axis = at.axis < 0 ? at.axis + static_cast<int64_t>(x0.size()) : at.axis;
        cpu::concat(ctx_, static_cast<int>(x0.size()), dims.data(), static_cast<int>(dims.size()), static_cast<int>(axis),
                    ptrs.data(), out(0));
        break;
      }
      case OpKind::slice: {
        int64_t axis = at.axis < 0 ? at.axis + static_cast<int64_t>(x0.size()) : at.axis;
        cpu::slice(ctx_, static_cast<int>(x0.size()), x0.data(), static_cast<int>(axis), at.start, at.length, in(0),
                   out(0));
        break;
      }
      case OpKind::slice_bwd: {
        int64_t axis = at.axis < 0 ? at.axis + static_cast<int64_t>(at.shape.size()) : at.axis;
        cpu::slice_bwd(ctx_, static_cast<int>(at.shape.size()), at.shape.data(), static_cast<int>(axis), at.start,
                       at.length, in(0), out(0));
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
        auto y = pad_to(at.shape, x0.size());
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
