// Softmax over the last dimension and the mean softmax cross-entropy (kernels.h). One
// block per row; every sum is a fixed-order block tree (Note [Determinism]).
#include "runtime/cuda/device_util.cuh"
#include "runtime/cuda/kernels.h"
#include "util/error.h"

namespace dlmem::cuda {

namespace {

// Threads per row: a function of the row length only.
int row_threads(int64_t cols) { return cols <= 256 ? 64 : (cols <= 2048 ? 128 : 256); }
unsigned row_grid(int64_t rows) { return static_cast<unsigned>(rows < 65536 ? rows : 65536); }

// Reads the whole row for the max and the sum before any thread writes (y may be x).
__global__ void softmax_fwd_k(int64_t rows, int64_t cols, const float* x, float* y) {
  __shared__ float fs[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, xr[j]);
    mx = block_max(mx, fs);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(xr[j] - mx);
    s = block_sum(s, fs);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = expf(xr[j] - mx) / s;
  }
}

// dx = y * (dy - sum(dy * y)); dx may be dy or y.
__global__ void softmax_bwd_k(int64_t rows, int64_t cols, const float* dy, const float* y, float* dx) {
  __shared__ float fs[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* dyr = dy + r * cols;
    const float* yr = y + r * cols;
    float* dxr = dx + r * cols;
    float dot = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dot += dyr[j] * yr[j];
    dot = block_sum(dot, fs);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float yj = yr[j];
      dxr[j] = yj * (dyr[j] - dot);
    }
  }
}

// probs = softmax(logits); row_loss[r] = log(sum exp(x - max)) - (x[label] - max), in
// double as the cpu backend computes it.
__global__ void xent_fwd_k(int64_t rows, int64_t cols, const float* logits, const int32_t* labels, float* probs,
                           double* row_loss, DeviceError* err, int node) {
  __shared__ float fs[32];
  __shared__ double ds[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* x = logits + r * cols;
    float* p = probs + r * cols;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, x[j]);
    mx = block_max(mx, fs);
    double se = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float e = expf(x[j] - mx);
      p[j] = e;
      se += e;
    }
    se = block_sum(se, ds);
    const float inv = static_cast<float>(1.0 / se);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) p[j] *= inv;
    if (threadIdx.x == 0) {
      const int32_t lab = labels[r];
      if (lab < 0 || lab >= cols) {
        record_error(err, node, kLabelOutOfRange, lab, r, cols);
        row_loss[r] = 0.0;
      } else {
        row_loss[r] = log(se) - (static_cast<double>(x[lab]) - mx);
      }
    }
  }
}

// loss[0] = mean of the row losses: contiguous stripes per thread, then the block tree.
__global__ void xent_mean_k(int64_t rows, const double* row_loss, float* loss) {
  __shared__ double ds[32];
  const int64_t stripe = (rows + blockDim.x - 1) / blockDim.x;
  double s = 0.0;
  const int64_t r0 = threadIdx.x * stripe, r1 = imin(rows, r0 + stripe);
  for (int64_t r = r0; r < r1; ++r) s += row_loss[r];
  s = block_sum(s, ds);
  if (threadIdx.x == 0) loss[0] = static_cast<float>(s / static_cast<double>(rows));
}

// dlogits = dloss * (probs - onehot(label)) / rows
__global__ void xent_bwd_k(int64_t rows, int64_t cols, const float* dloss, const float* probs, const int32_t* labels,
                           float* dlogits, DeviceError* err, int node) {
  const float g = static_cast<float>(static_cast<double>(dloss[0]) / static_cast<double>(rows));
  const int64_t n = rows * cols;
  DLMEM_GRID_LOOP(i, n) {
    const int64_t r = i / cols, j = i - r * cols;
    const int32_t lab = labels[r];
    if (lab < 0 || lab >= cols) {
      if (j == 0) record_error(err, node, kLabelOutOfRange, lab, r, cols);
      dlogits[i] = 0.f;
      continue;
    }
    const float p = probs[i];
    dlogits[i] = j == lab ? (p - 1.f) * g : p * g;
  }
}

}  // namespace

void softmax_fwd(const Launch& l, int64_t rows, int64_t cols, const float* x, float* y) {
  if (rows * cols == 0) return;
  softmax_fwd_k<<<row_grid(rows), row_threads(cols), 0, l.stream>>>(rows, cols, x, y);
  check_launch("softmax_fwd");
}

void softmax_bwd(const Launch& l, int64_t rows, int64_t cols, const float* dy, const float* y, float* dx) {
  if (rows * cols == 0) return;
  softmax_bwd_k<<<row_grid(rows), row_threads(cols), 0, l.stream>>>(rows, cols, dy, y, dx);
  check_launch("softmax_bwd");
}

size_t softmax_xent_workspace(int64_t rows) { return static_cast<size_t>(rows) * sizeof(double); }

void softmax_xent_fwd(const Launch& l, int64_t rows, int64_t cols, const float* logits, const int32_t* labels,
                      float* loss, float* probs, void* workspace) {
  DLMEM_CHECK(rows > 0 && cols > 0, "softmax_xent of ", rows, "x", cols);
  DLMEM_CHECK(workspace != nullptr, "softmax_xent needs its workspace");
  auto* row_loss = static_cast<double*>(workspace);
  xent_fwd_k<<<row_grid(rows), row_threads(cols), 0, l.stream>>>(rows, cols, logits, labels, probs, row_loss, l.err,
                                                                  l.node);
  check_launch("softmax_xent_fwd");
  xent_mean_k<<<1, 1024, 0, l.stream>>>(rows, row_loss, loss);
  check_launch("softmax_xent_mean");
}

void softmax_xent_bwd(const Launch& l, int64_t rows, int64_t cols, const float* dloss, const float* probs,
                      const int32_t* labels, float* dlogits) {
  DLMEM_CHECK(rows > 0 && cols > 0, "softmax_xent of ", rows, "x", cols);
  xent_bwd_k<<<grid_for(rows * cols), kThreads, 0, l.stream>>>(rows, cols, dloss, probs, labels, dlogits, l.err,
                                                                l.node);
  check_launch("softmax_xent_bwd");
}

}  // namespace dlmem::cuda
