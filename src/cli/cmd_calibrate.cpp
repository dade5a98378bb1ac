// `dlmem calibrate`: measures this machine through the cpu backend (runtime/calibrate.h)
// and writes the `host` device profile that `--device host` reads.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "runtime/backend.h"
#include "runtime/calibrate.h"
#include "sim/device_profile.h"
#include "util/error.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct CalibrateArgs {
  std::string out;
  int threads = 0;
  int repeats = 5;
  bool json = false;
};

std::string rate(double per_second, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f G%s/s", per_second / 1e9, unit);
  return buf;
}

int run(const CalibrateArgs& a) {
  if (a.threads < 0) throw Error("--threads must be 0 (default) or positive, got ", a.threads);
  if (a.repeats <= 0) throw Error("--repeats must be positive, got ", a.repeats);
  const std::string out = a.out.empty() ? sim::default_host_profile_path() : a.out;
  auto be = runtime::make_cpu_backend({.threads = a.threads});
  runtime::CalibrationOptions o;
  o.repeats = a.repeats;
  if (!a.json) std::cerr << "calibrating (GEMM, streaming kernel, copy streams) ...\n";
  const runtime::Calibration c = runtime::calibrate(*be, o);
  const std::string desc = "this machine, calibrated by 'dlmem calibrate' (cpu backend, " +
                           (a.threads ? std::to_string(a.threads) : std::string("default")) + " threads)";
  const sim::DeviceProfile p = sim::host_profile_from(c.gemm_flops, c.memory_bandwidth, c.h2d_bandwidth, c.d2h_bandwidth,
                                                      c.launch_seconds, c.memory_bytes, desc);
  const std::filesystem::path dir = std::filesystem::path(out).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("cannot create directory '", dir.string(), "' for the profile: ", ec.message(), "; pass --out");
  }
  sim::save_profile(out, p);
  if (a.json) {
    nlohmann::json j = sim::to_json(p);
    j["path"] = out;
    j["seconds"] = c.seconds;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  Table t({{"measured", Align::Left}, {"value", Align::Right}});
  t.add_row({"f32 GEMM", rate(c.gemm_flops, "FLOP")});
  t.add_row({"streaming kernel (read + write)", rate(c.memory_bandwidth, "B")});
  t.add_row({"copy host -> device stream", rate(c.h2d_bandwidth, "B")});
  t.add_row({"copy device -> host stream", rate(c.d2h_bandwidth, "B")});
  t.add_row({"kernel launch (64 elements)", human_duration(c.launch_seconds)});
  t.add_row({"memory", human_bytes(c.memory_bytes)});
  std::cout << t.str() << "\nwrote " << out << " in " << human_duration(c.seconds)
            << " (used by --device host)\n";
  return 0;
}

}  // namespace

std::function<int()> add_calibrate(CLI::App& app) {
  auto* cmd = app.add_subcommand("calibrate", "measure this machine and write the 'host' device profile");
  auto a = std::make_shared<CalibrateArgs>();
  cmd->add_option("--out,-o", a->out, "profile file (default " + sim::default_host_profile_path() + ")");
  cmd->add_option("--threads", a->threads, "cpu threads (0: default)")->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "timed runs per measurement (median kept)")->capture_default_str();
  cmd->add_flag("--json", a->json, "print the profile as JSON");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
