// Finite-difference checks of every op's backward, through the whole stack: the
// gradient builder (autodiff), the plan, the executor and the cpu kernels.
//
// Each case builds   x (a trainable weight) -> op(s) -> reshape [1, -1] -> linear(3)
// -> softmax cross-entropy, and compares, for every trainable weight W and a random
// unit direction d, the directional derivative <dL/dW, d> with the central difference
// (L(W + eps d) - L(W - eps d)) / (2 eps). Tolerance: the loss is O(1) in f32, so its
// rounding is ~1e-7; with eps = 1e-2 that is ~1e-5 in the difference quotient, and the
// truncation error is O(eps^2 * L''') ~ 1e-4. We allow 1e-3 absolute + 2% relative,
// which fails loudly on a wrong gradient (errors of O(1) relative) but not on f32 noise.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "planners/planner.h"
#include "runtime/backend.h"
#include "runtime/executor.h"
#include "train/init.h"

namespace dlmem {
namespace {

using ir::Builder;
using ir::Shape;
using ir::ValueId;

struct Case {
  std::string name;
  Shape x;
  std::function<ValueId(Builder&, ValueId)> body;
};

void write_inputs(runtime::Executor& ex, const ir::Graph& g) {
  for (const ir::Value& v : g.values()) {
    if (v.role != ir::Role::input && v.role != ir::Role::label) continue;
    std::vector<int32_t> data(static_cast<size_t>(v.type.numel()));
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<int32_t>((i * 7 + 1) % 3);
    ex.write(v.id, std::as_bytes(std::span<const int32_t>(data)));
  }
}

void check(const Case& c) {
  SCOPED_TRACE(c.name);
  ir::Graph g;
  Builder b(g, /*training=*/true, /*seed=*/7);
  ValueId x = b.weight("x", c.x, ir::Init{ir::Init::Kind::normal, 0.0f, 1.0f});
  ValueId h = c.body(b, x);
  ValueId flat = b.reshape(h, {1, -1});
  ValueId label = b.label("label", {1});
  b.softmax_xent(b.linear(flat, 3, "head"), label);
  auto params = ir::build_training_graph(g, ir::TrainOptions{.optimizer = ir::Optimizer::none});
  for (const auto& p : params) g.outputs.push_back(p.grad);  // keep the gradients readable
  auto be = runtime::make_cpu_backend({.threads = 2});
  runtime::attach_workspaces(g, *be);
  plan::Plan p = planners::make_plan(g, {});
  runtime::Executor ex(g, p, *be);
  train::init_weights(ex, g, 11);

  auto loss = [&] {
    write_inputs(ex, g);
    ex.run_step(0);
    return static_cast<double>(ex.read_f32(g.loss)[0]);
  };
  loss();
  std::vector<std::vector<float>> grads;
  for (const auto& pg : params) grads.push_back(ex.read_f32(pg.grad));

  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  const double eps = 1e-2;
  for (size_t k = 0; k < params.size(); ++k) {
    const ValueId w = params[k].weight;
    const std::vector<float> w0 = ex.read_f32(w);
    std::vector<float> d(w0.size());
    double norm = 0;
    for (float& v : d) {
      v = nd(rng);
      norm += static_cast<double>(v) * v;
    }
    for (float& v : d) v = static_cast<float>(v / std::sqrt(norm));
    double analytic = 0;
    for (size_t i = 0; i < d.size(); ++i) analytic += static_cast<double>(grads[k][i]) * d[i];
    std::vector<float> wp(w0), wm(w0);
    for (size_t i = 0; i < d.size(); ++i) {
      wp[i] = static_cast<float>(w0[i] + eps * d[i]);
      wm[i] = static_cast<float>(w0[i] - eps * d[i]);
    }
    ex.write_f32(w, wp);
    const double lp = loss();
    ex.write_f32(w, wm);
    const double lm = loss();
    ex.write_f32(w, w0);
    const double numeric = (lp - lm) / (2 * eps);
    EXPECT_NEAR(analytic, numeric, 1e-3 + 2e-2 * std::max(std::abs(analytic), std::abs(numeric)))
        << "gradient of " << g.value(w).name;
  }
}

ir::ConvOpts conv(int64_t stride, int64_t pad, int64_t dil, int64_t groups, bool bias) {
  ir::ConvOpts o;
  o.stride = stride;
  o.padding = pad;
  o.dilation = dil;
  o.groups = groups;
  o.bias = bias;
  return o;
}

// One node of `op` (the ops ONNX import emits, which the Builder has no layer for).
ValueId op(Builder& b, ir::OpKind k, std::vector<ValueId> in, double alpha = 0, Shape shape = {}) {
  ir::Attrs a;
  a.alpha = alpha;
  a.shape = std::move(shape);
  ir::Graph& g = b.graph();
  return g.node(g.add_node(k, std::string(ir::op_name(k)) + std::to_string(g.num_nodes()), a, std::move(in),
                           ir::Role::activation)).outputs[0];
}

std::vector<Case> cases() {
  auto w = [](Builder& b, const char* n, Shape s) { return b.weight(n, s, ir::Init{ir::Init::Kind::normal, 0, 1}); };
  using ir::OpKind;
  return {
      {"conv2d", {2, 3, 6, 6}, [](Builder& b, ValueId x) { return b.conv2d(x, 4, 3, conv(2, 1, 1, 1, true), "c"); }},
      {"conv2d_groups_dilation", {2, 4, 7, 7},
       [](Builder& b, ValueId x) { return b.conv2d(x, 4, 3, conv(1, 2, 2, 2, false), "c"); }},
      {"conv2d_depthwise", {1, 3, 5, 5}, [](Builder& b, ValueId x) { return b.conv2d(x, 3, 3, conv(1, 1, 1, 3, true), "c"); }},
      {"linear", {3, 5}, [](Builder& b, ValueId x) { return b.linear(x, 4, "fc"); }},
      {"linear_3d", {2, 3, 5}, [](Builder& b, ValueId x) { return b.linear(x, 4, "fc"); }},
      {"matmul", {2, 3, 4}, [w](Builder& b, ValueId x) { return b.matmul(x, w(b, "m", {2, 4, 5})); }},
      {"matmul_ta", {2, 4, 3}, [w](Builder& b, ValueId x) { return b.matmul(x, w(b, "m", {2, 4, 5}), true, false); }},
      {"matmul_tb", {2, 3, 4}, [w](Builder& b, ValueId x) { return b.matmul(x, w(b, "m", {2, 5, 4}), false, true); }},
      {"matmul_tab", {2, 4, 3}, [w](Builder& b, ValueId x) { return b.matmul(x, w(b, "m", {2, 5, 4}), true, true); }},
      {"add_broadcast", {2, 3, 4}, [w](Builder& b, ValueId x) { return b.add(x, w(b, "v", {4})); }},
      {"mul_broadcast", {2, 3, 4}, [w](Builder& b, ValueId x) { return b.mul(x, w(b, "v", {3, 1})); }},
      {"scale", {2, 5}, [](Builder& b, ValueId x) { return b.scale(x, -0.7); }},
      {"relu", {2, 9}, [](Builder& b, ValueId x) { return b.relu(x); }},
      {"relu6", {2, 9}, [](Builder& b, ValueId x) { return b.relu6(b.scale(x, 4.0)); }},
      {"gelu", {2, 9}, [](Builder& b, ValueId x) { return b.gelu(x); }},
      {"tanh", {2, 9}, [](Builder& b, ValueId x) { return b.tanh(x); }},
      {"sigmoid", {2, 9}, [](Builder& b, ValueId x) { return b.sigmoid(x); }},
      {"max_pool", {1, 2, 6, 6}, [](Builder& b, ValueId x) { return b.max_pool(x, 2, 2); }},
      {"max_pool_pad_ceil", {1, 2, 7, 7}, [](Builder& b, ValueId x) { return b.max_pool(x, 3, 2, 1, true); }},
      {"avg_pool", {1, 2, 6, 6}, [](Builder& b, ValueId x) { return b.avg_pool(x, 3, 2, 1); }},
      {"avg_pool_exclude_pad", {1, 2, 6, 6}, [](Builder& b, ValueId x) { return b.avg_pool(x, 3, 2, 1, false, false); }},
      {"global_avg_pool", {2, 3, 4, 4}, [](Builder& b, ValueId x) { return b.global_avg_pool(x); }},
      {"batch_norm", {4, 3, 2, 2}, [](Builder& b, ValueId x) { return b.batch_norm(x, "bn"); }},
      {"batch_norm_2d", {5, 4}, [](Builder& b, ValueId x) { return b.batch_norm(x, "bn"); }},
      {"layer_norm", {2, 3, 8}, [](Builder& b, ValueId x) { return b.layer_norm(x, "ln"); }},
      {"dropout", {2, 8}, [](Builder& b, ValueId x) { return b.dropout(x, 0.3); }},
      {"softmax", {2, 5}, [](Builder& b, ValueId x) { return b.softmax(x); }},
      {"causal_softmax", {1, 2, 4, 4}, [](Builder& b, ValueId x) { return b.softmax(b.causal_mask(x)); }},
      {"concat", {2, 3}, [w](Builder& b, ValueId x) { return b.concat({x, w(b, "v", {2, 2}), x}, 1); }},
      {"slice", {2, 6}, [](Builder& b, ValueId x) { return b.slice(x, 1, 2, 3); }},
      {"transpose", {2, 3, 4}, [](Builder& b, ValueId x) { return b.tanh(b.transpose(x, {2, 0, 1})); }},
      {"reshape", {2, 6}, [](Builder& b, ValueId x) { return b.tanh(b.reshape(x, {3, 4})); }},
      {"conv_transpose", {2, 3, 4, 4},
       [w](Builder& b, ValueId x) {
         ir::Attrs a;
         a.kernel = {3, 3};
         a.stride = {2, 2};
         a.padding = {1, 1};
         a.shape = {2, 4, 7, 7};  // (4 - 1) * 2 + 3 - 2
         ir::Graph& g = b.graph();
         return g.node(g.add_node(ir::OpKind::conv2d_bwd_data, "convT", a, {x, w(b, "wt", {3, 4, 3, 3})},
                                  ir::Role::activation)).outputs[0];
       }},
      {"sub_broadcast", {2, 3, 4}, [w](Builder& b, ValueId x) { return op(b, OpKind::sub, {x, w(b, "v", {3, 1})}); }},
      {"div_broadcast", {2, 3, 4},
       [w](Builder& b, ValueId x) { return op(b, OpKind::div, {x, op(b, OpKind::exp, {w(b, "v", {4})})}); }},
      {"pow", {2, 9}, [](Builder& b, ValueId x) { return op(b, OpKind::pow, {b.sigmoid(x)}, 2.5); }},
      {"sqrt", {2, 9}, [](Builder& b, ValueId x) { return op(b, OpKind::sqrt, {b.sigmoid(x)}); }},
      {"erf", {2, 9}, [](Builder& b, ValueId x) { return op(b, OpKind::erf, {x}); }},
      {"exp", {2, 9}, [](Builder& b, ValueId x) { return op(b, OpKind::exp, {b.scale(x, 0.5)}); }},
      {"log", {2, 9}, [](Builder& b, ValueId x) { return op(b, OpKind::log, {b.sigmoid(x)}); }},
      {"leaky_relu", {2, 9}, [](Builder& b, ValueId x) { return op(b, OpKind::leaky_relu, {x}, 0.1); }},
      {"log_softmax", {2, 5}, [](Builder& b, ValueId x) { return op(b, OpKind::log_softmax, {x}); }},
      {"expand", {2, 1, 4}, [](Builder& b, ValueId x) { return b.tanh(op(b, OpKind::expand, {x}, 0, {2, 3, 4})); }},
      {"reduce_sum", {2, 3, 4}, [](Builder& b, ValueId x) { return op(b, OpKind::reduce_sum, {x}, 0, {1, 3, 1}); }},
      {"embedding", {5, 3},
       [](Builder& b, ValueId table) {
         ValueId ids = b.input("ids", {4}, ir::DType::i32);
         ir::Graph& g = b.graph();
         ir::NodeId n = g.add_node(ir::OpKind::embedding, "emb", {}, {ids, table}, ir::Role::activation);
         return g.node(n).outputs[0];
       }},
  };
}

class GradCheck : public ::testing::TestWithParam<Case> {};
TEST_P(GradCheck, MatchesFiniteDifferences) { check(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Ops, GradCheck, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace dlmem
