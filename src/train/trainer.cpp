#include "train/trainer.h"

#include <chrono>
#include <cstring>
#include <cmath>
#include <random>

#include "ir/autodiff.h"
#include "ir/parallel.h"
#include "runtime/comm.h"
#include "train/batch_iterator.h"
#include "train/checkpoint.h"
#include "train/fashion_mnist.h"
#include "train/init.h"
#include "train/synthetic_dataset.h"
#include "util/error.h"
#include "util/format.h"
#include "util/progress_bar.h"

namespace dlmem::train {

namespace {

using ir::ValueId;

bool reads_images(const ir::Graph& g) { return g.find("input") != ir::kNoValue; }

bool is_state(const ir::Value& v) { return v.role == ir::Role::weight || v.role == ir::Role::optimizer_state; }
// A weight's or state's whole shape: a rank's shard (ir/parallel.h) says what it is of.
ir::Shape whole_shape(const ir::Value& v) { return v.shard ? v.shard->full : v.type.shape; }

// Vocabulary of the embedding that reads token input `v`.
int64_t vocab_of(const ir::Graph& g, ValueId v) {
  for (ir::NodeId c : g.value(v).consumers) {
    const ir::Node& n = g.node(c);
    if (n.op == ir::OpKind::embedding) return g.value(n.inputs[1]).type.shape[0];
  }
  return 1;
}

// Fraction of rows whose argmax equals the label (labels < 0 are ignored).
std::pair<int64_t, int64_t> count_correct(const std::vector<float>& logits, const std::vector<int32_t>& labels,
                                          int64_t valid_rows) {
  const int64_t rows = static_cast<int64_t>(labels.size());
  const int64_t cols = rows ? static_cast<int64_t>(logits.size()) / rows : 0;
  int64_t correct = 0;
  for (int64_t r = 0; r < std::min(rows, valid_rows); ++r) {
    const float* row = logits.data() + r * cols;
    int64_t best = 0;
    for (int64_t c = 1; c < cols; ++c)
      if (row[c] > row[best]) best = c;
    correct += best == labels[static_cast<size_t>(r)];
  }
  return {correct, std::min(rows, valid_rows)};
}

}  // namespace

session::SessionOptions session_options(const TrainConfig& c, bool training) {
  session::SessionOptions o{.model = c.model, .config = c.model_config, .train = c.optim, .device = c.device,
                            .threads = c.threads};
  o.config.batch = c.batch;
  o.config.training = training;
  o.link = c.link;
  if (training && c.comm && c.comm->size() > 1) {
    // A rank's graph: its share of the batch, its shards and collectives.
    if (c.batch % c.comm->size() != 0)
      throw Error("--batch ", c.batch, " does not split over ", c.comm->size(), " ranks; use a multiple of ",
                  c.comm->size());
    if (!(c.bucket_mib >= 0))
      throw Error("--bucket-mb must be 0 (one all-reduce per gradient) or positive, got ", c.bucket_mib);
    o.config.batch = c.batch / c.comm->size();
    o.parallel = {.ranks = c.comm->size(), .rank = c.comm->rank(), .zero = c.zero,
                  .bucket_bytes = static_cast<uint64_t>(c.bucket_mib * 1048576.0)};
    o.comm = c.comm;
  }
  return o;
}

int Trainer::ranks() const { return cfg_.comm ? cfg_.comm->size() : 1; }
int Trainer::rank() const { return cfg_.comm ? cfg_.comm->rank() : 0; }

double Trainer::sum_over_ranks(double v) const {
  if (ranks() == 1) return v;
  double s = 0;
  for (double x : cfg_.comm->gather_doubles(v)) s += x;
  return s;
}

Batch Trainer::rank_rows(const Batch& b) const {
  if (ranks() == 1) return b;
  const int64_t rows = cfg_.batch / ranks(), r0 = rank() * rows;
  const size_t per_image = b.size ? b.images.size() / static_cast<size_t>(b.size) : 0;
  const size_t per_label = b.size ? b.labels.size() / static_cast<size_t>(b.size) : 0;
  Batch out;
  out.size = std::max<int64_t>(0, std::min(rows, b.size - r0));
  auto rows_of = [&](const auto& v, size_t per) {
    using V = std::decay_t<decltype(v)>;
    const size_t from = std::min(v.size(), static_cast<size_t>(r0) * per);
    return V(v.begin() + static_cast<std::ptrdiff_t>(from),
             v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size(), from + static_cast<size_t>(rows) * per)));
  };
  out.images = rows_of(b.images, per_image);
  out.labels = rows_of(b.labels, per_label);
  return out;
}

Trainer::Trainer(TrainConfig config) : cfg_(std::move(config)) {
  if (cfg_.batch <= 0) throw Error("--batch must be positive, got ", cfg_.batch);
  if (cfg_.epochs < 0) throw Error("--epochs must be non-negative, got ", cfg_.epochs);
  if (cfg_.threads < 0) throw Error("--threads must be 0 (default) or positive, got ", cfg_.threads);
  session_ = std::make_unique<session::Session>(session_options(cfg_, true));
  token_model_ = !reads_images(graph());

  // The budget: bytes, or a fraction of what the default plan needs.
  const uint64_t budget = session_->budget(cfg_.budget);
  plan_ = std::make_unique<plan::Plan>(
      session_->plan({.policy = cfg_.policy, .budget = budget, .options = cfg_.plan_options}));
  if (session_->cuda()) {
    // A GPU has the memory it has: say so before cudaMalloc does.
    const runtime::CudaDeviceInfo gpu = runtime::cuda_device_info();
    const uint64_t need = budget ? budget : plan_->device_arena;
    if (need > gpu.free_bytes)
      throw OutOfMemory("the plan needs ", human_bytes(need), " of device memory but ", gpu.name, " has ",
                        human_bytes(gpu.free_bytes), " free; use --budget ", human_bytes(gpu.free_bytes),
                        " (or less) with a policy that saves memory");
  }
  const runtime::AllocatorKind alloc = runtime::parse_allocator(cfg_.allocator);
  // A pool without a budget gets a device as large as a plan sharing nothing needs
  // (plus rounding and one small segment): the run measures the pool instead of
  // failing on a capacity nobody chose; its reserved peak shows what it used. With a
  // budget, the budget is the device.
  const uint64_t capacity = alloc == runtime::AllocatorKind::pool && budget == 0
                                ? plan_->stats.no_reuse + plan_->buffers.size() * 512 + (2u << 20)
                                : 0;
  exec_ = std::make_unique<runtime::Executor>(graph(), *plan_, session_->backend(),
                                              runtime::ExecOptions{.capacity = capacity,
                                                                   .poison_freed = cfg_.poison_freed,
                                                                   .time_instructions = cfg_.profile,
                                                                   .check_finite = cfg_.check_finite,
                                                                   .allocator = alloc});
  node_seconds_.assign(static_cast<size_t>(graph().num_nodes()), 0.0);
  init_weights(*exec_, graph(), cfg_.seed);

  // Data.
  std::string ds = cfg_.dataset;
  if (ds == "auto") ds = token_model_ ? "synthetic" : "fashion-mnist";
  if (ds == "fashion-mnist") {
    if (token_model_) throw Error("model '", cfg_.model, "' reads tokens; use --dataset synthetic");
    const ir::Shape& in = graph().value(graph().find("input")).type.shape;
    if (!(in.size() == 4 && in[1] == 1 && in[2] == 28 && in[3] == 28))
      throw Error("model '", cfg_.model, "' takes input ", ir::shape_str(in),
                  ", Fashion-MNIST is [N,1,28,28]; use --dataset synthetic, or a 28x28 model (lenet5, lenet-300-100, mlp)");
    const std::string dir = cfg_.data_dir.empty() ? FashionMnist::default_dir() : cfg_.data_dir;
    train_data_ = std::make_unique<FashionMnist>(dir, Split::Train);
    if (cfg_.evaluate) test_data_ = std::make_unique<FashionMnist>(dir, Split::Test);
  } else if (ds == "synthetic") {
    if (!token_model_) {
      const ir::Shape& in = graph().value(graph().find("input")).type.shape;
      const ir::Shape& logits = graph().value(graph().outputs.at(0)).type.shape;
      std::vector<int64_t> sample(in.begin() + 1, in.end());
      train_data_ = std::make_unique<SyntheticDataset>(sample, logits.back(), cfg_.synthetic_size, cfg_.seed);
      if (cfg_.evaluate)
        test_data_ = std::make_unique<SyntheticDataset>(sample, logits.back(), cfg_.synthetic_size / 4, cfg_.seed + 1);
    }
  } else if (ds != "none") {
    throw Error("unknown dataset '", cfg_.dataset, "'; known: fashion-mnist, synthetic, auto, none");
  }
  if (train_data_)
    batches_ = std::make_unique<BatchIterator>(
        *train_data_, BatchOptions{.batch_size = cfg_.batch, .shuffle = true, .seed = cfg_.seed, .drop_last = true});
  if (batches_ && batches_->batches_per_epoch() == 0)
    throw Error("--batch ", cfg_.batch, " is larger than the dataset (", train_data_->size(), " samples)");
  if (!cfg_.resume.empty()) resume(cfg_.resume);
}

Trainer::~Trainer() = default;

void Trainer::load_batch(const Batch& b, runtime::Executor& ex, const ir::Graph& g) {
  for (const ir::Value& v : g.values()) {
    if (v.role != ir::Role::input && v.role != ir::Role::label) continue;
    if (!ex.is_bound(v.id)) continue;
    if (v.name == "input") {
      std::vector<float> img(static_cast<size_t>(v.type.numel()), 0.0f);
      std::copy(b.images.begin(), b.images.begin() + std::min(b.images.size(), img.size()), img.begin());
      ex.write_f32(v.id, img);
    } else if (v.role == ir::Role::label && !token_model_) {
      std::vector<int32_t> lab(static_cast<size_t>(v.type.numel()), 0);
      std::copy(b.labels.begin(), b.labels.begin() + std::min(b.labels.size(), lab.size()), lab.begin());
      ex.write(v.id, std::as_bytes(std::span<const int32_t>(lab)));
    }
  }
}

// Token models read synthetic sequences: each sample is an arithmetic progression
// modulo the vocabulary with a random start and stride, so the next token is
// learnable; labels are the next tokens (language models) or the stride's parity
// (classifiers).
namespace {
// With data parallelism the global batch is drawn (ranks x the graph's rows) and this
// rank keeps its rows, so every rank count sees the same sequences.
std::vector<int32_t> load_tokens(runtime::Executor& ex, const ir::Graph& g, uint64_t seed, int ranks = 1,
                                 int rank = 0) {
  std::vector<int32_t> labels;
  std::mt19937_64 rng(seed);
  const ValueId ids = g.find("ids");
  if (ids == ir::kNoValue) throw Error("token model without an 'ids' input");
  const ir::Shape& s = g.value(ids).type.shape;
  const int64_t n = s[0], t = s.size() > 1 ? s[1] : 1;
  const int64_t vocab = vocab_of(g, ids);
  std::vector<int32_t> tok(static_cast<size_t>(n * t)), next(static_cast<size_t>(n * t)), cls(static_cast<size_t>(n));
  for (int64_t gi = 0; gi < n * ranks; ++gi) {
    const int64_t start = static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab));
    const int64_t stride = 1 + static_cast<int64_t>(rng() % 7);
    if (gi / n != rank) continue;
    const int64_t i = gi % n;
    for (int64_t j = 0; j < t; ++j) {
      tok[static_cast<size_t>(i * t + j)] = static_cast<int32_t>((start + stride * j) % vocab);
      next[static_cast<size_t>(i * t + j)] = static_cast<int32_t>((start + stride * (j + 1)) % vocab);
    }
    cls[static_cast<size_t>(i)] = static_cast<int32_t>(stride % 2);
  }
  for (const ir::Value& v : g.values()) {
    if ((v.role != ir::Role::input && v.role != ir::Role::label) || !ex.is_bound(v.id)) continue;
    std::vector<int32_t> data(static_cast<size_t>(v.type.numel()), 0);
    if (v.id == ids) {
      data = tok;
    } else if (v.role == ir::Role::label) {
      data = v.type.numel() == n ? cls : next;
      const int64_t classes = g.value(g.outputs.at(0)).type.shape.back();
      for (int32_t& x : data) x = static_cast<int32_t>(x % classes);
      labels = data;
    } else if (v.name.find("position") != std::string::npos) {
      for (size_t k = 0; k < data.size(); ++k) data[k] = static_cast<int32_t>(k % static_cast<size_t>(t));
    }  // token types and anything else: zeros
    ex.write(v.id, std::as_bytes(std::span<const int32_t>(data)));
  }
  return labels;
}
}  // namespace

void Trainer::reset_batches(int64_t epoch) {
  batches_->reset(epoch);
  iter_epoch_ = epoch;
  iter_batch_ = 0;
}

bool Trainer::next_batch(Batch& b) {
  if (!batches_) return true;
  return batches_->next(b);
}

float Trainer::step() {
  Batch b;
  if (token_model_) {
    last_labels_ = load_tokens(*exec_, graph(), cfg_.seed * 1000003 + step_, ranks(), rank());
  } else {
    if (!batches_->next(b)) {
      reset_batches(++epoch_);
      batches_->next(b);
    }
    ++iter_batch_;
    b = rank_rows(b);
    load_batch(b, *exec_, graph());
    last_labels_ = b.labels;
  }
  const float loss = run_loaded_step();
  // The global batch's loss: the mean of the ranks' (equal-sized) shares, in rank order.
  return ranks() == 1 ? loss : static_cast<float>(sum_over_ranks(loss) / ranks());
}

// The step on the batch already written: run, profile, read and check the loss.
float Trainer::run_loaded_step() {
  exec_->run_step(step_++);
  if (cfg_.profile) {
    const auto& secs = exec_->stats().instr_seconds;
    for (size_t i = 0; i < secs.size(); ++i) {
      const plan::Instr& in = plan_->program[i];
      if (in.kind == plan::InstrKind::compute) node_seconds_[static_cast<size_t>(in.node)] += secs[i];
    }
  }
  const float loss = exec_->read_f32(graph().loss)[0];
  if (!std::isfinite(loss)) throw Error("the loss became ", loss, " at step ", step_, "; try a smaller --lr");
  return loss;
}

namespace {

ValueId data_input(const ir::Graph& g) {
  const ValueId in = g.find("input");
  return in != ir::kNoValue ? in : g.find("ids");
}

void write_checked(runtime::Executor& ex, const ir::Graph& g, ValueId v, std::span<const std::byte> data,
                   const char* what) {
  const ir::Value& val = g.value(v);
  if (data.size() != val.type.bytes())
    throw Error(what, " has ", data.size(), " bytes; the model's '", val.name, "' is ", val.type.str(), " (",
                val.type.bytes(), " bytes)");
  ex.write(v, data);
}

}  // namespace

float Trainer::step_on(std::span<const std::byte> input, std::span<const std::byte> labels) {
  const ir::Graph& g = graph();
  write_checked(*exec_, g, data_input(g), input, "inputs");
  const ValueId label = g.find("label");
  write_checked(*exec_, g, label, labels, "labels");
  last_labels_.resize(static_cast<size_t>(g.value(label).type.numel()));
  std::memcpy(last_labels_.data(), labels.data(), labels.size());
  return run_loaded_step();
}

void Trainer::load_state(const std::map<std::string, std::vector<float>>& state) {
  const ir::Graph& g = graph();
  for (const auto& [name, values] : state) {
    const ValueId v = g.find(name);
    if (v == ir::kNoValue || !exec_->is_bound(v) ||
        (g.value(v).role != ir::Role::weight && g.value(v).role != ir::Role::optimizer_state))
      throw Error("state has '", name, "', which is not a weight or optimizer state of ", cfg_.model);
    const ir::TensorType whole{whole_shape(g.value(v)), ir::DType::f32};
    if (static_cast<int64_t>(values.size()) != whole.numel())
      throw Error("state '", name, "' has ", values.size(), " values; the model's is ", whole.str());
    const auto& shard = g.value(v).shard;
    exec_->write_f32(v, shard ? ir::take_shard(values, *shard) : values);
  }
}

void Trainer::sync_eval_weights() {
  if (!eval_exec_) {
    eval_graph_ = std::make_unique<ir::Graph>(session::build_graph(session_options(cfg_, false), &session_->backend()));
    eval_plan_ = std::make_unique<plan::Plan>(planners::make_plan(*eval_graph_, {.policy = "default"}));
    eval_exec_ = std::make_unique<runtime::Executor>(*eval_graph_, *eval_plan_, session_->backend());
  }
  // The inference graph's weights (running statistics included) are the training ones
  // (whole tensors: with ZeRO 3 the shards gathered).
  const std::map<std::string, std::vector<float>> whole = state();
  for (const ir::Value& v : eval_graph_->values()) {
    if (v.role != ir::Role::weight) continue;
    const auto it = whole.find(v.name);
    if (it == whole.end()) throw InternalError("inference graph weight " + v.name + " missing in training graph");
    eval_exec_->write_f32(v.id, it->second);
  }
}

std::vector<float> Trainer::predict(std::span<const std::byte> input) {
  sync_eval_weights();
  const ir::Graph& g = *eval_graph_;
  write_checked(*eval_exec_, g, data_input(g), input, "inputs");
  // The label only feeds the loss, which predict() does not read.
  const ValueId label = g.find("label");
  if (label != ir::kNoValue && eval_exec_->is_bound(label))
    eval_exec_->write(label, std::vector<std::byte>(g.value(label).type.bytes(), std::byte{0}));
  eval_exec_->run_step(0);
  return eval_exec_->read_f32(g.outputs.at(0));
}

double Trainer::evaluate() {
  sync_eval_weights();
  const ir::Graph& g = *eval_graph_;
  const ValueId label = g.values_with_role(ir::Role::label).at(0);
  int64_t correct = 0, total = 0;
  // Labels are read from the host copy: the plan frees the device copy after use.
  auto tally = [&](const std::vector<int32_t>& lab, int64_t valid) {
    eval_exec_->run_step(0);
    auto [c, n] = count_correct(eval_exec_->read_f32(g.outputs.at(0)), lab, valid);
    correct += c;
    total += n;
  };
  if (token_model_) {
    for (int i = 0; i < 4; ++i) {
      tally(load_tokens(*eval_exec_, g, 0xe7a1 + static_cast<uint64_t>(i)), INT64_MAX);
    }
  } else if (test_data_) {
    BatchIterator it(*test_data_, BatchOptions{.batch_size = cfg_.batch, .shuffle = false, .drop_last = false});
    Batch b;
    while (it.next(b)) {
      load_batch(b, *eval_exec_, g);
      const int64_t rows_per_sample = static_cast<int64_t>(g.value(label).type.numel()) / cfg_.batch;
      std::vector<int32_t> lab = b.labels;
      lab.resize(static_cast<size_t>(g.value(label).type.numel()), 0);
      tally(lab, b.size * rows_per_sample);
    }
  }
  return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

TrainResult Trainer::run(std::ostream* log, int64_t epochs, int64_t steps_per_epoch) {
  if (epochs < 0 || steps_per_epoch < 0) throw Error("epochs and steps must be non-negative, got ", epochs, " and ", steps_per_epoch);
  cfg_.epochs = epochs;
  cfg_.steps_per_epoch = steps_per_epoch;
  return run(log);
}

TrainResult Trainer::run(std::ostream* log) {
  TrainResult r;
  r.planned_peak = plan_->stats.peak_device;
  r.arena = plan_->device_arena;
  r.budget = plan_->budget;
  const int64_t per_epoch = cfg_.steps_per_epoch > 0
                                ? cfg_.steps_per_epoch
                                : (batches_ ? batches_->batches_per_epoch() : 64);
  // A run resumed mid-epoch continues that epoch where it stopped: resume() placed the
  // batch iterator where it was, so neither it nor the epoch counter is reset.
  const int64_t first_epoch = epoch_step_ > 0 ? run_epoch_ : epoch_;
  for (int64_t e = first_epoch; e < first_epoch + cfg_.epochs && !r.interrupted; ++e) {
    const int64_t start = e == first_epoch ? epoch_step_ : 0;
    epoch_step_ = 0;
    run_epoch_ = e;
    if (start == 0) {
      epoch_ = e;
      if (batches_) reset_batches(e);
    }
    std::unique_ptr<ProgressBar> bar;
    if (log) bar = std::make_unique<ProgressBar>("epoch " + std::to_string(e + 1), per_epoch, *log);
    EpochResult er;
    er.epoch = e + 1;
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    int64_t done = 0;
    for (int64_t s = start; s < per_epoch; ++s) {
      // Ctrl-C: every rank stops at the same step (any rank's flag counts).
      const bool stop = cfg_.interrupt && cfg_.interrupt->load();
      if (ranks() > 1 ? sum_over_ranks(stop ? 1.0 : 0.0) > 0 : stop) {
        r.interrupted = true;
        epoch_step_ = s;
        break;
      }
      const float loss = step();
      ++done;
      r.losses.push_back(loss);
      loss_sum += loss;
      const ir::Graph& g = graph();
      if (exec_->is_bound(g.outputs.at(0))) {
        auto [c, n] = count_correct(exec_->read_f32(g.outputs.at(0)), last_labels_, INT64_MAX);
        correct += static_cast<int64_t>(sum_over_ranks(static_cast<double>(c)));
        seen += static_cast<int64_t>(sum_over_ranks(static_cast<double>(n)));
      }
      if (bar) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        char buf[160];
        std::snprintf(buf, sizeof buf, "loss %.4f  acc %5.1f%%  %6.0f img/s  peak %s", loss_sum / static_cast<double>(done),
                      seen ? 100.0 * static_cast<double>(correct) / static_cast<double>(seen) : 0.0,
                      static_cast<double>(done * cfg_.batch) / std::max(secs, 1e-9),
                      human_bytes(exec_->stats().peak_device).c_str());
        bar->update(s + 1, buf);
      }
    }
    if (bar) bar->finish();
    er.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    er.train_loss = loss_sum / static_cast<double>(std::max<int64_t>(done, 1));
    er.train_accuracy = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
    er.samples_per_second = static_cast<double>(done * cfg_.batch) / std::max(er.seconds, 1e-9);
    if (r.interrupted) break;  // a partial epoch: neither evaluated nor reported as one
    if (cfg_.evaluate) er.test_accuracy = evaluate();
    if (log) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "epoch %lld: loss %.4f  train acc %.2f%%  test acc %s  %.0f img/s\n",
                    static_cast<long long>(er.epoch), er.train_loss, 100 * er.train_accuracy,
                    er.test_accuracy >= 0 ? (std::to_string(100 * er.test_accuracy).substr(0, 5) + "%").c_str() : "-",
                    er.samples_per_second);
      *log << buf << std::flush;
    }
    r.epochs.push_back(er);
    epoch_ = e + 1;
  }
  r.peak_device = exec_->stats().peak_device;
  if (!cfg_.save.empty()) save(cfg_.save);
  return r;
}

std::map<std::string, std::vector<float>> Trainer::state() const {
  std::map<std::string, std::vector<float>> s;
  for (const ir::Value& v : graph().values()) {
    if (!is_state(v) || !exec_->is_bound(v.id)) continue;
    std::vector<float> data = exec_->read_f32(v.id);
    if (v.shard) {  // a collective, in the same value order on every rank
      std::vector<float> whole(static_cast<size_t>(ir::TensorType{v.shard->full, ir::DType::f32}.numel()));
      cfg_.comm->all_gather(data.data(), whole.data(), static_cast<int64_t>(whole.size()));
      data = std::move(whole);
    }
    s[v.name] = std::move(data);
  }
  return s;
}

void Trainer::save(const std::string& path) const {
  Checkpoint ck;
  ck.model = cfg_.model;
  ck.step = static_cast<int64_t>(step_);
  ck.epoch = epoch_;
  ck.optimizer = std::string(ir::optimizer_name(cfg_.optim.optimizer));
  // Where an interrupted run stopped: the step within its epoch, and the batch
  // iterator's epoch and position (steps past the dataset's end wrap the iterator).
  ck.meta = {{"batch", cfg_.batch}, {"seed", cfg_.seed}, {"epoch_step", epoch_step_}, {"run_epoch", run_epoch_},
             {"iter_epoch", iter_epoch_}, {"iter_batch", iter_batch_}};
  const std::map<std::string, std::vector<float>> whole = state();
  for (const ir::Value& v : graph().values()) {
    if (!is_state(v) || !exec_->is_bound(v.id)) continue;
    ck.tensors.push_back(make_checkpoint_tensor(v.name, whole_shape(v), std::span<const float>(whole.at(v.name))));
  }
  // Data parallelism: every rank holds (or has just gathered) the same tensors; rank 0
  // writes them (batch-norm running statistics: rank 0's, Note [Data parallelism]).
  if (rank() == 0) save_checkpoint(path, ck);
}

void Trainer::resume(const std::string& path) {
  Checkpoint ck = load_checkpoint(path);
  if (ck.model != cfg_.model)
    throw Error("checkpoint '", path, "' is of model '", ck.model, "', not '", cfg_.model, "'");
  for (const ir::Value& v : graph().values()) {
    if (!is_state(v) || !exec_->is_bound(v.id)) continue;
    const CheckpointTensor* t = ck.find(v.name);
    if (!t)
      throw Error("checkpoint '", path, "' has no tensor '", v.name, "' (was it written with another --optimizer?)");
    if (t->shape != whole_shape(v) || t->dtype != "f32")
      throw Error("checkpoint '", path, "': tensor '", v.name, "' is ", t->dtype, ir::shape_str(t->shape), ", the model needs ",
                  ir::TensorType{whole_shape(v), ir::DType::f32}.str());
    // Whole tensors whatever the ranks that wrote them: a rank takes its shard.
    const std::vector<float> data = t->to_f32();
    exec_->write_f32(v.id, v.shard ? ir::take_shard(data, *v.shard) : data);
  }
  step_ = static_cast<uint64_t>(ck.step);
  epoch_ = ck.epoch;
  auto meta = [&](const char* key, int64_t def) {
    if (!ck.meta.is_object() || !ck.meta.contains(key)) return def;
    if (!ck.meta[key].is_number_integer() || ck.meta[key].get<int64_t>() < 0)
      throw Error("checkpoint '", path, "': \"", key, "\" must be a non-negative integer");
    return ck.meta[key].get<int64_t>();
  };
  epoch_step_ = meta("epoch_step", 0);
  run_epoch_ = meta("run_epoch", epoch_);
  if (batches_) {
    // The iterator where it was: its epoch, and the batches already trained on skipped.
    reset_batches(meta("iter_epoch", epoch_));
    const int64_t skip = meta("iter_batch", 0);
    Batch b;
    for (int64_t k = 0; k < skip; ++k, ++iter_batch_)
      if (!batches_->next(b)) throw Error("checkpoint '", path, "': iter_batch ", skip, " is past the epoch's end");
  }
}

}  // namespace dlmem::train
