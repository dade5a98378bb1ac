// The CPU kernels that are oneDNN primitives: convolution, pooling, layer normalisation,
// eltwise, binary, reduction, softmax, matmul and the reorders behind transpose and
// slice, and concat. Batch normalisation is here only as the tests' reference (the ops
// run kernels_batch_norm.cpp's own loops).
//
// Every primitive is created on plain (row-major) memory descriptors, never
// format_tag::any: dlmem's tensors live in the memory plan in plain layout and are
// wrapped in place, so a blocked layout would need reorders and hidden copies.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/cpu/context_impl.h"

namespace dlmem::cpu {

namespace {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;
using Args = std::unordered_map<int, memory>;

// A float parameter in a cache key, by its bits (std::to_string rounds to 6 decimals).
uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

}  // namespace

// ---------------------------------------------------------------- convolution

namespace {

void check_conv_output(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.infer_output();
  DLMEM_CHECK(t.oh == s.oh && t.ow == s.ow, "Conv2dShape output ", s.oh, "x", s.ow,
              " differs from infer_output()'s ", t.oh, "x", t.ow);
}

std::string conv_key(const char* op, const Conv2dShape& s, bool has_bias) {
  return make_key(op, s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride_h, s.stride_w, s.pad_h, s.pad_w,
                  s.dil_h, s.dil_w, s.groups, has_bias);
}

struct ConvMds {
  memory::desc src, weights, bias, dst;
  memory::dims strides, dilates, padding;
};

ConvMds conv_mds(const Conv2dShape& s) {
  check_conv_output(s);
  ConvMds m;
  m.src = plain_md({s.n, s.c, s.h, s.w});
  // OIHW; grouped weights are the same bytes seen as GOIHW (O = groups * O/groups).
  m.weights = s.groups == 1 ? plain_md({s.k, s.c, s.r, s.s})
                            : plain_md({s.groups, s.k / s.groups, s.c / s.groups, s.r, s.s});
  m.bias = plain_md({s.k});
  m.dst = plain_md({s.n, s.k, s.oh, s.ow});
  m.strides = {s.stride_h, s.stride_w};
  m.dilates = {s.dil_h - 1, s.dil_w - 1};  // oneDNN counts dilation from 0
  m.padding = {s.pad_h, s.pad_w};
  return m;
}

dnnl::convolution_forward::primitive_desc conv_fwd_pd(const Context::Impl& im, const ConvMds& m,
                                                      bool has_bias) {
  using D = dnnl::convolution_forward::desc;
  const D d = has_bias ? D(prop_kind::forward_training, algorithm::convolution_direct, m.src,
                           m.weights, m.bias, m.dst, m.strides, m.dilates, m.padding, m.padding)
                       : D(prop_kind::forward_training, algorithm::convolution_direct, m.src,
                           m.weights, m.dst, m.strides, m.dilates, m.padding, m.padding);
  return {d, user_scratchpad_attr(), im.engine};
}

const CachedPrimitive& conv_fwd_prim(Context::Impl& im, const Conv2dShape& s, bool has_bias) {
  return im.get(conv_key("conv_fwd", s, has_bias), [&] {
    return cached<dnnl::convolution_forward>(conv_fwd_pd(im, conv_mds(s), has_bias));
  });
}

const CachedPrimitive& conv_bwd_data_prim(Context::Impl& im, const Conv2dShape& s) {
  return im.get(conv_key("conv_bwd_data", s, false), [&] {
    const ConvMds m = conv_mds(s);
    dnnl::convolution_backward_data::desc d(algorithm::convolution_direct, m.src, m.weights, m.dst,
                                            m.strides, m.dilates, m.padding, m.padding);
    dnnl::convolution_backward_data::primitive_desc pd(d, user_scratchpad_attr(), im.engine,
                                                       conv_fwd_pd(im, m, false));
    return cached<dnnl::convolution_backward_data>(pd);
  });
}

const CachedPrimitive& conv_bwd_weight_prim(Context::Impl& im, const Conv2dShape& s,
                                            bool has_bias) {
  return im.get(conv_key("conv_bwd_weight", s, has_bias), [&] {
    const ConvMds m = conv_mds(s);
    using D = dnnl::convolution_backward_weights::desc;
    const D d = has_bias ? D(algorithm::convolution_direct, m.src, m.weights, m.bias, m.dst,
                             m.strides, m.dilates, m.padding, m.padding)
                         : D(algorithm::convolution_direct, m.src, m.weights, m.dst, m.strides,
                             m.dilates, m.padding, m.padding);
    dnnl::convolution_backward_weights::primitive_desc pd(d, user_scratchpad_attr(), im.engine,
                                                          conv_fwd_pd(im, m, has_bias));
    return cached<dnnl::convolution_backward_weights>(pd);
  });
}

}  // namespace

size_t conv2d_fwd_scratch_bytes(Context& ctx, const Conv2dShape& s, bool has_bias) {
  return conv_fwd_prim(enter(ctx), s, has_bias).scratch_bytes();
}

void conv2d_fwd(Context& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
                float* y, void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = conv_fwd_prim(im, s, b != nullptr);
  const ConvMds m = conv_mds(s);
  Args args{{DNNL_ARG_SRC, im.wrap(m.src, x)},
            {DNNL_ARG_WEIGHTS, im.wrap(m.weights, w)},
            {DNNL_ARG_DST, im.wrap(m.dst, y)}};
  if (b) args.emplace(DNNL_ARG_BIAS, im.wrap(m.bias, b));
  im.execute(p, std::move(args), scratch);
}

size_t conv2d_bwd_data_scratch_bytes(Context& ctx, const Conv2dShape& s) {
  return conv_bwd_data_prim(enter(ctx), s).scratch_bytes();
}

void conv2d_bwd_data(Context& ctx, const Conv2dShape& s, const float* dy, const float* w, float* dx,
                     void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = conv_bwd_data_prim(im, s);
  const ConvMds m = conv_mds(s);
  im.execute(p,
             {{DNNL_ARG_DIFF_DST, im.wrap(m.dst, dy)},
              {DNNL_ARG_WEIGHTS, im.wrap(m.weights, w)},
              {DNNL_ARG_DIFF_SRC, im.wrap(m.src, dx)}},
             scratch);
}

size_t conv2d_bwd_weight_scratch_bytes(Context& ctx, const Conv2dShape& s, bool has_bias) {
  return conv_bwd_weight_prim(enter(ctx), s, has_bias).scratch_bytes();
}

void conv2d_bwd_weight(Context& ctx, const Conv2dShape& s, const float* dy, const float* x,
                       float* dw, float* db, void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = conv_bwd_weight_prim(im, s, db != nullptr);
  const ConvMds m = conv_mds(s);
  Args args{{DNNL_ARG_DIFF_DST, im.wrap(m.dst, dy)},
            {DNNL_ARG_SRC, im.wrap(m.src, x)},
            {DNNL_ARG_DIFF_WEIGHTS, im.wrap(m.weights, dw)}};
  if (db) args.emplace(DNNL_ARG_DIFF_BIAS, im.wrap(m.bias, db));
  im.execute(p, std::move(args), scratch);
}

// ---------------------------------------------------------------- pooling

namespace {

struct PoolMds {
  memory::desc src, dst;
  memory::dims strides, kernel, dilation, pad_l, pad_r;
};

PoolMds pool_mds(const Pool2dShape& s) {
  Pool2dShape t = s;
  t.infer_output();
  DLMEM_CHECK(t.oh == s.oh && t.ow == s.ow, "Pool2dShape output ", s.oh, "x", s.ow,
              " differs from infer_output()'s ", t.oh, "x", t.ow);
  PoolMds m;
  m.src = plain_md({s.n, s.c, s.h, s.w});
  m.dst = plain_md({s.n, s.c, s.oh, s.ow});
  m.strides = {s.stride_h, s.stride_w};
  m.kernel = {s.kh, s.kw};
  m.dilation = {0, 0};
  m.pad_l = {s.pad_h, s.pad_w};
  // oneDNN takes the output size from the padding, so ceil_mode's overhanging last
  // window becomes extra right padding (ignored by max, and by avg excluding padding;
  // avg including padding is corrected afterwards, see avg_include_pad_fixup).
  m.pad_r = {std::max(s.pad_h, (s.oh - 1) * s.stride_h + s.kh - s.h - s.pad_h),
             std::max(s.pad_w, (s.ow - 1) * s.stride_w + s.kw - s.w - s.pad_w)};
  return m;
}

std::string pool_key(const char* op, const Pool2dShape& s) {
  return make_key(op, s.n, s.c, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.pad_h, s.pad_w,
                  s.ceil_mode, s.count_include_pad);
}

algorithm avg_alg(const Pool2dShape& s) {
  return s.count_include_pad ? algorithm::pooling_avg_include_padding
                             : algorithm::pooling_avg_exclude_padding;
}

dnnl::pooling_v2_forward::primitive_desc pool_fwd_pd(const Context::Impl& im, const PoolMds& m,
                                                     algorithm alg) {
  dnnl::pooling_v2_forward::desc d(prop_kind::forward_training, alg, m.src, m.dst, m.strides,
                                   m.kernel, m.dilation, m.pad_l, m.pad_r);
  return {d, user_scratchpad_attr(), im.engine};
}

const CachedPrimitive& pool_fwd_prim(Context::Impl& im, const Pool2dShape& s, algorithm alg) {
  return im.get(pool_key(alg == algorithm::pooling_max ? "max_pool_fwd" : "avg_pool_fwd", s), [&] {
    return cached<dnnl::pooling_v2_forward>(pool_fwd_pd(im, pool_mds(s), alg));
  });
}

const CachedPrimitive& pool_bwd_prim(Context::Impl& im, const Pool2dShape& s, algorithm alg) {
  return im.get(pool_key(alg == algorithm::pooling_max ? "max_pool_bwd" : "avg_pool_bwd", s), [&] {
    const PoolMds m = pool_mds(s);
    dnnl::pooling_v2_backward::desc d(alg, m.src, m.dst, m.strides, m.kernel, m.dilation, m.pad_l,
                                      m.pad_r);
    dnnl::pooling_v2_backward::primitive_desc pd(d, user_scratchpad_attr(), im.engine,
                                                 pool_fwd_pd(im, m, alg));
    return cached<dnnl::pooling_v2_backward>(pd);
  });
}

void check_max_pool_kernel(const Pool2dShape& s) {
  if (s.kh * s.kw > 256)
    throw invalid_input("max_pool2d: the window (", s.kh, "x", s.kw, " = ", s.kh * s.kw,
                        " elements) must have at most 256 elements for the u8 index workspace");
}

// PyTorch divides a ceil_mode window that hangs over the right padding by its size
// clipped to the padded input, (min(h0 + kh, h + pad) - h0) * (...), where oneDNN's
// pooling_avg_include_padding divides by kh * kw. Only then do the two differ.
bool window_overhangs(const Pool2dShape& s, int64_t oy, int64_t ox) {
  return oy * s.stride_h - s.pad_h + s.kh > s.h + s.pad_h ||
         ox * s.stride_w - s.pad_w + s.kw > s.w + s.pad_w;
}

bool needs_include_pad_fixup(const Pool2dShape& s) {
  // The last window in either direction is the one that overhangs most.
  return s.ceil_mode && s.count_include_pad && window_overhangs(s, s.oh - 1, s.ow - 1);
}

struct Window {
  int64_t y0, y1, x0, x1;  // the in-bounds part, [y0, y1) x [x0, x1)
  int64_t divisor;         // PyTorch's count_include_pad divisor
};

Window pytorch_window(const Pool2dShape& s, int64_t oy, int64_t ox) {
  const int64_t hs = oy * s.stride_h - s.pad_h, ws = ox * s.stride_w - s.pad_w;
  const int64_t he = std::min(hs + s.kh, s.h + s.pad_h), we = std::min(ws + s.kw, s.w + s.pad_w);
  return {std::max<int64_t>(hs, 0), std::min(he, s.h), std::max<int64_t>(ws, 0), std::min(we, s.w),
          (he - hs) * (we - ws)};
}

// Own loop over the overhanging windows only (see window_overhangs), parallel over
// (n, c) planes, each plane in a fixed order.
void avg_include_pad_fixup_fwd(const Pool2dShape& s, const float* x, float* y) {
  const int64_t planes = s.n * s.c;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * s.h * s.w;
    float* yp = y + p * s.oh * s.ow;
    for (int64_t oy = 0; oy < s.oh; ++oy)
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        if (!window_overhangs(s, oy, ox)) continue;
        const Window win = pytorch_window(s, oy, ox);
        float sum = 0.f;
        for (int64_t iy = win.y0; iy < win.y1; ++iy)
          for (int64_t ix = win.x0; ix < win.x1; ++ix) sum += xp[iy * s.w + ix];
        yp[oy * s.ow + ox] = sum / static_cast<float>(win.divisor);
      }
  }
}

// oneDNN gave each in-bounds input dy / (kh * kw); add the difference to dy / divisor.
void avg_include_pad_fixup_bwd(const Pool2dShape& s, const float* dy, float* dx) {
  const int64_t planes = s.n * s.c;
  const float full = static_cast<float>(s.kh * s.kw);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const float* dyp = dy + p * s.oh * s.ow;
    float* dxp = dx + p * s.h * s.w;
    for (int64_t oy = 0; oy < s.oh; ++oy)
      for (int64_t ox = 0; ox < s.ow; ++ox) {
        if (!window_overhangs(s, oy, ox)) continue;
        const Window win = pytorch_window(s, oy, ox);
        const float g = dyp[oy * s.ow + ox];
        const float delta = g / static_cast<float>(win.divisor) - g / full;
        for (int64_t iy = win.y0; iy < win.y1; ++iy)
          for (int64_t ix = win.x0; ix < win.x1; ++ix) dxp[iy * s.w + ix] += delta;
      }
  }
}

}  // namespace

size_t max_pool2d_fwd_scratch_bytes(Context& ctx, const Pool2dShape& s) {
  check_max_pool_kernel(s);
  return pool_fwd_prim(enter(ctx), s, algorithm::pooling_max).scratch_bytes();
}

void max_pool2d_fwd(Context& ctx, const Pool2dShape& s, const float* x, float* y, uint8_t* idx,
                    void* scratch) {
  check_max_pool_kernel(s);
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = pool_fwd_prim(im, s, algorithm::pooling_max);
  const PoolMds m = pool_mds(s);
  DLMEM_CHECK(p.workspace_md.data.data_type == dnnl_u8 &&
                  p.workspace_md.get_size() == static_cast<size_t>(s.n * s.c * s.oh * s.ow),
              "max pooling workspace is not one u8 per output");
  im.execute(p,
             {{DNNL_ARG_SRC, im.wrap(m.src, x)},
              {DNNL_ARG_DST, im.wrap(m.dst, y)},
              {DNNL_ARG_WORKSPACE, im.wrap(p.workspace_md, idx)}},
             scratch);
}

size_t max_pool2d_bwd_scratch_bytes(Context& ctx, const Pool2dShape& s) {
  check_max_pool_kernel(s);
  return pool_bwd_prim(enter(ctx), s, algorithm::pooling_max).scratch_bytes();
}

void max_pool2d_bwd(Context& ctx, const Pool2dShape& s, const float* dy, const uint8_t* idx,
                    float* dx, void* scratch) {
  check_max_pool_kernel(s);
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = pool_bwd_prim(im, s, algorithm::pooling_max);
  const PoolMds m = pool_mds(s);
  im.execute(p,
             {{DNNL_ARG_DIFF_DST, im.wrap(m.dst, dy)},
              {DNNL_ARG_WORKSPACE, im.wrap(p.workspace_md, idx)},
              {DNNL_ARG_DIFF_SRC, im.wrap(m.src, dx)}},
             scratch);
}

size_t avg_pool2d_fwd_scratch_bytes(Context& ctx, const Pool2dShape& s) {
  return pool_fwd_prim(enter(ctx), s, avg_alg(s)).scratch_bytes();
}

void avg_pool2d_fwd(Context& ctx, const Pool2dShape& s, const float* x, float* y, void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = pool_fwd_prim(im, s, avg_alg(s));
  const PoolMds m = pool_mds(s);
  im.execute(p, {{DNNL_ARG_SRC, im.wrap(m.src, x)}, {DNNL_ARG_DST, im.wrap(m.dst, y)}}, scratch);
  if (needs_include_pad_fixup(s)) avg_include_pad_fixup_fwd(s, x, y);
}

size_t avg_pool2d_bwd_scratch_bytes(Context& ctx, const Pool2dShape& s) {
  return pool_bwd_prim(enter(ctx), s, avg_alg(s)).scratch_bytes();
}

void avg_pool2d_bwd(Context& ctx, const Pool2dShape& s, const float* dy, float* dx, void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = pool_bwd_prim(im, s, avg_alg(s));
  const PoolMds m = pool_mds(s);
  im.execute(p, {{DNNL_ARG_DIFF_DST, im.wrap(m.dst, dy)}, {DNNL_ARG_DIFF_SRC, im.wrap(m.src, dx)}},
             scratch);
  if (needs_include_pad_fixup(s)) avg_include_pad_fixup_bwd(s, dy, dx);
}

// ---------------------------------------------------------------- batch normalisation

// oneDNN's batch norm, no longer behind the batch_norm ops (kernels_batch_norm.cpp says
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

namespace {

memory::dims to_dims(int rank, const int64_t* dims) { return memory::dims(dims, dims + rank); }

}  // namespace

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
    dnnl::binary::desc d(op == Binary::add ? algorithm::binary_add : algorithm::binary_mul, a_md,
                         b_md, a_md);
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

// ---------------------------------------------------------------- softmax

namespace {

dnnl::softmax_forward::primitive_desc softmax_fwd_pd(const Context::Impl& im,
                                                     const memory::desc& md) {
  dnnl::softmax_forward::desc d(prop_kind::forward_training, md, 1);
  return {d, user_scratchpad_attr(), im.engine};
}

}  // namespace

void softmax_fwd(Context& ctx, int64_t rows, int64_t cols, const float* x, float* y) {
  if (rows == 0) return;
  Context::Impl& im = enter(ctx);
  const memory::desc md = plain_md({rows, cols});
  const CachedPrimitive& p = im.get(make_key("softmax_fwd", rows, cols), [&] {
    return cached<dnnl::softmax_forward>(softmax_fwd_pd(im, md));
  });
  im.execute(p, {{DNNL_ARG_SRC, im.wrap(md, x)}, {DNNL_ARG_DST, im.wrap(md, y)}}, nullptr,
             /*use_internal=*/true);
}

void softmax_bwd(Context& ctx, int64_t rows, int64_t cols, const float* dy, const float* y,
                 float* dx) {
  if (rows == 0) return;
  Context::Impl& im = enter(ctx);
  const memory::desc md = plain_md({rows, cols});
  const CachedPrimitive& p = im.get(make_key("softmax_bwd", rows, cols), [&] {
    dnnl::softmax_backward::desc d(md, md, 1);
    dnnl::softmax_backward::primitive_desc pd(d, user_scratchpad_attr(), im.engine,
                                              softmax_fwd_pd(im, md));
    return cached<dnnl::softmax_backward>(pd);
  });
  im.execute(p,
             {{DNNL_ARG_DST, im.wrap(md, y)},
              {DNNL_ARG_DIFF_DST, im.wrap(md, dy)},
              {DNNL_ARG_DIFF_SRC, im.wrap(md, dx)}},
             nullptr, /*use_internal=*/true);
}

// ---------------------------------------------------------------- matmul

namespace {

struct MatmulMds {
  memory::desc a, b, bias, c;
};

// A batched 3-D matmul; a transposed operand is the same bytes seen through swapped
// strides, so no copy is made.
MatmulMds matmul_mds(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b) {
  DLMEM_CHECK(batch > 0 && m > 0 && n > 0 && k > 0, "matmul of ", batch, "x", m, "x", n, "x", k);
  const auto f32 = memory::data_type::f32;
  return {trans_a ? memory::desc({batch, m, k}, f32, {m * k, 1, m})
                  : memory::desc({batch, m, k}, f32, {m * k, k, 1}),
          trans_b ? memory::desc({batch, k, n}, f32, {k * n, 1, k})
                  : memory::desc({batch, k, n}, f32, {k * n, n, 1}),
          plain_md({1, 1, n}), plain_md({batch, m, n})};
}

const CachedPrimitive& matmul_prim(Context::Impl& im, int64_t batch, int64_t m, int64_t n,
                                   int64_t k, bool trans_a, bool trans_b, bool has_bias,
                                   bool accumulate) {
  return im.get(make_key("matmul", batch, m, n, k, trans_a, trans_b, has_bias, accumulate), [&] {
    const MatmulMds md = matmul_mds(batch, m, n, k, trans_a, trans_b);
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.f);
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::desc d = has_bias ? dnnl::matmul::desc(md.a, md.b, md.bias, md.c)
                                          : dnnl::matmul::desc(md.a, md.b, md.c);
    return cached<dnnl::matmul>(dnnl::matmul::primitive_desc(d, attr, im.engine));
  });
}

}  // namespace

size_t matmul_scratch_bytes(Context& ctx, int64_t batch, int64_t m, int64_t n, int64_t k,
                            bool trans_a, bool trans_b, bool has_bias) {
  return matmul_scratch_bytes(ctx, batch, m, n, k, trans_a, trans_b, has_bias, false);
}

size_t matmul_scratch_bytes(Context& ctx, int64_t batch, int64_t m, int64_t n, int64_t k,
                            bool trans_a, bool trans_b, bool has_bias, bool accumulate) {
  return matmul_prim(enter(ctx), batch, m, n, k, trans_a, trans_b, has_bias, accumulate)
      .scratch_bytes();
}

void matmul(Context& ctx, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
            bool trans_b, const float* a, const float* b, const float* bias, float* c,
            void* scratch) {
  matmul(ctx, batch, m, n, k, trans_a, trans_b, a, b, bias, c, scratch, false);
}

void matmul(Context& ctx, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
            bool trans_b, const float* a, const float* b, const float* bias, float* c,
            void* scratch, bool accumulate) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p =
      matmul_prim(im, batch, m, n, k, trans_a, trans_b, bias != nullptr, accumulate);
  const MatmulMds md = matmul_mds(batch, m, n, k, trans_a, trans_b);
  Args args{{DNNL_ARG_SRC, im.wrap(md.a, a)},
            {DNNL_ARG_WEIGHTS, im.wrap(md.b, b)},
            {DNNL_ARG_DST, im.wrap(md.c, c)}};
  if (bias) args.emplace(DNNL_ARG_BIAS, im.wrap(md.bias, bias));
  im.execute(p, std::move(args), scratch);
}

// ---------------------------------------------------------------- data movement

namespace {

std::vector<int64_t> row_major_strides(int rank, const int64_t* dims) {
  std::vector<int64_t> strides(rank);
  int64_t stride = 1;
  for (int i = rank; i-- > 0;) {
    strides[i] = stride;
    stride *= dims[i];
  }
  return strides;
}

const CachedPrimitive& reorder_prim(Context::Impl& im, const std::string& key,
                                    const memory::desc& src, const memory::desc& dst) {
  return im.get(key, [&] {
    return cached<dnnl::reorder>(
        dnnl::reorder::primitive_desc(im.engine, src, im.engine, dst, user_scratchpad_attr()));
  });
}

}  // namespace

void transpose(Context& ctx, int rank, const int64_t* x_dims, const int* perm, const float* x,
               float* y) {
  DLMEM_CHECK(rank >= 1 && rank <= 6, "transpose of rank ", rank);
  std::vector<bool> seen(rank, false);
  for (int i = 0; i < rank; ++i) {
    DLMEM_CHECK(perm[i] >= 0 && perm[i] < rank && !seen[perm[i]], "transpose: not a permutation");
    seen[perm[i]] = true;
  }
  Context::Impl& im = enter(ctx);
  // The source seen in y's dimension order: y's dim i walks x with x's stride perm[i].
  const std::vector<int64_t> x_strides = row_major_strides(rank, x_dims);
  memory::dims y_dims(rank), src_strides(rank);
  for (int i = 0; i < rank; ++i) {
    y_dims[i] = x_dims[perm[i]];
    src_strides[i] = x_strides[perm[i]];
  }
  const memory::desc src(y_dims, memory::data_type::f32, src_strides), dst = plain_md(y_dims);
  std::string key = "transpose";
  append_dims(key, rank, x_dims);
  for (int i = 0; i < rank; ++i) key += "," + std::to_string(perm[i]);
  const CachedPrimitive& p = reorder_prim(im, key, src, dst);
  im.execute(p, {{DNNL_ARG_FROM, im.wrap(src, x)}, {DNNL_ARG_TO, im.wrap(dst, y)}}, nullptr,
             /*use_internal=*/true);
}

void concat(Context& ctx, int rank, const int64_t* const* in_dims, int count, int axis,
            const float* const* in, float* y) {
  DLMEM_CHECK(rank >= 1 && rank <= DNNL_MAX_NDIMS && count >= 1 && axis >= 0 && axis < rank,
              "concat of ", count, " rank-", rank, " inputs along ", axis);
  Context::Impl& im = enter(ctx);
  std::vector<memory::desc> srcs;
  memory::dims y_dims = to_dims(rank, in_dims[0]);
  y_dims[axis] = 0;
  std::string key = make_key("concat", axis);
  for (int i = 0; i < count; ++i) {
    for (int d = 0; d < rank; ++d)
      DLMEM_CHECK(d == axis || in_dims[i][d] == in_dims[0][d], "concat: input ", i, " dim ", d,
                  " is ", in_dims[i][d], ", not ", in_dims[0][d]);
    srcs.push_back(plain_md(to_dims(rank, in_dims[i])));
    y_dims[axis] += in_dims[i][axis];
    append_dims(key, rank, in_dims[i]);
  }
  const memory::desc dst = plain_md(y_dims);
  const CachedPrimitive& p = im.get(key, [&] {
    return cached<dnnl::concat>(
        dnnl::concat::primitive_desc(dst, axis, srcs, im.engine, user_scratchpad_attr()));
  });
  Args args{{DNNL_ARG_DST, im.wrap(dst, y)}};
  for (int i = 0; i < count; ++i) args.emplace(DNNL_ARG_MULTIPLE_SRC + i, im.wrap(srcs[i], in[i]));
  im.execute(p, std::move(args), nullptr, /*use_internal=*/true);
}

void slice(Context& ctx, int rank, const int64_t* x_dims, int axis, int64_t start, int64_t len,
           const float* x, float* y) {
  DLMEM_CHECK(rank >= 1 && rank <= DNNL_MAX_NDIMS && axis >= 0 && axis < rank, "slice of rank ",
              rank, " along ", axis);
  DLMEM_CHECK(start >= 0 && len >= 0 && start + len <= x_dims[axis], "slice [", start, ", ",
              start + len, ") of a dim of ", x_dims[axis]);
  if (len == 0) return;
  Context::Impl& im = enter(ctx);
  // The slice is x's bytes from x + start * stride(axis), with x's strides.
  const std::vector<int64_t> x_strides = row_major_strides(rank, x_dims);
  memory::dims y_dims = to_dims(rank, x_dims);
  y_dims[axis] = len;
  const memory::desc src(y_dims, memory::data_type::f32, memory::dims(x_strides));
  const memory::desc dst = plain_md(y_dims);
  std::string key = make_key("slice", axis, len);
  append_dims(key, rank, x_dims);
  const CachedPrimitive& p = reorder_prim(im, key, src, dst);
  im.execute(
      p,
      {{DNNL_ARG_FROM, im.wrap(src, x + start * x_strides[axis])}, {DNNL_ARG_TO, im.wrap(dst, y)}},
      nullptr, /*use_internal=*/true);
}

}  // namespace dlmem::cpu
