// Issue 4's benchmark: how close static placement comes to its lower bound, and how
// long planning takes. For every zoo model at batch 1, 32 and 256, under the
// "default" and "share" policies, one JSON line per row:
//   arena / max live    the placed arena over the plan's peak of resident bytes (no
//                       placement can be smaller; the goal is mean <= 1.02, worst <= 1.05)
//   arena / no reuse    over the sum of all buffers (what sharing nothing would need)
//   plan_ms             make_plan end to end (liveness, policy, placement of all three
//                       heuristics, validation): thread CPU time, median of 3 (goal:
//                       bert-large < 100 ms); plan_wall_ms the wall time
//   place_ms            placement alone, likewise (place_wall_ms)
//   by_algo             the arena each heuristic gives alone (hill-climb: from the
//                       better greedy order)
//   pool_over_arena     the pooled allocator (runtime/pool_allocator.h) replaying the
//                       plan's allocations and frees in program order, as the executor
//                       does with --allocator pool: its reserved peak over the arena
//                       on a roomy device (it caches what it frees, as PyTorch's does)
//   pool_min_over_arena the smallest device the pool gets through the step on, over
//                       the arena (there it hands cached segments back and reuses them)
// then one summary line per policy (mean and worst ratio, slowest planning). Only
// plans are made -- no kernels run -- so the figures are exact byte counts and the
// times are the planner's own.
//
//   share_bench [--quick] [--no-workspace]
//     --quick          lenet5, resnet50, mobilenet_v2, bert-base at batch 1 and 32
//     --no-workspace   skip the kernels' workspace queries (oneDNN primitive creation)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <time.h>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "planners/share/inplace.h"
#include "plan/placement.h"
#include "runtime/backend.h"
#include "runtime/pool_allocator.h"
#include "util/error.h"

using namespace dlmem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Median wall and thread-CPU milliseconds of `reps` runs. On a shared machine the CPU
// time is the steadier figure (wall time includes waiting for a core).
struct Timing {
  double wall_ms = 0, cpu_ms = 0;
};
template <typename F>
Timing median_ms(int reps, F&& f) {
  std::vector<double> wall, cpu;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    f();
    cpu.push_back(1e3 * (thread_cpu_seconds() - c0));
    wall.push_back(1e3 * seconds_since(t0));
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string one;
  f >> one;
  return one;
}

// A device on which the pool cannot run out: every buffer at once, rounded, plus a
// small segment.
uint64_t roomy_capacity(const plan::Plan& p) {
  uint64_t capacity = 4u << 20;
  for (const plan::Buffer& b : p.buffers) capacity += (b.bytes + 1023) / 512 * 512;
  return capacity;
}

// The executor's sequence of pool allocations for one step (--allocator pool):
// preloaded buffers first, then per instruction its outputs and workspace when they
// become resident, and a block back at every Free. Returns the pool's statistics;
// throws OutOfMemory when `capacity` is too small.
runtime::PoolStats pool_replay(const plan::Plan& p, uint64_t capacity) {
  runtime::PoolAllocator pool(capacity);
  std::vector<int64_t> at(p.buffers.size(), -1);
  auto need = [&](plan::BufferId b) {
    const plan::Buffer& buf = p.buffers[static_cast<size_t>(b)];
    if (b != plan::kNoBuffer && buf.space == plan::Space::device && at[static_cast<size_t>(b)] < 0)
      at[static_cast<size_t>(b)] = static_cast<int64_t>(pool.allocate(buf.bytes));
  };
  for (const plan::Buffer& b : p.buffers)
    if (b.preloaded && b.begin < b.end) need(b.id);
  for (const plan::Instr& in : p.program) {
    if (in.kind == plan::InstrKind::free) {
      if (at[static_cast<size_t>(in.buffer)] >= 0) pool.free(static_cast<uint64_t>(at[static_cast<size_t>(in.buffer)]));
      at[static_cast<size_t>(in.buffer)] = -1;
      continue;
    }
    for (plan::BufferId b : in.outputs) need(b);
    if (in.workspace != plan::kNoBuffer) need(in.workspace);
  }
  return pool.stats();
}

struct Summary {
  double sum = 0, worst = 0;
  int rows = 0;
  std::string worst_row;
  double slowest_ms = 0;
  std::string slowest_row;
  double pool_sum = 0, pool_worst = 0, pool_min_sum = 0, pool_min_worst = 0;
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, workspace = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--no-workspace") {
      workspace = false;
    } else {
      std::cerr << "share_bench: unknown option '" << a << "'; use --quick and/or --no-workspace\n";
      return 2;
    }
  }
  const std::vector<std::string> quick_models = {"lenet5", "resnet50", "mobilenet_v2", "bert-base"};
  const std::vector<int64_t> batches = quick ? std::vector<int64_t>{1, 32} : std::vector<int64_t>{1, 32, 256};
  const std::string load_before = load_average();
  std::map<std::string, Summary> summary;
  auto be = runtime::make_cpu_backend();  // the workspaces `dlmem plan` and `dlmem train` get
  for (const auto& m : models::list_models()) {
    if (quick && std::find(quick_models.begin(), quick_models.end(), m.name) == quick_models.end()) continue;
    for (int64_t batch : batches) {
      models::ModelConfig c;
      c.batch = batch;
      ir::Graph g = models::build_model(m.name, c);
      ir::build_training_graph(g, {});
      if (workspace) runtime::attach_workspaces(g, *be);
      for (const char* policy : {"default", "share"}) {
        plan::Plan p;
        const Timing plan_t = median_ms(3, [&] { p = planners::make_plan(g, {.policy = policy}); });
        plan::Plan unplaced = p;
        const Timing place_t = median_ms(3, [&] { plan::place(unplaced); });
        const double plan_ms = plan_t.cpu_ms;
        const auto iv = plan::intervals(p, plan::Space::device);
        nlohmann::json by_algo;
        for (plan::PlaceAlgo a :
             {plan::PlaceAlgo::greedy_by_size, plan::PlaceAlgo::greedy_by_breadth, plan::PlaceAlgo::first_fit,
              plan::PlaceAlgo::hill_climb})
          by_algo[std::string(plan::place_algo_name(a))] = plan::place_intervals(iv, a).size;
        const double ratio = static_cast<double>(p.device_arena) / static_cast<double>(p.stats.peak_device);
        const planners::InplaceStats ip = planners::count_inplace(g, p);
        const runtime::PoolStats pool = pool_replay(p, roomy_capacity(p));
        // The smallest device the pool gets through the step on (bisection, 0.1%): it
        // then releases cached segments and reuses them (its retry ladder).
        uint64_t lo = p.stats.peak_device, hi = roomy_capacity(p);
        while (hi - lo > hi / 1000) {
          const uint64_t mid = lo + (hi - lo) / 2;
          try {
            pool_replay(p, mid);
            hi = mid;
          } catch (const OutOfMemory&) {
            lo = mid;
          }
        }
        std::cout << nlohmann::json{{"bench", "share"},
                                    {"model", m.name},
                                    {"batch", batch},
                                    {"policy", policy},
                                    {"arena", p.device_arena},
                                    {"max_live", p.stats.peak_device},
                                    {"max_live_aligned", plan::max_live(iv)},
                                    {"no_reuse", p.stats.no_reuse},
                                    {"arena_over_max_live", ratio},
                                    {"arena_over_no_reuse",
                                     static_cast<double>(p.device_arena) / static_cast<double>(p.stats.no_reuse)},
                                    {"placement", p.placement},
                                    {"by_algo", by_algo},
                                    {"pool_reserved_peak", pool.reserved.peak},
                                    {"pool_allocated_peak", pool.allocated.peak},
                                    {"pool_over_arena",
                                     static_cast<double>(pool.reserved.peak) / static_cast<double>(p.device_arena)},
                                    {"pool_min_capacity", hi},
                                    {"pool_min_over_arena", static_cast<double>(hi) / static_cast<double>(p.device_arena)},
                                    {"inplace_writes", ip.writes},
                                    {"inplace_bytes", ip.bytes},
                                    {"buffers", p.buffers.size()},
                                    {"instructions", p.program.size()},
                                    {"plan_ms", plan_t.cpu_ms},
                                    {"plan_wall_ms", plan_t.wall_ms},
                                    {"place_ms", place_t.cpu_ms},
                                    {"place_wall_ms", place_t.wall_ms}}
                         .dump()
                  << std::endl;
        Summary& s = summary[policy];
        const std::string row = m.name + " b" + std::to_string(batch);
        s.sum += ratio;
        const double pr = static_cast<double>(pool.reserved.peak) / static_cast<double>(p.device_arena);
        s.pool_sum += pr;
        s.pool_worst = std::max(s.pool_worst, pr);
        const double pm = static_cast<double>(hi) / static_cast<double>(p.device_arena);
        s.pool_min_sum += pm;
        s.pool_min_worst = std::max(s.pool_min_worst, pm);
        s.rows++;
        if (ratio > s.worst) {
          s.worst = ratio;
          s.worst_row = row;
        }
        if (plan_ms > s.slowest_ms) {
          s.slowest_ms = plan_ms;
          s.slowest_row = row;
        }
      }
    }
  }
  for (const auto& [policy, s] : summary)
    std::cout << nlohmann::json{{"bench", "share_summary"},
                                {"policy", policy},
                                {"rows", s.rows},
                                {"mean_arena_over_max_live", s.sum / std::max(1, s.rows)},
                                {"worst_arena_over_max_live", s.worst},
                                {"worst_row", s.worst_row},
                                {"slowest_plan_ms", s.slowest_ms},
                                {"slowest_row", s.slowest_row},
                                {"mean_pool_over_arena", s.pool_sum / std::max(1, s.rows)},
                                {"worst_pool_over_arena", s.pool_worst},
                                {"mean_pool_min_over_arena", s.pool_min_sum / std::max(1, s.rows)},
                                {"worst_pool_min_over_arena", s.pool_min_worst},
                                {"workspace", workspace},
                                {"load_before", load_before},
                                {"load_after", load_average()}}
                     .dump()
              << std::endl;
  return 0;
}
