// A Plan as JSON (what `dlmem plan --out` writes and `dlmem simulate` reads).
#pragma once

#include <nlohmann/json.hpp>

#include "ir/graph.h"
#include "plan/plan.h"

namespace dlmem::plan {

nlohmann::json to_json(const ir::Graph&, const Plan&);
nlohmann::json stats_json(const Plan&);

}  // namespace dlmem::plan
