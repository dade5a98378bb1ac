// Swapping planners (`--policy swap:<name>`): move stashed feature maps to host memory
// after the forward uses them and bring them back before the backward does, on the
// copy streams, overlapped with compute. All of them emit the same protocol (emit.h,
// Note [Swap protocol]); they differ in what they swap and when the copies run.
//
//   plan::Plan p = planners::make_plan(g, {.policy = "swap:tensor", .budget = 2_GiB}, "v100-16gb");
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
//    feedback-driven adjustment of triggers from the observed timeline). Swaps the program
//    it is given (the registry's swap:tensor: the share policy's, with in-place writes,
//    and the default one, keeping the better plan). Chooses which buffers to swap by
//    gap x size until the budget is met, then, by simulating the plan on the context's
//    cost model, places each swap-in's trigger so that the copy arrives
//    just before its use and each device release just after its copy completes; where
//    the budget is violated by copies in flight, triggers move later and releases
//    earlier (trading stall for memory). No per-layer synchronisation.
#pragma once

#include "planners/pass.h"

namespace dlmem::planners {

// vDNN over the program it is given (the registry passes the default one: Rhu et al.
// swap the layer inputs of a plain schedule, which sharing would change).
Pass vdnn_pass(bool conv_only);
// swap:tensor over the program it is given, within the context's target.
Pass tensor_swap_pass();

}  // namespace dlmem::planners
