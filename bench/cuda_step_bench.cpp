// One training configuration on the cuda backend (or the cpu one), timed: prints one
// JSON line with the median step time (after warm-up steps), the executor's counted
// peak device bytes, the arena, and the device memory the process took
// (cudaMemGetInfo before the backend exists vs after the warm-up).
//
//   cuda_step_bench --model resnet50 --batch 64 [--policy default] [--budget 50% | 16GiB]
//                   [--image-size N] [--seq-len N] [--vocab N] [--tf32] [--steps 10]
//                   [--device cuda|cpu] [--optimizer sgd|adam]
//   cuda_step_bench --list-policies          # the planner's policies, as JSON
//   cuda_step_bench --quick                  # make bench: two small rows (skips without a GPU)
//
// bench/gpu_vs_torch.py runs it for every row of the H100 comparison and sets PyTorch
// beside it (../shared/BENCHMARKING.md: ratios from one run).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "planners/registry.h"
#include "runtime/backend.h"
#include "runtime/executor.h"
#include "train/init.h"
#include "util/error.h"
#include "util/format.h"

using namespace dlmem;

namespace {

struct Args {
  std::string model = "resnet18", policy = "default", budget, device = "cuda", optimizer = "sgd";
  int64_t batch = 32, image = 0, seq = 0, vocab = 0, steps = 10, warmup = 2;
  bool tf32 = false;
};

uint64_t gpu_free() { return runtime::cuda_device_info().free_bytes; }

// Upper bound of the ints an input holds: an embedding's rows, or the classes.
int64_t int_bound(const ir::Graph& g, const ir::Value& v) {
  for (ir::NodeId c : v.consumers) {
    const ir::Node& n = g.node(c);
    if (n.op == ir::OpKind::embedding && n.inputs[0] == v.id) return g.value(n.inputs[1]).type.shape[0];
  }
  if (v.role == ir::Role::label) return g.value(g.outputs.at(0)).type.shape.back();
  return 1;
}

nlohmann::json run_row(const Args& a) {
  const runtime::DeviceKind kind = runtime::parse_device(a.device);
  const bool cuda = kind == runtime::DeviceKind::cuda;
  const uint64_t free_before = cuda ? gpu_free() : 0;
  models::ModelConfig mc;
  mc.batch = a.batch;
  mc.image_size = a.image;
  mc.seq_len = a.seq;
  mc.vocab = a.vocab;
  ir::Graph g = models::build_model(a.model, mc);
  // The PyTorch peer's optimizer: SGD with momentum 0.9 (or Adam).
  ir::TrainOptions opt{.optimizer = a.optimizer == "adam" ? ir::Optimizer::adam : ir::Optimizer::sgd,
                       .lr = a.optimizer == "adam" ? 1e-3 : 0.01,
                       .momentum = 0.9};
  ir::build_training_graph(g, opt);
  runtime::CudaOptions co;
  co.allow_tf32 = a.tf32;
  auto be = runtime::make_backend(kind, 0, co);
  runtime::attach_workspaces(g, *be);
  uint64_t budget = 0;
  if (!a.budget.empty()) {
    const Budget b = parse_budget(a.budget);
    budget = b.is_fraction ? b.resolve(planners::make_plan(g, {.policy = "default"}).device_arena) : b.bytes;
  }
  const plan::Plan p = planners::make_plan(g, {.policy = a.policy, .budget = budget});
  runtime::Executor ex(g, p, *be);
  train::init_weights(ex, g, 1);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (const ir::Value& v : g.values()) {
    if ((v.role != ir::Role::input && v.role != ir::Role::label) || !ex.is_bound(v.id)) continue;
    if (v.type.dtype == ir::DType::f32) {
      std::vector<float> x(static_cast<size_t>(v.type.numel()));
      for (float& f : x) f = nd(rng);
      ex.write_f32(v.id, x);
    } else {
      std::vector<int32_t> x(static_cast<size_t>(v.type.numel()));
      const uint64_t bound = static_cast<uint64_t>(int_bound(g, v));
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int32_t>(rng() % bound);
      ex.write(v.id, std::as_bytes(std::span<const int32_t>(x)));
    }
  }
  // Inputs stay in the arena across steps only when the plan keeps them; rewrite them
  // each step as the trainer does (untimed).
  std::vector<std::pair<ir::ValueId, std::vector<std::byte>>> inputs;
  for (const ir::Value& v : g.values())
    if ((v.role == ir::Role::input || v.role == ir::Role::label) && ex.is_bound(v.id)) {
      std::vector<std::byte> b(v.type.bytes());
      ex.read(v.id, b);
      inputs.emplace_back(v.id, std::move(b));
    }
  std::vector<double> times;
  uint64_t free_after = 0;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    for (const auto& [v, b] : inputs) ex.write(v, b);
    const auto t0 = std::chrono::steady_clock::now();
    ex.run_step(static_cast<uint64_t>(s));  // ends with a device synchronisation
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= a.warmup) times.push_back(dt);
    if (s + 1 == a.warmup && cuda) free_after = gpu_free();
  }
  if (cuda && a.warmup == 0) free_after = gpu_free();
  std::sort(times.begin(), times.end());
  const std::vector<float> loss = ex.read_f32(g.loss);
  nlohmann::json j = {{"bench", "cuda_step"},
                      {"system", "dlmem"},
                      {"device", a.device},
                      {"model", a.model},
                      {"batch", a.batch},
                      {"policy", a.policy},
                      {"budget_bytes", budget},
                      {"tf32", a.tf32},
                      {"optimizer", a.optimizer},
                      {"steps", times.size()},
                      {"median_step_s", times.empty() ? 0.0 : times[times.size() / 2]},
                      {"min_step_s", times.empty() ? 0.0 : times.front()},
                      {"peak_device_bytes", ex.stats().peak_device},
                      {"planned_peak_bytes", p.stats.peak_device},
                      {"arena_bytes", p.device_arena},
                      {"bytes_to_host_per_step", p.stats.bytes_to_host},
                      {"extra_flops_ratio", p.stats.flops > 0 ? p.stats.extra_flops / (p.stats.flops - p.stats.extra_flops) : 0.0},
                      {"last_loss", loss.at(0)}};
  if (cuda) {
    const runtime::CudaDeviceInfo info = runtime::cuda_device_info();
    j["gpu"] = info.name;
    j["device_memory_used_bytes"] = free_before > free_after ? free_before - free_after : 0;
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  bool quick = false, list = false;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw Error("cuda_step_bench: ", k, " needs a value");
        return argv[++i];
      };
      if (k == "--model") a.model = value();
      else if (k == "--batch") a.batch = std::stoll(value());
      else if (k == "--image-size") a.image = std::stoll(value());
      else if (k == "--seq-len") a.seq = std::stoll(value());
      else if (k == "--vocab") a.vocab = std::stoll(value());
      else if (k == "--policy") a.policy = value();
      else if (k == "--budget") a.budget = value();
      else if (k == "--device") a.device = value();
      else if (k == "--optimizer") a.optimizer = value();
      else if (k == "--steps") a.steps = std::stoll(value());
      else if (k == "--warmup") a.warmup = std::stoll(value());
      else if (k == "--tf32") a.tf32 = true;
      else if (k == "--quick") quick = true;
      else if (k == "--list-policies") list = true;
      else throw Error("cuda_step_bench: unknown option ", k, " (see the comment at the top of bench/cuda_step_bench.cpp)");
    }
    if (list) {
      nlohmann::json names = nlohmann::json::array();
      for (const planners::Policy& p : planners::policies()) names.push_back(p.name);
      std::cout << nlohmann::json{{"policies", names}}.dump() << std::endl;
      return 0;
    }
    if (a.device == "cuda") {
      const runtime::CudaDeviceInfo info = runtime::cuda_device_info();
      if (!info.available) {
        // make bench on a machine without a GPU: say so and succeed.
        std::cout << nlohmann::json{{"bench", "cuda_step"}, {"skipped", "no usable CUDA device: " + info.reason}}.dump()
                  << std::endl;
        return quick ? 0 : 2;
      }
    }
    if (quick) {
      for (auto [model, batch] : {std::pair<const char*, int64_t>{"lenet5", 64}, {"resnet18", 32}}) {
        Args q = a;
        q.model = model;
        q.batch = batch;
        q.steps = 3;
        q.warmup = 1;
        std::cout << run_row(q).dump() << std::endl;
      }
      return 0;
    }
    std::cout << run_row(a).dump() << std::endl;
  } catch (const Error& e) {
    std::cerr << "cuda_step_bench: " << e.what() << "\n";
    std::cout << nlohmann::json{{"bench", "cuda_step"}, {"model", a.model}, {"batch", a.batch}, {"policy", a.policy},
                                {"budget", a.budget}, {"error", e.what()},
                                {"out_of_memory", dynamic_cast<const OutOfMemory*>(&e) != nullptr}}
                     .dump()
              << std::endl;
    return 2;
  }
  return 0;
}
