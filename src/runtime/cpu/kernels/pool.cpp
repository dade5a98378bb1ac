// Max and average pooling: oneDNN primitives, with PyTorch's include-pad windows fixed up by hand.
// What the kernel files share, and why some are oneDNN and some loops: common.h.
#include "runtime/cpu/kernels/common.h"

namespace dlmem::cpu {

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

// Calls f(plane, oy, ox, window) for every overhanging window only (see
// window_overhangs): parallel over (n, c) planes, each plane in a fixed order.
template <class F>
void for_each_overhanging_window(const Pool2dShape& s, F f) {
  const int64_t planes = s.n * s.c;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oy = 0; oy < s.oh; ++oy)
      for (int64_t ox = 0; ox < s.ow; ++ox)
        if (window_overhangs(s, oy, ox)) f(p, oy, ox, pytorch_window(s, oy, ox));
}

void avg_include_pad_fixup_fwd(const Pool2dShape& s, const float* x, float* y) {
  for_each_overhanging_window(s, [&](int64_t p, int64_t oy, int64_t ox, const Window& win) {
    const float* xp = x + p * s.h * s.w;
    float sum = 0.f;
    for (int64_t iy = win.y0; iy < win.y1; ++iy)
      for (int64_t ix = win.x0; ix < win.x1; ++ix) sum += xp[iy * s.w + ix];
    y[p * s.oh * s.ow + oy * s.ow + ox] = sum / static_cast<float>(win.divisor);
  });
}

// oneDNN gave each in-bounds input dy / (kh * kw); add the difference to dy / divisor.
void avg_include_pad_fixup_bwd(const Pool2dShape& s, const float* dy, float* dx) {
  const float full = static_cast<float>(s.kh * s.kw);
  for_each_overhanging_window(s, [&](int64_t p, int64_t oy, int64_t ox, const Window& win) {
    float* dxp = dx + p * s.h * s.w;
    const float g = dy[p * s.oh * s.ow + oy * s.ow + ox];
    const float delta = g / static_cast<float>(win.divisor) - g / full;
    for (int64_t iy = win.y0; iy < win.y1; ++iy)
      for (int64_t ix = win.x0; ix < win.x1; ++ix) dxp[iy * s.w + ix] += delta;
  });
}

// Runs a pooling primitive forward (in: x, out: y) or backward (in: dy, out: dx),
// with max pooling's one-byte-per-output workspace when `idx` is given.
void run_pool(Context& ctx, const Pool2dShape& s, algorithm alg, bool backward, const float* in, float* out,
              const uint8_t* idx, void* scratch) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p = backward ? pool_bwd_prim(im, s, alg) : pool_fwd_prim(im, s, alg);
  const PoolMds m = pool_mds(s);
  Args args = backward ? Args{{DNNL_ARG_DIFF_DST, im.wrap(m.dst, in)}, {DNNL_ARG_DIFF_SRC, im.wrap(m.src, out)}}
                       : Args{{DNNL_ARG_SRC, im.wrap(m.src, in)}, {DNNL_ARG_DST, im.wrap(m.dst, out)}};
  if (idx) {
    DLMEM_CHECK(p.workspace_md.data.data_type == dnnl_u8 &&
                    p.workspace_md.get_size() == static_cast<size_t>(s.n * s.c * s.oh * s.ow),
                "max pooling workspace is not one u8 per output");
    args.emplace(DNNL_ARG_WORKSPACE, im.wrap(p.workspace_md, idx));
  }
  im.execute(p, std::move(args), scratch);
}

}  // namespace

size_t max_pool2d_fwd_scratch_bytes(Context& ctx, const Pool2dShape& s) {
  check_max_pool_kernel(s);
  return pool_fwd_prim(enter(ctx), s, algorithm::pooling_max).scratch_bytes();
}

void max_pool2d_fwd(Context& ctx, const Pool2dShape& s, const float* x, float* y, uint8_t* idx,
                    void* scratch) {
  check_max_pool_kernel(s);
  run_pool(ctx, s, algorithm::pooling_max, false, x, y, idx, scratch);
}

size_t max_pool2d_bwd_scratch_bytes(Context& ctx, const Pool2dShape& s) {
  check_max_pool_kernel(s);
  return pool_bwd_prim(enter(ctx), s, algorithm::pooling_max).scratch_bytes();
}

void max_pool2d_bwd(Context& ctx, const Pool2dShape& s, const float* dy, const uint8_t* idx,
                    float* dx, void* scratch) {
  check_max_pool_kernel(s);
  run_pool(ctx, s, algorithm::pooling_max, true, dy, dx, idx, scratch);
}

size_t avg_pool2d_fwd_scratch_bytes(Context& ctx, const Pool2dShape& s) {
  return pool_fwd_prim(enter(ctx), s, avg_alg(s)).scratch_bytes();
}

void avg_pool2d_fwd(Context& ctx, const Pool2dShape& s, const float* x, float* y, void* scratch) {
  run_pool(ctx, s, avg_alg(s), false, x, y, nullptr, scratch);
  if (needs_include_pad_fixup(s)) avg_include_pad_fixup_fwd(s, x, y);
}

size_t avg_pool2d_bwd_scratch_bytes(Context& ctx, const Pool2dShape& s) {
  return pool_bwd_prim(enter(ctx), s, avg_alg(s)).scratch_bytes();
}

void avg_pool2d_bwd(Context& ctx, const Pool2dShape& s, const float* dy, float* dx, void* scratch) {
  run_pool(ctx, s, avg_alg(s), true, dy, dx, nullptr, scratch);
  if (needs_include_pad_fixup(s)) avg_include_pad_fixup_bwd(s, dy, dx);
}

}  // namespace dlmem::cpu
