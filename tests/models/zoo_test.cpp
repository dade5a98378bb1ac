#include "models/zoo.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/autodiff.h"
#include "util/error.h"

namespace dlmem::models {
namespace {

using ir::OpKind;
using ir::Shape;

// The CIFAR bottleneck ResNet of depth 9n+2 (post-activation, as torchvision's blocks):
// per stage of planes p with c_in input channels, the first block has conv1 c_in*p,
// conv2 9p^2, conv3 4p^2, downsample c_in*4p and batch norms 2p + 2p + 8p + 8p; the
// other n-1 blocks 17p^2 + 12p. Plus conv1 (3*16*9), bn1 (32) and fc (256*10 + 10).
int64_t cifar_resnet_params(int64_t depth) {
  const int64_t n = (depth - 2) / 9;
  int64_t total = 3 * 16 * 9 + 2 * 16 + 256 * 10 + 10;
  int64_t c_in = 16;
  for (int64_t p : {16, 32, 64}) {
    total += 5 * p * c_in + 13 * p * p + 20 * p + (n - 1) * (17 * p * p + 12 * p);
    c_in = 4 * p;
  }
  return total;
}

// nn.Embedding(V, H) + nn.LSTM(H, H, L) + nn.Linear(H, V), as PyTorch counts them:
// each LSTM layer has weight_ih [4H, in], weight_hh [4H, H], bias_ih [4H], bias_hh [4H].
int64_t lstm_lm_params(int64_t vocab, int64_t hidden, int64_t layers) {
  const int64_t embedding = vocab * hidden;
  int64_t lstm = 0;
  for (int64_t l = 0; l < layers; ++l) lstm += 4 * hidden * (hidden + hidden) + 2 * 4 * hidden;
  const int64_t decoder = hidden * vocab + vocab;
  return embedding + lstm + decoder;
}

struct Reference {
  std::string name;
  int64_t params;  // the reference implementation's count at the defaults
  Shape logits;    // logits' shape without the batch dimension
};

// Published counts: torchvision's model documentation, HuggingFace's configurations
// (BertModel + the classifier; GPT2LMHeadModel with its tied head), the Deep
// Compression paper's LeNets.
const std::vector<Reference>& references() {
  static const std::vector<Reference> r = {
      {"mlp", 784 * 1024 + 1024 + 2 * (1024 * 1024 + 1024) + 1024 * 10 + 10, {10}},
      {"lenet-300-100", 266'610, {10}},
      {"lenet5", 431'080, {10}},
      {"alexnet", 61'100'840, {1000}},
      {"vgg16", 138'357'544, {1000}},
      {"vgg19", 143'667'240, {1000}},
      {"resnet18", 11'689'512, {1000}},
      {"resnet34", 21'797'672, {1000}},
      {"resnet50", 25'557'032, {1000}},
      {"resnet101", 44'549'160, {1000}},
      {"resnet152", 60'192'808, {1000}},
      {"resnet164", cifar_resnet_params(164), {10}},
      {"resnet1001", cifar_resnet_params(1001), {10}},
      {"densenet121", 7'978'856, {1000}},
      {"mobilenet_v2", 3'504'872, {1000}},
      {"bert-base", 109'482'240 + 1'538, {2}},
      {"bert-large", 335'141'888 + 2'050, {2}},
      {"bert-tiny", 4'385'920 + 258, {2}},
      {"gpt2-small", 124'439'808, {128, 50257}},
      {"gpt2-medium", 354'823'168, {128, 50257}},
      {"lstm", lstm_lm_params(10000, 650, 2), {35, 10000}},
  };
  return r;
}

std::string test_name(const std::string& model) {
  std::string s = model;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

Shape with_batch(int64_t batch, const Shape& tail) {
  Shape s = {batch};
  s.insert(s.end(), tail.begin(), tail.end());
  return s;
}

// Runs `f`, expecting a dlmem::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no dlmem::Error thrown; expected one mentioning " << parts.at(0);
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

int count_ops(const ir::Graph& g, OpKind op) {
  return static_cast<int>(std::count_if(g.nodes().begin(), g.nodes().end(),
                                        [op](const ir::Node& n) { return n.op == op; }));
}

class ZooReference : public testing::TestWithParam<Reference> {};

TEST_P(ZooReference, ParameterCountShapesAndLoss) {
  const Reference& ref = GetParam();
  for (int64_t batch : {1, 64}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    ir::Graph g = build_model(ref.name, {.batch = batch});
    EXPECT_NO_THROW(g.verify());
    EXPECT_EQ(g.parameter_count(), ref.params);
    ASSERT_NE(g.loss, ir::kNoValue);
    EXPECT_EQ(g.value(g.loss).type.shape, Shape{1});
    ASSERT_FALSE(g.outputs.empty());
    EXPECT_EQ(g.value(g.outputs[0]).type.shape, with_batch(batch, ref.logits));

    const ir::ValueId label = g.find("label");
    ASSERT_NE(label, ir::kNoValue);
    EXPECT_EQ(g.value(label).role, ir::Role::label);
    EXPECT_EQ(g.value(label).type.dtype, ir::DType::i32);
    const Shape logits = g.value(g.outputs[0]).type.shape;
    EXPECT_EQ(g.value(label).type.shape, Shape(logits.begin(), logits.end() - 1));

    const bool tokens = g.find("ids") != ir::kNoValue;
    const ir::ValueId in = tokens ? g.find("ids") : g.find("input");
    ASSERT_NE(in, ir::kNoValue);
    EXPECT_EQ(g.value(in).role, ir::Role::input);
    EXPECT_EQ(g.value(in).type.dtype, tokens ? ir::DType::i32 : ir::DType::f32);
    EXPECT_EQ(g.value(in).type.shape.at(0), batch);
    EXPECT_EQ(g.values_with_role(ir::Role::input).size(), 1u);
  }
  // list_models reports the same count.
  bool listed = false;
  for (const ModelInfo& m : list_models()) {
    if (m.name != ref.name) continue;
    listed = true;
    EXPECT_EQ(m.reference_params, ref.params);
    EXPECT_FALSE(m.description.empty());
  }
  EXPECT_TRUE(listed);
}

INSTANTIATE_TEST_SUITE_P(Models, ZooReference, testing::ValuesIn(references()),
                         [](const testing::TestParamInfo<Reference>& p) {
                           return test_name(p.param.name);
                         });

TEST(Zoo, ListModelsHasEveryReferenceOnce) {
  std::set<std::string> names;
  for (const ModelInfo& m : list_models()) {
    EXPECT_TRUE(names.insert(m.name).second) << "listed twice: " << m.name;
    EXPECT_GT(m.reference_params, 0) << m.name;
  }
  std::set<std::string> expected;
  for (const Reference& r : references()) expected.insert(r.name);
  EXPECT_EQ(names, expected);
}

// Training graphs at batch 2 with small inputs: autodiff succeeds, the graph verifies,
// and every trainable weight gets exactly one optimizer update (weights read at several
// places -- GPT-2's tied embedding, the LSTM's per-step weights -- included).
struct TrainCase {
  std::string name;
  ModelConfig config;
};

class ZooTraining : public testing::TestWithParam<TrainCase> {};

TEST_P(ZooTraining, BuildsWithOneUpdatePerWeight) {
  const TrainCase& tc = GetParam();
  ir::Graph g = build_model(tc.name, tc.config);
  const int64_t params = g.parameter_count();
  std::vector<ir::ParamGrad> grads = ir::build_training_graph(g, ir::TrainOptions{});
  EXPECT_NO_THROW(g.verify());
  EXPECT_EQ(g.parameter_count(), params);

  std::map<ir::ValueId, int> updates;
  for (const ir::Node& n : g.nodes())
    if (n.op == OpKind::sgd_update) updates[n.inputs.at(0)]++;
  size_t trainable = 0;
  for (const ir::Value& v : g.values()) {
    if (v.role != ir::Role::weight) continue;
    trainable += v.trainable;
    EXPECT_EQ(updates[v.id], v.trainable ? 1 : 0) << v.name;
  }
  EXPECT_EQ(grads.size(), trainable);
  EXPECT_EQ(count_ops(g, OpKind::adam_update), 0);
}

std::vector<TrainCase> train_cases() {
  const ModelConfig small_image{.batch = 2, .image_size = 32};
  const ModelConfig standard{.batch = 2};
  const ModelConfig short_seq{.batch = 2, .seq_len = 8};
  return {
      {"mlp", standard},
      {"lenet-300-100", standard},
      {"lenet5", standard},
      {"alexnet", standard},
      {"vgg16", standard},
      {"vgg19", standard},
      {"resnet18", small_image},
      {"resnet34", small_image},
      {"resnet50", small_image},
      {"resnet101", small_image},
      {"resnet152", small_image},
      {"resnet164", standard},
      {"resnet1001", standard},
      {"densenet121", small_image},
      {"mobilenet_v2", small_image},
      {"bert-base", short_seq},
      {"bert-large", short_seq},
      {"bert-tiny", short_seq},
      {"gpt2-small", short_seq},
      {"gpt2-medium", short_seq},
      {"lstm", {.batch = 2, .seq_len = 4}},
      {"lstm", {.batch = 2, .seq_len = 1}},  // W_hh still read (by h_0) and updated
      {"mlp-64-32", standard},
      {"resnet20", standard},
  };
}

INSTANTIATE_TEST_SUITE_P(Models, ZooTraining, testing::ValuesIn(train_cases()),
                         [](const testing::TestParamInfo<TrainCase>& p) {
                           const int64_t t = p.param.config.seq_len;
                           return test_name(p.param.name) + (t ? "_T" + std::to_string(t) : "");
                         });

TEST(Zoo, UnknownModelListsTheKnownOnes) {
  expect_error([] { build_model("resnet-50", {}); },
               {"unknown model 'resnet-50'", "resnet50", "bert-base", "gpt2-small", "lstm",
                "mobilenet_v2", "densenet121", "resnet<9n+2>", "mlp-<h1>"});
  expect_error([] { build_model("", {}); }, {"unknown model", "lenet5"});
  expect_error([] { build_model("resnet", {}); }, {"unknown model", "alexnet"});
}

TEST(Zoo, BadConfigsThrow) {
  expect_error([] { build_model("resnet50", {.batch = 0}); }, {"batch", "positive", "0"});
  expect_error([] { build_model("bert-base", {.batch = -3}); }, {"batch", "-3"});
  expect_error([] { build_model("resnet18", {.image_size = -1}); }, {"image_size", "-1"});
  expect_error([] { build_model("resnet18", {.num_classes = -5}); }, {"num_classes", "-5"});
  // Sequences longer than the position tables.
  expect_error([] { build_model("bert-base", {.seq_len = 513}); }, {"seq_len 513", "512"});
  expect_error([] { build_model("bert-large", {.seq_len = 1000}); }, {"seq_len 1000", "512"});
  expect_error([] { build_model("gpt2-small", {.seq_len = 1025}); }, {"seq_len 1025", "1024"});
  EXPECT_NO_THROW(build_model("bert-base", {.seq_len = 512}));
  EXPECT_NO_THROW(build_model("gpt2-small", {.seq_len = 1024}));
  // Images too small, or not reducible by the adaptive pools.
  expect_error([] { build_model("lenet5", {.image_size = 8}); },
               {"image_size 8", "too small", ">= 16"});
  EXPECT_NO_THROW(build_model("lenet5", {.image_size = 16}));
  expect_error([] { build_model("densenet121", {.image_size = 16}); }, {"image_size 16", ">= 29"});
  EXPECT_NO_THROW(build_model("densenet121", {.image_size = 29}));
  expect_error([] { build_model("alexnet", {.image_size = 32}); },
               {"image_size 32", "too small", "223-254"});
  expect_error([] { build_model("alexnet", {.image_size = 300}); },
               {"image_size 300", "AdaptiveAvgPool2d((6, 6))", "223-254, 415-446, 607-638"});
  expect_error([] { build_model("vgg16", {.image_size = 300}); },
               {"vgg16", "9x9", "224-255, 448-479, 672-703"});
  // Overrides a model does not read.
  expect_error([] { build_model("bert-base", {.image_size = 224}); }, {"image_size", "seq_len"});
  expect_error([] { build_model("gpt2-small", {.num_classes = 10}); }, {"num_classes", "vocab"});
  expect_error([] { build_model("resnet50", {.seq_len = 128}); }, {"seq_len", "image_size"});
  expect_error([] { build_model("lstm", {.vocab = int64_t{1} << 40}); }, {"vocab", "i32"});
  // Name patterns.
  expect_error([] { build_model("resnet19", {}); }, {"resnet19", "9n + 2", "18, 34, 50, 101, 152"});
  expect_error([] { build_model("resnet2", {}); }, {"9n + 2"});
  expect_error([] { build_model("mlp-12-x", {}); }, {"mlp-12-x", "positive integers"});
  expect_error([] { build_model("mlp-12--3", {}); }, {"positive integers"});
}

TEST(Zoo, OverridesApply) {
  ir::Graph r = build_model("resnet50", {.batch = 4, .image_size = 128, .num_classes = 100});
  EXPECT_EQ(r.value(r.find("input")).type.shape, (Shape{4, 3, 128, 128}));
  EXPECT_EQ(r.value(r.outputs[0]).type.shape, (Shape{4, 100}));
  EXPECT_EQ(r.parameter_count(), 25'557'032 - 1000 * 2049 + 100 * 2049);

  ir::Graph bert =
      build_model("bert-base", {.batch = 3, .num_classes = 5, .seq_len = 64, .vocab = 1000});
  EXPECT_EQ(bert.value(bert.find("ids")).type.shape, (Shape{3, 64}));
  EXPECT_EQ(bert.value(bert.outputs[0]).type.shape, (Shape{3, 5}));
  EXPECT_EQ(bert.parameter_count(), 109'483'778 - (30522 - 1000) * 768 - 1538 + 5 * 769);

  ir::Graph lstm = build_model("lstm", {.batch = 20, .seq_len = 10, .vocab = 50});
  EXPECT_EQ(lstm.value(lstm.outputs[0]).type.shape, (Shape{20, 10, 50}));
  EXPECT_EQ(lstm.parameter_count(), lstm_lm_params(50, 650, 2));

  ir::Graph mlp = build_model("mlp-512-256", {.batch = 8, .image_size = 32, .num_classes = 7});
  EXPECT_EQ(mlp.parameter_count(), 1024 * 512 + 512 + 512 * 256 + 256 + 256 * 7 + 7);
  EXPECT_EQ(mlp.value(mlp.find("input")).type.shape, (Shape{8, 1, 32, 32}));

  ir::Graph cifar = build_model("resnet20", {.batch = 2});
  EXPECT_EQ(cifar.parameter_count(), cifar_resnet_params(20));
  EXPECT_EQ(cifar.value(cifar.find("input")).type.shape, (Shape{2, 3, 32, 32}));
}

TEST(Zoo, AdaptivePoolIsIdentityAtStandardSizeAndExactOtherwise) {
  EXPECT_EQ(count_ops(build_model("alexnet", {}), OpKind::avg_pool2d), 0);
  EXPECT_EQ(count_ops(build_model("vgg16", {.image_size = 255}), OpKind::avg_pool2d), 0);
  ir::Graph big = build_model("vgg16", {.image_size = 448});
  EXPECT_EQ(big.parameter_count(), 138'357'544);
  ASSERT_EQ(count_ops(big, OpKind::avg_pool2d), 1);
  for (const ir::Node& n : big.nodes())
    if (n.op == OpKind::avg_pool2d) {
      EXPECT_EQ(n.attrs.kernel[0], 2);
      EXPECT_EQ(n.attrs.stride[0], 2);
      EXPECT_EQ(big.value(n.outputs[0]).type.shape, (Shape{1, 512, 7, 7}));
    }
  ir::Graph alex = build_model("alexnet", {.image_size = 430});
  EXPECT_EQ(alex.parameter_count(), 61'100'840);
  EXPECT_EQ(count_ops(alex, OpKind::avg_pool2d), 1);
}

// Parameter names follow the reference implementations (state_dict keys).
TEST(Zoo, ParameterNamesFollowTheReference) {
  auto expect_weights = [](const std::string& model,
                           const std::vector<std::pair<std::string, Shape>>& ws) {
    ir::Graph g = build_model(model, {});
    for (const auto& [name, shape] : ws) {
      const ir::ValueId v = g.find(name);
      ASSERT_NE(v, ir::kNoValue) << model << ": no " << name;
      EXPECT_EQ(g.value(v).role, ir::Role::weight) << name;
      EXPECT_EQ(g.value(v).type.shape, shape) << name;
    }
  };
  expect_weights("lenet5", {{"conv1.weight", {20, 1, 5, 5}},
                            {"conv2.bias", {50}},
                            {"fc1.weight", {500, 800}},
                            {"fc2.bias", {10}}});
  expect_weights("alexnet", {{"features.0.weight", {64, 3, 11, 11}},
                             {"features.10.bias", {256}},
                             {"classifier.1.weight", {4096, 9216}},
                             {"classifier.6.bias", {1000}}});
  expect_weights("vgg16", {{"features.0.weight", {64, 3, 3, 3}},
                           {"features.28.weight", {512, 512, 3, 3}},
                           {"classifier.0.weight", {4096, 25088}},
                           {"classifier.6.weight", {1000, 4096}}});
  expect_weights("vgg19", {{"features.34.weight", {512, 512, 3, 3}}});
  expect_weights("resnet18", {{"layer1.0.conv1.weight", {64, 64, 3, 3}},
                              {"layer2.0.downsample.0.weight", {128, 64, 1, 1}},
                              {"layer4.1.bn2.running_var", {512}},
                              {"fc.weight", {1000, 512}}});
  expect_weights("resnet50", {{"conv1.weight", {64, 3, 7, 7}},
                              {"bn1.running_mean", {64}},
                              {"layer1.0.downsample.1.weight", {256}},
                              {"layer2.0.conv2.weight", {128, 128, 3, 3}},
                              {"layer4.2.conv3.weight", {2048, 512, 1, 1}},
                              {"fc.bias", {1000}}});
  expect_weights("resnet164",
                 {{"layer3.17.conv3.weight", {256, 64, 1, 1}}, {"fc.weight", {10, 256}}});
  expect_weights("densenet121",
                 {{"features.conv0.weight", {64, 3, 7, 7}},
                  {"features.denseblock1.denselayer1.norm1.weight", {64}},
                  {"features.denseblock3.denselayer24.conv2.weight", {32, 128, 3, 3}},
                  {"features.transition3.conv.weight", {512, 1024, 1, 1}},
                  {"features.norm5.running_mean", {1024}},
                  {"classifier.weight", {1000, 1024}}});
  expect_weights("mobilenet_v2", {{"features.0.0.weight", {32, 3, 3, 3}},
                                  {"features.1.conv.0.0.weight", {32, 1, 3, 3}},
                                  {"features.1.conv.1.weight", {16, 32, 1, 1}},
                                  {"features.2.conv.0.0.weight", {96, 16, 1, 1}},
                                  {"features.2.conv.3.running_var", {24}},
                                  {"features.18.0.weight", {1280, 320, 1, 1}},
                                  {"classifier.1.weight", {1000, 1280}}});
  expect_weights("bert-base", {{"bert.embeddings.word_embeddings.weight", {30522, 768}},
                               {"bert.embeddings.position_embeddings.weight", {512, 768}},
                               {"bert.embeddings.token_type_embeddings.weight", {2, 768}},
                               {"bert.embeddings.LayerNorm.weight", {768}},
                               {"bert.encoder.layer.11.attention.self.query.weight", {768, 768}},
                               {"bert.encoder.layer.0.attention.output.LayerNorm.bias", {768}},
                               {"bert.encoder.layer.3.intermediate.dense.weight", {3072, 768}},
                               {"bert.encoder.layer.3.output.dense.weight", {768, 3072}},
                               {"bert.pooler.dense.weight", {768, 768}},
                               {"classifier.weight", {2, 768}}});
  expect_weights("gpt2-medium", {{"transformer.wte.weight", {50257, 1024}},
                                 {"transformer.wpe.weight", {1024, 1024}},
                                 {"transformer.h.23.attn.c_attn.weight", {3072, 1024}},
                                 {"transformer.h.0.mlp.c_proj.weight", {1024, 4096}},
                                 {"transformer.ln_f.bias", {1024}}});
  expect_weights("lstm", {{"encoder.weight", {10000, 650}},
                          {"rnn.weight_ih_l0", {2600, 650}},
                          {"rnn.weight_hh_l1", {2600, 650}},
                          {"rnn.bias_ih_l1", {2600}},
                          {"rnn.bias_hh_l0", {2600}},
                          {"decoder.weight", {10000, 650}},
                          {"decoder.bias", {10000}}});
}

TEST(Zoo, InitialisationFollowsTheReference) {
  ir::Graph vgg = build_model("vgg16", {});
  EXPECT_EQ(vgg.value(vgg.find("features.0.bias")).init.kind, ir::Init::Kind::zeros);
  EXPECT_EQ(vgg.value(vgg.find("features.0.weight")).init.kind, ir::Init::Kind::normal);
  EXPECT_FLOAT_EQ(vgg.value(vgg.find("classifier.0.weight")).init.b, 0.01f);
  ir::Graph r = build_model("resnet50", {});
  const ir::Init conv = r.value(r.find("layer1.0.conv2.weight")).init;  // fan_out = 64 * 9
  EXPECT_EQ(conv.kind, ir::Init::Kind::normal);
  EXPECT_FLOAT_EQ(conv.b, std::sqrt(2.0f / (64 * 9)));
  EXPECT_EQ(r.value(r.find("bn1.running_var")).init.kind, ir::Init::Kind::ones);
  EXPECT_FALSE(r.value(r.find("bn1.running_var")).trainable);
  ir::Graph dense = build_model("densenet121", {});  // kaiming_normal on fan_in = 64 * 1 * 1
  EXPECT_FLOAT_EQ(dense.value(dense.find("features.denseblock1.denselayer1.conv1.weight")).init.b,
                  std::sqrt(2.0f / 64));
  EXPECT_EQ(dense.value(dense.find("classifier.bias")).init.kind, ir::Init::Kind::zeros);
  ir::Graph mobile = build_model("mobilenet_v2", {});  // depthwise: fan_out = 32 * 3 * 3
  EXPECT_FLOAT_EQ(mobile.value(mobile.find("features.1.conv.0.0.weight")).init.b,
                  std::sqrt(2.0f / (32 * 9)));
  ir::Graph gpt = build_model("gpt2-small", {});
  EXPECT_FLOAT_EQ(gpt.value(gpt.find("transformer.h.0.attn.c_attn.weight")).init.b, 0.02f);
  EXPECT_FLOAT_EQ(gpt.value(gpt.find("transformer.h.0.attn.c_proj.weight")).init.b,
                  0.02f / std::sqrt(24.0f));
  EXPECT_EQ(gpt.value(gpt.find("transformer.h.0.attn.c_attn.bias")).init.kind,
            ir::Init::Kind::zeros);
}

TEST(Zoo, Gpt2HeadIsTiedToTheTokenEmbedding) {
  ir::Graph g = build_model("gpt2-small", {.batch = 2, .seq_len = 16});
  const ir::ValueId wte = g.find("transformer.wte.weight");
  EXPECT_EQ(g.find("lm_head.weight"), ir::kNoValue);
  const ir::Node& head = g.node(g.value(g.outputs[0]).producer);
  EXPECT_EQ(head.op, OpKind::linear);
  ASSERT_EQ(head.inputs.size(), 2u);  // no bias
  EXPECT_EQ(head.inputs[1], wte);
  EXPECT_EQ(g.value(wte).consumers.size(), 2u);  // the lookup and the head
  EXPECT_EQ(count_ops(g, OpKind::causal_mask), 12);
  EXPECT_EQ(g.value(g.find("label")).type.shape, (Shape{2, 16}));
}

TEST(Zoo, LstmSharesItsWeightsAcrossSteps) {
  ir::Graph g = build_model("lstm", {.batch = 4});
  for (const char* w : {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l1", "rnn.bias_hh_l1"})
    EXPECT_EQ(g.value(g.find(w)).consumers.size(), 35u) << w;
  for (const char* s : {"rnn.h0_l0", "rnn.c0_l1"}) {
    const ir::Value& v = g.value(g.find(s));
    EXPECT_FALSE(v.trainable) << s;
    EXPECT_EQ(v.init.kind, ir::Init::Kind::zeros) << s;
    EXPECT_EQ(v.type.shape, (Shape{4, 650})) << s;
  }
  EXPECT_EQ(count_ops(g, OpKind::linear), 2 * 2 * 35 + 1);
  // Nodes in the order nn.LSTM computes them: the input term, then the recurrent one.
  const ir::ValueId ih = g.find("rnn.l0.t0.ih"), hh = g.find("rnn.l0.t0.hh");
  ASSERT_NE(ih, ir::kNoValue);
  ASSERT_NE(hh, ir::kNoValue);
  EXPECT_LT(g.value(ih).producer, g.value(hh).producer);
  EXPECT_EQ(g.value(hh).type.shape, (Shape{4, 2600}));
}

TEST(Zoo, EvaluationModeHasNoDropoutAndRunningStatistics) {
  ir::Graph bert = build_model("bert-base", {.training = false});
  EXPECT_EQ(count_ops(bert, OpKind::dropout), 0);
  ir::Graph bert_train = build_model("bert-base", {});
  EXPECT_EQ(count_ops(bert_train, OpKind::dropout), 1 + 12 * 3 + 1);
  ir::Graph r = build_model("resnet18", {.training = false});
  for (const ir::Node& n : r.nodes())
    if (n.op == OpKind::batch_norm) {
      EXPECT_EQ(n.outputs.size(), 1u) << n.name;
    }
  EXPECT_EQ(count_ops(build_model("alexnet", {.training = false}), OpKind::dropout), 0);
  EXPECT_EQ(count_ops(build_model("alexnet", {}), OpKind::dropout), 2);
}

TEST(Zoo, DenseNetConcatenatesEveryEarlierMap) {
  ir::Graph g = build_model("densenet121", {.training = false, .image_size = 64});
  // One concat per dense layer but the first of each block, one at the end of each block.
  EXPECT_EQ(count_ops(g, OpKind::concat), (5 + 11 + 23 + 15) + 4);
  const ir::ValueId out = g.find("features.norm5");
  ASSERT_NE(out, ir::kNoValue);
  EXPECT_EQ(g.value(out).type.shape, (Shape{1, 1024, 2, 2}));
}

}  // namespace
}  // namespace dlmem::models
