// Placement problems from outside dlmem, in the CSV format the dynamic storage
// allocation literature shares (MiniMalloc's benchmarks and others): one buffer per row,
// `id,lower,upper,size[,alignment]`, lifetimes half-open [lower, upper). And tight
// instances with a known optimum, for tests and benchmarks.
//
//   plan::PlaceProblem pb = plan::read_place_csv("problem.csv");   // dlmem::Error naming the line
//   plan::Placement pl = plan::place_intervals(pb.intervals, plan::PlaceAlgo::best);
//   std::string out = plan::offsets_csv(pb, pl);                   // id,offset
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/placement.h"

namespace dlmem::plan {

struct PlaceProblem {
  std::vector<int64_t> ids;        // as in the file
  std::vector<uint64_t> sizes;     // bytes, as in the file
  uint64_t alignment = 1;          // every offset a multiple of it
  // The same buffers for place_intervals: sizes in units of `alignment` times
  // kAlignment (so dlmem's alignment is the problem's), lifetimes as in the file.
  std::vector<Interval> intervals;
};

// dlmem::Error for an unreadable file or a bad row (negative or non-integer fields,
// lower >= upper, duplicate ids, mixed alignments), naming the line.
PlaceProblem read_place_csv(const std::string& path);
PlaceProblem parse_place_csv(const std::string& text, const std::string& name = "<text>");

// A placement of pb.intervals in the problem's own units: offsets in bytes, and the
// height max(offset + size).
std::vector<uint64_t> problem_offsets(const PlaceProblem&, const Placement&);
uint64_t problem_height(const PlaceProblem&, const std::vector<uint64_t>& offsets);
// The largest bytes live at one time (aligned sizes): no placement is lower.
uint64_t problem_max_live(const PlaceProblem&);
std::string offsets_csv(const PlaceProblem&, const std::vector<uint64_t>& offsets);
std::string to_csv(const PlaceProblem&);

// Cuts a width x horizon rectangle (memory x time) by random guillotine cuts into
// `pieces` rectangles; each is a buffer. Every time is covered to the full width, so
// the optimum height is exactly `width` and equals max live. Deterministic in `seed`.
PlaceProblem tight_instance(uint64_t width, int horizon, int pieces, uint64_t seed);

// An overlap of two buffers live at the same time, as a message; empty when the
// offsets are a valid placement (an independent check: a sweep over time, O(n log n)).
std::string find_overlap(const PlaceProblem&, const std::vector<uint64_t>& offsets);

}  // namespace dlmem::plan
