// Whole models on the cuda backend: weight gradients agree with the cpu backend's;
// every lossless policy gives bit-identical losses, weights and optimizer state to
// the unmanaged run on the GPU itself; the measured peak stays within the budget and
// the device allocates nothing per step.
#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "codec/codec.h"
#include "gpu/gpu_test_util.h"
#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "planners/registry.h"
#include "runtime/executor.h"
#include "train/init.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/managed.h"

namespace dlmem {
namespace {

struct Model {
  std::string name;
  models::ModelConfig config;
};

// Small configurations of every family: convolutions with and without bias, batch
// norm, depthwise convolutions and relu6, concatenation, attention with GELU and
// layer norm, a causal decoder with tied weights, an unrolled LSTM.
std::vector<Model> zoo() {
  auto image = [](int64_t batch, int64_t size) {
    models::ModelConfig c;
    c.batch = batch;
    c.image_size = size;
    return c;
  };
  auto tokens = [](int64_t batch, int64_t seq, int64_t vocab) {
    models::ModelConfig c;
    c.batch = batch;
    c.seq_len = seq;
    c.vocab = vocab;
    return c;
  };
  return {{"lenet5", image(8, 0)},           {"vgg16", image(2, 32)},        {"resnet18", image(4, 32)},
          {"mobilenet_v2", image(4, 32)},    {"densenet121", image(2, 32)},  {"bert-base", tokens(2, 16, 200)},
          {"gpt2-small", tokens(2, 16, 200)}, {"lstm", tokens(2, 8, 200)}};
}

// Upper bound of the ints a value holds: an embedding's rows, or the classes.
int64_t int_bound(const ir::Graph& g, const ir::Value& v) {
  for (ir::NodeId c : v.consumers) {
    const ir::Node& n = g.node(c);
    if (n.op == ir::OpKind::embedding && n.inputs[0] == v.id) return g.value(n.inputs[1]).type.shape[0];
  }
  if (v.role == ir::Role::label) return g.value(g.outputs.at(0)).type.shape.back();
  return 1;
}

// One forward + backward on `device`; returns every weight gradient (by weight name).
std::map<std::string, std::vector<float>> gradients(const Model& m, runtime::DeviceKind device) {
  models::ModelConfig mc = m.config;
  mc.training = true;
  ir::Graph g = models::build_model(m.name, mc);
  const auto params = ir::build_training_graph(g, ir::TrainOptions{.optimizer = ir::Optimizer::none});
  for (const auto& p : params) g.outputs.push_back(p.grad);
  auto be = runtime::make_backend(device, 2);
  runtime::attach_workspaces(g, *be);
  const plan::Plan p = planners::make_plan(g, {});
  runtime::Executor ex(g, p, *be);
  train::init_weights(ex, g, 7);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  for (const ir::Value& v : g.values()) {
    if ((v.role != ir::Role::input && v.role != ir::Role::label) || !ex.is_bound(v.id)) continue;
    if (v.type.dtype == ir::DType::f32) {
      std::vector<float> x(static_cast<size_t>(v.type.numel()));
      for (float& f : x) f = nd(rng);
      ex.write_f32(v.id, x);
    } else {
      std::vector<int32_t> x(static_cast<size_t>(v.type.numel()));
      const int64_t bound = int_bound(g, v);
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int32_t>((i * 7 + 3) % static_cast<size_t>(bound));
      ex.write(v.id, std::as_bytes(std::span<const int32_t>(x)));
    }
  }
  ex.run_step(0);
  std::map<std::string, std::vector<float>> out;
  for (const auto& pg : params) out[g.value(pg.weight).name] = ex.read_f32(pg.grad);
  return out;
}

// ||gpu - cpu|| <= 2e-3 ||cpu|| per weight gradient (fp32, different summation orders
// through a dozen layers; TF32 is off).
TEST(CudaTrain, GradientsAgreeWithTheCpuBackend) {
  DLMEM_REQUIRE_GPU();
  for (const Model& m : zoo()) {
    SCOPED_TRACE(m.name);
    const auto cpu = gradients(m, runtime::DeviceKind::cpu);
    const auto gpu = gradients(m, runtime::DeviceKind::cuda);
    ASSERT_EQ(cpu.size(), gpu.size());
    for (const auto& [name, c] : cpu) {
      const auto& d = gpu.at(name);
      double diff = 0, norm = 0;
      for (size_t i = 0; i < c.size(); ++i) {
        diff += (static_cast<double>(d[i]) - c[i]) * (static_cast<double>(d[i]) - c[i]);
        norm += static_cast<double>(c[i]) * c[i];
      }
      EXPECT_LE(std::sqrt(diff), 2e-3 * std::sqrt(norm) + 1e-7) << name;
    }
  }
}

train::TrainConfig config(const std::string& model, const std::string& policy, const std::string& budget) {
  train::TrainConfig c;
  c.model = model;
  c.model_config.image_size = model == "lenet5" ? 0 : 32;
  c.dataset = "synthetic";
  c.batch = 8;
  c.epochs = 1;
  c.steps_per_epoch = 3;
  c.evaluate = false;
  c.policy = policy;
  c.budget = budget;
  c.poison_freed = true;
  c.threads = 2;
  c.device = "cuda";
  c.optim.optimizer = ir::Optimizer::adam;
  c.optim.lr = 1e-3;
  return c;
}

// Every lossless policy of the table against the unmanaged run, on the GPU
// (test_util::every_lossless_policy_is_bit_identical, as the cpu suite runs it).
TEST(CudaTrain, LosslessPoliciesAreBitIdenticalToDefault) {
  DLMEM_REQUIRE_GPU();
  test_util::every_lossless_policy_is_bit_identical("cuda");
}

// The arena is the only device memory a step uses: free memory (cudaMemGetInfo) does
// not move while steps run, and the executor's measured peak equals the plan's.
TEST(CudaTrain, NoDeviceAllocationPerStepAndPeakWithinBudget) {
  DLMEM_REQUIRE_GPU();
  train::TrainConfig c = config("resnet18", "share", "80%");
  c.steps_per_epoch = 1;
  train::Trainer t(c);
  t.step();  // warm-up: cuDNN and cuBLAS set themselves up
  const uint64_t free_before = runtime::cuda_device_info().free_bytes;
  for (int i = 0; i < 3; ++i) t.step();
  const uint64_t free_after = runtime::cuda_device_info().free_bytes;
  EXPECT_EQ(free_after, free_before);
  EXPECT_LE(t.executor().stats().peak_device, t.plan().budget);
  EXPECT_EQ(t.executor().stats().capacity, t.plan().budget);
  EXPECT_EQ(t.executor().stats().peak_device, t.plan().stats.peak_device);
}

// Training on the GPU learns: the loss of a small model on synthetic data falls.
TEST(CudaTrain, LossFalls) {
  DLMEM_REQUIRE_GPU();
  train::TrainConfig c = config("lenet5", "default", "");
  c.steps_per_epoch = 40;
  c.poison_freed = false;
  train::Trainer t(c);
  const train::TrainResult r = t.run(nullptr);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += r.losses[static_cast<size_t>(i)];
    last += r.losses[r.losses.size() - 1 - static_cast<size_t>(i)];
  }
  EXPECT_LT(last, 0.8 * first);
}

}  // namespace
}  // namespace dlmem
