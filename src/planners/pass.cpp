#include "planners/pass.h"

#include "sim/simulator.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners {

namespace {
// Thrown by only_if: the alternative does not apply here, and best_of passes over it.
struct NotApplicable {};
}  // namespace

Plan run_pipeline(const PlanContext& ctx, const Pipeline& passes, Plan start) {
  Plan p = std::move(start);
  for (const Pass& pass : passes) p = pass(ctx, std::move(p));
  return p;
}

PlanScore score(const PlanContext& ctx, const Plan& p) {
  Plan placed = p;
  place(placed, ctx.options.placement);
  const uint64_t limit = ctx.arena_limit();
  // A plan whose swapped tensors do not fit the host budget fails like one over the
  // device budget (make_plan refuses it).
  const bool host_over = ctx.options.host_budget && placed.host_arena > ctx.options.host_budget;
  return {.over = (limit > 0 && placed.device_arena > limit) || host_over,
          .seconds = sim::simulate(ctx.graph, p, ctx.cost, {.record_memory = false}).makespan,
          .peak = p.stats.peak_device,
          .arena = placed.device_arena};
}

Pass best_of(std::vector<Pipeline> alternatives, Choice choice) {
  DLMEM_CHECK(!alternatives.empty(), "best_of needs an alternative");
  return [alts = std::move(alternatives), choice](const PlanContext& ctx, Plan in) {
    std::optional<Plan> best;
    PlanScore best_score;
    size_t best_index = 0;
    std::optional<OutOfMemory> failure;
    for (size_t i = 0; i < alts.size(); ++i) {
      // The alternatives after the first see the best of the enclosing incumbent and
      // of what this choice has so far.
      PlanContext inner = ctx;
      if (best && (!inner.incumbent || best_score.better_than(*inner.incumbent))) inner.incumbent = best_score;
      try {
        Plan p = run_pipeline(inner, alts[i], in);
        // A source (recomputation planners) leaves the figures to make_plan: the target
        // check and the score's peak need them.
        compute_lifetimes(p);
        compute_stats(ctx.graph, p);
        if (choice.within_target && ctx.target && p.stats.peak_device > ctx.target)
          throw OutOfMemory("policy ", ctx.policy, " keeps ", human_bytes(p.stats.peak_device), " resident, above the target ",
                            human_bytes(ctx.target));
        const PlanScore s = score(ctx, p);
        if (choice.observe) choice.observe(i, s, "");
        if (!best || s.better_than(best_score)) {
          best = std::move(p);
          best_score = s;
          best_index = i;
        }
        if (choice.enough_seconds > 0 && !best_score.over && best_score.seconds <= choice.enough_seconds) break;
      } catch (const OutOfMemory& e) {
        if (choice.observe) choice.observe(i, std::nullopt, e.what());
        if (!failure) failure = e;
      } catch (const NotApplicable&) {
        if (choice.observe) choice.observe(i, std::nullopt, "does not apply");
      }
    }
    DLMEM_CHECK(best || failure, "best_of: no alternative applies");
    if (!best) throw *failure;
    if (choice.chose) choice.chose(best_index);
    return std::move(*best);
  };
}

Pass only_if(Predicate applies) {
  return [applies = std::move(applies)](const PlanContext& ctx, Plan p) {
    if (!applies(ctx)) throw NotApplicable{};
    return p;
  };
}

Pass distinct(std::shared_ptr<std::vector<std::vector<Instr>>> seen) {
  return [seen = std::move(seen)](const PlanContext&, Plan p) {
    for (const std::vector<Instr>& s : *seen)
      if (s == p.program) throw NotApplicable{};
    seen->push_back(p.program);
    return p;
  };
}

Predicate reorders(ScheduleFn schedule) {
  return [schedule = std::move(schedule)](const PlanContext& ctx) { return schedule(ctx.graph) != ctx.live.order; };
}

Pass default_program(ScheduleFn schedule) {
  return [schedule = std::move(schedule)](const PlanContext& ctx, Plan) {
    if (!schedule) return make_default_plan(ctx.graph, ctx.live);
    const analysis::Liveness L = analysis::compute_liveness(ctx.graph, schedule(ctx.graph));
    return make_default_plan(ctx.graph, L);
  };
}

}  // namespace dlmem::planners
