// Softmax and log-softmax (oneDNN) and softmax cross-entropy (dlmem's loops).
// What the kernel files share, and why some are oneDNN and some loops: common.h.
#include "runtime/cpu/kernels/common.h"

namespace dlmem::cpu {

// ---------------------------------------------------------------- softmax, log-softmax

namespace {

// oneDNN's softmax and logsoftmax primitives have the same interface: one template
// over the forward and backward primitive types serves both.
template <typename Fwd>
typename Fwd::primitive_desc row_softmax_fwd_pd(const Context::Impl& im, const memory::desc& md) {
  typename Fwd::desc d(prop_kind::forward_training, md, 1);
  return {d, user_scratchpad_attr(), im.engine};
}

template <typename Fwd>
void row_softmax_fwd(Context& ctx, const char* key, int64_t rows, int64_t cols, const float* x, float* y) {
  if (rows == 0) return;
  Context::Impl& im = enter(ctx);
  const memory::desc md = plain_md({rows, cols});
  const CachedPrimitive& p = im.get(make_key(key, rows, cols), [&] { return cached<Fwd>(row_softmax_fwd_pd<Fwd>(im, md)); });
  im.execute(p, {{DNNL_ARG_SRC, im.wrap(md, x)}, {DNNL_ARG_DST, im.wrap(md, y)}}, nullptr, /*use_internal=*/true);
}

template <typename Fwd, typename Bwd>
void row_softmax_bwd(Context& ctx, const char* key, int64_t rows, int64_t cols, const float* dy, const float* y,
                     float* dx) {
  if (rows == 0) return;
  Context::Impl& im = enter(ctx);
  const memory::desc md = plain_md({rows, cols});
  const CachedPrimitive& p = im.get(make_key(key, rows, cols), [&] {
    typename Bwd::desc d(md, md, 1);
    typename Bwd::primitive_desc pd(d, user_scratchpad_attr(), im.engine, row_softmax_fwd_pd<Fwd>(im, md));
    return cached<Bwd>(pd);
  });
  im.execute(p,
             {{DNNL_ARG_DST, im.wrap(md, y)}, {DNNL_ARG_DIFF_DST, im.wrap(md, dy)}, {DNNL_ARG_DIFF_SRC, im.wrap(md, dx)}},
             nullptr, /*use_internal=*/true);
}

}  // namespace

void softmax_fwd(Context& ctx, int64_t rows, int64_t cols, const float* x, float* y) {
  row_softmax_fwd<dnnl::softmax_forward>(ctx, "softmax_fwd", rows, cols, x, y);
}
void softmax_bwd(Context& ctx, int64_t rows, int64_t cols, const float* dy, const float* y, float* dx) {
  row_softmax_bwd<dnnl::softmax_forward, dnnl::softmax_backward>(ctx, "softmax_bwd", rows, cols, dy, y, dx);
}
void log_softmax_fwd(Context& ctx, int64_t rows, int64_t cols, const float* x, float* y) {
  row_softmax_fwd<dnnl::logsoftmax_forward>(ctx, "log_softmax_fwd", rows, cols, x, y);
}
void log_softmax_bwd(Context& ctx, int64_t rows, int64_t cols, const float* dy, const float* y, float* dx) {
  row_softmax_bwd<dnnl::logsoftmax_forward, dnnl::logsoftmax_backward>(ctx, "log_softmax_bwd", rows, cols, dy, y, dx);
}

// ---------------------------------------------------------------- softmax cross-entropy

void softmax_xent_fwd(Context& ctx, int64_t rows, int64_t cols, const float* logits,
                      const int32_t* labels, float* loss, float* probs) {
  DLMEM_CHECK(rows > 0 && cols > 0, "softmax_xent of ", rows, "x", cols);
  check_indices("softmax_xent_fwd", "label", "of row", rows, cols, labels);
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
  check_indices("softmax_xent_bwd", "label", "of row", rows, cols, labels);
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

}  // namespace dlmem::cpu
