#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "models/onnx/onnx.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

std::function<int()> add_models(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "list the model zoo with parameter counts");
  auto json = std::make_shared<bool>(false);
  auto onnx_ops = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "one JSON array");
  cmd->add_flag("--onnx-ops", *onnx_ops, "list the ONNX ops --onnx imports instead (one per line, or a JSON array)");
  return [json, onnx_ops] {
    if (*onnx_ops) {
      const auto ops = models::onnx::supported_ops();
      if (*json) std::cout << nlohmann::json(ops).dump() << "\n";
      else
        for (const auto& o : ops) std::cout << o << "\n";
      return 0;
    }
    auto list = models::list_models();
    if (*json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& m : list) j.push_back({{"name", m.name}, {"parameters", m.reference_params}, {"description", m.description}});
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    Table t({{"model", Align::Left}, {"parameters", Align::Right}, {"", Align::Right}, {"description", Align::Left}});
    for (const auto& m : list)
      t.add_row({m.name, std::to_string(m.reference_params), human_count(static_cast<uint64_t>(m.reference_params)), m.description});
    std::cout << t.str();
    return 0;
  };
}

}  // namespace dlmem::cli
