// Element-wise kernels, dropout, the optimizers, embedding and transpose (kernels.h).
#include <cmath>
#include <string>

#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/kernels.h"
#include "util/error.h"

namespace dlmem::cuda {

void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  DLMEM_CHECK(e == cudaSuccess, "launch of ", kernel, " failed: ", cudaGetErrorString(e));
}

namespace {

// ---------------------------------------------------------------- activations

__global__ void eltwise_fwd_k(Eltwise op, int64_t n, const float* x, float* y) {
  DLMEM_GRID_LOOP(i, n) {
    const float v = x[i];
    float r;
    switch (op) {
      case Eltwise::relu: r = v > 0.f ? v : 0.f; break;
      case Eltwise::relu6: r = fminf(fmaxf(v, 0.f), 6.f); break;
      case Eltwise::gelu: r = 0.5f * v * (1.f + erff(v * 0.70710678118654752f)); break;
      case Eltwise::tanh: r = tanhf(v); break;
      default: r = 1.f / (1.f + expf(-v)); break;
    }
    y[i] = r;
  }
}

// `s` is the forward output y (relu, relu6, tanh, sigmoid) or input x (gelu), as the
// cpu backend's use_dst_for_bwd primitives read them.
__global__ void eltwise_bwd_k(Eltwise op, int64_t n, const float* dy, const float* saved, float* dx) {
  DLMEM_GRID_LOOP(i, n) {
    const float g = dy[i], s = saved[i];
    float r;
    switch (op) {
      case Eltwise::relu: r = s > 0.f ? g : 0.f; break;
      case Eltwise::relu6: r = (s > 0.f && s < 6.f) ? g : 0.f; break;
      case Eltwise::gelu: {
        const float cdf = 0.5f * (1.f + erff(s * 0.70710678118654752f));
        const float pdf = expf(-0.5f * s * s) * 0.39894228040143268f;
        r = g * (cdf + s * pdf);
        break;
      }
      case Eltwise::tanh: r = g * (1.f - s * s); break;
      default: r = g * s * (1.f - s); break;
    }
    dx[i] = r;
  }
}

__global__ void scale_k(int64_t n, float alpha, const float* x, float* y) {
  DLMEM_GRID_LOOP(i, n) y[i] = alpha * x[i];
}

__global__ void fill_k(int64_t n, float value, float* y) {
  DLMEM_GRID_LOOP(i, n) y[i] = value;
}

// ---------------------------------------------------------------- broadcasting binary

__global__ void binary_same_k(bool mul, int64_t n, const float* a, const float* b, float* y) {
  DLMEM_GRID_LOOP(i, n) y[i] = mul ? a[i] * b[i] : a[i] + b[i];
}

__global__ void binary_bcast_k(bool mul, Broadcast bc, int64_t n, const float* a, const float* b, float* y) {
  DLMEM_GRID_LOOP(i, n) {
    int64_t rest = i, bi = 0;
    for (int d = bc.rank - 1; d >= 0; --d) {
      const int64_t q = rest / bc.dims[d];
      bi += (rest - q * bc.dims[d]) * bc.b_strides[d];
      rest = q;
    }
    y[i] = mul ? a[i] * b[bi] : a[i] + b[bi];
  }
}

// ---------------------------------------------------------------- dropout

// splitmix64's finaliser, exactly as src/runtime/cpu/kernels/elementwise.cpp (Steele, Lea,
// Flood, OOPSLA 2014): the same (seed, step, i) gives the same mask on both backends.
__host__ __device__ inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

__global__ void dropout_fwd_k(int64_t n, float p, float s, uint64_t stream, const float* x, float* y, uint8_t* mask) {
  DLMEM_GRID_LOOP(i, n) {
    const uint64_t h = mix64(stream + kGolden * (static_cast<uint64_t>(i) + 1));
    const float u = static_cast<float>(h >> 40) * 0x1p-24f;
    const bool keep = u >= p;
    const float v = x[i];
    mask[i] = keep ? 1 : 0;
    y[i] = keep ? __fmul_rn(v, s) : 0.f;
  }
}

__global__ void dropout_bwd_k(int64_t n, float s, const float* dy, const uint8_t* mask, float* dx) {
  DLMEM_GRID_LOOP(i, n) dx[i] = mask[i] ? __fmul_rn(dy[i], s) : 0.f;
}

float dropout_scale(float p) { return p < 1.f ? 1.f / (1.f - p) : 0.f; }

void check_p(float p) {
  if (!(p >= 0.f && p <= 1.f)) throw Error("dropout: p must be in [0, 1], got ", p);
}

// ---------------------------------------------------------------- causal mask, bias

__global__ void causal_mask_k(int64_t rows, int64_t t, bool backward, const float* x, float* y) {
  const int64_t n = rows * t;
  DLMEM_GRID_LOOP(idx, n) {
    const int64_t r = idx / t, j = idx - r * t, i = r % t;
    const float v = x[idx];
    y[idx] = j > i ? (backward ? 0.f : -INFINITY) : v;
  }
}

__global__ void channel_bias_k(int64_t total, int64_t k, int64_t hw, const float* b, float* y) {
  DLMEM_GRID_LOOP(i, total) y[i] += b[(i / hw) % k];
}

// ---------------------------------------------------------------- optimizers (Note [Exact scalars])

__global__ void sgd_k(int64_t n, float lr, float momentum, float wd, bool first, float* w, const float* dw, float* m) {
  DLMEM_GRID_LOOP(i, n) {
    float g = wd != 0.f ? __fadd_rn(dw[i], __fmul_rn(wd, w[i])) : dw[i];
    if (momentum != 0.f) {
      const float mi = first ? g : __fadd_rn(__fmul_rn(momentum, m[i]), g);
      m[i] = mi;
      g = mi;
    }
    w[i] = __fsub_rn(w[i], __fmul_rn(lr, g));
  }
}

__global__ void adam_k(int64_t n, float step_size, float bc2_sqrt, float b1, float b2, float omb1, float omb2, float eps,
                       float wd, float* w, const float* dw, float* m, float* v) {
  DLMEM_GRID_LOOP(i, n) {
    const float wi = w[i];
    const float g = wd != 0.f ? __fadd_rn(dw[i], __fmul_rn(wd, wi)) : dw[i];
    const float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(omb1, g));
    const float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(omb2, g), g));
    m[i] = mi;
    v[i] = vi;
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
    w[i] = __fsub_rn(wi, __fmul_rn(step_size, __fdiv_rn(mi, denom)));
  }
}

// ---------------------------------------------------------------- embedding

__global__ void embedding_fwd_k(int64_t count, int64_t vocab, int64_t dim, const int32_t* ids, const float* table,
                                float* y, DeviceError* err, int node) {
  const int64_t n = count * dim;
  DLMEM_GRID_LOOP(idx, n) {
    const int64_t i = idx / dim, j = idx - i * dim;
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab) {
      if (j == 0) record_error(err, node, kIdOutOfRange, id, i, vocab);
      y[idx] = 0.f;
      continue;
    }
    y[idx] = table[static_cast<int64_t>(id) * dim + j];
  }
}

// One block per position i whose id occurs first at i: it walks the later positions
// in order and adds each matching dy row into dtable[id] -- element by element in
// order of i, as the cpu backend does, with no two blocks writing one row.
__global__ void embedding_bwd_k(int64_t count, int64_t vocab, int64_t dim, const int32_t* ids, const float* dy,
                                float* dtable, DeviceError* err, int node) {
  __shared__ int64_t list[kThreads];
  __shared__ int warp_count[kThreads / 32];
  for (int64_t i = blockIdx.x; i < count; i += gridDim.x) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0) record_error(err, node, kIdOutOfRange, id, i, vocab);
      continue;  // uniform across the block
    }
    bool seen = false;
    for (int64_t j = threadIdx.x; j < i && !seen; j += blockDim.x) seen = ids[j] == id;
    if (__syncthreads_or(seen)) continue;
    float* row = dtable + static_cast<int64_t>(id) * dim;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int64_t base = i; base < count; base += blockDim.x) {
      const int64_t j = base + threadIdx.x;
      const bool match = j < count && ids[j] == id;
      const unsigned ballot = __ballot_sync(0xffffffffu, match);
      if (lane == 0) warp_count[warp] = __popc(ballot);
      __syncthreads();
      int before = 0, total = 0;
      for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) {
        if (w < warp) before += warp_count[w];
        total += warp_count[w];
      }
      if (match) list[before + __popc(ballot & ((1u << lane) - 1u))] = j;
      __syncthreads();
      for (int k = 0; k < total; ++k) {
        const float* g = dy + list[k] * dim;
        for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) row[d] += g[d];
      }
      __syncthreads();
    }
  }
}

// ---------------------------------------------------------------- transpose

struct Perm {
  int rank = 0;
  int64_t y_dims[8] = {};
  int64_t src_strides[8] = {};  // x's stride along y's dim i
};

__global__ void transpose_k(Perm p, int64_t n, const float* x, float* y) {
  DLMEM_GRID_LOOP(i, n) {
    int64_t rest = i, off = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t q = rest / p.y_dims[d];
      off += (rest - q * p.y_dims[d]) * p.src_strides[d];
      rest = q;
    }
    y[i] = x[off];
  }
}

}  // namespace

void eltwise_fwd(const Launch& l, Eltwise op, int64_t n, const float* x, float* y) {
  if (n == 0) return;
  eltwise_fwd_k<<<grid_for(n), kThreads, 0, l.stream>>>(op, n, x, y);
  check_launch("eltwise_fwd");
}

void eltwise_bwd(const Launch& l, Eltwise op, int64_t n, const float* dy, const float* saved, float* dx) {
  if (n == 0) return;
  eltwise_bwd_k<<<grid_for(n), kThreads, 0, l.stream>>>(op, n, dy, saved, dx);
  check_launch("eltwise_bwd");
}

void scale(const Launch& l, int64_t n, float alpha, const float* x, float* y) {
  if (n == 0) return;
  scale_k<<<grid_for(n), kThreads, 0, l.stream>>>(n, alpha, x, y);
  check_launch("scale");
}

void fill(const Launch& l, int64_t n, float value, float* y) {
  if (n == 0) return;
  fill_k<<<grid_for(n), kThreads, 0, l.stream>>>(n, value, y);
  check_launch("fill");
}

void binary(const Launch& l, bool mul, int rank, const int64_t* a_dims, const int64_t* b_dims, const float* a,
            const float* b, float* y) {
  DLMEM_CHECK(rank >= 1, "binary of rank ", rank);
  int64_t n = 1;
  bool same = true;
  for (int i = 0; i < rank; ++i) {
    DLMEM_CHECK(b_dims[i] == a_dims[i] || b_dims[i] == 1, "binary: dim ", i, " of b is ", b_dims[i], ", not 1 or ",
                a_dims[i]);
    n *= a_dims[i];
    same = same && b_dims[i] == a_dims[i];
  }
  if (n == 0) return;
  if (same) {
    binary_same_k<<<grid_for(n), kThreads, 0, l.stream>>>(mul, n, a, b, y);
    check_launch("binary");
    return;
  }
  // Merge neighbouring dims that broadcast alike; drop dims of size 1.
  Broadcast bc;
  int64_t b_stride = 1;
  int64_t merged_dims[8], merged_bs[8];
  bool merged_full[8];
  int m = 0;
  for (int i = rank - 1; i >= 0; --i) {  // innermost first
    if (a_dims[i] == 1) continue;
    const bool full = b_dims[i] != 1;
    if (m > 0 && merged_full[m - 1] == full) {
      merged_dims[m - 1] *= a_dims[i];
    } else {
      DLMEM_CHECK(m < 8, "binary: more than 8 broadcast groups");
      merged_dims[m] = a_dims[i];
      merged_full[m] = full;
      merged_bs[m] = full ? b_stride : 0;
      ++m;
    }
    if (full) b_stride *= a_dims[i];
  }
  bc.rank = m;
  for (int i = 0; i < m; ++i) {  // outermost first
    bc.dims[i] = merged_dims[m - 1 - i];
    bc.b_strides[i] = merged_bs[m - 1 - i];
  }
  binary_bcast_k<<<grid_for(n), kThreads, 0, l.stream>>>(mul, bc, n, a, b, y);
  check_launch("binary");
}

void dropout_fwd(const Launch& l, int64_t n, float p, uint64_t seed, uint64_t step, const float* x, float* y,
                 uint8_t* mask) {
  check_p(p);
  if (n == 0) return;
  const uint64_t stream = mix64(mix64(seed) + step);
  dropout_fwd_k<<<grid_for(n), kThreads, 0, l.stream>>>(n, p, dropout_scale(p), stream, x, y, mask);
  check_launch("dropout_fwd");
}

void dropout_bwd(const Launch& l, int64_t n, float p, const float* dy, const uint8_t* mask, float* dx) {
  check_p(p);
  if (n == 0) return;
  dropout_bwd_k<<<grid_for(n), kThreads, 0, l.stream>>>(n, dropout_scale(p), dy, mask, dx);
  check_launch("dropout_bwd");
}

void causal_mask(const Launch& l, int64_t batch, int64_t t, bool backward, const float* x, float* y) {
  if (batch * t == 0) return;
  causal_mask_k<<<grid_for(batch * t * t), kThreads, 0, l.stream>>>(batch * t, t, backward, x, y);
  check_launch("causal_mask");
}

void add_channel_bias(const Launch& l, int64_t n, int64_t k, int64_t hw, const float* b, float* y) {
  const int64_t total = n * k * hw;
  if (total == 0) return;
  channel_bias_k<<<grid_for(total), kThreads, 0, l.stream>>>(total, k, hw, b, y);
  check_launch("add_channel_bias");
}

void sgd_update(const Launch& l, int64_t n, float lr, float momentum, float weight_decay, bool first_step, float* w,
                const float* dw, float* m) {
  DLMEM_CHECK(momentum == 0.f || m != nullptr, "sgd_update with momentum needs its buffer");
  if (n == 0) return;
  sgd_k<<<grid_for(n), kThreads, 0, l.stream>>>(n, lr, momentum, weight_decay, first_step, w, dw, m);
  check_launch("sgd_update");
}

void adam_update(const Launch& l, int64_t n, float step_size, float bc2_sqrt, float beta1, float beta2, float eps,
                 float weight_decay, float* w, const float* dw, float* m, float* v) {
  if (n == 0) return;
  // (1 - beta) as the cpu backend computes it: in double, then rounded to float.
  const float omb1 = static_cast<float>(1.0 - beta1), omb2 = static_cast<float>(1.0 - beta2);
  adam_k<<<grid_for(n), kThreads, 0, l.stream>>>(n, step_size, bc2_sqrt, beta1, beta2, omb1, omb2, eps, weight_decay, w,
                                                  dw, m, v);
  check_launch("adam_update");
}

void embedding_fwd(const Launch& l, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids, const float* table,
                   float* y) {
  if (count * dim == 0) return;
  embedding_fwd_k<<<grid_for(count * dim), kThreads, 0, l.stream>>>(count, vocab, dim, ids, table, y, l.err, l.node);
  check_launch("embedding_fwd");
}

void embedding_bwd(const Launch& l, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids, const float* dy,
                   float* dtable) {
  if (vocab * dim == 0) return;
  const cudaError_t e = cudaMemsetAsync(dtable, 0, static_cast<size_t>(vocab * dim) * sizeof(float), l.stream);
  DLMEM_CHECK(e == cudaSuccess, "cudaMemsetAsync: ", cudaGetErrorString(e));
  if (count == 0) return;
  const unsigned blocks = static_cast<unsigned>(count < 65536 ? count : 65536);
  embedding_bwd_k<<<blocks, kThreads, 0, l.stream>>>(count, vocab, dim, ids, dy, dtable, l.err, l.node);
  check_launch("embedding_bwd");
}

void transpose(const Launch& l, int rank, const int64_t* x_dims, const int* perm, const float* x, float* y) {
  DLMEM_CHECK(rank >= 1 && rank <= 8, "transpose of rank ", rank);
  Perm p;
  p.rank = rank;
  int64_t strides[8], s = 1, n = 1;
  for (int i = rank - 1; i >= 0; --i) {
    strides[i] = s;
    s *= x_dims[i];
  }
  for (int i = 0; i < rank; ++i) {
    DLMEM_CHECK(perm[i] >= 0 && perm[i] < rank, "transpose: not a permutation");
    p.y_dims[i] = x_dims[perm[i]];
    p.src_strides[i] = strides[perm[i]];
    n *= p.y_dims[i];
  }
  if (n == 0) return;
  transpose_k<<<grid_for(n), kThreads, 0, l.stream>>>(p, n, x, y);
  check_launch("transpose");
}

}  // namespace dlmem::cuda
