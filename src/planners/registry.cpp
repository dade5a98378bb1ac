#include "planners/registry.h"

#include "analysis/liveness.h"
#include "planners/auto/auto.h"
#include "planners/compress/compress.h"
#include "planners/recompute/recompute.h"
#include "planners/share/inplace.h"
#include "planners/swap/swap.h"
#include "util/error.h"

namespace dlmem::planners {

namespace {

// The pipelines the families' passes make. One line a policy below; a new policy is a
// pass in its family's folder and one line here (docs/architecture.md, "Adding a policy").

Pipeline share() { return {default_program(), inplace_pass()}; }

// swap:tensor's bases (Note [Tensor swap planning]): the share program and the default one.
Pass tensor_swaps() {
  return best_of({{default_program(), inplace_pass(), tensor_swap_pass()},
                  {default_program(), tensor_swap_pass()}});
}

// compress+swap:tensor (Note [Swapping encoded stashes]): swaps planned over the share
// and default programs with their stashes encoded, over the same programs as they are
// (where a budget sits at the floor both reach, the encoded program's shorter buffers
// can place worse: VGG-16 b256 at 50%), and over both with weight gradients first and
// the backward's sign-only tails encoded too; the best of the six.
Pass encoded_tensor_swaps() {
  const ScheduleFn wgf = analysis::weight_gradients_first;
  return best_of({{default_program(), inplace_pass(), encode_pass(), tensor_swap_pass()},
                  {default_program(), encode_pass(), tensor_swap_pass()},
                  {default_program(), inplace_pass(), tensor_swap_pass()},
                  {default_program(), tensor_swap_pass()},
                  {only_if(reorders(wgf)), default_program(wgf), inplace_pass(), encode_pass(), sign_tails_pass(),
                   tensor_swap_pass()},
                  {only_if(reorders(wgf)), default_program(wgf), encode_pass(), sign_tails_pass(), tensor_swap_pass()}});
}

Pipeline then(Pipeline a, const Pipeline& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

const std::vector<Policy>& policies() {
  const Pass within = compress_within_target();
  static const std::vector<Policy> table = {
      {"default", "compute in order, free every buffer after its last use, static placement", {default_program()}},
      {"auto",
       "the joint planner: per tensor keep, share, recompute, swap or encode (lossless; --lossy allows reduced "
       "precision), the fastest simulated mix within the budget",
       {auto_pass()}},
      {"compress", "Gist: ReLU outputs only ReLU's backward reads kept as 1 bit (with --lossy: fp16 feature maps)",
       {default_program(), encode_pass(), within}},
      {"compress:sparse", "compress + Gist's sparse storage for ReLU outputs read exactly (planned at its bound)",
       {default_program(), encode_pass({.sparse = true}), within}},
      {"compress:fp16", "compress + feature maps stashed in fp16 (lossy, opt-in)",
       {default_program(), encode_pass({.lossy = "fp16"}), within}, true},
      {"compress:bf16", "compress + feature maps stashed in bf16 (lossy, opt-in)",
       {default_program(), encode_pass({.lossy = "bf16"}), within}, true},
      {"compress:fp8-e4m3", "compress + feature maps stashed in fp8 e4m3 (lossy, opt-in)",
       {default_program(), encode_pass({.lossy = "fp8-e4m3"}), within}, true},
      {"compress+share", "share, then its stashes encoded as by compress", then(share(), {compress_over_pass()})},
      {"compress+swap:vdnn-all", "swap:vdnn-all with zvc on the ReLU outputs it swaps (cDMA), other stashes as compress",
       {default_program(), vdnn_pass(false), compress_over_pass()}},
      {"compress+swap:vdnn-conv", "swap:vdnn-conv with zvc on the ReLU outputs it swaps (cDMA), other stashes as compress",
       {default_program(), vdnn_pass(true), compress_over_pass()}},
      {"compress+swap:tensor",
       "swap:tensor planned over the program with stashes encoded as by compress (bitmasks stay on the device), zvc on "
       "the ReLU outputs it swaps (cDMA)",
       {encoded_tensor_swaps(), compress_over_pass()}},
      {"share", "default + in-place writes (outputs over dying inputs, gradients over dying activations)", share()},
      {"swap:vdnn-all", "vDNN: offload every layer's stash, prefetch one layer ahead, sync per layer",
       {default_program(), vdnn_pass(false)}},
      {"swap:vdnn-conv", "vDNN: offload convolution inputs only, prefetch one layer ahead, sync per layer",
       {default_program(), vdnn_pass(true)}},
      {"swap:tensor",
       "share (in-place writes), then tensors chosen by gap x size swapped with simulated just-in-time prefetch triggers",
       {tensor_swaps()}},
      {"recompute:sqrt", "Chen 2016: sqrt(N) segments of the articulation chain; with --budget, Chen's budgeted greedy",
       {recompute::sqrt_pass()}},
      {"recompute:chain", "optimal DP for chains (Gruslys 2016 / Beaumont 2019) over the articulation chain",
       {recompute::chain_pass()}},
      {"recompute:milp", "Checkmate MILP (Jain 2020) over the training graph, solved by CBC within --time-limit",
       {recompute::milp_pass()}},
      {"recompute:greedy",
       "simulated eviction (DTR / lookahead scores) plus the chain DP: any graph, any budget down to its minimum",
       {recompute::greedy_pass()}},
  };
  return table;
}

const Policy& find_policy(std::string_view name) {
  for (const Policy& p : policies())
    if (p.name == name) return p;
  std::string names;
  for (const Policy& p : policies()) names += (names.empty() ? "" : ", ") + p.name;
  throw Error("unknown policy '", name, "'; known policies: ", names);
}

}  // namespace dlmem::planners
