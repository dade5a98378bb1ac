#include "plan/planner.h"

#include <algorithm>
#include <chrono>

#include "analysis/memory.h"
#include "plan/compress/compress.h"
#include "plan/recompute/recompute.h"
#include "plan/swap/swap.h"
#include "plan/share/share_policy.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::plan {

Plan plan_default(const ir::Graph& g, const analysis::Liveness& live, const PlanRequest&, uint64_t) {
  return make_default_plan(g, live);
}

const std::vector<PolicyInfo>& known_policies() {
  // One line per policy; each family's planners live in their own folder.
  static const std::vector<PolicyInfo> policies = {
      {"default", "compute in order, free every buffer after its last use, static placement", plan_default},
      {"compress", "Gist: ReLU outputs only ReLU's backward reads kept as 1 bit (with --lossy: fp16 feature maps)", plan_compress},
      {"compress:sparse", "compress + Gist's sparse storage for ReLU outputs read exactly (planned at its bound)", plan_compress_sparse},
      {"compress:fp16", "compress + feature maps stashed in fp16 (lossy, opt-in)", plan_compress_lossy},
      {"compress:bf16", "compress + feature maps stashed in bf16 (lossy, opt-in)", plan_compress_lossy},
      {"compress:fp8-e4m3", "compress + feature maps stashed in fp8 e4m3 (lossy, opt-in)", plan_compress_lossy},
      {"compress+share", "share, then its stashes encoded as by compress", plan_compress_over},
      {"compress+swap:vdnn-all", "swap:vdnn-all with zvc on the ReLU outputs it swaps (cDMA), other stashes as compress", plan_compress_over},
      {"compress+swap:vdnn-conv", "swap:vdnn-conv with zvc on the ReLU outputs it swaps (cDMA), other stashes as compress", plan_compress_over},
      {"compress+swap:tensor", "swap:tensor planned over the program with stashes encoded as by compress (bitmasks stay on the device), zvc on the ReLU outputs it swaps (cDMA)", plan_compress_over},
      {"share", "default + in-place writes (outputs over dying inputs, gradients over dying activations)", plan_share},
      {"swap:vdnn-all", "vDNN: offload every layer's stash, prefetch one layer ahead, sync per layer", plan_swap_vdnn_all},
      {"swap:vdnn-conv", "vDNN: offload convolution inputs only, prefetch one layer ahead, sync per layer", plan_swap_vdnn_conv},
      {"swap:tensor", "share (in-place writes), then tensors chosen by gap x size swapped with simulated just-in-time prefetch triggers", plan_swap_tensor},
      {"recompute:sqrt", "Chen 2016: sqrt(N) segments of the articulation chain; with --budget, Chen's budgeted greedy", recompute::plan_sqrt},
      {"recompute:chain", "optimal DP for chains (Gruslys 2016 / Beaumont 2019) over the articulation chain", recompute::plan_chain},
      {"recompute:milp", "Checkmate MILP (Jain 2020) over the training graph, solved by CBC within --time-limit", recompute::plan_milp},
      {"recompute:greedy", "simulated eviction (DTR / lookahead scores) plus the chain DP: any graph, any budget down to its minimum", recompute::plan_greedy},
  };
  return policies;
}

uint64_t lowered_target(uint64_t target, uint64_t peak, uint64_t arena, uint64_t budget, uint64_t floor) {
  const uint64_t excess = arena - budget;
  const uint64_t reached = std::min(target, peak);
  return reached <= excess + floor ? 0 : reached - excess;
}

Plan make_plan(const ir::Graph& g, const PlanRequest& req) {
  const auto t0 = std::chrono::steady_clock::now();
  const PolicyInfo* policy = nullptr;
  for (const PolicyInfo& p : known_policies())
    if (p.name == req.policy) policy = &p;
  if (!policy) {
    std::string names;
    for (const PolicyInfo& i : known_policies()) names += (names.empty() ? "" : ", ") + i.name;
    throw Error("unknown policy '", req.policy, "'; known policies: ", names);
  }
  const analysis::Liveness live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const uint64_t lower_bound = analysis::memory_report(g, live).lower_bound;

  uint64_t target = req.budget;
  Plan p;
  for (int attempt = 0;; ++attempt) {
    p = policy->fn(g, live, req, target);
    p.policy = req.policy;
    p.budget = req.budget;
    compute_lifetimes(p);
    compute_stats(g, p);
    place(p, req.placement);
    if (req.budget == 0 || p.device_arena <= req.budget || attempt == 4) break;
    const uint64_t next = lowered_target(target, p.stats.peak_device, p.device_arena, req.budget, lower_bound / 2);
    if (next == 0) break;
    target = next;
  }
  p.stats.lower_bound = lower_bound;
  p.stats.plan_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  validate(g, p);
  return p;
}

}  // namespace dlmem::plan
