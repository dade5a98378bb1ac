// A Plan as JSON (what `dlmem plan --out` writes and `dlmem simulate` reads).
#pragma once

#include <nlohmann/json.hpp>

#include "ir/graph.h"
#include "plan/plan.h"

namespace dlmem::plan {

nlohmann::json to_json(const ir::Graph&, const Plan&);
nlohmann::json stats_json(const Plan&);

// Reads what to_json wrote, for the graph the plan was made for (the caller rebuilds
// it, e.g. from the "model" header `dlmem plan --out` adds). Buffers and nodes are
// matched by id and name; lifetimes and statistics are recomputed and the peak must
// equal the recorded one. dlmem::Error naming `where` and the field on any problem;
// run validate() on the result before executing it.
Plan from_json(const ir::Graph&, const nlohmann::json&, const std::string& where = "plan");

// Resident device bytes by role over the program, as an SVG stacked area chart with
// the arena and the budget as lines (`dlmem plan --plot`, Plan.plot in Python).
std::string memory_svg(const Plan&, const std::string& title);

}  // namespace dlmem::plan
