#include "sim/device_profile.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/json_file.h"

namespace dlmem::sim {

namespace {

constexpr double kGB = 1e9;  // datasheet bandwidths are decimal (GB/s)
constexpr double kT = 1e12;
constexpr uint64_t kGiB = 1ull << 30;

using ir::DType;

// Peaks per dtype: f32, f16, bf16, i32, u8, bit. Where a GPU has no native unit for a
// dtype, the rate of the unit that would run it is used (f16/bf16 on fp32 cores,
// i32 on fp32 cores, bit on the int8 path).
std::array<double, ir::kNumDTypes> peaks(double f32, double f16, double bf16, double i32, double u8) {
  std::array<double, ir::kNumDTypes> a{};
  a[static_cast<size_t>(DType::f32)] = f32;
  a[static_cast<size_t>(DType::f16)] = f16;
  a[static_cast<size_t>(DType::bf16)] = bf16;
  a[static_cast<size_t>(DType::i32)] = i32;
  a[static_cast<size_t>(DType::u8)] = u8;
  a[static_cast<size_t>(DType::bit)] = u8;
  return a;
}

// Note [Datasheet and achievable rates] (device_profile.h). The fractions used for every
// named GPU, as assumptions:
//  - compute 0.70: cuDNN/cuBLAS reach 60-80% of the FP32 (or tensor-core) peak on the
//    large convolutions and GEMMs that dominate training steps;
//  - memory 0.80: streaming kernels reach about 80-90% of the HBM/GDDR peak;
//  - link 0.80: pinned cudaMemcpyAsync reaches about 12-13 GB/s of PCIe 3.0 x16's
//    15.75 GB/s, and the same share of PCIe 4.0 and 5.0.
constexpr Efficiency kGpuEfficiency{0.70, 0.80, 0.80};

DeviceProfile gpu(std::string name, std::string description, uint64_t memory, std::array<double, ir::kNumDTypes> flops,
                  double mem_bw, double link_each_way, double launch) {
  DeviceProfile p;
  p.name = std::move(name);
  p.description = std::move(description);
  p.memory_bytes = memory;
  p.peak_flops = flops;
  p.memory_bandwidth = mem_bw;
  p.h2d_bandwidth = link_each_way;
  p.d2h_bandwidth = link_each_way;
  p.launch_seconds = launch;
  p.efficiency = kGpuEfficiency;
  return p;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const std::vector<DeviceProfile>& named_profiles() {
  // Kernel launch costs (5 us on Kepler/Pascal, 4 us on Volta, 3 us on Ampere and
  // Hopper) are the usual measured cudaLaunchKernel overheads; they are assumptions.
  // PCIe bandwidths are per direction: Gen3 x16 15.75 GB/s, Gen4 x16 31.5 GB/s,
  // Gen5 x16 63 GB/s (the datasheets give 32, 64 and 128 GB/s both ways together).
  static const std::vector<DeviceProfile> profiles = {
      // NVIDIA Tesla K40 board specification (BD-06902-001, 2013): 12 GB GDDR5,
      // 288 GB/s, 4.29 TFLOPS single precision (base clock), PCIe Gen3 x16. No native
      // fp16 math: f16/bf16 run at the fp32 rate.
      gpu("k40", "NVIDIA Tesla K40, 12 GB GDDR5 (Tesla K40 board specification, 2013)", 12 * kGiB,
          peaks(4.29 * kT, 4.29 * kT, 4.29 * kT, 4.29 * kT, 4.29 * kT), 288 * kGB, 15.75 * kGB, 5e-6),
      // NVIDIA Tesla P100 PCIe datasheet (2016): 16 GB CoWoS HBM2, 732 GB/s, 9.3 TFLOPS
      // fp32, 18.7 TFLOPS fp16, PCIe Gen3 x16 (32 GB/s bidirectional). No bf16.
      gpu("p100-16gb", "NVIDIA Tesla P100 PCIe 16 GB HBM2 (Tesla P100 PCIe datasheet, 2016)", 16 * kGiB,
          peaks(9.3 * kT, 18.7 * kT, 9.3 * kT, 9.3 * kT, 9.3 * kT), 732 * kGB, 15.75 * kGB, 5e-6),
      // NVIDIA Tesla V100 datasheet (2018), SXM2: 15.7 TFLOPS fp32, 125 TFLOPS tensor
      // (fp16), 900 GB/s HBM2, 16 or 32 GB; host link PCIe Gen3 x16. No bf16; int8 by
      // dp4a at 4x the fp32 rate (62.8 TOPS).
      gpu("v100-16gb", "NVIDIA Tesla V100 SXM2 16 GB HBM2 (Tesla V100 datasheet, 2018)", 16 * kGiB,
          peaks(15.7 * kT, 125 * kT, 15.7 * kT, 15.7 * kT, 62.8 * kT), 900 * kGB, 15.75 * kGB, 4e-6),
      gpu("v100-32gb", "NVIDIA Tesla V100 SXM2 32 GB HBM2 (Tesla V100 datasheet, 2018)", 32 * kGiB,
          peaks(15.7 * kT, 125 * kT, 15.7 * kT, 15.7 * kT, 62.8 * kT), 900 * kGB, 15.75 * kGB, 4e-6),
      // NVIDIA A100 Tensor Core GPU datasheet (2021), SXM4: 19.5 TFLOPS fp32, 312
      // TFLOPS fp16/bf16 tensor (dense), 624 TOPS int8; 40 GB HBM2 at 1,555 GB/s,
      // 80 GB HBM2e at 2,039 GB/s; PCIe Gen4 (64 GB/s bidirectional).
      gpu("a100-40gb", "NVIDIA A100 SXM4 40 GB HBM2 (A100 datasheet, 2021)", 40 * kGiB,
          peaks(19.5 * kT, 312 * kT, 312 * kT, 19.5 * kT, 624 * kT), 1555 * kGB, 31.5 * kGB, 3e-6),
      gpu("a100-80gb", "NVIDIA A100 SXM4 80 GB HBM2e (A100 datasheet, 2021)", 80 * kGiB,
          peaks(19.5 * kT, 312 * kT, 312 * kT, 19.5 * kT, 624 * kT), 2039 * kGB, 31.5 * kGB, 3e-6),
      // NVIDIA H100 Tensor Core GPU datasheet (2023), SXM5: 67 TFLOPS fp32, 1,979
      // TFLOPS fp16/bf16 tensor with sparsity (989.5 dense), 3,958 TOPS int8 with
      // sparsity (1,979 dense); 80 GB HBM3 at 3.35 TB/s; PCIe Gen5 (128 GB/s).
      gpu("h100-80gb", "NVIDIA H100 SXM5 80 GB HBM3 (H100 datasheet, 2023)", 80 * kGiB,
          peaks(67 * kT, 989.5 * kT, 989.5 * kT, 67 * kT, 1979 * kT), 3350 * kGB, 63 * kGB, 3e-6),
      // NVIDIA H200 Tensor Core GPU datasheet (2024), SXM: compute as H100 SXM5;
      // 141 GB HBM3e at 4.8 TB/s; PCIe Gen5 (128 GB/s).
      gpu("h200", "NVIDIA H200 SXM 141 GB HBM3e (H200 datasheet, 2024)", 141 * kGiB,
          peaks(67 * kT, 989.5 * kT, 989.5 * kT, 67 * kT, 1979 * kT), 4800 * kGB, 63 * kGB, 3e-6),
  };
  return profiles;
}

std::string default_host_profile_path() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/dlmem/host-profile.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/dlmem/host-profile.json";
}

DeviceProfile uncalibrated_host_profile() {
  DeviceProfile p;
  p.name = "host";
  p.description = "this machine, uncalibrated stand-in figures (run 'dlmem calibrate' to measure them)";
  p.memory_bytes = 16 * kGiB;
  p.peak_flops = peaks(50e9, 50e9, 50e9, 50e9, 50e9);
  p.memory_bandwidth = 10 * kGB;
  p.h2d_bandwidth = 5 * kGB;
  p.d2h_bandwidth = 5 * kGB;
  p.launch_seconds = 5e-6;
  p.efficiency = Efficiency{1.0, 1.0, 1.0};
  p.calibrated = false;
  return p;
}

DeviceProfile device_profile(std::string_view name_or_path) {
  const std::string s(name_or_path);
  if (s.find('/') != std::string::npos || (s.size() > 5 && s.ends_with(".json"))) return load_profile(s);
  const std::string n = lower(s);
  if (n == "host") {
    const std::string path = default_host_profile_path();
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return uncalibrated_host_profile();
    std::fclose(f);
    DeviceProfile p = load_profile(path);
    p.name = "host";
    return p;
  }
  // Short names: "v100" -> "v100-16gb", "v100-32" -> "v100-32gb", "h100" -> "h100-80gb".
  for (const DeviceProfile& p : named_profiles())
    if (p.name == n || p.name == n + "gb" || (p.name.starts_with(n + "-") && n.size() >= 3)) return p;
  std::string names;
  for (const DeviceProfile& p : named_profiles()) names += p.name + ", ";
  throw Error("unknown device '", s, "'; known devices: ", names,
              "host (this machine, see 'dlmem calibrate') or a profile file (path ending in .json)");
}

DeviceProfile host_profile_from(double gemm_flops, double memory_bandwidth, double h2d_bandwidth, double d2h_bandwidth,
                                double launch_seconds, uint64_t memory_bytes, std::string description) {
  for (double x : {gemm_flops, memory_bandwidth, h2d_bandwidth, d2h_bandwidth})
    if (!(x > 0) || !std::isfinite(x)) throw Error("a measured rate is ", x, "; calibration must measure positive rates");
  DeviceProfile p;
  p.name = "host";
  p.description = std::move(description);
  p.memory_bytes = memory_bytes;
  p.peak_flops = peaks(gemm_flops, gemm_flops, gemm_flops, gemm_flops, gemm_flops);
  p.memory_bandwidth = memory_bandwidth;
  p.h2d_bandwidth = h2d_bandwidth;
  p.d2h_bandwidth = d2h_bandwidth;
  p.launch_seconds = std::max(0.0, launch_seconds);
  p.efficiency = Efficiency{1.0, 1.0, 1.0};
  p.calibrated = true;
  return p;
}

nlohmann::json to_json(const DeviceProfile& p) {
  nlohmann::json flops;
  for (int d = 0; d < ir::kNumDTypes; ++d)
    flops[std::string(ir::dtype_name(static_cast<DType>(d)))] = p.peak_flops[static_cast<size_t>(d)];
  return {{"format", "dlmem-device-profile"},
          {"version", 1},
          {"name", p.name},
          {"description", p.description},
          {"memory_bytes", p.memory_bytes},
          {"peak_flops", flops},
          {"memory_bandwidth", p.memory_bandwidth},
          {"h2d_bandwidth", p.h2d_bandwidth},
          {"d2h_bandwidth", p.d2h_bandwidth},
          {"launch_seconds", p.launch_seconds},
          {"efficiency", {{"compute", p.efficiency.compute}, {"memory", p.efficiency.memory}, {"link", p.efficiency.link}}},
          {"calibrated", p.calibrated}};
}

DeviceProfile profile_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where, ": a device profile must be a JSON object");
  auto text = [&](const char* key, const std::string& def) {
    if (!j.contains(key)) return def;
    if (!j[key].is_string()) throw Error(where, ": field \"", key, "\" must be a string");
    return j[key].get<std::string>();
  };
  if (text("format", "") != "dlmem-device-profile")
    throw Error(where, ": not a device profile (\"format\" must be \"dlmem-device-profile\"; write one with "
                       "'dlmem calibrate --out ", where, "')");
  auto number = [&](const nlohmann::json& obj, const char* key, bool positive) {
    if (!obj.contains(key) || !obj[key].is_number())
      throw Error(where, ": field \"", key, "\" is missing or not a number");
    const double v = obj[key].get<double>();
    if (!std::isfinite(v) || v < 0 || (positive && v == 0))
      throw Error(where, ": field \"", key, "\" must be ", positive ? "positive" : "non-negative", ", got ", v);
    return v;
  };
  DeviceProfile p;
  p.name = text("name", "custom");
  p.description = text("description", "");
  const double mem = number(j, "memory_bytes", true);
  if (mem > 0x1p60) throw Error(where, ": field \"memory_bytes\" is ", mem, ", over 2^60 bytes");
  p.memory_bytes = static_cast<uint64_t>(mem);
  if (!j.contains("peak_flops") || !j["peak_flops"].is_object())
    throw Error(where, ": field \"peak_flops\" must be an object of FLOP/s per dtype (\"f32\": 1.5e13, ...)");
  const nlohmann::json& f = j["peak_flops"];
  for (auto it = f.begin(); it != f.end(); ++it)
    if (!ir::parse_dtype(it.key()))
      throw Error(where, ": \"peak_flops\" names unknown dtype '", it.key(), "' (known: f32, f16, bf16, i32, u8, bit)");
  const double f32 = number(f, "f32", true);
  for (int d = 0; d < ir::kNumDTypes; ++d) {
    const std::string key(ir::dtype_name(static_cast<DType>(d)));
    p.peak_flops[static_cast<size_t>(d)] = f.contains(key) ? number(f, key.c_str(), true) : f32;
  }
  p.memory_bandwidth = number(j, "memory_bandwidth", true);
  p.h2d_bandwidth = number(j, "h2d_bandwidth", true);
  p.d2h_bandwidth = number(j, "d2h_bandwidth", true);
  p.launch_seconds = number(j, "launch_seconds", false);
  if (j.contains("efficiency")) {
    const nlohmann::json& e = j["efficiency"];
    if (!e.is_object()) throw Error(where, ": field \"efficiency\" must be an object");
    p.efficiency.compute = number(e, "compute", true);
    p.efficiency.memory = number(e, "memory", true);
    p.efficiency.link = number(e, "link", true);
    for (double x : {p.efficiency.compute, p.efficiency.memory, p.efficiency.link})
      if (x > 1) throw Error(where, ": efficiencies are fractions of the peak, at most 1; got ", x);
  }
  if (j.contains("calibrated") && !j["calibrated"].is_boolean())
    throw Error(where, ": field \"calibrated\" must be true or false");
  p.calibrated = j.value("calibrated", false);
  return p;
}

DeviceProfile load_profile(const std::string& path) {
  return profile_from_json(read_json_file(path, "device profile"), path);
}

void save_profile(const std::string& path, const DeviceProfile& p) {
  const std::string text = to_json(p).dump(2) + "\n";
  write_file_atomic(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace dlmem::sim
