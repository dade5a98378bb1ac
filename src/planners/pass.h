// Planning as passes (../shared/DESIGN.md, "Planning as passes"). A pass reads one
// PlanContext -- the graph, its default schedule's liveness, the cost model of the
// device planned for, the budget and this attempt's max-live target, the user's typed
// options -- and a plan, and returns a plan. A policy (registry.h) is a named pipeline
// of passes; make_plan (planner.h) runs it, places the result and validates it.
//
//   const planners::PlanContext ctx{.graph = g, .live = live, .cost = cm, .budget = 4_GiB,
//                                   .target = 4_GiB, .options = opts};
//   Plan p = planners::run_pipeline(ctx, {planners::default_program(), planners::inplace_pass()});
//
// Note [Sources and passes]: the first pass of a pipeline receives an empty plan and
// writes a whole program (default_program, or a recomputation planner, which chooses
// its own order of computations); the passes after it rewrite the plan they are given
// (in-place writes, stash encodings, swaps). A pass that needs the schedule of the
// plan it is given derives it from the program (plan::schedule_of), so a pipeline may
// start from any schedule (default_program(weight_gradients_first)).
//
// Note [Choosing between plans]: where a pass or a policy has several candidate plans
// (best_of below; swap:tensor's own variants), the better is the one whose placed arena
// fits the budget (on an attempt without budget: the target), then the one faster by
// simulation on the context's cost model, then the one with the smaller peak; a tie
// goes to the earlier candidate. PlanScore is that key, and best_of hands the best
// score so far to the alternatives after it (PlanContext::incumbent), so that a search
// inside one (swap:tensor's descent) spends effort only while it can still win.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "analysis/liveness.h"
#include "ir/graph.h"
#include "plan/placement.h"
#include "plan/plan.h"
#include "sim/cost_model.h"

namespace dlmem::planners {

// The planners speak the contract's types (Plan, Instr, Buffer, ...) unqualified.
using namespace dlmem::plan;

// What a user sets for one planning call. Each policy reads the fields it needs.
struct PlanOptions {
  PlaceAlgo placement = PlaceAlgo::best;
  // Host bytes the plan's swapped tensors may occupy (its host arena); make_plan refuses
  // a plan over it. 0: no limit. The command line's default is what the machine
  // reports available (util/host_memory.h, --host-budget).
  uint64_t host_budget = 0;
  double time_limit_s = 60;  // solvers (recompute:milp)
  // Seconds the exact placement search (plan/placement.h) may take when the
  // heuristics' arena is over the budget but max live is within it; 0: never. The
  // search also has a node budget (20M / buffers), so a plan does not depend on the
  // machine's speed unless this limit binds first.
  double place_time_limit_s = 1;
  // "" (lossless) or the reduced precision for stashes that are read exactly (fp16,
  // bf16, fp8-e4m3): opted into by --lossy, never a default.
  std::string lossy;
};

// Note [Choosing between plans].
struct PlanScore {
  bool over = false;     // the placed arena exceeds the budget (or the target)
  double seconds = 0;    // simulated step time
  uint64_t peak = 0;     // max live device bytes
  uint64_t arena = 0;    // the placed arena (not part of the key: `over` is)
  auto key() const { return std::tuple(over, seconds, peak); }
  bool better_than(const PlanScore& o) const { return key() < o.key(); }
};

struct PlanContext {
  const ir::Graph& graph;
  const analysis::Liveness& live;  // the graph's default schedule
  const sim::CostModel& cost;      // every family plans on this one cost model
  uint64_t budget = 0;             // bytes the placed arena must fit in; 0: no limit
  uint64_t target = 0;             // max-live bytes to plan for (Note [Budget and placement]); 0: none
  const PlanOptions& options;
  std::string_view policy = {};    // the policy's name, for messages
  // The best candidate an enclosing best_of has so far (Note [Choosing between plans]).
  std::optional<PlanScore> incumbent = std::nullopt;
  // A search inside a pass (swap:tensor's variants) may stop once a plan it made that
  // fits is slower than a fitting incumbent by this factor: it is not going to win.
  // 0: never (every policy but auto, which sets 1.25 -- Note [Joint planning]).
  double give_up_over = 0;

  // The arena limit a candidate is judged against: the budget, else the target.
  uint64_t arena_limit() const { return budget ? budget : target; }
};

using Pass = std::function<Plan(const PlanContext&, Plan)>;
using Pipeline = std::vector<Pass>;

// Runs the passes in order; the first receives `start` (empty by default).
Plan run_pipeline(const PlanContext&, const Pipeline&, Plan start = {});

// Scores a plan (lifetimes and statistics computed): placed on a copy, simulated.
PlanScore score(const PlanContext&, const Plan&);

// How best_of chooses.
struct Choice {
  // Treat a plan whose max live exceeds the target as failing (placement cannot
  // repair it), with an OutOfMemory naming the peak it reached.
  bool within_target = false;
  // Stop at the first plan that fits the arena limit within this simulated step time
  // (nothing later can be faster); 0: try every alternative.
  double enough_seconds = 0;
  // Told of each alternative tried: its index and score, or why it failed (then score
  // is empty). For traces and explanations; it does not change the choice.
  std::function<void(size_t index, const std::optional<PlanScore>& score, const std::string& failure)> observe;
  // Told the index of the alternative kept.
  std::function<void(size_t index)> chose;
};

// Runs every alternative on the same input and keeps the better plan (Note [Choosing
// between plans]). dlmem::OutOfMemory only when every alternative that applies fails:
// the first failure.
Pass best_of(std::vector<Pipeline> alternatives, Choice = {});

// The first pass of a best_of alternative that applies only where `applies` holds.
using Predicate = std::function<bool(const PlanContext&)>;
Pass only_if(Predicate applies);

// Within best_of: the rest of an alternative applies only when the program it is given
// differs from every program an earlier alternative brought here through the same
// `seen` (alternatives whose passes so far made the same program need not repeat the
// expensive passes after them: an in-place pass that found nothing to share).
Pass distinct(std::shared_ptr<std::vector<std::vector<Instr>>> seen);

// The source every non-recomputing policy starts from: compute in the schedule's order,
// free each buffer after its last use. `schedule` empty: the context's (default) one.
using ScheduleFn = std::function<std::vector<ir::NodeId>(const ir::Graph&)>;
Pass default_program(ScheduleFn schedule = {});
// Whether `schedule` orders the graph otherwise than the context's schedule.
Predicate reorders(ScheduleFn schedule);

}  // namespace dlmem::planners
