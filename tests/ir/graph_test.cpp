// Graph IR: exact sizes, shape errors that name the node, verification, op facts.
#include <gtest/gtest.h>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "models/zoo.h"
#include "util/error.h"

namespace dlmem::ir {
namespace {

TEST(TensorType, BytesAreExactIncludingSubByteTypes) {
  EXPECT_EQ((TensorType{{64, 3, 224, 224}, DType::f32}).bytes(), 64ull * 3 * 224 * 224 * 4);
  EXPECT_EQ((TensorType{{3, 5}, DType::f16}).bytes(), 30u);
  EXPECT_EQ((TensorType{{3, 5}, DType::bf16}).bytes(), 30u);
  EXPECT_EQ((TensorType{{7}, DType::u8}).bytes(), 7u);
  EXPECT_EQ((TensorType{{9}, DType::bit}).bytes(), 2u);  // ceil(9 / 8)
  EXPECT_EQ((TensorType{{16}, DType::bit}).bytes(), 2u);
  EXPECT_EQ((TensorType{{2, 2}, DType::i32}).bytes(), 16u);
  EXPECT_EQ((TensorType{{}, DType::f32}).bytes(), 4u);  // a scalar
  EXPECT_EQ(parse_dtype("bf16"), DType::bf16);
  EXPECT_FALSE(parse_dtype("f64").has_value());
}

TEST(Graph, ShapeErrorNamesNodeAndShapes) {
  Graph g;
  Builder b(g);
  auto x = b.input("x", {2, 3, 8, 8});
  auto w = b.weight("w", {4, 5, 3, 3}, Init{});
  Attrs a;
  try {
    g.add_node(OpKind::conv2d, "bad_conv", a, {x, w}, Role::activation);
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("bad_conv"), std::string::npos) << m;
    EXPECT_NE(m.find("3 channels"), std::string::npos) << m;
    EXPECT_NE(m.find("f32[4,5,3,3]"), std::string::npos) << m;
  }
}

TEST(Graph, MatmulAndBroadcastErrors) {
  Graph g;
  Builder b(g);
  auto a = b.input("a", {2, 3, 4});
  auto c = b.input("c", {2, 5, 6});
  EXPECT_THROW(b.matmul(a, c), Error);         // inner 4 vs 5
  EXPECT_THROW(b.matmul(a, c, false, true), Error);  // inner 4 vs 6
  auto d = b.input("d", {2, 4, 6});
  EXPECT_EQ(b.shape(b.matmul(a, d)), (Shape{2, 3, 6}));
  EXPECT_THROW(b.add(b.input("e", {2, 3}), b.input("f", {4})), Error);
  EXPECT_EQ(b.shape(b.add(a, b.input("g", {3, 1}))), (Shape{2, 3, 4}));
}

TEST(Graph, VerifyAcceptsZooTrainingGraphs) {
  for (const char* m : {"lenet5", "resnet18", "bert-base", "gpt2-small", "lstm", "densenet121"}) {
    models::ModelConfig c;
    c.batch = 2;
    if (std::string(m) == "resnet18" || std::string(m) == "densenet121") c.image_size = 64;
    if (std::string(m).find("bert") == 0 || std::string(m).find("gpt2") == 0) c.seq_len = 8;
    Graph g = models::build_model(m, c);
    build_training_graph(g, TrainOptions{});
    EXPECT_NO_THROW(g.verify()) << m;
  }
}

// Op facts are what planners trust: every value a backward node reads from the
// forward must be declared in the forward node's saved-for-backward set.
TEST(OpRegistry, BackwardReadsOnlyWhatSavedDeclares) {
  for (const char* m : {"lenet5", "resnet18", "mobilenet_v2", "densenet121", "bert-base", "gpt2-small", "lstm",
                        "alexnet"}) {
    models::ModelConfig c;
    c.batch = 2;
    const std::string name = m;
    if (name == "resnet18" || name == "mobilenet_v2" || name == "densenet121") c.image_size = 64;
    if (name.find("bert") == 0 || name.find("gpt2") == 0) c.seq_len = 8;
    Graph g = models::build_model(m, c);
    build_training_graph(g, TrainOptions{.optimizer = Optimizer::adam});
    int checked = 0;
    for (const Node& n : g.nodes()) {
      if (n.phase != Phase::backward || n.forward_of == kNoNode) continue;
      const Node& f = g.node(n.forward_of);
      const Saved s = op_def(f.op).saved(f);
      for (ValueId v : n.inputs) {
        const Value& val = g.value(v);
        if (val.role == Role::gradient || val.role == Role::weight_gradient) continue;
        bool declared = false;
        for (size_t i = 0; i < f.inputs.size(); ++i) declared |= f.inputs[i] == v && s.input(static_cast<int>(i));
        for (size_t i = 0; i < f.outputs.size(); ++i) declared |= f.outputs[i] == v && s.output(static_cast<int>(i));
        EXPECT_TRUE(declared) << m << ": " << n.name << " reads " << val.name << " which " << f.name
                              << " does not declare as saved";
        ++checked;
      }
    }
    EXPECT_GT(checked, 0) << m;
  }
}

TEST(OpRegistry, SavedSetsAreTheLiteratureOnes) {
  Graph g;
  Builder b(g);
  auto x = b.input("x", {2, 3, 8, 8});
  auto y = b.relu(b.conv2d(x, 4, 3, {}, "c"));
  auto p = b.max_pool(y, 2, 2);
  (void)p;
  const Node& conv = g.node(0);
  const Node& relu = g.node(1);
  const Node& pool = g.node(2);
  // ReLU's backward needs only its output; conv its input and weight (not the bias);
  // max-pool only its index.
  EXPECT_EQ(op_def(relu.op).saved(relu).inputs, 0u);
  EXPECT_EQ(op_def(relu.op).saved(relu).outputs, 1u);
  EXPECT_EQ(op_def(conv.op).saved(conv).inputs, 0b011u);
  EXPECT_EQ(op_def(pool.op).saved(pool).inputs, 0u);
  EXPECT_EQ(op_def(pool.op).saved(pool).outputs, 0b10u);
  EXPECT_TRUE(op_def(OpKind::relu).may_alias(0, 0));
  EXPECT_FALSE(op_def(OpKind::conv2d).may_alias(0, 0));
  EXPECT_EQ(parse_op("layer_norm"), OpKind::layer_norm);
}

TEST(Autodiff, GradientAccumulatesAtFanOutAndUpdatesEveryWeightOnce) {
  Graph g;
  Builder b(g);
  auto x = b.input("x", {4, 8});
  auto lab = b.label("y", {4});
  auto h = b.linear(x, 8, "fc1");
  auto r = b.add(b.relu(h), h);  // h is read twice: its gradient is a sum
  b.softmax_xent(b.linear(r, 3, "fc2"), lab);
  auto params = build_training_graph(g, TrainOptions{.optimizer = Optimizer::sgd});
  EXPECT_EQ(params.size(), 4u);
  int acc = 0, updates = 0;
  for (const Node& n : g.nodes()) {
    if (n.name.find("grad_acc") != std::string::npos) ++acc;
    if (n.op == OpKind::sgd_update) ++updates;
  }
  EXPECT_EQ(acc, 1);
  EXPECT_EQ(updates, 4);
  for (const auto& p : params) EXPECT_EQ(g.value(p.grad).role, Role::weight_gradient);
  g.verify();
}

TEST(Autodiff, EagerUpdateRunsRightAfterTheGradient) {
  Graph g;
  Builder b(g);
  auto x = b.input("x", {4, 8});
  auto lab = b.label("y", {4});
  b.softmax_xent(b.linear(b.relu(b.linear(x, 8, "fc1")), 3, "fc2"), lab);
  build_training_graph(g, TrainOptions{.eager_update = true});
  // fc2's update comes before fc1's backward finishes.
  NodeId fc2_update = kNoNode, fc1_bwd = kNoNode;
  for (const Node& n : g.nodes()) {
    if (n.name == "fc2.weight/update") fc2_update = n.id;
    if (n.name == "fc1/bwd_weight") fc1_bwd = n.id;
  }
  ASSERT_NE(fc2_update, kNoNode);
  ASSERT_NE(fc1_bwd, kNoNode);
  EXPECT_LT(fc2_update, fc1_bwd);
}

TEST(Autodiff, RefusesGraphWithoutLoss) {
  Graph g;
  Builder b(g);
  b.linear(b.input("x", {2, 2}), 2, "fc");
  EXPECT_THROW(build_training_graph(g, {}), Error);
}

}  // namespace
}  // namespace dlmem::ir
