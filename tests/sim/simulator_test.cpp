// The discrete-event simulator: hand-made plans with known makespan, stalls and peak;
// the simulated peak equals the planned one for every policy; the cost models; the
// Chrome trace; and the copy-ordering check the validator adds for swap plans.
#include <gtest/gtest.h>

#include "util/graphs.h"

#include <algorithm>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/planner.h"
#include "planners/registry.h"
#include "planners/compress/compress.h"
#include "planners/share/inplace.h"
#include "runtime/backend.h"
#include "sim/cost_model.h"
#include "sim/simulator.h"
#include "sim/trace.h"
#include "util/error.h"
#include "util/temp_dir.h"

namespace dlmem::sim {
namespace {

using ir::OpKind;
using ir::Role;
using plan::InstrKind;
using plan::Stream;

// x -> a = relu(x) -> b = relu(a) -> c = a + b, 4 KiB each.
struct Tiny {
  ir::Graph g;
  ir::ValueId x, a, b, c;
  ir::NodeId na, nb, nc;
  Tiny() {
    x = g.add_value("x", {{1024}}, Role::input);
    na = g.add_node(OpKind::relu, "a", {}, {x}, Role::activation);
    a = g.node(na).outputs[0];
    nb = g.add_node(OpKind::relu, "b", {}, {a}, Role::activation);
    b = g.node(nb).outputs[0];
    nc = g.add_node(OpKind::add, "c", {}, {a, b}, Role::activation);
    c = g.node(nc).outputs[0];
  }
};

plan::Instr compute(ir::NodeId n, std::vector<plan::BufferId> in, std::vector<plan::BufferId> out,
                    std::vector<int> waits = {}) {
  plan::Instr i;
  i.kind = InstrKind::compute;
  i.node = n;
  i.inputs = std::move(in);
  i.outputs = std::move(out);
  i.waits = std::move(waits);
  return i;
}
plan::Instr copy(InstrKind k, plan::BufferId src, plan::BufferId dst, std::vector<int> waits = {}) {
  plan::Instr i;
  i.kind = k;
  i.stream = k == InstrKind::swap_out ? Stream::d2h : Stream::h2d;
  i.inputs = {src};
  i.outputs = {dst};
  i.waits = std::move(waits);
  return i;
}
plan::Instr release(plan::BufferId b, std::vector<int> waits = {}) {
  plan::Instr i;
  i.kind = InstrKind::free;
  i.buffer = b;
  i.waits = std::move(waits);
  return i;
}

// Every kernel takes 1 s; a 4 KiB copy takes 2 s each way.
CostModel unit_costs(const ir::Graph& g) {
  CostModel cm;
  cm.source = "test";
  cm.device = device_profile("v100-16gb");
  cm.device.launch_seconds = 0;
  cm.device.efficiency = Efficiency{1, 1, 1};
  cm.device.d2h_bandwidth = cm.device.h2d_bandwidth = 2048;
  cm.node_seconds.assign(static_cast<size_t>(g.num_nodes()), 1.0);
  return cm;
}

// The swap protocol on a hand-made plan:
//   [0] a            0-1
//   [1] out A->H     1-3 (d2h)
//   [2] b            1-2
//   [3] free A       waits [1]: stall 2-3
//   [4] in H->A2     3-5 (h2d)
//   [5] c            waits [4]: stall 3-5, runs 5-6
//   [6] free H, [7] free A2, [8] free B
plan::Plan swap_plan(const Tiny& t) {
  plan::Plan p;
  const uint64_t sz = 4096;
  const auto X = p.add_buffer(t.x, Role::input, sz, plan::Space::device);
  const auto A = p.add_buffer(t.a, Role::activation, sz, plan::Space::device);
  const auto H = p.add_buffer(t.a, Role::activation, sz, plan::Space::host);
  const auto A2 = p.add_buffer(t.a, Role::activation, sz, plan::Space::device);
  const auto B = p.add_buffer(t.b, Role::activation, sz, plan::Space::device);
  const auto C = p.add_buffer(t.c, Role::activation, sz, plan::Space::device);
  p.buffers[static_cast<size_t>(X)].preloaded = p.buffers[static_cast<size_t>(X)].persistent = true;
  p.buffers[static_cast<size_t>(C)].persistent = true;
  p.program = {compute(t.na, {X}, {A}),
               copy(InstrKind::swap_out, A, H),
               compute(t.nb, {A}, {B}),
               release(A, {1}),
               copy(InstrKind::swap_in, H, A2, {1}),
               compute(t.nc, {A2, B}, {C}, {4}),
               release(H, {4}),
               release(A2),
               release(B)};
  p.binding.assign(static_cast<size_t>(t.g.num_values()), plan::kNoBuffer);
  plan::compute_lifetimes(p);
  plan::compute_stats(t.g, p);
  return p;
}

TEST(Simulator, ComputeOnlyPlanRunsBackToBack) {
  Tiny t;
  const plan::Plan p = planners::make_plan(t.g, {.policy = "default"});
  const SimResult r = simulate(t.g, p, unit_costs(t.g));
  EXPECT_DOUBLE_EQ(r.makespan, 3.0);
  EXPECT_DOUBLE_EQ(r.compute_seconds, 3.0);
  EXPECT_DOUBLE_EQ(r.stall_seconds, 0.0);
  EXPECT_DOUBLE_EQ(r.bound(), 3.0);
  EXPECT_EQ(r.peak_device, p.stats.peak_device);
}

TEST(Simulator, SwapPlanHasKnownMakespanStallAndPeak) {
  Tiny t;
  const plan::Plan p = swap_plan(t);
  plan::validate(t.g, p);
  const SimResult r = simulate(t.g, p, unit_costs(t.g));
  EXPECT_DOUBLE_EQ(r.makespan, 6.0);
  EXPECT_DOUBLE_EQ(r.compute_seconds, 3.0);
  EXPECT_DOUBLE_EQ(r.stall_seconds, 3.0);  // 1 s at the free, 2 s before c
  EXPECT_DOUBLE_EQ(r.d2h_seconds, 2.0);
  EXPECT_DOUBLE_EQ(r.h2d_seconds, 2.0);
  EXPECT_EQ(r.bytes_to_host, 4096u);
  EXPECT_EQ(r.bytes_to_device, 4096u);
  EXPECT_EQ(r.peak_device, 4u * 4096);  // x, b, a2, c while c runs
  EXPECT_EQ(r.peak_device, p.stats.peak_device);
  EXPECT_EQ(r.peak_instr, 5);
  EXPECT_DOUBLE_EQ(r.peak_time, 5.0);
  EXPECT_DOUBLE_EQ(r.timeline[1].start, 1.0);
  EXPECT_DOUBLE_EQ(r.timeline[3].start, 3.0);
  EXPECT_DOUBLE_EQ(r.timeline[4].start, 3.0);
  EXPECT_DOUBLE_EQ(r.timeline[5].start, 5.0);
  // The memory counter: x; +a at 0; +b at 1; -a at 3; +a2 at 3; +c at 5; ...
  ASSERT_FALSE(r.memory.empty());
  EXPECT_EQ(r.memory.front().bytes, 2u * 4096);  // x, and a from time 0
  EXPECT_EQ(r.memory.back().bytes, 2u * 4096);  // x and c stay
  for (size_t i = 1; i < r.memory.size(); ++i) EXPECT_GE(r.memory[i].time, r.memory[i - 1].time);
}

TEST(Simulator, CopiesStartWhenTheComputeStreamReachesThem) {
  // Issue the swap-in right after the swap-out: it still waits for the swap-out, and
  // nothing starts before the compute stream reaches it.
  Tiny t;
  plan::Plan p = swap_plan(t);
  std::swap(p.program[3], p.program[4]);  // in (waits 1) before free A (waits 1)
  p.program[5].waits = {3};
  p.program[6].waits = {3};
  plan::compute_lifetimes(p);
  plan::compute_stats(t.g, p);
  plan::validate(t.g, p);
  const SimResult r = simulate(t.g, p, unit_costs(t.g));
  // a 0-1; out 1-3; b 1-2; in issued at 2, starts 3 (after out), ends 5; free A
  // waits until 3; c waits until 5.
  EXPECT_DOUBLE_EQ(r.timeline[3].issue, 2.0);
  EXPECT_DOUBLE_EQ(r.timeline[3].start, 3.0);
  EXPECT_DOUBLE_EQ(r.timeline[5].start, 5.0);
  EXPECT_DOUBLE_EQ(r.makespan, 6.0);
  EXPECT_EQ(r.peak_device, p.stats.peak_device);
}

TEST(Simulator, CopyStreamsAreFifo) {
  Tiny t;
  plan::Plan p = swap_plan(t);
  // Two swap-outs back to back on d2h: the second starts when the first ends.
  p.buffers.push_back(p.buffers[2]);
  p.buffers.back().id = static_cast<plan::BufferId>(p.buffers.size() - 1);
  const plan::BufferId h2 = p.buffers.back().id;
  p.program.insert(p.program.begin() + 2, copy(InstrKind::swap_out, 1, h2));
  p.program.insert(p.program.begin() + 3, release(h2, {2}));
  // Waits after the insertion point shift by two.
  for (size_t i = 4; i < p.program.size(); ++i)
    for (int& w : p.program[i].waits)
      if (w >= 2) w += 2;
  plan::compute_lifetimes(p);
  plan::compute_stats(t.g, p);
  const SimResult r = simulate(t.g, p, unit_costs(t.g));
  EXPECT_DOUBLE_EQ(r.timeline[1].start, 1.0);
  EXPECT_DOUBLE_EQ(r.timeline[2].start, 3.0);
  EXPECT_DOUBLE_EQ(r.d2h_seconds, 4.0);
}

TEST(Simulator, ValidatorRejectsMissingWaits) {
  Tiny t;
  {
    plan::Plan p = swap_plan(t);
    p.program[3].waits.clear();  // free A while its swap-out may still read it
    EXPECT_THROW(plan::validate(t.g, p), InternalError);
  }
  {
    plan::Plan p = swap_plan(t);
    p.program[5].waits.clear();  // c reads A2 before the swap-in is known complete
    EXPECT_THROW(plan::validate(t.g, p), InternalError);
  }
  {
    // The swap-in reads H before the swap-out is known to have written it (issued
    // before the free that waits on the swap-out).
    plan::Plan p = swap_plan(t);
    std::swap(p.program[3], p.program[4]);
    p.program[3].waits.clear();
    p.program[5].waits = {3};
    p.program[6].waits = {3};
    plan::compute_lifetimes(p);
    EXPECT_THROW(plan::validate(t.g, p), InternalError);
    // The same order is fine once the swap-in waits on the swap-out.
    p.program[3].waits = {1};
    EXPECT_NO_THROW(plan::validate(t.g, p));
  }
  {
    plan::Plan p = swap_plan(t);
    p.program[1].stream = Stream::h2d;  // a swap-out on the wrong stream
    EXPECT_THROW(plan::validate(t.g, p), InternalError);
  }
  {
    // A wait reached through another instruction is enough: c waits on the swap-in,
    // so freeing H after c needs no wait of its own.
    plan::Plan p = swap_plan(t);
    p.program[6].waits.clear();
    EXPECT_NO_THROW(plan::validate(t.g, p));
  }
}

TEST(Simulator, WaitOnLaterInstructionIsAnError) {
  Tiny t;
  plan::Plan p = swap_plan(t);
  p.program[3].waits = {7};
  EXPECT_THROW(simulate(t.g, p, unit_costs(t.g)), Error);
}

ir::Graph training_graph(const std::string& model, int64_t batch, int64_t image = 0) {
  return test_util::training_graph(model, {.batch = batch, .image_size = image}, true);
}

// Simulated peak == planned peak, for every policy: each plans these models without a
// budget (none may throw), and swap:tensor and compress+swap:tensor also at a share of
// the default plan's arena that they reach by swapping (LeNet-5's floor is close to its
// peak: 99%); only an out-of-memory answer at a budget is
// allowed, and the exact number of plans made is asserted.
TEST(Simulator, SimulatedPeakEqualsPlannedPeakForEveryPolicy) {
  for (auto [model, batch, share] : {std::tuple{"lenet5", 16, 0.99}, std::tuple{"resnet20", 8, 0.9}}) {
    const ir::Graph g = training_graph(model, batch);
    const uint64_t need = planners::make_plan(g, {.policy = "default"}).device_arena;
    const CostModel cm = roofline_cost_model(g, device_profile("v100-16gb"));
    size_t planned = 0, expected = 0;
    for (const planners::Policy& pol : planners::policies()) {
      std::vector<uint64_t> budgets = {0};
      if (pol.name.ends_with("swap:tensor")) budgets.push_back(static_cast<uint64_t>(share * static_cast<double>(need)));
      expected += budgets.size();
      for (uint64_t budget : budgets) {
        SCOPED_TRACE(std::string(model) + " " + pol.name + " budget " + std::to_string(budget));
        const plan::Plan p = planners::make_plan(g, cm, {.policy = pol.name, .budget = budget, .options = {.time_limit_s = 5}});
        ++planned;
        const SimResult r = simulate(g, p, cm);
        EXPECT_EQ(r.peak_device, p.stats.peak_device);
        EXPECT_GE(r.makespan, r.bound() * (1 - 1e-12));
        if (budget) {
          EXPECT_TRUE(r.bytes_to_host > 0 || planners::summarize_compression(g, p).stashes > 0 ||
                      planners::count_inplace(g, p).writes > 0)
              << "a swap policy under a budget swapped, encoded and shared nothing";
        }
        double last = 0;
        for (const SimEvent& e : r.timeline) {
          EXPECT_GE(e.start, e.issue);
          last = std::max(last, e.end);
        }
        EXPECT_DOUBLE_EQ(r.makespan, last);
      }
    }
    EXPECT_EQ(planned, expected);
  }
}

TEST(CostModel, RooflineIsTheMaxOfComputeAndMemoryPlusLaunch) {
  Tiny t;
  DeviceProfile d = device_profile("v100-16gb");
  d.efficiency = Efficiency{0.5, 0.5, 0.5};
  const ir::Node& n = t.g.node(t.nc);  // add: 1024 FLOPs, 3 x 4 KiB
  const ir::Cost c = ir::op_cost(t.g, n);
  const double expect =
      d.launch_seconds + std::max(c.flops / (15.7e12 * 0.5), static_cast<double>(c.bytes_read + c.bytes_written) / (900e9 * 0.5));
  EXPECT_DOUBLE_EQ(roofline_seconds(t.g, n, d), expect);
  const CostModel cm = roofline_cost_model(t.g, d);
  EXPECT_DOUBLE_EQ(cm.copy_seconds(Stream::h2d, 1'000'000), d.launch_seconds + 1e6 / (15.75e9 * 0.5));
}

TEST(CostModel, MeasuredTimesReplaceTheRoofline) {
  Tiny t;
  const plan::Plan p = planners::make_plan(t.g, {.policy = "default"});
  std::vector<double> secs(p.program.size(), 0.0);
  for (size_t i = 0; i < p.program.size(); ++i)
    if (p.program[i].kind == InstrKind::compute) secs[i] = 0.25 * static_cast<double>(p.program[i].node + 1);
  const CostModel cm = measured_cost_model(t.g, p, secs, device_profile("host"));
  EXPECT_EQ(cm.source, "measured");
  EXPECT_DOUBLE_EQ(cm.node_seconds[static_cast<size_t>(t.na)], 0.25);
  EXPECT_DOUBLE_EQ(cm.node_seconds[static_cast<size_t>(t.nc)], 0.75);
  EXPECT_DOUBLE_EQ(simulate(t.g, p, cm).makespan, 1.5);
  secs.pop_back();
  EXPECT_THROW(measured_cost_model(t.g, p, secs, device_profile("host")), Error);
}

TEST(Trace, ChromeTraceHasStreamsSlicesStallsAndAMemoryCounter) {
  Tiny t;
  const plan::Plan p = swap_plan(t);
  const SimResult r = simulate(t.g, p, unit_costs(t.g));
  const nlohmann::json j = chrome_trace(t.g, p, r);
  int slices = 0, waits = 0, threads = 0;
  uint64_t max_counter = 0;
  for (const auto& e : j.at("traceEvents")) {
    const std::string ph = e.at("ph");
    if (ph == "M" && e.at("name") == "thread_name") ++threads;
    if (ph == "X" && e.at("name") == "wait") ++waits;
    else if (ph == "X") ++slices;
    if (ph == "C") max_counter = std::max<uint64_t>(max_counter, e.at("args").at("bytes").get<uint64_t>());
  }
  EXPECT_EQ(threads, 3);
  EXPECT_EQ(slices, 5);  // three computes, two copies (frees are not slices)
  EXPECT_EQ(waits, 2);   // at the free of a and before c
  EXPECT_EQ(max_counter, r.peak_device);
  test_util::TempDir dir;
  write_chrome_trace(dir.file("t.json"), t.g, p, r);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"t.json"});
}

}  // namespace
}  // namespace dlmem::sim
