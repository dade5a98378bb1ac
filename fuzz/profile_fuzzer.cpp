// libFuzzer target: device-profile JSON (sim/device_profile.h) from arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "sim/device_profile.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    (void)dlmem::sim::profile_from_json(j, "fuzz.json");
  } catch (const dlmem::Error&) {
  }
  return 0;
}
