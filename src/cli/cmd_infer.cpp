// dlmem infer: test accuracy, throughput and memory of a compressed model (.dlmz)
// under a static inference memory plan (docs/deploy.md).
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "deploy/finetune.h"
#include "deploy/inference.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::cli {

namespace {

struct InferArgs {
  std::string file;
  std::string dataset = "auto";
  std::string data_dir;
  deploy::InferenceOptions opt;
  int64_t synthetic_size = 2048;
  bool json = false;
};

int run(InferArgs& a) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(a.file, ec))
    throw Error("infer reads a compressed model file written by 'dlmem compress' (--model m.dlmz); '", a.file,
                "' is not a file");
  const deploy::DlmzModel m = deploy::load_dlmz(a.file);
  const uint64_t file_bytes = std::filesystem::file_size(a.file);
  const deploy::WeightMap w = deploy::dlmz_weights(m, a.file);
  uint64_t dense = 0;
  for (const auto& [name, v] : w) dense += 4 * v.size();
  deploy::InferenceSession s(m.model, deploy::dlmz_config(m, a.opt.batch), a.opt);
  s.set_weights(w, a.file);
  deploy::ImageData data = deploy::open_image_data(s.graph(), m.model, a.dataset, a.data_dir, a.synthetic_size, 42);
  const deploy::InferenceResult r = s.run(*data.test, a.json ? nullptr : &std::cerr);
  const deploy::InferenceMemory& mem = s.memory();
  if (a.json) {
    std::cout << nlohmann::json{{"file", a.file},
                                {"model", m.model},
                                {"dataset", data.name},
                                {"file_bytes", file_bytes},
                                {"dense_weight_bytes", dense},
                                {"batch", a.opt.batch},
                                {"images", r.images},
                                {"accuracy", r.accuracy},
                                {"seconds", r.seconds},
                                {"images_per_second", r.images_per_second},
                                {"policy", mem.policy},
                                {"arena_bytes", mem.arena},
                                {"planned_peak_bytes", mem.planned_peak},
                                {"measured_peak_bytes", r.measured_peak},
                                {"weight_bytes", mem.weight_bytes},
                                {"activation_sum_bytes", mem.activation_sum},
                                {"activation_arena_bytes", mem.activation_arena},
                                {"activation_max_live_bytes", mem.activation_max_live}}
                     .dump(2)
              << "\n";
    return 0;
  }
  char acc[32], ratio[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * r.accuracy);
  std::snprintf(ratio, sizeof ratio, "%.2f",
                mem.activation_arena ? static_cast<double>(mem.activation_sum) / static_cast<double>(mem.activation_arena) : 0.0);
  std::cout << a.file << ": " << m.model << ", " << human_bytes(file_bytes) << " on disk, " << human_bytes(dense)
            << " of f32 weights once decoded\n"
            << "test accuracy " << acc << " on " << r.images << " images (" << data.name << "), "
            << static_cast<int64_t>(r.images_per_second) << " images/s at batch " << a.opt.batch << "\n"
            << "memory plan (" << mem.policy << "): arena " << human_bytes(mem.arena) << ", measured peak "
            << human_bytes(r.measured_peak) << " = weights " << human_bytes(mem.weight_bytes) << " + activations\n"
            << "inputs, activations and workspaces: " << human_bytes(mem.activation_sum) << " with a buffer each, "
            << human_bytes(mem.activation_arena) << " placed in a shared arena (" << ratio << "x less; max-live bound "
            << human_bytes(mem.activation_max_live) << ")\n";
  return 0;
}

}  // namespace

std::function<int()> add_infer(CLI::App& app) {
  auto* cmd = app.add_subcommand("infer", "test accuracy, images/s and memory of a compressed model (.dlmz)");
  auto a = std::make_shared<InferArgs>();
  cmd->add_option("--model,-m", a->file, "the .dlmz file (dlmem compress --out)")->required();
  cmd->add_option("--dataset", a->dataset, "fashion-mnist | synthetic | auto")->capture_default_str();
  cmd->add_option("--data-dir", a->data_dir, "Fashion-MNIST directory (default /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--batch,-b", a->opt.batch, "images per batch")->capture_default_str();
  cmd->add_option("--threads", a->opt.threads, "compute threads (0: default)")->capture_default_str();
  cmd->add_option("--policy,-p", a->opt.policy, "memory policy of the inference plan (default: share)");
  cmd->add_flag("--json", a->json, "print the result as one JSON object (no progress)");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
