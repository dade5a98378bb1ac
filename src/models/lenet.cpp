// The LeNets of Deep Compression (Han et al. 2016, Table 2), as the Caffe model zoo
// defines them, with PyTorch-style layer names:
//  - LeNet-300-100: 784-300-100-10 with ReLU (fc1, fc2, fc3), 266,610 parameters.
//  - LeNet-5 (Caffe's lenet_train_test.prototxt): conv1 20@5x5 -> max-pool 2/2 ->
//    conv2 50@5x5 -> max-pool 2/2 -> fc1 500 -> ReLU -> fc2 10 (no activation after the
//    convolutions, as in Caffe), 431,080 parameters.
// Input 1x28x28 (MNIST / Fashion-MNIST), 10 classes.
#include "models/common.h"

namespace dlmem::models::detail {

ir::Graph build_lenet_300_100(const ModelConfig& c) { return build_mlp({300, 100}, c); }

ir::Graph build_lenet5(const ModelConfig& c) {
  const int64_t size = pick(c.image_size, 28);
  const int64_t classes = pick(c.num_classes, 10);
  check_min_image_size("lenet5", size, [](int64_t s) {
    return window_out(window_out(window_out(window_out(s, 5, 1, 0), 2, 2, 0), 5, 1, 0), 2, 2, 0);
  });

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  auto [x, y] = image_batch(b, c, 1, size);
  x = b.max_pool(b.conv2d(x, 20, 5, {}, "conv1"), 2, 2);
  x = b.max_pool(b.conv2d(x, 50, 5, {}, "conv2"), 2, 2);
  x = b.relu(b.linear(b.flatten(x), 500, "fc1"));
  b.softmax_xent(b.linear(x, classes, "fc2"), y);
  return g;
}

}  // namespace dlmem::models::detail
