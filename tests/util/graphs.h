// The training graphs the tests plan and run, built as every caller builds them
// (session::build_graph: the zoo builder, autodiff with the optimizer, and, when a
// backend is given, its kernel workspaces).
//
//   ir::Graph g = test_util::training_graph("resnet18", {.batch = 4, .image_size = 64});
//   ir::Graph w = test_util::training_graph("lenet5", {.batch = 8}, /*workspaces=*/true);
#pragma once

#include <string>

#include "runtime/backend.h"
#include "session/session.h"

namespace dlmem::test_util {

inline ir::Graph training_graph(const std::string& model, models::ModelConfig config, bool workspaces = false,
                                ir::TrainOptions train = {}) {
  config.training = true;
  const session::SessionOptions o{.model = model, .config = config, .train = train};
  if (!workspaces) return session::build_graph(o, nullptr);
  auto be = runtime::make_cpu_backend({.threads = 1});
  return session::build_graph(o, be.get());
}

}  // namespace dlmem::test_util
