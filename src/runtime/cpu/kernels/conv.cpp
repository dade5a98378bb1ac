// Convolution: oneDNN primitives (forward, backward data, backward weights).
// What the kernel files share, and why some are oneDNN and some loops: common.h.
#include "runtime/cpu/kernels/common.h"

namespace dlmem::cpu {

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

// Which oneDNN argument each of conv_mds's tensors is, per direction.
struct ConvArgs {
  int src, weights, dst, bias;
};
constexpr ConvArgs kConvFwd{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
constexpr ConvArgs kConvBwdData{DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST, 0};
constexpr ConvArgs kConvBwdWeight{DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_BIAS};

// Runs a convolution primitive over the tensors in place (bias: none when null).
void run_conv(Context::Impl& im, const CachedPrimitive& p, const Conv2dShape& s, ConvArgs a, const void* src,
              const void* weights, const void* dst, const void* bias, void* scratch) {
  const ConvMds m = conv_mds(s);
  Args args{{a.src, im.wrap(m.src, src)}, {a.weights, im.wrap(m.weights, weights)}, {a.dst, im.wrap(m.dst, dst)}};
  if (bias) args.emplace(a.bias, im.wrap(m.bias, bias));
  im.execute(p, std::move(args), scratch);
}

}  // namespace

size_t conv2d_fwd_scratch_bytes(Context& ctx, const Conv2dShape& s, bool has_bias) {
  return conv_fwd_prim(enter(ctx), s, has_bias).scratch_bytes();
}

void conv2d_fwd(Context& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
                float* y, void* scratch) {
  Context::Impl& im = enter(ctx);
  run_conv(im, conv_fwd_prim(im, s, b != nullptr), s, kConvFwd, x, w, y, b, scratch);
}

size_t conv2d_bwd_data_scratch_bytes(Context& ctx, const Conv2dShape& s) {
  return conv_bwd_data_prim(enter(ctx), s).scratch_bytes();
}

void conv2d_bwd_data(Context& ctx, const Conv2dShape& s, const float* dy, const float* w, float* dx,
                     void* scratch) {
  Context::Impl& im = enter(ctx);
  run_conv(im, conv_bwd_data_prim(im, s), s, kConvBwdData, dx, w, dy, nullptr, scratch);
}

size_t conv2d_bwd_weight_scratch_bytes(Context& ctx, const Conv2dShape& s, bool has_bias) {
  return conv_bwd_weight_prim(enter(ctx), s, has_bias).scratch_bytes();
}

void conv2d_bwd_weight(Context& ctx, const Conv2dShape& s, const float* dy, const float* x,
                       float* dw, float* db, void* scratch) {
  Context::Impl& im = enter(ctx);
  run_conv(im, conv_bwd_weight_prim(im, s, db != nullptr), s, kConvBwdWeight, x, dw, dy, db, scratch);
}

}  // namespace dlmem::cpu
