// Residual networks.
//
// resnet18/34/50/101/152: torchvision's ResNet (He et al. 2015, with the "v1.5" stride on
// the 3x3 convolution of a bottleneck): 11,689,512 / 21,797,672 / 25,557,032 /
// 44,549,160 / 60,192,808 parameters at 3x224x224 and 1000 classes.
//   conv1 7x7/2 (64) -> bn1 -> ReLU -> max-pool 3/2 pad 1 -> layer1..layer4 (64, 128,
//   256, 512 planes; the first block of layer2..4 has stride 2) -> global average
//   pool -> fc. Blocks are post-activation: conv-bn-ReLU ... bn, add the shortcut,
//   ReLU; the shortcut is "downsample" (1x1 conv + bn) when the stride or the width
//   changes. Convolutions have no bias and kaiming_normal(fan_out) weights; fc has
//   nn.Linear's default initialisation.
//
// resnet<depth> for other depth = 9n + 2: the CIFAR bottleneck ResNet of He et al. 2016
// ("Identity Mappings in Deep Residual Networks", Sec. 4: ResNet-164, ResNet-1001), at
// 3x32x32 and 10 classes: conv1 3x3 (16) -> bn1 -> ReLU -> layer1..layer3 of n
// bottleneck blocks each (16, 32, 64 planes, x4 expansion: 64, 128, 256 outputs; layer2
// and layer3 start with stride 2) -> global average pool -> fc. Each bottleneck has 3
// convolutions, so depth = 3 stages * n blocks * 3 + conv1 + fc = 9n + 2. The blocks
// are torchvision's post-activation bottlenecks (the paper's are pre-activation: same
// layers and memory character, slightly different batch-norm placement), with the same
// layer names. resnet101 is torchvision's (101 = 9 * 11 + 2 is also a CIFAR depth).
#include <array>

#include "models/common.h"
#include "util/error.h"

namespace dlmem::models::detail {

namespace {

ir::ValueId shortcut(ir::Builder& b, ir::ValueId x, int64_t out, int64_t stride) {
  if (stride == 1 && b.shape(x)[1] == out) return x;
  return b.batch_norm(conv_no_bias(b, x, out, 1, stride, "downsample.0"), "downsample.1");
}

ir::ValueId basic_block(ir::Builder& b, ir::ValueId x, int64_t planes, int64_t stride) {
  ir::ValueId out = b.relu(b.batch_norm(conv_no_bias(b, x, planes, 3, stride, "conv1"), "bn1"));
  out = b.batch_norm(conv_no_bias(b, out, planes, 3, 1, "conv2"), "bn2");
  return b.relu(b.add(out, shortcut(b, x, planes, stride)));
}

ir::ValueId bottleneck(ir::Builder& b, ir::ValueId x, int64_t planes, int64_t stride) {
  ir::ValueId out = b.relu(b.batch_norm(conv_no_bias(b, x, planes, 1, 1, "conv1"), "bn1"));
  out = b.relu(b.batch_norm(conv_no_bias(b, out, planes, 3, stride, "conv2"), "bn2"));
  out = b.batch_norm(conv_no_bias(b, out, planes * 4, 1, 1, "conv3"), "bn3");
  return b.relu(b.add(out, shortcut(b, x, planes * 4, stride)));
}

ir::ValueId make_layer(ir::Builder& b, ir::ValueId x, const std::string& name, bool bottle,
                       int64_t planes, int blocks, int64_t stride) {
  auto s = b.scope(name);
  for (int i = 0; i < blocks; ++i) {
    auto sb = b.scope(std::to_string(i));
    const int64_t st = i == 0 ? stride : 1;
    x = bottle ? bottleneck(b, x, planes, st) : basic_block(b, x, planes, st);
  }
  return x;
}

}  // namespace

ir::Graph build_resnet(int depth, const ModelConfig& c) {
  std::array<int, 4> blocks{};
  switch (depth) {
    case 18:
      blocks = {2, 2, 2, 2};
      break;
    case 34:
      blocks = {3, 4, 6, 3};
      break;
    case 50:
      blocks = {3, 4, 6, 3};
      break;
    case 101:
      blocks = {3, 4, 23, 3};
      break;
    case 152:
      blocks = {3, 8, 36, 3};
      break;
    default:
      throw Error("resnet: torchvision has no depth ", depth, "; use 18, 34, 50, 101 or 152");
  }
  const bool bottle = depth >= 50;
  const int64_t size = pick(c.image_size, 224);
  const int64_t classes = pick(c.num_classes, 1000);

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  auto [x, y] = image_batch(b, c, 3, size);
  x = b.relu(b.batch_norm(conv_no_bias(b, x, 64, 7, 2, "conv1"), "bn1"));
  x = b.max_pool(x, 3, 2, 1);
  x = make_layer(b, x, "layer1", bottle, 64, blocks[0], 1);
  x = make_layer(b, x, "layer2", bottle, 128, blocks[1], 2);
  x = make_layer(b, x, "layer3", bottle, 256, blocks[2], 2);
  x = make_layer(b, x, "layer4", bottle, 512, blocks[3], 2);
  b.softmax_xent(b.linear(b.global_avg_pool(x), classes, "fc"), y);
  return g;
}

ir::Graph build_cifar_resnet(int depth, const ModelConfig& c) {
  if (depth < 11 || (depth - 2) % 9 != 0)
    throw Error("resnet", depth,
                ": the CIFAR bottleneck ResNet needs depth = 9n + 2 with n >= 1 "
                "(11, 20, 29, ..., 164, ..., 1001); torchvision's depths are 18, 34, 50, 101, 152");
  const int n = (depth - 2) / 9;
  const int64_t size = pick(c.image_size, 32);
  const int64_t classes = pick(c.num_classes, 10);

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  auto [x, y] = image_batch(b, c, 3, size);
  x = b.relu(b.batch_norm(conv_no_bias(b, x, 16, 3, 1, "conv1"), "bn1"));
  x = make_layer(b, x, "layer1", true, 16, n, 1);
  x = make_layer(b, x, "layer2", true, 32, n, 2);
  x = make_layer(b, x, "layer3", true, 64, n, 2);
  b.softmax_xent(b.linear(b.global_avg_pool(x), classes, "fc"), y);
  return g;
}

}  // namespace dlmem::models::detail
