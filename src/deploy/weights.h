// Every weight of a model (trainable ones and state such as running statistics), by
// name, as train::Trainer::state() and checkpoints name them.
//
//   deploy::WeightMap w = deploy::dlmz_weights(deploy::load_dlmz("m.dlmz"), "m.dlmz");
//   w.at("fc1.weight")   // f32 values in the tensor's row-major order
#pragma once

#include <map>
#include <string>
#include <vector>

namespace dlmem::deploy {

using WeightMap = std::map<std::string, std::vector<float>>;

}  // namespace dlmem::deploy
