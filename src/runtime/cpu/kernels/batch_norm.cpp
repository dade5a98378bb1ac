// Batch normalisation on plain NCHW (and [N, C], hw = 1): dlmem's own loops, not
// oneDNN's primitive.
//
// Why by hand: dlmem's tensors are plain NCHW (kernels/common.h), and on that
// layout oneDNN 2.6 has only its generic batch norm (`ncsp_bnorm:any` in
// ONEDNN_VERBOSE; its fast jit versions want blocked nChw8c/16c or nhwc). Measured on
// ResNet-18 batch 16, 2 threads (ONEDNN_VERBOSE): on an idle machine it took 238 ms of
// 2.71 s of primitive time over two steps (9%), 2-3x what these loops take; on a
// loaded one (load 4-6) its many barriers made it 5.8 s of 15.1 s (38%). These loops
// are memory-bound: on 16x64x56x56 one thread takes 3.4 ms forward and 3.8 ms
// backward where the primitive took 7.1 and 8.8 ms; with 2 threads, 1.4 and 1.7 ms
// against 3.5 and 4.4 ms. The training step went from 1.25-1.37 s to 1.22-1.36 s
// median at load ~2.4 (about 3%, noisy), and from 6.2-11.1 s to 5.4-5.7 s at load 4-6.
//
// Layout: channel c of sample i is the contiguous run x[(i * C + c) * hw, + hw).
// Parallel over channels: every channel's statistics are reduced by ONE thread in a
// fixed order (runs in order of i; inside a run, element j into lane j % kLanes; the
// lanes summed in lane order at the end), so the bits depend neither on the thread
// count nor on scheduling. Sums are in double, and the variance is a second pass over
// the deviations from the mean (no E[x^2] - E[x]^2 cancellation); a channel's data
// (n * hw floats) usually stays in L2 between the passes.
//
// Semantics are those of the oneDNN primitive these replace (use_scale | use_shift):
// the forward saves the batch mean and the biased variance (what batch_norm_bwd and
// batch_norm_update_running read); y = (x - mean) * (gamma / sqrt(var + eps)) + beta
// with that scale computed in float as oneDNN does; the backward recomputes
// 1 / sqrt(var + eps) from the saved variance. No scratch space: the scratch queries
// return 0, so the planner attaches no workspace to batch norm nodes.
//
// Aliasing: y may be x, dx may be dy or x (the op's in-place pairs): every element is
// read before it is written, and only by the thread that writes it.
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "runtime/cpu/context_impl.h"

namespace dlmem::cpu {

namespace {

// Below this many elements a batch norm runs on the calling thread.
constexpr int64_t kBnParallelMin = 1 << 14;

// The sums are in double lanes: element j of a run goes to lane j % kLanes, and a
// channel's lanes are added in lane order at the end. Written with GCC/Clang vector
// extensions (SSE2 is x86-64's baseline): without them GCC 12 half-vectorises the
// float-to-double accumulation with spills, and the backward's sums cost more than
// its memory traffic. Lane-wise adds round exactly as the scalar loop would.
typedef float F4 __attribute__((vector_size(16)));
typedef double D2 __attribute__((vector_size(16)));
constexpr int kLanes = 8;  // 4 x D2: enough independent adds to hide their latency

struct Lanes {
  D2 v[kLanes / 2] = {};
  double total() const {
    double s = 0.0;
    for (int k = 0; k < kLanes; ++k) s += v[k / 2][k % 2];
    return s;
  }
  void add_scalar(int k, double e) { v[k / 2][k % 2] += e; }
};

inline F4 load4(const float* p) {
  F4 r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
inline D2 lo2(F4 v) { return __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1), D2); }
inline D2 hi2(F4 v) { return __builtin_convertvector(__builtin_shufflevector(v, v, 2, 3), D2); }

// a += p[0..len)
void add_run(Lanes& a, const float* p, int64_t len) {
  D2 s0 = a.v[0], s1 = a.v[1], s2 = a.v[2], s3 = a.v[3];
  int64_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    const F4 u = load4(p + j), w = load4(p + j + 4);
    s0 += lo2(u), s1 += hi2(u), s2 += lo2(w), s3 += hi2(w);
  }
  a.v[0] = s0, a.v[1] = s1, a.v[2] = s2, a.v[3] = s3;
  for (int k = 0; j + k < len; ++k) a.add_scalar(k, static_cast<double>(p[j + k]));
}

// a += (p[0..len) - mean)^2
void add_sq_dev_run(Lanes& a, const float* p, int64_t len, double mean) {
  D2 s0 = a.v[0], s1 = a.v[1], s2 = a.v[2], s3 = a.v[3];
  const D2 m = {mean, mean};
  int64_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    const F4 u = load4(p + j), w = load4(p + j + 4);
    const D2 d0 = lo2(u) - m, d1 = hi2(u) - m, d2 = lo2(w) - m, d3 = hi2(w) - m;
    s0 += d0 * d0, s1 += d1 * d1, s2 += d2 * d2, s3 += d3 * d3;
  }
  a.v[0] = s0, a.v[1] = s1, a.v[2] = s2, a.v[3] = s3;
  for (int k = 0; j + k < len; ++k) {
    const double d = static_cast<double>(p[j + k]) - mean;
    a.add_scalar(k, d * d);
  }
}

// sdy += dy[0..len); sdyx += dy * (x - mean)
void add_bwd_run(Lanes& sdy, Lanes& sdyx, const float* x, const float* dy, int64_t len,
                 double mean) {
  D2 a0 = sdy.v[0], a1 = sdy.v[1], a2 = sdy.v[2], a3 = sdy.v[3];
  D2 b0 = sdyx.v[0], b1 = sdyx.v[1], b2 = sdyx.v[2], b3 = sdyx.v[3];
  const D2 m = {mean, mean};
  int64_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    const F4 gu = load4(dy + j), gw = load4(dy + j + 4);
    const F4 xu = load4(x + j), xw = load4(x + j + 4);
    const D2 g0 = lo2(gu), g1 = hi2(gu), g2 = lo2(gw), g3 = hi2(gw);
    a0 += g0, a1 += g1, a2 += g2, a3 += g3;
    b0 += g0 * (lo2(xu) - m), b1 += g1 * (hi2(xu) - m);
    b2 += g2 * (lo2(xw) - m), b3 += g3 * (hi2(xw) - m);
  }
  sdy.v[0] = a0, sdy.v[1] = a1, sdy.v[2] = a2, sdy.v[3] = a3;
  sdyx.v[0] = b0, sdyx.v[1] = b1, sdyx.v[2] = b2, sdyx.v[3] = b3;
  for (int k = 0; j + k < len; ++k) {
    const double g = static_cast<double>(dy[j + k]);
    sdy.add_scalar(k, g);
    sdyx.add_scalar(k, g * (static_cast<double>(x[j + k]) - mean));
  }
}

// y = (x - mean) * scale + shift over one channel's runs.
void normalise_channel(int64_t n, int64_t c, int64_t hw, int64_t ch, const float* x, float* y,
                       float mean, float scale, float shift) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t off = (i * c + ch) * hw;
    const float* xr = x + off;
    float* yr = y + off;
    for (int64_t j = 0; j < hw; ++j) yr[j] = (xr[j] - mean) * scale + shift;
  }
}

void check_bn(int64_t n, int64_t c, int64_t hw) {
  DLMEM_CHECK(n > 0 && c > 0 && hw > 0, "batch norm of ", n, "x", c, "x", hw);
}

}  // namespace

size_t batch_norm_fwd_scratch_bytes(Context&, int64_t n, int64_t c, int64_t hw, bool) {
  check_bn(n, c, hw);
  return 0;
}

size_t batch_norm_bwd_scratch_bytes(Context&, int64_t n, int64_t c, int64_t hw) {
  check_bn(n, c, hw);
  return 0;
}

void batch_norm_fwd_training(Context& ctx, int64_t n, int64_t c, int64_t hw, float eps,
                             const float* x, const float* gamma, const float* beta, float* y,
                             float* mean, float* var, void*) {
  check_bn(n, c, hw);
  enter(ctx);
  const double count = static_cast<double>(n * hw);
#pragma omp parallel for schedule(static) if (n * c * hw >= kBnParallelMin)
  for (int64_t ch = 0; ch < c; ++ch) {
    Lanes s;
    for (int64_t i = 0; i < n; ++i) add_run(s, x + (i * c + ch) * hw, hw);
    const double m = s.total() / count;
    Lanes q;
    for (int64_t i = 0; i < n; ++i) add_sq_dev_run(q, x + (i * c + ch) * hw, hw, m);
    const float mf = static_cast<float>(m);
    const float vf = static_cast<float>(q.total() / count);
    mean[ch] = mf;
    var[ch] = vf;
    normalise_channel(n, c, hw, ch, x, y, mf, gamma[ch] / std::sqrt(vf + eps), beta[ch]);
  }
}

void batch_norm_fwd_inference(Context& ctx, int64_t n, int64_t c, int64_t hw, float eps,
                              const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* var, float* y, void*) {
  check_bn(n, c, hw);
  enter(ctx);
#pragma omp parallel for schedule(static) if (n * c * hw >= kBnParallelMin)
  for (int64_t ch = 0; ch < c; ++ch)
    normalise_channel(n, c, hw, ch, x, y, mean[ch], gamma[ch] / std::sqrt(var[ch] + eps),
                      beta[ch]);
}

void batch_norm_bwd(Context& ctx, int64_t n, int64_t c, int64_t hw, float eps, const float* x,
                    const float* dy, const float* gamma, const float* mean, const float* var,
                    float* dx, float* dgamma, float* dbeta, void*) {
  check_bn(n, c, hw);
  enter(ctx);
  const double count = static_cast<double>(n * hw);
  // With xhat = (x - mean) * rstd: dbeta = sum(dy), dgamma = sum(dy * xhat),
  // dx = gamma * rstd * (dy - dbeta / count - xhat * dgamma / count).
#pragma omp parallel for schedule(static) if (n * c * hw >= kBnParallelMin)
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mf = mean[ch];
    const float rstd = 1.f / std::sqrt(var[ch] + eps);
    Lanes sdy, sdyx;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c + ch) * hw;
      add_bwd_run(sdy, sdyx, x + off, dy + off, hw, mf);
    }
    const double db = sdy.total();
    const double dg = sdyx.total() * rstd;
    dbeta[ch] = static_cast<float>(db);
    dgamma[ch] = static_cast<float>(dg);
    const float a = gamma[ch] * rstd;
    const float mean_dy = static_cast<float>(db / count);
    const float k = static_cast<float>(dg * rstd / count);  // xhat * dgamma / count = (x - mean) * k
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c + ch) * hw;
      const float* xr = x + off;
      const float* dyr = dy + off;
      float* dxr = dx + off;
      for (int64_t j = 0; j < hw; ++j) dxr[j] = a * (dyr[j] - mean_dy - (xr[j] - mf) * k);
    }
  }
}

}  // namespace dlmem::cpu
