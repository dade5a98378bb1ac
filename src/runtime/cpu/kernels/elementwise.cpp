// Element-wise ops: oneDNN eltwise, binary and reduction primitives, and dlmem's own loops (scale, fill, accumulate, copy, the causal mask, dropout).
// What the kernel files share, and why some are oneDNN and some loops: common.h.
#include <numbers>

#include "runtime/cpu/kernels/common.h"

namespace dlmem::cpu {

// ---------------------------------------------------------------- eltwise

namespace {

struct EltwiseAlg {
  algorithm alg;
  float alpha = 0.f, beta = 0.f;
};

// The *_use_dst_for_bwd forms let backward read y, so the forward input can be freed
// (or overwritten in place) -- see eltwise_bwd_uses_output.
EltwiseAlg eltwise_alg(Eltwise e) {
  switch (e) {
    case Eltwise::relu:
      return {algorithm::eltwise_relu_use_dst_for_bwd};
    case Eltwise::relu6:
      return {algorithm::eltwise_clip_v2_use_dst_for_bwd, 0.f, 6.f};
    case Eltwise::gelu:
      return {algorithm::eltwise_gelu_erf};
    case Eltwise::tanh:
      return {algorithm::eltwise_tanh_use_dst_for_bwd};
    case Eltwise::sigmoid:
      return {algorithm::eltwise_logistic_use_dst_for_bwd};
  }
  DLMEM_CHECK(false, "unknown Eltwise ", static_cast<int>(e));
  return {};
}

dnnl::eltwise_forward::primitive_desc eltwise_fwd_pd(const Context::Impl& im, Eltwise e,
                                                     const memory::desc& md) {
  const EltwiseAlg a = eltwise_alg(e);
  dnnl::eltwise_forward::desc d(prop_kind::forward_training, a.alg, md, a.alpha, a.beta);
  return {d, user_scratchpad_attr(), im.engine};
}

}  // namespace

bool eltwise_bwd_uses_output(Eltwise e) { return e != Eltwise::gelu; }

void eltwise_fwd(Context& ctx, Eltwise e, int64_t n, const float* x, float* y) {
  if (n == 0) return;
  Context::Impl& im = enter(ctx);
  const memory::desc md = plain_md({n});
  const CachedPrimitive& p = im.get(make_key("eltwise_fwd", static_cast<int>(e), n), [&] {
    return cached<dnnl::eltwise_forward>(eltwise_fwd_pd(im, e, md));
  });
  im.execute(p, {{DNNL_ARG_SRC, im.wrap(md, x)}, {DNNL_ARG_DST, im.wrap(md, y)}}, nullptr,
             /*use_internal=*/true);
}

void eltwise_bwd(Context& ctx, Eltwise e, int64_t n, const float* dy, const float* saved,
                 float* dx) {
  if (n == 0) return;
  Context::Impl& im = enter(ctx);
  const memory::desc md = plain_md({n});
  const CachedPrimitive& p = im.get(make_key("eltwise_bwd", static_cast<int>(e), n), [&] {
    const EltwiseAlg a = eltwise_alg(e);
    dnnl::eltwise_backward::desc d(a.alg, md, md, a.alpha, a.beta);
    dnnl::eltwise_backward::primitive_desc pd(d, user_scratchpad_attr(), im.engine,
                                              eltwise_fwd_pd(im, e, md));
    return cached<dnnl::eltwise_backward>(pd);
  });
  im.execute(p,
             {{DNNL_ARG_DIFF_DST, im.wrap(md, dy)},
              {eltwise_bwd_uses_output(e) ? DNNL_ARG_DST : DNNL_ARG_SRC, im.wrap(md, saved)},
              {DNNL_ARG_DIFF_SRC, im.wrap(md, dx)}},
             nullptr, /*use_internal=*/true);
}

// ---------------------------------------------------------------- binary, reduction

void binary(Context& ctx, Binary op, int rank, const int64_t* a_dims, const int64_t* b_dims,
            const float* a, const float* b, float* y) {
  DLMEM_CHECK(rank >= 1 && rank <= DNNL_MAX_NDIMS, "binary of rank ", rank);
  for (int i = 0; i < rank; ++i)
    DLMEM_CHECK(b_dims[i] == a_dims[i] || b_dims[i] == 1, "binary: dim ", i, " of b is ", b_dims[i],
                ", not 1 or a's ", a_dims[i]);
  Context::Impl& im = enter(ctx);
  const memory::desc a_md = plain_md(to_dims(rank, a_dims)), b_md = plain_md(to_dims(rank, b_dims));
  std::string key = make_key("binary", static_cast<int>(op));
  append_dims(key, rank, a_dims);
  append_dims(key, rank, b_dims);
  const CachedPrimitive& p = im.get(key, [&] {
    const algorithm alg = op == Binary::add   ? algorithm::binary_add
                          : op == Binary::mul ? algorithm::binary_mul
                          : op == Binary::sub ? algorithm::binary_sub
                                              : algorithm::binary_div;
    dnnl::binary::desc d(alg, a_md, b_md, a_md);
    return cached<dnnl::binary>(dnnl::binary::primitive_desc(d, user_scratchpad_attr(), im.engine));
  });
  im.execute(p,
             {{DNNL_ARG_SRC_0, im.wrap(a_md, a)},
              {DNNL_ARG_SRC_1, im.wrap(b_md, b)},
              {DNNL_ARG_DST, im.wrap(a_md, y)}},
             nullptr, /*use_internal=*/true);
}

namespace {

const CachedPrimitive* reduce_sum_prim(Context::Impl& im, int rank, const int64_t* x_dims,
                                       const int64_t* y_dims) {
  DLMEM_CHECK(rank >= 1 && rank <= DNNL_MAX_NDIMS, "reduce_sum of rank ", rank);
  bool same = true;
  for (int i = 0; i < rank; ++i) {
    DLMEM_CHECK(y_dims[i] == x_dims[i] || y_dims[i] == 1, "reduce_sum: dim ", i, " of y is ",
                y_dims[i], ", not 1 or x's ", x_dims[i]);
    same = same && y_dims[i] == x_dims[i];
  }
  if (same) return nullptr;  // nothing to reduce: a copy
  std::string key = "reduce_sum";
  append_dims(key, rank, x_dims);
  append_dims(key, rank, y_dims);
  return &im.get(key, [&] {
    dnnl::reduction::desc d(algorithm::reduction_sum, plain_md(to_dims(rank, x_dims)),
                            plain_md(to_dims(rank, y_dims)), 0.f, 0.f);
    return cached<dnnl::reduction>(
        dnnl::reduction::primitive_desc(d, user_scratchpad_attr(), im.engine));
  });
}

}  // namespace

size_t reduce_sum_scratch_bytes(Context& ctx, int rank, const int64_t* x_dims,
                                const int64_t* y_dims) {
  const CachedPrimitive* p = reduce_sum_prim(enter(ctx), rank, x_dims, y_dims);
  return p ? p->scratch_bytes() : 0;
}

void reduce_sum(Context& ctx, int rank, const int64_t* x_dims, const int64_t* y_dims,
                const float* x, float* y, void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive* p = reduce_sum_prim(im, rank, x_dims, y_dims);
  if (!p) {
    int64_t count = 1;
    for (int i = 0; i < rank; ++i) count *= x_dims[i];
    if (y != x) std::memcpy(y, x, static_cast<size_t>(count) * sizeof(float));
    return;
  }
  im.execute(*p,
             {{DNNL_ARG_SRC, im.wrap(plain_md(to_dims(rank, x_dims)), x)},
              {DNNL_ARG_DST, im.wrap(plain_md(to_dims(rank, y_dims)), y)}},
             scratch);
}

// ---------------------------------------------------------------- expand

void expand(Context& ctx, int rank, const int64_t* x_dims, const int64_t* y_dims, const float* x,
            float* y) {
  enter(ctx);
  // x's stride along each output dim (0 where x is broadcast), then an odometer over
  // the output's leading dims with the innermost dim as a contiguous run or a fill.
  std::vector<int64_t> stride(static_cast<size_t>(rank), 0);
  int64_t s = 1, total = 1;
  for (int i = rank - 1; i >= 0; --i) {
    DLMEM_CHECK(x_dims[i] == y_dims[i] || x_dims[i] == 1, "expand: dim ", i, " of x is ", x_dims[i],
                ", not 1 or y's ", y_dims[i]);
    stride[static_cast<size_t>(i)] = x_dims[i] == 1 ? 0 : s;
    s *= x_dims[i];
    total *= y_dims[i];
  }
  if (total == 0) return;
  const int64_t inner = rank ? y_dims[rank - 1] : 1, rows = total / inner;
  const int64_t inner_stride = rank ? stride[static_cast<size_t>(rank - 1)] : 0;
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0, rest = r;
    for (int i = rank - 2; i >= 0; --i) {
      off += (rest % y_dims[i]) * stride[static_cast<size_t>(i)];
      rest /= y_dims[i];
    }
    float* yr = y + r * inner;
    if (inner_stride) std::memcpy(yr, x + off, static_cast<size_t>(inner) * sizeof(float));
    else std::fill(yr, yr + inner, x[off]);
  }
}

// ---------------------------------------------------------------- math

void math_fwd(Context& ctx, Math m, int64_t n, float alpha, const float* x, float* y) {
  enter(ctx);
  auto run = [&](auto f) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
  };
  switch (m) {
    case Math::pow:
      // x^2 as PyTorch computes it (x * x, exact) and x^0.5 as sqrt.
      if (alpha == 2.f) run([](float v) { return v * v; });
      else if (alpha == 1.f) run([](float v) { return v; });
      else run([alpha](float v) { return std::pow(v, alpha); });
      break;
    case Math::sqrt: run([](float v) { return std::sqrt(v); }); break;
    case Math::erf: run([](float v) { return std::erf(v); }); break;
    case Math::exp: run([](float v) { return std::exp(v); }); break;
    case Math::log: run([](float v) { return std::log(v); }); break;
    case Math::leaky_relu: run([alpha](float v) { return v > 0.f ? v : v * alpha; }); break;
  }
}

void erf_bwd(Context& ctx, int64_t n, const float* dy, const float* x, float* dx) {
  enter(ctx);
  const float k = 2.f / std::sqrt(std::numbers::pi_v<float>);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * k * std::exp(-x[i] * x[i]);
}

void leaky_relu_bwd(Context& ctx, int64_t n, float alpha, const float* dy, const float* x, float* dx) {
  enter(ctx);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.f ? dy[i] : dy[i] * alpha;
}

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
                 float* y, uint8_t* mask, int64_t offset) {
  check_dropout_p(p);
  enter(ctx);
  const uint64_t stream = dropout_stream(seed, step);
  const float s = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n >= kParallelMin / 8)
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = dropout_uniform(stream, offset + i) >= p;
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

}  // namespace dlmem::cpu
