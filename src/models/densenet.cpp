// DenseNet-121 as torchvision defines it (Huang et al. 2017; torchvision/models/
// densenet.py with memory_efficient=False): growth rate 32, blocks (6, 12, 24, 16),
// bottleneck width bn_size * growth = 128, compression 0.5, no dropout; 7,978,856
// parameters at 3x224x224 and 1000 classes.
//
//   features.conv0 7x7/2 (64) -> norm0 -> relu0 -> pool0 max 3/2 pad 1
//   features.denseblock<i>.denselayer<j>: concat(all earlier maps) -> norm1 -> ReLU ->
//     conv1 1x1 (128) -> norm2 -> ReLU -> conv2 3x3 (32)
//   features.transition<i>: norm -> ReLU -> conv 1x1 (halves the channels) -> avg-pool 2/2
//   features.norm5 -> ReLU -> global average pool -> classifier
//
// The memory-inefficient form, as the reference runs it by default: every dense layer
// concatenates its inputs into a new tensor (quadratic memory in the block length),
// and each block ends with the concatenation of all its maps.
// Initialisation as torchvision: convolutions kaiming_normal (fan_in), batch norm 1/0,
// classifier nn.Linear's default weight with a zero bias.
#include "models/common.h"

namespace dlmem::models::detail {

namespace {

constexpr int64_t kGrowth = 32;
constexpr int64_t kBnSize = 4;

int64_t densenet_feature(int64_t s) {
  s = window_out(s, 7, 2, 3);
  s = window_out(s, 3, 2, 1);
  for (int i = 0; i < 3; ++i) s = window_out(s, 2, 2, 0);
  return s;
}

}  // namespace

ir::Graph build_densenet121(const ModelConfig& c) {
  const int64_t size = pick(c.image_size, 224);
  const int64_t classes = pick(c.num_classes, 1000);
  check_min_image_size("densenet121", size, densenet_feature);
  const int block_config[] = {6, 12, 24, 16};

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  auto [x, y] = image_batch(b, c, 3, size);
  {
    auto s = b.scope("features");
    x = b.relu(b.batch_norm(conv_no_bias(b, x, 64, 7, 2, "conv0", Fan::in), "norm0"));
    x = b.max_pool(x, 3, 2, 1);
    for (int i = 0; i < 4; ++i) {
      {
        auto sb = b.scope("denseblock" + std::to_string(i + 1));
        std::vector<ir::ValueId> maps = {x};
        for (int j = 0; j < block_config[i]; ++j) {
          auto sl = b.scope("denselayer" + std::to_string(j + 1));
          ir::ValueId h = b.concat(maps, 1);
          h = conv_no_bias(b, b.relu(b.batch_norm(h, "norm1")), kBnSize * kGrowth, 1, 1, "conv1",
                           Fan::in);
          h = conv_no_bias(b, b.relu(b.batch_norm(h, "norm2")), kGrowth, 3, 1, "conv2", Fan::in);
          maps.push_back(h);
        }
        x = b.concat(maps, 1);
      }
      if (i != 3) {
        auto st = b.scope("transition" + std::to_string(i + 1));
        const int64_t channels = b.shape(x)[1];
        x = conv_no_bias(b, b.relu(b.batch_norm(x, "norm")), channels / 2, 1, 1, "conv", Fan::in);
        x = b.avg_pool(x, 2, 2);
      }
    }
    x = b.batch_norm(x, "norm5");
  }
  x = b.global_avg_pool(b.relu(x));
  x = b.linear(x, classes, "classifier");
  set_bias_init(g, x, zeros_init());
  b.softmax_xent(x, y);
  return g;
}

}  // namespace dlmem::models::detail
