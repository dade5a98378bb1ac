// Issue 6: swapping, simulated and measured. One JSON line per row.
//
// Simulated rows ("kind": "simulated"): VGG-16 and ResNet-50 at batch 256 on the
// V100-16 and H100 profiles, budgets of 75%, 50% and 25% of the unmanaged peak, every swap
// planner: the simulated step time over the max(compute, transfer) bound, over the
// phase bound (max(forward, d2h) + max(backward, h2d): stashes leave after the forward
// makes them and return before the backward reads them) and over the unmanaged step on
// the same cost model, beside vDNN's published figure (Rhu et al.
// 2016: VGG-16 at batch 256 in a 12 GB GPU about 18% slower than unmanaged). vDNN
// swaps the same layers whatever the budget: where its peak is above the budget the row
// says so ("meets_budget": false) and reports the plan it makes.
//
// Measured rows ("kind": "measured"): one small model on the cpu backend, each plan run
// back to back (one warm-up, median of the timed steps): measured step time, the step
// time predicted by the simulator from the unmanaged run's measured kernel times and
// this machine's calibrated copy rates, the prediction error, and the swap overhead
// over the unmanaged run.
//
//   swap_bench [--quick] [--threads N] [--only simulated|measured]
//   --quick: VGG-16 b64 and ResNet-50 b32 on V100-16 only; the measured model smaller.
//   --threads: compute threads of the measured rows (default 1: one compute thread and
//   the copy threads, as a GPU's compute and copy engines; on a shared 2-core machine
//   more compute threads leave the copies no core).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/compress/compress.h"
#include "planners/planner.h"
#include "planners/share/inplace.h"
#include "runtime/backend.h"
#include "runtime/calibrate.h"
#include "runtime/executor.h"
#include "sim/cost_model.h"
#include "sim/device_profile.h"
#include "sim/simulator.h"
#include "train/init.h"
#include "util/error.h"
#include "common.h"

using namespace dlmem;
using bench::load_average;
using bench::training_graph;

namespace {

const char* const kPlanners[] = {"swap:vdnn-all", "swap:vdnn-conv", "swap:tensor", "compress+swap:tensor"};
constexpr const char* kPublished =
    "vDNN (Rhu et al. 2016): VGG-16 b256 (about 28 GB unmanaged) trained in a 12 GB GPU about 18% slower";

void simulated(bool quick) {
  struct Config {
    const char* model;
    int64_t batch;
  };
  std::vector<Config> configs = quick ? std::vector<Config>{{"vgg16", 64}, {"resnet50", 32}}
                                      : std::vector<Config>{{"vgg16", 256}, {"resnet50", 256}};
  std::vector<std::string> devices = quick ? std::vector<std::string>{"v100-16gb"}
                                           : std::vector<std::string>{"v100-16gb", "h100-80gb"};
  auto be = runtime::make_cpu_backend({.threads = 1});
  for (const Config& c : configs) {
    const ir::Graph g = training_graph(c.model, c.batch, 0, *be);
    const plan::Plan base = planners::make_plan(g, {.policy = "default"});
    for (const std::string& dev_name : devices) {
      const sim::DeviceProfile dev = sim::device_profile(dev_name);
      const sim::CostModel cm = sim::roofline_cost_model(g, dev);
      const sim::SimResult rb = sim::simulate(g, base, cm, {.record_memory = false});
      std::cout << nlohmann::json{{"bench", "swap"},         {"kind", "simulated"},
                                  {"model", c.model},         {"batch", c.batch},
                                  {"device", dev.name},       {"policy", "default"},
                                  {"budget_fraction", 1.0},   {"peak", base.stats.peak_device},
                                  {"arena", base.device_arena}, {"step_s", rb.makespan},
                                  {"bound_s", rb.bound()},    {"step_over_bound", rb.makespan / rb.bound()},
                                  {"step_over_unmanaged", 1.0}}
                       .dump()
                << std::endl;
      for (double frac : {0.75, 0.5, 0.25}) {
        const uint64_t budget = static_cast<uint64_t>(static_cast<double>(base.stats.peak_device) * frac);
        for (const char* policy : kPlanners) {
          nlohmann::json row = {{"bench", "swap"},   {"kind", "simulated"}, {"model", c.model},
                                {"batch", c.batch},  {"device", dev.name},  {"policy", policy},
                                {"budget_fraction", frac}, {"budget", budget},
                                // No residency policy goes below weights + state + the largest op.
                                {"lower_bound_fraction", static_cast<double>(base.stats.lower_bound) /
                                                             static_cast<double>(base.stats.peak_device)}};
          plan::Plan p;
          const auto t0 = std::chrono::steady_clock::now();
          try {
            p = planners::make_plan(g, {.policy = policy, .budget = budget}, dev_name);
            row["meets_budget"] = true;
          } catch (const OutOfMemory& e) {
            row["meets_budget"] = false;
            row["why"] = e.what();
            if (std::string(policy).find("swap:vdnn") == std::string::npos) {
              std::cout << row.dump() << std::endl;
              continue;
            }
            p = planners::make_plan(g, {.policy = policy}, dev_name);  // vDNN's own plan
          }
          const double plan_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          const sim::SimResult r = sim::simulate(g, p, cm, {.record_memory = false});
          row["peak"] = p.stats.peak_device;
          row["arena"] = p.device_arena;
          row["fits_device"] = p.device_arena <= dev.memory_bytes;
          row["step_s"] = r.makespan;
          row["compute_s"] = r.compute_seconds;
          row["stall_s"] = r.stall_seconds;
          row["d2h_s"] = r.d2h_seconds;
          row["h2d_s"] = r.h2d_seconds;
          row["bound_s"] = r.bound();
          row["step_over_bound"] = r.makespan / r.bound();
          row["phase_bound_s"] = r.phase_bound();
          row["step_over_phase_bound"] = r.makespan / r.phase_bound();
          row["unmanaged_step_s"] = rb.makespan;
          row["step_over_unmanaged"] = r.makespan / rb.makespan;
          row["bytes_to_host"] = r.bytes_to_host;
          // swap:tensor plans over the share policy's program and the default one and
          // keeps the faster: in-place writes say which it kept.
          row["in_place_writes"] = planners::count_inplace(g, p).writes;
          // compress+swap:tensor: the stashes kept encoded on the device (Note [Swapping
          // encoded stashes]) and the swaps coded (moved at their bound here).
          const planners::CompressionSummary cs = planners::summarize_compression(g, p);
          row["encoded_stashes"] = cs.stashes;
          row["coded_swaps"] = cs.swaps;
          row["plan_s"] = plan_s;
          if (std::string(c.model) == "vgg16") row["published"] = kPublished;
          std::cout << row.dump() << std::endl;
        }
      }
    }
  }
}

// One plan on the cpu backend, with its own executor, initialised weights and batch.
class Runner {
 public:
  Runner(const ir::Graph& g, const plan::Plan& p, runtime::Backend& be, bool time_instructions)
      : ex_(g, p, be, {.time_instructions = time_instructions}), per_(p.program.size()) {
    train::init_weights(ex_, g, 42);
    // Inputs and labels are written before every step (the plan frees their buffers).
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    for (const ir::Value& v : g.values()) {
      if (!ex_.is_bound(v.id) || (v.role != ir::Role::input && v.role != ir::Role::label)) continue;
      std::vector<std::byte> bytes(v.type.bytes());
      for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
        if (v.role == ir::Role::input) {
          const float f = u(rng);
          std::memcpy(bytes.data() + i, &f, 4);
        } else {
          const int32_t y = static_cast<int32_t>((i / 4) % 10);
          std::memcpy(bytes.data() + i, &y, 4);
        }
      }
      batch_.emplace_back(v.id, std::move(bytes));
    }
  }
  void step(bool record) {
    for (const auto& [v, bytes] : batch_) ex_.write(v, bytes);
    ex_.run_step(steps_++);
    if (!record) return;
    times_.push_back(ex_.stats().last_step_seconds);
    const auto& secs = ex_.stats().instr_seconds;
    for (size_t i = 0; i < secs.size() && i < per_.size(); ++i) per_[i].push_back(secs[i]);
  }
  double median_step() const { return median(times_); }
  std::vector<double> instr_medians() const {
    std::vector<double> m(per_.size());
    for (size_t i = 0; i < per_.size(); ++i) m[i] = median(per_[i]);
    return m;
  }
  uint64_t peak() const { return ex_.stats().peak_device; }
  // Bytes the copies moved to the host per step (coded swaps: their real encoded size).
  uint64_t to_host_per_step() const { return steps_ ? ex_.stats().bytes_to_host / steps_ : 0; }

 private:
  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
  runtime::Executor ex_;
  std::vector<std::pair<ir::ValueId, std::vector<std::byte>>> batch_;
  std::vector<double> times_;
  std::vector<std::vector<double>> per_;
  uint64_t steps_ = 0;
};

void measured(bool quick, int threads) {
  // A CIFAR ResNet: its activations, not its weights, make its peak, as at ImageNet scale.
  const std::string model = "resnet20";
  const int64_t batch = quick ? 16 : 64, image = 32;
  const int steps = quick ? 3 : 9;
  auto be = runtime::make_cpu_backend({.threads = threads});
  const runtime::Calibration cal = runtime::calibrate(*be, {.repeats = 3});
  const sim::DeviceProfile host = sim::host_profile_from(cal.gemm_flops, cal.memory_bandwidth, cal.h2d_bandwidth,
                                                         cal.d2h_bandwidth, cal.launch_seconds, cal.memory_bytes,
                                                         "this machine, calibrated by swap_bench");
  const ir::Graph g = training_graph(model, batch, image, *be);
  struct Row {
    std::string policy;
    plan::Plan plan;
  };
  std::vector<Row> rows;
  rows.push_back({"default", planners::make_plan(g, {.policy = "default"})});
  for (const char* pol : {"swap:vdnn-all", "swap:vdnn-conv"}) rows.push_back({pol, planners::make_plan(g, {.policy = pol})});
  rows.push_back({"swap:tensor", planners::make_plan(g, {.policy = "swap:tensor", .budget = rows[0].plan.stats.peak_device / 2})});
  rows.push_back({"compress+swap:tensor",
                  planners::make_plan(g, {.policy = "compress+swap:tensor", .budget = rows[0].plan.stats.peak_device / 2})});
  // The plans run interleaved, one step each in turn and starting with a different one
  // each round, so that a change in the machine's load falls on all of them alike; one
  // warm-up step each, then the median.
  std::vector<std::unique_ptr<Runner>> runners;
  for (const Row& r : rows) runners.push_back(std::make_unique<Runner>(g, r.plan, *be, true));
  const double load0 = load_average();
  for (int s = 0; s <= steps; ++s)
    for (size_t k = 0; k < runners.size(); ++k) runners[(k + static_cast<size_t>(s)) % runners.size()]->step(s > 0);
  const double load1 = load_average();
  // Prediction: the unmanaged run's measured kernel times, this machine's copy rates.
  const sim::CostModel cm = sim::measured_cost_model(g, rows[0].plan, runners[0]->instr_medians(), host);
  const double base_step = runners[0]->median_step();
  const double base_pred = sim::simulate(g, rows[0].plan, cm, {.record_memory = false}).makespan;
  for (size_t k = 0; k < rows.size(); ++k) {
    const plan::Plan& p = rows[k].plan;
    const double step = runners[k]->median_step();
    const sim::SimResult s = sim::simulate(g, p, cm, {.record_memory = false});
    std::cout << nlohmann::json{{"bench", "swap"},
                                {"kind", "measured"},
                                {"model", model},
                                {"batch", batch},
                                {"image_size", image},
                                {"threads", threads},
                                {"policy", rows[k].policy},
                                {"budget", p.budget},
                                {"measured_peak", runners[k]->peak()},
                                {"planned_peak", p.stats.peak_device},
                                {"bytes_to_host", p.stats.bytes_to_host},
                                {"measured_bytes_to_host", runners[k]->to_host_per_step()},
                                {"measured_step_s", step},
                                {"predicted_step_s", s.makespan},
                                {"prediction_error", s.makespan / step - 1.0},
                                {"predicted_stall_s", s.stall_seconds},
                                {"overhead_vs_unmanaged", step / base_step},
                                {"predicted_overhead", s.makespan / base_pred},
                                {"host_copy_GBps", cal.h2d_bandwidth / 1e9},
                                {"host_gemm_GFLOPs", cal.gemm_flops / 1e9},
                                {"steps", steps},
                                {"load_before", load0},
                                {"load_after", load1}}
                     .dump()
              << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int threads = 1;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else {
      std::cerr << "usage: swap_bench [--quick] [--threads N] [--only simulated|measured]\n";
      return 2;
    }
  }
  try {
    if (only != "measured") simulated(quick);
    if (only != "simulated") measured(quick, threads);
  } catch (const std::exception& e) {
    std::cerr << "swap_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
