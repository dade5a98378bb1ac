// VGG-16 and VGG-19 (configurations D and E of Simonyan & Zisserman 2015) as torchvision
// defines them, without batch norm: 138,357,544 and 143,667,240 parameters at 3x224x224
// and 1000 classes. torchvision's initialisation: convolutions kaiming_normal(fan_out)
// with zero bias, linear layers N(0, 0.01) with zero bias.
//
//   features:   3x3 convolutions (pad 1) each followed by ReLU, max-pool 2/2 after each
//               stage; indices count every module (conv, ReLU, pool) as torchvision does
//   avgpool:    AdaptiveAvgPool2d((7, 7)) (see check_adaptive_pool)
//   classifier: 0 linear 25088->4096, 1 ReLU, 2 dropout 0.5, 3 linear 4096->4096,
//               4 ReLU, 5 dropout 0.5, 6 linear 4096->classes
#include "models/common.h"
#include "util/error.h"

namespace dlmem::models::detail {

namespace {
int64_t vgg_feature(int64_t s) {
  for (int i = 0; i < 5; ++i) s = window_out(s, 2, 2, 0);
  return s;
}
}  // namespace

ir::Graph build_vgg(int depth, const ModelConfig& c) {
  constexpr int64_t M = 0;  // a max-pool in the configuration
  std::vector<int64_t> cfg;
  if (depth == 16)
    cfg = {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M};
  else if (depth == 19)
    cfg = {64,  64,  M,   128, 128, M,   256, 256, 256, 256, M,
           512, 512, 512, 512, M,   512, 512, 512, 512, M};
  else
    throw Error("vgg: depth ", depth, " is not built; use vgg16 or vgg19");
  const std::string name = "vgg" + std::to_string(depth);
  const int64_t size = pick(c.image_size, 224);
  const int64_t classes = pick(c.num_classes, 1000);
  check_adaptive_pool(name, size, 7, vgg_feature);

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  auto [x, y] = image_batch(b, c, 3, size);
  {
    auto s = b.scope("features");
    int index = 0;
    for (int64_t v : cfg) {
      if (v == M) {
        x = b.max_pool(x, 2, 2);
        index += 1;
        continue;
      }
      x = b.conv2d(x, v, 3, {.padding = 1, .weight_init = ir::kaiming_normal(v * 9)},
                   std::to_string(index));
      set_bias_init(g, x, zeros_init());
      x = b.relu(x);
      index += 2;
    }
  }
  x = b.flatten(adaptive_avg_pool(b, x, 7));
  {
    auto s = b.scope("classifier");
    const ir::Init init = normal_init(0.01f);
    x = b.dropout(b.relu(b.linear(x, 4096, "0", true, init)), 0.5);
    x = b.dropout(b.relu(b.linear(x, 4096, "3", true, init)), 0.5);
    x = b.linear(x, classes, "6", true, init);
  }
  b.softmax_xent(x, y);
  return g;
}

}  // namespace dlmem::models::detail
