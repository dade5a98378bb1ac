// The model zoo: builders for the networks the literature measures, with parameter
// counts equal to the reference implementations (torchvision, HuggingFace, the papers).
//
//   ir::Graph g = models::build_model("resnet50", {.batch = 64});
//   for (const auto& m : models::list_models()) std::cout << m.name << "\n";
//
// Conventions every builder follows (the trainer and the executor rely on them):
//  - image models read "input" (f32 [N, C, H, W]); token models read "ids" (i32 [N, T]).
//  - the label is "label" (i32 [N], or [N, T] for language models).
//  - the graph's loss is the mean softmax cross-entropy (Builder::softmax_xent) and
//    g.outputs[0] are the logits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace dlmem::models {

struct ModelConfig {
  int64_t batch = 1;
  bool training = true;      // batch-norm statistics and dropout behaviour
  int64_t image_size = 0;    // 0: the model's standard input (224, 28, 32, ...)
  int64_t num_classes = 0;   // 0: the model's standard classes (1000, 10, ...)
  int64_t seq_len = 0;       // 0: the model's default sequence length
  int64_t vocab = 0;         // 0: the model's default vocabulary
  uint64_t seed = 0x5eed;    // dropout seeds
};

struct ModelInfo {
  std::string name;
  std::string description;   // one line: family, input, reference implementation
  int64_t reference_params;  // parameters of the reference implementation at defaults
};

std::vector<ModelInfo> list_models();
// Throws dlmem::Error for an unknown name (listing the known ones) or a bad config.
// A name ending in ".onnx" is an ONNX file, imported with the zoo's conventions
// (models/onnx/onnx.h).
ir::Graph build_model(std::string_view name, const ModelConfig& config);

}  // namespace dlmem::models
