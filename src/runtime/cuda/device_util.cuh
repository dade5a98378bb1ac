// Device-side helpers shared by the .cu files: grid sizes, fixed-order block sums,
// error recording (Note [Device errors] in kernels.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/cuda/kernels.h"

namespace dlmem::cuda {

inline constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65536 ? 65536 : b));
}

__host__ __device__ inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

#define DLMEM_GRID_LOOP(i, n)                                                                   \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Records the first device error (later ones are dropped).
__device__ inline void record_error(DeviceError* err, int node, int code, long long a, long long b, long long c) {
  if (!err) return;
  if (atomicCAS(&err->code, 0, -1) == 0) {
    err->node = node;
    err->a = a;
    err->b = b;
    err->c = c;
    __threadfence();
    atomicExch(&err->code, code);
  }
}

// Sum over the block in a fixed tree (shuffles within warps, then warp 0 over the
// warp sums): the same bits every run for a fixed blockDim (a multiple of 32). Every
// thread of the block must call it; all get the result.
template <typename T>
__device__ inline T block_sum(T v, T* shared /* >= 32 */) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = static_cast<int>(blockDim.x >> 5);
    v = lane < warps ? shared[lane] : T(0);
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  const T r = shared[0];
  __syncthreads();
  return r;
}

__device__ inline float block_max(float v, float* shared /* >= 32 */) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = static_cast<int>(blockDim.x >> 5);
    v = lane < warps ? shared[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  const float r = shared[0];
  __syncthreads();
  return r;
}

template <typename T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return __shfl_sync(0xffffffffu, v, 0);
}

}  // namespace dlmem::cuda
