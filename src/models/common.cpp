#include "models/common.h"

#include <sstream>

#include "util/error.h"

namespace dlmem::models::detail {

namespace {
// Image sizes the searches below scan; every model in the zoo accepts a size below it.
constexpr int64_t kMaxScannedSize = 4096;
}  // namespace

int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  if (in <= 0 || in + 2 * padding < kernel) return 0;
  return (in + 2 * padding - kernel) / stride + 1;
}

int64_t min_image_size(const FeatureFn& feature) {
  for (int64_t s = 1; s <= kMaxScannedSize; ++s)
    if (feature(s) >= 1) return s;
  return kMaxScannedSize + 1;
}

std::string sizes_where_multiple(const FeatureFn& feature, int64_t k) {
  std::ostringstream os;
  int ranges = 0;
  int64_t begin = -1;
  for (int64_t s = 1; s <= kMaxScannedSize + 1 && ranges < 3; ++s) {
    const int64_t f = s <= kMaxScannedSize ? feature(s) : 0;
    const bool ok = f >= k && f % k == 0;
    if (ok && begin < 0) begin = s;
    if (!ok && begin >= 0) {
      os << (ranges ? ", " : "") << begin;
      if (s - 1 > begin) os << "-" << s - 1;
      ++ranges;
      begin = -1;
    }
  }
  if (ranges == 3) os << ", ...";
  return os.str();
}

void check_min_image_size(const std::string& model, int64_t size, const FeatureFn& feature) {
  if (feature(size) >= 1) return;
  throw Error(model, ": image_size ", size,
              " is too small for the network (its feature map vanishes); use image_size >= ",
              min_image_size(feature));
}

void check_adaptive_pool(const std::string& model, int64_t image_size, int64_t k,
                         const FeatureFn& feature) {
  const int64_t f = feature(image_size);
  if (f >= k && f % k == 0) return;
  const std::string works = sizes_where_multiple(feature, k);
  if (f < 1)
    throw Error(model, ": image_size ", image_size,
                " is too small for the network (its feature map vanishes); image sizes that "
                "work: ",
                works);
  throw Error(model, ": image_size ", image_size, " gives a ", f, "x", f,
              " feature map, which AdaptiveAvgPool2d((", k, ", ", k,
              ")) does not reduce with equal windows (the map must be a multiple of ", k,
              "); image sizes that work: ", works);
}

ir::ValueId adaptive_avg_pool(ir::Builder& b, ir::ValueId x, int64_t k) {
  const int64_t f = b.shape(x).at(2);
  DLMEM_CHECK(f % k == 0 && b.shape(x).at(3) == f, "adaptive pool of ", ir::shape_str(b.shape(x)),
              " to ", k, " was not validated");
  if (f == k) return x;
  return b.avg_pool(x, f / k, f / k);
}

ir::ValueId conv_no_bias(ir::Builder& b, ir::ValueId x, int64_t out, int64_t k, int64_t stride,
                         const std::string& name, Fan fan, int64_t groups) {
  const int64_t fan_size = fan == Fan::out ? out * k * k : b.shape(x).at(1) / groups * k * k;
  return b.conv2d(x, out, k,
                  {.stride = stride,
                   .padding = (k - 1) / 2,
                   .groups = groups,
                   .bias = false,
                   .weight_init = ir::kaiming_normal(fan_size)},
                  name);
}

ir::ValueId layer_input(const ir::Graph& g, ir::ValueId out, int i) {
  const ir::NodeId n = g.value(out).producer;
  DLMEM_CHECK(n != ir::kNoNode, "value ", g.value(out).name, " has no producer");
  const auto& in = g.node(n).inputs;
  DLMEM_CHECK(i >= 0 && static_cast<size_t>(i) < in.size(), "layer ", g.node(n).name,
              " has no input ", i);
  return in[static_cast<size_t>(i)];
}

void set_bias_init(ir::Graph& g, ir::ValueId out, ir::Init init) {
  const ir::Node& n = g.node(g.value(out).producer);
  DLMEM_CHECK((n.op == ir::OpKind::conv2d || n.op == ir::OpKind::linear) && n.attrs.has_bias,
              "layer ", n.name, " has no bias");
  g.value(n.inputs[2]).init = init;
}

}  // namespace dlmem::models::detail
