// A simulated step as JSON, against the unmanaged step on the same cost model: what
// `dlmem simulate --json` prints after its own plan and model fields, and what the
// Python bindings return.
#pragma once

#include <nlohmann/json.hpp>

#include "plan/plan.h"
#include "sim/device_profile.h"
#include "sim/simulator.h"

namespace dlmem::sim {

nlohmann::json result_json(const SimResult& r, const SimResult& unmanaged, const plan::Plan& p, const DeviceProfile& dev);

}  // namespace dlmem::sim
