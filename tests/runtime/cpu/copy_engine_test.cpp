// The cpu backend's copy engine: per-stream FIFO order, events, cross-stream waits,
// the compute stream blocking on an event, and shutdown with work in flight. Run under
// the tsan preset too (these are the threads of the swap path).
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "runtime/cpu/copy_engine.h"
#include "util/error.h"

namespace dlmem::cpu {
namespace {

using plan::Stream;

std::vector<float> iota_vec(size_t n, float start = 0) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(CopyEngine, CopiesAndCompletesEvents) {
  CopyEngine ce;
  const auto src = iota_vec(1 << 16);
  std::vector<float> dst(src.size(), -1.0f);
  const runtime::Event e = ce.copy(Stream::d2h, dst.data(), src.data(), src.size() * sizeof(float));
  EXPECT_EQ(e.stream, Stream::d2h);
  EXPECT_EQ(e.seq, 1u);
  ce.wait(Stream::compute, e);
  EXPECT_TRUE(ce.done(e));
  EXPECT_EQ(dst, src);
  // Completed and null events.
  EXPECT_TRUE(ce.done(runtime::Event{Stream::compute, 0}));
  EXPECT_TRUE(ce.done(runtime::Event{Stream::h2d, 0}));
}

TEST(CopyEngine, OneStreamRunsInOrder) {
  // x -> y, then y -> z on the same stream: z sees the first copy's result.
  CopyEngine ce;
  const size_t n = 1 << 18;
  const auto x = iota_vec(n, 1);
  std::vector<float> y(n, 0), z(n, 0);
  runtime::Event last{};
  for (int rep = 0; rep < 4; ++rep) {
    ce.copy(Stream::h2d, y.data(), x.data(), n * sizeof(float));
    last = ce.copy(Stream::h2d, z.data(), y.data(), n * sizeof(float));
  }
  EXPECT_EQ(last.seq, 8u);
  ce.wait(Stream::compute, last);
  EXPECT_EQ(z, x);
}

TEST(CopyEngine, CrossStreamWaitOrdersCopies) {
  // d2h writes h; h2d must wait for it before reading h (the swap-in after a swap-out).
  for (int rep = 0; rep < 20; ++rep) {
    CopyEngine ce;
    const size_t n = 1 << 17;
    const auto a = iota_vec(n, static_cast<float>(rep));
    std::vector<float> h(n, 0), a2(n, 0);
    const runtime::Event out = ce.copy(Stream::d2h, h.data(), a.data(), n * sizeof(float));
    ce.wait(Stream::h2d, out);
    const runtime::Event in = ce.copy(Stream::h2d, a2.data(), h.data(), n * sizeof(float));
    ce.wait(Stream::compute, in);
    EXPECT_TRUE(ce.done(out));
    ASSERT_EQ(a2, a) << "repetition " << rep;
  }
}

TEST(CopyEngine, SynchronizeDrainsBothStreams) {
  CopyEngine ce;
  const size_t n = 1 << 16;
  const auto a = iota_vec(n);
  std::vector<std::vector<float>> outs(16, std::vector<float>(n, 0));
  std::vector<runtime::Event> evs;
  for (size_t i = 0; i < outs.size(); ++i)
    evs.push_back(ce.copy(i % 2 ? Stream::d2h : Stream::h2d, outs[i].data(), a.data(), n * sizeof(float)));
  ce.synchronize();
  for (size_t i = 0; i < outs.size(); ++i) {
    EXPECT_TRUE(ce.done(evs[i]));
    EXPECT_EQ(outs[i], a);
  }
}

TEST(CopyEngine, DestructorFinishesWorkInFlight) {
  const size_t n = 1 << 20;
  const auto a = iota_vec(n);
  std::vector<float> b(n, 0), c(n, 0);
  {
    CopyEngine ce;
    const runtime::Event e = ce.copy(Stream::d2h, b.data(), a.data(), n * sizeof(float));
    ce.wait(Stream::h2d, e);
    ce.copy(Stream::h2d, c.data(), b.data(), n * sizeof(float));
  }
  EXPECT_EQ(c, a);
}

TEST(CopyEngine, CopiesOnTheComputeStreamAreABug) {
  CopyEngine ce;
  float x = 1, y = 0;
  EXPECT_THROW(ce.copy(Stream::compute, &y, &x, sizeof x), InternalError);
}

}  // namespace
}  // namespace dlmem::cpu
