// Which weights of a model Deep Compression compresses, and per-layer settings.
//
//   auto layers = deploy::compressible_layers(g);   // conv2d and linear weights
//   auto bits = deploy::PerLayer::parse("conv=8,fc=5,fc3=6", "--bits", {8, 5});
//   bits.validate(layers, "--bits");                 // unknown layer names -> Error
//   int b = static_cast<int>(bits.get(layers[0]));
//
// Convolution and fully connected weights are pruned and weight-shared; biases and
// normalisation parameters (a few hundred values) are stored as they are, as in the
// paper, whose per-layer tables count only the weight matrices' connections.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace dlmem::deploy {

enum class LayerKind : uint8_t { conv, fc };
std::string_view layer_kind_name(LayerKind);  // "conv", "fc"

struct Layer {
  std::string name;    // "fc1", "features.0"
  std::string weight;  // "fc1.weight"
  LayerKind kind = LayerKind::fc;
  ir::ValueId value = ir::kNoValue;
  ir::Shape shape;
  int64_t numel() const;
};

// The weights (input 1) of conv2d and linear nodes, in graph order, each once.
std::vector<Layer> compressible_layers(const ir::Graph&);

// A setting with one default for conv layers, one for fc layers, and overrides by
// layer name.
struct PerLayer {
  double conv = 0;
  double fc = 0;
  std::map<std::string, double> by_name;

  double get(const Layer& l) const;
  bool empty() const { return conv == 0 && fc == 0 && by_name.empty(); }

  // "1.5" (every layer), "conv=8,fc=5", "fc1=1.3,conv=0.5" -- later items override
  // earlier ones. `flag` names the option in errors. Starts from `defaults`.
  static PerLayer parse(std::string_view text, const std::string& flag, PerLayer defaults);
  // dlmem::Error when a name is not one of the layers (listing them).
  void validate(const std::vector<Layer>& layers, const std::string& flag) const;
  // "conv=8,fc=5" (+ overrides)
  std::string str() const;
};

}  // namespace dlmem::deploy
