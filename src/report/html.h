// The plan report: one self-contained HTML page (script, styles and data inline; no
// network) that shows a plan the way people debugging memory want to see it -- memory
// over time stacked by role with the tensors resident at any instant, the streams with
// their stalls, and the per-tensor decisions of planners::explain -- for one plan or two
// side by side (`dlmem plan --html`, `dlmem simulate --html`, `dlmem report`).
//
//   nlohmann::json d = report::plan_data(g, plan, cost, unmanaged, {.model = "resnet50", .batch = 64});
//   report::write_html("plan.html", {d});          // or {a, b}: a comparison
//
// Note [Report data]: the page receives the plan itself, not pictures of it: every
// device and host buffer (value, role, bytes, [begin, end) program positions, how it
// came to be: computed, recomputed, swapped in, ...), every instruction with its
// simulated issue, start and end, and the explanation's rows, as columns of integers
// (times in nanoseconds) so that a ResNet-152 plan stays a few MB. The page computes
// memory over the program from the buffers' lifetimes -- the rule of plan::compute_stats
// -- and checks its peak against the plan's; on the time axis, program position i lasts
// from its instruction's start (a copy's issue, where the simulator allocates its
// destination) to the next position's, so that both axes show the same resident sets.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "plan/plan.h"
#include "sim/cost_model.h"

namespace dlmem::report {

struct PlanInfo {
  std::string model;   // zoo name or ONNX path
  int64_t batch = 0;
  std::string device;  // the profile's name as the user gave it
  std::string source;  // the plan file, when there is one
};

// Note [Report data]: simulates `p` and the unmanaged plan on `cost` and explains `p`.
nlohmann::json plan_data(const ir::Graph&, const plan::Plan& p, const sim::CostModel& cost, const plan::Plan& unmanaged,
                         const PlanInfo&);

// The page for one plan, or two compared (dlmem::Error for none or more than two).
std::string html(const std::vector<nlohmann::json>& plans);
// Writes html(plans) atomically; dlmem::Error naming the path on failure.
void write_html(const std::string& path, const std::vector<nlohmann::json>& plans);

}  // namespace dlmem::report
