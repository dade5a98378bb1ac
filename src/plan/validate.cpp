#include <algorithm>
#include <array>
#include <optional>
#include <string>

#include "plan/plan.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::plan {

namespace {

// A broken rule of the plan contract, with the instruction and buffer it concerns in
// the message. find_violation turns it into an answer; validate into an InternalError.
struct PlanViolation {
  std::string message;
};
#define PLAN_CHECK(cond, ...)                                                          \
  do {                                                                                 \
    if (!(cond)) throw PlanViolation{::dlmem::detail::concat(__VA_ARGS__)};            \
  } while (0)

enum class State : uint8_t { absent, resident, freed };

// Note [Copy ordering]: copies run asynchronously on the d2h and h2d streams. A copy is
// issued when the compute stream reaches it (every earlier compute-stream instruction
// has completed), each stream completes in order, and `waits` add cross-stream
// dependencies. For every buffer an asynchronous copy reads or writes, the next
// instruction that depends on that copy -- a compute or copy reading what it wrote, an
// instruction writing or freeing what it reads or writes -- must know the copy is
// complete, directly or through a chain of waits. This is what makes the executor's
// overlap safe and the simulator's timeline exact.
void check_copy_ordering(const ir::Graph& g, const Plan& p) {
  constexpr int kStreams = 3;
  using Known = std::array<int, kStreams>;  // per stream: highest instruction known complete
  const size_t n = p.program.size();
  std::vector<Known> known_after(n);
  Known compute_known{-1, -1, -1};
  std::array<Known, kStreams> stream_known{};
  stream_known.fill(Known{-1, -1, -1});
  int last_compute_stream = -1;
  // Per buffer: the last asynchronous copy writing it and the last one reading it.
  std::vector<int> copy_writer(p.buffers.size(), -1), copy_reader(p.buffers.size(), -1);
  auto merge = [](Known& a, const Known& b) {
    for (int s = 0; s < kStreams; ++s) a[static_cast<size_t>(s)] = std::max(a[static_cast<size_t>(s)], b[static_cast<size_t>(s)]);
  };
  for (size_t i = 0; i < n; ++i) {
    const Instr& in = p.program[i];
    const bool copy = in.kind == InstrKind::swap_out || in.kind == InstrKind::swap_in;
    if (in.kind == InstrKind::swap_out)
      PLAN_CHECK(in.stream == Stream::d2h, "swap_out ", i, " must run on the d2h stream");
    if (in.kind == InstrKind::swap_in)
      PLAN_CHECK(in.stream == Stream::h2d, "swap_in ", i, " must run on the h2d stream");
    if (in.kind == InstrKind::compute || in.kind == InstrKind::free)
      PLAN_CHECK(in.stream == Stream::compute, "instruction ", i, " (", instr_name(in.kind), ") must run on the compute stream");
    const size_t s = static_cast<size_t>(in.stream);
    Known k = in.stream == Stream::compute ? compute_known : stream_known[s];
    if (in.stream != Stream::compute) {
      // Issued when the compute stream reaches it: everything the compute stream knows.
      merge(k, compute_known);
      k[static_cast<size_t>(Stream::compute)] = std::max(k[static_cast<size_t>(Stream::compute)], last_compute_stream);
    }
    for (int w : in.waits) {
      PLAN_CHECK(w >= 0 && static_cast<size_t>(w) < i, "instruction ", i, " waits on ", w);
      merge(k, known_after[static_cast<size_t>(w)]);
    }
    auto complete = [&](int c) {
      return c < 0 || k[static_cast<size_t>(p.program[static_cast<size_t>(c)].stream)] >= c;
    };
    auto need = [&](int c, BufferId b, const char* what) {
      PLAN_CHECK(complete(c), "instruction ", i, " (", instr_name(in.kind), ") ", what, " buffer ", b, " ('",
                  g.value(p.buffers[static_cast<size_t>(b)].value).name, "') before copy ", c,
                  " on it is known to be complete; add it to `waits`");
    };
    auto reads = [&](BufferId b) { need(copy_writer[static_cast<size_t>(b)], b, "reads"); };
    auto writes = [&](BufferId b) {
      need(copy_writer[static_cast<size_t>(b)], b, "writes");
      need(copy_reader[static_cast<size_t>(b)], b, "writes");
    };
    switch (in.kind) {
      case InstrKind::compute: {
        const ir::OpDef& def = ir::op_def(g.node(in.node).op);
        for (size_t j = 0; j < in.inputs.size(); ++j) {
          if (def.mutates_input(static_cast<int>(j))) writes(in.inputs[j]);
          else reads(in.inputs[j]);
        }
        // A view's output is its input's storage: nothing is written.
        for (BufferId b : in.outputs) {
          if (def.view) reads(b);
          else writes(b);
        }
        if (in.workspace != kNoBuffer) writes(in.workspace);
        break;
      }
      case InstrKind::free: writes(in.buffer); break;
      default:
        for (BufferId b : in.inputs) reads(b);
        for (BufferId b : in.outputs) writes(b);
        break;
    }
    k[s] = std::max(k[s], static_cast<int>(i));
    known_after[i] = k;
    if (in.stream == Stream::compute) {
      compute_known = k;
      last_compute_stream = static_cast<int>(i);
    } else {
      stream_known[s] = k;
    }
    if (copy || in.stream != Stream::compute) {
      for (BufferId b : in.inputs) copy_reader[static_cast<size_t>(b)] = static_cast<int>(i);
      for (BufferId b : in.outputs) copy_writer[static_cast<size_t>(b)] = static_cast<int>(i);
    }
  }
}

void check_rules(const ir::Graph& g, const Plan& p) {
  const size_t nb = p.buffers.size();
  auto valid_id = [&](BufferId b, size_t i) {
    PLAN_CHECK(b >= 0 && static_cast<size_t>(b) < nb, "instruction ", i, " names buffer ", b);
    return static_cast<size_t>(b);
  };
  std::vector<State> state(nb, State::absent);
  for (const Buffer& b : p.buffers)
    if (b.preloaded) state[static_cast<size_t>(b.id)] = State::resident;

  std::vector<int> computed(static_cast<size_t>(g.num_nodes()), 0);
  std::vector<int> first_runs(static_cast<size_t>(g.num_nodes()), 0);
  for (size_t i = 0; i < p.program.size(); ++i) {
    const Instr& in = p.program[i];
    auto read = [&](BufferId b) {
      const size_t id = valid_id(b, i);
      PLAN_CHECK(state[id] == State::resident, "instruction ", i, " (", instr_name(in.kind),
                 ") reads buffer ", b, " ('", g.value(p.buffers[id].value).name, "') which is ",
                 state[id] == State::freed ? "freed" : "not yet written");
    };
    auto write = [&](BufferId b) {
      const size_t id = valid_id(b, i);
      PLAN_CHECK(state[id] != State::freed, "instruction ", i, " writes freed buffer ", b, " ('",
                 g.value(p.buffers[id].value).name, "')");
      state[id] = State::resident;
    };
    switch (in.kind) {
      case InstrKind::compute: {
        PLAN_CHECK(in.node >= 0 && in.node < g.num_nodes(), "instruction ", i, " runs no node");
        const ir::Node& n = g.node(in.node);
        PLAN_CHECK(in.inputs.size() == n.inputs.size() && in.outputs.size() == n.outputs.size(),
                    "instruction ", i, " buffers do not match node ", n.name);
        computed[static_cast<size_t>(n.id)]++;
        if (!in.recompute) first_runs[static_cast<size_t>(n.id)]++;
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          read(in.inputs[k]);
          const Buffer& b = p.buffers[static_cast<size_t>(in.inputs[k])];
          PLAN_CHECK(b.space == Space::device, "node ", n.name, " reads host buffer ", b.id);
          PLAN_CHECK(b.bytes >= g.value(n.inputs[k]).type.bytes(), "buffer ", b.id,
                      " is smaller than ", g.value(n.inputs[k]).name);
        }
        for (size_t k = 0; k < n.outputs.size(); ++k) {
          write(in.outputs[k]);
          const Buffer& b = p.buffers[static_cast<size_t>(in.outputs[k])];
          PLAN_CHECK(b.space == Space::device, "node ", n.name, " writes host buffer ", b.id);
          PLAN_CHECK(b.bytes >= g.value(n.outputs[k]).type.bytes(), "buffer ", b.id,
                      " is smaller than ", g.value(n.outputs[k]).name);
        }
        if (in.workspace != kNoBuffer) write(in.workspace);
        if (in.recompute)
          PLAN_CHECK(n.phase == ir::Phase::forward && ir::op_def(n.op).recomputable,
                      "node ", n.name, " cannot be recomputed");
        break;
      }
      case InstrKind::free: {
        const size_t id = valid_id(in.buffer, i);
        PLAN_CHECK(state[id] == State::resident, "instruction ", i, " frees buffer ", in.buffer,
                    " which is not resident");
        PLAN_CHECK(!p.buffers[id].persistent, "instruction ", i, " frees persistent buffer ", in.buffer);
        state[id] = State::freed;
        break;
      }
      case InstrKind::swap_out:
      case InstrKind::swap_in:
      case InstrKind::compress:
      case InstrKind::decompress: {
        PLAN_CHECK(in.inputs.size() == 1 && in.outputs.size() == 1, "instruction ", i,
                    " must have one source and one destination");
        read(in.inputs[0]);
        write(in.outputs[0]);
        const Buffer& src = p.buffers[static_cast<size_t>(in.inputs[0])];
        const Buffer& dst = p.buffers[static_cast<size_t>(in.outputs[0])];
        if (in.kind == InstrKind::swap_out)
          PLAN_CHECK(src.space == Space::device && dst.space == Space::host, "swap_out ", i, " direction");
        if (in.kind == InstrKind::swap_in)
          PLAN_CHECK(src.space == Space::host && dst.space == Space::device, "swap_in ", i, " direction");
        break;
      }
    }
    for (int w : in.waits) PLAN_CHECK(w >= 0 && static_cast<size_t>(w) < i, "instruction ", i, " waits on ", w);
  }
  check_copy_ordering(g, p);
  for (const ir::Node& n : g.nodes()) {
    const int c = computed[static_cast<size_t>(n.id)];
    PLAN_CHECK(c >= 1, "node ", n.name, " is never computed");
    PLAN_CHECK(first_runs[static_cast<size_t>(n.id)] == 1, "node ", n.name,
                " must run exactly once not as a recomputation");
  }

  // Placement: alignment, inside the arena, and no two buffers resident at the same
  // time overlap in memory.
  for (Space space : {Space::device, Space::host}) {
    const uint64_t arena = space == Space::device ? p.device_arena : p.host_arena;
    std::vector<const Buffer*> placed;
    for (const Buffer& b : p.buffers) {
      if (b.space != space || b.begin >= b.end) continue;
      if (b.offset < 0) {
        PLAN_CHECK(p.placement.empty(), "buffer ", b.id, " is not placed");
        continue;
      }
      PLAN_CHECK(static_cast<uint64_t>(b.offset) % kAlignment == 0, "buffer ", b.id, " offset ",
                  b.offset, " is not ", kAlignment, "-byte aligned");
      PLAN_CHECK(static_cast<uint64_t>(b.offset) + b.bytes <= arena, "buffer ", b.id,
                  " ends past the arena (", b.offset, " + ", b.bytes, " > ", arena, ")");
      placed.push_back(&b);
    }
    std::sort(placed.begin(), placed.end(), [](const Buffer* a, const Buffer* b) {
      return a->offset < b->offset || (a->offset == b->offset && a->id < b->id);
    });
    for (size_t i = 0; i < placed.size(); ++i) {
      const Buffer& a = *placed[i];
      const uint64_t a_end = static_cast<uint64_t>(a.offset) + a.bytes;
      for (size_t j = i + 1; j < placed.size() && static_cast<uint64_t>(placed[j]->offset) < a_end; ++j) {
        const Buffer& b = *placed[j];
        if (b.bytes == 0 || a.bytes == 0) continue;
        PLAN_CHECK(a.end <= b.begin || b.end <= a.begin, "buffers ", a.id, " and ", b.id,
                    " overlap in memory while both are resident ([", a.begin, ",", a.end, ") and [",
                    b.begin, ",", b.end, "))");
      }
    }
  }
}

}  // namespace

std::optional<std::string> find_violation(const ir::Graph& g, const Plan& p) {
  try {
    check_rules(g, p);
  } catch (const PlanViolation& v) {
    return v.message;
  }
  return std::nullopt;
}

void validate(const ir::Graph& g, const Plan& p) {
  if (const auto v = find_violation(g, p)) throw InternalError("internal error: an invalid plan (" + p.policy + "): " + *v);
  if (p.budget > 0) {
    const uint64_t need = p.placement.empty() ? p.stats.peak_device : p.device_arena;
    if (need > p.budget)
      throw OutOfMemory("the plan (", p.policy, ") needs ", human_bytes(need), " of device memory but the budget is ",
                        human_bytes(p.budget), "; the smallest budget this policy reaches is ",
                        human_bytes(need))
          .reach(need);
  }
}

}  // namespace dlmem::plan
