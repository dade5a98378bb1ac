// MobileNetV2 as torchvision defines it (Sandler et al. 2018; torchvision/models/
// mobilenetv2.py, width 1.0): 3,504,872 parameters at 3x224x224 and 1000 classes.
//
//   features.0:      conv 3x3/2 (32) -> bn -> ReLU6           (Conv2dNormActivation)
//   features.1..17:  inverted residuals, (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2)
//                    (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1):
//                    [expand 1x1 (t*in) -> bn -> ReLU6] -> depthwise 3x3/s -> bn -> ReLU6
//                    -> project 1x1 (c) -> bn, plus the input when s == 1 and in == c
//   features.18:     conv 1x1 (1280) -> bn -> ReLU6
//   global average pool -> classifier.0 dropout 0.2 -> classifier.1 linear
//
// Initialisation as torchvision: convolutions kaiming_normal(fan_out), batch norm 1/0,
// the classifier N(0, 0.01) with a zero bias.
#include "models/common.h"

namespace dlmem::models::detail {

namespace {

// Conv2dNormActivation: "<name>.0" conv, "<name>.1" batch norm, ReLU6.
ir::ValueId conv_bn_relu6(ir::Builder& b, ir::ValueId x, int64_t out, int64_t k, int64_t stride,
                          int64_t groups, const std::string& name) {
  auto s = b.scope(name);
  return b.relu6(b.batch_norm(conv_no_bias(b, x, out, k, stride, "0", Fan::out, groups), "1"));
}

ir::ValueId inverted_residual(ir::Builder& b, ir::ValueId x, int64_t out, int64_t stride,
                              int64_t expand) {
  const int64_t in = b.shape(x)[1];
  const int64_t hidden = in * expand;
  auto s = b.scope("conv");
  int i = 0;
  ir::ValueId h = x;
  if (expand != 1) h = conv_bn_relu6(b, h, hidden, 1, 1, 1, std::to_string(i++));
  h = conv_bn_relu6(b, h, hidden, 3, stride, hidden, std::to_string(i++));
  h = conv_no_bias(b, h, out, 1, 1, std::to_string(i++));
  h = b.batch_norm(h, std::to_string(i++));
  return stride == 1 && in == out ? b.add(x, h) : h;
}

}  // namespace

ir::Graph build_mobilenet_v2(const ModelConfig& c) {
  const int64_t size = pick(c.image_size, 224);
  const int64_t classes = pick(c.num_classes, 1000);
  struct Setting {
    int64_t t, c, n, s;
  };
  const Setting settings[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  auto [x, y] = image_batch(b, c, 3, size);
  {
    auto s = b.scope("features");
    int index = 0;
    x = conv_bn_relu6(b, x, 32, 3, 2, 1, std::to_string(index++));
    for (const Setting& st : settings) {
      for (int64_t i = 0; i < st.n; ++i) {
        auto sb = b.scope(std::to_string(index++));
        x = inverted_residual(b, x, st.c, i == 0 ? st.s : 1, st.t);
      }
    }
    x = conv_bn_relu6(b, x, 1280, 1, 1, 1, std::to_string(index++));
  }
  x = b.global_avg_pool(x);
  {
    auto s = b.scope("classifier");
    x = b.linear(b.dropout(x, 0.2), classes, "1", true, normal_init(0.01f));
  }
  b.softmax_xent(x, y);
  return g;
}

}  // namespace dlmem::models::detail
