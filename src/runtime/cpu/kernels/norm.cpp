// Layer normalisation (oneDNN) and the oneDNN batch normalisation the tests compare batch_norm.cpp's loops with.
// What the kernel files share, and why some are oneDNN and some loops: common.h.
#include "runtime/cpu/kernels/common.h"

namespace dlmem::cpu {

// ---------------------------------------------------------------- batch normalisation

// oneDNN's batch norm, no longer behind the batch_norm ops (batch_norm.cpp says
// why: on plain NCHW it is oneDNN's slow generic path); kept as the reference the
// tests compare dlmem's own kernels with.

namespace {

// The scratch queries take no epsilon; the scratchpad does not depend on it, so they
// create (and cache) the primitive with this one.
constexpr float kQueryEps = 1e-5f;

const auto kScaleShift =
    dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;

// kShiftArgNote: with use_shift, oneDNN 2.6 lists DNNL_ARG_SHIFT among the backward
// primitive's inputs (the argument check is shared with forward) and refuses to
// execute without it, although the gradients do not depend on beta and the backward
// never reads it. The kernels' signatures have no beta, so gamma -- same shape,
// read-only -- stands in.

struct BnMds {
  memory::desc data, channel;
};

BnMds bn_mds(int64_t n, int64_t c, int64_t hw) {
  DLMEM_CHECK(n > 0 && c > 0 && hw > 0, "batch norm of ", n, "x", c, "x", hw);
  return {plain_md({n, c, hw, 1}), plain_md({c})};
}

dnnl::batch_normalization_forward::primitive_desc bn_fwd_pd(const Context::Impl& im, const BnMds& m,
                                                            float eps, bool training) {
  const auto flags =
      training ? kScaleShift : kScaleShift | dnnl::normalization_flags::use_global_stats;
  dnnl::batch_normalization_forward::desc d(
      training ? prop_kind::forward_training : prop_kind::forward_inference, m.data, eps, flags);
  return {d, user_scratchpad_attr(), im.engine};
}

const CachedPrimitive& bn_fwd_prim(Context::Impl& im, int64_t n, int64_t c, int64_t hw, float eps,
                                   bool training) {
  return im.get(make_key("bn_fwd", n, c, hw, bits(eps), training), [&] {
    return cached<dnnl::batch_normalization_forward>(
        bn_fwd_pd(im, bn_mds(n, c, hw), eps, training));
  });
}

const CachedPrimitive& bn_bwd_prim(Context::Impl& im, int64_t n, int64_t c, int64_t hw, float eps) {
  return im.get(make_key("bn_bwd", n, c, hw, bits(eps)), [&] {
    const BnMds m = bn_mds(n, c, hw);
    dnnl::batch_normalization_backward::desc d(prop_kind::backward, m.data, m.data, eps,
                                               kScaleShift);
    dnnl::batch_normalization_backward::primitive_desc pd(d, user_scratchpad_attr(), im.engine,
                                                          bn_fwd_pd(im, m, eps, true));
    return cached<dnnl::batch_normalization_backward>(pd);
  });
}

}  // namespace

size_t batch_norm_fwd_onednn_scratch_bytes(Context& ctx, int64_t n, int64_t c, int64_t hw,
                                           bool training) {
  return bn_fwd_prim(enter(ctx), n, c, hw, kQueryEps, training).scratch_bytes();
}

void batch_norm_fwd_training_onednn(Context& ctx, int64_t n, int64_t c, int64_t hw, float eps,
                                    const float* x, const float* gamma, const float* beta,
                                    float* y, float* mean, float* var, void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = bn_fwd_prim(im, n, c, hw, eps, true);
  const BnMds m = bn_mds(n, c, hw);
  im.execute(p,
             {{DNNL_ARG_SRC, im.wrap(m.data, x)},
              {DNNL_ARG_SCALE, im.wrap(m.channel, gamma)},
              {DNNL_ARG_SHIFT, im.wrap(m.channel, beta)},
              {DNNL_ARG_DST, im.wrap(m.data, y)},
              {DNNL_ARG_MEAN, im.wrap(m.channel, mean)},
              {DNNL_ARG_VARIANCE, im.wrap(m.channel, var)}},
             scratch);
}

void batch_norm_fwd_inference_onednn(Context& ctx, int64_t n, int64_t c, int64_t hw, float eps,
                                     const float* x, const float* gamma, const float* beta,
                                     const float* mean, const float* var, float* y,
                                     void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = bn_fwd_prim(im, n, c, hw, eps, false);
  const BnMds m = bn_mds(n, c, hw);
  im.execute(p,
             {{DNNL_ARG_SRC, im.wrap(m.data, x)},
              {DNNL_ARG_SCALE, im.wrap(m.channel, gamma)},
              {DNNL_ARG_SHIFT, im.wrap(m.channel, beta)},
              {DNNL_ARG_MEAN, im.wrap(m.channel, mean)},
              {DNNL_ARG_VARIANCE, im.wrap(m.channel, var)},
              {DNNL_ARG_DST, im.wrap(m.data, y)}},
             scratch);
}

size_t batch_norm_bwd_onednn_scratch_bytes(Context& ctx, int64_t n, int64_t c, int64_t hw) {
  return bn_bwd_prim(enter(ctx), n, c, hw, kQueryEps).scratch_bytes();
}

void batch_norm_bwd_onednn(Context& ctx, int64_t n, int64_t c, int64_t hw, float eps,
                           const float* x, const float* dy, const float* gamma, const float* mean,
                           const float* var, float* dx, float* dgamma, float* dbeta,
                           void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = bn_bwd_prim(im, n, c, hw, eps);
  const BnMds m = bn_mds(n, c, hw);
  im.execute(p,
             {{DNNL_ARG_SRC, im.wrap(m.data, x)},
              {DNNL_ARG_DIFF_DST, im.wrap(m.data, dy)},
              {DNNL_ARG_SCALE, im.wrap(m.channel, gamma)},
              {DNNL_ARG_SHIFT, im.wrap(m.channel, gamma)},  // see kShiftArgNote
              {DNNL_ARG_MEAN, im.wrap(m.channel, mean)},
              {DNNL_ARG_VARIANCE, im.wrap(m.channel, var)},
              {DNNL_ARG_DIFF_SRC, im.wrap(m.data, dx)},
              {DNNL_ARG_DIFF_SCALE, im.wrap(m.channel, dgamma)},
              {DNNL_ARG_DIFF_SHIFT, im.wrap(m.channel, dbeta)}},
             scratch);
}

// ---------------------------------------------------------------- layer normalisation

namespace {

struct LnMds {
  memory::desc data, stat, channel;
};

LnMds ln_mds(int64_t rows, int64_t cols) {
  DLMEM_CHECK(rows > 0 && cols > 0, "layer norm of ", rows, "x", cols);
  return {plain_md({rows, cols}), plain_md({rows}), plain_md({cols})};
}

dnnl::layer_normalization_forward::primitive_desc ln_fwd_pd(const Context::Impl& im, const LnMds& m,
                                                            float eps) {
  dnnl::layer_normalization_forward::desc d(prop_kind::forward_training, m.data, m.stat, eps,
                                            kScaleShift);
  return {d, user_scratchpad_attr(), im.engine};
}

const CachedPrimitive& ln_fwd_prim(Context::Impl& im, int64_t rows, int64_t cols, float eps) {
  return im.get(make_key("ln_fwd", rows, cols, bits(eps)), [&] {
    return cached<dnnl::layer_normalization_forward>(ln_fwd_pd(im, ln_mds(rows, cols), eps));
  });
}

const CachedPrimitive& ln_bwd_prim(Context::Impl& im, int64_t rows, int64_t cols, float eps) {
  return im.get(make_key("ln_bwd", rows, cols, bits(eps)), [&] {
    const LnMds m = ln_mds(rows, cols);
    dnnl::layer_normalization_backward::desc d(prop_kind::backward, m.data, m.data, m.stat, eps,
                                               kScaleShift);
    dnnl::layer_normalization_backward::primitive_desc pd(d, user_scratchpad_attr(), im.engine,
                                                          ln_fwd_pd(im, m, eps));
    return cached<dnnl::layer_normalization_backward>(pd);
  });
}

}  // namespace

size_t layer_norm_fwd_scratch_bytes(Context& ctx, int64_t rows, int64_t cols) {
  return ln_fwd_prim(enter(ctx), rows, cols, kQueryEps).scratch_bytes();
}

void layer_norm_fwd(Context& ctx, int64_t rows, int64_t cols, float eps, const float* x,
                    const float* gamma, const float* beta, float* y, float* mean, float* var,
                    void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = ln_fwd_prim(im, rows, cols, eps);
  const LnMds m = ln_mds(rows, cols);
  im.execute(p,
             {{DNNL_ARG_SRC, im.wrap(m.data, x)},
              {DNNL_ARG_SCALE, im.wrap(m.channel, gamma)},
              {DNNL_ARG_SHIFT, im.wrap(m.channel, beta)},
              {DNNL_ARG_DST, im.wrap(m.data, y)},
              {DNNL_ARG_MEAN, im.wrap(m.stat, mean)},
              {DNNL_ARG_VARIANCE, im.wrap(m.stat, var)}},
             scratch);
}

size_t layer_norm_bwd_scratch_bytes(Context& ctx, int64_t rows, int64_t cols) {
  return ln_bwd_prim(enter(ctx), rows, cols, kQueryEps).scratch_bytes();
}

void layer_norm_bwd(Context& ctx, int64_t rows, int64_t cols, float eps, const float* x,
                    const float* dy, const float* gamma, const float* mean, const float* var,
                    float* dx, float* dgamma, float* dbeta, void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = ln_bwd_prim(im, rows, cols, eps);
  const LnMds m = ln_mds(rows, cols);
  im.execute(p,
             {{DNNL_ARG_SRC, im.wrap(m.data, x)},
              {DNNL_ARG_DIFF_DST, im.wrap(m.data, dy)},
              {DNNL_ARG_SCALE, im.wrap(m.channel, gamma)},
              {DNNL_ARG_SHIFT, im.wrap(m.channel, gamma)},  // see kShiftArgNote
              {DNNL_ARG_MEAN, im.wrap(m.stat, mean)},
              {DNNL_ARG_VARIANCE, im.wrap(m.stat, var)},
              {DNNL_ARG_DIFF_SRC, im.wrap(m.data, dx)},
              {DNNL_ARG_DIFF_SCALE, im.wrap(m.channel, dgamma)},
              {DNNL_ARG_DIFF_SHIFT, im.wrap(m.channel, dbeta)}},
             scratch);
}

}  // namespace dlmem::cpu
