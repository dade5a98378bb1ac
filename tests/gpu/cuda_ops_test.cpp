// Every op kind on the cuda backend against the cpu backend (the reference), on the
// same inputs: equal within stated tolerances (bit for bit where both compute the
// same float expressions: dropout, optimizers, data movement, pooling indices); and
// on the GPU itself bit-identical run to run and whether or not an output is
// written over an input (every in-place pair of the op registry).
//
// Tolerances: convolutions and GEMMs sum K products in a different order (cuDNN and
// cuBLAS vs oneDNN): |gpu - cpu| <= 1e-5 + 2e-4 |cpu| for unit-normal inputs with
// K <= 600. Transcendentals (exp, erf, tanh) differ in the last ulps: same bound.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <set>

#include "gpu/gpu_test_util.h"
#include "ir/graph.h"
#include "util/error.h"

namespace dlmem::runtime {
namespace {

using ir::DType;
using ir::OpKind;
using ir::Role;
using ir::Shape;
using ir::ValueId;
using Bytes = std::vector<std::byte>;

struct OpCase {
  std::string name;
  std::function<void(ir::Graph&)> build;  // adds the inputs and exactly one node
  bool exact = false;                     // bit-identical to the cpu backend
  double rtol = 2e-4, atol = 1e-5;
};

// Deterministic inputs: f32 unit normals (positive for variances and Adam's v),
// i32 labels / ids in [0, 3), u8 in {0, 1} (dropout masks) or, for max pooling's
// index, a random in-bounds position of each window (what a forward can produce).
Bytes input_data(const ir::Graph& g, const ir::Value& v, uint32_t seed) {
  std::mt19937 rng(seed * 7919u + static_cast<uint32_t>(v.id));
  const int64_t n = v.type.numel();
  Bytes b(v.type.bytes());
  if (v.type.dtype == DType::f32) {
    std::normal_distribution<float> nd;
    std::uniform_real_distribution<float> pos(0.5f, 2.f);
    const bool positive = v.name.find("var") != std::string::npos || v.name == "v";
    for (int64_t i = 0; i < n; ++i) {
      const float x = positive ? pos(rng) : nd(rng);
      std::memcpy(b.data() + 4 * i, &x, 4);
    }
  } else if (v.type.dtype == DType::i32) {
    for (int64_t i = 0; i < n; ++i) {
      const int32_t x = static_cast<int32_t>(rng() % 3);
      std::memcpy(b.data() + 4 * i, &x, 4);
    }
  } else if (v.name == "idx") {
    const ir::Attrs& a = g.node(v.consumers.at(0)).attrs;
    const Shape& x = a.shape;
    const int64_t oh = v.type.shape[2], ow = v.type.shape[3];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t ox = i % ow, oy = (i / ow) % oh;
      const int64_t hs = oy * a.stride[0] - a.padding[0], ws = ox * a.stride[1] - a.padding[1];
      const int64_t y0 = std::max<int64_t>(0, -hs), y1 = std::min(a.kernel[0], x[2] - hs);
      const int64_t x0 = std::max<int64_t>(0, -ws), x1 = std::min(a.kernel[1], x[3] - ws);
      const int64_t ry = y0 + static_cast<int64_t>(rng() % static_cast<uint32_t>(y1 - y0));
      const int64_t rx = x0 + static_cast<int64_t>(rng() % static_cast<uint32_t>(x1 - x0));
      b[static_cast<size_t>(i)] = static_cast<std::byte>(ry * a.kernel[1] + rx);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) b[static_cast<size_t>(i)] = static_cast<std::byte>(rng() % 2);
  }
  return b;
}

// Builds the case's graph with `be`'s workspaces and runs its node: fresh device
// buffers for the inputs (uploaded from `in`), the outputs (or, for `alias` =
// {output, input}, the input's buffer) and the workspace. Returns the outputs, then
// the inputs the op mutates.
std::vector<Bytes> run_node(Backend& be, const std::function<void(ir::Graph&)>& build, const std::vector<Bytes>& in,
                            std::pair<int, int> alias = {-1, -1}, uint64_t step = 3) {
  ir::Graph g;
  build(g);
  attach_workspaces(g, be);
  const ir::Node& n = g.node(g.num_nodes() - 1);
  std::vector<void*> ins, outs;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    void* p = be.allocate(Space::device, std::max<size_t>(in[i].size(), 1));
    be.upload(p, in[i].data(), in[i].size());
    ins.push_back(p);
  }
  for (size_t o = 0; o < n.outputs.size(); ++o)
    outs.push_back(static_cast<int>(o) == alias.first
                       ? ins[static_cast<size_t>(alias.second)]
                       : be.allocate(Space::device, std::max<uint64_t>(g.value(n.outputs[o]).type.bytes(), 1)));
  void* ws = n.workspace != ir::kNoValue ? be.allocate(Space::device, g.value(n.workspace).type.bytes()) : nullptr;
  be.run(g, n, KernelArgs{ins, outs, ws, step, false});
  be.synchronize();
  std::vector<Bytes> result;
  for (size_t o = 0; o < n.outputs.size(); ++o) {
    Bytes b(g.value(n.outputs[o]).type.bytes());
    be.download(b.data(), outs[o], b.size());
    result.push_back(std::move(b));
  }
  for (int i : ir::op_def(n.op).mutates) {
    Bytes b(in[static_cast<size_t>(i)].size());
    be.download(b.data(), ins[static_cast<size_t>(i)], b.size());
    result.push_back(std::move(b));
  }
  for (size_t o = 0; o < outs.size(); ++o)
    if (static_cast<int>(o) != alias.first) be.deallocate(Space::device, outs[o]);
  for (void* p : ins) be.deallocate(Space::device, p);
  if (ws) be.deallocate(Space::device, ws);
  return result;
}

// Element types of run_node's results, in its order.
std::vector<DType> result_types(const ir::Graph& g) {
  const ir::Node& n = g.node(g.num_nodes() - 1);
  std::vector<DType> t;
  for (ValueId v : n.outputs) t.push_back(g.value(v).type.dtype);
  for (int i : ir::op_def(n.op).mutates) t.push_back(g.value(n.inputs[static_cast<size_t>(i)]).type.dtype);
  return t;
}

void expect_close(const OpCase& c, const Bytes& gpu, const Bytes& cpu, DType t, size_t which) {
  ASSERT_EQ(gpu.size(), cpu.size());
  if (t != DType::f32 || c.exact) {
    if (t == DType::f32) {  // exact float results: equal values (+0 and -0 alike)
      for (size_t i = 0; i < gpu.size() / 4; ++i) {
        float a, b;
        std::memcpy(&a, gpu.data() + 4 * i, 4);
        std::memcpy(&b, cpu.data() + 4 * i, 4);
        if (!(a == b || (std::isnan(a) && std::isnan(b)))) {
          ADD_FAILURE() << c.name << " result " << which << "[" << i << "]: gpu " << a << ", cpu " << b;
          return;
        }
      }
      return;
    }
    EXPECT_EQ(0, std::memcmp(gpu.data(), cpu.data(), gpu.size())) << c.name << " result " << which;
    return;
  }
  int bad = 0;
  for (size_t i = 0; i < gpu.size() / 4; ++i) {
    float a, b;
    std::memcpy(&a, gpu.data() + 4 * i, 4);
    std::memcpy(&b, cpu.data() + 4 * i, 4);
    if (std::isinf(b) && a == b) continue;
    if (!(std::fabs(a - b) <= c.atol + c.rtol * std::fabs(b)) && bad++ < 5)
      ADD_FAILURE() << c.name << " result " << which << "[" << i << "]: gpu " << a << ", cpu " << b;
  }
}

// ---------------------------------------------------------------- the cases

ValueId val(ir::Graph& g, const std::string& name, Shape s, DType t = DType::f32, Role r = Role::activation) {
  return g.add_value(name, ir::TensorType{std::move(s), t}, r);
}

void node(ir::Graph& g, OpKind op, ir::Attrs a, std::vector<ValueId> ins) {
  g.add_node(op, "node", std::move(a), std::move(ins), Role::activation);
}

ir::Attrs conv_attrs(int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil, int64_t groups,
                     bool bias) {
  ir::Attrs a;
  a.stride = {stride_h, stride_w};
  a.padding = {pad_h, pad_w};
  a.dilation = {dil, dil};
  a.groups = groups;
  a.has_bias = bias;
  return a;
}

ir::Attrs pool_attrs(int64_t k, int64_t s, int64_t p, bool ceil, bool include_pad, Shape x = {}) {
  ir::Attrs a;
  a.kernel = {k, k};
  a.stride = {s, s};
  a.padding = {p, p};
  a.ceil_mode = ceil;
  a.count_include_pad = include_pad;
  a.shape = std::move(x);
  return a;
}

std::vector<OpCase> cases() {
  std::vector<OpCase> v;
  auto add = [&](std::string name, std::function<void(ir::Graph&)> f, bool exact = false) {
    v.push_back({std::move(name), std::move(f), exact});
  };
  // Convolutions: grouped, strided, padded, dilated, with bias; and a plain 1x1.
  add("conv2d", [](ir::Graph& g) {
    node(g, OpKind::conv2d, conv_attrs(2, 1, 1, 2, 2, 2, true),
         {val(g, "x", {2, 6, 9, 11}), val(g, "w", {8, 3, 3, 3}), val(g, "b", {8})});
  });
  add("conv2d 1x1", [](ir::Graph& g) {
    node(g, OpKind::conv2d, conv_attrs(1, 1, 0, 0, 1, 1, false), {val(g, "x", {3, 16, 7, 7}), val(g, "w", {32, 16, 1, 1})});
  });
  add("conv2d_bwd_data", [](ir::Graph& g) {
    ir::Attrs a = conv_attrs(2, 1, 1, 2, 2, 2, false);
    a.shape = {2, 6, 9, 11};
    node(g, OpKind::conv2d_bwd_data, a, {val(g, "dy", {2, 8, 4, 11}), val(g, "w", {8, 3, 3, 3})});
  });
  add("conv2d_bwd_weight", [](ir::Graph& g) {
    ir::Attrs a = conv_attrs(2, 1, 1, 2, 2, 2, true);
    a.kernel = {3, 3};
    node(g, OpKind::conv2d_bwd_weight, a, {val(g, "dy", {2, 8, 4, 11}), val(g, "x", {2, 6, 9, 11})});
  });
  // GEMMs.
  add("linear", [](ir::Graph& g) {
    ir::Attrs a;
    a.has_bias = true;
    node(g, OpKind::linear, a, {val(g, "x", {3, 5, 40}), val(g, "w", {24, 40}), val(g, "b", {24})});
  });
  add("linear_bwd_data", [](ir::Graph& g) {
    ir::Attrs a;
    a.shape = {3, 5, 40};
    node(g, OpKind::linear_bwd_data, a, {val(g, "dy", {3, 5, 24}), val(g, "w", {24, 40})});
  });
  add("linear_bwd_weight", [](ir::Graph& g) {
    ir::Attrs a;
    a.has_bias = true;
    node(g, OpKind::linear_bwd_weight, a, {val(g, "dy", {3, 5, 24}), val(g, "x", {3, 5, 40})});
  });
  for (int t = 0; t < 4; ++t)
    add("matmul t" + std::to_string(t), [t](ir::Graph& g) {
      ir::Attrs a;
      a.trans_a = t & 1;
      a.trans_b = t & 2;
      const Shape sa = a.trans_a ? Shape{2, 3, 17, 9} : Shape{2, 3, 9, 17};
      const Shape sb = a.trans_b ? Shape{2, 3, 13, 17} : Shape{2, 3, 17, 13};
      node(g, OpKind::matmul, a, {val(g, "a", sa), val(g, "b", sb)});
    });
  // Element-wise, with broadcasting.
  for (OpKind op : {OpKind::add, OpKind::mul}) {
    const std::string nm(ir::op_name(op));
    add(nm + " same", [op](ir::Graph& g) { node(g, op, {}, {val(g, "a", {4, 5, 6}), val(g, "b", {4, 5, 6})}); }, true);
    add(nm + " row", [op](ir::Graph& g) { node(g, op, {}, {val(g, "a", {4, 5, 6}), val(g, "b", {6})}); }, true);
    add(nm + " channel", [op](ir::Graph& g) { node(g, op, {}, {val(g, "a", {2, 5, 3, 3}), val(g, "b", {5, 1, 1})}); },
        true);
    add(nm + " mixed", [op](ir::Graph& g) { node(g, op, {}, {val(g, "a", {2, 3, 4, 5}), val(g, "b", {2, 1, 4, 1})}); },
        true);
  }
  add("scale", [](ir::Graph& g) {
    ir::Attrs a;
    a.alpha = 0.37;
    node(g, OpKind::scale, a, {val(g, "x", {1000})});
  }, true);
  for (OpKind op : {OpKind::relu, OpKind::relu6, OpKind::gelu, OpKind::tanh, OpKind::sigmoid})
    add(std::string(ir::op_name(op)), [op](ir::Graph& g) { node(g, op, {}, {val(g, "x", {3, 1000})}); },
        op == OpKind::relu || op == OpKind::relu6);
  for (OpKind op : {OpKind::relu_bwd, OpKind::relu6_bwd, OpKind::gelu_bwd, OpKind::tanh_bwd, OpKind::sigmoid_bwd})
    add(std::string(ir::op_name(op)),
        [op](ir::Graph& g) { node(g, op, {}, {val(g, "dy", {3, 1000}), val(g, "saved", {3, 1000})}); },
        op == OpKind::relu_bwd || op == OpKind::relu6_bwd);
  add("dropout", [](ir::Graph& g) {
    ir::Attrs a;
    a.p = 0.3;
    a.seed = 1234;
    node(g, OpKind::dropout, a, {val(g, "x", {5, 777})});
  }, true);
  add("dropout_bwd", [](ir::Graph& g) {
    ir::Attrs a;
    a.p = 0.3;
    node(g, OpKind::dropout_bwd, a, {val(g, "dy", {5, 777}), val(g, "mask", {5, 777}, DType::u8)});
  }, true);
  add("causal_mask", [](ir::Graph& g) { node(g, OpKind::causal_mask, {}, {val(g, "x", {2, 3, 9, 9})}); }, true);
  add("causal_mask_bwd", [](ir::Graph& g) { node(g, OpKind::causal_mask_bwd, {}, {val(g, "dy", {2, 3, 9, 9})}); }, true);
  add("fill", [](ir::Graph& g) {
    ir::Attrs a;
    a.alpha = 0.25;
    a.shape = {7, 9};
    node(g, OpKind::fill, a, {});
  }, true);
  // Pooling: padding, ceil_mode (an overhanging last window), both divisors.
  add("max_pool2d", [](ir::Graph& g) { node(g, OpKind::max_pool2d, pool_attrs(3, 2, 1, true, true), {val(g, "x", {2, 3, 10, 9})}); },
      true);
  add("max_pool2d_bwd", [](ir::Graph& g) {
    node(g, OpKind::max_pool2d_bwd, pool_attrs(3, 2, 1, true, true, {2, 3, 10, 9}),
         {val(g, "dy", {2, 3, 6, 5}), val(g, "idx", {2, 3, 6, 5}, DType::u8)});
  });
  for (bool include : {true, false}) {
    const std::string suffix = include ? " include_pad" : " exclude_pad";
    add("avg_pool2d" + suffix, [include](ir::Graph& g) {
      node(g, OpKind::avg_pool2d, pool_attrs(3, 2, 1, true, include), {val(g, "x", {2, 3, 10, 9})});
    });
    add("avg_pool2d_bwd" + suffix, [include](ir::Graph& g) {
      node(g, OpKind::avg_pool2d_bwd, pool_attrs(3, 2, 1, true, include, {2, 3, 10, 9}), {val(g, "dy", {2, 3, 6, 5})});
    });
  }
  add("global_avg_pool", [](ir::Graph& g) { node(g, OpKind::global_avg_pool, {}, {val(g, "x", {3, 5, 7, 7})}); });
  add("global_avg_pool_bwd", [](ir::Graph& g) {
    ir::Attrs a;
    a.shape = {3, 5, 7, 7};
    node(g, OpKind::global_avg_pool_bwd, a, {val(g, "dy", {3, 5})});
  });
  // Normalisation.
  for (bool training : {true, false})
    add(std::string("batch_norm ") + (training ? "training" : "inference"), [training](ir::Graph& g) {
      ir::Attrs a;
      a.training = training;
      a.momentum = 0.1;
      node(g, OpKind::batch_norm, a,
           {val(g, "x", {4, 6, 5, 7}), val(g, "gamma", {6}), val(g, "beta", {6}), val(g, "running_mean", {6}),
            val(g, "running_var", {6})});
    });
  add("batch_norm [N,C]", [](ir::Graph& g) {
    node(g, OpKind::batch_norm, {},
         {val(g, "x", {16, 10}), val(g, "gamma", {10}), val(g, "beta", {10}), val(g, "running_mean", {10}),
          val(g, "running_var", {10})});
  });
  add("batch_norm_bwd", [](ir::Graph& g) {
    node(g, OpKind::batch_norm_bwd, {},
         {val(g, "x", {4, 6, 5, 7}), val(g, "dy", {4, 6, 5, 7}), val(g, "gamma", {6}), val(g, "mean", {6}),
          val(g, "var", {6})});
  });
  add("layer_norm", [](ir::Graph& g) {
    node(g, OpKind::layer_norm, {}, {val(g, "x", {3, 4, 300}), val(g, "gamma", {300}), val(g, "beta", {300})});
  });
  add("layer_norm_bwd", [](ir::Graph& g) {
    node(g, OpKind::layer_norm_bwd, {},
         {val(g, "x", {3, 4, 300}), val(g, "dy", {3, 4, 300}), val(g, "gamma", {300}), val(g, "mean", {12}),
          val(g, "var", {12})});
  });
  // Softmax and the loss.
  add("softmax", [](ir::Graph& g) { node(g, OpKind::softmax, {}, {val(g, "x", {6, 50})}); });
  add("softmax wide", [](ir::Graph& g) { node(g, OpKind::softmax, {}, {val(g, "x", {3, 3000})}); });
  add("softmax_bwd", [](ir::Graph& g) { node(g, OpKind::softmax_bwd, {}, {val(g, "dy", {6, 50}), val(g, "y", {6, 50})}); });
  add("softmax_xent", [](ir::Graph& g) {
    node(g, OpKind::softmax_xent, {}, {val(g, "logits", {70, 10}), val(g, "label", {70}, DType::i32, Role::label)});
  });
  add("softmax_xent_bwd", [](ir::Graph& g) {
    node(g, OpKind::softmax_xent_bwd, {},
         {val(g, "dloss", {1}), val(g, "probs", {70, 10}), val(g, "label", {70}, DType::i32, Role::label)});
  });
  // Data movement.
  add("concat", [](ir::Graph& g) {
    ir::Attrs a;
    a.axis = 1;
    node(g, OpKind::concat, a, {val(g, "a", {2, 3, 4}), val(g, "b", {2, 5, 4}), val(g, "c", {2, 1, 4})});
  }, true);
  add("reshape", [](ir::Graph& g) {
    ir::Attrs a;
    a.shape = {6, -1};
    node(g, OpKind::reshape, a, {val(g, "x", {2, 3, 4})});
  }, true);
  add("transpose", [](ir::Graph& g) {
    ir::Attrs a;
    a.perm = {0, 2, 1, 3};
    node(g, OpKind::transpose, a, {val(g, "x", {2, 3, 4, 5})});
  }, true);
  add("slice", [](ir::Graph& g) {
    ir::Attrs a;
    a.axis = -2;
    a.start = 1;
    a.length = 2;
    node(g, OpKind::slice, a, {val(g, "x", {2, 5, 3})});
  }, true);
  add("slice_bwd", [](ir::Graph& g) {
    ir::Attrs a;
    a.axis = 1;
    a.start = 1;
    a.length = 2;
    a.shape = {2, 5, 3};
    node(g, OpKind::slice_bwd, a, {val(g, "dy", {2, 2, 3})});
  }, true);
  add("embedding", [](ir::Graph& g) {
    node(g, OpKind::embedding, {}, {val(g, "ids", {4, 6}, DType::i32, Role::input), val(g, "table", {3, 33})});
  }, true);
  add("embedding_bwd", [](ir::Graph& g) {
    ir::Attrs a;
    a.shape = {3, 33};
    node(g, OpKind::embedding_bwd, a, {val(g, "dy", {4, 6, 33}), val(g, "ids", {4, 6}, DType::i32, Role::input)});
  }, true);
  // reduce_sum: columns, rows, a middle dim, two groups.
  for (const auto& [x, y] : std::vector<std::pair<Shape, Shape>>{
           {{300, 7}, {7}}, {{7, 300}, {7, 1}}, {{4, 9, 50}, {9, 1}}, {{3, 4, 5, 6}, {4, 1, 6}}, {{6000, 3}, {1, 1}}})
    add("reduce_sum " + ir::shape_str(x) + "->" + ir::shape_str(y), [x, y](ir::Graph& g) {
      ir::Attrs a;
      a.shape = y;
      node(g, OpKind::reduce_sum, a, {val(g, "x", x)});
    });
  // Optimizers (bit-exact: the same float expressions as torch.optim and the cpu loops).
  add("sgd_update", [](ir::Graph& g) {
    ir::Attrs a;
    a.lr = 0.05;
    a.momentum = 0.9;
    a.weight_decay = 1e-4;
    g.add_node(OpKind::sgd_update, "node", a, {val(g, "w", {500}), val(g, "dw", {500}), val(g, "m", {500})},
               Role::activation, ir::Phase::update);
  }, true);
  add("adam_update", [](ir::Graph& g) {
    ir::Attrs a;
    a.lr = 1e-3;
    a.weight_decay = 1e-2;
    g.add_node(OpKind::adam_update, "node", a,
               {val(g, "w", {500}), val(g, "dw", {500}), val(g, "m", {500}), val(g, "v", {500})}, Role::activation,
               ir::Phase::update);
  }, true);
  return v;
}

// The ops ONNX import added (issue 17) have cpu kernels only so far: the cuda backend
// refuses them by name ("no cuda kernel yet"). Each one that gets a cuda kernel moves
// out of this list and into cases().
const std::set<OpKind> kCpuOnly = {OpKind::sub,        OpKind::div,     OpKind::pow,           OpKind::sqrt,
                                   OpKind::erf,        OpKind::exp,     OpKind::log,           OpKind::leaky_relu,
                                   OpKind::log_softmax, OpKind::expand, OpKind::erf_bwd,       OpKind::leaky_relu_bwd,
                                   OpKind::log_softmax_bwd,
                                   // data parallelism: the cpu backend's collectives only (no NCCL yet)
                                   OpKind::allreduce,  OpKind::reduce_scatter, OpKind::all_gather,
                                   OpKind::all_gather_into, OpKind::shard,
                                   // external graphs' nodes (dlmem remat): planned, never run
                                   OpKind::external};

TEST(CudaOps, EveryOpKindHasACase) {
  std::set<OpKind> covered;
  for (const OpCase& c : cases()) {
    ir::Graph g;
    c.build(g);
    covered.insert(g.node(g.num_nodes() - 1).op);
  }
  for (int k = 0; k < ir::kNumOps; ++k) {
    const OpKind op = static_cast<OpKind>(k);
    if (kCpuOnly.count(op)) {
      EXPECT_FALSE(covered.count(op)) << ir::op_name(op) << " has a case: take it off kCpuOnly";
      continue;
    }
    EXPECT_TRUE(covered.count(op)) << ir::op_name(op) << " has no case";
  }
}

TEST(CudaOps, CpuOnlyOpsAreRefusedByName) {
  DLMEM_REQUIRE_GPU();
  auto gpu = make_cuda_backend();
  ir::Graph g;
  const ValueId x = g.add_value("x", {{4, 8}, ir::DType::f32}, Role::input);
  g.add_node(OpKind::sqrt, "root", {}, {x}, Role::activation);
  std::vector<Bytes> in = {input_data(g, g.value(x), 1)};
  try {
    run_node(*gpu, [](ir::Graph& h) {
      const ValueId y = h.add_value("x", {{4, 8}, ir::DType::f32}, Role::input);
      h.add_node(OpKind::sqrt, "root", {}, {y}, Role::activation);
    }, in);
    FAIL() << "sqrt ran on the cuda backend: move it out of kCpuOnly and give it a case";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no cuda kernel yet"), std::string::npos) << e.what();
  }
}

TEST(CudaOps, AgreeWithTheCpuBackend) {
  DLMEM_REQUIRE_GPU();
  auto gpu = make_cuda_backend();
  auto cpu = make_cpu_backend({.threads = 2});
  for (const OpCase& c : cases()) {
    SCOPED_TRACE(c.name);
    ir::Graph g;
    c.build(g);
    const ir::Node& n = g.node(g.num_nodes() - 1);
    std::vector<Bytes> in;
    for (ValueId v : n.inputs) in.push_back(input_data(g, g.value(v), 1));
    const auto want = run_node(*cpu, c.build, in);
    const auto got = run_node(*gpu, c.build, in);
    const auto types = result_types(g);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) expect_close(c, got[i], want[i], types[i], i);
  }
}

TEST(CudaOps, BitIdenticalRunToRunAndInPlace) {
  DLMEM_REQUIRE_GPU();
  auto gpu = make_cuda_backend();
  for (const OpCase& c : cases()) {
    SCOPED_TRACE(c.name);
    ir::Graph g;
    c.build(g);
    const ir::Node& n = g.node(g.num_nodes() - 1);
    std::vector<Bytes> in;
    for (ValueId v : n.inputs) in.push_back(input_data(g, g.value(v), 2));
    const auto first = run_node(*gpu, c.build, in);
    EXPECT_EQ(first, run_node(*gpu, c.build, in)) << "not deterministic";
    for (const auto& [o, i] : ir::op_def(n.op).inplace) {
      if (g.value(n.outputs[static_cast<size_t>(o)]).type.bytes() != g.value(n.inputs[static_cast<size_t>(i)]).type.bytes())
        continue;  // a broadcast operand: the in-place pass never picks it
      SCOPED_TRACE("output " + std::to_string(o) + " over input " + std::to_string(i));
      EXPECT_EQ(first, run_node(*gpu, c.build, in, {o, i})) << "in place differs";
    }
  }
}

TEST(CudaOps, DataErrorsNameTheNode) {
  DLMEM_REQUIRE_GPU();
  auto gpu = make_cuda_backend();
  const auto build = [](ir::Graph& g) {
    node(g, OpKind::softmax_xent, {}, {val(g, "logits", {4, 10}), val(g, "label", {4}, DType::i32, Role::label)});
  };
  ir::Graph g;
  build(g);
  std::vector<Bytes> in = {input_data(g, g.value(0), 1), Bytes(16)};
  const int32_t bad[4] = {1, 2, 12, 0};
  std::memcpy(in[1].data(), bad, 16);
  try {
    run_node(*gpu, build, in);
    ADD_FAILURE() << "a label out of range was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("label 12 of row 2"), std::string::npos) << m;
    EXPECT_NE(m.find("node"), std::string::npos) << m;
  }
  // The backend stays usable.
  in[1] = input_data(g, g.value(1), 1);
  EXPECT_NO_THROW(run_node(*gpu, build, in));
}

}  // namespace
}  // namespace dlmem::runtime
