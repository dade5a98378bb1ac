// libFuzzer target: placement problems as CSV (plan/place_problem.h, `dlmem place`)
// from arbitrary bytes; a problem that parses is also placed by the heuristics and
// checked for overlaps.
#include <cstddef>
#include <cstdint>
#include <string>

#include "plan/place_problem.h"
#include "plan/placement.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const dlmem::plan::PlaceProblem p =
        dlmem::plan::parse_place_csv(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv");
    if (p.intervals.size() <= 64) {
      const dlmem::plan::Placement pl = dlmem::plan::place_intervals(p.intervals, dlmem::plan::PlaceAlgo::best);
      const auto offsets = dlmem::plan::problem_offsets(p, pl);
      if (!dlmem::plan::find_overlap(p, offsets).empty()) __builtin_trap();
    }
  } catch (const dlmem::Error&) {
  }
  return 0;
}
