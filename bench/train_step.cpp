// One training configuration, timed: prints one JSON line with the median step time
// (after one warm-up step) and the executor's counted peak device bytes.
//
//   train_step --model resnet18 --batch 16 --threads 2 [--policy default] [--min-steps 3]
//
// Used by bench/torch_peer.py, which runs the same row in PyTorch right after and
// prints the ratio (../shared/BENCHMARKING.md: ratios from one run).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "analysis/memory.h"
#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "runtime/backend.h"
#include "runtime/executor.h"
#include "train/init.h"
#include "util/error.h"
#include "common.h"

using namespace dlmem;
using bench::load_average;

int main(int argc, char** argv) {
  std::string model = "lenet5", policy = "default";
  int64_t batch = 64, min_steps = 3, image = 0;
  int threads = 2;
  double min_seconds = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model = v;
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--policy") policy = v;
    else if (k == "--min-steps") min_steps = std::stoll(v);
    else if (k == "--min-seconds") min_seconds = std::stod(v);
    else if (k == "--image-size") image = std::stoll(v);
    else {
      std::cerr << "train_step: unknown option " << k << "\n";
      return 2;
    }
  }
  try {
    models::ModelConfig mc;
    mc.batch = batch;
    mc.image_size = image;
    ir::Graph g = models::build_model(model, mc);
    // The same optimizer as the PyTorch peer: SGD with momentum 0.9.
    ir::build_training_graph(g, {.optimizer = ir::Optimizer::sgd, .lr = 0.01, .momentum = 0.9});
    auto be = runtime::make_cpu_backend({.threads = threads});
    const uint64_t stashed =
        analysis::memory_report(g, analysis::compute_liveness(g, analysis::default_schedule(g))).stashed_activations;
    runtime::attach_workspaces(g, *be);
    plan::Plan p = planners::make_plan(g, {.policy = policy});
    runtime::Executor ex(g, p, *be);
    train::init_weights(ex, g, 1);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    const ir::ValueId in = g.find("input"), label = g.find("label");
    std::vector<float> x(static_cast<size_t>(g.value(in).type.numel()));
    for (float& v : x) v = nd(rng);
    std::vector<int32_t> y(static_cast<size_t>(g.value(label).type.numel()));
    const int64_t classes = g.value(g.outputs.at(0)).type.shape.back();
    for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int32_t>(i % static_cast<size_t>(classes));

    std::vector<double> times;
    double total = 0;
    for (int64_t s = 0; s < 1 + min_steps || total < min_seconds; ++s) {
      ex.write_f32(in, x);
      ex.write(label, std::as_bytes(std::span<const int32_t>(y)));
      const auto t0 = std::chrono::steady_clock::now();
      ex.run_step(static_cast<uint64_t>(s));
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s > 0) {  // the first step is the warm-up (primitive creation)
        times.push_back(dt);
        total += dt;
      }
      if (s > 200) break;
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    nlohmann::json j = {{"bench", "train_step"},
                        {"system", "dlmem"},
                        {"model", model},
                        {"batch", batch},
                        {"threads", threads},
                        {"policy", policy},
                        {"steps", times.size()},
                        {"median_step_s", median},
                        {"min_step_s", times.front()},
                        {"peak_device_bytes", ex.stats().peak_device},
                        {"arena_bytes", p.device_arena},
                        {"stashed_bytes", stashed},
                        {"loadavg_1m", load_average()}};
    std::cout << j.dump() << std::endl;
  } catch (const Error& e) {
    std::cerr << "train_step: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
