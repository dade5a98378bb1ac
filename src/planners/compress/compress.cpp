#include "planners/compress/compress.h"

#include <algorithm>

#include "codec/codec.h"
#include "plan/placement.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners {

namespace {

bool is_f32_activation(const ir::Graph& g, const Buffer& b) {
  if (b.space != Space::device || b.persistent || b.preloaded || b.role != ir::Role::activation) return false;
  const ir::Value& v = g.value(b.value);
  return v.type.dtype == ir::DType::f32 && v.producer != ir::kNoNode &&
         g.node(v.producer).phase == ir::Phase::forward;
}

uint64_t numel(const ir::Graph& g, const Buffer& b) { return static_cast<uint64_t>(g.value(b.value).type.numel()); }

// Per buffer, one entry per compute that touches it, in program order: whether it reads
// the buffer, whether every such read is only the sign test (Note [What a backward
// reads]), and whether it writes it (an output or its workspace). `managed`: buffers a
// swap or an encoding already touches.
struct ComputeUse {
  int pos;
  bool read = false, sign_only = true, write = false;
};
struct BufferUses {
  std::vector<std::vector<ComputeUse>> of;
  std::vector<bool> managed;
};
BufferUses buffer_uses(const ir::Graph& g, const Plan& p) {
  BufferUses r{std::vector<std::vector<ComputeUse>>(p.buffers.size()), std::vector<bool>(p.buffers.size(), false)};
  for (size_t i = 0; i < p.program.size(); ++i) {
    const Instr& in = p.program[i];
    if (in.kind == InstrKind::compute) {
      const int pos = static_cast<int>(i);
      auto use = [&](BufferId b) -> ComputeUse& {
        auto& v = r.of[static_cast<size_t>(b)];
        if (v.empty() || v.back().pos != pos) v.push_back(ComputeUse{.pos = pos});
        return v.back();
      };
      const ir::Node& node = g.node(in.node);
      for (size_t q = 0; q < in.inputs.size(); ++q) {
        ComputeUse& u = use(in.inputs[q]);
        u.read = true;
        u.sign_only = u.sign_only && reads_sign_only(node, static_cast<int>(q));
      }
      for (BufferId b : in.outputs) use(b).write = true;
      if (in.workspace != kNoBuffer) use(in.workspace).write = true;
    } else if (in.kind != InstrKind::free) {
      for (BufferId b : in.inputs) r.managed[static_cast<size_t>(b)] = true;
      for (BufferId b : in.outputs) r.managed[static_cast<size_t>(b)] = true;
    }
  }
  return r;
}

// The peak a plan reaches once placed (what a budget must cover).
uint64_t placed_need(const Plan& p) {
  Plan q = p;
  place(q);
  return q.device_arena;
}

Plan finish(const ir::Graph& g, Plan p, uint64_t target, const char* policy) {
  compute_lifetimes(p);
  compute_stats(g, p);
  if (target && p.stats.peak_device > target)
    throw OutOfMemory("policy ", policy, " keeps ", human_bytes(p.stats.peak_device),
                      " resident at its peak, above the target ", human_bytes(target),
                      "; the smallest budget it reaches is ", human_bytes(placed_need(p)),
                      " -- combine compression with swapping (compress+swap:...) to go lower")
        .reach(placed_need(p));
  return p;
}

}  // namespace

bool reads_sign_only(const ir::Node& n, int input) {
  // Note [What a backward reads]: relu_bwd(dy, y) computes dy * [y > 0].
  return n.op == ir::OpKind::relu_bwd && input == 1;
}

std::vector<bool> relu_like_values(const ir::Graph& g) {
  std::vector<bool> like(static_cast<size_t>(g.num_values()), false);
  auto is = [&](ir::ValueId v) { return like[static_cast<size_t>(v)]; };
  // Nodes are in topological order: inputs are decided before their consumers.
  for (const ir::Node& n : g.nodes()) {
    if (n.phase != ir::Phase::forward || n.outputs.empty()) continue;
    bool r = false;
    switch (n.op) {
      case ir::OpKind::relu:
      case ir::OpKind::relu6: r = true; break;
      case ir::OpKind::max_pool2d:
      case ir::OpKind::dropout:
      case ir::OpKind::reshape:
      case ir::OpKind::transpose:
      case ir::OpKind::slice: r = is(n.inputs[0]); break;
      case ir::OpKind::concat: r = std::all_of(n.inputs.begin(), n.inputs.end(), is); break;
      default: break;
    }
    like[static_cast<size_t>(n.outputs[0])] = r;
  }
  return like;
}

std::vector<Stash> find_stashes(const ir::Graph& g, const Plan& p) {
  const int n = static_cast<int>(p.program.size());
  const BufferUses uses = buffer_uses(g, p);
  // Forward computations before each position (to test that a gap holds one).
  std::vector<int> fwd_before(static_cast<size_t>(n) + 1, 0);
  for (int i = 0; i < n; ++i) {
    const Instr& in = p.program[static_cast<size_t>(i)];
    fwd_before[static_cast<size_t>(i) + 1] =
        fwd_before[static_cast<size_t>(i)] +
        (in.kind == InstrKind::compute && g.node(in.node).phase == ir::Phase::forward ? 1 : 0);
  }
  const std::vector<bool> relu_like = relu_like_values(g);

  std::vector<Stash> out;
  for (const Buffer& b : p.buffers) {
    const auto& u = uses.of[static_cast<size_t>(b.id)];
    if (uses.managed[static_cast<size_t>(b.id)] || u.empty() || !is_f32_activation(g, b)) continue;
    size_t k = 0;
    while (k < u.size() && g.node(p.program[static_cast<size_t>(u[k].pos)].node).phase == ir::Phase::forward) ++k;
    if (k == 0 || k == u.size()) continue;  // never read in backward
    Stash s;
    s.buffer = b.id;
    s.value = b.value;
    s.last_forward = u[k - 1].pos;
    s.first_backward = u[k].pos;
    if (fwd_before[static_cast<size_t>(s.first_backward)] - fwd_before[static_cast<size_t>(s.last_forward) + 1] == 0)
      continue;  // read back before any other forward layer runs: nothing to gain
    // What the reads of the stash need, up to the first write over it (an in-place
    // output: from there on the buffer holds something else, which A2 carries).
    bool exact = false;
    for (size_t j = k; j < u.size(); ++j) {
      exact = exact || (u[j].read && !u[j].sign_only);
      if (u[j].write) break;  // an in-place write reads first
    }
    s.need = exact ? StashNeed::exact : StashNeed::sign;
    // What the buffer holds in the gap: the value its last forward write produced (an
    // in-place output, e.g. a ReLU over its input, holds another value than b.value).
    ir::ValueId held = b.value;
    for (size_t j = 0; j < k; ++j)
      if (u[j].write) {
        const Instr& in = p.program[static_cast<size_t>(u[j].pos)];
        for (size_t q = 0; q < in.outputs.size(); ++q)
          if (in.outputs[q] == b.id) held = g.node(in.node).outputs[q];
      }
    s.relu_like = relu_like[static_cast<size_t>(held)];
    s.feature_map = g.node(g.value(held).producer).outputs.at(0) == held;
    out.push_back(s);
  }
  return out;
}

std::string choose_codec(const ir::Graph& g, const Stash& s, const CompressOptions& o) {
  const uint64_t n = static_cast<uint64_t>(g.value(s.value).type.numel());
  const uint64_t raw = 4 * n;
  auto smaller = [&](std::string_view name) { return codec::get(name).bound(n) < raw; };
  if (s.need == StashNeed::sign && smaller("bitmask")) return "bitmask";
  if (s.need == StashNeed::exact && s.feature_map && !o.lossy.empty()) {
    const codec::Codec& c = codec::get(o.lossy);
    if (c.preserves() != codec::Preserves::approximate)
      throw Error("'", o.lossy, "' is not a reduced-precision codec; lossy stashes take fp16, bf16 or fp8-e4m3");
    if (smaller(o.lossy)) return o.lossy;
  }
  // Data-dependent: reserved at its bound (raw + 0.2%), smaller only at run time
  // (Note [Encoded sizes in plans]).
  if (s.need == StashNeed::exact && s.relu_like && o.sparse) return "sparse";
  return "";
}

namespace {

// One encoding: Compress(A -> E) and Free(A) after program index `after`,
// Decompress(E -> A2) and Free(E) before `before`, A2 in place of A from there on.
struct Window {
  BufferId buffer = kNoBuffer;
  int after = -1, before = -1;
  std::string codec;
};

int apply_windows(const ir::Graph& g, Plan& p, const std::vector<Window>& windows) {
  if (windows.empty()) return 0;
  const size_t n = p.program.size();
  std::vector<std::vector<Instr>> after(n), before(n);
  for (const Window& w : windows) {
    const codec::Codec& c = codec::get(w.codec);
    const Buffer a = p.buffers[static_cast<size_t>(w.buffer)];
    const BufferId e = p.add_buffer(a.value, a.role, c.bound(numel(g, a)), Space::device);
    const BufferId a2 = p.add_buffer(a.value, a.role, a.bytes, Space::device);
    Instr comp;
    comp.kind = InstrKind::compress;
    comp.inputs = {a.id};
    comp.outputs = {e};
    comp.codec = w.codec;
    Instr free_a;
    free_a.kind = InstrKind::free;
    free_a.buffer = a.id;
    Instr dec;
    dec.kind = InstrKind::decompress;
    dec.inputs = {e};
    dec.outputs = {a2};
    dec.codec = w.codec;
    Instr free_e;
    free_e.kind = InstrKind::free;
    free_e.buffer = e;
    after[static_cast<size_t>(w.after)].push_back(std::move(comp));
    after[static_cast<size_t>(w.after)].push_back(std::move(free_a));
    before[static_cast<size_t>(w.before)].push_back(std::move(dec));
    before[static_cast<size_t>(w.before)].push_back(std::move(free_e));
    // From the first use after the window on, the decoded copy stands in for the original.
    auto rename = [&](BufferId& b) {
      if (b == a.id) b = a2;
    };
    for (size_t i = static_cast<size_t>(w.before); i < n; ++i) {
      Instr& in = p.program[i];
      for (BufferId& b : in.inputs) rename(b);
      for (BufferId& b : in.outputs) rename(b);
      rename(in.workspace);
      rename(in.buffer);
    }
  }
  std::vector<Instr> program;
  std::vector<int> moved(n, -1);
  program.reserve(n + 4 * windows.size());
  for (size_t i = 0; i < n; ++i) {
    for (Instr& in : before[i]) program.push_back(std::move(in));
    moved[i] = static_cast<int>(program.size());
    program.push_back(std::move(p.program[i]));
    for (Instr& in : after[i]) program.push_back(std::move(in));
  }
  for (Instr& in : program)
    for (int& w : in.waits) w = moved[static_cast<size_t>(w)];  // inserted instructions wait on nothing
  p.program = std::move(program);
  compute_lifetimes(p);
  compute_stats(g, p);
  return static_cast<int>(windows.size());
}

}  // namespace

int encode_stashes(const ir::Graph& g, Plan& p, const CompressOptions& o) {
  std::vector<Window> windows;
  for (const Stash& s : find_stashes(g, p)) {
    std::string name = choose_codec(g, s, o);
    if (!name.empty()) windows.push_back({s.buffer, s.last_forward, s.first_backward, std::move(name)});
  }
  return apply_windows(g, p, windows);
}

int encode_sign_tails(const ir::Graph& g, Plan& p) {
  const int n = static_cast<int>(p.program.size());
  const BufferUses uses = buffer_uses(g, p);
  std::vector<int> computes_before(static_cast<size_t>(n) + 1, 0);
  for (int i = 0; i < n; ++i)
    computes_before[static_cast<size_t>(i) + 1] =
        computes_before[static_cast<size_t>(i)] + (p.program[static_cast<size_t>(i)].kind == InstrKind::compute);
  std::vector<Window> windows;
  for (const Buffer& b : p.buffers) {
    const auto& u = uses.of[static_cast<size_t>(b.id)];
    if (uses.managed[static_cast<size_t>(b.id)] || !is_f32_activation(g, b)) continue;
    for (size_t k = 0; k + 1 < u.size(); ++k) {
      if (g.node(p.program[static_cast<size_t>(u[k].pos)].node).phase != ir::Phase::backward) continue;
      if (computes_before[static_cast<size_t>(u[k + 1].pos)] - computes_before[static_cast<size_t>(u[k].pos) + 1] == 0)
        continue;  // nothing runs in between
      // The value held after u[k] is read from u[k + 1] on, up to the next write over
      // the buffer (an in-place output, which may be at a sign-only reader), only
      // through the sign test.
      bool ok = u[k + 1].read;
      for (size_t j = k + 1; j < u.size() && ok; ++j) {
        ok = !u[j].read || u[j].sign_only;
        if (u[j].write) break;
      }
      if (!ok) continue;
      windows.push_back({b.id, u[k].pos, u[k + 1].pos, "bitmask"});
      break;
    }
  }
  return apply_windows(g, p, windows);
}

int compress_swaps(const ir::Graph& g, Plan& p, const SwapCompressOptions& o) {
  const codec::Codec& c = codec::get(o.codec);
  if (!c.lossless()) throw Error("swap compression needs an exact codec (zvc, sparse, lz4, zstd), not '", o.codec, "'");
  const std::vector<bool> relu_like = relu_like_values(g);
  // Host buffers written by exactly one swap_out and read only by swap_ins.
  const size_t nb = p.buffers.size();
  std::vector<int> writers(nb, 0), other_uses(nb, 0);
  for (const Instr& in : p.program) {
    if (in.kind == InstrKind::swap_out) {
      writers[static_cast<size_t>(in.outputs.at(0))]++;
    } else if (in.kind != InstrKind::swap_in && in.kind != InstrKind::free) {
      for (BufferId b : in.inputs) other_uses[static_cast<size_t>(b)]++;
      for (BufferId b : in.outputs) other_uses[static_cast<size_t>(b)]++;
    }
  }
  // Device buffers that hold an encoding (a stash compressed on the device): their
  // bytes are not f32 values, and they cross the link as they are.
  std::vector<bool> encoded(nb, false);
  for (const Instr& in : p.program)
    if (in.kind == InstrKind::compress) encoded[static_cast<size_t>(in.outputs.at(0))] = true;
  std::vector<bool> chosen(nb, false);
  int count = 0;
  for (Instr& in : p.program) {
    if (in.kind != InstrKind::swap_out || !in.codec.empty() || encoded[static_cast<size_t>(in.inputs.at(0))]) continue;
    const size_t host = static_cast<size_t>(in.outputs.at(0));
    // The value copied: the host buffer names it (a shared device buffer names the first
    // value of its in-place chain, e.g. the convolution output a ReLU overwrote).
    const ir::ValueId held = p.buffers[host].value;
    const ir::Value& v = g.value(held);
    if (v.type.dtype != ir::DType::f32 || writers[host] != 1 || other_uses[host] != 0) continue;
    if (o.codec == "zvc" && !relu_like[static_cast<size_t>(held)]) continue;
    in.codec = o.codec;
    p.buffers[host].bytes = std::max(p.buffers[host].bytes, c.bound(static_cast<uint64_t>(v.type.numel())));
    chosen[host] = true;
    ++count;
  }
  for (Instr& in : p.program)
    if (in.kind == InstrKind::swap_in && chosen[static_cast<size_t>(in.inputs.at(0))]) in.codec = o.codec;
  compute_lifetimes(p);
  compute_stats(g, p);
  return count;
}

CompressionSummary summarize_compression(const ir::Graph& g, const Plan& p) {
  CompressionSummary s;
  std::vector<std::pair<std::string, int>> counts;
  for (const Instr& in : p.program) {
    const bool stash = in.kind == InstrKind::compress, swap = in.kind == InstrKind::swap_out && !in.codec.empty();
    if (!stash && !swap) continue;
    (stash ? s.stashes : s.swaps)++;
    const Buffer& src = p.buffers[static_cast<size_t>(in.inputs.at(0))];
    s.raw += g.value(src.value).type.bytes();
    s.reserved += p.buffers[static_cast<size_t>(in.outputs.at(0))].bytes;
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == in.codec; });
    if (it == counts.end()) counts.emplace_back(in.codec, 1);
    else it->second++;
  }
  for (const auto& [name, n] : counts) s.codecs += (s.codecs.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  return s;
}

Pass encode_pass(CompressOptions o) {
  return [o](const PlanContext& ctx, Plan p) {
    CompressOptions opts = o;
    if (opts.lossy.empty()) opts.lossy = ctx.options.lossy;
    encode_stashes(ctx.graph, p, opts);
    return p;
  };
}

Pass sign_tails_pass() {
  return [](const PlanContext& ctx, Plan p) {
    encode_sign_tails(ctx.graph, p);
    return p;
  };
}

Pass compress_within_target() {
  return [](const PlanContext& ctx, Plan p) { return finish(ctx.graph, std::move(p), ctx.target, std::string(ctx.policy).c_str()); };
}

Pass compress_over_pass() {
  return [](const PlanContext& ctx, Plan p) {
    const ir::Graph& g = ctx.graph;
    compress_swaps(g, p);
    Plan encoded = p;
    encode_stashes(g, encoded, {.lossy = ctx.options.lossy});
    // An encoding holds its source and its result for one instruction; where that tips
    // a plan made to the target over it, the inner plan (with coded swaps) stands.
    if (ctx.target && encoded.stats.peak_device > ctx.target && p.stats.peak_device <= ctx.target) return p;
    return finish(g, std::move(encoded), ctx.target, std::string(ctx.policy).c_str());
  };
}

}  // namespace dlmem::planners
