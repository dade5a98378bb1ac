#include "runtime/op_args.h"

#include <stdexcept>

#include "util/error.h"

namespace dlmem::runtime {

namespace {

// An impossible shape reaches a kernel only from a hand-built graph: the backends
// report it as the user's error, naming the node (std::invalid_argument).
template <typename... Args>
std::invalid_argument invalid_input(const Args&... args) {
  return std::invalid_argument(detail::concat("kernels: ", args...));
}

// Convolution and pooling shapes: batch, channels and extent of an NCHW input, and
// the window's stride and padding from the node's attributes.
template <class S>
void set_nchw(S& s, const ir::Shape& x) {
  s.n = x[0];
  s.c = x[1];
  s.h = x[2];
  s.w = x[3];
}
template <class S>
void set_stride_padding(S& s, const ir::Attrs& a) {
  s.stride_h = a.stride[0];
  s.stride_w = a.stride[1];
  s.pad_h = a.padding[0];
  s.pad_w = a.padding[1];
}

}  // namespace

void Conv2dShape::infer_output() {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || k <= 0 || r <= 0 || s <= 0)
    throw invalid_input("conv2d: sizes must be positive, got n=", n, " c=", c, " h=", h, " w=", w,
                        " k=", k, " kernel=", r, "x", s);
  if (stride_h <= 0 || stride_w <= 0 || dil_h <= 0 || dil_w <= 0 || pad_h < 0 || pad_w < 0)
    throw invalid_input(
        "conv2d: stride and dilation must be >= 1 and padding >= 0, got stride=", stride_h, "x",
        stride_w, " dilation=", dil_h, "x", dil_w, " padding=", pad_h, "x", pad_w);
  if (groups <= 0 || c % groups != 0 || k % groups != 0)
    throw invalid_input("conv2d: groups (", groups, ") must divide both input channels (", c,
                        ") and output channels (", k, ")");
  oh = (h + 2 * pad_h - dil_h * (r - 1) - 1) / stride_h + 1;
  ow = (w + 2 * pad_w - dil_w * (s - 1) - 1) / stride_w + 1;
  if (h + 2 * pad_h < dil_h * (r - 1) + 1 || w + 2 * pad_w < dil_w * (s - 1) + 1)
    throw invalid_input("conv2d: the dilated kernel (", dil_h * (r - 1) + 1, "x",
                        dil_w * (s - 1) + 1, ") is larger than the padded input (", h + 2 * pad_h,
                        "x", w + 2 * pad_w, ")");
}

void Pool2dShape::infer_output() {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || kh <= 0 || kw <= 0 || stride_h <= 0 ||
      stride_w <= 0 || pad_h < 0 || pad_w < 0)
    throw invalid_input(
        "pool2d: sizes, kernel and stride must be positive and padding >= 0, got n=", n, " c=", c,
        " h=", h, " w=", w, " kernel=", kh, "x", kw, " stride=", stride_h, "x", stride_w,
        " padding=", pad_h, "x", pad_w);
  if (pad_h > kh / 2 || pad_w > kw / 2)
    throw invalid_input("pool2d: padding (", pad_h, "x", pad_w,
                        ") must be at most half the kernel (", kh, "x", kw, ")");
  if (h + 2 * pad_h < kh || w + 2 * pad_w < kw)
    throw invalid_input("pool2d: the kernel (", kh, "x", kw, ") is larger than the padded input (",
                        h + 2 * pad_h, "x", w + 2 * pad_w, ")");
  // PyTorch's pooling_output_shape: with ceil_mode the last window may hang over the
  // right padding, but must start inside the input or the left padding.
  auto out = [&](int64_t in, int64_t k, int64_t stride, int64_t pad) {
    int64_t o = (in + 2 * pad - k + (ceil_mode ? stride - 1 : 0)) / stride + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad) --o;
    return o;
  };
  oh = out(h, kh, stride_h, pad_h);
  ow = out(w, kw, stride_w, pad_w);
}

int64_t numel(const ir::Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Conv2dShape conv_shape(const ir::Graph& g, const ir::Node& node) {
  auto shape = [&](ir::ValueId v) -> const ir::Shape& { return g.value(v).type.shape; };
  const ir::Attrs& a = node.attrs;
  const ir::Shape* x = nullptr;
  const ir::Shape* w = nullptr;
  switch (node.op) {
    case ir::OpKind::conv2d: x = &shape(node.inputs[0]), w = &shape(node.inputs[1]); break;
    case ir::OpKind::conv2d_bwd_data: x = &a.shape, w = &shape(node.inputs[1]); break;
    case ir::OpKind::conv2d_bwd_weight: x = &shape(node.inputs[1]), w = &shape(node.outputs[0]); break;
    default: DLMEM_CHECK(false, "conv_shape of ", node.name, ", not a convolution");
  }
  Conv2dShape s;
  set_nchw(s, *x);
  s.k = (*w)[0];
  s.r = (*w)[2];
  s.s = (*w)[3];
  set_stride_padding(s, a);
  s.dil_h = a.dilation[0];
  s.dil_w = a.dilation[1];
  s.groups = a.groups;
  s.infer_output();
  return s;
}

Pool2dShape pool_shape(const ir::Graph& g, const ir::Node& node) {
  const ir::Attrs& a = node.attrs;
  const bool backward = node.op == ir::OpKind::max_pool2d_bwd || node.op == ir::OpKind::avg_pool2d_bwd ||
                        node.op == ir::OpKind::global_avg_pool_bwd;
  const ir::Shape& x = backward ? a.shape : g.value(node.inputs[0]).type.shape;
  Pool2dShape s;
  set_nchw(s, x);
  if (node.op == ir::OpKind::global_avg_pool || node.op == ir::OpKind::global_avg_pool_bwd) {
    s.kh = x[2];
    s.kw = x[3];
  } else {
    s.kh = a.kernel[0];
    s.kw = a.kernel[1];
    set_stride_padding(s, a);
    s.ceil_mode = a.ceil_mode;
    s.count_include_pad = a.count_include_pad;
  }
  s.infer_output();
  return s;
}

MatmulDims matmul_dims(const ir::Graph& g, const ir::Node& node) {
  auto shape = [&](size_t i) -> const ir::Shape& { return g.value(node.inputs[i]).type.shape; };
  const ir::Attrs& at = node.attrs;
  MatmulDims d;
  switch (node.op) {
    case ir::OpKind::linear: {  // y [rows, o] = x [rows, i] W^T, W [o, i]
      const ir::Shape& w = shape(1);
      d.m = numel(shape(0)) / w[1], d.n = w[0], d.k = w[1], d.trans_b = true, d.bias = at.has_bias;
      break;
    }
    case ir::OpKind::linear_bwd_data: {  // dx [rows, i] = dy [rows, o] W
      const ir::Shape& w = shape(1);
      d.m = numel(shape(0)) / w[0], d.n = w[1], d.k = w[0];
      break;
    }
    case ir::OpKind::linear_bwd_weight: {  // dW [o, i] = dy^T x
      const ir::Shape& dy = shape(0);
      d.m = dy.back(), d.n = shape(1).back(), d.k = numel(dy) / dy.back(), d.trans_a = true, d.bias = at.has_bias;
      break;
    }
    case ir::OpKind::matmul: {
      const ir::Shape& a = shape(0);
      const ir::Shape& b = shape(1);
      const size_t r = a.size();
      for (size_t i = 0; i + 2 < r; ++i) d.batch *= a[i];
      d.trans_a = at.trans_a, d.trans_b = at.trans_b;
      d.m = at.trans_a ? a[r - 1] : a[r - 2];
      d.k = at.trans_a ? a[r - 2] : a[r - 1];
      d.n = at.trans_b ? b[r - 2] : b[r - 1];
      break;
    }
    default: DLMEM_CHECK(false, "matmul_dims of ", node.name, ", not a GEMM");
  }
  return d;
}

BatchNormDims batch_norm_dims(const ir::Graph& g, const ir::Node& node) {
  const ir::Shape& x = g.value(node.inputs[0]).type.shape;
  BatchNormDims d{.n = x[0], .c = x[1]};
  for (size_t i = 2; i < x.size(); ++i) d.hw *= x[i];
  return d;
}

RowDims row_dims(const ir::Graph& g, const ir::Node& node) {
  const ir::Shape& x = g.value(node.inputs[node.op == ir::OpKind::softmax_xent_bwd ? 1 : 0]).type.shape;
  return {.rows = numel(x) / x.back(), .cols = x.back()};
}

std::vector<int64_t> broadcast_dims(const ir::Shape& b, size_t rank) {
  std::vector<int64_t> out(rank - b.size(), 1);
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

Eltwise eltwise_of(ir::OpKind k) {
  switch (k) {
    case ir::OpKind::relu: case ir::OpKind::relu_bwd: return Eltwise::relu;
    case ir::OpKind::relu6: case ir::OpKind::relu6_bwd: return Eltwise::relu6;
    case ir::OpKind::gelu: case ir::OpKind::gelu_bwd: return Eltwise::gelu;
    case ir::OpKind::tanh: case ir::OpKind::tanh_bwd: return Eltwise::tanh;
    case ir::OpKind::sigmoid: case ir::OpKind::sigmoid_bwd: return Eltwise::sigmoid;
    default: DLMEM_CHECK(false, "eltwise_of ", ir::op_name(k), ", not an activation");
  }
  return Eltwise::relu;
}

int axis_of(int64_t axis, size_t rank) {
  return static_cast<int>(axis < 0 ? axis + static_cast<int64_t>(rank) : axis);
}

}  // namespace dlmem::runtime
