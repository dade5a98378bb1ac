// Device profiles: what the simulator and the swap planners know about an accelerator
// -- memory capacity, peak FLOP/s per dtype, memory bandwidth, host-link bandwidth each
// way and kernel launch cost. Named profiles carry public datasheet figures (cited in
// device_profile.cpp); `host` is measured on the running machine by `dlmem calibrate`.
//
//   sim::DeviceProfile v100 = sim::device_profile("v100-16gb");
//   sim::DeviceProfile here = sim::device_profile("host");       // calibrated file, if any
//   sim::DeviceProfile mine = sim::device_profile("my-gpu.json"); // a profile file
//   v100.flops_for(ir::DType::f32);                               // 15.7e12
//
// Note [Datasheet and achievable rates]: datasheets give peaks that kernels do not
// reach. A profile therefore also carries the fraction of each peak that real kernels
// and copies achieve (`efficiency`); the cost model multiplies the two. For named GPU
// profiles the fractions are stated assumptions (documented beside each figure); a
// calibrated host profile measures achieved rates directly, so its fractions are 1.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "ir/types.h"

namespace dlmem::sim {

struct Efficiency {
  double compute = 1.0;  // achieved / peak FLOP/s of compute-bound kernels
  double memory = 1.0;   // achieved / peak device memory bandwidth
  double link = 1.0;     // achieved / peak host-link bandwidth (pinned memory)
};

struct DeviceProfile {
  std::string name;         // "v100-16gb", "host"
  std::string description;  // one line, with the source of the figures
  uint64_t memory_bytes = 0;
  std::array<double, ir::kNumDTypes> peak_flops{};  // FLOP/s per dtype (index: ir::DType)
  double memory_bandwidth = 0;  // device memory, bytes/s
  double h2d_bandwidth = 0;     // host -> device, bytes/s
  double d2h_bandwidth = 0;     // device -> host, bytes/s
  double launch_seconds = 0;    // fixed cost of one kernel launch
  Efficiency efficiency;
  bool calibrated = false;      // measured on this machine (`host` profiles)

  double flops_for(ir::DType d) const { return peak_flops[static_cast<size_t>(d)]; }
};

// The named profiles, in a stable order (K40 ... H200).
const std::vector<DeviceProfile>& named_profiles();

// By name (case-insensitive; "v100" is short for "v100-16gb" and so on), "host", or a
// path to a profile JSON file (anything containing '/' or ending in ".json").
// dlmem::Error for an unknown name (listing the known ones) or a bad file.
DeviceProfile device_profile(std::string_view name_or_path);

// Where `dlmem calibrate` writes the host profile by default and `host` reads it:
// $XDG_CACHE_HOME/dlmem/host-profile.json, else $HOME/.cache/dlmem/host-profile.json.
std::string default_host_profile_path();

// `host` without a calibration file: a conservative stand-in for a small multi-core
// CPU, marked uncalibrated (its description says to run `dlmem calibrate`).
DeviceProfile uncalibrated_host_profile();

// The `host` profile from measured rates (runtime::calibrate): every dtype at the
// measured f32 GEMM rate, efficiencies 1 (the rates are achieved ones), calibrated.
DeviceProfile host_profile_from(double gemm_flops, double memory_bandwidth, double h2d_bandwidth, double d2h_bandwidth,
                                double launch_seconds, uint64_t memory_bytes, std::string description);

nlohmann::json to_json(const DeviceProfile&);
// Validates every field (positive rates, known dtypes) with errors naming `where`.
DeviceProfile profile_from_json(const nlohmann::json&, const std::string& where);
// Reads a profile file; dlmem::Error naming the path on any problem.
DeviceProfile load_profile(const std::string& path);
// Writes a profile file atomically.
void save_profile(const std::string& path, const DeviceProfile&);

}  // namespace dlmem::sim
