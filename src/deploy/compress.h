// The Deep Compression pipeline (Han, Mao and Dally, ICLR 2016, Fig. 1) from trained
// weights to a .dlmz file:
//   1. pruning: per layer, magnitudes below quality x std of the layer's weights go;
//      an iterative schedule of rounds, each followed by retraining with the masks
//      (Han et al. NeurIPS 2015, Sec. 3 and 3.3);
//   2. weight sharing: k-means per layer with linear initialisation, 2^bits clusters
//      (8 bits for conv, 5 for fc by default, Sec. 3), then fine-tuning of the
//      centroids with the gradients summed per cluster (Sec. 3.3);
//   3. Huffman coding of the codebook indices and of the relative indices (Sec. 4),
//      written as a .dlmz (deploy/dlmz.h).
// The file is then read back and checked to reproduce the final weights bit for bit,
// and the test accuracy is measured on the decoded weights.
//
//   deploy::CompressOptions o;                       // defaults: see below
//   o.prune_quality = deploy::PerLayer::parse("fc=1.4", "--prune-quality", o.prune_quality);
//   deploy::CompressResult r = deploy::compress("lenet5", mc, trained, o, "m.dlmz", &std::cerr);
//   r.ratio, r.accuracy_before, r.accuracy_after
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "deploy/finetune.h"
#include "deploy/layers.h"
#include "models/zoo.h"

namespace dlmem::deploy {

struct CompressOptions {
  // Pruning threshold = quality x std of the layer's trained weights; 0: not pruned.
  PerLayer prune_quality{.conv = 1.0, .fc = 2.0};
  // Layers given a density (a fraction in (0, 1]) are pruned to keep that fraction
  // instead (threshold = that quantile of |w|); 0: use the quality.
  PerLayer prune_density;
  int prune_rounds = 3;          // iterative schedule: round r uses r / rounds of the threshold
  double retrain_epochs = 1.0;   // per round; 0: one-shot pruning, no retraining
  PerLayer weight_bits{.conv = 8, .fc = 5};   // k-means clusters: 2^bits (1..12)
  PerLayer index_bits{.conv = 8, .fc = 5};    // relative indices (1..12)
  double finetune_epochs = 1.0;  // centroid fine-tuning; 0: none
  int64_t steps_per_epoch = 0;   // 0: a pass over the training set

  std::string dataset = "auto";  // fashion-mnist | synthetic | auto
  std::string data_dir;
  int64_t synthetic_size = 2048;
  FineTuneOptions train;         // batch, threads, seed, optimizer, lr (retraining)
  double finetune_lr = 0;        // centroids; 0: train.lr
  bool evaluate = true;          // test accuracy before / after pruning / after all
  int64_t eval_batch = 500;
};

struct LayerResult {
  Layer layer;
  double threshold = 0;        // final pruning threshold
  uint64_t kept = 0;           // surviving weights
  double density = 1;          // kept / params
  int weight_bits = 0;         // configured
  int index_bits = 0;
  uint64_t clusters = 0;       // codebook entries used
  uint64_t dense_bytes = 0;    // f32
  uint64_t file_bytes = 0;     // its .dlmz section
  double weight_bits_per_kept = 0;  // Huffman-coded codebook indices
  double index_bits_per_kept = 0;   // Huffman-coded relative indices, fillers included
  uint64_t fillers = 0;
};

struct CompressResult {
  std::string model;
  std::string dataset;
  std::vector<LayerResult> layers;
  uint64_t other_dense_bytes = 0;  // biases and other weights, stored as f32
  uint64_t other_file_bytes = 0;
  uint64_t dense_bytes = 0;        // every weight as f32 (the checkpoint's weights)
  uint64_t file_bytes = 0;         // the .dlmz
  double ratio = 0;                // dense_bytes / file_bytes
  uint64_t params = 0, kept = 0;   // compressible layers
  double accuracy_before = -1, accuracy_pruned = -1, accuracy_after = -1;  // -1: not measured
  int64_t retrain_steps = 0, finetune_steps = 0;
  double seconds = 0;
};

// Runs the pipeline on `trained` (every weight of `model`) and writes `out_path`
// atomically. Progress to `log` (nullptr: quiet).
CompressResult compress(const std::string& model, models::ModelConfig mc, const WeightMap& trained,
                        const CompressOptions& opt, const std::string& out_path, std::ostream* log);

}  // namespace dlmem::deploy
