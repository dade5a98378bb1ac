// What several benchmarks share: the machine's load beside each figure
// (../shared/BENCHMARKING.md: a timing is read with the load it ran under), and the
// training graph of a zoo model as `dlmem plan` builds it.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "ir/autodiff.h"
#include "models/zoo.h"
#include "runtime/backend.h"
#include "session/session.h"

namespace dlmem::bench {

// The 1-minute load average, or -1 where /proc/loadavg cannot be read.
inline double load_average() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  if (!(f >> l)) l = -1;
  return l;
}

// A zoo model's training graph (the default optimizer: SGD with momentum) with the
// backend's kernel workspaces attached. image_size 0: the model's standard size.
inline ir::Graph training_graph(const std::string& model, int64_t batch, int64_t image_size,
                                runtime::Backend& be) {
  return session::build_graph({.model = model, .config = {.batch = batch, .image_size = image_size}}, &be);
}

}  // namespace dlmem::bench
