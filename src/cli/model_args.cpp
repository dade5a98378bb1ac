#include "cli/commands.h"

#include "runtime/comm.h"
#include "util/error.h"

namespace dlmem::cli {

void ModelArgs::add(CLI::App& app, int64_t default_batch) {
  batch = default_batch;  // `optimizer` keeps the default the command set
  auto* m = app.add_option("--model,-m", model, "zoo model (see 'dlmem models')")->capture_default_str();
  app.add_option_function<std::string>(
         "--onnx",
         [this](const std::string& f) {
           if (!f.ends_with(".onnx")) throw CLI::ValidationError("--onnx", "expects an ONNX model file (*.onnx), got '" + f + "'");
           model = f;
         },
         "an ONNX model (FILE.onnx) instead of a zoo model: its initializers are the weights, --batch binds a "
         "symbolic batch dimension, and training adds the mean cross-entropy of its [batch, classes] output")
      ->excludes(m);
  app.add_option("--batch,-b", batch, "mini-batch size")->capture_default_str();
  app.add_option("--image-size", image_size, "input height and width (0: the model's standard)");
  app.add_option("--seq-len", seq_len, "sequence length of token models (0: default)");
  app.add_option("--classes", num_classes, "output classes (0: the model's standard)");
  app.add_option("--optimizer", optimizer, "sgd | adam | none")->capture_default_str();
}

models::ModelConfig ModelArgs::config(bool training) const {
  if (batch <= 0) throw Error("--batch must be positive, got ", batch);
  if (image_size < 0) throw Error("--image-size must be positive, got ", image_size);
  if (seq_len < 0) throw Error("--seq-len must be positive, got ", seq_len);
  if (num_classes < 0) throw Error("--classes must be positive, got ", num_classes);
  models::ModelConfig c;
  c.batch = batch;
  c.training = training;
  c.image_size = image_size;
  c.seq_len = seq_len;
  c.num_classes = num_classes;
  return c;
}

ir::Optimizer ModelArgs::parsed_optimizer() const {
  if (optimizer == "sgd") return ir::Optimizer::sgd;
  if (optimizer == "adam") return ir::Optimizer::adam;
  if (optimizer == "none") return ir::Optimizer::none;
  throw Error("unknown --optimizer '", optimizer, "'; use sgd, adam or none");
}

session::SessionOptions ModelArgs::session(const std::string& device, int threads) const {
  session::SessionOptions o{.model = model, .config = config(true), .device = device, .threads = threads};
  o.train.optimizer = parsed_optimizer();
  o.link = link;
  if (ranks < 1) throw Error("--ranks must be at least 1, got ", ranks);
  if (zero < 0 || zero > 3) throw Error("--zero takes a ZeRO stage: 0, 1, 2 or 3; got ", zero);
  if (zero && ranks == 1) throw Error("--zero ", zero, " shards over ranks: give --ranks N (N > 1)");
  if (ranks > 1) {
    if (batch % ranks != 0) throw Error("--batch ", batch, " does not split over ", ranks, " ranks; use a multiple of ", ranks);
    o.config.batch = batch / ranks;
    if (bucket_mib < 0) throw Error("--bucket-mb must be 0 (one all-reduce per gradient) or positive, got ", bucket_mib);
    o.parallel = {.ranks = ranks, .rank = 0, .zero = zero, .bucket_bytes = static_cast<uint64_t>(bucket_mib * 1048576.0)};
    o.comm = &runtime::planning_comm(ranks);
  }
  return o;
}

void ModelArgs::add_parallel(CLI::App& app) {
  app.add_option("--ranks", ranks,
                 "plan one rank of a data-parallel run of this many ranks: --batch is the global batch (its share per "
                 "rank), the gradients' collectives and ZeRO's shards are in the plan (docs/distributed.md)")
      ->capture_default_str();
  app.add_option("--zero", zero, "with --ranks: ZeRO stage 0..3")->capture_default_str();
  app.add_option("--bucket-mb", bucket_mib, "with --ranks, ZeRO 0/1: gradients all-reduced in buckets of this many MiB (0: one per gradient)")
      ->capture_default_str();
  app.add_option("--link", link,
                 "with --ranks: the interconnect collectives are simulated on: nvlink-v100 | nvlink-a100 | nvlink-h100 | "
                 "pcie-gen3 | ib-400 | ib-200 | ethernet-100 | ethernet-10 | shm (default: the --device's)");
}

}  // namespace dlmem::cli
