#include "planners/auto/auto.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>

#include "analysis/memory.h"
#include "planners/compress/compress.h"
#include "planners/planner.h"
#include "planners/recompute/greedy.h"
#include "planners/recompute/recompute.h"
#include "planners/share/inplace.h"
#include "planners/swap/swap.h"
#include "sim/simulator.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners {

namespace {

// Note [Joint planning]: where the line between recomputation and swapping is tried.
constexpr std::array<double, 3> kSplits = {0.25, 0.5, 0.75};
// A swap:tensor search inside a candidate stops once its fitting plan is this much
// slower than the best candidate so far (PlanContext::give_up_over): its other variants
// differ from it by a few percent (docs/architecture.md, "The joint planner").
constexpr double kGiveUpOver = 1.25;

// recompute:greedy within an explicit max-live target (the mixes' relaxed one).
Pass greedy_at(uint64_t target) {
  return [target](const PlanContext& ctx, Plan) { return recompute::plan_greedy(ctx.graph, ctx.live, target); };
}

struct Candidate {
  std::string name;
  Pipeline passes;
  bool swap_base = false;  // a swap:tensor base without recomputation
  Pipeline again = {};     // planned again at a lowered target: `passes` without the search's guards
};

// `hopeless`: set once a swap base fits but is kGiveUpOver slower than the best
// candidate so far; the swap bases after it then do not apply.
std::vector<Candidate> candidates(const PlanContext& ctx, uint64_t plain_peak, std::shared_ptr<bool> hopeless) {
  const ScheduleFn wgf = analysis::weight_gradients_first;
  const uint64_t B = ctx.target;
  // Cheapest first: a plan that fits at the unmanaged step time ends the search, and
  // the quick recomputing plans give the swap descents an incumbent to beat early.
  std::vector<Candidate> c = {
      {"share", {default_program(), inplace_pass()}},
      {"share, encoded", {default_program(), inplace_pass(), encode_pass()}},
  };
  if (B == 0) return c;
  std::vector<Candidate> more = {
      // Each family alone, as its policy plans (auto is never slower than one of them).
      {"recompute:greedy", {recompute::greedy_pass()}},
      {"recompute:chain", {recompute::chain_pass()}},
      {"recompute:sqrt", {recompute::sqrt_pass()}},
      {"swap:vdnn-conv", {default_program(), vdnn_pass(true)}},
      {"swap:vdnn-all", {default_program(), vdnn_pass(false)}},
      // Recomputation with in-place writes and encodings after it.
      // (The families' own passes plan for the context's target, so a candidate planned
      // again at a lowered target -- Note [Joint planning], 3 -- recomputes more.)
      {"recompute:greedy, in place, encoded", {recompute::greedy_pass(), inplace_pass(), encode_pass()}},
      {"recompute:chain, in place, encoded", {recompute::chain_pass(), inplace_pass(), encode_pass()}},
  };
  // swap:tensor's and compress+swap:tensor's bases.
  const Pass unless_hopeless = only_if([hopeless](const PlanContext&) { return !*hopeless; });
  auto bases = std::make_shared<std::vector<std::vector<Instr>>>();
  for (const Candidate& b : std::vector<Candidate>{
           {"share, swap:tensor", {default_program(), inplace_pass(), tensor_swap_pass()}},
           {"swap:tensor", {default_program(), tensor_swap_pass()}},
           {"share, encoded, swap:tensor", {default_program(), inplace_pass(), encode_pass(), tensor_swap_pass()}},
           {"encoded, swap:tensor", {default_program(), encode_pass(), tensor_swap_pass()}},
           {"weight gradients first, share, encoded with sign tails, swap:tensor",
            {only_if(reorders(wgf)), default_program(wgf), inplace_pass(), encode_pass(), sign_tails_pass(),
             tensor_swap_pass()}}}) {
    Pipeline p = {unless_hopeless};
    p.insert(p.end(), b.passes.begin(), b.passes.end() - 1);
    p.push_back(distinct(bases));  // the same program as an earlier base: nothing new to try
    p.push_back(b.passes.back());
    more.push_back({b.name, std::move(p), true, b.passes});
  }
  c.insert(c.end(), more.begin(), more.end());
  // The mixes (Note [Joint planning], 2).
  if (plain_peak > B)
    for (double f : kSplits) {
      const uint64_t T = B + static_cast<uint64_t>(f * static_cast<double>(plain_peak - B));
      c.push_back({"recompute:greedy to " + human_bytes(T) + ", in place, encoded, swap:tensor",
                   {greedy_at(T), inplace_pass(), encode_pass(), tensor_swap_pass()}});
    }
  return c;
}

// DLMEM_TRACE=auto: every candidate's score on stderr.
bool tracing() {
  const char* t = std::getenv("DLMEM_TRACE");
  return t && std::string_view(t).find("auto") != std::string_view::npos;
}

}  // namespace

Pass auto_pass() {
  return [](const PlanContext& ctx, Plan) {
    Plan plain = make_default_plan(ctx.graph, ctx.live);
    const double unmanaged = sim::simulate(ctx.graph, plain, ctx.cost, {.record_memory = false}).makespan;
    auto hopeless = std::make_shared<bool>(false);
    const std::vector<Candidate> cands = candidates(ctx, plain.stats.peak_device, hopeless);
    double best_fit = 0;  // the fastest fitting candidate so far
    std::vector<Pipeline> alts;
    for (const Candidate& c : cands) alts.push_back(c.passes);
    size_t chosen = 0;
    std::vector<std::optional<PlanScore>> scores(cands.size());
    Choice how{.within_target = true, .enough_seconds = unmanaged * (1 + 1e-9)};
    how.chose = [&](size_t i) { chosen = i; };
    const bool trace = tracing();
    auto last = std::chrono::steady_clock::now();
    how.observe = [&](size_t i, const std::optional<PlanScore>& s, const std::string& why) {
      scores[i] = s;
      if (s && !s->over) {
        if (cands[i].swap_base && best_fit > 0 && s->seconds > kGiveUpOver * best_fit) *hopeless = true;
        if (best_fit == 0 || s->seconds < best_fit) best_fit = s->seconds;
      }
      if (!trace) return;
      const auto now = std::chrono::steady_clock::now();
      std::cerr << "auto: target " << human_bytes(ctx.target) << "  " << cands[i].name << " ["
                << human_duration(std::chrono::duration<double>(now - last).count()) << "]: ";
      last = now;
      if (s)
        std::cerr << (s->over ? "arena over (" + human_bytes(s->arena) + ")" : "fits") << ", step "
                  << human_duration(s->seconds) << " (" << s->seconds / unmanaged << "x unmanaged), max live "
                  << human_bytes(s->peak) << "\n";
      else
        std::cerr << why << "\n";
    };
    const Pass choose = best_of(alts, how);
    try {
      PlanContext search = ctx;
      search.give_up_over = kGiveUpOver;
      Plan p = choose(search, {});
      PlanScore best = *scores[chosen];
      p.stats.chosen = cands[chosen].name;
      // Note [Joint planning], 3: a candidate as fast as the one kept or faster whose arena came
      // out over only by placement is planned again at a target lowered by its excess,
      // as make_plan does for a policy (up to three times); it replaces the kept plan
      // when it then fits and is still faster.
      const uint64_t floor = analysis::memory_report(ctx.graph, ctx.live).lower_bound / 2;
      for (size_t i = 0; i < cands.size(); ++i) {
        if (!scores[i] || !scores[i]->over || (!best.over && scores[i]->seconds > best.seconds)) continue;
        PlanScore s = *scores[i];
        PlanContext inner = ctx;
        for (int attempt = 0; attempt < 3 && s.over; ++attempt) {
          inner.target = lowered_target(inner.target, s.peak, s.arena, ctx.arena_limit(), floor);
          if (inner.target == 0) break;
          Plan q;
          try {
            q = run_pipeline(inner, cands[i].again.empty() ? cands[i].passes : cands[i].again);
          } catch (const OutOfMemory&) {
            break;
          }
          compute_lifetimes(q);
          compute_stats(ctx.graph, q);
          s = score(ctx, q);
          if (trace)
            std::cerr << "auto: again at target " << human_bytes(inner.target) << "  " << cands[i].name << ": "
                      << (s.over ? "arena over" : "fits") << ", step " << human_duration(s.seconds) << "\n";
          if (!s.over && s.better_than(best)) {
            p = std::move(q);
            best = s;
            p.stats.chosen = cands[i].name + " (at a lowered target)";
          }
        }
      }
      return p;
    } catch (const OutOfMemory&) {
      // What recomputation reaches at its floor, with in-place writes and encodings:
      // auto's smallest budget but for what swapping adds (the message says so).
      const recompute::Problem pb = recompute::make_problem(ctx.graph, ctx.live);
      const uint64_t floor = recompute::greedy_min_peak(pb);
      Plan q = run_pipeline(ctx, {greedy_at(floor), inplace_pass(), encode_pass()});
      throw OutOfMemory("policy auto: no mix of sharing, recomputation, swapping and encoding keeps the step within ",
                        human_bytes(ctx.target), " of live device memory; recomputation with in-place writes and ",
                        "encodings reaches ", human_bytes(q.stats.peak_device), " (no policy goes below ",
                        human_bytes(pb.lower_bound), ", what node '", pb.lower_bound_node,
                        "' needs with the weights and optimizer state); use a budget of at least ",
                        human_bytes(q.stats.peak_device))
          .reach(q.stats.peak_device);
    }
  };
}

// ---------------------------------------------------------------- explain

std::string_view decision_name(Decision d) {
  static constexpr std::array<std::string_view, kDecisions> names = {"keep", "share", "recompute", "swap", "encode"};
  return names[static_cast<size_t>(d)];
}

Explanation explain(const ir::Graph& g, const Plan& p, const sim::CostModel& cost) {
  const std::vector<ir::ValueId> storage = analysis::storages(g);
  auto store = [&](ir::ValueId v) { return storage[static_cast<size_t>(v)]; };
  const sim::SimResult r = sim::simulate(g, p, cost, {.record_memory = false});
  auto seconds = [&](size_t i) { return r.timeline[i].end - r.timeline[i].start; };
  auto stall = [&](size_t i) { return r.timeline[i].start - r.timeline[i].issue; };

  // The stashes: forward results that a backward node reads, in forward order.
  std::vector<bool> stash(static_cast<size_t>(g.num_values()), false);
  std::vector<ir::ValueId> order;
  for (const ir::Node& n : g.nodes()) {
    if (n.phase != ir::Phase::backward) continue;
    for (ir::ValueId v : n.inputs) {
      const ir::ValueId s = store(v);
      const ir::Value& sv = g.value(s);
      if (sv.producer == ir::kNoNode || g.node(sv.producer).phase != ir::Phase::forward ||
          sv.role != ir::Role::activation || stash[static_cast<size_t>(s)])
        continue;
      stash[static_cast<size_t>(s)] = true;
      order.push_back(s);
    }
  }
  std::sort(order.begin(), order.end(), [&](ir::ValueId a, ir::ValueId b) {
    return g.value(a).producer < g.value(b).producer || (g.value(a).producer == g.value(b).producer && a < b);
  });
  std::map<ir::ValueId, TensorDecision> by;
  for (ir::ValueId s : order) by[s] = {.value = s, .name = g.value(s).name, .bytes = g.value(s).type.bytes()};

  // Which stash each program instruction concerns, and what it does with it.
  std::vector<int> recomputes(static_cast<size_t>(g.num_values()), 0);
  std::map<int, ir::ValueId> swap_in_of;  // program index of a swap_in -> its stash
  for (size_t i = 0; i < p.program.size(); ++i) {
    const Instr& in = p.program[i];
    switch (in.kind) {
      case InstrKind::compute: {
        const ir::Node& n = g.node(in.node);
        bool charged = false;  // a recomputation's time goes to its first stashed output
        for (size_t k = 0; k < n.outputs.size(); ++k) {
          const ir::ValueId s = store(n.outputs[k]);
          auto it = by.find(s);
          if (it == by.end()) continue;
          if (in.recompute) {
            it->second.decision = Decision::recompute;
            if (!charged) it->second.cost_seconds += seconds(i);
            charged = true;
            ++recomputes[static_cast<size_t>(s)];
          } else if (it->second.decision == Decision::keep && k < in.outputs.size() &&
                     std::find(in.inputs.begin(), in.inputs.end(), in.outputs[k]) != in.inputs.end()) {
            it->second.decision = Decision::share;  // written over a dying input: one buffer fewer
          }
        }
        break;
      }
      case InstrKind::swap_out:
      case InstrKind::swap_in:
      case InstrKind::compress:
      case InstrKind::decompress: {
        const ir::ValueId s = store(p.buffers[static_cast<size_t>(in.outputs.at(0))].value);
        auto it = by.find(s);
        if (it == by.end()) break;
        TensorDecision& d = it->second;
        if (in.kind == InstrKind::swap_out || in.kind == InstrKind::swap_in) {
          if (d.decision != Decision::recompute) d.decision = Decision::swap;
          if (in.kind == InstrKind::swap_in) swap_in_of[static_cast<int>(i)] = s;
          if (!in.codec.empty() && d.detail.find(in.codec) == std::string::npos)
            d.detail += (d.detail.empty() ? "" : ", ") + std::string("copies coded ") + in.codec;
        } else {
          if (d.decision != Decision::recompute && d.decision != Decision::swap) d.decision = Decision::encode;
          d.cost_seconds += seconds(i);
          if (in.kind == InstrKind::compress) {
            const uint64_t enc = p.buffers[static_cast<size_t>(in.outputs.at(0))].bytes;
            d.saved += d.bytes > enc ? d.bytes - enc : 0;
            if (d.detail.find(in.codec) == std::string::npos)
              d.detail += (d.detail.empty() ? "" : ", ") + in.codec;
          }
        }
        break;
      }
      case InstrKind::free: break;
    }
  }
  // A compute-stream instruction waiting on swap-ins stalls for the one that arrives last.
  for (size_t i = 0; i < p.program.size(); ++i) {
    const Instr& in = p.program[i];
    if (in.stream != Stream::compute || in.waits.empty() || stall(i) <= 0) continue;
    int last = -1;
    for (int w : in.waits)
      if (swap_in_of.count(w) && (last < 0 || r.timeline[static_cast<size_t>(w)].end > r.timeline[static_cast<size_t>(last)].end))
        last = w;
    if (last >= 0) by[swap_in_of[last]].cost_seconds += stall(i);
  }
  Explanation e;
  e.count.assign(kDecisions, 0);
  e.bytes.assign(kDecisions, 0);
  e.saved.assign(kDecisions, 0);
  e.cost_seconds.assign(kDecisions, 0);
  for (ir::ValueId s : order) {
    TensorDecision d = by[s];
    if (d.decision == Decision::recompute) {
      d.detail = std::to_string(recomputes[static_cast<size_t>(s)]) + (recomputes[static_cast<size_t>(s)] == 1 ? " recomputation" : " recomputations");
      d.saved = d.bytes;
    } else if (d.decision == Decision::swap || d.decision == Decision::share) {
      d.saved = d.bytes;
    }
    const size_t k = static_cast<size_t>(d.decision);
    ++e.count[k];
    e.bytes[k] += d.bytes;
    e.saved[k] += d.saved;
    e.cost_seconds[k] += d.cost_seconds;
    e.tensors.push_back(std::move(d));
  }
  return e;
}

nlohmann::json explanation_json(const Explanation& e) {
  nlohmann::json tensors = nlohmann::json::array(), totals = nlohmann::json::object();
  for (const TensorDecision& d : e.tensors)
    tensors.push_back({{"name", d.name}, {"bytes", d.bytes}, {"decision", decision_name(d.decision)},
                       {"detail", d.detail}, {"cost_seconds", d.cost_seconds}, {"saved", d.saved}});
  for (size_t k = 0; k < e.count.size(); ++k)
    totals[std::string(decision_name(static_cast<Decision>(k)))] = {
        {"tensors", e.count[k]}, {"bytes", e.bytes[k]}, {"saved", e.saved[k]}, {"cost_seconds", e.cost_seconds[k]}};
  return {{"tensors", tensors}, {"totals", totals}};
}

}  // namespace dlmem::planners
