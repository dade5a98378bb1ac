// ONNX models exported by PyTorch (tests/data/onnx, written by make_models.py with
// PyTorch's own outputs, batches, gradients and losses): dlmem's forward equals
// PyTorch's, five SGD steps give PyTorch's losses and gradients, every lossless policy
// trains the imported graph bit for bit as the unmanaged run, the trained weights
// export back, and bad files get errors that name them.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "deploy/onnx_run.h"
#include "models/onnx/onnx.h"
#include "models/zoo.h"
#include "runtime/executor.h"
#include "session/session.h"
#include "train/checkpoint.h"
#include "train/init.h"
#include "util/atomic_file.h"
#include "util/cli_run.h"
#include "util/error.h"
#include "util/temp_dir.h"

namespace dlmem {
namespace {

using models::onnx::Tensor;

const std::string kData = std::string(DLMEM_SOURCE_DIR) + "/tests/data/onnx/";
const std::vector<std::string> kModels = {"mlp", "cnn", "encoder13", "encoder17"};

Tensor data(const std::string& model, const std::string& file) {
  return models::onnx::read_tensor(kData + model + "/" + file + ".pb");
}

nlohmann::json reference(const std::string& model) {
  std::ifstream in(kData + model + "/reference.json");
  return nlohmann::json::parse(in);
}

struct Steps {
  std::vector<float> losses;
  std::map<std::string, std::vector<float>> first_grads;  // the momentum buffers after step 0
  std::map<std::string, std::vector<float>> weights;      // after the last step
  uint64_t planned_peak = 0, measured_peak = 0;
  std::string chosen;
};

// `steps` SGD steps on the reference batches, as PyTorch took them.
Steps train_steps(const std::string& model, const std::string& policy, const std::string& budget, int steps) {
  const nlohmann::json ref = reference(model);
  session::SessionOptions o{.model = kData + model + ".onnx", .config = {.batch = ref["batch"].get<int64_t>()}};
  o.train.optimizer = ir::Optimizer::sgd;
  o.train.lr = ref["lr"].get<double>();
  o.train.momentum = ref["momentum"].get<double>();
  session::Session s(o);
  const ir::Graph& g = s.graph();
  const plan::Plan p = s.plan({.policy = policy, .budget = s.budget(budget)});
  runtime::Executor ex(g, p, s.backend());
  train::init_weights(ex, g, 0);
  const ir::ValueId in = g.find("input") != ir::kNoValue ? g.find("input") : g.find("ids");
  const ir::ValueId label = g.find("label");
  Steps r;
  for (int k = 0; k < steps; ++k) {
    const Tensor x = data(model, "train_input_" + std::to_string(k));
    const Tensor y = data(model, "train_label_" + std::to_string(k));
    if (x.is_float()) {
      ex.write_f32(in, x.f);
    } else {
      std::vector<int32_t> ids(x.i.begin(), x.i.end());
      ex.write(in, std::as_bytes(std::span(ids)));
    }
    std::vector<int32_t> labels(y.i.begin(), y.i.end());
    ex.write(label, std::as_bytes(std::span(labels)));
    ex.run_step(static_cast<uint64_t>(k));
    r.losses.push_back(ex.read_f32(g.loss)[0]);
    if (k == 0)
      for (const ir::Value& v : g.values())
        if (v.role == ir::Role::weight && v.trainable) r.first_grads[v.name] = ex.read_f32(g.find(v.name + "/momentum"));
  }
  for (const ir::Value& v : g.values())
    if (v.role == ir::Role::weight) r.weights[v.name] = ex.read_f32(v.id);
  r.planned_peak = p.stats.peak_device;
  r.measured_peak = ex.stats().peak_device;
  r.chosen = p.stats.chosen;
  return r;
}

TEST(OnnxPyTorch, ForwardEqualsPyTorchs) {
  for (const std::string& m : kModels) {
    SCOPED_TRACE(m);
    const deploy::OnnxRun r = deploy::run_onnx(kData + m + ".onnx", {{"input", data(m, "input_0")}});
    ASSERT_EQ(r.outputs.size(), 1u);
    const deploy::Comparison c = deploy::compare(data(m, "output_0"), r.outputs[0], 1e-4, 1e-6);
    EXPECT_TRUE(c.ok) << c.message;
    EXPECT_EQ(r.measured_peak, r.planned_peak);
  }
}

TEST(OnnxPyTorch, FiveSgdStepsGivePyTorchsLossesAndGradients) {
  for (const std::string& m : kModels) {
    SCOPED_TRACE(m);
    const nlohmann::json ref = reference(m);
    const Steps s = train_steps(m, "default", "", 5);
    ASSERT_EQ(s.losses.size(), ref["losses"].size());
    for (size_t k = 0; k < s.losses.size(); ++k) {
      const double want = ref["losses"][k].get<double>();
      EXPECT_NEAR(s.losses[k], want, 1e-4 * std::abs(want)) << "step " << k;
    }
    int checked = 0;
    for (const auto& [name, grad] : s.first_grads) {
      const std::string file = kData + m + "/grad_" + name + ".pb";
      ASSERT_TRUE(std::ifstream(file).good()) << "PyTorch has no parameter '" << name << "'";
      const Tensor want = models::onnx::read_tensor(file);
      Tensor got = want;
      got.f = grad;
      const deploy::Comparison c = deploy::compare(want, got, 1e-3, 1e-5);
      EXPECT_TRUE(c.ok) << name << ": " << c.message << " (max |error| " << c.max_abs_error << ")";
      ++checked;
    }
    EXPECT_GT(checked, 3);
  }
}

// The imported graphs train under every lossless family exactly as without one.
TEST(OnnxPolicies, LosslessPoliciesTrainImportedModelsBitIdentically) {
  const std::vector<std::pair<std::string, std::string>> policies = {
      {"share", ""}, {"recompute:sqrt", ""}, {"recompute:greedy", "70%"}, {"swap:tensor", "70%"}, {"auto", "60%"}};
  for (const std::string m : {"cnn", "encoder17"}) {
    const Steps base = train_steps(m, "default", "", 3);
    for (const auto& [policy, budget] : policies) {
      SCOPED_TRACE(m + " under " + policy + (budget.empty() ? "" : " at " + budget));
      const Steps s = train_steps(m, policy, budget, 3);
      EXPECT_EQ(s.losses, base.losses);
      EXPECT_EQ(s.weights, base.weights);
      EXPECT_EQ(s.measured_peak, s.planned_peak);
      if (!budget.empty()) {
        EXPECT_LT(s.planned_peak, base.planned_peak);
      }
    }
  }
}

TEST(OnnxExport, TrainedWeightsRoundTrip) {
  test_util::TempDir dir;
  const Steps s = train_steps("cnn", "default", "", 2);
  const std::string out = dir.path() + "/trained.onnx";
  models::onnx::export_model(kData + "cnn.onnx", out, s.weights);
  const models::onnx::Imported m = models::onnx::import_model(out);
  int checked = 0;
  for (const ir::Value& v : m.graph.values()) {
    if (v.role != ir::Role::weight || !s.weights.count(v.name)) continue;
    ASSERT_TRUE(v.init.values);
    EXPECT_EQ(*v.init.values, s.weights.at(v.name)) << v.name;
    ++checked;
  }
  EXPECT_GE(checked, 10);  // conv, batch-norm (with running statistics) and fc weights
  // The weights moved: the export is not the original file.
  const models::onnx::Imported orig = models::onnx::import_model(kData + "cnn.onnx");
  EXPECT_NE(*orig.graph.value(orig.graph.find("fc.weight")).init.values, s.weights.at("fc.weight"));
}

TEST(OnnxCli, RunTrainAndExport) {
  test_util::TempDir dir;
  const auto run = test_util::run_cli("run --onnx " + kData + "encoder17.onnx --input input=" + kData +
                                      "encoder17/input_0.pb --expect " + kData + "encoder17/output_0.pb --output-dir " +
                                      dir.path() + "/out");
  EXPECT_EQ(run.code, 0) << run.out;
  EXPECT_NE(run.out.find("ok (max |error|"), std::string::npos) << run.out;
  EXPECT_NO_THROW(models::onnx::read_tensor(dir.path() + "/out/output_0.pb"));
  const auto train = test_util::run_cli("train --onnx " + kData + "cnn.onnx --dataset synthetic --batch 16 --epochs 1 "
                                        "--steps 3 --no-eval --budget 60% --export " + dir.path() + "/t.onnx");
  EXPECT_EQ(train.code, 0) << train.out;
  EXPECT_NO_THROW(models::onnx::import_model(dir.path() + "/t.onnx"));
  // Under data parallelism with ZeRO 3 (weights sharded over 2 ranks): the exported
  // initializers are the whole trained weights, those of the run's checkpoint.
  const auto dp = test_util::run_cli("train --onnx " + kData + "cnn.onnx --dataset synthetic --batch 16 --epochs 1 "
                                     "--steps 3 --no-eval --data-parallel --ranks 2 --zero 3 --save " + dir.path() +
                                     "/dp.ckpt --export " + dir.path() + "/dp.onnx");
  ASSERT_EQ(dp.code, 0) << dp.out;
  const models::onnx::Imported exported = models::onnx::import_model(dir.path() + "/dp.onnx");
  const train::Checkpoint ck = train::load_checkpoint(dir.path() + "/dp.ckpt");
  int compared = 0;
  for (const train::CheckpointTensor& t : ck.tensors) {
    const ir::ValueId v = exported.graph.find(t.name);
    if (v == ir::kNoValue || !exported.graph.value(v).init.values) continue;
    EXPECT_EQ(*exported.graph.value(v).init.values, t.to_f32()) << t.name;
    ++compared;
  }
  EXPECT_GE(compared, 4) << dp.out;
  const auto plan = test_util::run_cli("plan --onnx " + kData + "encoder13.onnx --batch 32 --budget 50% --json");
  EXPECT_EQ(plan.code, 0) << plan.out;
}

// ------------------------------------------------------------------ bad input

// A one-node model: y = OP(x) over [2, 3] floats, with optional initializers.
::onnx::ModelProto tiny_model(const std::string& op, std::vector<std::string> inputs, int opset = 17) {
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("tiny");
  auto* x = g->add_input();
  x->set_name("x");
  x->mutable_type()->mutable_tensor_type()->set_elem_type(1);
  for (int d : {2, 3}) x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name("the_node");
  n->add_input("x");
  for (const auto& i : inputs) n->add_input(i);
  n->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

std::string write_model(const test_util::TempDir& dir, const ::onnx::ModelProto& m, const std::string& name) {
  const std::string path = dir.path() + "/" + name;
  const std::string s = m.SerializeAsString();
  write_file_atomic(path, std::as_bytes(std::span(s.data(), s.size())));
  return path;
}

std::string import_error(const std::string& path) {
  try {
    models::onnx::import_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(OnnxOps, GeluOfOpset20IsTheErfForm) {
  test_util::TempDir dir;
  const std::string path = write_model(dir, tiny_model("Gelu", {}, 20), "gelu.onnx");
  Tensor x;
  x.shape = {2, 3};
  x.f = {-3.f, -1.f, -0.25f, 0.f, 0.5f, 2.f};
  const deploy::OnnxRun r = deploy::run_onnx(path, {{"x", x}});
  ASSERT_EQ(r.outputs.size(), 1u);
  for (size_t i = 0; i < x.f.size(); ++i) {
    const double v = x.f[i];
    EXPECT_NEAR(r.outputs[0].f[i], 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))), 1e-6) << v;
  }
  ::onnx::ModelProto tanh_form = tiny_model("Gelu", {}, 20);
  auto* a = tanh_form.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("approximate");
  a->set_type(::onnx::AttributeProto::STRING);
  a->set_s("tanh");
  const std::string e = import_error(write_model(dir, tanh_form, "gelu_tanh.onnx"));
  EXPECT_NE(e.find("approximate='tanh'"), std::string::npos) << e;
}

TEST(OnnxBadInput, TruncatedFileNamesTheFile) {
  test_util::TempDir dir;
  const std::vector<std::byte> bytes = read_file(kData + "cnn.onnx");
  const std::string path = dir.path() + "/truncated.onnx";
  write_file_atomic(path, std::span(bytes.data(), bytes.size() / 2));
  const std::string e = import_error(path);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("not an ONNX model"), std::string::npos) << e;
  EXPECT_NE(import_error(dir.path() + "/missing.onnx").find("missing.onnx"), std::string::npos);
}

TEST(OnnxBadInput, UnsupportedOpNamesOpNodeOpsetAndTheSupportedOnes) {
  test_util::TempDir dir;
  const std::string e = import_error(write_model(dir, tiny_model("Hardmax", {}), "hardmax.onnx"));
  EXPECT_NE(e.find("Hardmax"), std::string::npos) << e;
  EXPECT_NE(e.find("the_node"), std::string::npos) << e;
  EXPECT_NE(e.find("opset 17"), std::string::npos) << e;
  EXPECT_NE(e.find("supported: "), std::string::npos) << e;
  EXPECT_NE(e.find("Conv"), std::string::npos) << e;
}

TEST(OnnxBadInput, MissingInitializerAndShapeMismatch) {
  test_util::TempDir dir;
  std::string e = import_error(write_model(dir, tiny_model("Add", {"bias"}), "missing.onnx"));
  EXPECT_NE(e.find("'bias'"), std::string::npos) << e;
  EXPECT_NE(e.find("missing initializer"), std::string::npos) << e;

  ::onnx::ModelProto m = tiny_model("Add", {"bias"});
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("bias");
  t->set_data_type(1);
  t->add_dims(4);  // [4] does not broadcast onto [2, 3]
  for (int i = 0; i < 4; ++i) t->add_float_data(1.f);
  e = import_error(write_model(dir, m, "mismatch.onnx"));
  EXPECT_NE(e.find("mismatch.onnx"), std::string::npos) << e;
  EXPECT_NE(e.find("cannot broadcast"), std::string::npos) << e;

  t->add_float_data(1.f);  // 5 values for 4 elements
  e = import_error(write_model(dir, m, "count.onnx"));
  EXPECT_NE(e.find("has 5 values, not 4"), std::string::npos) << e;
}

TEST(OnnxBadInput, UnreadableExternalDataNamesTheDataFile) {
  test_util::TempDir dir;
  ::onnx::ModelProto m = tiny_model("Add", {"bias"});
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("bias");
  t->set_data_type(1);
  t->add_dims(3);
  t->set_data_location(::onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value("weights.bin");
  const std::string path = write_model(dir, m, "external.onnx");
  std::string e = import_error(path);
  EXPECT_NE(e.find("weights.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("cannot be opened"), std::string::npos) << e;
  // With the data file next to the model it imports; a short file is named too.
  const std::vector<float> v = {1, 2, 3};
  write_file_atomic(dir.path() + "/weights.bin", std::as_bytes(std::span(v)));
  EXPECT_EQ(import_error(path), "");
  write_file_atomic(dir.path() + "/weights.bin", std::as_bytes(std::span(v).first(2)));
  e = import_error(path);
  EXPECT_NE(e.find("weights.bin"), std::string::npos) << e;
}

TEST(OnnxBadInput, CliExitsWithTwoAndNamesTheProblem) {
  test_util::TempDir dir;
  auto r = test_util::run_cli("plan --onnx " + dir.path() + "/none.onnx");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("none.onnx"), std::string::npos) << r.out;
  r = test_util::run_cli("run --onnx " + kData + "cnn.onnx --input input=" + kData + "encoder17/input_0.pb");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("input 'input'"), std::string::npos) << r.out;
  r = test_util::run_cli("train --onnx " + kData + "cnn.onnx --loss mse");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--loss"), std::string::npos) << r.out;
  r = test_util::run_cli("train --model lenet5 --export x.onnx");
  EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace
}  // namespace dlmem
