// Tensor-granular swapping with simulated triggers (Meng et al. 2017; Capuchin, Peng et
// al. 2020). See swap.h for the policy and emit.h for the program it writes.
//
// Note [Tensor swap planning] -- the program swapped is the share policy's (the default
// plan through the in-place pass, swap::share_base): in-place writes -- ReLU over its
// input, a gradient over the activation it replaces -- lower the peak and the largest
// single node's working set before anything moves, so fewer bytes must cross the link
// for a budget, and budgets that no swap of the plain program reaches (VGG-16 at batch
// 256 at half its peak: ReLU's backward no longer holds y, dy and dx at once) become
// reachable. A swapped buffer may hold
// a chain of values (conv output, ReLU output in place, later the gradient over it);
// it leaves after the last write before its gap and comes back before the first access
// after it, in-place writes from there on landing in the swapped-in copy. Gradients are
// candidates too: where a node holds three feature maps of the largest size (VGG-16's
// features.2 backward: its input, the incoming gradient and the one it wrote), only
// moving the written gradient across the node gets under some budgets -- a stall the
// repair's cost counts. The default program is planned as well and the better plan
// kept (run()): sharing changes which buffers exist, and their placement can fragment
// more, so a plan over it can need one more swap to fit the same arena. Then three
// steps, all on schedule positions:
//  1. Candidates: every swappable buffer, at the longest gap between two of its
//     accesses (by estimated time), scored by bytes x gap time. With a target: at the
//     position furthest over it (ignoring copies in flight), take the best-scoring
//     candidate whose gap covers it, until none is over; without one, take those
//     whose round trip fits in their gap (Capuchin's positive free time).
//  2. Timing, by simulating the emitted plan on the device profile: each release of
//     device bytes goes after the first compute that ends after the swap-out has
//     completed (no stall); the swap-ins are laid out on the FIFO h2d stream either as
//     late as possible, from the last use backwards (each ends before its use and
//     before the next copy must start), or greedily in use order (each as late as it
//     still arrives behind the ones before it), and each is issued at the latest
//     position reached by then (in-trigger). Repeated, as Capuchin's feedback adjusts
//     triggers, because stalls move the timeline. The whole plan is made both ways and
//     the faster one by simulation kept (neither layout wins everywhere: the greedy one
//     prefetches earlier, which helps where memory, not the link, is tight).
//     Without a target, tensors whose copies still stall the compute stream after
//     timing are dropped and the rest timed again (only hidden swaps remain).
//  3. Repair: while the plan's peak (copies in flight included) is over the target, at
//     the peak position either take another candidate whose gap covers it or tighten an
//     in-flight window there (a later trigger or an earlier release), whichever costs
//     less per byte: the candidate its round trip on links as busy as the simulation
//     shows them, and at least the part of the round trip its gap cannot hide; the
//     window the stall it adds. Bounds only tighten, so timing and repair converge;
//     the plan returned always comes out of a repair pass, so it meets the target.
#include <algorithm>
#include <limits>
#include <numeric>
#include <optional>
#include <tuple>

#include "plan/placement.h"
#include "planners/swap/emit.h"
#include "planners/planner.h"
#include "planners/swap/swap.h"
#include "sim/cost_model.h"
#include "sim/simulator.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners {

namespace {

struct Candidate {
  BufferId buffer = kNoBuffer;  // of the base plan
  uint64_t bytes = 0;
  int producer = -1;  // out_after: the last write before the gap
  int a = -1, b = -1;  // gap (a, b): last access before, first access after
  double gap = 0;      // estimated seconds between the end of a and the start of b
  double score = 0;
  bool taken = false;
};

// Device bytes resident while each schedule position's compute runs.
std::vector<uint64_t> live_at_computes(const Plan& p, const std::vector<int>& ci) {
  std::vector<int64_t> delta(p.program.size() + 1, 0);
  for (const Buffer& b : p.buffers) {
    if (b.space != Space::device || b.begin >= b.end) continue;
    delta[static_cast<size_t>(b.begin)] += static_cast<int64_t>(b.bytes);
    delta[static_cast<size_t>(b.end)] -= static_cast<int64_t>(b.bytes);
  }
  std::vector<uint64_t> at_index(p.program.size(), 0);
  int64_t cur = 0;
  for (size_t i = 0; i < p.program.size(); ++i) at_index[i] = static_cast<uint64_t>(cur += delta[i]);
  std::vector<uint64_t> out(ci.size(), 0);
  for (size_t i = 0; i < ci.size(); ++i) out[i] = at_index[static_cast<size_t>(ci[i])];
  return out;
}

class TensorPlanner {
 public:
  // Plans over `base` (its schedule: `L`) within the context's target.
  TensorPlanner(const PlanContext& ctx, const Plan& base)
      : g_(ctx.graph),
        base_(&base),
        nodes_(swap::position_nodes(base)),
        target_(ctx.target),
        arena_limit_(ctx.arena_limit()),
        ctx_(ctx),
        cm_(ctx.cost) {}

  // Plans over the base with both ways of laying out the swap-ins (Note [Tensor swap
  // planning], step 2), from the target and from 95% of it, and keeps the best plan by
  // Note [Choosing between plans] (planners/pass.h): one whose placed arena fits the
  // budget (the budget is on the arena; the target, on max live, may be below it when
  // make_plan asks again after a placement overshoot -- Note [Budget and placement]),
  // then the faster by simulation, then the smaller peak; on a tie the earlier. A
  // variant whose arena overshoots, while it is faster than the best plan that fits
  // (this base's, or the incumbent of an enclosing best_of), is planned again against a
  // target lowered by the overshoot, as make_plan does, up to kDescents times:
  // otherwise a faster program that fragments more (one with stash encodings: many
  // more short buffers) would lose to any that fits. OutOfMemory only if every
  // variant fails.
  Plan run() {
    std::optional<Plan> best;
    PlanScore best_score;
    std::optional<OutOfMemory> failure;
    const uint64_t budget = target_;
    find_candidates();
    for (uint64_t start : {budget, budget / 20 * 19}) {
      if (!budget && start != budget) break;
      for (bool alap : {true, false}) {
        alap_ = alap;
        target_ = start;
        for (int descent = 0; descent <= kDescents; ++descent) {
          for (Candidate& c : cands_) c.taken = false;
          items_.clear();
          try {
            Plan p = run_once();
            Plan placed = p;
            place(placed, ctx_.options.placement);
            const bool over = arena_limit_ > 0 && placed.device_arena > arena_limit_;
            const PlanScore key{over, sim::simulate(g_, p, cm_, {.record_memory = false}).makespan, p.stats.peak_device};
            const uint64_t peak = p.stats.peak_device, arena = placed.device_arena;
            // Descending only slows a plan down: worth it only while this variant is
            // faster than the best plan that fits.
            std::optional<PlanScore> leader = ctx_.incumbent;
            if (best && (!leader || best_score.better_than(*leader))) leader = best_score;
            const bool worth = !leader || leader->over || key.seconds < leader->seconds;
            if (!best || key.better_than(best_score)) {
              best = std::move(p);
              best_score = key;
            }
            // Hopeless against a fitting leader (PlanContext::give_up_over): descending
            // only slows a plan, and no other variant is tried either.
            if (ctx_.give_up_over > 0 && leader && !leader->over && key.seconds > ctx_.give_up_over * leader->seconds) {
              target_ = budget;
              return std::move(*best);
            }
            if (!over || !worth) break;
            const uint64_t next = lowered_target(target_, peak, arena, arena_limit_, 0);
            if (next == 0) break;
            target_ = next;
          } catch (const OutOfMemory& e) {
            if (!failure) failure = e;
            break;
          }
        }
      }
    }
    target_ = budget;
    if (!best) throw *failure;
    return std::move(*best);
  }

 private:
  Plan run_once() {
    select();
    Plan p = emit();
    for (int pass = 0;; ++pass) {
      for (int round = 0; round < kRounds; ++round) {
        const bool moved = retime(p);
        p = emit();
        const int repairs = repair(p);
        if (!moved && repairs == 0) break;
      }
      // Without a budget, swap only what the simulation shows hidden: drop the tensors
      // whose copies still make the compute stream wait, and time the rest again.
      if (target_ != 0 || pass == kDropPasses || !drop_stalling(p)) break;
      p = emit();
    }
    return p;
  }

  static constexpr int kRounds = 8;
  static constexpr int kDropPasses = 64;
  static constexpr int kDescents = 3;

  struct Item {
    size_t cand = 0;
    swap::SwapItem s;
    int free_cap = 0;     // free_after <= free_cap (repair lowers it)
    int trigger_min = 0;  // trigger >= trigger_min (repair raises it)
  };

  void find_candidates() {
    const int steps = static_cast<int>(nodes_.size());
    dur_.resize(static_cast<size_t>(steps));
    start_.assign(static_cast<size_t>(steps) + 1, 0.0);
    for (int i = 0; i < steps; ++i) {
      dur_[static_cast<size_t>(i)] = cm_.node_seconds[static_cast<size_t>(nodes_[static_cast<size_t>(i)])];
      start_[static_cast<size_t>(i) + 1] = start_[static_cast<size_t>(i)] + dur_[static_cast<size_t>(i)];
    }
    cands_.clear();
    const auto acc = swap::buffer_accesses(g_, *base_);
    for (const Buffer& b : base_->buffers) {
      if (!swap::swappable(*base_, b.id)) continue;
      const auto& a = acc[static_cast<size_t>(b.id)].at;
      Candidate c;
      c.buffer = b.id;
      c.bytes = b.bytes;
      for (size_t k = 1; k < a.size(); ++k) {
        if (a[k] - a[k - 1] < 2) continue;
        const double gap = start_[static_cast<size_t>(a[k])] - start_[static_cast<size_t>(a[k - 1]) + 1];
        if (c.a < 0 || gap > c.gap) {
          c.a = a[k - 1];
          c.b = a[k];
          c.gap = gap;
        }
      }
      if (c.a < 0) continue;
      c.producer = acc[static_cast<size_t>(b.id)].last_write(c.a);
      c.score = static_cast<double>(c.bytes) * c.gap;
      cands_.push_back(c);
    }
    order_.resize(cands_.size());
    std::iota(order_.begin(), order_.end(), size_t{0});
    std::stable_sort(order_.begin(), order_.end(), [&](size_t x, size_t y) { return cands_[x].score > cands_[y].score; });
  }

  void take(size_t c) {
    Candidate& cd = cands_[c];
    cd.taken = true;
    Item it;
    it.cand = c;
    it.s.buffer = cd.buffer;
    it.s.bytes = cd.bytes;
    it.s.out_after = cd.producer;
    it.s.last_before = cd.a;
    it.s.use = cd.b;
    it.s.free_after = cd.a;  // least memory first; retime() relaxes within the bounds
    it.s.trigger = cd.b;
    it.free_cap = cd.b - 1;
    it.trigger_min = cd.a + 1;
    items_.push_back(it);
  }

  void select() {
    if (target_ == 0) {
      for (size_t c : order_) {
        const Candidate& cd = cands_[c];
        const double round_trip = cm_.copy_seconds(Stream::d2h, cd.bytes) + cm_.copy_seconds(Stream::h2d, cd.bytes);
        if (round_trip < cd.gap) take(c);
      }
      return;
    }
    // At the position furthest over the target, take the best-scoring candidate whose
    // gap covers it, until no position is over (copies in flight are repaired later).
    std::vector<uint64_t> ideal = live_at_computes(*base_, swap::compute_index(*base_));
    for (;;) {
      const size_t worst = static_cast<size_t>(std::max_element(ideal.begin(), ideal.end()) - ideal.begin());
      if (ideal[worst] <= target_) break;
      const int pos = static_cast<int>(worst);
      size_t pick = cands_.size();
      for (size_t c : order_)
        if (!cands_[c].taken && cands_[c].a < pos && pos < cands_[c].b) {
          pick = c;
          break;
        }
      if (pick == cands_.size()) break;  // repair() reports what cannot be reached
      take(pick);
      const Candidate& cd = cands_[pick];
      for (int i = cd.a + 1; i < cd.b; ++i) ideal[static_cast<size_t>(i)] -= std::min(ideal[static_cast<size_t>(i)], cd.bytes);
    }
  }

  Plan emit() {
    std::vector<swap::SwapItem> s;
    s.reserve(items_.size());
    for (const Item& it : items_) s.push_back(it.s);
    return swap::emit_swap_plan(g_, *base_, s, &emitted_);
  }

  // Step 2 of Note [Tensor swap planning]. Returns whether any position moved.
  bool retime(const Plan& p) {
    const sim::SimResult r = sim::simulate(g_, p, cm_, {.record_memory = false});
    const std::vector<int> ci = swap::compute_index(p);
    auto issue = [&](int pos) { return r.timeline[static_cast<size_t>(ci[static_cast<size_t>(pos)])].issue; };
    auto end = [&](int pos) { return r.timeline[static_cast<size_t>(ci[static_cast<size_t>(pos)])].end; };
    bool moved = false;
    // Releases: after the first compute that ends once the swap-out is done.
    for (size_t k = 0; k < items_.size(); ++k) {
      Item& it = items_[k];
      const double out_done = r.timeline[static_cast<size_t>(emitted_[k].swap_out)].end;
      int f = it.s.last_before;
      while (f < it.free_cap && end(f) < out_done) ++f;
      moved = moved || f != it.s.free_after;
      it.s.free_after = f;
    }
    // Triggers. The h2d stream is FIFO. As late as possible (alap_): lay the copies
    // out from the last use backwards -- each must end before its use is reached and
    // before the copy after it has to start -- and issue each at the latest position
    // reached by its planned start. Otherwise each in use order, at the latest position
    // from which it still arrives in time behind the copies before it.
    std::vector<size_t> by_use(items_.size());
    std::iota(by_use.begin(), by_use.end(), size_t{0});
    std::stable_sort(by_use.begin(), by_use.end(), [&](size_t x, size_t y) { return items_[x].s.use < items_[y].s.use; });
    if (alap_) {
      double next_start = std::numeric_limits<double>::infinity();
      for (auto k = by_use.rbegin(); k != by_use.rend(); ++k) {
        swap::SwapItem& s = items_[*k].s;
        const double start = std::min(issue(s.use), next_start) - cm_.copy_seconds(Stream::h2d, s.bytes);
        const int lo = std::max(items_[*k].trigger_min, s.free_after + 1);
        int t = s.use;
        while (t > lo && issue(t) > start) --t;
        next_start = start;
        moved = moved || t != s.trigger;
        s.trigger = t;
      }
    } else {
      double h2d_free = 0;
      for (size_t k : by_use) {
        swap::SwapItem& s = items_[k].s;
        const double dur = cm_.copy_seconds(Stream::h2d, s.bytes);
        const int lo = std::max(items_[k].trigger_min, s.free_after + 1);
        int t = s.use;
        while (t > lo && std::max(issue(t), h2d_free) + dur > issue(s.use)) --t;
        h2d_free = std::max(issue(t), h2d_free) + dur;
        moved = moved || t != s.trigger;
        s.trigger = t;
      }
    }
    return moved;
  }

  // Removes tensors whose copies make the compute stream wait; returns whether any was
  // removed. A copy may be late only because it queued behind late ones on its FIFO
  // stream, so those late on their own (not queued) go, and of the others the earlier
  // half in stream order; the rest are timed again without them.
  bool drop_stalling(const Plan& p) {
    const sim::SimResult r = sim::simulate(g_, p, cm_, {.record_memory = false});
    const std::vector<int> ci = swap::compute_index(p);
    auto ready = [&](int instr) {  // when the copy could have started, were its stream free
      double t = r.timeline[static_cast<size_t>(instr)].issue;
      for (int w : p.program[static_cast<size_t>(instr)].waits) t = std::max(t, r.timeline[static_cast<size_t>(w)].end);
      return t;
    };
    std::vector<bool> drop(items_.size(), false);
    std::vector<std::pair<int, size_t>> queued_late[2];  // (copy instruction, item) per stream
    for (size_t k = 0; k < items_.size(); ++k) {
      const int copies[2] = {emitted_[k].swap_out, emitted_[k].swap_in};
      const double deadlines[2] = {
          r.timeline[static_cast<size_t>(ci[static_cast<size_t>(items_[k].s.free_after)])].end,
          r.timeline[static_cast<size_t>(ci[static_cast<size_t>(items_[k].s.use)])].issue};
      for (int d = 0; d < 2; ++d) {
        const sim::SimEvent& e = r.timeline[static_cast<size_t>(copies[d])];
        const double tolerance = 1e-9 + 1e-6 * (e.end - e.start);  // rounding, not a stall
        if (e.end <= deadlines[d] + tolerance) continue;
        if (e.start <= ready(copies[d]) + tolerance) drop[k] = true;
        else queued_late[d].emplace_back(copies[d], k);
      }
    }
    for (auto& late : queued_late) {
      std::sort(late.begin(), late.end());
      for (size_t i = 0; i < (late.size() + 1) / 2; ++i) drop[late[i].second] = true;
    }
    std::vector<Item> keep;
    for (size_t k = 0; k < items_.size(); ++k)
      if (!drop[k]) keep.push_back(items_[k]);  // dropped ones stay taken: never retried
    const bool dropped = keep.size() < items_.size();
    items_ = std::move(keep);
    return dropped;
  }

  // Step 3 of Note [Tensor swap planning]: returns the number of changes made; `p` is
  // the plan after them.
  int repair(Plan& p) {
    if (target_ == 0) return 0;
    int changes = 0;
    while (p.stats.peak_device > target_) {
      const int pos = position_of(p, p.stats.peak_instr);
      const sim::SimResult r = sim::simulate(g_, p, cm_, {.record_memory = false});
      // (a) Another tensor whose gap covers the peak. Its cost per byte: the round trip
      // on the links, as far as the links are busy (on idle links it hides), and at
      // least the part of it that its gap cannot hide (a gradient held across one node).
      size_t cand = cands_.size();
      for (size_t c : order_)
        if (!cands_[c].taken && cands_[c].a < pos && pos < cands_[c].b) {
          cand = c;
          break;
        }
      double cand_cost = std::numeric_limits<double>::infinity();
      if (cand < cands_.size()) {
        const uint64_t bytes = cands_[cand].bytes;
        const double busy = std::min(1.0, (r.d2h_seconds + r.h2d_seconds) / (2 * std::max(r.makespan, 1e-12)));
        const double round_trip = cm_.copy_seconds(Stream::d2h, bytes) + cm_.copy_seconds(Stream::h2d, bytes);
        cand_cost = std::max(round_trip * busy, round_trip - cands_[cand].gap) / static_cast<double>(bytes);
      }
      // (b) A tighter in-flight window over the peak, by the stall it adds per byte.
      const Tightening t = cheapest_tightening(r, p, pos);
      if (t.item && t.cost_per_byte < cand_cost) {
        apply(t, pos);
      } else if (cand < cands_.size()) {
        take(cand);
      } else {
        throw OutOfMemory("policy swap:tensor reaches a peak of ", human_bytes(p.stats.peak_device), " at node '",
                          g_.node(nodes_[static_cast<size_t>(pos)]).name, "', above the target ", human_bytes(target_),
                          ": nothing resident there can be swapped; the smallest budget it reaches is ",
                          human_bytes(p.stats.peak_device))
            .reach(p.stats.peak_device);
      }
      ++changes;
      p = emit();
    }
    return changes;
  }

  // The schedule position an instruction belongs to: the next compute at or after it,
  // but a stash encoding the compute before it (it runs after that compute, with what
  // is resident then; emit.h, position_of_instrs).
  int position_of(const Plan& p, int instr) const {
    const std::vector<int> ci = swap::compute_index(p);
    if (instr > 0 && p.program[static_cast<size_t>(instr)].kind == InstrKind::compress) {
      const auto it = std::upper_bound(ci.begin(), ci.end(), instr);
      if (it != ci.begin()) return static_cast<int>(it - ci.begin()) - 1;
    }
    const auto it = std::lower_bound(ci.begin(), ci.end(), std::max(instr, 0));
    return it == ci.end() ? static_cast<int>(ci.size()) - 1 : static_cast<int>(it - ci.begin());
  }

  struct Tightening {
    Item* item = nullptr;
    bool trigger = false;  // move the trigger after `pos` (else the release before it)
    double cost_per_byte = std::numeric_limits<double>::infinity();
  };

  // The in-flight window over `pos` whose shrinking by one position costs least.
  Tightening cheapest_tightening(const sim::SimResult& r, const Plan& p, int pos) {
    const std::vector<int> ci = swap::compute_index(p);
    auto at = [&](int instr) -> const sim::SimEvent& { return r.timeline[static_cast<size_t>(instr)]; };
    Tightening best;
    for (size_t k = 0; k < items_.size(); ++k) {
      Item& it = items_[k];
      const swap::SwapItem& s = it.s;
      // The swap-in destination is resident from the trigger to the use: a later
      // trigger costs what the copy then arrives late.
      if (s.trigger <= pos && pos < s.use) {
        const double slack = at(ci[static_cast<size_t>(s.use)]).issue - at(emitted_[k].swap_in).end;
        const double late = std::max(0.0, at(ci[static_cast<size_t>(pos)]).end - at(ci[static_cast<size_t>(s.trigger)]).issue - slack);
        const double cost = late / static_cast<double>(s.bytes);
        if (cost < best.cost_per_byte) best = {&it, true, cost};
      }
      // The swapped-out source is resident until its release: an earlier release
      // waits for the swap-out.
      if (s.last_before < pos && pos <= s.free_after) {
        const double cost =
            std::max(0.0, at(emitted_[k].swap_out).end - at(ci[static_cast<size_t>(pos - 1)]).end) / static_cast<double>(s.bytes);
        if (cost < best.cost_per_byte) best = {&it, false, cost};
      }
    }
    return best;
  }

  void apply(const Tightening& t, int pos) {
    if (t.trigger) {
      t.item->trigger_min = pos + 1;
      t.item->s.trigger = pos + 1;
    } else {
      t.item->free_cap = pos - 1;
      t.item->s.free_after = pos - 1;
    }
  }

  const ir::Graph& g_;
  const Plan* base_;               // the program swapped (Note [Tensor swap planning])
  const std::vector<ir::NodeId> nodes_;  // the node computed at each position
  uint64_t target_;
  const uint64_t arena_limit_;     // the budget on the placed arena (0: none)
  const PlanContext& ctx_;
  const sim::CostModel& cm_;
  std::vector<double> dur_, start_;
  std::vector<Candidate> cands_;
  std::vector<size_t> order_;
  std::vector<Item> items_;
  std::vector<swap::EmittedSwap> emitted_;
  bool alap_ = true;
};

}  // namespace

Pass tensor_swap_pass() {
  return [](const PlanContext& ctx, Plan base) {
    return TensorPlanner(ctx, base).run();
  };
}

}  // namespace dlmem::planners
