// Activation compression on real activations (MISSION.md: Gist, cDMA). For each model:
// train it briefly (LeNet-5 and ResNet-18 on Fashion-MNIST; VGG-16 on synthetic input),
// capture every stashed feature map of the last step, and report
//  - per codec: the compression ratio on the ReLU-like stashes and on all stashes, the
//    density of the ReLU-like ones, encode/decode GB/s against memcpy of the same
//    tensors (median of 3, same run), and the error of the lossy ones;
//  - the activation footprint (device bytes of role activation resident at the end of
//    the forward pass: the stash) and the step's peak, default vs compress
//    (planned = measured, bitmasks), vs Gist's lossless set (compress:sparse: planned
//    at the codec bounds, and at the real encoded sizes measured by the executor on the
//    trained weights), vs fp16 stashes (lossy);
//  - plan-only footprints at training batch sizes (VGG-16 b32, ResNet-18 b64).
// One JSON object per line on stdout; progress on stderr.
//
//   build/release/compress_bench            # full (10-20 minutes on 2 cores)
//   build/release/compress_bench --quick    # LeNet-5 and ResNet-18 only, short training (make bench)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/liveness.h"
#include "codec/codec.h"
#include "ir/autodiff.h"
#include "models/zoo.h"
#include "planners/compress/compress.h"
#include "planners/planner.h"
#include "runtime/executor.h"
#include "train/batch_iterator.h"
#include "train/fashion_mnist.h"
#include "train/init.h"
#include "train/synthetic_dataset.h"
#include "common.h"

namespace {

using namespace dlmem;
using bench::load_average;
using clock_type = std::chrono::steady_clock;

struct Case {
  std::string label;    // "resnet18-fmnist-up56"
  std::string model;
  std::string data;     // fashion-mnist | synthetic
  int64_t image = 0;    // model input size (0: the model's own)
  int64_t batch = 1;
  int steps = 1;        // training steps before the capture
};

std::string json_str(const std::string& s) { return "\"" + s + "\""; }

// Fills an [N, C, S, S] batch from a dataset batch of [N, 1, 28, 28] (Fashion-MNIST:
// the channel repeated, nearest-neighbour upsampling to S) or copies it (same shape).
void to_input(const train::Batch& b, const ir::Shape& shape, std::vector<float>& out) {
  const int64_t n = shape[0], c = shape[1], s = shape[2];
  out.assign(static_cast<size_t>(n * c * s * s), 0.0f);
  const int64_t per = static_cast<int64_t>(b.images.size()) / std::max<int64_t>(b.size, 1);
  if (per == c * s * s) {
    std::copy(b.images.begin(), b.images.begin() + static_cast<int64_t>(out.size()), out.begin());
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < s; ++y)
        for (int64_t x = 0; x < s; ++x)
          out[static_cast<size_t>(((i * c + ch) * s + y) * s + x)] =
              b.images[static_cast<size_t>(i * 784 + (y * 28 / s) * 28 + (x * 28 / s))];
}

ir::Graph training_graph(const Case& c, runtime::Backend& be) {
  models::ModelConfig mc;
  mc.batch = c.batch;
  mc.image_size = c.image;
  ir::Graph g = models::build_model(c.model, mc);
  ir::TrainOptions opt;
  opt.optimizer = ir::Optimizer::adam;
  opt.lr = 1e-3;
  ir::build_training_graph(g, opt);
  runtime::attach_workspaces(g, be);
  return g;
}

// Device bytes of role activation resident at the last forward computation (the loss):
// every stash is held, every encoding made and none decoded yet.
uint64_t stash_bytes(const ir::Graph& g, const plan::Plan& p) {
  int pos = -1;
  for (int i = 0; i < static_cast<int>(p.program.size()); ++i) {
    const plan::Instr& in = p.program[static_cast<size_t>(i)];
    if (in.kind == plan::InstrKind::compute && g.node(in.node).phase == ir::Phase::forward) pos = i;
  }
  uint64_t bytes = 0;
  for (const plan::Buffer& b : p.buffers)
    if (b.space == plan::Space::device && b.role == ir::Role::activation && b.begin <= pos && pos < b.end) bytes += b.bytes;
  return bytes;
}

template <typename F>
double median_seconds(F&& f) {
  std::vector<double> t;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = clock_type::now();
    f();
    t.push_back(std::chrono::duration<double>(clock_type::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[1];
}

struct Tensor {
  ir::ValueId value;
  bool relu_like;
  bool sign_only;  // only a ReLU backward reads it: the bitmask applies
  std::vector<float> data;
};

void codec_rows(const Case& c, const std::vector<Tensor>& tensors) {
  // "sign": the stashes the bitmask serves (and only the bitmask is reported for them);
  // "relu": ReLU-like stashes; "all": every stash (the bitmask does not apply).
  for (const std::string set : {"sign", "relu", "all"}) {
    std::vector<const Tensor*> ts;
    uint64_t raw = 0, nonzero = 0, n_total = 0;
    for (const Tensor& t : tensors)
      if (set == "all" || (set == "relu" && t.relu_like) || (set == "sign" && t.sign_only)) {
        ts.push_back(&t);
        raw += 4 * t.data.size();
        n_total += t.data.size();
        for (float v : t.data) nonzero += v != 0.0f;
      }
    if (ts.empty()) continue;
    uint64_t largest = 0;
    for (const Tensor* t : ts) largest = std::max<uint64_t>(largest, t->data.size());
    std::vector<float> out(largest);
    const double t_memcpy = median_seconds([&] {
      for (const Tensor* t : ts) std::memcpy(out.data(), t->data.data(), 4 * t->data.size());
    });
    for (const codec::Codec* cd : codec::all()) {
      if ((cd->name() == "bitmask") != (set == "sign")) continue;
      std::vector<std::vector<std::byte>> enc(ts.size());
      std::vector<uint64_t> size(ts.size());
      for (size_t i = 0; i < ts.size(); ++i) enc[i].resize(cd->bound(ts[i]->data.size()));
      const double t_enc = median_seconds([&] {
        for (size_t i = 0; i < ts.size(); ++i) size[i] = cd->encode(ts[i]->data.data(), ts[i]->data.size(), enc[i].data());
      });
      uint64_t encoded = 0;
      for (uint64_t s : size) encoded += s;
      double err2 = 0, ref2 = 0;
      const double t_dec = median_seconds([&] {
        for (size_t i = 0; i < ts.size(); ++i) cd->decode(enc[i].data(), size[i], ts[i]->data.size(), out.data());
      });
      for (size_t i = 0; i < ts.size(); ++i) {
        cd->decode(enc[i].data(), size[i], ts[i]->data.size(), out.data());
        for (size_t j = 0; j < ts[i]->data.size(); ++j) {
          const double x = ts[i]->data[j], y = out[j];
          err2 += (x - y) * (x - y);
          ref2 += x * x;
        }
      }
      const double gb = static_cast<double>(raw) / 1e9;
      std::cout << "{\"bench\":\"compress\",\"row\":\"codec\",\"case\":" << json_str(c.label) << ",\"batch\":" << c.batch
                << ",\"tensors\":" << json_str(set) << ",\"count\":" << ts.size() << ",\"codec\":" << json_str(std::string(cd->name()))
                << ",\"preserves\":" << json_str(std::string(codec::preserves_name(cd->preserves()))) << ",\"raw_bytes\":" << raw
                << ",\"encoded_bytes\":" << encoded << ",\"ratio\":" << static_cast<double>(raw) / static_cast<double>(encoded)
                << ",\"density\":" << static_cast<double>(nonzero) / static_cast<double>(n_total)
                << ",\"encode_gbps\":" << gb / t_enc << ",\"decode_gbps\":" << gb / t_dec << ",\"memcpy_gbps\":" << gb / t_memcpy
                << ",\"encode_vs_memcpy\":" << t_memcpy / t_enc << ",\"decode_vs_memcpy\":" << t_memcpy / t_dec
                << ",\"rel_rms_error\":" << (cd->preserves() == codec::Preserves::approximate ? std::sqrt(err2 / std::max(ref2, 1e-30)) : 0.0)
                << "}\n";
    }
  }
}

void run_case(const Case& c) {
  const auto t0 = clock_type::now();
  auto be = runtime::make_cpu_backend({.threads = 2});
  const ir::Graph g = training_graph(c, *be);
  const plan::Plan ref = planners::make_plan(g, {});
  const std::vector<planners::Stash> stashes = planners::find_stashes(g, ref);

  // The capture run: every stash kept to the end of the step, so it can be read.
  ir::Graph gc = g;
  for (const planners::Stash& s : stashes) gc.outputs.push_back(s.value);
  const plan::Plan pc = planners::make_plan(gc, {});
  runtime::Executor ex(gc, pc, *be);
  train::init_weights(ex, gc, 42);

  const ir::ValueId input = g.find("input"), label = g.find("label");
  const ir::Shape& in_shape = g.value(input).type.shape;
  std::unique_ptr<train::Dataset> data;
  if (c.data == "fashion-mnist")
    data = std::make_unique<train::FashionMnist>(train::FashionMnist::default_dir(), train::Split::Train);
  else
    data = std::make_unique<train::SyntheticDataset>(std::vector<int64_t>(in_shape.begin() + 1, in_shape.end()),
                                                     g.value(g.outputs.at(0)).type.shape.back(), 64, 7);
  train::BatchIterator it(*data, {.batch_size = c.batch, .shuffle = true, .seed = 1, .drop_last = true});
  train::Batch b;
  std::vector<float> x;
  std::vector<int32_t> y(static_cast<size_t>(c.batch));
  float loss = 0;
  for (int s = 0; s < c.steps; ++s) {
    if (!it.next(b)) {
      it.reset(it.epoch() + 1);
      it.next(b);
    }
    to_input(b, in_shape, x);
    std::copy(b.labels.begin(), b.labels.begin() + c.batch, y.begin());
    ex.write_f32(input, x);
    ex.write(label, std::as_bytes(std::span<const int32_t>(y)));
    ex.run_step(static_cast<uint64_t>(s));
    loss = ex.read_f32(g.loss)[0];
  }
  std::cerr << c.label << ": trained " << c.steps << " steps, loss " << loss << ", " << stashes.size() << " stashes\n";
  std::vector<Tensor> tensors;
  for (const planners::Stash& s : stashes)
    tensors.push_back({s.value, s.relu_like, s.need == planners::StashNeed::sign, ex.read_f32(s.value)});
  codec_rows(c, tensors);

  // The same last step under each policy, from the trained state: planned and measured.
  struct Measured {
    uint64_t peak_planned = 0, peak = 0, peak_real = 0, stash_planned = 0, encoded_real = 0, encoded_bound = 0;
    float loss = 0;
  };
  auto measure = [&](const std::string& policy) {
    const plan::Plan p = planners::make_plan(g, {.policy = policy});
    runtime::Executor e(g, p, *be);
    for (const ir::Value& v : g.values())
      if (v.role == ir::Role::weight || v.role == ir::Role::optimizer_state) e.write_f32(v.id, ex.read_f32(v.id));
    e.write_f32(input, x);
    e.write(label, std::as_bytes(std::span<const int32_t>(y)));
    e.run_step(static_cast<uint64_t>(c.steps));
    Measured m;
    m.peak_planned = p.stats.peak_device;
    m.peak = e.stats().peak_device;
    m.peak_real = e.stats().peak_device_real;
    m.stash_planned = stash_bytes(g, p);
    m.encoded_real = e.stats().encoded_real;
    m.encoded_bound = e.stats().encoded_bound;
    m.loss = e.read_f32(g.loss)[0];
    return m;
  };
  const Measured def = measure("default"), cmp = measure("compress"), gist = measure("compress:sparse"),
                 f16 = measure("compress:fp16");
  // Gist's lossless stash at real sizes: the planned stash less what the encodings
  // reserved but did not use (every encoding is resident at the end of the forward).
  const uint64_t gist_real = gist.stash_planned - (gist.encoded_bound - gist.encoded_real);
  auto ratio = [](uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  std::cout << "{\"bench\":\"compress\",\"row\":\"footprint\",\"case\":" << json_str(c.label) << ",\"batch\":" << c.batch
            << ",\"steps_trained\":" << c.steps << ",\"stash_default\":" << def.stash_planned
            << ",\"stash_compress\":" << cmp.stash_planned << ",\"stash_gist_bound\":" << gist.stash_planned
            << ",\"stash_gist_real\":" << gist_real << ",\"stash_fp16\":" << f16.stash_planned
            << ",\"stash_reduction_compress\":" << ratio(def.stash_planned, cmp.stash_planned)
            << ",\"stash_reduction_gist_real\":" << ratio(def.stash_planned, gist_real)
            << ",\"stash_reduction_fp16\":" << ratio(def.stash_planned, f16.stash_planned)
            << ",\"peak_default\":" << def.peak << ",\"peak_compress\":" << cmp.peak << ",\"peak_gist_bound\":" << gist.peak
            << ",\"peak_gist_real\":" << gist.peak_real << ",\"peak_fp16\":" << f16.peak
            << ",\"peak_reduction_compress\":" << ratio(def.peak, cmp.peak)
            << ",\"peak_reduction_gist_real\":" << ratio(def.peak, gist.peak_real)
            << ",\"peak_reduction_fp16\":" << ratio(def.peak, f16.peak)
            << ",\"measured_equals_planned\":" << (def.peak == def.peak_planned && cmp.peak == cmp.peak_planned && gist.peak == gist.peak_planned ? "true" : "false")
            << ",\"lossless_loss_identical\":" << (def.loss == cmp.loss && def.loss == gist.loss ? "true" : "false")
            << ",\"seconds\":" << std::chrono::duration<double>(clock_type::now() - t0).count() << "}\n";
}

// Planned only (nothing runs): footprints at training batch sizes.
void plan_row(const std::string& model, int64_t batch) {
  auto be = runtime::make_cpu_backend({.threads = 2});
  const Case c{model, model, "synthetic", 0, batch, 0};
  const ir::Graph g = training_graph(c, *be);
  std::cout << "{\"bench\":\"compress\",\"row\":\"planned\",\"model\":" << json_str(model) << ",\"batch\":" << batch;
  uint64_t stash0 = 0, peak0 = 0;
  for (const char* policy : {"default", "compress", "compress:sparse", "compress:fp16", "compress:fp8-e4m3"}) {
    const plan::Plan p = planners::make_plan(g, {.policy = policy});
    const uint64_t stash = stash_bytes(g, p);
    if (stash0 == 0) {
      stash0 = stash;
      peak0 = p.stats.peak_device;
    }
    std::string key = policy;
    std::replace(key.begin(), key.end(), ':', '_');
    std::replace(key.begin(), key.end(), '-', '_');
    std::cout << ",\"stash_" << key << "\":" << stash << ",\"peak_" << key << "\":" << p.stats.peak_device
              << ",\"stash_reduction_" << key << "\":" << static_cast<double>(stash0) / static_cast<double>(stash)
              << ",\"peak_reduction_" << key << "\":" << static_cast<double>(peak0) / static_cast<double>(p.stats.peak_device);
  }
  std::cout << "}\n";
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else {
      std::cerr << "usage: compress_bench [--quick]\n";
      return 2;
    }
  }
  try {
    const double load0 = load_average();
    std::vector<Case> cases;
    if (quick) {
      // VGG-16 runs only in the full mode (its smallest input, 224, takes minutes here).
      cases = {{"lenet5-fmnist", "lenet5", "fashion-mnist", 0, 64, 50},
               {"resnet18-fmnist-28", "resnet18", "fashion-mnist", 28, 16, 10}};
    } else {
      cases = {{"lenet5-fmnist", "lenet5", "fashion-mnist", 0, 64, 400},
               {"resnet18-fmnist-28", "resnet18", "fashion-mnist", 28, 32, 150},
               {"resnet18-fmnist-up56", "resnet18", "fashion-mnist", 56, 32, 60},
               {"vgg16-synthetic-224", "vgg16", "synthetic", 224, 2, 2}};
    }
    for (const Case& c : cases) run_case(c);
    plan_row("resnet18", quick ? 16 : 64);
    plan_row("vgg16", quick ? 4 : 32);
    std::cout << "{\"bench\":\"compress\",\"row\":\"meta\",\"quick\":" << (quick ? "true" : "false")
              << ",\"load_before\":" << load0 << ",\"load_after\":" << load_average() << "}\n";
  } catch (const std::exception& e) {
    std::cerr << "compress_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
