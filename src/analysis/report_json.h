// A MemoryReport as JSON: what `dlmem analyze --json` prints after its own model,
// batch and dtype fields, and what the Python bindings return.
#pragma once

#include <nlohmann/json.hpp>

#include "analysis/memory.h"

namespace dlmem::analysis {

// bytes_by_role, parameters, stashed activations, the peaks and the lower bound, FLOPs
// by phase; with `layers`, one row per layer.
nlohmann::json report_json(const MemoryReport&, bool layers);

}  // namespace dlmem::analysis
