// Compression of stashed activations (Gist) and of swapped bytes (cDMA) as plan
// passes. For every feature map kept from the forward pass for the backward pass, the
// pass reads what its backward consumers need -- only the sign pattern (a ReLU
// backward), or exact values (a convolution's weight gradient) -- and picks the
// smallest encoding that serves all of them; then it rewrites the plan: Compress(A -> E)
// and Free(A) after A's last forward use, Decompress(E -> A2) and Free(E) before its
// first backward use, and A2 in place of A from there on.
//
//   plan::Plan p = planners::make_plan(g, {.policy = "compress"});                            // lossless
//   plan::Plan q = planners::make_plan(g, {.policy = "compress", .options = {.lossy = "fp16"}});  // + fp16 stashes
//   // on any plan with swap_out/swap_in pairs (e.g. from a swap planner):
//   planners::compress_swaps(g, swap_plan, {.codec = "zvc"});                                 // cDMA
//
// Policies (pipelines of the passes below, in planners/registry.cpp):
//   compress            bitmask for stashes only a ReLU backward reads (32x on f32);
//                       everything else kept. With PlanOptions::lossy, that precision
//                       for the feature maps read exactly.
//   compress:sparse     also Gist's sparse storage for ReLU-like outputs read exactly.
//   compress:fp16 | compress:bf16 | compress:fp8-e4m3
//                       lossy by name (opt-in): that precision for feature maps read exactly.
//   compress+<p>        policy <p> (share, swap:<name>), then its swaps coded
//                       (compress_swaps: zvc on ReLU-like tensors) and the stashes it
//                       keeps on the device encoded as by compress; swap:tensor plans
//                       over the encoded program instead (Note [Swapping encoded stashes]).
//
// Note [Encoded sizes in plans]: a plan is static, so an encoded buffer reserves its
// codec's bound -- exact for bitmask and the precisions, a worst case for the
// data-dependent codecs (sparse: raw + 0.2%, zvc: raw + 3%). Planned peaks therefore
// only fall where the bound is smaller than the raw tensor; the executor reports the
// real encoded bytes beside the reserved ones (ExecStats::encoded_real / encoded_bound)
// and the peak an exactly-sized allocator would have seen (peak_device_real).
//
// Note [Swapping encoded stashes]: compress+swap:tensor encodes the stashes first and
// plans the swaps over that program (swap::emit_swap_plan takes stash encodings in its
// base), not the other way round. A ReLU map that only its backward's sign test reads
// then stays on the device as a bitmask (1/32 of it) instead of crossing the link twice;
// a lossy stash (--lossy) crosses it at its reduced size; the stashes still large are
// what the planner swaps. Swapping first and encoding after would leave the swaps as
// they were (the swapped stashes are no longer stashes on the device), which measured
// no faster than swap:tensor alone. compress_swaps() never recodes an encoded buffer.
// It plans over two schedules, the default one and weight gradients first with the
// backward's sign-only tails encoded too (encode_sign_tails), and keeps the better plan
// (arena within the budget, then simulated time).
//
// Note [What a backward reads]: ReLU's backward with use_dst (dx = dy * [y > 0]) reads
// its saved output only through the sign test, so the bitmask serves it bit for bit;
// every other backward reader needs exact values. This is the only op fact the pass
// keeps itself (reads_sign_only); it belongs with the op facts in src/ir once another
// op needs it.
#pragma once

#include <string>
#include <vector>

#include "analysis/liveness.h"
#include "ir/graph.h"
#include "plan/plan.h"
#include "planners/pass.h"

namespace dlmem::planners {

// What the readers of a stash after its gap need from it.
enum class StashNeed : uint8_t { sign, exact };

// A feature map resident across part of the forward pass only to be read in backward.
// Its need comes from the reads up to the first write over it (an in-place output).
struct Stash {
  BufferId buffer = kNoBuffer;
  ir::ValueId value = ir::kNoValue;  // its storage
  int last_forward = -1;             // program position of the last use before the gap
  int first_backward = -1;           // program position of the first use after it
  StashNeed need = StashNeed::exact;
  bool relu_like = false;            // produced by ReLU (or pooling/views of one): mostly zeros
  bool feature_map = false;          // a node's main output (not batch-norm statistics, masks)
};

// True when input `input` of `n` is read only through a test x > 0 (Note above).
bool reads_sign_only(const ir::Node& n, int input);
// Per value: produced by a ReLU, or by max-pooling, dropout or views of ReLU-like values.
std::vector<bool> relu_like_values(const ir::Graph&);

// The stashes of a plan: device f32 activation buffers written in the forward pass,
// read by a backward node, with at least one forward computation between the last
// forward use and the first backward use, and not already swapped or compressed.
std::vector<Stash> find_stashes(const ir::Graph&, const Plan&);

struct CompressOptions {
  bool sparse = false;  // ReLU-like stashes read exactly: Gist's sparse storage
  std::string lossy;    // "" or a codec that keeps approximate values (fp16, bf16, fp8-e4m3)
};

// The codec for one stash under the options ("" to keep it raw).
std::string choose_codec(const ir::Graph&, const Stash&, const CompressOptions&);

// Rewrites `p` with an encoding for every stash that gets a codec; returns how many.
// Lifetimes and statistics are recomputed. Waits of later instructions are renumbered.
int encode_stashes(const ir::Graph&, Plan& p, const CompressOptions&);

// Gist's binarisation inside the backward pass: a feature map whose exact readers are
// done (a convolution's weight gradient) but that a ReLU backward still reads through
// the sign test, after at least one other computation, is kept as a bitmask in
// between. With weight gradients scheduled first (analysis::weight_gradients_first),
// VGG-16's first ReLU map shrinks to 1/32 while the data gradient runs. Returns how
// many such windows it encoded (lossless, bit-identical).
int encode_sign_tails(const ir::Graph&, Plan& p);

struct SwapCompressOptions {
  // zvc: only ReLU-like tensors (elsewhere it would grow them by 3%); sparse, lz4, zstd:
  // every swapped f32 tensor.
  std::string codec = "zvc";
};
// Gives every swap_out/swap_in pair of an f32 tensor a codec, so that the copy moves
// the encoded bytes (cDMA, Rhu et al. HPCA 2018: compression on the DMA path). The
// host buffer grows to the codec's bound; nothing else changes (device memory, waits,
// frees). Returns how many tensors were given a codec.
int compress_swaps(const ir::Graph&, Plan& p, const SwapCompressOptions& = {});

// What a plan encodes: compress instructions and swaps with a codec.
struct CompressionSummary {
  int stashes = 0;           // compress instructions
  int swaps = 0;             // swap_outs with a codec
  uint64_t raw = 0;          // bytes of the tensors they encode
  uint64_t reserved = 0;     // bytes reserved for the encodings (codec bounds)
  std::string codecs;        // "bitmask x2, sparse x3"
};
CompressionSummary summarize_compression(const ir::Graph&, const Plan&);

// Passes (the policies that use them: planners/registry.cpp).
// encode_stashes with `o`; an empty o.lossy takes the context's (--lossy) precision.
Pass encode_pass(CompressOptions o = {});
// encode_sign_tails.
Pass sign_tails_pass();
// dlmem::OutOfMemory when the plan's peak is over the context's target, naming the
// smallest budget it reaches: the end of every compress:* policy.
Pass compress_within_target();
// compress+<p>: after policy p's passes, its swaps coded (compress_swaps) and the
// stashes it keeps on the device encoded, within the target.
Pass compress_over_pass();

}  // namespace dlmem::planners
