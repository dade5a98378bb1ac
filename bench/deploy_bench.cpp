// Deep Compression end to end (Han, Mao and Dally, ICLR 2016), one JSON line per model:
//  - lenet-300-100 and lenet5 on Fashion-MNIST: train a baseline, compress it (iterative
//    pruning with retraining, k-means weight sharing with centroid fine-tuning, Huffman
//    coding into a .dlmz), decode the file and measure test accuracy and inference under
//    the static sharing plan. Reported against the baseline of the same run: the storage
//    ratio (f32 weights / file bytes) against the paper's 40x and 39x, and the accuracy
//    change (target: within 0.5 points).
//  - alexnet and vgg16: weights trained a few SGD steps on synthetic 224x224 images, pruned
//    in one shot to the per-layer densities the paper reports (its Tables 4 and 5, since
//    ImageNet retraining is out of reach here), shared with 8 bits (conv) / 5 bits (fc) and
//    Huffman coded: the storage ratio beside the paper's 35x and 49x.
//
//   deploy_bench [--quick] [--threads 1] [--models lenet-300-100,lenet5,alexnet,vgg16]
//                [--data-dir DIR]
//
// --quick: fewer baseline epochs and shorter retraining (a smoke run for `make bench`;
// its accuracies are lower than a full run's), one training step for alexnet/vgg16.
// Threads default to 1: on the shared 2-core machines, OpenMP's spinning workers make
// 2 threads many times slower whenever another process runs (see docs/benchmarks.md).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "deploy/compress.h"
#include "deploy/dlmz.h"
#include "deploy/inference.h"
#include "train/trainer.h"
#include "util/error.h"
#include "common.h"

using namespace dlmem;
using bench::load_average;

namespace {


double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Args {
  bool quick = false;
  int threads = 1;
  std::vector<std::string> models = {"lenet-300-100", "lenet5", "alexnet", "vgg16"};
  std::string data_dir;
  std::string dir;  // scratch directory for the .dlmz files
};

// The model's weights (not optimizer state) from a trainer.
deploy::WeightMap weights_of(const train::Trainer& t) {
  deploy::WeightMap w;
  const auto state = t.state();
  for (const ir::Value& v : t.graph().values())
    if (v.role == ir::Role::weight) w[v.name] = state.at(v.name);
  return w;
}

// The ratio if every codebook index took its full configured bits instead of its
// Huffman code: a conservative figure where few clusters are used (weights still near
// their initialisation, e.g. AlexNet's uniform ones after a few steps).
double ratio_full_index_bits(const deploy::CompressResult& r) {
  double bytes = static_cast<double>(r.file_bytes);
  for (const auto& l : r.layers)
    bytes += static_cast<double>(l.kept) * (l.weight_bits - l.weight_bits_per_kept) / 8;
  return static_cast<double>(r.dense_bytes) / bytes;
}

nlohmann::json layers_json(const deploy::CompressResult& r) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& l : r.layers)
    a.push_back({{"layer", l.layer.name},
                 {"kind", deploy::layer_kind_name(l.layer.kind)},
                 {"params", l.layer.numel()},
                 {"density", l.density},
                 {"weight_bits", l.weight_bits},
                 {"clusters", l.clusters},
                 {"index_bits", l.index_bits},
                 {"huffman_weight_bits", l.weight_bits_per_kept},
                 {"huffman_index_bits", l.index_bits_per_kept},
                 {"dense_bytes", l.dense_bytes},
                 {"file_bytes", l.file_bytes}});
  return a;
}

struct LenetSetup {
  const char* model;
  double paper_ratio;
  const char* quality;  // --prune-quality
  const char* bits;     // --bits
  double epochs;        // --retrain-epochs and --finetune-epochs of a full run
};

// Settings chosen on Fashion-MNIST (docs/benchmarks.md records the search): LeNet-5
// loses 1.3 points with one epoch of retraining per round at these qualities, 0.5
// with three.
const LenetSetup kLenets[] = {
    {"lenet-300-100", 40, "fc=2.0,fc3=1.3", "conv=8,fc=5", 1},
    {"lenet5", 39, "conv=1.0,conv2=1.6,fc=2.3", "conv=8,fc=5", 3},
};

nlohmann::json lenet_row(const LenetSetup& s, const Args& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const double load0 = load_average();
  // 1. The baseline: Adam, lr 1e-3 (dlmem train's defaults).
  train::TrainConfig tc;
  tc.model = s.model;
  tc.dataset = "fashion-mnist";
  tc.data_dir = a.data_dir;
  tc.batch = 64;
  tc.epochs = a.quick ? 2 : 10;
  tc.evaluate = false;
  tc.threads = a.threads;
  tc.seed = 42;
  tc.optim = {.optimizer = ir::Optimizer::adam, .lr = 1e-3};
  deploy::WeightMap trained;
  {
    train::Trainer t(tc);
    t.run(nullptr);
    trained = weights_of(t);
  }
  const double train_s = since(t0);

  // 2. Compression: 3 rounds of pruning, each with retraining, then weight sharing
  // with centroid fine-tuning (Adam, lr 1e-3).
  deploy::CompressOptions o;
  o.prune_quality = deploy::PerLayer::parse(s.quality, "--prune-quality", o.prune_quality);
  o.weight_bits = deploy::PerLayer::parse(s.bits, "--bits", o.weight_bits);
  o.prune_rounds = 3;
  o.retrain_epochs = a.quick ? 1 : s.epochs;
  o.finetune_epochs = a.quick ? 1 : s.epochs;
  o.steps_per_epoch = a.quick ? 300 : 0;
  o.dataset = "fashion-mnist";
  o.data_dir = a.data_dir;
  o.train = {.batch = 64, .threads = a.threads, .seed = 42, .optimizer = ir::Optimizer::adam, .lr = 1e-3};
  o.eval_batch = 500;
  const std::string path = a.dir + "/" + s.model + ".dlmz";
  const auto t1 = std::chrono::steady_clock::now();
  const deploy::CompressResult r = deploy::compress(s.model, {}, trained, o, path, nullptr);
  const double compress_s = since(t1);

  // 3. Compressed inference from the file, and the same session on the dense baseline
  // weights, back to back (images/s of both, one ratio).
  const auto t2 = std::chrono::steady_clock::now();
  const deploy::DlmzModel m = deploy::load_dlmz(path);
  const deploy::WeightMap decoded = deploy::dlmz_weights(m, path);
  const double decode_s = since(t2);
  deploy::InferenceSession sess(m.model, deploy::dlmz_config(m, 100), {.batch = 100, .threads = a.threads});
  deploy::ImageData data = deploy::open_image_data(sess.graph(), m.model, "fashion-mnist", a.data_dir, 0, 1);
  sess.set_weights(decoded, path);
  const deploy::InferenceResult ic = sess.run(*data.test);
  sess.set_weights(trained, "baseline");
  const deploy::InferenceResult id = sess.run(*data.test);
  const deploy::InferenceMemory& mem = sess.memory();

  const double delta_pp = 100 * (r.accuracy_after - r.accuracy_before);
  return {{"bench", "deploy"},
          {"model", s.model},
          {"dataset", "fashion-mnist"},
          {"mode", a.quick ? "quick" : "full"},
          {"threads", a.threads},
          {"baseline_epochs", tc.epochs},
          {"prune_quality", s.quality},
          {"bits", s.bits},
          {"retrain_steps_per_round", r.retrain_steps / 3},
          {"finetune_steps", r.finetune_steps},
          {"dense_bytes", r.dense_bytes},
          {"file_bytes", r.file_bytes},
          {"ratio", r.ratio},
          {"paper_ratio", s.paper_ratio},
          {"ratio_full_index_bits", ratio_full_index_bits(r)},
          {"density", static_cast<double>(r.kept) / static_cast<double>(r.params)},
          {"accuracy_before", r.accuracy_before},
          {"accuracy_pruned", r.accuracy_pruned},
          {"accuracy_after", r.accuracy_after},
          {"accuracy_change_pp", delta_pp},
          {"accuracy_infer", ic.accuracy},
          {"target_met", r.ratio >= s.paper_ratio && delta_pp >= -0.5},
          {"layers", layers_json(r)},
          {"infer_images_per_second", ic.images_per_second},
          {"infer_speed_vs_dense", ic.images_per_second / std::max(id.images_per_second, 1e-9)},
          {"decode_seconds", decode_s},
          {"arena_bytes", mem.arena},
          {"weight_bytes", mem.weight_bytes},
          {"activation_sum_bytes", mem.activation_sum},
          {"activation_arena_bytes", mem.activation_arena},
          {"activation_max_live_bytes", mem.activation_max_live},
          {"activation_sharing", static_cast<double>(mem.activation_sum) / static_cast<double>(mem.activation_arena)},
          {"measured_peak_bytes", ic.measured_peak},
          {"plan_policy", mem.policy},
          {"train_seconds", train_s},
          {"compress_seconds", compress_s},
          {"loadavg_1m_start", load0},
          {"loadavg_1m_end", load_average()}};
}

struct StorageSetup {
  const char* model;
  double paper_ratio;
  std::vector<double> conv_density, fc_density;  // the paper's "Weights%" per layer
};

// Han, Mao and Dally 2016, Table 4 (AlexNet) and Table 5 (VGG-16), weights remaining
// after pruning, per layer in order.
const StorageSetup kStorage[] = {
    {"alexnet", 35, {0.84, 0.38, 0.35, 0.37, 0.37}, {0.09, 0.09, 0.25}},
    {"vgg16", 49, {0.58, 0.22, 0.34, 0.36, 0.53, 0.24, 0.42, 0.32, 0.27, 0.34, 0.35, 0.29, 0.36}, {0.04, 0.04, 0.23}},
};

nlohmann::json storage_row(const StorageSetup& s, const Args& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const double load0 = load_average();
  train::TrainConfig tc;
  tc.model = s.model;
  tc.dataset = "synthetic";
  tc.synthetic_size = 64;
  tc.batch = 2;
  tc.epochs = 1;
  tc.steps_per_epoch = a.quick ? 1 : 3;
  tc.evaluate = false;
  tc.threads = a.threads;
  tc.optim = {.optimizer = ir::Optimizer::sgd, .lr = 0.01, .momentum = 0.9};
  deploy::WeightMap trained;
  {
    train::Trainer t(tc);
    t.run(nullptr);
    trained = weights_of(t);
  }
  const double train_s = since(t0);

  deploy::CompressOptions o;
  const ir::Graph g = models::build_model(s.model, {.batch = 1});
  const auto layers = deploy::compressible_layers(g);
  size_t conv = 0, fc = 0;
  for (const auto& l : layers) {
    const auto& list = l.kind == deploy::LayerKind::conv ? s.conv_density : s.fc_density;
    size_t& i = l.kind == deploy::LayerKind::conv ? conv : fc;
    DLMEM_CHECK(i < list.size(), s.model, ": more layers than the paper's table");
    o.prune_density.by_name[l.name] = list[i++];
  }
  DLMEM_CHECK(conv == s.conv_density.size() && fc == s.fc_density.size(), s.model, ": fewer layers than the table");
  o.prune_rounds = 1;
  o.retrain_epochs = 0;
  o.finetune_epochs = 0;
  o.dataset = "synthetic";
  o.synthetic_size = 64;
  o.evaluate = false;
  o.train.threads = a.threads;
  const std::string path = a.dir + "/" + s.model + ".dlmz";
  const auto t1 = std::chrono::steady_clock::now();
  const deploy::CompressResult r = deploy::compress(s.model, {}, trained, o, path, nullptr);
  const double compress_s = since(t1);
  std::filesystem::remove(path);
  return {{"bench", "deploy"},
          {"model", s.model},
          {"dataset", "synthetic 3x224x224"},
          {"mode", a.quick ? "quick" : "full"},
          {"threads", a.threads},
          {"train_steps", tc.steps_per_epoch},
          {"pruning", "one-shot to the paper's per-layer densities"},
          {"dense_bytes", r.dense_bytes},
          {"file_bytes", r.file_bytes},
          {"ratio", r.ratio},
          {"paper_ratio", s.paper_ratio},
          {"ratio_vs_paper", r.ratio / s.paper_ratio},
          {"ratio_full_index_bits", ratio_full_index_bits(r)},
          {"density", static_cast<double>(r.kept) / static_cast<double>(r.params)},
          {"layers", layers_json(r)},
          {"train_seconds", train_s},
          {"compress_seconds", compress_s},
          {"loadavg_1m_start", load0},
          {"loadavg_1m_end", load_average()}};
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "deploy_bench: " << k << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--quick") a.quick = true;
    else if (k == "--threads") a.threads = std::stoi(value());
    else if (k == "--models") a.models = split(value());
    else if (k == "--data-dir") a.data_dir = value();
    else {
      std::cerr << "deploy_bench: unknown option " << k << " (--quick, --threads N, --models a,b, --data-dir D)\n";
      return 2;
    }
  }
  a.dir = (std::filesystem::temp_directory_path() / ("dlmem-deploy-bench-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(a.dir);
  int status = 0;
  for (const std::string& model : a.models) {
    try {
      bool known = false;
      for (const LenetSetup& s : kLenets)
        if (model == s.model) {
          std::cout << lenet_row(s, a).dump() << std::endl;
          known = true;
        }
      for (const StorageSetup& s : kStorage)
        if (model == s.model) {
          std::cout << storage_row(s, a).dump() << std::endl;
          known = true;
        }
      if (!known) {
        std::cerr << "deploy_bench: no setup for model '" << model << "' (lenet-300-100, lenet5, alexnet, vgg16)\n";
        status = 2;
      }
    } catch (const std::exception& e) {
      std::cerr << "deploy_bench: " << model << ": " << e.what() << "\n";
      status = 1;
    }
  }
  std::filesystem::remove_all(a.dir);
  return status;
}
