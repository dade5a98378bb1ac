// AlexNet as torchvision defines it (torchvision/models/alexnet.py, the one-GPU variant
// of Krizhevsky 2014 "One weird trick"): 61,100,840 parameters at 3x224x224 and 1000
// classes, PyTorch's default initialisation.
//
//   features:   0 conv 64@11x11/4 pad 2, 1 ReLU, 2 max-pool 3/2,
//               3 conv 192@5x5 pad 2,    4 ReLU, 5 max-pool 3/2,
//               6 conv 384@3x3 pad 1,    7 ReLU, 8 conv 256@3x3, 9 ReLU,
//              10 conv 256@3x3,         11 ReLU, 12 max-pool 3/2
//   avgpool:    AdaptiveAvgPool2d((6, 6)) (see check_adaptive_pool)
//   classifier: 0 dropout 0.5, 1 linear 9216->4096, 2 ReLU, 3 dropout 0.5,
//               4 linear 4096->4096, 5 ReLU, 6 linear 4096->classes
#include "models/common.h"

namespace dlmem::models::detail {

namespace {
int64_t alexnet_feature(int64_t s) {
  s = window_out(s, 11, 4, 2);
  s = window_out(s, 3, 2, 0);
  s = window_out(s, 5, 1, 2);
  s = window_out(s, 3, 2, 0);
  s = window_out(s, 3, 1, 1);
  return window_out(s, 3, 2, 0);
}
}  // namespace

ir::Graph build_alexnet(const ModelConfig& c) {
  const int64_t size = pick(c.image_size, 224);
  const int64_t classes = pick(c.num_classes, 1000);
  check_adaptive_pool("alexnet", size, 6, alexnet_feature);

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  auto [x, y] = image_batch(b, c, 3, size);
  {
    auto s = b.scope("features");
    x = b.relu(b.conv2d(x, 64, 11, {.stride = 4, .padding = 2}, "0"));
    x = b.max_pool(x, 3, 2);
    x = b.relu(b.conv2d(x, 192, 5, {.padding = 2}, "3"));
    x = b.max_pool(x, 3, 2);
    x = b.relu(b.conv2d(x, 384, 3, {.padding = 1}, "6"));
    x = b.relu(b.conv2d(x, 256, 3, {.padding = 1}, "8"));
    x = b.relu(b.conv2d(x, 256, 3, {.padding = 1}, "10"));
    x = b.max_pool(x, 3, 2);
  }
  x = b.flatten(adaptive_avg_pool(b, x, 6));
  {
    auto s = b.scope("classifier");
    x = b.relu(b.linear(b.dropout(x, 0.5), 4096, "1"));
    x = b.relu(b.linear(b.dropout(x, 0.5), 4096, "4"));
    x = b.linear(x, classes, "6");
  }
  b.softmax_xent(x, y);
  return g;
}

}  // namespace dlmem::models::detail
