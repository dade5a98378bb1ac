// Tests of the CPU kernels (src/runtime/cpu/kernels.h): every kernel against a naive
// reference written here with plain loops in double precision, every backward kernel
// against a reference backward and against central finite differences of the
// reference forward, and the determinism promised in the header. Seeds are fixed.
//
// Tolerances, unless a test says otherwise:
//  - kernel vs naive reference: |got - want| <= 1e-4 * |want| + 1e-4 (kRtol, kAtol).
//    The kernels compute in f32 (unit roundoff u = 6e-8) and every sum here has at
//    most a few hundred O(1) terms, so the rounding error is about K * u ~ 1e-5 in
//    the worst case and far less typically; an indexing mistake gives errors ~0.1.
//  - kernel backward vs finite differences (kFdRtol, kFdAtol): central differences
//    of the double reference forward with step h = 1e-3 have O(h^2) ~ 1e-6 truncation
//    error for these smooth O(1) functions (none for the piecewise-linear ones away
//    from kinks); the kernel's f32 gradient adds ~1e-5 relative, so 1e-3 relative
//    plus 1e-4 absolute leaves a wide margin while a wrong formula (a missing term, a
//    wrong factor) is off by far more.
#include "runtime/cpu/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace dlmem::cpu {
namespace {

using Vec = std::vector<float>;
using DVec = std::vector<double>;
using Dims = std::vector<int64_t>;

constexpr double kRtol = 1e-4, kAtol = 1e-4;
constexpr double kFdRtol = 1e-3, kFdAtol = 1e-4;
constexpr int kThreads = 2;

// ------------------------------------------------------------------ helpers

Vec random_vec(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Vec v(n);
  for (float& e : v) e = dist(gen);
  return v;
}

DVec to_d(const Vec& v) { return DVec(v.begin(), v.end()); }

double dot(const DVec& a, const DVec& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

int64_t numel(const Dims& d) {
  return std::accumulate(d.begin(), d.end(), int64_t{1}, std::multiplies<>());
}

Dims strides_of(const Dims& d) {
  Dims s(d.size());
  int64_t stride = 1;
  for (size_t i = d.size(); i-- > 0;) {
    s[i] = stride;
    stride *= d[i];
  }
  return s;
}

// The multi-index of flat position `flat` in a row-major tensor of dims `d`.
Dims unravel(int64_t flat, const Dims& d) {
  Dims idx(d.size());
  for (size_t i = d.size(); i-- > 0;) {
    idx[i] = flat % d[i];
    flat /= d[i];
  }
  return idx;
}

// Every element within atol + rtol * |want| (NaN fails); reports the first miss.
void expect_close(const Vec& got, const DVec& want, const std::string& what, double rtol = kRtol,
                  double atol = kAtol) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= atol + rtol * std::fabs(want[i]))) {
      if (bad++ == 0) first = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements differ; first at "
                     << first << ": got " << (bad ? got[first] : 0.f) << ", want "
                     << (bad ? want[first] : 0.0);
}

void expect_bitwise_equal(const Vec& a, const Vec& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what;
}

// Checks `grad`, a kernel's gradient of `loss` at `at`, against central differences
// of `loss` (a double-precision reference) at about `samples` evenly spread
// coordinates.
void expect_grad_matches_fd(const std::function<double(const DVec&)>& loss, const DVec& at,
                            const Vec& grad, const std::string& what, double h = 1e-3,
                            size_t samples = 48) {
  ASSERT_EQ(at.size(), grad.size()) << what;
  DVec x = at;
  const size_t step = std::max<size_t>(1, at.size() / samples);
  for (size_t i = 0; i < at.size(); i += step) {
    x[i] = at[i] + h;
    const double plus = loss(x);
    x[i] = at[i] - h;
    const double minus = loss(x);
    x[i] = at[i];
    const double fd = (plus - minus) / (2 * h);
    EXPECT_NEAR(grad[i], fd, kFdAtol + kFdRtol * std::fabs(fd)) << what << " coordinate " << i;
  }
}

// A scratchpad of exactly the queried size (nullptr when 0, as the header allows),
// followed by a guard band the kernel must not touch.
class Scratch {
 public:
  explicit Scratch(size_t bytes) : bytes_(bytes), buf_(bytes + kGuard, kPattern) {}
  ~Scratch() {
    for (size_t i = bytes_; i < buf_.size(); ++i)
      if (buf_[i] != kPattern) {
        ADD_FAILURE() << "a kernel wrote past its " << bytes_ << "-byte scratchpad";
        return;
      }
  }
  void* get() { return bytes_ ? buf_.data() : nullptr; }

 private:
  static constexpr size_t kGuard = 256;
  static constexpr std::byte kPattern{0xA5};
  size_t bytes_;
  std::vector<std::byte> buf_;
};

// ------------------------------------------------------------------ convolution reference

// Calls f(x_index, w_index, y_index) for every multiply of the convolution.
template <typename F>
void for_each_conv_tap(const Conv2dShape& p, F f) {
  const int64_t cg = p.c / p.groups, kg = p.k / p.groups;
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t k = 0; k < p.k; ++k) {
      const int64_t g = k / kg;
      for (int64_t oy = 0; oy < p.oh; ++oy)
        for (int64_t ox = 0; ox < p.ow; ++ox) {
          const int64_t yi = ((n * p.k + k) * p.oh + oy) * p.ow + ox;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t ry = 0; ry < p.r; ++ry)
              for (int64_t rx = 0; rx < p.s; ++rx) {
                const int64_t iy = oy * p.stride_h - p.pad_h + ry * p.dil_h;
                const int64_t ix = ox * p.stride_w - p.pad_w + rx * p.dil_w;
                if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                const int64_t xi = ((n * p.c + g * cg + ci) * p.h + iy) * p.w + ix;
                const int64_t wi = ((k * cg + ci) * p.r + ry) * p.s + rx;
                f(xi, wi, yi);
              }
        }
    }
}

int64_t conv_x_size(const Conv2dShape& p) { return p.n * p.c * p.h * p.w; }
int64_t conv_w_size(const Conv2dShape& p) { return p.k * (p.c / p.groups) * p.r * p.s; }
int64_t conv_y_size(const Conv2dShape& p) { return p.n * p.k * p.oh * p.ow; }

DVec ref_conv_fwd(const Conv2dShape& p, const DVec& x, const DVec& w, const DVec* b) {
  DVec y(conv_y_size(p), 0.0);
  if (b)
    for (int64_t i = 0; i < conv_y_size(p); ++i) y[i] = (*b)[(i / (p.oh * p.ow)) % p.k];
  for_each_conv_tap(p, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += x[xi] * w[wi]; });
  return y;
}

DVec ref_conv_bwd_data(const Conv2dShape& p, const DVec& dy, const DVec& w) {
  DVec dx(conv_x_size(p), 0.0);
  for_each_conv_tap(p, [&](int64_t xi, int64_t wi, int64_t yi) { dx[xi] += dy[yi] * w[wi]; });
  return dx;
}

DVec ref_conv_bwd_weight(const Conv2dShape& p, const DVec& dy, const DVec& x) {
  DVec dw(conv_w_size(p), 0.0);
  for_each_conv_tap(p, [&](int64_t xi, int64_t wi, int64_t yi) { dw[wi] += dy[yi] * x[xi]; });
  return dw;
}

DVec ref_conv_bwd_bias(const Conv2dShape& p, const DVec& dy) {
  DVec db(p.k, 0.0);
  for (int64_t i = 0; i < conv_y_size(p); ++i) db[(i / (p.oh * p.ow)) % p.k] += dy[i];
  return db;
}

std::vector<Conv2dShape> conv_cases() {
  std::vector<Conv2dShape> cases = {
      // plain 3x3, same padding
      {.n = 2, .c = 3, .h = 7, .w = 6, .k = 4, .r = 3, .s = 3, .pad_h = 1, .pad_w = 1},
      // stride, asymmetric kernel and padding, dilation
      {.n = 2,
       .c = 3,
       .h = 9,
       .w = 8,
       .k = 5,
       .r = 3,
       .s = 2,
       .stride_h = 2,
       .stride_w = 1,
       .pad_h = 1,
       .pad_w = 2,
       .dil_h = 2,
       .dil_w = 1},
      // grouped
      {.n = 2, .c = 4, .h = 6, .w = 6, .k = 6, .r = 3, .s = 3, .pad_h = 1, .pad_w = 1, .groups = 2},
      // depthwise, strided
      {.n = 2,
       .c = 5,
       .h = 8,
       .w = 7,
       .k = 5,
       .r = 3,
       .s = 3,
       .stride_h = 2,
       .stride_w = 2,
       .pad_h = 1,
       .pad_w = 1,
       .groups = 5},
      // 1x1
      {.n = 3, .c = 6, .h = 4, .w = 5, .k = 7, .r = 1, .s = 1},
  };
  for (Conv2dShape& s : cases) s.infer_output();
  return cases;
}

std::string describe(const Conv2dShape& s) {
  return "conv n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " " + std::to_string(s.h) +
         "x" + std::to_string(s.w) + " k" + std::to_string(s.k) + " " + std::to_string(s.r) + "x" +
         std::to_string(s.s) + " stride " + std::to_string(s.stride_h) + "x" +
         std::to_string(s.stride_w) + " pad " + std::to_string(s.pad_h) + "x" +
         std::to_string(s.pad_w) + " dil " + std::to_string(s.dil_h) + "x" +
         std::to_string(s.dil_w) + " groups " + std::to_string(s.groups);
}

// ------------------------------------------------------------------ convolution tests

TEST(CpuKernels, ConvInferOutputFollowsPyTorch) {
  Conv2dShape s{.n = 1,
                .c = 3,
                .h = 32,
                .w = 31,
                .k = 8,
                .r = 3,
                .s = 5,
                .stride_h = 2,
                .stride_w = 3,
                .pad_h = 1,
                .pad_w = 2,
                .dil_h = 2,
                .dil_w = 1};
  s.infer_output();
  // floor((32 + 2 - 2*2 - 1) / 2) + 1 = 15, floor((31 + 4 - 4 - 1) / 3) + 1 = 11
  EXPECT_EQ(s.oh, 15);
  EXPECT_EQ(s.ow, 11);
  Conv2dShape bad_groups{.c = 3, .k = 4, .groups = 2};
  EXPECT_THROW(bad_groups.infer_output(), std::invalid_argument);
  Conv2dShape too_big{.h = 2, .w = 2, .r = 5, .s = 1};
  EXPECT_THROW(too_big.infer_output(), std::invalid_argument);
}

TEST(CpuKernels, ConvForwardMatchesNaive) {
  Context ctx(kThreads);
  uint32_t seed = 1;
  for (const Conv2dShape& s : conv_cases())
    for (bool bias : {true, false}) {
      const Vec x = random_vec(conv_x_size(s), seed++), w = random_vec(conv_w_size(s), seed++),
                b = random_vec(s.k, seed++);
      Vec y(conv_y_size(s), NAN);
      Scratch scratch(conv2d_fwd_scratch_bytes(ctx, s, bias));
      conv2d_fwd(ctx, s, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), scratch.get());
      const DVec db = to_d(b);
      expect_close(y, ref_conv_fwd(s, to_d(x), to_d(w), bias ? &db : nullptr),
                   describe(s) + (bias ? " with bias" : ""));
    }
}

TEST(CpuKernels, ConvBackwardDataMatchesNaive) {
  Context ctx(kThreads);
  uint32_t seed = 100;
  for (const Conv2dShape& s : conv_cases()) {
    const Vec dy = random_vec(conv_y_size(s), seed++), w = random_vec(conv_w_size(s), seed++);
    Vec dx(conv_x_size(s), NAN);
    Scratch scratch(conv2d_bwd_data_scratch_bytes(ctx, s));
    conv2d_bwd_data(ctx, s, dy.data(), w.data(), dx.data(), scratch.get());
    expect_close(dx, ref_conv_bwd_data(s, to_d(dy), to_d(w)), describe(s));
  }
}

TEST(CpuKernels, ConvBackwardWeightMatchesNaive) {
  Context ctx(kThreads);
  uint32_t seed = 200;
  for (const Conv2dShape& s : conv_cases())
    for (bool bias : {true, false}) {
      const Vec dy = random_vec(conv_y_size(s), seed++), x = random_vec(conv_x_size(s), seed++);
      Vec dw(conv_w_size(s), NAN), db(s.k, NAN);
      Scratch scratch(conv2d_bwd_weight_scratch_bytes(ctx, s, bias));
      conv2d_bwd_weight(ctx, s, dy.data(), x.data(), dw.data(), bias ? db.data() : nullptr,
                        scratch.get());
      expect_close(dw, ref_conv_bwd_weight(s, to_d(dy), to_d(x)), describe(s) + " dw");
      if (bias) expect_close(db, ref_conv_bwd_bias(s, to_d(dy)), describe(s) + " db");
    }
}

TEST(CpuKernels, ConvGradientsMatchFiniteDifferences) {
  Context ctx(kThreads);
  uint32_t seed = 300;
  for (const Conv2dShape& s : conv_cases()) {
    const Vec x = random_vec(conv_x_size(s), seed++), w = random_vec(conv_w_size(s), seed++),
              b = random_vec(s.k, seed++), dy = random_vec(conv_y_size(s), seed++);
    const DVec xd = to_d(x), wd = to_d(w), bd = to_d(b), dyd = to_d(dy);
    Vec dx(x.size()), dw(w.size()), db(b.size());
    Scratch s1(conv2d_bwd_data_scratch_bytes(ctx, s));
    conv2d_bwd_data(ctx, s, dy.data(), w.data(), dx.data(), s1.get());
    Scratch s2(conv2d_bwd_weight_scratch_bytes(ctx, s, true));
    conv2d_bwd_weight(ctx, s, dy.data(), x.data(), dw.data(), db.data(), s2.get());
    // loss = sum(dy * conv(x, w, b)), differentiated in each argument
    expect_grad_matches_fd([&](const DVec& v) { return dot(dyd, ref_conv_fwd(s, v, wd, &bd)); }, xd,
                           dx, describe(s) + " dx");
    expect_grad_matches_fd([&](const DVec& v) { return dot(dyd, ref_conv_fwd(s, xd, v, &bd)); }, wd,
                           dw, describe(s) + " dw");
    expect_grad_matches_fd([&](const DVec& v) { return dot(dyd, ref_conv_fwd(s, xd, wd, &v)); }, bd,
                           db, describe(s) + " db");
  }
}

TEST(CpuKernels, ConvBackwardWeightIsDeterministic) {
  Context ctx(kThreads);
  // Large enough that oneDNN splits the reduction over the batch between threads.
  Conv2dShape s{.n = 8, .c = 16, .h = 16, .w = 16, .k = 32, .r = 3, .s = 3, .pad_h = 1, .pad_w = 1};
  s.infer_output();
  const Vec dy = random_vec(conv_y_size(s), 11), x = random_vec(conv_x_size(s), 12);
  Scratch scratch(conv2d_bwd_weight_scratch_bytes(ctx, s, true));
  Vec dw1(conv_w_size(s)), db1(s.k), dw2(conv_w_size(s)), db2(s.k);
  conv2d_bwd_weight(ctx, s, dy.data(), x.data(), dw1.data(), db1.data(), scratch.get());
  conv2d_bwd_weight(ctx, s, dy.data(), x.data(), dw2.data(), db2.data(), scratch.get());
  expect_bitwise_equal(dw1, dw2, "dw run to run");
  expect_bitwise_equal(db1, db2, "db run to run");
  // A second Context (a fresh primitive) with the same thread count gives the same bits.
  Context ctx2(kThreads);
  Vec dw3(conv_w_size(s)), db3(s.k);
  Scratch scratch2(conv2d_bwd_weight_scratch_bytes(ctx2, s, true));
  conv2d_bwd_weight(ctx2, s, dy.data(), x.data(), dw3.data(), db3.data(), scratch2.get());
  expect_bitwise_equal(dw1, dw3, "dw across contexts");
  expect_bitwise_equal(db1, db3, "db across contexts");
}

// ------------------------------------------------------------------ pooling reference

struct PoolRef {
  DVec y;
  std::vector<uint8_t> idx;  // max only: position in the window, ry * kw + rx
};

int64_t pool_x_size(const Pool2dShape& p) { return p.n * p.c * p.h * p.w; }
int64_t pool_y_size(const Pool2dShape& p) { return p.n * p.c * p.oh * p.ow; }

PoolRef ref_max_pool(const Pool2dShape& p, const DVec& x) {
  PoolRef r{DVec(pool_y_size(p)), std::vector<uint8_t>(pool_y_size(p))};
  for (int64_t pl = 0; pl < p.n * p.c; ++pl)
    for (int64_t oy = 0; oy < p.oh; ++oy)
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t pos = -1;
        for (int64_t ry = 0; ry < p.kh; ++ry)
          for (int64_t rx = 0; rx < p.kw; ++rx) {
            const int64_t iy = oy * p.stride_h - p.pad_h + ry, ix = ox * p.stride_w - p.pad_w + rx;
            if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
            const double v = x[(pl * p.h + iy) * p.w + ix];
            if (v > best) best = v, pos = ry * p.kw + rx;
          }
        const int64_t yi = (pl * p.oh + oy) * p.ow + ox;
        r.y[yi] = best;
        r.idx[yi] = static_cast<uint8_t>(pos);
      }
  return r;
}

DVec ref_max_pool_bwd(const Pool2dShape& p, const DVec& dy, const std::vector<uint8_t>& idx) {
  DVec dx(pool_x_size(p), 0.0);
  for (int64_t pl = 0; pl < p.n * p.c; ++pl)
    for (int64_t oy = 0; oy < p.oh; ++oy)
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        const int64_t yi = (pl * p.oh + oy) * p.ow + ox;
        const int64_t iy = oy * p.stride_h - p.pad_h + idx[yi] / p.kw;
        const int64_t ix = ox * p.stride_w - p.pad_w + idx[yi] % p.kw;
        dx[(pl * p.h + iy) * p.w + ix] += dy[yi];
      }
  return dx;
}

// PyTorch's avg_pool2d: the divisor of count_include_pad is the window clipped to the
// padded input (not to ceil_mode's overhang); otherwise the in-bounds count.
template <typename F>
void for_each_avg_window(const Pool2dShape& p, F f) {
  for (int64_t pl = 0; pl < p.n * p.c; ++pl)
    for (int64_t oy = 0; oy < p.oh; ++oy)
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        int64_t hs = oy * p.stride_h - p.pad_h, ws = ox * p.stride_w - p.pad_w;
        int64_t he = std::min(hs + p.kh, p.h + p.pad_h), we = std::min(ws + p.kw, p.w + p.pad_w);
        const int64_t pool_size = (he - hs) * (we - ws);
        hs = std::max<int64_t>(hs, 0), ws = std::max<int64_t>(ws, 0);
        he = std::min(he, p.h), we = std::min(we, p.w);
        const int64_t div = p.count_include_pad ? pool_size : (he - hs) * (we - ws);
        f(pl, (pl * p.oh + oy) * p.ow + ox, hs, he, ws, we, static_cast<double>(div));
      }
}

DVec ref_avg_pool(const Pool2dShape& p, const DVec& x) {
  DVec y(pool_y_size(p));
  for_each_avg_window(
      p, [&](int64_t pl, int64_t yi, int64_t hs, int64_t he, int64_t ws, int64_t we, double div) {
        double sum = 0;
        for (int64_t iy = hs; iy < he; ++iy)
          for (int64_t ix = ws; ix < we; ++ix) sum += x[(pl * p.h + iy) * p.w + ix];
        y[yi] = sum / div;
      });
  return y;
}

DVec ref_avg_pool_bwd(const Pool2dShape& p, const DVec& dy) {
  DVec dx(pool_x_size(p), 0.0);
  for_each_avg_window(
      p, [&](int64_t pl, int64_t yi, int64_t hs, int64_t he, int64_t ws, int64_t we, double div) {
        for (int64_t iy = hs; iy < he; ++iy)
          for (int64_t ix = ws; ix < we; ++ix) dx[(pl * p.h + iy) * p.w + ix] += dy[yi] / div;
      });
  return dx;
}

std::vector<Pool2dShape> pool_cases() {
  std::vector<Pool2dShape> cases = {
      // 3x3 stride 2 pad 1, floor; then ceil, whose last column window overhangs
      {.n = 2,
       .c = 3,
       .h = 7,
       .w = 6,
       .kh = 3,
       .kw = 3,
       .stride_h = 2,
       .stride_w = 2,
       .pad_h = 1,
       .pad_w = 1},
      {.n = 2,
       .c = 3,
       .h = 7,
       .w = 6,
       .kh = 3,
       .kw = 3,
       .stride_h = 2,
       .stride_w = 2,
       .pad_h = 1,
       .pad_w = 1,
       .ceil_mode = true},
      // 2x2 stride 2 on odd sizes with ceil: overhang in both directions
      {.n = 1,
       .c = 4,
       .h = 5,
       .w = 5,
       .kh = 2,
       .kw = 2,
       .stride_h = 2,
       .stride_w = 2,
       .ceil_mode = true},
      // asymmetric kernel, stride and padding
      {.n = 2,
       .c = 2,
       .h = 6,
       .w = 7,
       .kh = 3,
       .kw = 2,
       .stride_h = 1,
       .stride_w = 2,
       .pad_h = 1,
       .pad_w = 0},
      // overlapping windows with padding, ceil_mode that changes nothing
      {.n = 1,
       .c = 3,
       .h = 5,
       .w = 4,
       .kh = 2,
       .kw = 2,
       .stride_h = 1,
       .stride_w = 1,
       .pad_h = 1,
       .pad_w = 1,
       .ceil_mode = true},
  };
  for (Pool2dShape& s : cases) s.infer_output();
  return cases;
}

std::string describe(const Pool2dShape& s) {
  return "pool " + std::to_string(s.h) + "x" + std::to_string(s.w) + " kernel " +
         std::to_string(s.kh) + "x" + std::to_string(s.kw) + " stride " +
         std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w) + " pad " +
         std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w) +
         (s.ceil_mode ? " ceil" : " floor") + (s.count_include_pad ? " incl-pad" : " excl-pad");
}

// ------------------------------------------------------------------ pooling tests

TEST(CpuKernels, PoolInferOutputFollowsPyTorch) {
  auto out = [](int64_t h, int64_t k, int64_t stride, int64_t pad, bool ceil) {
    Pool2dShape s{.h = h,
                  .w = h,
                  .kh = k,
                  .kw = k,
                  .stride_h = stride,
                  .stride_w = stride,
                  .pad_h = pad,
                  .pad_w = pad,
                  .ceil_mode = ceil};
    s.infer_output();
    return s.oh;
  };
  EXPECT_EQ(out(5, 2, 2, 0, false), 2);
  EXPECT_EQ(out(5, 2, 2, 0, true), 3);
  EXPECT_EQ(out(6, 3, 2, 1, false), 3);
  EXPECT_EQ(out(6, 3, 2, 1, true), 4);  // last window starts at 5 < 6 + 1
  EXPECT_EQ(out(5, 3, 2, 1, true), 3);  // (5 + 2 - 3 + 1) / 2 + 1 = 3: ceil changes nothing
  // PyTorch drops a ceil_mode window that would start in the right padding:
  // h = 4, k = 2, stride 3, pad 1: (4 + 2 - 2 + 2) / 3 + 1 = 3, (3 - 1) * 3 = 6 >= 5 -> 2.
  EXPECT_EQ(out(4, 2, 3, 1, true), 2);
  Pool2dShape big_pad{.h = 5, .w = 5, .kh = 2, .kw = 2, .pad_h = 2, .pad_w = 0};
  EXPECT_THROW(big_pad.infer_output(), std::invalid_argument);
}

TEST(CpuKernels, MaxPoolForwardMatchesNaive) {
  Context ctx(kThreads);
  uint32_t seed = 400;
  for (const Pool2dShape& s : pool_cases()) {
    const Vec x = random_vec(pool_x_size(s), seed++);
    Vec y(pool_y_size(s), NAN);
    std::vector<uint8_t> idx(pool_y_size(s), 255);
    Scratch scratch(max_pool2d_fwd_scratch_bytes(ctx, s));
    max_pool2d_fwd(ctx, s, x.data(), y.data(), idx.data(), scratch.get());
    const PoolRef ref = ref_max_pool(s, to_d(x));
    expect_close(y, ref.y, describe(s), 0, 0);  // a max is exact
    EXPECT_EQ(idx, ref.idx) << describe(s) << ": idx is the position inside the window";
  }
}

TEST(CpuKernels, MaxPoolBackwardMatchesNaive) {
  Context ctx(kThreads);
  uint32_t seed = 500;
  for (const Pool2dShape& s : pool_cases()) {
    const Vec x = random_vec(pool_x_size(s), seed++), dy = random_vec(pool_y_size(s), seed++);
    Vec y(pool_y_size(s)), dx(pool_x_size(s), NAN);
    std::vector<uint8_t> idx(pool_y_size(s));
    Scratch s1(max_pool2d_fwd_scratch_bytes(ctx, s));
    max_pool2d_fwd(ctx, s, x.data(), y.data(), idx.data(), s1.get());
    Scratch s2(max_pool2d_bwd_scratch_bytes(ctx, s));
    max_pool2d_bwd(ctx, s, dy.data(), idx.data(), dx.data(), s2.get());
    const PoolRef ref = ref_max_pool(s, to_d(x));
    expect_close(dx, ref_max_pool_bwd(s, to_d(dy), ref.idx), describe(s));
    // The loss is piecewise linear: with a step far below the gaps between the random
    // values no window changes its maximum, and the differences are exact.
    const DVec dyd = to_d(dy);
    expect_grad_matches_fd([&](const DVec& v) { return dot(dyd, ref_max_pool(s, v).y); }, to_d(x),
                           dx, describe(s) + " dx", 1e-6);
  }
}

TEST(CpuKernels, AvgPoolForwardMatchesNaive) {
  Context ctx(kThreads);
  uint32_t seed = 600;
  for (Pool2dShape s : pool_cases())
    for (bool include : {true, false}) {
      s.count_include_pad = include;
      const Vec x = random_vec(pool_x_size(s), seed++);
      Vec y(pool_y_size(s), NAN);
      Scratch scratch(avg_pool2d_fwd_scratch_bytes(ctx, s));
      avg_pool2d_fwd(ctx, s, x.data(), y.data(), scratch.get());
      expect_close(y, ref_avg_pool(s, to_d(x)), describe(s));
    }
}

TEST(CpuKernels, AvgPoolBackwardMatchesNaiveAndFiniteDifferences) {
  Context ctx(kThreads);
  uint32_t seed = 700;
  for (Pool2dShape s : pool_cases())
    for (bool include : {true, false}) {
      s.count_include_pad = include;
      const Vec x = random_vec(pool_x_size(s), seed++), dy = random_vec(pool_y_size(s), seed++);
      Vec dx(pool_x_size(s), NAN);
      Scratch scratch(avg_pool2d_bwd_scratch_bytes(ctx, s));
      avg_pool2d_bwd(ctx, s, dy.data(), dx.data(), scratch.get());
      const DVec dyd = to_d(dy);
      expect_close(dx, ref_avg_pool_bwd(s, dyd), describe(s));
      expect_grad_matches_fd([&](const DVec& v) { return dot(dyd, ref_avg_pool(s, v)); }, to_d(x),
                             dx, describe(s) + " dx");
    }
}

TEST(CpuKernels, MaxPoolRejectsWindowsOver256) {
  Context ctx(kThreads);
  Pool2dShape s{.h = 20, .w = 20, .kh = 17, .kw = 16};
  s.infer_output();
  EXPECT_THROW(max_pool2d_fwd_scratch_bytes(ctx, s), std::invalid_argument);
}

// ------------------------------------------------------------------ batch norm

struct BnRef {
  DVec y, mean, var;
};

// Training (batch statistics, biased variance) when mean/var are not given.
BnRef ref_bn_fwd(int64_t n, int64_t c, int64_t hw, double eps, const DVec& x, const DVec& gamma,
                 const DVec& beta, const DVec* mean = nullptr, const DVec* var = nullptr) {
  BnRef r{DVec(x.size()), DVec(c, 0.0), DVec(c, 0.0)};
  const double count = static_cast<double>(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    double m = 0, v = 0;
    if (mean) {
      m = (*mean)[ch], v = (*var)[ch];
    } else {
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) m += x[(i * c + ch) * hw + j];
      m /= count;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) v += std::pow(x[(i * c + ch) * hw + j] - m, 2);
      v /= count;
    }
    r.mean[ch] = m, r.var[ch] = v;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < hw; ++j) {
        const int64_t k = (i * c + ch) * hw + j;
        r.y[k] = gamma[ch] * (x[k] - m) / std::sqrt(v + eps) + beta[ch];
      }
  }
  return r;
}

struct NormGrads {
  DVec dx, dgamma, dbeta;
};

// The gradient of training-mode batch norm: with xhat = (x - mean) * rstd,
// dx = gamma * rstd / N * (N * dy - sum(dy) - xhat * sum(dy * xhat)).
NormGrads ref_bn_bwd(int64_t n, int64_t c, int64_t hw, double eps, const DVec& x, const DVec& dy,
                     const DVec& gamma) {
  const BnRef f = ref_bn_fwd(n, c, hw, eps, x, gamma, DVec(c, 0.0));
  NormGrads g{DVec(x.size()), DVec(c, 0.0), DVec(c, 0.0)};
  const double count = static_cast<double>(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double rstd = 1 / std::sqrt(f.var[ch] + eps);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < hw; ++j) {
        const int64_t k = (i * c + ch) * hw + j;
        g.dbeta[ch] += dy[k];
        g.dgamma[ch] += dy[k] * (x[k] - f.mean[ch]) * rstd;
      }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < hw; ++j) {
        const int64_t k = (i * c + ch) * hw + j;
        const double xhat = (x[k] - f.mean[ch]) * rstd;
        g.dx[k] = gamma[ch] * rstd / count * (count * dy[k] - g.dbeta[ch] - xhat * g.dgamma[ch]);
      }
  }
  return g;
}

TEST(CpuKernels, BatchNormTrainingForwardMatchesNaive) {
  Context ctx(kThreads);
  const int64_t n = 3, c = 4, hw = 5;
  const float eps = 1e-5f;
  const Vec x = random_vec(n * c * hw, 800, -2.f, 3.f), gamma = random_vec(c, 801, 0.5f, 1.5f),
            beta = random_vec(c, 802);
  Vec y(x.size(), NAN), mean(c, NAN), var(c, NAN);
  Scratch scratch(batch_norm_fwd_scratch_bytes(ctx, n, c, hw, true));
  batch_norm_fwd_training(ctx, n, c, hw, eps, x.data(), gamma.data(), beta.data(), y.data(),
                          mean.data(), var.data(), scratch.get());
  const BnRef ref = ref_bn_fwd(n, c, hw, eps, to_d(x), to_d(gamma), to_d(beta));
  expect_close(y, ref.y, "bn y");
  expect_close(mean, ref.mean, "bn mean");
  expect_close(var, ref.var, "bn biased var");
}

TEST(CpuKernels, BatchNormInferenceMatchesNaive) {
  Context ctx(kThreads);
  const int64_t n = 2, c = 3, hw = 7;
  const float eps = 1e-3f;
  const Vec x = random_vec(n * c * hw, 810), gamma = random_vec(c, 811, 0.5f, 1.5f),
            beta = random_vec(c, 812), mean = random_vec(c, 813),
            var = random_vec(c, 814, 0.1f, 2.f);
  Vec y(x.size(), NAN);
  Scratch scratch(batch_norm_fwd_scratch_bytes(ctx, n, c, hw, false));
  batch_norm_fwd_inference(ctx, n, c, hw, eps, x.data(), gamma.data(), beta.data(), mean.data(),
                           var.data(), y.data(), scratch.get());
  const DVec md = to_d(mean), vd = to_d(var);
  expect_close(y, ref_bn_fwd(n, c, hw, eps, to_d(x), to_d(gamma), to_d(beta), &md, &vd).y,
               "bn inference y");
}

TEST(CpuKernels, BatchNormBackwardMatchesNaiveAndFiniteDifferences) {
  Context ctx(kThreads);
  const int64_t n = 3, c = 4, hw = 5;
  const float eps = 1e-5f;
  const Vec x = random_vec(n * c * hw, 820, -2.f, 3.f), gamma = random_vec(c, 821, 0.5f, 1.5f),
            beta = random_vec(c, 822), dy = random_vec(n * c * hw, 823);
  Vec y(x.size()), mean(c), var(c), dx(x.size(), NAN), dgamma(c, NAN), dbeta(c, NAN);
  Scratch s1(batch_norm_fwd_scratch_bytes(ctx, n, c, hw, true));
  batch_norm_fwd_training(ctx, n, c, hw, eps, x.data(), gamma.data(), beta.data(), y.data(),
                          mean.data(), var.data(), s1.get());
  Scratch s2(batch_norm_bwd_scratch_bytes(ctx, n, c, hw));
  batch_norm_bwd(ctx, n, c, hw, eps, x.data(), dy.data(), gamma.data(), mean.data(), var.data(),
                 dx.data(), dgamma.data(), dbeta.data(), s2.get());
  const DVec xd = to_d(x), gd = to_d(gamma), bd = to_d(beta), dyd = to_d(dy);
  const NormGrads ref = ref_bn_bwd(n, c, hw, eps, xd, dyd, gd);
  expect_close(dx, ref.dx, "bn dx");
  expect_close(dgamma, ref.dgamma, "bn dgamma");
  expect_close(dbeta, ref.dbeta, "bn dbeta");
  auto loss = [&](const DVec& xv, const DVec& gv, const DVec& bv) {
    return dot(dyd, ref_bn_fwd(n, c, hw, eps, xv, gv, bv).y);
  };
  expect_grad_matches_fd([&](const DVec& v) { return loss(v, gd, bd); }, xd, dx, "bn dx");
  expect_grad_matches_fd([&](const DVec& v) { return loss(xd, v, bd); }, gd, dgamma, "bn dgamma");
  expect_grad_matches_fd([&](const DVec& v) { return loss(xd, gd, v); }, bd, dbeta, "bn dbeta");
}

TEST(CpuKernels, BatchNormRunningStatsFollowPyTorch) {
  Context ctx(kThreads);
  const int64_t c = 5, count = 12;
  const float momentum = 0.1f;
  const Vec mean = random_vec(c, 830), var = random_vec(c, 831, 0.1f, 2.f);
  Vec rm = random_vec(c, 832), rv = random_vec(c, 833, 0.5f, 1.5f);
  DVec want_m(c), want_v(c);
  for (int64_t i = 0; i < c; ++i) {
    want_m[i] = (1 - momentum) * double(rm[i]) + momentum * double(mean[i]);
    want_v[i] = (1 - momentum) * double(rv[i]) + momentum * double(var[i]) * count / (count - 1);
  }
  batch_norm_update_running(ctx, c, count, momentum, mean.data(), var.data(), rm.data(), rv.data());
  expect_close(rm, want_m, "running mean", 1e-6, 1e-7);  // a few f32 roundings
  expect_close(rv, want_v, "running var (unbiased)", 1e-6, 1e-7);
  EXPECT_THROW(
      batch_norm_update_running(ctx, c, 1, momentum, mean.data(), var.data(), rm.data(), rv.data()),
      std::invalid_argument);
}

// Batch norm's outputs, forward (training and inference) and backward, from one set
// of inputs: dlmem's kernels or, with `onednn`, oneDNN's primitive they replaced.
struct BnRun {
  Vec y, mean, var, y_inf, dx, dgamma, dbeta;
};

BnRun run_bn(Context& ctx, bool onednn, int64_t n, int64_t c, int64_t hw, float eps,
             const Vec& x, const Vec& gamma, const Vec& beta, const Vec& dy, const Vec& rmean,
             const Vec& rvar) {
  BnRun r{Vec(x.size(), NAN), Vec(c, NAN), Vec(c, NAN), Vec(x.size(), NAN),
          Vec(x.size(), NAN), Vec(c, NAN), Vec(c, NAN)};
  if (onednn) {
    Scratch s1(batch_norm_fwd_onednn_scratch_bytes(ctx, n, c, hw, true));
    batch_norm_fwd_training_onednn(ctx, n, c, hw, eps, x.data(), gamma.data(), beta.data(),
                                   r.y.data(), r.mean.data(), r.var.data(), s1.get());
    Scratch s2(batch_norm_fwd_onednn_scratch_bytes(ctx, n, c, hw, false));
    batch_norm_fwd_inference_onednn(ctx, n, c, hw, eps, x.data(), gamma.data(), beta.data(),
                                    rmean.data(), rvar.data(), r.y_inf.data(), s2.get());
    Scratch s3(batch_norm_bwd_onednn_scratch_bytes(ctx, n, c, hw));
    batch_norm_bwd_onednn(ctx, n, c, hw, eps, x.data(), dy.data(), gamma.data(), r.mean.data(),
                          r.var.data(), r.dx.data(), r.dgamma.data(), r.dbeta.data(), s3.get());
  } else {
    EXPECT_EQ(batch_norm_fwd_scratch_bytes(ctx, n, c, hw, true), 0u);
    EXPECT_EQ(batch_norm_fwd_scratch_bytes(ctx, n, c, hw, false), 0u);
    EXPECT_EQ(batch_norm_bwd_scratch_bytes(ctx, n, c, hw), 0u);
    batch_norm_fwd_training(ctx, n, c, hw, eps, x.data(), gamma.data(), beta.data(), r.y.data(),
                            r.mean.data(), r.var.data(), nullptr);
    batch_norm_fwd_inference(ctx, n, c, hw, eps, x.data(), gamma.data(), beta.data(),
                             rmean.data(), rvar.data(), r.y_inf.data(), nullptr);
    batch_norm_bwd(ctx, n, c, hw, eps, x.data(), dy.data(), gamma.data(), r.mean.data(),
                   r.var.data(), r.dx.data(), r.dgamma.data(), r.dbeta.data(), nullptr);
  }
  return r;
}

// dlmem's batch norm (kernels/batch_norm.cpp) against the oneDNN primitive it replaced,
// on shapes with odd and tiny H*W (runs shorter than the 8 accumulator lanes, and
// not a multiple of them), N = 1, [N, C] (hw = 1) and a ResNet-like shape big enough
// to run in parallel. Both compute in f32 from the same inputs; they differ only in
// how the sums are ordered and accumulated (oneDNN in f32, dlmem in double), so with
// at most a few thousand O(1) terms per channel 1e-5 relative (plus 1e-5 absolute
// for the values that cancel towards 0) holds, while any formula difference (biased
// vs unbiased variance, epsilon inside vs outside the root, a missing term of dx)
// is off by 1e-4 or far more.
TEST(CpuKernels, BatchNormMatchesOneDnnPrimitive) {
  Context ctx(kThreads);
  struct Case {
    int64_t n, c, hw;
    float eps;
  };
  const Case cases[] = {{2, 3, 7 * 7, 1e-5f}, {1, 5, 13 * 11, 1e-5f}, {4, 6, 3, 1e-3f},
                        {3, 4, 1, 1e-5f},      {64, 10, 1, 1e-5f},   {1, 2, 2, 1e-5f},
                        {5, 8, 9, 1e-1f},      {8, 16, 28 * 28, 1e-5f}};
  uint32_t seed = 3000;
  for (const Case& k : cases) {
    const int64_t size = k.n * k.c * k.hw;
    const std::string what = "n=" + std::to_string(k.n) + " c=" + std::to_string(k.c) +
                             " hw=" + std::to_string(k.hw) + " ";
    const Vec x = random_vec(size, seed++, -2.f, 3.f), dy = random_vec(size, seed++),
              gamma = random_vec(k.c, seed++, 0.5f, 1.5f), beta = random_vec(k.c, seed++),
              rmean = random_vec(k.c, seed++), rvar = random_vec(k.c, seed++, 0.1f, 2.f);
    const BnRun own = run_bn(ctx, false, k.n, k.c, k.hw, k.eps, x, gamma, beta, dy, rmean, rvar);
    const BnRun ref = run_bn(ctx, true, k.n, k.c, k.hw, k.eps, x, gamma, beta, dy, rmean, rvar);
    constexpr double rtol = 1e-5, atol = 1e-5;
    expect_close(own.y, to_d(ref.y), what + "y", rtol, atol);
    expect_close(own.mean, to_d(ref.mean), what + "mean", rtol, atol);
    expect_close(own.var, to_d(ref.var), what + "var", rtol, atol);
    expect_close(own.y_inf, to_d(ref.y_inf), what + "inference y", rtol, atol);
    expect_close(own.dx, to_d(ref.dx), what + "dx", rtol, atol);
    expect_close(own.dgamma, to_d(ref.dgamma), what + "dgamma", rtol, atol);
    expect_close(own.dbeta, to_d(ref.dbeta), what + "dbeta", rtol, atol);
  }
}

// The variance is a second pass over deviations summed in double, so a channel whose
// mean is 1000 standard deviations from 0 keeps its variance to f32 accuracy (a
// one-pass E[x^2] - E[x]^2 in f32 would lose it entirely).
TEST(CpuKernels, BatchNormVarianceIsAccurateFarFromZero) {
  Context ctx(kThreads);
  const int64_t n = 4, c = 3, hw = 250;
  Vec x = random_vec(n * c * hw, 3100);
  for (float& e : x) e = 1000.f + 0.5f * e;
  const Vec gamma = random_vec(c, 3101, 0.5f, 1.5f), beta = random_vec(c, 3102);
  Vec y(x.size(), NAN), mean(c, NAN), var(c, NAN);
  batch_norm_fwd_training(ctx, n, c, hw, 1e-5f, x.data(), gamma.data(), beta.data(), y.data(),
                          mean.data(), var.data(), nullptr);
  const BnRef ref = ref_bn_fwd(n, c, hw, 1e-5, to_d(x), to_d(gamma), to_d(beta));
  expect_close(var, ref.var, "var far from zero", 1e-5, 0.0);
  expect_close(mean, ref.mean, "mean far from zero", 1e-7, 0.0);
  // x - mean is exact in f32 here (Sterbenz), so y keeps f32 accuracy as well; the
  // absolute term allows for the f32-rounded mean.
  expect_close(y, ref.y, "y far from zero", 1e-5, 1e-3);
}

// Every channel is reduced by one thread in a fixed order: the same bits with 1, 2 and
// 3 threads, on a shape above the kernels' parallel threshold with a channel count
// that the threads split unevenly.
TEST(CpuKernels, BatchNormIsIdenticalForAnyThreadCount) {
  const int64_t n = 4, c = 7, hw = 33 * 33;
  const float eps = 1e-5f;
  const Vec x = random_vec(n * c * hw, 3200, -2.f, 3.f), dy = random_vec(n * c * hw, 3201),
            gamma = random_vec(c, 3202, 0.5f, 1.5f), beta = random_vec(c, 3203),
            rmean = random_vec(c, 3204), rvar = random_vec(c, 3205, 0.1f, 2.f);
  Context one(1);
  const BnRun base = run_bn(one, false, n, c, hw, eps, x, gamma, beta, dy, rmean, rvar);
  for (int threads : {2, 3}) {
    Context ctx(threads);
    const BnRun r = run_bn(ctx, false, n, c, hw, eps, x, gamma, beta, dy, rmean, rvar);
    const std::string t = " (" + std::to_string(threads) + " threads vs 1)";
    expect_bitwise_equal(r.y, base.y, "bn y" + t);
    expect_bitwise_equal(r.mean, base.mean, "bn mean" + t);
    expect_bitwise_equal(r.var, base.var, "bn var" + t);
    expect_bitwise_equal(r.y_inf, base.y_inf, "bn inference y" + t);
    expect_bitwise_equal(r.dx, base.dx, "bn dx" + t);
    expect_bitwise_equal(r.dgamma, base.dgamma, "bn dgamma" + t);
    expect_bitwise_equal(r.dbeta, base.dbeta, "bn dbeta" + t);
  }
}

// ------------------------------------------------------------------ layer norm

BnRef ref_ln_fwd(int64_t rows, int64_t cols, double eps, const DVec& x, const DVec& gamma,
                 const DVec& beta) {
  BnRef r{DVec(x.size()), DVec(rows, 0.0), DVec(rows, 0.0)};
  for (int64_t i = 0; i < rows; ++i) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < cols; ++j) m += x[i * cols + j];
    m /= cols;
    for (int64_t j = 0; j < cols; ++j) v += std::pow(x[i * cols + j] - m, 2);
    v /= cols;
    r.mean[i] = m, r.var[i] = v;
    for (int64_t j = 0; j < cols; ++j)
      r.y[i * cols + j] = gamma[j] * (x[i * cols + j] - m) / std::sqrt(v + eps) + beta[j];
  }
  return r;
}

// With xhat = (x - mean) * rstd and g = dy * gamma per row:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
NormGrads ref_ln_bwd(int64_t rows, int64_t cols, double eps, const DVec& x, const DVec& dy,
                     const DVec& gamma) {
  const BnRef f = ref_ln_fwd(rows, cols, eps, x, gamma, DVec(cols, 0.0));
  NormGrads g{DVec(x.size()), DVec(cols, 0.0), DVec(cols, 0.0)};
  for (int64_t i = 0; i < rows; ++i) {
    const double rstd = 1 / std::sqrt(f.var[i] + eps);
    double mg = 0, mgx = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t k = i * cols + j;
      const double xhat = (x[k] - f.mean[i]) * rstd;
      g.dbeta[j] += dy[k];
      g.dgamma[j] += dy[k] * xhat;
      mg += dy[k] * gamma[j] / cols;
      mgx += dy[k] * gamma[j] * xhat / cols;
    }
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t k = i * cols + j;
      const double xhat = (x[k] - f.mean[i]) * rstd;
      g.dx[k] = rstd * (dy[k] * gamma[j] - mg - xhat * mgx);
    }
  }
  return g;
}

TEST(CpuKernels, LayerNormForwardMatchesNaive) {
  Context ctx(kThreads);
  const int64_t rows = 6, cols = 10;
  const float eps = 1e-5f;
  const Vec x = random_vec(rows * cols, 900, -2.f, 3.f), gamma = random_vec(cols, 901, 0.5f, 1.5f),
            beta = random_vec(cols, 902);
  Vec y(x.size(), NAN), mean(rows, NAN), var(rows, NAN);
  Scratch scratch(layer_norm_fwd_scratch_bytes(ctx, rows, cols));
  layer_norm_fwd(ctx, rows, cols, eps, x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                 var.data(), scratch.get());
  const BnRef ref = ref_ln_fwd(rows, cols, eps, to_d(x), to_d(gamma), to_d(beta));
  expect_close(y, ref.y, "ln y");
  expect_close(mean, ref.mean, "ln mean");
  expect_close(var, ref.var, "ln var");
}

TEST(CpuKernels, LayerNormBackwardMatchesNaiveAndFiniteDifferences) {
  Context ctx(kThreads);
  const int64_t rows = 6, cols = 10;
  const float eps = 1e-5f;
  const Vec x = random_vec(rows * cols, 910, -2.f, 3.f), gamma = random_vec(cols, 911, 0.5f, 1.5f),
            beta = random_vec(cols, 912), dy = random_vec(rows * cols, 913);
  Vec y(x.size()), mean(rows), var(rows), dx(x.size(), NAN), dgamma(cols, NAN), dbeta(cols, NAN);
  Scratch s1(layer_norm_fwd_scratch_bytes(ctx, rows, cols));
  layer_norm_fwd(ctx, rows, cols, eps, x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                 var.data(), s1.get());
  Scratch s2(layer_norm_bwd_scratch_bytes(ctx, rows, cols));
  layer_norm_bwd(ctx, rows, cols, eps, x.data(), dy.data(), gamma.data(), mean.data(), var.data(),
                 dx.data(), dgamma.data(), dbeta.data(), s2.get());
  const DVec xd = to_d(x), gd = to_d(gamma), bd = to_d(beta), dyd = to_d(dy);
  const NormGrads ref = ref_ln_bwd(rows, cols, eps, xd, dyd, gd);
  expect_close(dx, ref.dx, "ln dx");
  expect_close(dgamma, ref.dgamma, "ln dgamma");
  expect_close(dbeta, ref.dbeta, "ln dbeta");
  auto loss = [&](const DVec& xv, const DVec& gv, const DVec& bv) {
    return dot(dyd, ref_ln_fwd(rows, cols, eps, xv, gv, bv).y);
  };
  expect_grad_matches_fd([&](const DVec& v) { return loss(v, gd, bd); }, xd, dx, "ln dx");
  expect_grad_matches_fd([&](const DVec& v) { return loss(xd, v, bd); }, gd, dgamma, "ln dgamma");
  expect_grad_matches_fd([&](const DVec& v) { return loss(xd, gd, v); }, bd, dbeta, "ln dbeta");
}

// ------------------------------------------------------------------ eltwise

double ref_eltwise(Eltwise e, double x) {
  switch (e) {
    case Eltwise::relu:
      return std::max(x, 0.0);
    case Eltwise::relu6:
      return std::clamp(x, 0.0, 6.0);
    case Eltwise::gelu:
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Eltwise::tanh:
      return std::tanh(x);
    case Eltwise::sigmoid:
      return 1 / (1 + std::exp(-x));
  }
  return NAN;
}

// The derivative from what the backward reads: y for all but gelu, x for gelu.
double ref_eltwise_grad(Eltwise e, double saved) {
  switch (e) {
    case Eltwise::relu:
      return saved > 0 ? 1 : 0;
    case Eltwise::relu6:
      return saved > 0 && saved < 6 ? 1 : 0;
    case Eltwise::gelu:
      return 0.5 * (1 + std::erf(saved / std::sqrt(2.0))) +
             saved * std::exp(-saved * saved / 2) / std::sqrt(2 * std::numbers::pi);
    case Eltwise::tanh:
      return 1 - saved * saved;
    case Eltwise::sigmoid:
      return saved * (1 - saved);
  }
  return NAN;
}

const Eltwise kAllEltwise[] = {Eltwise::relu, Eltwise::relu6, Eltwise::gelu, Eltwise::tanh,
                               Eltwise::sigmoid};

std::string name(Eltwise e) {
  const char* names[] = {"relu", "relu6", "gelu", "tanh", "sigmoid"};
  return names[static_cast<int>(e)];
}

// Inputs spanning both kinks of relu6, none closer than 1e-2 to a kink (so that the
// finite differences never straddle one).
Vec eltwise_input(size_t n, uint32_t seed) {
  Vec x = random_vec(n, seed, -4.f, 8.f);
  for (float& v : x)
    if (std::fabs(v) < 1e-2f || std::fabs(v - 6.f) < 1e-2f) v += 0.05f;
  return x;
}

TEST(CpuKernels, EltwiseForwardMatchesNaiveIncludingInPlace) {
  Context ctx(kThreads);
  EXPECT_TRUE(eltwise_bwd_uses_output(Eltwise::relu));
  EXPECT_TRUE(eltwise_bwd_uses_output(Eltwise::relu6));
  EXPECT_TRUE(eltwise_bwd_uses_output(Eltwise::tanh));
  EXPECT_TRUE(eltwise_bwd_uses_output(Eltwise::sigmoid));
  EXPECT_FALSE(eltwise_bwd_uses_output(Eltwise::gelu));
  uint32_t seed = 1000;
  for (Eltwise e : kAllEltwise) {
    const Vec x = eltwise_input(1003, seed++);
    DVec want(x.size());
    for (size_t i = 0; i < x.size(); ++i) want[i] = ref_eltwise(e, x[i]);
    Vec y(x.size(), NAN);
    eltwise_fwd(ctx, e, static_cast<int64_t>(x.size()), x.data(), y.data());
    // oneDNN's vectorised exp/tanh/erf are polynomial approximations accurate to a
    // few ulp; kAtol/kRtol leave ample room.
    expect_close(y, want, name(e));
    Vec inplace = x;
    eltwise_fwd(ctx, e, static_cast<int64_t>(x.size()), inplace.data(), inplace.data());
    expect_bitwise_equal(inplace, y, name(e) + " in place");
  }
}

TEST(CpuKernels, EltwiseBackwardMatchesNaiveAndFiniteDifferences) {
  Context ctx(kThreads);
  uint32_t seed = 1100;
  for (Eltwise e : kAllEltwise) {
    const int64_t n = 517;
    const Vec x = eltwise_input(n, seed++), dy = random_vec(n, seed++);
    Vec y(n);
    eltwise_fwd(ctx, e, n, x.data(), y.data());
    const Vec& saved = eltwise_bwd_uses_output(e) ? y : x;
    Vec dx(n, NAN);
    eltwise_bwd(ctx, e, n, dy.data(), saved.data(), dx.data());
    DVec want(n);
    for (int64_t i = 0; i < n; ++i) want[i] = dy[i] * ref_eltwise_grad(e, saved[i]);
    expect_close(dx, want, name(e) + " dx");
    Vec inplace = dy;
    eltwise_bwd(ctx, e, n, inplace.data(), saved.data(), inplace.data());
    expect_bitwise_equal(inplace, dx, name(e) + " dx in place");
    const DVec dyd = to_d(dy);
    expect_grad_matches_fd(
        [&](const DVec& v) {
          double s = 0;
          for (int64_t i = 0; i < n; ++i) s += dyd[i] * ref_eltwise(e, v[i]);
          return s;
        },
        to_d(x), dx, name(e) + " dx", 1e-4, 100);
  }
}

TEST(CpuKernels, ScaleFillAccumulateCopyMatchNaive) {
  Context ctx(kThreads);
  const int64_t n = 100003;  // above the own loops' parallel threshold
  const Vec x = random_vec(n, 1200), y0 = random_vec(n, 1201);
  Vec y(n);
  scale(ctx, n, -0.37f, x.data(), y.data());
  DVec want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = -0.37f * x[i];
  expect_close(y, want, "scale", 1e-7, 0);  // one f32 rounding
  Vec inplace = x;
  scale(ctx, n, -0.37f, inplace.data(), inplace.data());
  expect_bitwise_equal(inplace, y, "scale in place");

  fill(ctx, n, 2.5f, y.data());
  EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return v == 2.5f; }));

  y = y0;
  accumulate(ctx, n, x.data(), y.data());
  for (int64_t i = 0; i < n; ++i) want[i] = static_cast<double>(y0[i]) + x[i];
  expect_close(y, want, "accumulate", 1e-7, 1e-7);

  Vec z(n, NAN);
  copy(ctx, n * sizeof(float), x.data(), z.data());
  expect_bitwise_equal(z, x, "copy");
}

// ------------------------------------------------------------------ binary, reduction

TEST(CpuKernels, BinaryBroadcastMatchesNaive) {
  Context ctx(kThreads);
  std::mt19937 gen(1300);
  for (int trial = 0; trial < 40; ++trial) {
    const int rank = 1 + static_cast<int>(gen() % 4);
    Dims ad(rank), bd(rank);
    for (int i = 0; i < rank; ++i) {
      ad[i] = 1 + gen() % 4;
      bd[i] = gen() % 2 ? ad[i] : 1;
    }
    const Vec a = random_vec(numel(ad), gen()), b = random_vec(numel(bd), gen());
    const Dims bs = strides_of(bd);
    for (Binary op : {Binary::add, Binary::mul}) {
      DVec want(a.size());
      for (int64_t i = 0; i < numel(ad); ++i) {
        const Dims idx = unravel(i, ad);
        int64_t j = 0;
        for (int d = 0; d < rank; ++d) j += (bd[d] == 1 ? 0 : idx[d]) * bs[d];
        want[i] = op == Binary::add ? double(a[i]) + b[j] : double(a[i]) * b[j];
      }
      Vec y(a.size(), NAN);
      binary(ctx, op, rank, ad.data(), bd.data(), a.data(), b.data(), y.data());
      const std::string what =
          std::string(op == Binary::add ? "add" : "mul") + " trial " + std::to_string(trial);
      expect_close(y, want, what, 1e-7, 1e-7);  // one f32 rounding
      Vec inplace = a;
      binary(ctx, op, rank, ad.data(), bd.data(), inplace.data(), b.data(), inplace.data());
      expect_bitwise_equal(inplace, y, what + " in place");
    }
  }
}

TEST(CpuKernels, ReduceSumMatchesNaive) {
  Context ctx(kThreads);
  std::mt19937 gen(1400);
  for (int trial = 0; trial < 40; ++trial) {
    const int rank = 1 + static_cast<int>(gen() % 4);
    Dims xd(rank), yd(rank);
    for (int i = 0; i < rank; ++i) {
      xd[i] = 1 + gen() % 5;
      yd[i] = gen() % 2 ? xd[i] : 1;
    }
    const Vec x = random_vec(numel(xd), gen());
    const Dims ys = strides_of(yd);
    DVec want(numel(yd), 0.0);
    for (int64_t i = 0; i < numel(xd); ++i) {
      const Dims idx = unravel(i, xd);
      int64_t j = 0;
      for (int d = 0; d < rank; ++d) j += (yd[d] == 1 ? 0 : idx[d]) * ys[d];
      want[j] += x[i];
    }
    Vec y(numel(yd), NAN);
    Scratch scratch(reduce_sum_scratch_bytes(ctx, rank, xd.data(), yd.data()));
    reduce_sum(ctx, rank, xd.data(), yd.data(), x.data(), y.data(), scratch.get());
    expect_close(y, want, "reduce_sum trial " + std::to_string(trial));
  }
}

TEST(CpuKernels, BiasGradMatchesNaive) {
  Context ctx(kThreads);
  for (auto [m, n] : {std::pair<int64_t, int64_t>{37, 150}, {300, 150}, {5, 3}}) {
    const Vec dy = random_vec(m * n, 1500 + static_cast<uint32_t>(m));
    DVec want(n, 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) want[j] += dy[i * n + j];
    Vec db(n, NAN);
    bias_grad(ctx, m, n, dy.data(), db.data());
    expect_close(db, want, "bias_grad " + std::to_string(m) + "x" + std::to_string(n), 1e-6,
                 1e-6);  // summed in double, rounded once
  }
}

// ------------------------------------------------------------------ softmax, causal mask

DVec ref_softmax(int64_t rows, int64_t cols, const DVec& x) {
  DVec y(x.size());
  for (int64_t i = 0; i < rows; ++i) {
    const double mx = *std::max_element(x.begin() + i * cols, x.begin() + (i + 1) * cols);
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(x[i * cols + j] - mx);
    for (int64_t j = 0; j < cols; ++j) y[i * cols + j] = std::exp(x[i * cols + j] - mx) / s;
  }
  return y;
}

TEST(CpuKernels, SoftmaxForwardMatchesNaiveAndIsStable) {
  Context ctx(kThreads);
  const int64_t rows = 5, cols = 7;
  Vec x = random_vec(rows * cols, 1600, -3.f, 3.f);
  for (int64_t j = 0; j < cols; ++j) x[cols + j] += 1000.f;  // exp would overflow unshifted
  Vec y(x.size(), NAN);
  softmax_fwd(ctx, rows, cols, x.data(), y.data());
  expect_close(y, ref_softmax(rows, cols, to_d(x)), "softmax", kRtol, 1e-6);
}

TEST(CpuKernels, SoftmaxBackwardMatchesNaiveAndFiniteDifferences) {
  Context ctx(kThreads);
  const int64_t rows = 5, cols = 7;
  const Vec x = random_vec(rows * cols, 1610, -3.f, 3.f), dy = random_vec(rows * cols, 1611);
  Vec y(x.size()), dx(x.size(), NAN);
  softmax_fwd(ctx, rows, cols, x.data(), y.data());
  softmax_bwd(ctx, rows, cols, dy.data(), y.data(), dx.data());
  // dx = y * (dy - sum_j dy_j y_j) per row
  const DVec yd = ref_softmax(rows, cols, to_d(x)), dyd = to_d(dy);
  DVec want(x.size());
  for (int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += dyd[i * cols + j] * yd[i * cols + j];
    for (int64_t j = 0; j < cols; ++j)
      want[i * cols + j] = yd[i * cols + j] * (dyd[i * cols + j] - s);
  }
  expect_close(dx, want, "softmax dx");
  expect_grad_matches_fd([&](const DVec& v) { return dot(dyd, ref_softmax(rows, cols, v)); },
                         to_d(x), dx, "softmax dx");
}

TEST(CpuKernels, CausalMaskMatchesNaive) {
  Context ctx(kThreads);
  const int64_t batch = 3, t = 5;
  const Vec x = random_vec(batch * t * t, 1700), dy = random_vec(batch * t * t, 1701);
  Vec y(x.size(), NAN), dx(x.size(), NAN);
  causal_mask_fwd(ctx, batch, t, x.data(), y.data());
  causal_mask_bwd(ctx, batch, t, dy.data(), dx.data());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < t; ++j) {
        const int64_t k = (b * t + i) * t + j;
        if (j > i) {
          EXPECT_EQ(y[k], -std::numeric_limits<float>::infinity()) << k;
          EXPECT_EQ(dx[k], 0.f) << k;
        } else {
          EXPECT_EQ(y[k], x[k]) << k;
          EXPECT_EQ(dx[k], dy[k]) << k;
        }
      }
  Vec inplace = x, dinplace = dy;
  causal_mask_fwd(ctx, batch, t, inplace.data(), inplace.data());
  causal_mask_bwd(ctx, batch, t, dinplace.data(), dinplace.data());
  expect_bitwise_equal(inplace, y, "mask in place");
  expect_bitwise_equal(dinplace, dx, "mask bwd in place");
}

// ------------------------------------------------------------------ matmul

TEST(CpuKernels, MatmulMatchesNaiveForAllTransposes) {
  Context ctx(kThreads);
  const int64_t batch = 3, m = 4, n = 5, k = 6;
  uint32_t seed = 1800;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool bias : {false, true})
        for (bool acc : {false, true}) {
          const Vec a = random_vec(batch * m * k, seed++), b = random_vec(batch * k * n, seed++),
                    bv = random_vec(n, seed++), c0 = random_vec(batch * m * n, seed++);
          DVec want(batch * m * n);
          for (int64_t p = 0; p < batch; ++p)
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j) {
                double s = bias ? bv[j] : 0.0;
                for (int64_t q = 0; q < k; ++q) {
                  const double av = ta ? a[p * m * k + q * m + i] : a[p * m * k + i * k + q];
                  const double bw = tb ? b[p * k * n + j * k + q] : b[p * k * n + q * n + j];
                  s += av * bw;
                }
                want[(p * m + i) * n + j] = s + (acc ? c0[(p * m + i) * n + j] : 0.0);
              }
          Vec c = acc ? c0 : Vec(batch * m * n, NAN);
          const std::string what = std::string("matmul") + (ta ? " A^T" : " A") +
                                   (tb ? " B^T" : " B") + (bias ? " +bias" : "") +
                                   (acc ? " accumulate" : "");
          if (acc) {
            Scratch scratch(matmul_scratch_bytes(ctx, batch, m, n, k, ta, tb, bias, true));
            matmul(ctx, batch, m, n, k, ta, tb, a.data(), b.data(), bias ? bv.data() : nullptr,
                   c.data(), scratch.get(), true);
          } else {
            Scratch scratch(matmul_scratch_bytes(ctx, batch, m, n, k, ta, tb, bias));
            matmul(ctx, batch, m, n, k, ta, tb, a.data(), b.data(), bias ? bv.data() : nullptr,
                   c.data(), scratch.get());
          }
          expect_close(c, want, what);
        }
}

// ------------------------------------------------------------------ data movement

TEST(CpuKernels, TransposeMatchesNaive) {
  Context ctx(kThreads);
  std::mt19937 gen(1900);
  for (int trial = 0; trial < 30; ++trial) {
    const int rank = 1 + static_cast<int>(gen() % 6);
    Dims xd(rank);
    for (auto& d : xd) d = 1 + gen() % 4;
    std::vector<int> perm(rank);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), gen);
    const Vec x = random_vec(numel(xd), gen());
    Dims yd(rank);
    for (int i = 0; i < rank; ++i) yd[i] = xd[perm[i]];
    const Dims xs = strides_of(xd);
    Vec want(x.size());
    for (int64_t i = 0; i < numel(yd); ++i) {
      const Dims idx = unravel(i, yd);
      int64_t j = 0;
      for (int d = 0; d < rank; ++d) j += idx[d] * xs[perm[d]];
      want[i] = x[j];
    }
    Vec y(x.size(), NAN);
    transpose(ctx, rank, xd.data(), perm.data(), x.data(), y.data());
    expect_bitwise_equal(y, want, "transpose trial " + std::to_string(trial));
  }
}

TEST(CpuKernels, ConcatMatchesNaive) {
  Context ctx(kThreads);
  std::mt19937 gen(2000);
  for (int trial = 0; trial < 30; ++trial) {
    const int rank = 1 + static_cast<int>(gen() % 4);
    const int axis = static_cast<int>(gen() % rank);
    const int count = 1 + static_cast<int>(gen() % 4);
    Dims base(rank);
    for (auto& d : base) d = 1 + gen() % 4;
    std::vector<Dims> dims(count, base);
    std::vector<Vec> ins;
    for (auto& d : dims) {
      d[axis] = 1 + gen() % 4;
      ins.push_back(random_vec(numel(d), gen()));
    }
    // Reference: walk the output; each position belongs to one input.
    Dims yd = base;
    yd[axis] = 0;
    for (auto& d : dims) yd[axis] += d[axis];
    Vec want(numel(yd));
    for (int64_t i = 0; i < numel(yd); ++i) {
      Dims idx = unravel(i, yd);
      int which = 0;
      while (idx[axis] >= dims[which][axis]) idx[axis] -= dims[which++][axis];
      const Dims s = strides_of(dims[which]);
      int64_t j = 0;
      for (int d = 0; d < rank; ++d) j += idx[d] * s[d];
      want[i] = ins[which][j];
    }
    std::vector<const int64_t*> dim_ptrs;
    std::vector<const float*> in_ptrs;
    for (int i = 0; i < count; ++i) {
      dim_ptrs.push_back(dims[i].data());
      in_ptrs.push_back(ins[i].data());
    }
    Vec y(want.size(), NAN);
    concat(ctx, rank, dim_ptrs.data(), count, axis, in_ptrs.data(), y.data());
    expect_bitwise_equal(y, want, "concat trial " + std::to_string(trial));
  }
}

TEST(CpuKernels, SliceAndSliceBackwardMatchNaive) {
  Context ctx(kThreads);
  std::mt19937 gen(2100);
  for (int trial = 0; trial < 30; ++trial) {
    const int rank = 1 + static_cast<int>(gen() % 4);
    const int axis = static_cast<int>(gen() % rank);
    Dims xd(rank);
    for (auto& d : xd) d = 1 + gen() % 5;
    const int64_t start = gen() % xd[axis];
    const int64_t len = 1 + gen() % (xd[axis] - start);
    Dims yd = xd;
    yd[axis] = len;
    const Vec x = random_vec(numel(xd), gen()), dy = random_vec(numel(yd), gen());
    const Dims xs = strides_of(xd);
    Vec want(numel(yd)), want_dx(numel(xd), 0.f);
    for (int64_t i = 0; i < numel(yd); ++i) {
      Dims idx = unravel(i, yd);
      idx[axis] += start;
      int64_t j = 0;
      for (int d = 0; d < rank; ++d) j += idx[d] * xs[d];
      want[i] = x[j];
      want_dx[j] = dy[i];
    }
    const std::string what = "trial " + std::to_string(trial);
    Vec y(want.size(), NAN), dx(x.size(), NAN);
    slice(ctx, rank, xd.data(), axis, start, len, x.data(), y.data());
    expect_bitwise_equal(y, want, "slice " + what);
    slice_bwd(ctx, rank, xd.data(), axis, start, len, dy.data(), dx.data());
    expect_bitwise_equal(dx, want_dx, "slice_bwd " + what);
  }
}

// ------------------------------------------------------------------ dropout

TEST(CpuKernels, DropoutMaskIsReplayableAndHasTheRightRate) {
  Context ctx(kThreads);
  const int64_t n = 200000;
  const float p = 0.3f;
  const Vec x = random_vec(n, 2200);
  Vec y(n), y2(n), y3(n);
  std::vector<uint8_t> mask(n, 7), mask2(n), mask3(n);
  dropout_fwd(ctx, n, p, /*seed=*/42, /*step=*/5, x.data(), y.data(), mask.data());
  // Kept fraction: binomial with sigma = sqrt(p (1 - p) / n) = 0.001; allow 5 sigma.
  const double kept = std::count(mask.begin(), mask.end(), 1) / double(n);
  EXPECT_NEAR(kept, 1 - p, 0.005);
  EXPECT_EQ(std::count(mask.begin(), mask.end(), 0) + std::count(mask.begin(), mask.end(), 1), n);
  const float s = 1.f / (1.f - p);
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(y[i], mask[i] ? x[i] * s : 0.f) << i;  // exactly x * (1 / (1 - p))

  // Same (seed, step): the same bits, also on another thread count (recomputation).
  Context one(1);
  dropout_fwd(one, n, p, 42, 5, x.data(), y2.data(), mask2.data());
  EXPECT_EQ(mask2, mask);
  expect_bitwise_equal(y2, y, "replayed dropout");
  // Another step or seed: a different mask, differing in about 2 p (1 - p) = 42%.
  dropout_fwd(ctx, n, p, 42, 6, x.data(), y3.data(), mask3.data());
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) differ += mask3[i] != mask[i];
  EXPECT_NEAR(differ / double(n), 2 * p * (1 - p), 0.01);
  dropout_fwd(ctx, n, p, 43, 5, x.data(), y3.data(), mask3.data());
  EXPECT_NE(mask3, mask);

  Vec dy = random_vec(n, 2201), dx(n, NAN);
  dropout_bwd(ctx, n, p, dy.data(), mask.data(), dx.data());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dx[i], mask[i] ? dy[i] * s : 0.f) << i;

  // p = 0 keeps everything unscaled; p = 1 drops everything.
  dropout_fwd(ctx, n, 0.f, 1, 1, x.data(), y.data(), mask.data());
  EXPECT_EQ(std::count(mask.begin(), mask.end(), 1), n);
  expect_bitwise_equal(y, x, "p = 0");
  dropout_fwd(ctx, n, 1.f, 1, 1, x.data(), y.data(), mask.data());
  EXPECT_EQ(std::count(mask.begin(), mask.end(), 0), n);
  EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.f; }));
  EXPECT_THROW(dropout_fwd(ctx, n, 1.5f, 1, 1, x.data(), y.data(), mask.data()),
               std::invalid_argument);
}

// ------------------------------------------------------------------ softmax cross-entropy

double ref_xent(int64_t rows, int64_t cols, const DVec& logits,
                const std::vector<int32_t>& labels) {
  double loss = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const double mx = *std::max_element(logits.begin() + i * cols, logits.begin() + (i + 1) * cols);
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(logits[i * cols + j] - mx);
    loss -= logits[i * cols + labels[i]] - mx - std::log(s);
  }
  return loss / rows;
}

TEST(CpuKernels, SoftmaxXentForwardMatchesNaive) {
  Context ctx(kThreads);
  const int64_t rows = 70, cols = 5;  // more rows than one chunk of the loss sum
  Vec logits = random_vec(rows * cols, 2300, -3.f, 3.f);
  for (int64_t j = 0; j < cols; ++j) logits[2 * cols + j] += 500.f;  // stability
  std::vector<int32_t> labels(rows);
  for (int64_t i = 0; i < rows; ++i) labels[i] = static_cast<int32_t>((i * 7) % cols);
  float loss = NAN;
  Vec probs(logits.size(), NAN);
  softmax_xent_fwd(ctx, rows, cols, logits.data(), labels.data(), &loss, probs.data());
  EXPECT_NEAR(loss, ref_xent(rows, cols, to_d(logits), labels),
              1e-5 * ref_xent(rows, cols, to_d(logits), labels));
  expect_close(probs, ref_softmax(rows, cols, to_d(logits)), "xent probs", kRtol, 1e-6);
  // The same bits on one thread (fixed chunking of the loss sum).
  Context one(1);
  float loss1 = NAN;
  Vec probs1(logits.size());
  softmax_xent_fwd(one, rows, cols, logits.data(), labels.data(), &loss1, probs1.data());
  EXPECT_EQ(std::memcmp(&loss, &loss1, sizeof(float)), 0);
  expect_bitwise_equal(probs1, probs, "xent probs on one thread");
}

TEST(CpuKernels, SoftmaxXentBackwardMatchesNaiveAndFiniteDifferences) {
  Context ctx(kThreads);
  const int64_t rows = 6, cols = 5;
  const Vec logits = random_vec(rows * cols, 2310, -3.f, 3.f);
  const std::vector<int32_t> labels = {0, 4, 2, 2, 1, 3};
  float loss = 0, dloss = 1.7f;
  Vec probs(logits.size()), dlogits(logits.size(), NAN);
  softmax_xent_fwd(ctx, rows, cols, logits.data(), labels.data(), &loss, probs.data());
  softmax_xent_bwd(ctx, rows, cols, &dloss, probs.data(), labels.data(), dlogits.data());
  const DVec p = ref_softmax(rows, cols, to_d(logits));
  DVec want(p.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      want[i * cols + j] = dloss * (p[i * cols + j] - (j == labels[i])) / rows;
  expect_close(dlogits, want, "xent dlogits");
  expect_grad_matches_fd([&](const DVec& v) { return dloss * ref_xent(rows, cols, v, labels); },
                         to_d(logits), dlogits, "xent dlogits");
}

TEST(CpuKernels, SoftmaxXentRejectsOutOfRangeLabels) {
  Context ctx(kThreads);
  const int64_t rows = 3, cols = 4;
  const Vec logits = random_vec(rows * cols, 2320);
  Vec probs(logits.size());
  float loss = 0, dloss = 1;
  for (int32_t bad : {4, -1}) {
    const std::vector<int32_t> labels = {0, bad, 3};
    try {
      softmax_xent_fwd(ctx, rows, cols, logits.data(), labels.data(), &loss, probs.data());
      ADD_FAILURE() << "label " << bad << " accepted";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("label " + std::to_string(bad)), std::string::npos) << what;
      EXPECT_NE(what.find("[0, 4)"), std::string::npos) << what;
    }
    EXPECT_THROW(
        softmax_xent_bwd(ctx, rows, cols, &dloss, probs.data(), labels.data(), probs.data()),
        std::invalid_argument);
  }
}

// ------------------------------------------------------------------ embedding

TEST(CpuKernels, EmbeddingMatchesNaiveWithRepeatedIds) {
  Context ctx(kThreads);
  const int64_t vocab = 9, dim = 40, count = 12;
  const std::vector<int32_t> ids = {3, 0, 3, 8, 3, 1, 0, 5, 5, 8, 2, 3};
  const Vec table = random_vec(vocab * dim, 2400), dy = random_vec(count * dim, 2401);
  Vec y(count * dim, NAN);
  embedding_fwd(ctx, count, vocab, dim, ids.data(), table.data(), y.data());
  for (int64_t i = 0; i < count; ++i)
    for (int64_t j = 0; j < dim; ++j) ASSERT_EQ(y[i * dim + j], table[ids[i] * dim + j]);
  // Backward: the same f32 additions in the same order (i ascending) as this loop,
  // so the result must be bit-identical to it.
  Vec want(vocab * dim, 0.f);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t j = 0; j < dim; ++j) want[ids[i] * dim + j] += dy[i * dim + j];
  Vec dtable(vocab * dim, NAN);
  embedding_bwd(ctx, count, vocab, dim, ids.data(), dy.data(), dtable.data());
  expect_bitwise_equal(dtable, want, "embedding dtable");

  const std::vector<int32_t> bad = {1, 9};
  try {
    embedding_fwd(ctx, 2, vocab, dim, bad.data(), table.data(), y.data());
    ADD_FAILURE() << "id 9 accepted";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("id 9"), std::string::npos) << what;
    EXPECT_NE(what.find("[0, 9)"), std::string::npos) << what;
  }
  EXPECT_THROW(embedding_bwd(ctx, 2, vocab, dim, bad.data(), dy.data(), dtable.data()),
               std::invalid_argument);
}

// ------------------------------------------------------------------ optimizers

TEST(CpuKernels, SgdMatchesPyTorchFormulas) {
  Context ctx(kThreads);
  const int64_t n = 1000;
  const float lr = 0.05f, momentum = 0.9f, wd = 1e-2f;
  Vec w = random_vec(n, 2500);
  Vec m(n, NAN);  // must not be read on the first step
  DVec rw = to_d(w), rm(n);
  for (int step = 1; step <= 4; ++step) {
    const Vec dw = random_vec(n, 2500 + step);
    sgd_update(ctx, n, lr, momentum, wd, step == 1, w.data(), dw.data(), m.data());
    for (int64_t i = 0; i < n; ++i) {
      const double g = dw[i] + double(wd) * rw[i];
      rm[i] = step == 1 ? g : double(momentum) * rm[i] + g;
      rw[i] -= double(lr) * rm[i];
    }
    // A handful of f32 roundings per step on O(1) values.
    expect_close(w, rw, "sgd w step " + std::to_string(step), 1e-5, 1e-6);
    expect_close(m, rm, "sgd momentum step " + std::to_string(step), 1e-5, 1e-6);
  }
  // Without momentum the buffer is not used at all.
  Vec w2 = random_vec(n, 2510);
  const Vec dw = random_vec(n, 2511);
  DVec want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = w2[i] - double(lr) * dw[i];
  sgd_update(ctx, n, lr, 0.f, 0.f, true, w2.data(), dw.data(), nullptr);
  expect_close(w2, want, "sgd without momentum", 1e-6, 1e-7);
}

TEST(CpuKernels, AdamMatchesPyTorchFormulas) {
  Context ctx(kThreads);
  const int64_t n = 1000;
  const float lr = 1e-2f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, wd = 1e-2f;
  Vec w = random_vec(n, 2600), m(n, 0.f), v(n, 0.f);
  DVec rw = to_d(w), rm(n, 0.0), rv(n, 0.0);
  for (int64_t step = 1; step <= 6; ++step) {
    const Vec dw = random_vec(n, 2600 + static_cast<uint32_t>(step));
    adam_update(ctx, n, lr, beta1, beta2, eps, wd, step, w.data(), dw.data(), m.data(), v.data());
    // torch.optim.Adam, in double.
    const double bc1 = 1 - std::pow(double(beta1), double(step));
    const double bc2 = 1 - std::pow(double(beta2), double(step));
    for (int64_t i = 0; i < n; ++i) {
      const double g = dw[i] + double(wd) * rw[i];
      rm[i] = beta1 * rm[i] + (1 - double(beta1)) * g;
      rv[i] = beta2 * rv[i] + (1 - double(beta2)) * g * g;
      const double denom = std::sqrt(rv[i]) / std::sqrt(bc2) + eps;
      rw[i] -= lr / bc1 * rm[i] / denom;
    }
    const std::string s = " step " + std::to_string(step);
    expect_close(w, rw, "adam w" + s, 1e-5, 1e-6);  // f32 roundings on O(1) values
    expect_close(m, rm, "adam m" + s, 1e-5, 1e-6);
    expect_close(v, rv, "adam v" + s, 1e-5, 1e-7);
  }
}

// ------------------------------------------------------------------ context, determinism

TEST(CpuKernels, ContextThreads) {
  Context two(2);
  EXPECT_EQ(two.threads(), 2);
  Context dflt;
  EXPECT_GE(dflt.threads(), 1);
  EXPECT_THROW(Context(-1), std::invalid_argument);
}

TEST(CpuKernels, BackwardKernelsAreDeterministic) {
  Context ctx(kThreads);
  // Batch norm and layer norm backward reduce over many elements per parameter.
  const int64_t n = 16, c = 8, hw = 64;
  const float eps = 1e-5f;
  const Vec x = random_vec(n * c * hw, 2700), dy = random_vec(n * c * hw, 2701),
            gamma = random_vec(c, 2702, 0.5f, 1.5f), beta = random_vec(c, 2703);
  Vec y(x.size()), mean(c), var(c);
  Scratch s1(batch_norm_fwd_scratch_bytes(ctx, n, c, hw, true));
  batch_norm_fwd_training(ctx, n, c, hw, eps, x.data(), gamma.data(), beta.data(), y.data(),
                          mean.data(), var.data(), s1.get());
  Scratch s2(batch_norm_bwd_scratch_bytes(ctx, n, c, hw));
  Vec dx1(x.size()), dg1(c), db1(c), dx2(x.size()), dg2(c), db2(c);
  batch_norm_bwd(ctx, n, c, hw, eps, x.data(), dy.data(), gamma.data(), mean.data(), var.data(),
                 dx1.data(), dg1.data(), db1.data(), s2.get());
  batch_norm_bwd(ctx, n, c, hw, eps, x.data(), dy.data(), gamma.data(), mean.data(), var.data(),
                 dx2.data(), dg2.data(), db2.data(), s2.get());
  expect_bitwise_equal(dx1, dx2, "bn dx");
  expect_bitwise_equal(dg1, dg2, "bn dgamma");
  expect_bitwise_equal(db1, db2, "bn dbeta");

  const int64_t rows = n * c, cols = hw;
  const Vec lg = random_vec(cols, 2704, 0.5f, 1.5f), lb = random_vec(cols, 2705);
  Vec lmean(rows), lvar(rows), ldx1(x.size()), ldx2(x.size()), lg1(cols), lg2(cols), lb1(cols),
      lb2(cols);
  Scratch s3(layer_norm_fwd_scratch_bytes(ctx, rows, cols));
  layer_norm_fwd(ctx, rows, cols, eps, x.data(), lg.data(), lb.data(), y.data(), lmean.data(),
                 lvar.data(), s3.get());
  Scratch s4(layer_norm_bwd_scratch_bytes(ctx, rows, cols));
  layer_norm_bwd(ctx, rows, cols, eps, x.data(), dy.data(), lg.data(), lmean.data(), lvar.data(),
                 ldx1.data(), lg1.data(), lb1.data(), s4.get());
  layer_norm_bwd(ctx, rows, cols, eps, x.data(), dy.data(), lg.data(), lmean.data(), lvar.data(),
                 ldx2.data(), lg2.data(), lb2.data(), s4.get());
  expect_bitwise_equal(ldx1, ldx2, "ln dx");
  expect_bitwise_equal(lg1, lg2, "ln dgamma");
  expect_bitwise_equal(lb1, lb2, "ln dbeta");

  // A weight gradient through matmul (A^T * dY) and its bias gradient.
  const int64_t m = 256, k = 64, nn = 48;
  const Vec a = random_vec(m * k, 2706), g = random_vec(m * nn, 2707);
  Vec w1(k * nn), w2(k * nn), bg1(nn), bg2(nn);
  Scratch s5(matmul_scratch_bytes(ctx, 1, k, nn, m, true, false, false));
  matmul(ctx, 1, k, nn, m, true, false, a.data(), g.data(), nullptr, w1.data(), s5.get());
  matmul(ctx, 1, k, nn, m, true, false, a.data(), g.data(), nullptr, w2.data(), s5.get());
  expect_bitwise_equal(w1, w2, "matmul dW");
  bias_grad(ctx, m, nn, g.data(), bg1.data());
  bias_grad(ctx, m, nn, g.data(), bg2.data());
  expect_bitwise_equal(bg1, bg2, "bias_grad");
}

}  // namespace
}  // namespace dlmem::cpu
