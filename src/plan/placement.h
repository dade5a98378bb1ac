// Static offset placement (memory sharing): give every buffer an offset in one arena
// so that no two buffers resident at the same time overlap. The problem is NP-complete
// (it is dynamic storage allocation); dlmem runs several heuristics and keeps the
// smallest arena, reported against the max-live lower bound.
//
//   plan::place(p);                         // all heuristics, keep the best
//   p.device_arena, p.placement             // "greedy-by-size", ...
//   plan::max_live(plan::intervals(p, Space::device))   // the lower bound
//
// The heuristics follow TensorFlow Lite's memory planners (Pisarchyk & Lee, 2020,
// "Efficient Memory Management for Deep Neural Net Inference", the offset-calculation
// strategies): greedy by size and greedy by breadth; plus first fit in time order.
// Buffers alive over the whole program are stacked at the bottom first (optimal), and
// when the best stays above max live on a small enough problem, a deterministic hill
// climb on the placement order improves it (TVM USMP's hill_climb.cc).
#pragma once

#include <string>
#include <vector>

#include "plan/plan.h"

namespace dlmem::plan {

// A usage record: `bytes` resident during program positions [begin, end).
struct Interval {
  uint64_t bytes = 0;
  int begin = 0;
  int end = 0;
};

// best: the three heuristics, keep the smallest; above the max-live bound (and on a
// problem small enough), improve it by hill climbing on the placement order.
enum class PlaceAlgo : uint8_t { greedy_by_size, greedy_by_breadth, first_fit, hill_climb, best, exact };
std::string_view place_algo_name(PlaceAlgo);

struct Placement {
  std::vector<uint64_t> offsets;  // one per interval, multiples of kAlignment
  uint64_t size = 0;              // arena bytes
  PlaceAlgo algo = PlaceAlgo::best;
};

// Sizes are rounded up to kAlignment before placing.
Placement place_intervals(const std::vector<Interval>&, PlaceAlgo);
// The largest total of (aligned) bytes resident at one position: no placement is smaller.
uint64_t max_live(const std::vector<Interval>&);

// Note [Exact placement]: a branch and bound that fills memory from the bottom. Time is
// cut into sections at every begin and end; the skyline is, per section, the top of
// the highest buffer placed over it. At each node the search takes the lowest section
// that still has buffers to place (the leftmost of them), at height h, and branches:
// one child per unplaced buffer that covers that section and whose skyline over its
// whole lifetime is at most h (it is placed at h), and one child where the section
// wastes a unit at h. Every placement with its buffers let fall as far as they go is
// reached this way (fill heights never decrease), so the search is complete; each
// is reached once. It asks "is there a placement of height <= W?" -- first W = max
// live, with half the time (the optimum of tight problems), then W one below the best
// known -- and prunes a node when (1) a buffer over the lowest section no longer fits
// under W, or (2) at some section the units still to place there do not fit between
// max(skyline, h) and W: waste a tight problem cannot afford is cut at once.
// Identical buffers are tried once. Proven optimal when the height reaches max live or
// a search for W - 1 exhausts; otherwise the limit stops it and the gap is reported.
struct ExactOptions {
  double time_limit_s = 1;  // wall-clock limit of the whole search
  uint64_t node_limit = 0;  // 0: none (a count makes the result reproducible)
};
struct ExactResult {
  Placement placement;    // the best found (`start` when nothing lower was)
  uint64_t lower = 0;     // max live: no placement is lower
  bool optimal = false;   // proven: equal to max live, or nothing lower exists
  uint64_t nodes = 0;     // partial orders visited
  double seconds = 0;
  std::string status;     // "optimal", "time limit", "node limit"
};
// Improves `start` (a placement of the same intervals) within the limits.
ExactResult place_exact(const std::vector<Interval>&, const Placement& start, const ExactOptions& = {});

// The device (or host) buffers of a plan as intervals; `ids` receives their buffer ids.
std::vector<Interval> intervals(const Plan&, Space, std::vector<BufferId>* ids = nullptr);
// Places every buffer of the plan (device and host) and sets the arena sizes.
void place(Plan&, PlaceAlgo = PlaceAlgo::best);

}  // namespace dlmem::plan
