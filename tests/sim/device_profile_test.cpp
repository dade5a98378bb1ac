// Device profiles: the named datasheet profiles, lookup by name, profile files (round
// trip and bad input), and the `host` profile with and without calibration.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sim/device_profile.h"
#include "util/error.h"
#include "util/temp_dir.h"

namespace dlmem::sim {
namespace {

using test_util::TempDir;

TEST(DeviceProfile, NamedProfilesAreComplete) {
  const auto& all = named_profiles();
  ASSERT_EQ(all.size(), 8u);  // K40, P100, V100 x2, A100 x2, H100, H200
  for (const DeviceProfile& p : all) {
    SCOPED_TRACE(p.name);
    EXPECT_GT(p.memory_bytes, 1ull << 30);
    for (double f : p.peak_flops) EXPECT_GT(f, 1e12);
    EXPECT_GT(p.memory_bandwidth, 1e11);
    EXPECT_GT(p.h2d_bandwidth, 1e10);
    EXPECT_EQ(p.h2d_bandwidth, p.d2h_bandwidth);
    EXPECT_GT(p.launch_seconds, 0);
    EXPECT_FALSE(p.description.empty());
    EXPECT_GT(p.efficiency.compute, 0);
    EXPECT_LE(p.efficiency.compute, 1);
  }
  // Datasheet figures the benchmarks lean on.
  EXPECT_EQ(device_profile("v100-16gb").memory_bytes, 16ull << 30);
  EXPECT_DOUBLE_EQ(device_profile("v100-16gb").flops_for(ir::DType::f32), 15.7e12);
  EXPECT_DOUBLE_EQ(device_profile("h100-80gb").memory_bandwidth, 3.35e12);
  EXPECT_EQ(device_profile("k40").memory_bytes, 12ull << 30);
  EXPECT_EQ(device_profile("h200").memory_bytes, 141ull << 30);
}

TEST(DeviceProfile, LookupByShortAndCaseInsensitiveNames) {
  EXPECT_EQ(device_profile("V100").name, "v100-16gb");
  EXPECT_EQ(device_profile("v100-32").name, "v100-32gb");
  EXPECT_EQ(device_profile("A100-80GB").name, "a100-80gb");
  EXPECT_EQ(device_profile("h100").name, "h100-80gb");
  try {
    device_profile("tpu-v9");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tpu-v9"), std::string::npos) << m;
    EXPECT_NE(m.find("v100-16gb"), std::string::npos) << m;
    EXPECT_NE(m.find("host"), std::string::npos) << m;
  }
}

TEST(DeviceProfile, FileRoundTrip) {
  TempDir dir;
  DeviceProfile p = device_profile("a100-40gb");
  p.name = "my-a100";
  save_profile(dir.file("p.json"), p);
  const DeviceProfile q = device_profile(dir.file("p.json"));
  EXPECT_EQ(q.name, "my-a100");
  EXPECT_EQ(q.memory_bytes, p.memory_bytes);
  EXPECT_EQ(q.peak_flops, p.peak_flops);
  EXPECT_DOUBLE_EQ(q.memory_bandwidth, p.memory_bandwidth);
  EXPECT_DOUBLE_EQ(q.h2d_bandwidth, p.h2d_bandwidth);
  EXPECT_DOUBLE_EQ(q.launch_seconds, p.launch_seconds);
  EXPECT_DOUBLE_EQ(q.efficiency.link, p.efficiency.link);
}

void expect_bad_file(const std::string& text, const std::string& needle) {
  TempDir dir;
  const std::string path = dir.file("bad.json");
  std::ofstream(path) << text;
  try {
    load_profile(path);
    FAIL() << "expected an error for " << text;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
  }
}

TEST(DeviceProfile, BadFilesSayWhatIsWrong) {
  expect_bad_file("{not json", "not valid JSON");
  expect_bad_file(R"({"format": "something-else"})", "dlmem-device-profile");
  const std::string head = R"({"format": "dlmem-device-profile", "memory_bytes": 1e9, )";
  expect_bad_file(head + R"("peak_flops": {"f32": 1e12}, "memory_bandwidth": -5, "h2d_bandwidth": 1e9,
                      "d2h_bandwidth": 1e9, "launch_seconds": 0})",
                  "memory_bandwidth");
  expect_bad_file(head + R"("peak_flops": {"f99": 1e12}, "memory_bandwidth": 1e9, "h2d_bandwidth": 1e9,
                      "d2h_bandwidth": 1e9, "launch_seconds": 0})",
                  "f99");
  expect_bad_file(head + R"("peak_flops": {"f32": 1e12}, "memory_bandwidth": 1e9, "d2h_bandwidth": 1e9,
                      "launch_seconds": 0})",
                  "h2d_bandwidth");
  EXPECT_THROW(load_profile("/nonexistent/dir/profile.json"), Error);
}

// `host` reads the calibrated file from the cache directory, or falls back to marked
// stand-in figures.
TEST(DeviceProfile, HostProfileUsesTheCalibrationFile) {
  TempDir dir;
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  ::setenv("XDG_CACHE_HOME", dir.path().c_str(), 1);
  EXPECT_EQ(default_host_profile_path(), dir.path() + "/dlmem/host-profile.json");
  DeviceProfile h = device_profile("host");
  EXPECT_FALSE(h.calibrated);
  EXPECT_NE(h.description.find("dlmem calibrate"), std::string::npos);

  std::filesystem::create_directories(dir.path() + "/dlmem");
  save_profile(default_host_profile_path(), host_profile_from(80e9, 12e9, 6e9, 7e9, 4e-6, 8ull << 30, "test machine"));
  h = device_profile("host");
  EXPECT_TRUE(h.calibrated);
  EXPECT_EQ(h.name, "host");
  EXPECT_DOUBLE_EQ(h.flops_for(ir::DType::f32), 80e9);
  EXPECT_DOUBLE_EQ(h.d2h_bandwidth, 7e9);
  EXPECT_DOUBLE_EQ(h.efficiency.compute, 1.0);
  if (old) ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  else ::unsetenv("XDG_CACHE_HOME");
  EXPECT_THROW(host_profile_from(0, 1, 1, 1, 0, 0, ""), Error);
}

}  // namespace
}  // namespace dlmem::sim
