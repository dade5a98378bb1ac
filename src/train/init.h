// Weight initialisation as the reference implementations do it (ir::Init on each
// weight: PyTorch's kaiming-uniform default for conv/linear, torchvision's
// kaiming-normal for ResNet convs, ones/zeros for norms, N(0, 0.02) for BERT/GPT-2).
//
//   train::init_weights(executor, graph, /*seed=*/42);
//
// Each value draws from its own generator, seeded from the run's seed and the value's
// name, so a weight's initial value does not depend on the order of the others. The
// uniform and normal conversions are written here (not std:: distributions, whose
// algorithms differ between standard libraries) so runs are reproducible everywhere.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/graph.h"
#include "runtime/executor.h"

namespace dlmem::train {

std::vector<float> init_values(const ir::Value&, uint64_t seed);
void init_weights(runtime::Executor&, const ir::Graph&, uint64_t seed);

}  // namespace dlmem::train
