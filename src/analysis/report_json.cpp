#include "analysis/report_json.h"

namespace dlmem::analysis {

nlohmann::json report_json(const MemoryReport& r, bool layers) {
  nlohmann::json roles;
  for (int i = 0; i < ir::kNumRoles; ++i)
    roles[std::string(ir::role_name(static_cast<ir::Role>(i)))] = r.by_role[static_cast<size_t>(i)];
  nlohmann::json j = {{"parameters", r.parameters},
                      {"bytes_by_role", roles},
                      {"stashed_activations", r.stashed_activations},
                      {"peak_no_free", r.no_free},
                      {"peak_free_at_last_use", r.free_at_last_use},
                      {"peak_node", r.peak_node},
                      {"lower_bound", r.lower_bound},
                      {"lower_bound_node", r.lower_bound_node},
                      {"flops", {{"forward", r.flops_forward}, {"backward", r.flops_backward}, {"update", r.flops_update}}}};
  if (layers) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& l : r.layers)
      rows.push_back({{"name", l.name}, {"op", l.op}, {"output_bytes", l.output_bytes}, {"stashed_bytes", l.stashed_bytes}, {"flops", l.flops}});
    j["layers"] = rows;
  }
  return j;
}

}  // namespace dlmem::analysis
