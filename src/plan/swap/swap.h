// Swapping planners (`--policy swap:<name>`): move stashed feature maps to host memory
// after the forward uses them and bring them back before the backward does, on the
// copy streams, overlapped with compute. All of them emit the same protocol (emit.h,
// Note [Swap protocol]); they differ in what they swap and when the copies run.
//
//   plan::Plan p = plan::make_plan(g, {.policy = "swap:tensor", .budget = 2_GiB, .device = "v100-16gb"});
//
//  - swap:vdnn-all, swap:vdnn-conv -- vDNN (Rhu et al., "vDNN: Virtualized Deep Neural
//    Networks for Scalable, Memory-Efficient Neural Network Design", MICRO 2016,
//    section III): offload every layer's input feature map (vdnn-conv: only
//    convolutions' inputs) while the layer runs forward, and release it when the layer
//    ends, waiting for the offload (per-layer synchronisation); in backward, prefetch a
//    layer's stash when the backward of the layer after it starts, and wait for it when
//    the layer's own backward starts. The swap set does not depend on the budget: a
//    budget it cannot meet is an OutOfMemory naming the peak it reaches.
//  - swap:tensor -- tensor-granular swapping (Meng et al., "Training Deeper Models by
//    GPU Memory Optimization on TensorFlow", NIPS 2017 ML Systems workshop: swap-out /
//    swap-in nodes with a trigger per swap-in, chosen from estimated node times;
//    Capuchin, Peng et al., ASPLOS 2020, its swap policy: candidates by the time
//    between evicted-access and back-access, an in-trigger per prefetch, and
//    feedback-driven adjustment of triggers from the observed timeline). Swaps the share
//    policy's program (in-place writes; the default one too, keeping the better plan).
//    Chooses which buffers to swap by gap x size until the budget is met, then, by simulating the plan on the
//    request's device profile, places each swap-in's trigger so that the copy arrives
//    just before its use and each device release just after its copy completes; where
//    the budget is violated by copies in flight, triggers move later and releases
//    earlier (trading stall for memory). No per-layer synchronisation.
#pragma once

#include <vector>

#include "analysis/liveness.h"
#include "ir/graph.h"
#include "plan/plan.h"
#include "plan/planner.h"
#include "plan/swap/emit.h"

namespace dlmem::plan {

Plan plan_swap_vdnn_all(const ir::Graph&, const analysis::Liveness&, const PlanRequest&, uint64_t target);
Plan plan_swap_vdnn_conv(const ir::Graph&, const analysis::Liveness&, const PlanRequest&, uint64_t target);
Plan plan_swap_tensor(const ir::Graph&, const analysis::Liveness&, const PlanRequest&, uint64_t target);
// swap:tensor over the given base programs, keeping the best plan of all of them --
// compress+swap:tensor passes programs with their stashes encoded, in two schedules,
// so that only what stays large is swapped.
Plan plan_swap_tensor_over(const ir::Graph&, const PlanRequest&, uint64_t target, std::vector<swap::SwapBase> bases);

}  // namespace dlmem::plan
