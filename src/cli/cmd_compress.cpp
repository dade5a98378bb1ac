// dlmem compress: Deep Compression of a trained checkpoint into a .dlmz file
// (docs/deploy.md).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "deploy/compress.h"
#include "util/error.h"
#include "util/format.h"
#include "util/table.h"

namespace dlmem::cli {

namespace {

struct CompressArgs {
  ModelArgs model;
  std::string checkpoint, out;
  std::string quality, density, bits, index_bits;
  deploy::CompressOptions opt;
  double lr = 1e-3;
  bool json = false;
};

std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100 * x);
  return b;
}
std::string fixed(double x, int digits) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, x);
  return b;
}

int run(CompressArgs& a) {
  if (a.checkpoint.empty()) throw Error("compress needs --checkpoint (trained weights: dlmem train --model ", a.model.model, " --save trained.ckpt)");
  if (a.out.empty()) throw Error("compress needs --out (the .dlmz file to write)");
  deploy::CompressOptions& o = a.opt;
  o.train.batch = a.model.batch;
  o.train.optimizer = a.model.parsed_optimizer();
  o.train.lr = a.lr;
  if (!a.quality.empty()) o.prune_quality = deploy::PerLayer::parse(a.quality, "--prune-quality", o.prune_quality);
  if (!a.density.empty()) o.prune_density = deploy::PerLayer::parse(a.density, "--prune-density", o.prune_density);
  if (!a.bits.empty()) o.weight_bits = deploy::PerLayer::parse(a.bits, "--bits", o.weight_bits);
  if (!a.index_bits.empty()) o.index_bits = deploy::PerLayer::parse(a.index_bits, "--index-bits", o.index_bits);
  const models::ModelConfig mc = a.model.config(true);
  const ir::Graph g = models::build_model(a.model.model, mc);
  const deploy::WeightMap trained = deploy::load_checkpoint_weights(a.checkpoint, a.model.model, g);
  const deploy::CompressResult r = deploy::compress(a.model.model, mc, trained, o, a.out, a.json ? nullptr : &std::cerr);

  if (a.json) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : r.layers)
      layers.push_back({{"layer", l.layer.name},
                        {"kind", deploy::layer_kind_name(l.layer.kind)},
                        {"shape", l.layer.shape},
                        {"params", l.layer.numel()},
                        {"kept", l.kept},
                        {"density", l.density},
                        {"threshold", l.threshold},
                        {"weight_bits", l.weight_bits},
                        {"clusters", l.clusters},
                        {"index_bits", l.index_bits},
                        {"huffman_weight_bits_per_kept", l.weight_bits_per_kept},
                        {"huffman_index_bits_per_kept", l.index_bits_per_kept},
                        {"fillers", l.fillers},
                        {"dense_bytes", l.dense_bytes},
                        {"file_bytes", l.file_bytes}});
    std::cout << nlohmann::json{{"model", r.model},
                                {"dataset", r.dataset},
                                {"out", a.out},
                                {"layers", layers},
                                {"other_dense_bytes", r.other_dense_bytes},
                                {"other_file_bytes", r.other_file_bytes},
                                {"dense_bytes", r.dense_bytes},
                                {"file_bytes", r.file_bytes},
                                {"ratio", r.ratio},
                                {"density", r.params ? static_cast<double>(r.kept) / static_cast<double>(r.params) : 1.0},
                                {"accuracy_before", r.accuracy_before},
                                {"accuracy_pruned", r.accuracy_pruned},
                                {"accuracy_after", r.accuracy_after},
                                {"retrain_steps", r.retrain_steps},
                                {"finetune_steps", r.finetune_steps},
                                {"seconds", r.seconds}}
                     .dump(2)
              << "\n";
    return 0;
  }
  Table t({{"layer", Align::Left}, {"kind", Align::Left}, "params", "density", "bits", "clusters", "index bits",
           "Huffman w/idx bits", "before", "after", "ratio"});
  for (const auto& l : r.layers)
    t.add_row({l.layer.name, std::string(deploy::layer_kind_name(l.layer.kind)), human_count(static_cast<uint64_t>(l.layer.numel())),
               pct(l.density), std::to_string(l.weight_bits), std::to_string(l.clusters), std::to_string(l.index_bits),
               fixed(l.weight_bits_per_kept, 2) + " / " + fixed(l.index_bits_per_kept, 2), human_bytes(l.dense_bytes),
               human_bytes(l.file_bytes), fixed(static_cast<double>(l.dense_bytes) / static_cast<double>(l.file_bytes), 1) + "x"});
  t.add_row({"(biases, other)", "", "", "", "32", "", "", "", human_bytes(r.other_dense_bytes), human_bytes(r.other_file_bytes),
             fixed(static_cast<double>(r.other_dense_bytes) / static_cast<double>(std::max<uint64_t>(r.other_file_bytes, 1)), 1) + "x"});
  t.add_row({"total", "", human_count(r.params), pct(r.params ? static_cast<double>(r.kept) / static_cast<double>(r.params) : 1.0),
             "", "", "", "", human_bytes(r.dense_bytes), human_bytes(r.file_bytes), fixed(r.ratio, 1) + "x"});
  std::cout << t.str();
  std::cout << "wrote " << a.out << ": " << human_bytes(r.file_bytes) << " (" << r.file_bytes << " bytes), " << fixed(r.ratio, 1)
            << "x smaller than the f32 weights (" << human_bytes(r.dense_bytes) << ")\n";
  if (r.accuracy_before >= 0)
    std::cout << "test accuracy (" << r.dataset << "): before " << pct(r.accuracy_before) << ", after pruning "
              << pct(r.accuracy_pruned) << ", after compression " << pct(r.accuracy_after) << " (decoded from the file; "
              << fixed(100 * (r.accuracy_after - r.accuracy_before), 2) << " points)\n";
  std::cout << "retraining " << r.retrain_steps << " steps per round, centroid fine-tuning " << r.finetune_steps << " steps, "
            << human_duration(r.seconds) << "\n";
  return 0;
}

}  // namespace

std::function<int()> add_compress(CLI::App& app) {
  auto* cmd = app.add_subcommand("compress", "deep compression (prune, share weights, Huffman) of a checkpoint into a .dlmz");
  auto a = std::make_shared<CompressArgs>();
  a->model.optimizer = "adam";
  a->model.add(*cmd, 64);
  auto& o = a->opt;
  cmd->add_option("--checkpoint", a->checkpoint, "trained weights (dlmem train --save)");
  cmd->add_option("--out,-o", a->out, "the .dlmz file to write (atomically)");
  cmd->add_option("--prune-quality", a->quality,
                  "pruning threshold = quality x std of each layer's weights: 1.4, or conv=1,fc=2,fc3=1.3 (0: keep all) "
                  "[default conv=1,fc=2]");
  cmd->add_option("--prune-density", a->density, "instead of a quality, the fraction of weights to keep: fc6=0.09,conv=0.35");
  cmd->add_option("--prune-rounds", o.prune_rounds, "iterative pruning: rounds, each followed by retraining")->capture_default_str();
  cmd->add_option("--retrain-epochs", o.retrain_epochs, "retraining per pruning round (epochs; 0: one-shot)")->capture_default_str();
  cmd->add_option("--bits", a->bits, "weight-sharing bits (2^bits clusters) [default conv=8,fc=5]");
  cmd->add_option("--index-bits", a->index_bits, "relative-index bits (gaps beyond use filler entries) [default conv=8,fc=5]");
  cmd->add_option("--finetune-epochs", o.finetune_epochs, "centroid fine-tuning (epochs; 0: none)")->capture_default_str();
  cmd->add_option("--steps-per-epoch", o.steps_per_epoch, "steps that make an epoch (0: a pass over the training set)");
  cmd->add_option("--lr", a->lr, "learning rate of retraining")->capture_default_str();
  cmd->add_option("--finetune-lr", o.finetune_lr, "learning rate of centroid fine-tuning (0: --lr)");
  cmd->add_option("--dataset", o.dataset, "fashion-mnist | synthetic | auto")->capture_default_str();
  cmd->add_option("--data-dir", o.data_dir, "Fashion-MNIST directory (default /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--threads", o.train.threads, "compute threads (0: default)")->capture_default_str();
  cmd->add_option("--seed", o.train.seed, "seed of shuffling and dropout")->capture_default_str();
  cmd->add_flag("!--no-eval", o.evaluate, "skip test accuracy");
  cmd->add_flag("--json", a->json, "print the result as one JSON object (no progress)");
  return [a] { return run(*a); };
}

}  // namespace dlmem::cli
