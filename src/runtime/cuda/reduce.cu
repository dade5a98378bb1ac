// Reductions (reduce_sum, bias gradients), batch and layer normalisation, pooling
// (kernels.h). Every sum runs in a fixed order: fixed chunks whose partial sums (in
// double) land in the node's workspace and are added in chunk order, and fixed block
// trees inside a chunk (Note [Determinism]).
#include <algorithm>

#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/kernels.h"
#include "util/error.h"

namespace dlmem::cuda {

namespace {

constexpr int64_t kMaxPartials = int64_t{1} << 21;  // doubles of partial sums per node (16 MiB)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return std::max(lo, std::min(hi, v)); }

// ---------------------------------------------------------------- reduce_sum

__device__ inline int64_t offset_of(int64_t i, int rank, const int64_t* dims, const int64_t* strides) {
  int64_t off = 0;
  for (int d = rank - 1; d >= 0; --d) {
    const int64_t q = i / dims[d];
    off += (i - q * dims[d]) * strides[d];
    i = q;
  }
  return off;
}

// Innermost dim reduced: a block per (output, chunk), threads along the reduced index.
__global__ void reduce_block_k(ReducePlan p, int64_t len, const float* x, float* y, double* partial) {
  __shared__ double ds[32];
  const int64_t tasks = p.outputs * p.chunks;
  for (int64_t t = blockIdx.x; t < tasks; t += gridDim.x) {
    const int64_t o = t % p.outputs, ch = t / p.outputs;
    const int64_t base = offset_of(o, p.kept_rank, p.kept_dims, p.kept_strides);
    const int64_t r0 = ch * len, r1 = imin(p.reduced, r0 + len);
    double s = 0.0;
    for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x)
      s += x[base + offset_of(r, p.red_rank, p.red_dims, p.red_strides)];
    s = block_sum(s, ds);
    if (threadIdx.x == 0) {
      if (p.chunks == 1) y[o] = static_cast<float>(s);
      else partial[ch * p.outputs + o] = s;
    }
  }
}

// Innermost dim kept: a thread per (output, chunk), consecutive threads on consecutive
// outputs (coalesced), each summing its chunk in order.
__global__ void reduce_thread_k(ReducePlan p, int64_t len, const float* x, float* y, double* partial) {
  const int64_t tasks = p.outputs * p.chunks;
  DLMEM_GRID_LOOP(t, tasks) {
    const int64_t o = t % p.outputs, ch = t / p.outputs;
    const int64_t base = offset_of(o, p.kept_rank, p.kept_dims, p.kept_strides);
    const int64_t r0 = ch * len, r1 = imin(p.reduced, r0 + len);
    double s = 0.0;
    if (p.red_rank == 1) {
      for (int64_t r = r0; r < r1; ++r) s += x[base + r * p.red_strides[0]];
    } else {
      for (int64_t r = r0; r < r1; ++r) s += x[base + offset_of(r, p.red_rank, p.red_dims, p.red_strides)];
    }
    if (p.chunks == 1) y[o] = static_cast<float>(s);
    else partial[ch * p.outputs + o] = s;
  }
}

__global__ void reduce_finish_k(int64_t outputs, int64_t chunks, const double* partial, float* y) {
  DLMEM_GRID_LOOP(o, outputs) {
    double s = 0.0;
    for (int64_t ch = 0; ch < chunks; ++ch) s += partial[ch * outputs + o];
    y[o] = static_cast<float>(s);
  }
}

int64_t chunk_len(const ReducePlan& p) { return ceil_div(p.reduced, p.chunks); }

// ---------------------------------------------------------------- batch norm

// Per (channel, chunk): sums of x and x^2 (forward) or of dy and dy * (x - mean)
// (backward) over the chunk's (n, hw) positions.
__global__ void bn_partial_k(BnPlan p, bool backward, const float* x, const float* dy, const float* mean,
                             double* partial) {
  __shared__ double ds[32];
  const int64_t m_total = p.n * p.hw, len = (m_total + p.chunks - 1) / p.chunks;
  const int64_t tasks = p.c * p.chunks;
  for (int64_t t = blockIdx.x; t < tasks; t += gridDim.x) {
    const int64_t c = t / p.chunks, ch = t % p.chunks;
    const int64_t m0 = ch * len, m1 = imin(m_total, m0 + len);
    const double mu = backward ? static_cast<double>(mean[c]) : 0.0;
    double s1 = 0.0, s2 = 0.0;
    for (int64_t m = m0 + threadIdx.x; m < m1; m += blockDim.x) {
      const int64_t n = m / p.hw, s = m - n * p.hw;
      const int64_t off = (n * p.c + c) * p.hw + s;
      const double v = x[off];
      if (backward) {
        const double g = dy[off];
        s1 += g;
        s2 += g * (v - mu);
      } else {
        s1 += v;
        s2 += v * v;
      }
    }
    s1 = block_sum(s1, ds);
    s2 = block_sum(s2, ds);
    if (threadIdx.x == 0) {
      partial[2 * t] = s1;
      partial[2 * t + 1] = s2;
    }
  }
}

// Batch mean and biased variance per channel; PyTorch's running statistics
// (Note [Exact scalars]); the per-channel affine map y = x * k[0] + k[1].
__global__ void bn_fwd_finish_k(BnPlan p, float eps, float momentum, float unbias, bool update, const double* partial,
                                const float* gamma, const float* beta, float* mean, float* var, float* rmean,
                                float* rvar, float* coef) {
  DLMEM_GRID_LOOP(c, p.c) {
    double s1 = 0.0, s2 = 0.0;
    for (int64_t ch = 0; ch < p.chunks; ++ch) {
      s1 += partial[2 * (c * p.chunks + ch)];
      s2 += partial[2 * (c * p.chunks + ch) + 1];
    }
    const double count = static_cast<double>(p.n * p.hw);
    const double mu = s1 / count;
    const double v = fmax(s2 / count - mu * mu, 0.0);
    const float mf = static_cast<float>(mu), vf = static_cast<float>(v);
    mean[c] = mf;
    var[c] = vf;
    if (update) {
      const float om = 1.f - momentum;
      rmean[c] = __fadd_rn(__fmul_rn(om, rmean[c]), __fmul_rn(momentum, mf));
      rvar[c] = __fadd_rn(__fmul_rn(om, rvar[c]), __fmul_rn(momentum, __fmul_rn(vf, unbias)));
    }
    const float k = gamma[c] / sqrtf(vf + eps);
    coef[2 * c] = k;
    coef[2 * c + 1] = beta[c] - mf * k;
  }
}

__global__ void bn_apply_k(int64_t total, int64_t c, int64_t hw, const float* coef, const float* x, float* y) {
  DLMEM_GRID_LOOP(i, total) {
    const int64_t ch = (i / hw) % c;
    y[i] = x[i] * coef[2 * ch] + coef[2 * ch + 1];
  }
}

__global__ void bn_inference_k(int64_t total, int64_t c, int64_t hw, float eps, const float* x, const float* gamma,
                               const float* beta, const float* mean, const float* var, float* y) {
  DLMEM_GRID_LOOP(i, total) {
    const int64_t ch = (i / hw) % c;
    y[i] = gamma[ch] * (x[i] - mean[ch]) / sqrtf(var[ch] + eps) + beta[ch];
  }
}

// dgamma, dbeta, and the coefficients of dx = k0 * (dy - k1 - (x - mean) * k2).
__global__ void bn_bwd_finish_k(BnPlan p, float eps, const double* partial, const float* gamma, const float* var,
                                float* dgamma, float* dbeta, float* coef) {
  DLMEM_GRID_LOOP(c, p.c) {
    double s1 = 0.0, s2 = 0.0;
    for (int64_t ch = 0; ch < p.chunks; ++ch) {
      s1 += partial[2 * (c * p.chunks + ch)];
      s2 += partial[2 * (c * p.chunks + ch) + 1];
    }
    const double count = static_cast<double>(p.n * p.hw);
    const double rstd = 1.0 / sqrt(static_cast<double>(var[c]) + static_cast<double>(eps));
    dbeta[c] = static_cast<float>(s1);
    dgamma[c] = static_cast<float>(s2 * rstd);
    coef[3 * c] = static_cast<float>(static_cast<double>(gamma[c]) * rstd);
    coef[3 * c + 1] = static_cast<float>(s1 / count);
    coef[3 * c + 2] = static_cast<float>(s2 * rstd * rstd / count);
  }
}

__global__ void bn_bwd_apply_k(int64_t total, int64_t c, int64_t hw, const float* coef, const float* x,
                               const float* dy, const float* mean, float* dx) {
  DLMEM_GRID_LOOP(i, total) {
    const int64_t ch = (i / hw) % c;
    const float xv = x[i], g = dy[i];
    dx[i] = coef[3 * ch] * (g - coef[3 * ch + 1] - (xv - mean[ch]) * coef[3 * ch + 2]);
  }
}

// ---------------------------------------------------------------- layer norm

int ln_threads(int64_t cols) { return cols <= 256 ? 64 : (cols <= 2048 ? 128 : 256); }

// Statistics before any write: y may be x.
__global__ void ln_fwd_k(int64_t rows, int64_t cols, float eps, const float* x, const float* gamma,
                         const float* beta, float* y, float* mean, float* var) {
  __shared__ double ds[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += xr[j];
    const double mu = block_sum(s, ds) / static_cast<double>(cols);
    double q = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const double d = xr[j] - mu;
      q += d * d;
    }
    const double v = block_sum(q, ds) / static_cast<double>(cols);
    const float mf = static_cast<float>(mu), vf = static_cast<float>(v);
    const float rstd = 1.f / sqrtf(vf + eps);
    if (threadIdx.x == 0) {
      mean[r] = mf;
      var[r] = vf;
    }
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = gamma[j] * ((xr[j] - mf) * rstd) + beta[j];
  }
}

// Column partial sums of dy * xhat and dy over a chunk of rows (before dx is written:
// dx may be x or dy).
__global__ void ln_param_partial_k(LnPlan p, float eps, const float* x, const float* dy, const float* mean,
                                   const float* var, double* partial) {
  const int64_t len = (p.rows + p.chunks - 1) / p.chunks, tasks = p.cols * p.chunks;
  DLMEM_GRID_LOOP(t, tasks) {
    const int64_t j = t % p.cols, ch = t / p.cols;
    const int64_t r0 = ch * len, r1 = imin(p.rows, r0 + len);
    double sg = 0.0, sb = 0.0;
    for (int64_t r = r0; r < r1; ++r) {
      const float rstd = 1.f / sqrtf(var[r] + eps);
      const float g = dy[r * p.cols + j];
      sg += static_cast<double>(g) * ((x[r * p.cols + j] - mean[r]) * rstd);
      sb += g;
    }
    partial[2 * (ch * p.cols + j)] = sg;
    partial[2 * (ch * p.cols + j) + 1] = sb;
  }
}

__global__ void ln_param_finish_k(LnPlan p, const double* partial, float* dgamma, float* dbeta) {
  DLMEM_GRID_LOOP(j, p.cols) {
    double sg = 0.0, sb = 0.0;
    for (int64_t ch = 0; ch < p.chunks; ++ch) {
      sg += partial[2 * (ch * p.cols + j)];
      sb += partial[2 * (ch * p.cols + j) + 1];
    }
    dgamma[j] = static_cast<float>(sg);
    dbeta[j] = static_cast<float>(sb);
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
__global__ void ln_dx_k(int64_t rows, int64_t cols, float eps, const float* x, const float* dy, const float* gamma,
                        const float* mean, const float* var, float* dx) {
  __shared__ double ds[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    const float* dyr = dy + r * cols;
    float* dxr = dx + r * cols;
    const float mf = mean[r], rstd = 1.f / sqrtf(var[r] + eps);
    double a = 0.0, b = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const double g = static_cast<double>(dyr[j]) * gamma[j];
      a += g;
      b += g * ((xr[j] - mf) * rstd);
    }
    a = block_sum(a, ds);
    b = block_sum(b, ds);
    const float ma = static_cast<float>(a / static_cast<double>(cols));
    const float mb = static_cast<float>(b / static_cast<double>(cols));
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float xh = (xr[j] - mf) * rstd;
      const float g = dyr[j] * gamma[j];
      dxr[j] = rstd * (g - ma - xh * mb);
    }
  }
}

// ---------------------------------------------------------------- pooling

// oneDNN's max pooling: padding never wins, the first maximum in (ry, rx) order does,
// starting from the lowest float with index 0.
__global__ void max_pool_fwd_k(Pool p, const float* x, float* y, uint8_t* idx) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  DLMEM_GRID_LOOP(i, total) {
    const int64_t ox = i % p.ow, oy = (i / p.ow) % p.oh, plane = i / (p.ow * p.oh);
    const float* xp = x + plane * p.h * p.w;
    const int64_t hs = oy * p.sh - p.ph, ws = ox * p.sw - p.pw;
    float best = -3.402823466e38f;
    int k = 0;
    for (int64_t ry = 0; ry < p.kh; ++ry) {
      const int64_t iy = hs + ry;
      if (iy < 0 || iy >= p.h) continue;
      for (int64_t rx = 0; rx < p.kw; ++rx) {
        const int64_t ix = ws + rx;
        if (ix < 0 || ix >= p.w) continue;
        const float v = xp[iy * p.w + ix];
        if (v > best) {
          best = v;
          k = static_cast<int>(ry * p.kw + rx);
        }
      }
    }
    y[i] = best;
    idx[i] = static_cast<uint8_t>(k);
  }
}

// Output windows covering input coordinate `in`: [first, last] (empty when first > last).
__device__ inline void covering(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t out, int64_t& first,
                                int64_t& last) {
  const int64_t hi = in + pad;  // window o covers `in` iff o*s <= hi < o*s + k
  first = hi - k + 1 <= 0 ? 0 : (hi - k + 1 + s - 1) / s;
  last = imin(out - 1, hi / s);
}

// Input element i of a pooling backward: its plane and coordinates, and the output
// windows [y0, y1] x [x0, x1] that cover it.
struct Covered {
  int64_t plane, iy, ix, y0, y1, x0, x1;
};
__device__ inline Covered covered(const Pool& p, int64_t i) {
  Covered c;
  c.ix = i % p.w;
  c.iy = (i / p.w) % p.h;
  c.plane = i / (p.w * p.h);
  covering(c.iy, p.kh, p.sh, p.ph, p.oh, c.y0, c.y1);
  covering(c.ix, p.kw, p.sw, p.pw, p.ow, c.x0, c.x1);
  return c;
}

// A gather per input element: the same sum order every run, no atomics.
__global__ void max_pool_bwd_k(Pool p, const float* dy, const uint8_t* idx, float* dx) {
  const int64_t total = p.n * p.c * p.h * p.w;
  DLMEM_GRID_LOOP(i, total) {
    const Covered c = covered(p, i);
    float s = 0.f;
    for (int64_t oy = c.y0; oy <= c.y1; ++oy)
      for (int64_t ox = c.x0; ox <= c.x1; ++ox) {
        const int64_t o = (c.plane * p.oh + oy) * p.ow + ox;
        const int k = idx[o];
        if (oy * p.sh - p.ph + k / p.kw == c.iy && ox * p.sw - p.pw + k % p.kw == c.ix) s += dy[o];
      }
    dx[i] = s;
  }
}

// PyTorch's divisor: with count_include_pad the window clipped to the padded input
// (ceil_mode's overhanging last window is smaller), else the in-bounds elements.
__device__ inline float avg_divisor(const Pool& p, int64_t oy, int64_t ox) {
  const int64_t hs = oy * p.sh - p.ph, ws = ox * p.sw - p.pw;
  if (p.count_include_pad) {
    const int64_t he = imin(hs + p.kh, p.h + p.ph), we = imin(ws + p.kw, p.w + p.pw);
    return static_cast<float>((he - hs) * (we - ws));
  }
  const int64_t y0 = imax(hs, 0), y1 = imin(hs + p.kh, p.h), x0 = imax(ws, 0), x1 = imin(ws + p.kw, p.w);
  return static_cast<float>((y1 - y0) * (x1 - x0));
}

__global__ void avg_pool_fwd_k(Pool p, const float* x, float* y) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  DLMEM_GRID_LOOP(i, total) {
    const int64_t ox = i % p.ow, oy = (i / p.ow) % p.oh, plane = i / (p.ow * p.oh);
    const float* xp = x + plane * p.h * p.w;
    const int64_t hs = oy * p.sh - p.ph, ws = ox * p.sw - p.pw;
    float s = 0.f;
    for (int64_t iy = imax(hs, 0); iy < imin(hs + p.kh, p.h); ++iy)
      for (int64_t ix = imax(ws, 0); ix < imin(ws + p.kw, p.w); ++ix) s += xp[iy * p.w + ix];
    y[i] = s / avg_divisor(p, oy, ox);
  }
}

__global__ void avg_pool_bwd_k(Pool p, const float* dy, float* dx) {
  const int64_t total = p.n * p.c * p.h * p.w;
  DLMEM_GRID_LOOP(i, total) {
    const Covered c = covered(p, i);
    float s = 0.f;
    for (int64_t oy = c.y0; oy <= c.y1; ++oy)
      for (int64_t ox = c.x0; ox <= c.x1; ++ox) s += dy[(c.plane * p.oh + oy) * p.ow + ox] / avg_divisor(p, oy, ox);
    dx[i] = s;
  }
}

// A warp per plane.
__global__ void gap_fwd_k(int64_t planes, int64_t hw, const float* x, float* y) {
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  const int lane = threadIdx.x & 31;
  for (int64_t pl = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5); pl < planes;
       pl += warps) {
    float s = 0.f;
    for (int64_t j = lane; j < hw; j += 32) s += x[pl * hw + j];
    s = warp_sum(s);
    if (lane == 0) y[pl] = s / static_cast<float>(hw);
  }
}

__global__ void gap_bwd_k(int64_t planes, int64_t hw, const float* dy, float* dx) {
  const int64_t total = planes * hw;
  DLMEM_GRID_LOOP(i, total) dx[i] = dy[i / hw] / static_cast<float>(hw);
}

}  // namespace

// ---------------------------------------------------------------- launchers

ReducePlan plan_reduce(int rank, const int64_t* x_dims, const int64_t* y_dims) {
  ReducePlan p;
  int64_t stride = 1;
  // Groups from the innermost dim outwards: (size, stride, reduced).
  int64_t g_size[16], g_stride[16];
  bool g_red[16];
  int g = 0;
  for (int i = rank - 1; i >= 0; --i) {
    DLMEM_CHECK(y_dims[i] == x_dims[i] || y_dims[i] == 1, "reduce_sum: dim ", i, " of y is ", y_dims[i],
                ", not 1 or ", x_dims[i]);
    if (x_dims[i] != 1) {
      const bool red = y_dims[i] == 1;
      if (g > 0 && g_red[g - 1] == red) {
        g_size[g - 1] *= x_dims[i];
      } else {
        DLMEM_CHECK(g < 16, "reduce_sum: too many dims");
        g_size[g] = x_dims[i];
        g_stride[g] = stride;
        g_red[g] = red;
        ++g;
      }
    }
    stride *= x_dims[i];
  }
  for (int k = g - 1; k >= 0; --k) {  // outermost first
    if (g_red[k]) {
      DLMEM_CHECK(p.red_rank < 8, "reduce_sum: too many reduced groups");
      p.red_dims[p.red_rank] = g_size[k];
      p.red_strides[p.red_rank++] = g_stride[k];
      p.reduced *= g_size[k];
    } else {
      DLMEM_CHECK(p.kept_rank < 8, "reduce_sum: too many kept groups");
      p.kept_dims[p.kept_rank] = g_size[k];
      p.kept_strides[p.kept_rank++] = g_stride[k];
      p.outputs *= g_size[k];
    }
  }
  p.inner_reduced = g > 0 && g_red[0];
  if (p.reduced > 1) {
    const int64_t want = p.inner_reduced ? (p.outputs >= 4096 ? 1 : ceil_div(p.reduced, 4096))
                                         : (p.outputs >= 65536 ? 1 : ceil_div(p.reduced, 64));
    p.chunks = clamp64(std::min(want, kMaxPartials / imax(p.outputs, 1)), 1, 1024);
  }
  return p;
}

size_t reduce_workspace(const ReducePlan& p) {
  return p.chunks > 1 ? static_cast<size_t>(p.chunks * p.outputs) * sizeof(double) : 0;
}

void reduce_sum(const Launch& l, const ReducePlan& p, const float* x, float* y, void* workspace) {
  if (p.outputs == 0) return;
  if (p.reduced == 1) {  // nothing to reduce: a copy
    if (x != y) {
      const cudaError_t e = cudaMemcpyAsync(y, x, static_cast<size_t>(p.outputs) * sizeof(float),
                                            cudaMemcpyDeviceToDevice, l.stream);
      DLMEM_CHECK(e == cudaSuccess, "cudaMemcpyAsync: ", cudaGetErrorString(e));
    }
    return;
  }
  DLMEM_CHECK(p.chunks == 1 || workspace != nullptr, "reduce_sum needs its workspace");
  auto* partial = static_cast<double*>(workspace);
  const int64_t tasks = p.outputs * p.chunks;
  if (p.inner_reduced) {
    reduce_block_k<<<static_cast<unsigned>(std::min<int64_t>(tasks, 1 << 20)), kThreads, 0, l.stream>>>(
        p, chunk_len(p), x, y, partial);
  } else {
    reduce_thread_k<<<grid_for(tasks), kThreads, 0, l.stream>>>(p, chunk_len(p), x, y, partial);
  }
  check_launch("reduce_sum");
  if (p.chunks > 1) {
    reduce_finish_k<<<grid_for(p.outputs), kThreads, 0, l.stream>>>(p.outputs, p.chunks, partial, y);
    check_launch("reduce_sum_finish");
  }
}

BnPlan plan_batch_norm(int64_t n, int64_t c, int64_t hw) {
  BnPlan p{n, c, hw, 1};
  p.chunks = clamp64(ceil_div(n * hw, 8192), 1, 256);
  return p;
}

size_t batch_norm_workspace(const BnPlan& p) {
  // partial sums, then 3 floats of coefficients per channel
  return static_cast<size_t>(2 * p.c * p.chunks) * sizeof(double) + static_cast<size_t>(4 * p.c) * sizeof(float);
}

namespace {
float* bn_coef(const BnPlan& p, void* ws) {
  return reinterpret_cast<float*>(static_cast<char*>(ws) + static_cast<size_t>(2 * p.c * p.chunks) * sizeof(double));
}
unsigned bn_blocks(const BnPlan& p) { return static_cast<unsigned>(std::min<int64_t>(p.c * p.chunks, 1 << 20)); }
}  // namespace

void batch_norm_fwd_training(const Launch& l, const BnPlan& p, float eps, float momentum, bool update_running,
                             const float* x, const float* gamma, const float* beta, float* y, float* mean, float* var,
                             float* running_mean, float* running_var, void* workspace) {
  const int64_t count = p.n * p.hw;
  if (count < 2)
    throw Error("batch norm in training needs more than 1 value per channel (batch x height x width), got ", count);
  DLMEM_CHECK(workspace != nullptr, "batch norm needs its workspace");
  auto* partial = static_cast<double*>(workspace);
  float* coef = bn_coef(p, workspace);
  bn_partial_k<<<bn_blocks(p), kThreads, 0, l.stream>>>(p, false, x, nullptr, nullptr, partial);
  check_launch("batch_norm_stats");
  const float unbias = static_cast<float>(static_cast<double>(count) / static_cast<double>(count - 1));
  bn_fwd_finish_k<<<grid_for(p.c), kThreads, 0, l.stream>>>(p, eps, momentum, unbias, update_running, partial, gamma,
                                                             beta, mean, var, running_mean, running_var, coef);
  check_launch("batch_norm_finish");
  const int64_t total = p.n * p.c * p.hw;
  bn_apply_k<<<grid_for(total), kThreads, 0, l.stream>>>(total, p.c, p.hw, coef, x, y);
  check_launch("batch_norm_apply");
}

void batch_norm_fwd_inference(const Launch& l, const BnPlan& p, float eps, const float* x, const float* gamma,
                              const float* beta, const float* mean, const float* var, float* y) {
  const int64_t total = p.n * p.c * p.hw;
  if (total == 0) return;
  bn_inference_k<<<grid_for(total), kThreads, 0, l.stream>>>(total, p.c, p.hw, eps, x, gamma, beta, mean, var, y);
  check_launch("batch_norm_inference");
}

void batch_norm_bwd(const Launch& l, const BnPlan& p, float eps, const float* x, const float* dy, const float* gamma,
                    const float* mean, const float* var, float* dx, float* dgamma, float* dbeta, void* workspace) {
  DLMEM_CHECK(workspace != nullptr, "batch norm backward needs its workspace");
  auto* partial = static_cast<double*>(workspace);
  float* coef = bn_coef(p, workspace);
  bn_partial_k<<<bn_blocks(p), kThreads, 0, l.stream>>>(p, true, x, dy, mean, partial);
  check_launch("batch_norm_bwd_stats");
  bn_bwd_finish_k<<<grid_for(p.c), kThreads, 0, l.stream>>>(p, eps, partial, gamma, var, dgamma, dbeta, coef);
  check_launch("batch_norm_bwd_finish");
  const int64_t total = p.n * p.c * p.hw;
  bn_bwd_apply_k<<<grid_for(total), kThreads, 0, l.stream>>>(total, p.c, p.hw, coef, x, dy, mean, dx);
  check_launch("batch_norm_bwd_apply");
}

LnPlan plan_layer_norm(int64_t rows, int64_t cols) {
  LnPlan p{rows, cols, 1};
  p.chunks = clamp64(std::min(ceil_div(rows, 32), kMaxPartials / (2 * imax(cols, 1))), 1, 1024);
  return p;
}

size_t layer_norm_bwd_workspace(const LnPlan& p) { return static_cast<size_t>(2 * p.chunks * p.cols) * sizeof(double); }

void layer_norm_fwd(const Launch& l, const LnPlan& p, float eps, const float* x, const float* gamma, const float* beta,
                    float* y, float* mean, float* var) {
  if (p.rows * p.cols == 0) return;
  ln_fwd_k<<<static_cast<unsigned>(std::min<int64_t>(p.rows, 65536)), ln_threads(p.cols), 0, l.stream>>>(
      p.rows, p.cols, eps, x, gamma, beta, y, mean, var);
  check_launch("layer_norm_fwd");
}

void layer_norm_bwd(const Launch& l, const LnPlan& p, float eps, const float* x, const float* dy, const float* gamma,
                    const float* mean, const float* var, float* dx, float* dgamma, float* dbeta, void* workspace) {
  if (p.rows * p.cols == 0) return;
  DLMEM_CHECK(workspace != nullptr, "layer norm backward needs its workspace");
  auto* partial = static_cast<double*>(workspace);
  // The parameter gradients first: dx may overwrite x or dy.
  ln_param_partial_k<<<grid_for(p.cols * p.chunks), kThreads, 0, l.stream>>>(p, eps, x, dy, mean, var, partial);
  check_launch("layer_norm_bwd_params");
  ln_param_finish_k<<<grid_for(p.cols), kThreads, 0, l.stream>>>(p, partial, dgamma, dbeta);
  check_launch("layer_norm_bwd_params_finish");
  ln_dx_k<<<static_cast<unsigned>(std::min<int64_t>(p.rows, 65536)), ln_threads(p.cols), 0, l.stream>>>(
      p.rows, p.cols, eps, x, dy, gamma, mean, var, dx);
  check_launch("layer_norm_bwd_dx");
}

void max_pool_fwd(const Launch& l, const Pool& p, const float* x, float* y, uint8_t* idx) {
  DLMEM_CHECK(p.kh * p.kw <= 256, "max pooling window of ", p.kh * p.kw, " elements");
  const int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0) return;
  max_pool_fwd_k<<<grid_for(total), kThreads, 0, l.stream>>>(p, x, y, idx);
  check_launch("max_pool_fwd");
}

void max_pool_bwd(const Launch& l, const Pool& p, const float* dy, const uint8_t* idx, float* dx) {
  const int64_t total = p.n * p.c * p.h * p.w;
  if (total == 0) return;
  max_pool_bwd_k<<<grid_for(total), kThreads, 0, l.stream>>>(p, dy, idx, dx);
  check_launch("max_pool_bwd");
}

void avg_pool_fwd(const Launch& l, const Pool& p, const float* x, float* y) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0) return;
  avg_pool_fwd_k<<<grid_for(total), kThreads, 0, l.stream>>>(p, x, y);
  check_launch("avg_pool_fwd");
}

void avg_pool_bwd(const Launch& l, const Pool& p, const float* dy, float* dx) {
  const int64_t total = p.n * p.c * p.h * p.w;
  if (total == 0) return;
  avg_pool_bwd_k<<<grid_for(total), kThreads, 0, l.stream>>>(p, dy, dx);
  check_launch("avg_pool_bwd");
}

void global_avg_pool_fwd(const Launch& l, int64_t planes, int64_t hw, const float* x, float* y) {
  if (planes * hw == 0) return;
  gap_fwd_k<<<grid_for(planes * 32), kThreads, 0, l.stream>>>(planes, hw, x, y);
  check_launch("global_avg_pool_fwd");
}

void global_avg_pool_bwd(const Launch& l, int64_t planes, int64_t hw, const float* dy, float* dx) {
  if (planes * hw == 0) return;
  gap_bwd_k<<<grid_for(planes * hw), kThreads, 0, l.stream>>>(planes, hw, dy, dx);
  check_launch("global_avg_pool_bwd");
}

}  // namespace dlmem::cuda
