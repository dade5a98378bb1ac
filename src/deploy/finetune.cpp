#include "deploy/finetune.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "planners/planner.h"
#include "train/batch_iterator.h"
#include "train/checkpoint.h"
#include "train/fashion_mnist.h"
#include "train/synthetic_dataset.h"
#include "util/error.h"
#include "util/progress_bar.h"

namespace dlmem::deploy {

ImageData open_image_data(const ir::Graph& g, const std::string& model, const std::string& dataset,
                          const std::string& data_dir, int64_t synthetic_size, uint64_t seed) {
  const ir::ValueId input = g.find("input");
  if (input == ir::kNoValue)
    throw Error("model '", model, "' reads token ids; deep compression here supports image models ",
                "(lenet-300-100, lenet5, mlp, alexnet, vgg16, resnets, ...)");
  const ir::Shape& in = g.value(input).type.shape;
  const bool mnist_shape = in.size() == 4 && in[1] == 1 && in[2] == 28 && in[3] == 28;
  std::string ds = dataset == "auto" ? (mnist_shape ? "fashion-mnist" : "synthetic") : dataset;
  ImageData d;
  d.name = ds;
  if (ds == "fashion-mnist") {
    if (!mnist_shape)
      throw Error("model '", model, "' takes input ", ir::shape_str(in),
                  ", Fashion-MNIST is [N,1,28,28]; use --dataset synthetic, or a 28x28 model (lenet5, lenet-300-100, mlp)");
    const std::string dir = data_dir.empty() ? train::FashionMnist::default_dir() : data_dir;
    d.train = std::make_unique<train::FashionMnist>(dir, train::Split::Train);
    d.test = std::make_unique<train::FashionMnist>(dir, train::Split::Test);
  } else if (ds == "synthetic") {
    if (synthetic_size <= 0) throw Error("the synthetic dataset needs a positive size, got ", synthetic_size);
    const ir::Shape& logits = g.value(g.outputs.at(0)).type.shape;
    const std::vector<int64_t> sample(in.begin() + 1, in.end());
    d.train = std::make_unique<train::SyntheticDataset>(sample, logits.back(), synthetic_size, seed);
    d.test = std::make_unique<train::SyntheticDataset>(sample, logits.back(), std::max<int64_t>(synthetic_size / 4, 1), seed + 1);
  } else {
    throw Error("unknown dataset '", dataset, "'; known: fashion-mnist, synthetic, auto");
  }
  return d;
}

WeightMap load_checkpoint_weights(const std::string& path, const std::string& model, const ir::Graph& g) {
  const train::Checkpoint ck = train::load_checkpoint(path);
  if (ck.model != model)
    throw Error("checkpoint '", path, "' is of model '", ck.model, "', not '", model, "'; pass --model ", ck.model);
  WeightMap w;
  for (const ir::Value& v : g.values()) {
    if (v.role != ir::Role::weight) continue;
    const train::CheckpointTensor* t = ck.find(v.name);
    if (!t) throw Error("checkpoint '", path, "' has no tensor '", v.name, "' (written for another configuration?)");
    if (t->shape != v.type.shape || t->dtype != "f32")
      throw Error("checkpoint '", path, "': tensor '", v.name, "' is ", t->dtype, ir::shape_str(t->shape),
                  ", the model needs ", v.type.str(), " (pass the --image-size/--classes it was trained with)");
    w[v.name] = t->to_f32();
  }
  return w;
}

// One trainable weight: its host copy (authoritative), gradient, constraint and
// optimizer state.
struct FineTuner::Param {
  ir::ValueId value = ir::kNoValue;
  ir::ValueId grad = ir::kNoValue;
  std::string name;
  std::vector<float> w;
  enum class Kind { free, masked, shared } kind = Kind::free;
  std::vector<uint8_t> mask;         // masked
  std::vector<uint64_t> positions;   // shared
  std::vector<uint32_t> assignment;  // shared
  std::vector<float> centroids;      // shared
  std::vector<float> m, v;           // optimizer state (of w, or of the centroids)
  uint64_t t = 0;                    // Adam's step count since the state was reset
};

FineTuner::FineTuner(const std::string& model, models::ModelConfig mc, const train::Dataset& data, FineTuneOptions opt)
    : opt_(opt) {
  if (opt_.batch <= 0) throw Error("--batch must be positive, got ", opt_.batch);
  if (!(opt_.lr > 0)) throw Error("--lr must be positive, got ", opt_.lr);
  if (opt_.optimizer != ir::Optimizer::adam && opt_.optimizer != ir::Optimizer::sgd)
    throw Error("fine-tuning needs an optimizer: sgd or adam");
  mc.batch = opt_.batch;
  mc.training = true;
  backend_ = runtime::make_cpu_backend({.threads = opt_.threads});
  graph_ = std::make_unique<ir::Graph>(models::build_model(model, mc));
  // Note [Host-side updates]: no optimizer nodes; the gradients stay readable.
  const auto pgs = ir::build_training_graph(*graph_, {.optimizer = ir::Optimizer::none});
  for (const auto& pg : pgs) {
    graph_->outputs.push_back(pg.grad);
    Param p;
    p.value = pg.weight;
    p.grad = pg.grad;
    p.name = graph_->value(pg.weight).name;
    params_.push_back(std::move(p));
  }
  runtime::attach_workspaces(*graph_, *backend_);
  graph_->verify();
  plan_ = std::make_unique<plan::Plan>(planners::make_plan(*graph_, {.policy = "default"}));
  exec_ = std::make_unique<runtime::Executor>(*graph_, *plan_, *backend_);
  batches_ = std::make_unique<train::BatchIterator>(
      data, train::BatchOptions{.batch_size = opt_.batch, .shuffle = true, .seed = opt_.seed, .drop_last = true});
  if (batches_->batches_per_epoch() == 0)
    throw Error("--batch ", opt_.batch, " is larger than the dataset (", data.size(), " samples)");
}

FineTuner::~FineTuner() = default;

int64_t FineTuner::batches_per_epoch() const { return batches_->batches_per_epoch(); }

void FineTuner::set_weights(const WeightMap& w) {
  for (const ir::Value& v : graph_->values()) {
    if (v.role != ir::Role::weight) continue;
    auto it = w.find(v.name);
    if (it == w.end()) throw Error("no values for weight '", v.name, "' of the model");
    if (it->second.size() != static_cast<size_t>(v.type.numel()))
      throw Error("weight '", v.name, "' has ", it->second.size(), " values, the model needs ", v.type.numel());
    exec_->write_f32(v.id, it->second);
  }
  for (Param& p : params_) {
    p.w = w.at(p.name);
    // Constraints win over the values given.
    if (p.kind == Param::Kind::masked) {
      for (size_t i = 0; i < p.w.size(); ++i)
        if (!p.mask[i]) p.w[i] = 0.0f;
    } else if (p.kind == Param::Kind::shared) {
      std::fill(p.w.begin(), p.w.end(), 0.0f);
      for (size_t j = 0; j < p.positions.size(); ++j) p.w[p.positions[j]] = p.centroids[p.assignment[j]];
    }
    exec_->write_f32(p.value, p.w);
  }
}

WeightMap FineTuner::weights() const {
  // Read back from the executor: what the next step computes with.
  WeightMap out;
  for (const ir::Value& v : graph_->values())
    if (v.role == ir::Role::weight) out[v.name] = exec_->read_f32(v.id);
  return out;
}

void FineTuner::constrain_mask(const std::string& weight, std::vector<uint8_t> mask) {
  for (Param& p : params_) {
    if (p.name != weight) continue;
    DLMEM_CHECK(mask.size() == p.w.size(), weight, ": mask of ", mask.size(), " for ", p.w.size());
    p.kind = Param::Kind::masked;
    p.mask = std::move(mask);
    for (size_t i = 0; i < p.w.size(); ++i)
      if (!p.mask[i]) p.w[i] = 0.0f;
    p.m.clear();
    p.v.clear();
    exec_->write_f32(p.value, p.w);
    return;
  }
  DLMEM_CHECK(false, "no trainable weight ", weight);
}

void FineTuner::constrain_shared(const std::string& weight, std::vector<uint64_t> positions, const Clusters& c) {
  for (Param& p : params_) {
    if (p.name != weight) continue;
    DLMEM_CHECK(positions.size() == c.assignment.size(), weight, ": ", positions.size(), " positions, ",
                c.assignment.size(), " assignments");
    p.kind = Param::Kind::shared;
    p.positions = std::move(positions);
    p.assignment = c.assignment;
    p.centroids = c.centroids;
    p.mask.clear();
    p.m.clear();
    p.v.clear();
    std::fill(p.w.begin(), p.w.end(), 0.0f);
    for (size_t j = 0; j < p.positions.size(); ++j) {
      DLMEM_CHECK(p.positions[j] < p.w.size() && p.assignment[j] < p.centroids.size(), weight, ": entry ", j);
      p.w[p.positions[j]] = p.centroids[p.assignment[j]];
    }
    exec_->write_f32(p.value, p.w);
    return;
  }
  DLMEM_CHECK(false, "no trainable weight ", weight);
}

const std::vector<float>& FineTuner::centroids(const std::string& weight) const {
  for (const Param& p : params_)
    if (p.name == weight) {
      DLMEM_CHECK(p.kind == Param::Kind::shared, weight, " is not shared");
      return p.centroids;
    }
  throw InternalError("no trainable weight " + weight);
}

void FineTuner::set_lr(double lr) {
  if (!(lr > 0)) throw Error("the learning rate must be positive, got ", lr);
  opt_.lr = lr;
}

void FineTuner::clear_constraints() {
  for (Param& p : params_) {
    p.kind = Param::Kind::free;
    p.mask.clear();
    p.positions.clear();
    p.assignment.clear();
    p.centroids.clear();
    p.m.clear();
    p.v.clear();
  }
}

// One optimizer step on `x` with gradient `g` (both the same length).
void FineTuner::update(Param& p, std::vector<float>& grad) {
  std::vector<float>* x = &p.w;
  std::vector<float> csum;
  if (p.kind == Param::Kind::masked) {
    for (size_t i = 0; i < grad.size(); ++i)
      if (!p.mask[i]) grad[i] = 0.0f;
  } else if (p.kind == Param::Kind::shared) {
    // Han et al. 2016, Sec. 3.3: a centroid's gradient is the sum of its members'.
    csum.assign(p.centroids.size(), 0.0f);
    for (size_t j = 0; j < p.positions.size(); ++j) csum[p.assignment[j]] += grad[p.positions[j]];
    x = &p.centroids;
  }
  std::vector<float>& g = p.kind == Param::Kind::shared ? csum : grad;
  if (p.m.size() != x->size()) {
    p.m.assign(x->size(), 0.0f);
    p.v.assign(x->size(), 0.0f);
    p.t = 0;
  }
  ++p.t;
  const auto lr = static_cast<float>(opt_.lr);
  if (opt_.optimizer == ir::Optimizer::adam) {
    const double t = static_cast<double>(p.t);
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const auto c1 = static_cast<float>(1 - std::pow(0.9, t)), c2 = static_cast<float>(1 - std::pow(0.999, t));
    for (size_t i = 0; i < x->size(); ++i) {
      p.m[i] = b1 * p.m[i] + (1 - b1) * g[i];
      p.v[i] = b2 * p.v[i] + (1 - b2) * g[i] * g[i];
      (*x)[i] -= lr * (p.m[i] / c1) / (std::sqrt(p.v[i] / c2) + eps);
    }
  } else {
    const auto mu = static_cast<float>(opt_.momentum);
    for (size_t i = 0; i < x->size(); ++i) {
      p.m[i] = mu * p.m[i] + g[i];
      (*x)[i] -= lr * p.m[i];
    }
  }
  if (p.kind == Param::Kind::masked) {
    for (size_t i = 0; i < p.w.size(); ++i)
      if (!p.mask[i]) p.w[i] = 0.0f;
  } else if (p.kind == Param::Kind::shared) {
    for (size_t j = 0; j < p.positions.size(); ++j) p.w[p.positions[j]] = p.centroids[p.assignment[j]];
  }
}

double FineTuner::train(int64_t steps, std::ostream* log, const std::string& label) {
  if (steps <= 0) return 0;
  for (const Param& p : params_)
    DLMEM_CHECK(p.w.size() == static_cast<size_t>(graph_->value(p.value).type.numel()), "set_weights() first");
  std::unique_ptr<ProgressBar> bar;
  if (log) bar = std::make_unique<ProgressBar>(label, steps, *log);
  const ir::Graph& g = *graph_;
  const ir::ValueId input = g.find("input"), label_v = g.find("label");
  double loss_sum = 0;
  train::Batch b;
  std::vector<float> grad;
  for (int64_t s = 0; s < steps; ++s) {
    if (!batches_->next(b)) {
      batches_->reset(++epoch_);
      batches_->next(b);
    }
    exec_->write_f32(input, b.images);
    exec_->write(label_v, std::as_bytes(std::span<const int32_t>(b.labels)));
    exec_->run_step(step_++);
    const float loss = exec_->read_f32(g.loss)[0];
    if (!std::isfinite(loss)) throw Error(label, ": the loss became ", loss, " at step ", s + 1, "; try a smaller --lr");
    loss_sum += loss;
    for (Param& p : params_) {
      grad = exec_->read_f32(p.grad);
      update(p, grad);
      exec_->write_f32(p.value, p.w);
    }
    if (bar) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "loss %.4f", loss_sum / static_cast<double>(s + 1));
      bar->update(s + 1, buf);
    }
  }
  if (bar) bar->finish();
  return loss_sum / static_cast<double>(steps);
}

}  // namespace dlmem::deploy
