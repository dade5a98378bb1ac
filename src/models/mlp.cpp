// Multi-layer perceptrons on flattened images: "mlp" is 784-1024-1024-1024-10 with ReLU,
// "mlp-<h1>-<h2>-..." any hidden sizes (zoo.cpp parses the name). Layers are fc1, fc2,
// ... as in the usual PyTorch definitions (nn.Linear's default initialisation).
#include "models/common.h"
#include "util/error.h"

namespace dlmem::models::detail {

ir::Graph build_mlp(const std::vector<int64_t>& hidden, const ModelConfig& c) {
  const int64_t size = pick(c.image_size, 28);
  const int64_t classes = pick(c.num_classes, 10);
  for (int64_t h : hidden)
    if (h <= 0) throw Error("mlp: hidden sizes must be positive, got ", h);

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  ir::ValueId x = b.flatten(b.input("input", {c.batch, 1, size, size}));
  ir::ValueId y = b.label("label", {c.batch});
  int layer = 1;
  for (int64_t h : hidden) x = b.relu(b.linear(x, h, "fc" + std::to_string(layer++)));
  b.softmax_xent(b.linear(x, classes, "fc" + std::to_string(layer)), y);
  return g;
}

}  // namespace dlmem::models::detail
