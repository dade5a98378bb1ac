// recompute:sqrt -- Chen, Xu, Zhang, Guestrin, "Training deep nets with sublinear
// memory cost" (arXiv:1604.06174, 2016), Section 4.
//  - Without a budget, the O(sqrt N) algorithm: split the forward into sqrt(N) segments
//    and keep only the segment outputs; the backward of a segment first recomputes the
//    segment (one extra forward in all), so an N-layer chain needs O(sqrt N) activations.
//  - With a budget, the paper's greedy "memory planning with budget" for general
//    graphs: walk the forward in topological order accumulating the bytes of what it
//    produces; at a candidate splitting point where the running sum exceeds a
//    threshold b, keep that output and restart the sum. The paper grid-searches b; so
//    do we, keeping the plan with the fewest extra FLOPs whose peak fits.
// Candidate splitting points are the cuts of the articulation chain (problem.h, Note
// [Articulation chain]), the paper's choice for general graphs.
#include <algorithm>
#include <cmath>

#include "planners/recompute/recompute.h"
#include "planners/recompute/schedule.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners::recompute {

namespace {

std::vector<bool> keep_outputs(const Problem& pb, const std::vector<ir::ValueId>& cuts) {
  std::vector<bool> keep(pb.kind.size(), false);
  for (ir::ValueId c : cuts) keep[static_cast<size_t>(c)] = true;
  return keep;
}

// Chen's Algorithm 2 with threshold b: which cuts to keep.
std::vector<ir::ValueId> budgeted_cuts(const Problem& pb, const Chain& ch, double b) {
  std::vector<ir::ValueId> kept;
  double temp = 0;
  for (const Unit& u : ch.units) {
    for (ir::NodeId i = u.fwd_begin; i < u.fwd_end; ++i)
      for (ir::ValueId o : pb.node(i).outputs)
        if (pb.evictable(o)) temp += static_cast<double>(pb.bytes[static_cast<size_t>(o)]);
    if (u.out != ir::kNoValue && temp > b) {
      kept.push_back(u.out);
      temp = 0;
    }
  }
  return kept;
}

}  // namespace

std::optional<Sequence> chen_within(const Problem& pb, uint64_t target, uint64_t* reach) {
  const Chain ch = articulation_chain(pb);
  // Grid search on b (geometric, from "keep every cut" to "keep none").
  double total = 0;
  for (const PNode& n : pb.nodes)
    for (ir::ValueId o : n.outputs)
      if (pb.evictable(o)) total += static_cast<double>(pb.bytes[static_cast<size_t>(o)]);
  std::vector<double> grid = {0.0};
  const int steps = 48;
  const double lo = std::max(1.0, total / 4096);
  for (int i = 0; i <= steps; ++i) grid.push_back(lo * std::pow(total / lo, static_cast<double>(i) / steps));

  std::optional<Sequence> best;
  double best_extra = 0;
  if (reach) *reach = UINT64_MAX;
  std::vector<std::vector<ir::ValueId>> tried;
  for (double b : grid) {
    std::vector<ir::ValueId> kept = budgeted_cuts(pb, ch, b);
    if (std::find(tried.begin(), tried.end(), kept) != tried.end()) continue;
    tried.push_back(kept);
    Sequence seq = keep_sequence(pb, keep_outputs(pb, kept));
    const SequenceCost c = evaluate(pb, seq);
    if (reach) *reach = std::min(*reach, c.peak);
    if (c.peak <= target && (!best || c.extra_flops < best_extra)) {
      best = std::move(seq);
      best_extra = c.extra_flops;
    }
  }
  return best;
}

Plan plan_sqrt(const ir::Graph& g, const analysis::Liveness& live, uint64_t target) {
  const Problem pb = make_problem(g, live);
  const Chain ch = articulation_chain(pb);
  std::vector<ir::ValueId> cuts;
  for (const Unit& u : ch.units)
    if (u.out != ir::kNoValue) cuts.push_back(u.out);

  if (target == 0) {
    // sqrt(N) segments of (about) equal length in cuts.
    const size_t n = cuts.size() + 1;
    const size_t per = std::max<size_t>(1, static_cast<size_t>(std::llround(std::sqrt(static_cast<double>(n)))));
    std::vector<ir::ValueId> kept;
    for (size_t i = 0; i < cuts.size(); ++i)
      if ((i + 1) % per == 0) kept.push_back(cuts[i]);
    return emit_plan(pb, keep_sequence(pb, keep_outputs(pb, kept)));
  }

  const Sequence plain = plain_sequence(pb);
  if (evaluate(pb, plain).peak <= target) return emit_plan(pb, plain);
  uint64_t reach = 0;
  std::optional<Sequence> best = chen_within(pb, target, &reach);
  if (!best)
    throw OutOfMemory("recompute:sqrt (Chen's budgeted segmentation over ", cuts.size(),
                      " candidate splitting points) cannot keep the step within ", human_bytes(target),
                      " of live device memory; the smallest it reaches is ", human_bytes(reach),
                      " (no policy goes below ", human_bytes(pb.lower_bound), ", what node '", pb.lower_bound_node,
                      "' needs with the weights and optimizer state); use a budget of at least ", human_bytes(reach),
                      " or recompute:greedy")
        .reach(reach);
  return emit_plan(pb, *best);
}

Pass sqrt_pass() {
  return [](const PlanContext& ctx, Plan) { return plan_sqrt(ctx.graph, ctx.live, ctx.target); };
}

}  // namespace dlmem::planners::recompute
