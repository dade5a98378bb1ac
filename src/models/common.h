// Helpers shared by the model-zoo builders (private to src/models), and the builders
// of each family. zoo.cpp validates what every model shares (batch, signs of the
// overrides, which overrides a model takes) before calling a family builder; the family
// builder resolves its defaults and checks what only it knows (image too small, sequence
// longer than the position table).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ir/builder.h"
#include "ir/graph.h"
#include "models/zoo.h"

namespace dlmem::models::detail {

// An image classifier's inputs: "input" [batch, channels, size, size] and "label" [batch].
struct ImageBatch {
  ir::ValueId x, y;
};
inline ImageBatch image_batch(ir::Builder& b, const ModelConfig& c, int64_t channels, int64_t size) {
  const ir::ValueId x = b.input("input", {c.batch, channels, size, size});
  return {x, b.label("label", {c.batch})};
}

// `value` when the user set it (non-zero), else the model's default.
inline int64_t pick(int64_t value, int64_t fallback) { return value != 0 ? value : fallback; }

// Spatial extent after a convolution or pooling window (PyTorch's floor rule), or 0 when
// the window does not fit (or `in` is already 0).
int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t padding);

// A network's final feature-map extent as a function of the image size (0: too small).
using FeatureFn = std::function<int64_t(int64_t)>;

// The smallest image size for which `feature` gives a map of at least 1x1.
int64_t min_image_size(const FeatureFn& feature);

// Image sizes for which `feature` is a positive multiple of `k`, as ranges:
// "223-254, 415-446, 607-638, ...".
std::string sizes_where_multiple(const FeatureFn& feature, int64_t k);

// Throws dlmem::Error unless `size` is at least min_image_size(feature).
void check_min_image_size(const std::string& model, int64_t size, const FeatureFn& feature);

// torchvision's AdaptiveAvgPool2d((k, k)) on a map of extent `f`: the identity when
// f == k, an average pool with kernel = stride = f / k when k divides f. Other extents
// (which PyTorch handles with overlapping windows) throw dlmem::Error naming the image
// sizes that work.
void check_adaptive_pool(const std::string& model, int64_t image_size, int64_t k,
                         const FeatureFn& feature);
ir::ValueId adaptive_avg_pool(ir::Builder& b, ir::ValueId x, int64_t k);

// The weight (input `i`) of the layer whose output is `out`: the bias of a conv2d is
// input 2, an embedding's table is input 1.
ir::ValueId layer_input(const ir::Graph& g, ir::ValueId out, int i);
// Sets how the bias of the conv2d or linear layer producing `out` is initialised (the
// Builder gives biases PyTorch's default; many models zero them).
void set_bias_init(ir::Graph& g, ir::ValueId out, ir::Init init);

// A convolution without bias and with "same" padding (k - 1) / 2, its weight initialised
// as torchvision's ResNet, DenseNet and MobileNet do: kaiming_normal (ReLU gain) on
// fan_out = out * k * k (the default here) or on fan_in = in / groups * k * k.
enum class Fan : uint8_t { in, out };
ir::ValueId conv_no_bias(ir::Builder& b, ir::ValueId x, int64_t out, int64_t k, int64_t stride,
                         const std::string& name, Fan fan = Fan::out, int64_t groups = 1);

inline ir::Init normal_init(float stddev) { return ir::Init{ir::Init::Kind::normal, 0.0f, stddev}; }
inline ir::Init uniform_init(float bound) {
  return ir::Init{ir::Init::Kind::uniform, -bound, bound};
}
inline ir::Init zeros_init() { return ir::Init{ir::Init::Kind::zeros}; }

// Family builders (one file each).
ir::Graph build_mlp(const std::vector<int64_t>& hidden, const ModelConfig& c);  // mlp.cpp
ir::Graph build_lenet_300_100(const ModelConfig& c);                            // lenet.cpp
ir::Graph build_lenet5(const ModelConfig& c);                                   // lenet.cpp
ir::Graph build_alexnet(const ModelConfig& c);                                  // alexnet.cpp
ir::Graph build_vgg(int depth, const ModelConfig& c);                           // vgg.cpp (16, 19)
ir::Graph build_resnet(int depth, const ModelConfig& c);                        // resnet.cpp
ir::Graph build_cifar_resnet(int depth, const ModelConfig& c);                  // resnet.cpp (9n+2)
ir::Graph build_densenet121(const ModelConfig& c);                              // densenet.cpp
ir::Graph build_mobilenet_v2(const ModelConfig& c);                             // mobilenet.cpp
enum class BertSize { tiny, base, large };
ir::Graph build_bert(BertSize size, const ModelConfig& c);                         // transformer.cpp
ir::Graph build_gpt2(bool medium, const ModelConfig& c);                        // transformer.cpp
ir::Graph build_lstm(const ModelConfig& c);                                     // lstm.cpp

}  // namespace dlmem::models::detail
