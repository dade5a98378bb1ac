// The deep-compression pipeline on a real model and real data (LeNet-300-100 on
// Fashion-MNIST, a few hundred steps): pruned weights stay zero through retraining,
// centroids move by the summed gradients of their clusters, the file decodes to the
// weights that were encoded, and compressed inference runs under a static plan with
// the measured peak within the arena. The CLI's compress and infer commands too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "deploy/compress.h"
#include "deploy/finetune.h"
#include "deploy/inference.h"
#include "deploy/kmeans.h"
#include "deploy/prune.h"
#include "train/init.h"
#include "train/trainer.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/temp_dir.h"
#include "util/cli_run.h"

namespace dlmem::deploy {
namespace {

const char* kModel = "lenet-300-100";

WeightMap initial_weights(const ir::Graph& g) {
  WeightMap w;
  for (const ir::Value& v : g.values())
    if (v.role == ir::Role::weight) w[v.name] = train::init_values(v, 42);
  return w;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Data {
  ImageData d;
  ir::Graph g;
  Data() : g(models::build_model(kModel, {.batch = 32})) {
    d = open_image_data(g, kModel, "fashion-mnist", "", 0, 1);
  }
};

TEST(DeployFineTune, PrunedWeightsStayZeroThroughRetraining) {
  Data data;
  FineTuner ft(kModel, {}, *data.d.train, {.batch = 32, .threads = 1, .lr = 1e-3});
  WeightMap w = initial_weights(data.g);
  std::vector<uint8_t> mask(w.at("fc1.weight").size(), 1);
  prune(w.at("fc1.weight"), mask, density_threshold(w.at("fc1.weight"), 0.3));
  const std::vector<float> before = w.at("fc1.weight");
  ft.set_weights(w);
  ft.constrain_mask("fc1.weight", mask);
  const double first = ft.train(20, nullptr, "a");
  const double later = ft.train(40, nullptr, "b");
  EXPECT_LT(later, first);  // it learns
  const std::vector<float> after = ft.weights().at("fc1.weight");  // read from the executor
  uint64_t moved = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    if (!mask[i]) {
      ASSERT_EQ(std::bit_cast<uint32_t>(after[i]), 0u) << "pruned weight " << i << " is " << after[i];
    } else {
      moved += after[i] != before[i];
    }
  }
  EXPECT_GT(moved, count_kept(mask) * 9 / 10);  // the survivors did train
  EXPECT_FALSE(same_bits(ft.weights().at("fc2.weight"), w.at("fc2.weight")));  // unconstrained layers too
}

TEST(DeployFineTune, CentroidsMoveByTheSumOfTheirClustersGradients) {
  Data data;
  const double lr = 0.05;
  const FineTuneOptions sgd{.batch = 32, .threads = 1, .optimizer = ir::Optimizer::sgd, .lr = lr, .momentum = 0};
  WeightMap w = initial_weights(data.g);
  std::vector<float>& fc2 = w.at("fc2.weight");
  std::vector<uint8_t> mask(fc2.size(), 1);
  prune(fc2, mask, density_threshold(fc2, 0.5));
  std::vector<uint64_t> pos;
  std::vector<float> kept;
  for (size_t i = 0; i < fc2.size(); ++i)
    if (mask[i]) {
      pos.push_back(i);
      kept.push_back(fc2[i]);
    }
  const Clusters c = kmeans(kept, 3);
  std::fill(fc2.begin(), fc2.end(), 0.0f);
  for (size_t j = 0; j < pos.size(); ++j) fc2[pos[j]] = c.centroids[c.assignment[j]];

  // The gradient at the shared weights, from one plain SGD step on the same batch.
  FineTuner free_ft(kModel, {}, *data.d.train, sgd);
  free_ft.set_weights(w);
  free_ft.train(1, nullptr, "free");
  const std::vector<float> stepped = free_ft.weights().at("fc2.weight");
  std::vector<double> expected(c.centroids.begin(), c.centroids.end());
  for (size_t j = 0; j < pos.size(); ++j) expected[c.assignment[j]] -= static_cast<double>(fc2[pos[j]]) - stepped[pos[j]];

  FineTuner shared(kModel, {}, *data.d.train, sgd);
  shared.set_weights(w);
  shared.constrain_shared("fc2.weight", pos, c);
  shared.train(1, nullptr, "shared");
  const std::vector<float>& got = shared.centroids("fc2.weight");
  ASSERT_EQ(got.size(), c.centroids.size());
  double moved = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_NEAR(got[k], expected[k], 1e-5 + 1e-3 * std::fabs(expected[k] - c.centroids[k])) << "centroid " << k;
    moved += std::fabs(got[k] - c.centroids[k]);
  }
  EXPECT_GT(moved, 1e-4);
  // Every member holds its centroid; everything else is +0.0.
  const std::vector<float> now = shared.weights().at("fc2.weight");
  std::vector<uint8_t> member(now.size(), 0);
  for (size_t j = 0; j < pos.size(); ++j) {
    EXPECT_EQ(now[pos[j]], got[c.assignment[j]]);
    member[pos[j]] = 1;
  }
  for (size_t i = 0; i < now.size(); ++i) {
    if (!member[i]) {
      EXPECT_EQ(std::bit_cast<uint32_t>(now[i]), 0u);
    }
  }
}

TEST(DeployCompress, LenetEndToEndFileDecodesToTheWeightsAndInferenceFitsItsPlan) {
  test_util::TempDir dir;
  train::TrainConfig tc;
  tc.model = kModel;
  tc.dataset = "fashion-mnist";
  tc.batch = 64;
  tc.epochs = 1;
  tc.steps_per_epoch = 300;
  tc.evaluate = false;
  tc.threads = 1;
  tc.optim = {.optimizer = ir::Optimizer::adam, .lr = 1e-3};
  train::Trainer t(tc);
  t.run(nullptr);
  WeightMap trained;
  for (const auto& [name, v] : t.state())
    if (name.ends_with("weight") || name.ends_with("bias")) trained[name] = v;

  CompressOptions o;
  o.prune_quality = PerLayer::parse("fc=1.5,fc3=0.8", "--prune-quality", o.prune_quality);
  o.prune_rounds = 2;
  o.steps_per_epoch = 50;
  o.train = {.batch = 64, .threads = 1, .lr = 3e-4};
  o.eval_batch = 1000;
  const std::string path = dir.file("l.dlmz");
  const CompressResult r = compress(kModel, {}, trained, o, path, nullptr);

  EXPECT_EQ(r.file_bytes, read_file(path).size());
  EXPECT_GT(r.ratio, 15.0);
  ASSERT_EQ(r.layers.size(), 3u);
  EXPECT_LT(static_cast<double>(r.kept) / static_cast<double>(r.params), 0.25);
  for (const LayerResult& l : r.layers) {
    EXPECT_LE(l.clusters, 32u);
    EXPECT_GT(l.weight_bits_per_kept, 0.5);
    EXPECT_LT(l.weight_bits_per_kept, 5.0 + 1e-9);  // Huffman never loses to the fixed 5 bits
  }
  EXPECT_EQ(r.dense_bytes, 266610u * 4);
  EXPECT_GT(r.accuracy_before, 0.75);
  EXPECT_GT(r.accuracy_after, r.accuracy_before - 0.03);  // sanity; the targets are benchmarks

  // The file: pruned weights are zero and every kept one is a codebook value.
  const DlmzModel m = load_dlmz(path);
  const WeightMap w = dlmz_weights(m, path);
  const DlmzTensor* fc1 = m.find("fc1.weight");
  ASSERT_TRUE(fc1 && fc1->is_shared);
  uint64_t nonzero = 0;
  for (float x : w.at("fc1.weight")) nonzero += x != 0.0f;
  EXPECT_LE(nonzero, fc1->sparse.positions.size());

  // Compressed inference: the same accuracy as measured during compression (same batch
  // and weights), the measured peak within the arena, activations sharing memory.
  InferenceSession s(m.model, dlmz_config(m, 1000), {.batch = 1000, .threads = 1});
  s.set_weights(w, path);
  ImageData data = open_image_data(s.graph(), m.model, "fashion-mnist", "", 0, 1);
  const InferenceResult ir = s.run(*data.test);
  EXPECT_EQ(ir.images, 10000);
  EXPECT_DOUBLE_EQ(ir.accuracy, r.accuracy_after);
  EXPECT_LE(ir.measured_peak, s.memory().arena);
  EXPECT_EQ(ir.measured_peak, s.memory().planned_peak);
  EXPECT_LE(s.memory().activation_max_live, s.memory().activation_arena);
  EXPECT_LT(s.memory().activation_arena, s.memory().activation_sum);
  EXPECT_GE(s.memory().weight_bytes, 266610u * 4);

  // The sharing plan is lossless: the logits equal those of the unshared plan.
  InferenceSession d(m.model, dlmz_config(m, 1000), {.batch = 1000, .threads = 1, .policy = "default"});
  d.set_weights(w, path);
  d.run(*data.test);
  EXPECT_TRUE(same_bits(s.executor().read_f32(s.graph().outputs[0]), d.executor().read_f32(d.graph().outputs[0])));
}

TEST(DeployCompress, StorageOnlyPrunesToTheGivenDensities) {
  // One-shot pruning to given densities, no retraining or fine-tuning (the AlexNet and
  // VGG-16 benchmark rows): no training graph is built; the file still round-trips.
  test_util::TempDir dir;
  models::ModelConfig mc;
  mc.image_size = 8;
  WeightMap w = initial_weights(models::build_model("mlp-64-32", mc));
  CompressOptions o;
  o.prune_density = PerLayer::parse("fc1=0.1,fc2=0.3,fc3=0.5", "--prune-density", {});
  o.prune_rounds = 1;
  o.retrain_epochs = 0;
  o.finetune_epochs = 0;
  o.dataset = "synthetic";
  o.evaluate = false;
  o.weight_bits = PerLayer::parse("fc=4,fc3=2", "--bits", o.weight_bits);
  const CompressResult r = compress("mlp-64-32", mc, w, o, dir.file("s.dlmz"), nullptr);
  ASSERT_EQ(r.layers.size(), 3u);
  EXPECT_EQ(r.retrain_steps + r.finetune_steps, 0);
  EXPECT_NEAR(r.layers[0].density, 0.1, 0.002);
  EXPECT_NEAR(r.layers[1].density, 0.3, 0.002);
  EXPECT_NEAR(r.layers[2].density, 0.5, 0.01);
  EXPECT_LE(r.layers[0].clusters, 16u);
  EXPECT_LE(r.layers[2].clusters, 4u);
  EXPECT_EQ(r.accuracy_after, -1);
  const WeightMap back = dlmz_weights(load_dlmz(dir.file("s.dlmz")), "s.dlmz");
  EXPECT_TRUE(same_bits(back.at("fc1.bias"), w.at("fc1.bias")));  // biases stored as they are
  uint64_t nonzero = 0;
  for (float x : back.at("fc1.weight")) nonzero += x != 0.0f;
  EXPECT_LE(nonzero, r.layers[0].kept);
  EXPECT_GT(r.ratio, 8.0);
}

using dlmem::test_util::CliRun;
using dlmem::test_util::run_cli;

TEST(DeployCli, CompressThenInfer) {
  test_util::TempDir dir;
  const std::string ck = dir.file("t.ckpt"), out = dir.file("m.dlmz");
  CliRun r = run_cli("train --model lenet-300-100 --epochs 1 --steps 100 --threads 1 --no-eval --save " + ck);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_cli("compress --model lenet-300-100 --checkpoint " + ck + " --out " + out +
          " --prune-quality fc=1.2 --prune-rounds 1 --steps-per-epoch 20 --bits fc=4,fc3=6 --threads 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["ratio"].get<double>(), 10.0);
  EXPECT_EQ(j["layers"][0]["weight_bits"], 4);
  EXPECT_EQ(j["layers"][2]["weight_bits"], 6);
  EXPECT_EQ(j["file_bytes"].get<uint64_t>(), read_file(out).size());

  r = run_cli("infer --model " + out + " --batch 500 --threads 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto k = nlohmann::json::parse(r.out);
  EXPECT_EQ(k["images"], 10000);
  EXPECT_EQ(k["model"], "lenet-300-100");
  EXPECT_GT(k["accuracy"].get<double>(), 0.5);
  EXPECT_LE(k["measured_peak_bytes"].get<uint64_t>(), k["arena_bytes"].get<uint64_t>());
  EXPECT_LT(k["activation_arena_bytes"].get<uint64_t>(), k["activation_sum_bytes"].get<uint64_t>());

  r = run_cli("infer --model " + out + " --batch 500 --threads 1");  // the table for people
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("test accuracy"), std::string::npos) << r.out;

  // User errors: exit 2, one line, no internal error.
  const std::string bad = dir.file("bad.dlmz");
  write_file_atomic(bad, std::as_bytes(std::span<const char>("not a model", 11)));
  for (const std::string& args :
       {"compress --model lenet-300-100 --out " + out, "compress --model lenet-300-100 --checkpoint " + ck + " --out " + out + " --bits fc=13",
        "compress --model lenet-300-100 --checkpoint " + ck + " --out " + out + " --prune-quality fcx=1",
        "compress --model lenet5 --checkpoint " + ck + " --out " + out, "infer --model " + dir.file("none.dlmz"),
        "infer --model " + bad}) {
    r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("error"), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("internal error"), std::string::npos) << args << "\n" << r.out;
  }
}

}  // namespace
}  // namespace dlmem::deploy
