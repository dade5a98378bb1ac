#include "planners/recompute/greedy.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "planners/recompute/recompute.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners::recompute {

namespace {

class Simulation {
 public:
  Simulation(const Problem& pb, uint64_t budget, const EvictionOptions& o)
      : pb_(pb), budget_(budget), score_(o.score), lookahead_(o.lookahead), early_evicts_(o.early_evicts), keep_(o.keep),
        nv_(pb.kind.size()) {
    resident_.assign(nv_, false);
    evicted_.assign(nv_, false);
    lock_.assign(nv_, 0);
    next_.assign(nv_, 0);
    last_access_.assign(nv_, 0);
    uf_.resize(nv_);
    std::iota(uf_.begin(), uf_.end(), 0);
    class_cost_.assign(nv_, 0.0);
    for (size_t s = 0; s < nv_; ++s)
      if (pb.kind[s] == StoreKind::preloaded) {
        resident_[s] = true;
        mem_ += pb.bytes[s];
      }
    rebuilt_from_.assign(nv_, false);
    for (const PNode& n : pb.nodes)
      if (n.recomputable)
        for (ir::ValueId in : n.inputs) rebuilt_from_[static_cast<size_t>(in)] = true;
    // Who reads what a node produces: the evicted neighbours of a storage (e*).
    children_.resize(nv_);
    for (const PNode& n : pb.nodes) {
      if (!n.recomputable) continue;
      for (ir::ValueId in : n.inputs)
        if (pb.evictable(in))
          for (ir::ValueId o : n.outputs) children_[static_cast<size_t>(in)].push_back(o);
    }
  }

  std::optional<Sequence> run() {
    seq_.reserve(pb_.nodes.size() * 2);
    for (int t = 0; t < pb_.num_nodes(); ++t) {
      now_ = t;
      if (lookahead_ > 0) rebuild_early(t);
      if (!compute(t, false)) return std::nullopt;
      retire(t);
    }
    return std::move(seq_);
  }

 private:
  static constexpr int kNever = std::numeric_limits<int>::max();

  // Next original reader of s at or after position now_, or kNever.
  int next_use(size_t s) {
    const auto& r = pb_.readers[s];
    size_t& i = next_[s];
    while (i < r.size() && r[i] < now_) ++i;
    return i < r.size() ? r[i] : kNever;
  }

  size_t find(size_t s) {
    while (uf_[s] != s) s = uf_[s] = uf_[uf_[s]];
    return s;
  }

  double cost(size_t s) const { return std::max(pb_.node(pb_.producer[s]).flops, 1.0); }

  // DTR's e*: own cost plus the classes of evicted neighbours (counted once each).
  double projected_cost(size_t s) {
    double c = cost(s);
    roots_.clear();
    auto add = [&](size_t nb) {
      if (!evicted_[nb]) return;
      const size_t r = find(nb);
      if (std::find(roots_.begin(), roots_.end(), r) != roots_.end()) return;
      roots_.push_back(r);
      c += class_cost_[r];
    };
    for (ir::ValueId in : pb_.node(pb_.producer[s]).inputs)
      if (pb_.evictable(in)) add(static_cast<size_t>(in));
    for (ir::ValueId ch : children_[s]) add(static_cast<size_t>(ch));
    return c;
  }

  double score(size_t s) {
    const int next = next_use(s);
    if (next == kNever) return -static_cast<double>(pb_.bytes[s]);  // nothing reads it again: biggest first
    const double bytes = static_cast<double>(std::max<uint64_t>(pb_.bytes[s], 1));
    const double c = projected_cost(s);
    switch (score_) {
      case Score::lookahead: return c / (bytes * static_cast<double>(next - now_ + 1));
      case Score::dtr: return c / (bytes * static_cast<double>(now_ - last_access_[s] + 1));
      case Score::lookahead_size: return c / (bytes * bytes * static_cast<double>(next - now_ + 1));
      case Score::cost_per_byte: return c / bytes;
    }
    return 0;
  }

  void evict(size_t s) {
    resident_[s] = false;
    evicted_[s] = true;
    mem_ -= pb_.bytes[s];
    candidates_.erase(std::find(candidates_.begin(), candidates_.end(), static_cast<ir::ValueId>(s)));
    // Merge with evicted neighbours (DTR's equivalence classes; never split).
    size_t r = find(s);
    class_cost_[r] += cost(s);
    auto join = [&](size_t nb) {
      if (!evicted_[nb]) return;
      const size_t a = find(nb), b = find(s);
      if (a == b) return;
      uf_[a] = b;
      class_cost_[b] += class_cost_[a];
    };
    for (ir::ValueId in : pb_.node(pb_.producer[s]).inputs)
      if (pb_.evictable(in)) join(static_cast<size_t>(in));
    for (ir::ValueId ch : children_[s]) join(static_cast<size_t>(ch));
  }

  // Evicts until `need` more bytes fit; false when nothing unlocked is left.
  bool make_room(uint64_t need) {
    while (mem_ + need > budget_) {
      size_t best = nv_;
      double best_score = 0;
      for (ir::ValueId c : candidates_) {
        const size_t s = static_cast<size_t>(c);
        if (lock_[s] > 0) continue;
        if ((only_dead_ || (keep_ && (*keep_)[s])) && next_use(s) != kNever) continue;
        const double h = score(s);
        if (best == nv_ || h < best_score) {
          best = s;
          best_score = h;
        }
      }
      if (best == nv_) return false;
      evict(best);
    }
    return true;
  }

  void materialise(const PNode& p) {
    for (ir::ValueId o : p.outputs) {
      const size_t s = static_cast<size_t>(o);
      last_access_[s] = now_;
      if (resident_[s]) continue;
      resident_[s] = true;
      evicted_[s] = false;
      mem_ += pb_.bytes[s];
      if (pb_.evictable(o)) candidates_.push_back(o);
    }
  }

  // Rebuilds what the next original nodes will miss before node t runs, when that
  // evicts nothing but storages no one reads again and leaves room for t: memory is
  // often freer before a backward node allocates its gradient than right before the
  // reader (Checkmate's optimal schedules do this; DTR, rebuilding on demand, cannot).
  // Each attempt runs on a copy of the state and is undone when it does not fit.
  void rebuild_early(ir::NodeId t) {
    const PNode& p = pb_.node(t);
    uint64_t need = p.workspace;
    for (ir::ValueId in : p.inputs)
      if (!resident_[static_cast<size_t>(in)]) return;  // t rebuilds first; stay out of its way
    for (ir::ValueId o : p.outputs)
      if (!resident_[static_cast<size_t>(o)]) need += pb_.bytes[static_cast<size_t>(o)];
    auto live_bytes = [&] {  // what t could not evict for free
      uint64_t dead = 0;
      for (ir::ValueId c : candidates_)
        if (lock_[static_cast<size_t>(c)] == 0 && next_use(static_cast<size_t>(c)) == kNever)
          dead += pb_.bytes[static_cast<size_t>(c)];
      return mem_ - dead;
    };
    for (ir::NodeId j = t + 1; j < std::min<ir::NodeId>(t + 1 + lookahead_, pb_.num_nodes()); ++j)
      for (ir::ValueId s : pb_.node(j).inputs) {
        if (resident_[static_cast<size_t>(s)] || !evicted_[static_cast<size_t>(s)]) continue;  // present, or not made yet
        const State saved = state();
        only_dead_ = !early_evicts_;
        const bool ok = compute(pb_.producer[static_cast<size_t>(s)], true) && (early_evicts_ || live_bytes() + need <= budget_);
        only_dead_ = false;
        if (!ok) {
          restore(saved);
          return;
        }
      }
  }

  struct State {
    std::vector<bool> resident, evicted;
    std::vector<int> lock, last_access;
    std::vector<size_t> uf;
    std::vector<double> class_cost;
    std::vector<ir::ValueId> candidates;
    uint64_t mem;
    size_t steps;
  };
  State state() const {
    return {resident_, evicted_, lock_, last_access_, uf_, class_cost_, candidates_, mem_, seq_.size()};
  }
  void restore(const State& s) {
    resident_ = s.resident;
    evicted_ = s.evicted;
    lock_ = s.lock;
    last_access_ = s.last_access;
    uf_ = s.uf;
    class_cost_ = s.class_cost;
    candidates_ = s.candidates;
    mem_ = s.mem;
    seq_.resize(s.steps);
  }

  // Runs node `root` (rebuilding missing inputs first). Each frame locks the inputs it
  // has found resident until it runs.
  bool compute(ir::NodeId root, bool recompute) {
    struct Frame {
      ir::NodeId node;
      bool recompute;
      size_t next = 0;
      std::vector<size_t> locked;
    };
    std::vector<Frame> stack;
    stack.push_back({root, recompute});
    while (!stack.empty()) {
      Frame& f = stack.back();
      const PNode& p = pb_.node(f.node);
      if (f.next < p.inputs.size()) {
        const size_t in = static_cast<size_t>(p.inputs[f.next]);
        if (resident_[in]) {
          lock_[in]++;
          f.locked.push_back(in);
          last_access_[in] = now_;
          f.next++;
        } else {
          DLMEM_CHECK(pb_.evictable(static_cast<ir::ValueId>(in)), "storage ", pb_.graph->value(static_cast<ir::ValueId>(in)).name,
                      " is gone and cannot be rebuilt");
          const ir::NodeId prod = pb_.producer[in];
          if (stack.size() > pb_.nodes.size()) return false;  // cannot happen on a DAG
          stack.push_back({prod, true});
        }
        continue;
      }
      uint64_t need = p.workspace;
      for (ir::ValueId o : p.outputs)
        if (!resident_[static_cast<size_t>(o)]) need += pb_.bytes[static_cast<size_t>(o)];
      // Outputs already resident stay (a recomputation rewrites them in place of the old
      // materialisation); lock them too so they are not chosen while we make room.
      for (ir::ValueId o : p.outputs)
        if (resident_[static_cast<size_t>(o)]) {
          lock_[static_cast<size_t>(o)]++;
          f.locked.push_back(static_cast<size_t>(o));
        }
      if (!make_room(need)) return false;
      materialise(p);
      seq_.push_back({f.node, f.recompute});
      for (size_t s : f.locked) lock_[s]--;
      stack.pop_back();
    }
    return true;
  }

  // After original node t: storages no original node reads again are freed at once
  // when they cannot be rebuilt (gradients; labels, which no rebuild reads either);
  // evictable ones stay until space is needed (score 0).
  void retire(ir::NodeId t) {
    auto check = [&](ir::ValueId s) {
      const size_t i = static_cast<size_t>(s);
      // Inputs and labels too, when no node that may run again reads them (labels).
      const bool gone_for_good = pb_.kind[i] == StoreKind::fixed || (pb_.preloaded_freed(s) && !rebuilt_from_[i]);
      if (!resident_[i] || !gone_for_good) return;
      now_ = t + 1;
      if (next_use(i) == kNever) {
        resident_[i] = false;
        mem_ -= pb_.bytes[i];
      }
    };
    for (ir::ValueId s : pb_.node(t).inputs) check(s);
    for (ir::ValueId s : pb_.node(t).outputs) check(s);
  }

  const Problem& pb_;
  uint64_t budget_;
  Score score_;
  int lookahead_;
  bool early_evicts_;
  const std::vector<bool>* keep_;
  bool only_dead_ = false;  // evict only storages no original node reads again
  size_t nv_;
  std::vector<ir::NodeId> visit_;
  int now_ = 0;
  uint64_t mem_ = 0;
  std::vector<bool> resident_, evicted_;
  std::vector<bool> rebuilt_from_;  // read by a recomputable node
  std::vector<int> lock_;
  std::vector<size_t> next_;
  std::vector<int> last_access_;
  std::vector<size_t> uf_;
  std::vector<double> class_cost_;
  std::vector<std::vector<ir::ValueId>> children_;
  std::vector<ir::ValueId> candidates_;
  std::vector<size_t> roots_;
  Sequence seq_;
};

constexpr Score kScores[] = {Score::lookahead, Score::dtr, Score::lookahead_size, Score::cost_per_byte};
constexpr int kLookaheads[] = {0, 1, 4};

struct Best {
  Sequence seq;
  SequenceCost cost;
  EvictionOptions how;
  bool found = false;

  // Keeps the sequence of `o` when it fits and recomputes less.
  bool offer(const Problem& pb, uint64_t budget, const EvictionOptions& o) {
    std::optional<Sequence> s = simulate_eviction(pb, budget, o);
    if (!s) return false;
    const SequenceCost c = evaluate(pb, *s);
    DLMEM_CHECK(c.peak <= budget, "simulated eviction exceeded its budget: ", c.peak, " > ", budget);
    if (found && c.extra_flops >= cost.extra_flops) return false;
    seq = std::move(*s);
    cost = c;
    how = o;
    found = true;
    return true;
  }
};

// Every score and lookahead at `budget`; the feasible sequence with the fewest extra FLOPs.
Best best_at(const Problem& pb, uint64_t budget) {
  Best best;
  for (Score s : kScores)
    for (int w : kLookaheads)
      for (bool evicts : {false, true})
        if (w > 0 || !evicts) best.offer(pb, budget, {.score = s, .lookahead = w, .early_evicts = evicts});
  return best;
}

// Local search on what to keep: the storages whose rebuilds cost the most are, one
// at a time, protected from eviction and the best variant simulated again; a
// protection stays when the step then recomputes less. Deterministic, and bounded:
// kRounds x kTries simulations at most.
void improve(const Problem& pb, uint64_t budget, Best& best) {
  constexpr int kRounds = 4, kTries = 6;
  std::vector<bool> keep(pb.kind.size(), false);
  for (int round = 0; round < kRounds && best.found && best.cost.extra_flops > 0; ++round) {
    // Blame a rebuild's whole chain on the storage an original node wanted.
    std::vector<double> blame(pb.kind.size(), 0.0), chain(pb.kind.size(), 0.0);
    for (const Step& st : best.seq) {
      const PNode& p = pb.node(st.node);
      if (st.recompute) {
        double c = p.flops;
        for (ir::ValueId in : p.inputs) c += chain[static_cast<size_t>(in)];
        for (ir::ValueId o : p.outputs) chain[static_cast<size_t>(o)] = c;
        continue;
      }
      for (ir::ValueId in : p.inputs) {
        blame[static_cast<size_t>(in)] += chain[static_cast<size_t>(in)];
        chain[static_cast<size_t>(in)] = 0;
      }
      for (ir::ValueId o : p.outputs) chain[static_cast<size_t>(o)] = 0;
    }
    std::vector<ir::ValueId> order;
    for (size_t v = 0; v < blame.size(); ++v)
      if (blame[v] > 0 && !keep[v]) order.push_back(static_cast<ir::ValueId>(v));
    std::stable_sort(order.begin(), order.end(), [&](ir::ValueId a, ir::ValueId b) {
      return blame[static_cast<size_t>(a)] > blame[static_cast<size_t>(b)];
    });
    bool improved = false;
    for (size_t i = 0; i < order.size() && i < static_cast<size_t>(kTries) && !improved; ++i) {
      keep[static_cast<size_t>(order[i])] = true;
      EvictionOptions o = best.how;
      o.keep = &keep;
      improved = best.offer(pb, budget, o);
      if (!improved) keep[static_cast<size_t>(order[i])] = false;
    }
    if (!improved) break;
  }
  best.how.keep = nullptr;  // `keep` dies here
}

}  // namespace

std::optional<Sequence> simulate_eviction(const Problem& pb, uint64_t budget, const EvictionOptions& o) {
  return Simulation(pb, budget, o).run();
}

std::optional<Sequence> greedy_sequence(const Problem& pb, uint64_t target) {
  Best b = best_at(pb, target);
  if (b.found) improve(pb, target, b);
  // Segment-level schedules from the articulation chain: at tight budgets the chain
  // DP's nested checkpoints beat eviction decisions taken one at a time.
  for (int k = 0; k < 2; ++k) {
    std::optional<Sequence> s = k == 0 ? chain_within(pb, target) : chen_within(pb, target);
    if (!s) continue;
    const SequenceCost c = evaluate(pb, *s);
    if (c.peak <= target && (!b.found || c.extra_flops < b.cost.extra_flops)) {
      b.seq = std::move(*s);
      b.cost = c;
      b.found = true;
    }
  }
  if (!b.found) return std::nullopt;
  return std::move(b.seq);
}

uint64_t greedy_min_peak(const Problem& pb) {
  // Bisection on the target between the largest op and no recomputation.
  uint64_t hi = evaluate(pb, plain_sequence(pb)).peak;
  uint64_t lo = std::max(pb.preloaded_bytes, pb.lower_bound);
  if (lo >= hi || greedy_sequence(pb, lo)) return std::min(lo, hi);
  while (hi - lo > std::max<uint64_t>(hi / 500, 4096)) {
    const uint64_t mid = lo + (hi - lo) / 2;
    (greedy_sequence(pb, mid) ? hi : lo) = mid;
  }
  return hi;  // the simulated budget that works (its plan may peak a little lower)
}

Plan plan_greedy(const ir::Graph& g, const analysis::Liveness& live, uint64_t target) {
  const Problem pb = make_problem(g, live);
  const Sequence plain = plain_sequence(pb);
  if (target == 0 || evaluate(pb, plain).peak <= target) return emit_plan(pb, plain);
  std::optional<Sequence> seq = greedy_sequence(pb, target);
  if (!seq) {
    const uint64_t reach = greedy_min_peak(pb);
    throw OutOfMemory("recompute:greedy cannot keep the step within ", human_bytes(target),
                      " of live device memory; the smallest it reaches is ", human_bytes(reach),
                      " (no policy goes below ", human_bytes(pb.lower_bound), ", what node '", pb.lower_bound_node,
                      "' needs with the weights and optimizer state); use a budget of at least ",
                      human_bytes(reach))
        .reach(reach);
  }
  return emit_plan(pb, *seq);
}

Pass greedy_pass() {
  return [](const PlanContext& ctx, Plan) { return plan_greedy(ctx.graph, ctx.live, ctx.target); };
}

}  // namespace dlmem::planners::recompute
