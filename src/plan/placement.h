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
enum class PlaceAlgo : uint8_t { greedy_by_size, greedy_by_breadth, first_fit, hill_climb, best };
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

// The device (or host) buffers of a plan as intervals; `ids` receives their buffer ids.
std::vector<Interval> intervals(const Plan&, Space, std::vector<BufferId>* ids = nullptr);
// Places every buffer of the plan (device and host) and sets the arena sizes.
void place(Plan&, PlaceAlgo = PlaceAlgo::best);

}  // namespace dlmem::plan
