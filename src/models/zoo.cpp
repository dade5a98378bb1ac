// The registry of the zoo: names, descriptions, reference parameter counts, which
// overrides each model takes, and the checks every model shares. The builders live in
// one file per family (common.h lists them).
#include "models/zoo.h"

#include <charconv>
#include <limits>
#include <optional>
#include <sstream>

#include "models/common.h"
#include "models/onnx/onnx.h"
#include "util/error.h"

namespace dlmem::models {

namespace {

using namespace detail;

// Which ModelConfig overrides a model reads.
enum Uses : unsigned { kImage = 1u, kClasses = 2u, kSeqLen = 4u, kVocab = 8u };

struct Entry {
  const char* name;
  const char* description;
  int64_t params;
  unsigned uses;
  ir::Graph (*build)(const ModelConfig&);
};

constexpr unsigned kImageModel = kImage | kClasses;

const std::vector<Entry>& registry() {
  static const std::vector<Entry> r = {
      {"mlp", "MLP 784-1024-1024-1024-10, ReLU (mlp-<h1>-<h2>-...: any hidden sizes); 1x28x28",
       2'913'290, kImageModel,
       [](const ModelConfig& c) {
         return build_mlp({1024, 1024, 1024}, c);
       }},
      {"lenet-300-100",
       "LeNet-300-100 MLP 784-300-100-10, ReLU (Deep Compression); 1x28x28, 10 classes", 266'610,
       kImageModel, build_lenet_300_100},
      {"lenet5",
       "Caffe LeNet-5 (Deep Compression): conv20-pool-conv50-pool-fc500-fc10; 1x28x28, 10 classes",
       431'080, kImageModel, build_lenet5},
      {"alexnet", "AlexNet (torchvision); 3x224x224, 1000 classes", 61'100'840, kImageModel,
       build_alexnet},
      {"vgg16", "VGG-16, configuration D (torchvision, no batch norm); 3x224x224, 1000 classes",
       138'357'544, kImageModel, [](const ModelConfig& c) { return build_vgg(16, c); }},
      {"vgg19", "VGG-19, configuration E (torchvision, no batch norm); 3x224x224, 1000 classes",
       143'667'240, kImageModel, [](const ModelConfig& c) { return build_vgg(19, c); }},
      {"resnet18", "ResNet-18 (torchvision, basic blocks); 3x224x224, 1000 classes", 11'689'512,
       kImageModel, [](const ModelConfig& c) { return build_resnet(18, c); }},
      {"resnet34", "ResNet-34 (torchvision, basic blocks); 3x224x224, 1000 classes", 21'797'672,
       kImageModel, [](const ModelConfig& c) { return build_resnet(34, c); }},
      {"resnet50", "ResNet-50 (torchvision, bottlenecks v1.5); 3x224x224, 1000 classes", 25'557'032,
       kImageModel, [](const ModelConfig& c) { return build_resnet(50, c); }},
      {"resnet101", "ResNet-101 (torchvision, bottlenecks v1.5); 3x224x224, 1000 classes",
       44'549'160, kImageModel, [](const ModelConfig& c) { return build_resnet(101, c); }},
      {"resnet152", "ResNet-152 (torchvision, bottlenecks v1.5); 3x224x224, 1000 classes",
       60'192'808, kImageModel, [](const ModelConfig& c) { return build_resnet(152, c); }},
      {"resnet164",
       "ResNet-164 for CIFAR (He et al. 2016): 3 stages x 18 bottlenecks, post-activation "
       "(resnet<9n+2> builds any depth); 3x32x32, 10 classes",
       1'704'154, kImageModel, [](const ModelConfig& c) { return build_cifar_resnet(164, c); }},
      {"resnet1001",
       "ResNet-1001 for CIFAR (He et al. 2016): 3 stages x 111 bottlenecks, post-activation "
       "(resnet<9n+2> builds any depth); 3x32x32, 10 classes",
       10'328'602, kImageModel, [](const ModelConfig& c) { return build_cifar_resnet(1001, c); }},
      {"densenet121",
       "DenseNet-121 (torchvision, memory-inefficient concatenation); 3x224x224, 1000 classes",
       7'978'856, kImageModel, build_densenet121},
      {"mobilenet_v2", "MobileNetV2, width 1.0 (torchvision); 3x224x224, 1000 classes", 3'504'872,
       kImageModel, build_mobilenet_v2},
      {"bert-base",
       "BERT-base (HuggingFace BertForSequenceClassification, 2 labels); ids [N,128], vocab 30522",
       109'483'778, kClasses | kSeqLen | kVocab,
       [](const ModelConfig& c) { return build_bert(BertSize::base, c); }},
      {"bert-large",
       "BERT-large (HuggingFace BertForSequenceClassification, 2 labels); ids [N,128], vocab 30522",
       335'143'938, kClasses | kSeqLen | kVocab,
       [](const ModelConfig& c) { return build_bert(BertSize::large, c); }},
      {"bert-tiny",
       "BERT-tiny (Turc et al. 2019, google/bert_uncased_L-2_H-128_A-2: 2 layers, hidden 128, 2 heads) for "
       "sequence classification, 2 labels; ids [N,128], vocab 30522",
       4'386'178, kClasses | kSeqLen | kVocab, [](const ModelConfig& c) { return build_bert(BertSize::tiny, c); }},
      {"gpt2-small",
       "GPT-2 small (HuggingFace GPT2LMHeadModel, tied head); ids [N,128], next-token loss",
       124'439'808, kSeqLen | kVocab, [](const ModelConfig& c) { return build_gpt2(false, c); }},
      {"gpt2-medium",
       "GPT-2 medium (HuggingFace GPT2LMHeadModel, tied head); ids [N,128], next-token loss",
       354'823'168, kSeqLen | kVocab, [](const ModelConfig& c) { return build_gpt2(true, c); }},
      {"lstm",
       "word-level LSTM LM (PyTorch word_language_model, Zaremba medium): 2x650, vocab 10000, T=35",
       19'780'400, kSeqLen | kVocab, build_lstm},
  };
  return r;
}

std::string known_names() {
  std::ostringstream os;
  for (const Entry& e : registry()) os << e.name << ", ";
  os << "mlp-<h1>-<h2>-... (hidden sizes) and resnet<9n+2> (CIFAR ResNets)";
  return os.str();
}

// "123" -> 123; anything else (empty, signs, other characters, overflow) -> nullopt.
std::optional<int64_t> parse_positive(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

void check_config(std::string_view name, const ModelConfig& c, unsigned uses) {
  if (c.batch <= 0) throw Error(name, ": batch must be positive, got ", c.batch);
  struct Field {
    const char* what;
    int64_t value;
    unsigned flag;
    const char* instead;
  };
  // Every model reads either images (image_size, num_classes) or token ids (seq_len,
  // vocab, and num_classes for a classifier): an override it does not take belongs to
  // the other kind.
  const Field fields[] = {
      {"image_size", c.image_size, kImage, "it reads token ids [N, T]; set seq_len instead"},
      {"num_classes", c.num_classes, kClasses,
       "it predicts the next token over its vocabulary; set vocab instead"},
      {"seq_len", c.seq_len, kSeqLen, "it reads images; set image_size instead"},
      {"vocab", c.vocab, kVocab, "it reads images; set num_classes instead"},
  };
  for (const Field& f : fields) {
    if (f.value < 0)
      throw Error(name, ": ", f.what, " must be positive (or 0 for the model's default), got ",
                  f.value);
    if (f.value != 0 && !(uses & f.flag))
      throw Error(name, " takes no ", f.what, " (", f.instead, "); leave it 0");
  }
  // ids are i32; a larger vocabulary could not be indexed.
  if (c.vocab > std::numeric_limits<int32_t>::max())
    throw Error(name, ": vocab ", c.vocab,
                " exceeds the i32 token ids; use vocab <= ", std::numeric_limits<int32_t>::max());
}

}  // namespace

std::vector<ModelInfo> list_models() {
  std::vector<ModelInfo> out;
  for (const Entry& e : registry()) out.push_back({e.name, e.description, e.params});
  return out;
}

ir::Graph build_model(std::string_view name, const ModelConfig& config) {
  if (name.ends_with(".onnx")) {
    if (config.image_size || config.num_classes || config.seq_len || config.vocab)
      throw Error("'", name, "' is an ONNX model: its input size, classes, sequence length and vocabulary are the "
                  "file's (only --batch applies)");
    return onnx::import_model(std::string(name), {.batch = config.batch, .training = config.training,
                                                  .as_zoo_model = true, .seed = config.seed})
        .graph;
  }
  for (const Entry& e : registry()) {
    if (name != e.name) continue;
    check_config(name, config, e.uses);
    return e.build(config);
  }
  if (name.starts_with("mlp-")) {
    std::vector<int64_t> hidden;
    std::string_view rest = name.substr(4);
    while (true) {
      const size_t dash = rest.find('-');
      std::optional<int64_t> h = parse_positive(rest.substr(0, dash));
      if (!h)
        throw Error("model '", name,
                    "': hidden sizes must be positive integers separated by '-', "
                    "e.g. mlp-512-256");
      hidden.push_back(*h);
      if (dash == std::string_view::npos) break;
      rest = rest.substr(dash + 1);
    }
    check_config(name, config, kImageModel);
    return build_mlp(hidden, config);
  }
  if (name.starts_with("resnet")) {
    std::optional<int64_t> depth = parse_positive(name.substr(6));
    if (depth) {
      if (*depth > 100'000)
        throw Error("model '", name, "': depth ", *depth,
                    " is too deep to build; use at most 100000");
      check_config(name, config, kImageModel);
      return build_cifar_resnet(static_cast<int>(*depth), config);
    }
  }
  throw Error("unknown model '", name, "'; known models: ", known_names());
}

}  // namespace dlmem::models
