// The cuda backend's codecs write the host codecs' bytes exactly and decode them back.
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "codec/codec.h"
#include "gpu/gpu_test_util.h"
#include "util/error.h"

namespace dlmem::runtime {
namespace {

// Values with runs of zeros, -0.0, NaN, infinities and subnormals.
std::vector<float> awkward(uint64_t n, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  std::bernoulli_distribution keep(density);
  std::vector<float> x(n);
  for (uint64_t i = 0; i < n; ++i) x[i] = keep(rng) ? u(rng) : 0.f;
  const float specials[] = {-0.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 1e-40f, -1e-42f, 65520.f, 448.f, 500.f};
  for (uint64_t k = 0; k < std::size(specials) && k * 97 < n; ++k) x[k * 97] = specials[k];
  return x;
}

TEST(CudaCodec, BytesEqualTheHostCodecsAndDecodeBack) {
  DLMEM_REQUIRE_GPU();
  auto be = make_cuda_backend();
  for (const char* name : {"bitmask", "sparse", "zvc", "fp16", "bf16", "fp8-e4m3"}) {
    const codec::Codec& c = codec::get(name);
    for (uint64_t n : {uint64_t{1}, uint64_t{63}, uint64_t{257}, uint64_t{70000}, uint64_t{300001}}) {
      for (double density : {0.0, 0.02, 0.3, 0.97, 1.0}) {
        SCOPED_TRACE(std::string(name) + " n=" + std::to_string(n) + " density=" + std::to_string(density));
        const std::vector<float> x = awkward(n, density, static_cast<uint32_t>(n));
        std::vector<std::byte> host(c.bound(n));
        const uint64_t host_size = c.encode(x.data(), n, host.data());

        void* dx = be->allocate(Space::device, n * 4);
        void* denc = be->allocate(Space::device, c.bound(n));
        void* dy = be->allocate(Space::device, n * 4);
        be->upload(dx, x.data(), n * 4);
        const uint64_t size = be->encode(c, static_cast<const float*>(dx), n, denc);
        ASSERT_EQ(size, host_size);
        std::vector<std::byte> dev(size);
        be->download(dev.data(), denc, size);
        EXPECT_EQ(0, std::memcmp(dev.data(), host.data(), size));

        // Straight into pinned host memory (a swap with compression: cDMA).
        void* henc = be->allocate(Space::host, c.bound(n));
        EXPECT_EQ(be->encode(c, static_cast<const float*>(dx), n, henc), size);
        EXPECT_EQ(0, std::memcmp(henc, host.data(), size));
        be->decode(c, henc, size, n, static_cast<float*>(dy));
        be->synchronize();
        std::vector<float> from_host(n);
        be->download(from_host.data(), dy, n * 4);
        be->deallocate(Space::host, henc);

        be->decode(c, denc, size, n, static_cast<float*>(dy));
        be->synchronize();
        std::vector<float> y(n), want(n);
        be->download(y.data(), dy, n * 4);
        c.decode(host.data(), host_size, n, want.data());
        EXPECT_EQ(0, std::memcmp(y.data(), want.data(), n * 4));
        EXPECT_EQ(0, std::memcmp(from_host.data(), want.data(), n * 4));
        for (void* p : {dx, denc, dy}) be->deallocate(Space::device, p);
      }
    }
  }
}

// zstd and lz4 have no kernels: device data is staged through pinned host memory.
TEST(CudaCodec, HostCodecsOfDeviceBuffers) {
  DLMEM_REQUIRE_GPU();
  auto be = make_cuda_backend();
  const uint64_t n = 100000;
  const std::vector<float> x = awkward(n, 0.2, 9);
  for (const char* name : {"zstd", "lz4"}) {
    SCOPED_TRACE(name);
    const codec::Codec& c = codec::get(name);
    void* dx = be->allocate(Space::device, n * 4);
    void* henc = be->allocate(Space::host, c.bound(n));
    be->upload(dx, x.data(), n * 4);
    const uint64_t size = be->encode(c, static_cast<const float*>(dx), n, henc);
    be->upload(dx, std::vector<float>(n, 7.f).data(), n * 4);
    be->decode(c, henc, size, n, static_cast<float*>(dx));
    std::vector<float> y(n);
    be->download(y.data(), dx, n * 4);
    EXPECT_EQ(0, std::memcmp(y.data(), x.data(), n * 4));
    void* denc = be->allocate(Space::device, c.bound(n));
    EXPECT_THROW(be->encode(c, static_cast<const float*>(dx), n, denc), Error);  // device output: no kernels
    for (void* p : {dx, denc}) be->deallocate(Space::device, p);
    be->deallocate(Space::host, henc);
  }
}

TEST(CudaCodec, CorruptDataIsAnError) {
  DLMEM_REQUIRE_GPU();
  auto be = make_cuda_backend();
  const codec::Codec& c = codec::get("zvc");
  const uint64_t n = 4096;
  const std::vector<float> x = awkward(n, 0.3, 5);
  void* dx = be->allocate(Space::device, n * 4);
  void* denc = be->allocate(Space::device, c.bound(n));
  be->upload(dx, x.data(), n * 4);
  const uint64_t size = be->encode(c, static_cast<const float*>(dx), n, denc);
  // Claim fewer values than the mask holds.
  be->decode(c, denc, size - 4, n, static_cast<float*>(dx));
  EXPECT_THROW(be->synchronize(), Error);
  EXPECT_THROW(be->decode(c, denc, 3, n, static_cast<float*>(dx)), Error);  // shorter than the mask
  be->deallocate(Space::device, dx);
  be->deallocate(Space::device, denc);
}

}  // namespace
}  // namespace dlmem::runtime
