// The cuda backend where it cannot run (no GPU, or a build without CUDA): clear errors
// from the API, the trainer and the command line, never a crash. On a machine with a
// GPU these skip; tests/gpu (label `gpu`) covers the backend there.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "runtime/backend.h"
#include "train/trainer.h"
#include "util/error.h"

namespace dlmem::runtime {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CudaDevice, ParseDevice) {
  EXPECT_EQ(parse_device("cpu"), DeviceKind::cpu);
  EXPECT_EQ(parse_device("cuda"), DeviceKind::cuda);
  EXPECT_EQ(device_name(DeviceKind::cuda), "cuda");
  const std::string m = error_of([] { parse_device("gpu"); });
  EXPECT_NE(m.find("'gpu'"), std::string::npos) << m;
  EXPECT_NE(m.find("cpu"), std::string::npos) << m;
  EXPECT_NE(m.find("cuda"), std::string::npos) << m;
}

TEST(CudaDevice, WithoutAGpuTheBackendIsAClearError) {
  const CudaDeviceInfo info = cuda_device_info();
  if (info.available) GTEST_SKIP() << "a GPU is present (" << info.name << "); tests/gpu cover the backend";
  EXPECT_FALSE(info.reason.empty());
  const std::string m = error_of([] { make_cuda_backend(); });
  ASSERT_FALSE(m.empty()) << "make_cuda_backend did not throw dlmem::Error";
#ifdef DLMEM_HAVE_CUDA
  EXPECT_NE(m.find("CUDA device 0"), std::string::npos) << m;
  EXPECT_NE(m.find(info.reason), std::string::npos) << m;  // the CUDA runtime's own words
#else
  EXPECT_NE(m.find("built without CUDA"), std::string::npos) << m;
  EXPECT_NE(m.find("-DDLMEM_CUDA=ON"), std::string::npos) << m;
#endif
  // The cpu backend is unaffected.
  EXPECT_NO_THROW(make_backend(DeviceKind::cpu, 1));
}

TEST(CudaDevice, TrainerOnCudaWithoutAGpuIsAnError) {
  if (cuda_device_info().available) GTEST_SKIP() << "a GPU is present";
  train::TrainConfig c;
  c.model = "lenet5";
  c.dataset = "synthetic";
  c.evaluate = false;
  c.device = "cuda";
  EXPECT_THROW(train::Trainer t(c), Error);
  c.device = "tpu";
  const std::string m = error_of([&] { train::Trainer t(c); });
  EXPECT_NE(m.find("unknown device 'tpu'"), std::string::npos) << m;
}

struct CliRun {
  int code;
  std::string out;
};

CliRun cli(const std::string& args) {
  const std::string cmd = std::string(DLMEM_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

TEST(CudaDevice, CommandLineSaysWhyCudaIsUnavailable) {
  if (cuda_device_info().available) GTEST_SKIP() << "a GPU is present";
  for (const char* args : {"train --model lenet5 --dataset synthetic --epochs 1 --steps 1 --device cuda",
                           "plan --model lenet5 --device cuda"}) {
    const CliRun r = cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("CUDA"), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("internal error"), std::string::npos) << args << "\n" << r.out;
  }
  const CliRun r = cli("train --model lenet5 --epochs 1 --steps 1 --device tpu");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown device"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dlmem::runtime
