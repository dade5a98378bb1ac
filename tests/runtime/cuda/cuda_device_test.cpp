// The cuda backend where it cannot run (no GPU, or a build without CUDA): clear errors
// from the API, the trainer and the command line, never a crash. On a machine with a
// GPU these skip; tests/gpu (label `gpu`) covers the backend there.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/backend.h"
#include "train/trainer.h"
#include "util/cli_run.h"
#include "util/error.h"
#ifdef DLMEM_HAVE_CUDA
#include "runtime/cuda/kernels.h"
#endif

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

using dlmem::test_util::CliRun;
using dlmem::test_util::run_cli;

TEST(CudaDevice, CommandLineSaysWhyCudaIsUnavailable) {
  if (cuda_device_info().available) GTEST_SKIP() << "a GPU is present";
  for (const char* args : {"train --model lenet5 --dataset synthetic --epochs 1 --steps 1 --device cuda",
                           "plan --model lenet5 --device cuda"}) {
    const CliRun r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("CUDA"), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("internal error"), std::string::npos) << args << "\n" << r.out;
  }
  const CliRun r = run_cli("train --model lenet5 --epochs 1 --steps 1 --device tpu");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown device"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dlmem::runtime

#ifdef DLMEM_HAVE_CUDA
// The host half of the cuda kernels, testable without a GPU: the reduction plans that
// feed reduce_sum and the bias gradients (merged dims, strides, chunks).
namespace dlmem::cuda {
namespace {

int64_t offset(int64_t i, int rank, const int64_t* dims, const int64_t* strides) {
  int64_t off = 0;
  for (int d = rank - 1; d >= 0; --d) {
    off += (i % dims[d]) * strides[d];
    i /= dims[d];
  }
  return off;
}

TEST(CudaReducePlan, OffsetsCoverExactlyTheReducedElements) {
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> cases = {
      {{300, 7}, {1, 7}},       {{7, 300}, {7, 1}},       {{4, 9, 50}, {1, 9, 1}}, {{3, 4, 5, 6}, {1, 4, 1, 6}},
      {{2, 3, 4}, {2, 3, 1}},   {{6000, 3}, {1, 1}},      {{5, 1, 4}, {1, 1, 4}},  {{2, 3}, {2, 3}},
      {{64, 256, 3136}, {1, 256, 1}}};
  for (const auto& [x, y] : cases) {
    SCOPED_TRACE(::testing::PrintToString(x) + " -> " + ::testing::PrintToString(y));
    const ReducePlan p = plan_reduce(static_cast<int>(x.size()), x.data(), y.data());
    int64_t nx = 1, ny = 1;
    for (size_t i = 0; i < x.size(); ++i) {
      nx *= x[i];
      ny *= y[i];
    }
    EXPECT_EQ(p.outputs, ny);
    EXPECT_EQ(p.outputs * p.reduced, nx);
    EXPECT_GE(p.chunks, 1);
    EXPECT_LE(p.chunks, 1024);
    EXPECT_EQ(reduce_workspace(p), p.chunks > 1 ? static_cast<size_t>(p.chunks * p.outputs) * 8 : 0);
    if (nx > 1'000'000) continue;
    // Every x element is visited once, by the output whose row-major index it maps to.
    std::vector<int> seen(static_cast<size_t>(nx), 0);
    for (int64_t o = 0; o < p.outputs; ++o)
      for (int64_t r = 0; r < p.reduced; ++r) {
        const int64_t e = offset(o, p.kept_rank, p.kept_dims, p.kept_strides) +
                          offset(r, p.red_rank, p.red_dims, p.red_strides);
        ASSERT_LT(e, nx);
        ++seen[static_cast<size_t>(e)];
        // e's coordinates, reduced to y's shape, give output o.
        int64_t rest = e, yi = 0, ys = 1;
        for (int d = static_cast<int>(x.size()) - 1; d >= 0; --d) {
          const int64_t c = rest % x[static_cast<size_t>(d)];
          rest /= x[static_cast<size_t>(d)];
          yi += (y[static_cast<size_t>(d)] == 1 ? 0 : c) * ys;
          ys *= y[static_cast<size_t>(d)];
        }
        ASSERT_EQ(yi, o);
      }
    for (int s : seen) ASSERT_EQ(s, 1);
  }
}

TEST(CudaReducePlan, NormPlansAndCodecsAreSized) {
  const BnPlan bn = plan_batch_norm(256, 64, 112 * 112);
  EXPECT_EQ(bn.chunks, 256);
  EXPECT_GT(batch_norm_workspace(bn), static_cast<size_t>(2 * 64 * 256 * 8));
  EXPECT_EQ(plan_batch_norm(2, 8, 1).chunks, 1);
  const LnPlan ln = plan_layer_norm(8192, 768);
  EXPECT_EQ(ln.chunks, 256);
  EXPECT_EQ(layer_norm_bwd_workspace(ln), static_cast<size_t>(2 * 256 * 768 * 8));
  for (const char* name : {"bitmask", "sparse", "zvc", "fp16", "bf16", "fp8-e4m3"}) EXPECT_TRUE(device_codec(name));
  EXPECT_FALSE(device_codec("zstd"));
  EXPECT_EQ(codec_scratch_bytes(DeviceCodec::zvc, 1 << 20), 16u * 8);   // 2^20 / 64K super blocks
  EXPECT_EQ(codec_scratch_bytes(DeviceCodec::fp16, 1 << 20), 0u);
}

}  // namespace
}  // namespace dlmem::cuda
#endif
