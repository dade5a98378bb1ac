#include "deploy/compress.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "deploy/dlmz.h"
#include "deploy/inference.h"
#include "deploy/kmeans.h"
#include "deploy/prune.h"
#include "deploy/sparse_index.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::deploy {

namespace {

int checked_bits(double v, const Layer& l, const char* flag) {
  if (v < 1 || v > 12 || v != std::floor(v))
    throw Error(flag, " for layer ", l.name, " is ", v, "; use a whole number of bits from 1 to 12");
  return static_cast<int>(v);
}

void check_options(const CompressOptions& o, const std::vector<Layer>& layers) {
  if (o.prune_rounds < 0) throw Error("--prune-rounds must be 0 or more, got ", o.prune_rounds);
  if (!(o.retrain_epochs >= 0)) throw Error("--retrain-epochs must be 0 or more, got ", o.retrain_epochs);
  if (!(o.finetune_epochs >= 0)) throw Error("--finetune-epochs must be 0 or more, got ", o.finetune_epochs);
  if (o.steps_per_epoch < 0) throw Error("--steps-per-epoch must be 0 or more, got ", o.steps_per_epoch);
  if (o.eval_batch <= 0) throw Error("the evaluation batch must be positive, got ", o.eval_batch);
  if (o.train.batch <= 0) throw Error("--batch must be positive, got ", o.train.batch);
  o.prune_quality.validate(layers, "--prune-quality");
  o.prune_density.validate(layers, "--prune-density");
  o.weight_bits.validate(layers, "--bits");
  o.index_bits.validate(layers, "--index-bits");
  for (const Layer& l : layers) {
    checked_bits(o.weight_bits.get(l), l, "--bits");
    checked_bits(o.index_bits.get(l), l, "--index-bits");
    const double d = o.prune_density.get(l);
    if (d > 1) throw Error("--prune-density for layer ", l.name, " is ", d, "; use a fraction in (0, 1]");
  }
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

CompressResult compress(const std::string& model, models::ModelConfig mc, const WeightMap& trained,
                        const CompressOptions& opt, const std::string& out_path, std::ostream* log) {
  const auto t0 = std::chrono::steady_clock::now();
  CompressResult res;
  res.model = model;
  mc.training = true;
  mc.batch = opt.train.batch;
  // The data (its shape comes from the model's input).
  const ir::Graph shape_graph = models::build_model(model, mc);
  ImageData data = open_image_data(shape_graph, model, opt.dataset, opt.data_dir, opt.synthetic_size, opt.train.seed);
  res.dataset = data.name;
  const std::vector<Layer> layers = compressible_layers(shape_graph);
  if (layers.empty()) throw Error("model '", model, "' has no convolution or fully connected weights to compress");
  check_options(opt, layers);
  for (const ir::Value& v : shape_graph.values()) {
    if (v.role != ir::Role::weight) continue;
    auto it = trained.find(v.name);
    if (it == trained.end() || it->second.size() != static_cast<size_t>(v.type.numel()))
      throw Error("the trained weights lack '", v.name, "' ", v.type.str(), " of model '", model, "'");
  }

  // The fine-tuner (a training graph of the whole model) only when something trains:
  // storage-only runs (one-shot pruning, no fine-tuning) of large models skip it.
  const int64_t batches = data.train->size() / opt.train.batch;
  const int64_t per_epoch = opt.steps_per_epoch > 0 ? opt.steps_per_epoch : batches;
  auto steps_for = [&](double epochs) { return static_cast<int64_t>(std::llround(epochs * static_cast<double>(per_epoch))); };
  const int64_t retrain = opt.prune_rounds > 0 ? steps_for(opt.retrain_epochs) : 0;
  res.finetune_steps = steps_for(opt.finetune_epochs);
  std::unique_ptr<FineTuner> ft;
  if (retrain > 0 || res.finetune_steps > 0) {
    ft = std::make_unique<FineTuner>(model, mc, *data.train, opt.train);
    ft->set_weights(trained);
  }

  std::unique_ptr<InferenceSession> eval;
  auto accuracy = [&](const WeightMap& w, const char* what) {
    if (!opt.evaluate) return -1.0;
    if (!eval) eval = std::make_unique<InferenceSession>(model, mc, InferenceOptions{.batch = opt.eval_batch, .threads = opt.train.threads});
    eval->set_weights(w, what);
    const double a = eval->run(*data.test).accuracy;
    if (log) *log << "test accuracy " << what << ": " << 100 * a << "%\n";
    return a;
  };
  res.accuracy_before = accuracy(trained, "before compression");

  // 1. Pruning (Han et al. 2015, Sec. 3): an iterative schedule with retraining.
  WeightMap w = trained;
  std::vector<std::vector<uint8_t>> masks;
  std::vector<float> final_threshold;
  for (const Layer& l : layers) {
    const std::vector<float>& x = w.at(l.weight);
    masks.emplace_back(x.size(), uint8_t{1});
    const double density = opt.prune_density.get(l);
    final_threshold.push_back(density > 0 ? density_threshold(x, density)
                                          : static_cast<float>(opt.prune_quality.get(l) * stddev(x)));
  }
  for (int r = 1; r <= opt.prune_rounds; ++r) {
    for (size_t i = 0; i < layers.size(); ++i) {
      std::vector<float>& x = w.at(layers[i].weight);
      prune(x, masks[i], round_threshold(final_threshold[i], r, opt.prune_rounds));
      if (ft) ft->constrain_mask(layers[i].weight, masks[i]);
    }
    if (ft) ft->set_weights(w);
    if (log) {
      uint64_t kept = 0, all = 0;
      for (size_t i = 0; i < layers.size(); ++i) kept += count_kept(masks[i]), all += masks[i].size();
      *log << "pruning round " << r << "/" << opt.prune_rounds << ": " << 100.0 * static_cast<double>(kept) / static_cast<double>(all)
           << "% of the weights kept\n";
    }
    if (retrain > 0) {
      ft->train(retrain, log, "retrain " + std::to_string(r));
      res.retrain_steps += retrain;
      w = ft->weights();
    }
  }
  res.accuracy_pruned = opt.prune_rounds > 0 ? accuracy(w, "after pruning") : res.accuracy_before;

  // 2. Weight sharing (Han et al. 2016, Sec. 3): k-means on the survivors, then the
  // centroids fine-tuned.
  std::vector<std::vector<uint64_t>> positions(layers.size());
  std::vector<Clusters> clusters(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::vector<float>& x = w.at(layers[i].weight);
    std::vector<float> kept;
    for (size_t j = 0; j < x.size(); ++j)
      if (masks[i][j]) {
        positions[i].push_back(j);
        kept.push_back(x[j]);
      }
    clusters[i] = kmeans(kept, checked_bits(opt.weight_bits.get(layers[i]), layers[i], "--bits"));
    if (ft) {
      ft->constrain_shared(layers[i].weight, positions[i], clusters[i]);
    } else {
      std::vector<float>& x = w.at(layers[i].weight);
      std::fill(x.begin(), x.end(), 0.0f);
      for (size_t j = 0; j < positions[i].size(); ++j) x[positions[i][j]] = clusters[i].centroids[clusters[i].assignment[j]];
    }
  }
  if (res.finetune_steps > 0) {
    if (opt.finetune_lr > 0) ft->set_lr(opt.finetune_lr);
    ft->train(res.finetune_steps, log, "fine-tune centroids");
  }
  if (ft) w = ft->weights();

  // 3. Huffman coding into the .dlmz.
  DlmzModel m;
  m.model = model;
  m.image_size = mc.image_size;
  m.num_classes = mc.num_classes;
  for (const ir::Value& v : shape_graph.values()) {
    if (v.role != ir::Role::weight) continue;
    size_t li = layers.size();
    for (size_t i = 0; i < layers.size(); ++i)
      if (layers[i].weight == v.name) li = i;
    if (li == layers.size()) {
      m.tensors.push_back(DlmzTensor::dense(v.name, v.type.shape, w.at(v.name)));
      continue;
    }
    SharedSparse s;
    s.numel = static_cast<uint64_t>(v.type.numel());
    s.index_bits = checked_bits(opt.index_bits.get(layers[li]), layers[li], "--index-bits");
    s.codebook = ft ? ft->centroids(v.name) : clusters[li].centroids;
    s.positions = positions[li];
    s.codes = clusters[li].assignment;
    m.tensors.push_back(DlmzTensor::shared_sparse(v.name, v.type.shape, std::move(s)));
    DLMEM_CHECK(same_bits(m.tensors.back().values(), w.at(v.name)), v.name, ": the encoding differs from the weights");
  }
  std::vector<DlmzTensorStats> stats;
  res.file_bytes = save_dlmz(out_path, m, &stats);

  // The file, read back, must hold exactly these weights.
  const DlmzModel back = load_dlmz(out_path);
  const WeightMap decoded = dlmz_weights(back, out_path);
  for (const auto& [name, values] : w)
    DLMEM_CHECK(same_bits(decoded.at(name), values), name, ": the decoded weights differ from the encoded ones");
  res.accuracy_after = accuracy(decoded, "after compression (decoded from the file)");

  // The report.
  for (size_t t = 0; t < m.tensors.size(); ++t) {
    const DlmzTensor& tensor = m.tensors[t];
    const uint64_t dense = 4 * tensor.numel();
    res.dense_bytes += dense;
    size_t li = layers.size();
    for (size_t i = 0; i < layers.size(); ++i)
      if (layers[i].weight == tensor.name) li = i;
    if (li == layers.size()) {
      res.other_dense_bytes += dense;
      res.other_file_bytes += stats[t].bytes;
      continue;
    }
    LayerResult lr;
    lr.layer = layers[li];
    lr.threshold = opt.prune_rounds > 0 ? final_threshold[li] : 0;
    lr.kept = tensor.sparse.positions.size();
    lr.density = static_cast<double>(lr.kept) / static_cast<double>(tensor.numel());
    lr.weight_bits = checked_bits(opt.weight_bits.get(layers[li]), layers[li], "--bits");
    lr.index_bits = tensor.sparse.index_bits;
    lr.clusters = tensor.sparse.codebook.size();
    lr.dense_bytes = dense;
    lr.file_bytes = stats[t].bytes;
    lr.weight_bits_per_kept = lr.kept ? static_cast<double>(stats[t].weight_bits) / static_cast<double>(lr.kept) : 0;
    lr.index_bits_per_kept = lr.kept ? static_cast<double>(stats[t].index_bits) / static_cast<double>(lr.kept) : 0;
    lr.fillers = stats[t].fillers;
    res.params += tensor.numel();
    res.kept += lr.kept;
    res.layers.push_back(lr);
  }
  res.ratio = static_cast<double>(res.dense_bytes) / static_cast<double>(res.file_bytes);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace dlmem::deploy
