#include "deploy/inference.h"

#include <chrono>
#include <cstdio>

#include "planners/planner.h"
#include "plan/placement.h"
#include "train/batch_iterator.h"
#include "util/error.h"
#include "util/progress_bar.h"

namespace dlmem::deploy {

namespace {

std::string pick_policy(const std::string& asked) { return asked.empty() ? "share" : asked; }

InferenceMemory memory_of(const plan::Plan& p) {
  InferenceMemory m;
  m.policy = p.policy;
  m.arena = p.device_arena;
  m.planned_peak = p.stats.peak_device;
  std::vector<plan::BufferId> ids;
  const std::vector<plan::Interval> all = plan::intervals(p, plan::Space::device, &ids);
  std::vector<plan::Interval> transient;
  for (size_t i = 0; i < all.size(); ++i) {
    const plan::Buffer& b = p.buffers[static_cast<size_t>(ids[i])];
    if (b.persistent) {
      m.weight_bytes += plan::align_up(b.bytes);
    } else {
      m.activation_sum += plan::align_up(b.bytes);
      transient.push_back(all[i]);
    }
  }
  m.activation_arena = plan::place_intervals(transient, plan::PlaceAlgo::best).size;
  m.activation_max_live = plan::max_live(transient);
  return m;
}

}  // namespace

InferenceSession::InferenceSession(const std::string& model, models::ModelConfig mc, InferenceOptions opt)
    : opt_(std::move(opt)) {
  if (opt_.batch <= 0) throw Error("--batch must be positive, got ", opt_.batch);
  mc.batch = opt_.batch;
  mc.training = false;
  backend_ = runtime::make_cpu_backend({.threads = opt_.threads});
  graph_ = std::make_unique<ir::Graph>(models::build_model(model, mc));
  if (graph_->find("input") == ir::kNoValue || graph_->find("label") == ir::kNoValue)
    throw Error("model '", model, "' reads token ids; inference here supports image models");
  runtime::attach_workspaces(*graph_, *backend_);
  graph_->verify();
  plan_ = std::make_unique<plan::Plan>(planners::make_plan(*graph_, {.policy = pick_policy(opt_.policy)}));
  exec_ = std::make_unique<runtime::Executor>(*graph_, *plan_, *backend_);
  memory_ = memory_of(*plan_);
}

InferenceSession::~InferenceSession() = default;

void InferenceSession::set_weights(const WeightMap& w, const std::string& source) {
  for (const ir::Value& v : graph_->values()) {
    if (v.role != ir::Role::weight) continue;
    auto it = w.find(v.name);
    if (it == w.end()) throw Error(source, ": no values for weight '", v.name, "' of the model");
    if (it->second.size() != static_cast<size_t>(v.type.numel()))
      throw Error(source, ": weight '", v.name, "' has ", it->second.size(), " values, the model needs ", v.type.str());
    exec_->write_f32(v.id, it->second);
  }
}

InferenceResult InferenceSession::run(const train::Dataset& data, std::ostream* log) {
  const ir::Graph& g = *graph_;
  const ir::ValueId input = g.find("input"), label = g.find("label");
  const ir::ValueId logits = g.outputs.at(0);
  const ir::Shape& in = g.value(input).type.shape;
  const std::vector<int64_t> sample(in.begin() + 1, in.end());
  if (data.sample_shape() != sample)
    throw Error("dataset ", data.name(), " has samples ", ir::shape_str(data.sample_shape()), ", the model reads ",
                ir::shape_str(sample));
  const int64_t classes = g.value(logits).type.shape.back();
  if (data.num_classes() > classes)
    throw Error("dataset ", data.name(), " has ", data.num_classes(), " classes, the model predicts ", classes);

  train::BatchIterator it(data, {.batch_size = opt_.batch, .shuffle = false, .drop_last = false});
  std::unique_ptr<ProgressBar> bar;
  if (log) bar = std::make_unique<ProgressBar>("infer", it.batches_per_epoch(), *log);
  std::vector<float> x(static_cast<size_t>(g.value(input).type.numel()));
  std::vector<int32_t> y(static_cast<size_t>(opt_.batch));
  InferenceResult r;
  int64_t correct = 0;
  train::Batch b;
  bool warm = false;
  for (int64_t i = 0; it.next(b); ++i) {
    std::fill(x.begin(), x.end(), 0.0f);
    std::copy(b.images.begin(), b.images.end(), x.begin());
    std::fill(y.begin(), y.end(), 0);
    std::copy(b.labels.begin(), b.labels.end(), y.begin());
    auto once = [&] {
      exec_->write_f32(input, x);
      exec_->write(label, std::as_bytes(std::span<const int32_t>(y)));
      exec_->run_step(0);
      return exec_->read_f32(logits);
    };
    if (!warm) {  // the first run creates the kernels' primitives: not timed
      once();
      warm = true;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<float> out = once();
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int64_t row = 0; row < b.size; ++row) {
      const float* p = out.data() + row * classes;
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c)
        if (p[c] > p[best]) best = c;
      correct += best == b.labels[static_cast<size_t>(row)];
    }
    r.images += b.size;
    if (bar) bar->update(i + 1, "");
  }
  if (bar) bar->finish();
  r.accuracy = r.images ? static_cast<double>(correct) / static_cast<double>(r.images) : 0.0;
  r.images_per_second = r.seconds > 0 ? static_cast<double>(r.images) / r.seconds : 0.0;
  r.measured_peak = exec_->stats().peak_device;
  return r;
}

}  // namespace dlmem::deploy
