// The CPU kernels that are dlmem's own loops. oneDNN has no primitive for dropout,
// losses, embedding, optimizer updates, the causal mask or slice's gradient; the
// simple element-wise ones (scale, fill, accumulate, copy) are loops too, because a
// oneDNN primitive bakes its scalars (alpha, the fill value) into its descriptor and
// would need a new primitive per value.
//
// Determinism: loops run in parallel only over independent outputs, and every sum
// has a fixed order that depends neither on the thread count nor on scheduling
// (fixed-size chunks combined in chunk order).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/cpu/context_impl.h"

namespace dlmem::cpu {

namespace {

// Below this many elements an element-wise loop runs on the calling thread: starting
// the OpenMP team costs more than the loop.
constexpr int64_t kParallelMin = 1 << 15;

}  // namespace

// ---------------------------------------------------------------- element-wise

void scale(Context& ctx, int64_t n, float alpha, const float* x, float* y) {
  enter(ctx);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
}

void copy(Context& ctx, size_t bytes, const void* src, void* dst) {
  if (bytes == 0 || src == dst) return;
  std::memcpy(dst, src, bytes);
}

void fill(Context& ctx, int64_t n, float value, float* y) {
  enter(ctx);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

void accumulate(Context& ctx, int64_t n, const float* x, float* y) {
  enter(ctx);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// ---------------------------------------------------------------- causal mask

void causal_mask_fwd(Context& ctx, int64_t batch, int64_t t, const float* x, float* y) {
  enter(ctx);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int64_t rows = batch * t;
#pragma omp parallel for schedule(static) if (rows * t >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % t;  // query position; keys j > i are masked
    const float* xr = x + r * t;
    float* yr = y + r * t;
    if (yr != xr) std::memcpy(yr, xr, static_cast<size_t>(i + 1) * sizeof(float));
    for (int64_t j = i + 1; j < t; ++j) yr[j] = neg_inf;
  }
}

void causal_mask_bwd(Context& ctx, int64_t batch, int64_t t, const float* dy, float* dx) {
  enter(ctx);
  const int64_t rows = batch * t;
#pragma omp parallel for schedule(static) if (rows * t >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % t;
    const float* dyr = dy + r * t;
    float* dxr = dx + r * t;
    if (dxr != dyr) std::memcpy(dxr, dyr, static_cast<size_t>(i + 1) * sizeof(float));
    for (int64_t j = i + 1; j < t; ++j) dxr[j] = 0.f;
  }
}

// ---------------------------------------------------------------- slice gradient

void slice_bwd(Context& ctx, int rank, const int64_t* x_dims, int axis, int64_t start, int64_t len,
               const float* dy, float* dx) {
  DLMEM_CHECK(rank >= 1 && axis >= 0 && axis < rank, "slice_bwd of rank ", rank, " along ", axis);
  DLMEM_CHECK(start >= 0 && len >= 0 && start + len <= x_dims[axis], "slice_bwd [", start, ", ",
              start + len, ") of a dim of ", x_dims[axis]);
  enter(ctx);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= x_dims[i];
  for (int i = axis + 1; i < rank; ++i) inner *= x_dims[i];
  const int64_t dim = x_dims[axis];
  const size_t f = sizeof(float);
#pragma omp parallel for schedule(static) if (outer * dim * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    float* d = dx + o * dim * inner;
    std::memset(d, 0, static_cast<size_t>(start * inner) * f);
    std::memcpy(d + start * inner, dy + o * len * inner, static_cast<size_t>(len * inner) * f);
    std::memset(d + (start + len) * inner, 0, static_cast<size_t>((dim - start - len) * inner) * f);
  }
}

// ---------------------------------------------------------------- bias gradient

void bias_grad(Context& ctx, int64_t m, int64_t n, const float* dy, float* db) {
  enter(ctx);
  // Parallel over blocks of columns; each column sums its rows in order, in double.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (m * n >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kBlock, width = std::min(kBlock, n - j0);
    double acc[kBlock] = {};
    for (int64_t i = 0; i < m; ++i) {
      const float* row = dy + i * n + j0;
      for (int64_t j = 0; j < width; ++j) acc[j] += row[j];
    }
    for (int64_t j = 0; j < width; ++j) db[j0 + j] = static_cast<float>(acc[j]);
  }
}

// ---------------------------------------------------------------- dropout

namespace {

// splitmix64's finaliser (Steele, Lea, Flood: "Fast splittable pseudorandom number
// generators", OOPSLA 2014): a bijective 64-bit mix with good avalanche.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// Counter-based: element i of the stream for (seed, step) is splitmix64's i-th output
// from the state mix64(mix64(seed) + step), so any element is computed independently
// (parallel, and replayable by recomputation) and every (seed, step) has its own stream.
uint64_t dropout_stream(uint64_t seed, uint64_t step) { return mix64(mix64(seed) + step); }

// Uniform in [0, 1) with 24 random bits, every value exact in float.
float dropout_uniform(uint64_t stream, int64_t i) {
  const uint64_t h = mix64(stream + kGolden * (static_cast<uint64_t>(i) + 1));
  return static_cast<float>(h >> 40) * 0x1p-24f;
}

void check_dropout_p(float p) {
  if (!(p >= 0.f && p <= 1.f)) throw invalid_input("dropout: p must be in [0, 1], got ", p);
}

// 1 / (1 - p); p = 1 drops everything (and scales by 0, as PyTorch does).
float dropout_scale(float p) { return p < 1.f ? 1.f / (1.f - p) : 0.f; }

}  // namespace

void dropout_fwd(Context& ctx, int64_t n, float p, uint64_t seed, uint64_t step, const float* x,
                 float* y, uint8_t* mask) {
  check_dropout_p(p);
  enter(ctx);
  const uint64_t stream = dropout_stream(seed, step);
  const float s = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n >= kParallelMin / 8)
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = dropout_uniform(stream, i) >= p;
    mask[i] = keep ? 1 : 0;
    y[i] = keep ? x[i] * s : 0.f;
  }
}

void dropout_bwd(Context& ctx, int64_t n, float p, const float* dy, const uint8_t* mask,
                 float* dx) {
  check_dropout_p(p);
  enter(ctx);
  const float s = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = mask[i] ? dy[i] * s : 0.f;
}

// ---------------------------------------------------------------- softmax cross-entropy

namespace {

void check_labels(const char* op, int64_t rows, int64_t cols, const int32_t* labels) {
  for (int64_t r = 0; r < rows; ++r)
    if (labels[r] < 0 || labels[r] >= cols)
      throw invalid_input(op, ": label ", labels[r], " of row ", r, " is out of range [0, ", cols,
                          ")");
}

}  // namespace

void softmax_xent_fwd(Context& ctx, int64_t rows, int64_t cols, const float* logits,
                      const int32_t* labels, float* loss, float* probs) {
  DLMEM_CHECK(rows > 0 && cols > 0, "softmax_xent of ", rows, "x", cols);
  check_labels("softmax_xent_fwd", rows, cols, labels);
  enter(ctx);
  // Rows in fixed chunks; each chunk's loss is summed in row order, then the chunks in
  // chunk order: the same bits for any thread count.
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    double sum = 0.0;
    for (int64_t r = ch * kChunk; r < std::min(rows, (ch + 1) * kChunk); ++r) {
      const float* x = logits + r * cols;
      float* p = probs + r * cols;
      const float mx = *std::max_element(x, x + cols);  // exp(x - max) <= 1: no overflow
      double se = 0.0;
      for (int64_t j = 0; j < cols; ++j) {
        p[j] = std::exp(x[j] - mx);
        se += p[j];
      }
      const float inv = static_cast<float>(1.0 / se);
      for (int64_t j = 0; j < cols; ++j) p[j] *= inv;
      // -log softmax(x)[label] = log(sum exp(x - max)) - (x[label] - max)
      sum += std::log(se) - (static_cast<double>(x[labels[r]]) - mx);
    }
    partial[static_cast<size_t>(ch)] = sum;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  loss[0] = static_cast<float>(total / static_cast<double>(rows));
}

void softmax_xent_bwd(Context& ctx, int64_t rows, int64_t cols, const float* dloss,
                      const float* probs, const int32_t* labels, float* dlogits) {
  DLMEM_CHECK(rows > 0 && cols > 0, "softmax_xent of ", rows, "x", cols);
  check_labels("softmax_xent_bwd", rows, cols, labels);
  enter(ctx);
  const float g = static_cast<float>(static_cast<double>(dloss[0]) / static_cast<double>(rows));
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    // probs[label] is read before the row is written: dlogits may be probs' own memory
    // (the op's in-place pair), and the numbers are the same either way.
    const float* p = probs + r * cols;
    float* d = dlogits + r * cols;
    const float at_label = (p[labels[r]] - 1.f) * g;
    for (int64_t j = 0; j < cols; ++j) d[j] = p[j] * g;
    d[labels[r]] = at_label;
  }
}

// ---------------------------------------------------------------- embedding

namespace {

void check_ids(const char* op, int64_t count, int64_t vocab, const int32_t* ids) {
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw invalid_input(op, ": id ", ids[i], " at position ", i, " is out of range [0, ", vocab,
                          ")");
}

}  // namespace

void embedding_fwd(Context& ctx, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids,
                   const float* table, float* y) {
  check_ids("embedding_fwd", count, vocab, ids);
  enter(ctx);
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMin)
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(y + i * dim, table + static_cast<int64_t>(ids[i]) * dim,
                static_cast<size_t>(dim) * sizeof(float));
}

void embedding_bwd(Context& ctx, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids,
                   const float* dy, float* dtable) {
  check_ids("embedding_bwd", count, vocab, ids);
  enter(ctx);
  fill(ctx, vocab * dim, 0.f, dtable);
  // Parallel over blocks of columns (a cache line of floats each): every element of
  // dtable receives its contributions in order of i, whatever the thread count.
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (dim + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kBlock, j1 = std::min(dim, j0 + kBlock);
    for (int64_t i = 0; i < count; ++i) {
      float* row = dtable + static_cast<int64_t>(ids[i]) * dim;
      const float* g = dy + i * dim;
      for (int64_t j = j0; j < j1; ++j) row[j] += g[j];
    }
  }
}

// ---------------------------------------------------------------- optimizers

void sgd_update(Context& ctx, int64_t n, float lr, float momentum, float weight_decay,
                bool first_step, float* w, const float* dw, float* m) {
  DLMEM_CHECK(momentum == 0.f || m != nullptr, "sgd_update with momentum needs its buffer");
  enter(ctx);
  // torch.optim.SGD, per element: d_p = grad.add(param, alpha=weight_decay);
  // buf.mul_(momentum).add_(d_p) (buf = d_p first); param.add_(buf, alpha=-lr).
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float g = weight_decay != 0.f ? dw[i] + weight_decay * w[i] : dw[i];
    if (momentum != 0.f) {
      m[i] = first_step ? g : momentum * m[i] + g;
      g = m[i];
    }
    w[i] -= lr * g;
  }
}

void adam_update(Context& ctx, int64_t n, float lr, float beta1, float beta2, float eps,
                 float weight_decay, int64_t step, float* w, const float* dw, float* m, float* v) {
  DLMEM_CHECK(step >= 1, "adam_update step counts from 1, got ", step);
  enter(ctx);
  // torch.optim.Adam (amsgrad off): the bias corrections in double as Python computes
  // them, then used as float scalars, as the tensor ops do.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float one_minus_b1 = static_cast<float>(1.0 - beta1);
  const float one_minus_b2 = static_cast<float>(1.0 - beta2);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = weight_decay != 0.f ? dw[i] + weight_decay * w[i] : dw[i];
    m[i] = beta1 * m[i] + one_minus_b1 * g;
    v[i] = beta2 * v[i] + one_minus_b2 * g * g;
    const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    w[i] -= step_size * (m[i] / denom);
  }
}

void batch_norm_update_running(Context& ctx, int64_t c, int64_t count, float momentum,
                               const float* mean, const float* var, float* running_mean,
                               float* running_var) {
  if (count < 2)
    throw invalid_input(
        "batch norm in training needs more than 1 value per channel (batch x height x "
        "width), got ",
        count);
  enter(ctx);
  const float unbias = static_cast<float>(static_cast<double>(count) / (count - 1));
  for (int64_t i = 0; i < c; ++i) {
    running_mean[i] = (1.f - momentum) * running_mean[i] + momentum * mean[i];
    running_var[i] = (1.f - momentum) * running_var[i] + momentum * (var[i] * unbias);
  }
}

}  // namespace dlmem::cpu
