#include "sim/result_json.h"

#include <algorithm>

namespace dlmem::sim {

nlohmann::json result_json(const SimResult& r, const SimResult& ru, const plan::Plan& p, const DeviceProfile& dev) {
  return {{"device", dev.name},
          {"step_seconds", r.makespan},
          {"compute_seconds", r.compute_seconds},
          {"stall_seconds", r.stall_seconds},
          {"d2h_seconds", r.d2h_seconds},
          {"h2d_seconds", r.h2d_seconds},
          {"bound_seconds", r.bound()},
          {"step_over_bound", r.makespan / std::max(r.bound(), 1e-12)},
          {"phase_bound_seconds", r.phase_bound()},
          {"step_over_phase_bound", r.makespan / std::max(r.phase_bound(), 1e-12)},
          {"unmanaged_step_seconds", ru.makespan},
          {"step_over_unmanaged", r.makespan / std::max(ru.makespan, 1e-12)},
          {"bytes_to_host", r.bytes_to_host},
          {"bytes_to_device", r.bytes_to_device},
          {"peak_device", r.peak_device},
          {"planned_peak", p.stats.peak_device},
          {"device_arena", p.device_arena},
          {"device_memory", dev.memory_bytes},
          {"fits", p.device_arena <= dev.memory_bytes}};
}

}  // namespace dlmem::sim
