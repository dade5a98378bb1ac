// Transformers as HuggingFace defines them.
//
// BERT (Devlin et al. 2019), BertForSequenceClassification, post-LN encoder:
//   bert-base:  12 layers, hidden 768, 12 heads, intermediate 3072: 109,483,778 params
//   bert-large: 24 layers, hidden 1024, 16 heads, intermediate 4096: 335,143,938 params
//   bert-tiny:  2 layers, hidden 128, 2 heads, intermediate 512: 4,386,178 params (Turc
//               et al. 2019's smallest pre-trained BERT; a transformer small enough to
//               train on a CPU in the tests)
//   (BertModel 109,482,240 / 335,141,888, plus the classifier with 2 labels).
//   bert.embeddings: word (vocab 30522) + token type (2) + position (512) embeddings ->
//     LayerNorm (eps 1e-12) -> dropout 0.1
//   bert.encoder.layer.<i>: attention.self.{query,key,value} -> heads -> softmax(q k^T /
//     sqrt(d)) -> dropout -> x v -> attention.output.dense -> dropout -> + input ->
//     attention.output.LayerNorm; intermediate.dense -> GELU -> output.dense -> dropout
//     -> + input -> output.LayerNorm
//   bert.pooler.dense on token 0 -> tanh -> dropout -> classifier
//
// GPT-2 (Radford et al. 2019), GPT2LMHeadModel, pre-LN decoder with the LM head tied to
// the token embedding (one weight, counted once):
//   gpt2-small:  12 layers, hidden 768, 12 heads:  124,439,808 params
//   gpt2-medium: 24 layers, hidden 1024, 16 heads: 354,823,168 params
//   transformer.wte (vocab 50257) + transformer.wpe (1024 positions) -> dropout 0.1
//   transformer.h.<i>: ln_1 -> attn.c_attn (fused q, k, v) -> heads -> q k^T / sqrt(d) ->
//     causal mask -> softmax -> dropout -> x v -> attn.c_proj -> dropout -> + input;
//     ln_2 -> mlp.c_fc (4h) -> GELU -> mlp.c_proj -> dropout -> + input
//   transformer.ln_f (eps 1e-5) -> linear with wte's weight, no bias -> logits [N, T, V]
//   HuggingFace's Conv1D stores c_attn, c_proj and c_fc weights as [in, out]; here they
//   are [out, in] as every linear weight in dlmem (same parameters, transposed layout).
//
// Inputs: "ids" i32 [N, T] only. Positions are 0..T-1 and BERT's token types are all 0,
// so instead of position-id and token-type-id inputs the graphs read the rows they
// would look up: slice(position table, 0, T) and slice(token-type table, 0, 1), added
// with broadcasting -- the same values and the same gradient (scattered into the whole
// table) as the embedding lookups of the reference, with no extra inputs to fill.
// Labels: "label" i32 [N] for BERT; [N, T] for GPT-2 (the next token at every position,
// shifted by the trainer).
//
// Initialisation as HuggingFace: linear and embedding weights N(0, 0.02), biases 0,
// LayerNorm 1/0; GPT-2's c_proj weights N(0, 0.02 / sqrt(2 * layers)).
#include <cmath>

#include "models/common.h"
#include "util/error.h"

namespace dlmem::models::detail {

namespace {

constexpr float kInitStd = 0.02f;
constexpr double kDropout = 0.1;

struct TransformerSize {
  int layers;
  int64_t hidden, heads, intermediate;
};

// [N, T, H] -> [N, heads, T, H / heads]
ir::ValueId split_heads(ir::Builder& b, ir::ValueId x, int64_t heads) {
  const ir::Shape s = b.shape(x);
  return b.transpose(b.reshape(x, {s[0], s[1], heads, s[2] / heads}), {0, 2, 1, 3});
}

// Scaled dot-product attention of [N, T, H] queries, keys and values -> [N, T, H].
ir::ValueId attention(ir::Builder& b, ir::ValueId q, ir::ValueId k, ir::ValueId v, int64_t heads,
                      bool causal) {
  const ir::Shape s = b.shape(q);
  const int64_t d = s[2] / heads;
  q = split_heads(b, q, heads);
  k = split_heads(b, k, heads);
  v = split_heads(b, v, heads);
  ir::ValueId scores =
      b.scale(b.matmul(q, k, false, true), 1.0 / std::sqrt(static_cast<double>(d)));
  if (causal) scores = b.causal_mask(scores);
  ir::ValueId p = b.dropout(b.softmax(scores), kDropout);
  ir::ValueId ctx = b.transpose(b.matmul(p, v), {0, 2, 1, 3});
  return b.reshape(ctx, {s[0], s[1], s[2]});
}

int64_t checked_seq_len(const std::string& model, const ModelConfig& c, int64_t max_positions) {
  const int64_t t = pick(c.seq_len, 128);
  if (t > max_positions)
    throw Error(model, ": seq_len ", t, " exceeds the ", max_positions,
                " positions of its position embedding; use seq_len <= ", max_positions);
  return t;
}

}  // namespace

ir::Graph build_bert(BertSize size, const ModelConfig& c) {
  const std::string model = size == BertSize::large ? "bert-large" : size == BertSize::base ? "bert-base" : "bert-tiny";
  const TransformerSize sz = size == BertSize::large  ? TransformerSize{24, 1024, 16, 4096}
                             : size == BertSize::base ? TransformerSize{12, 768, 12, 3072}
                                                      : TransformerSize{2, 128, 2, 512};
  constexpr int64_t kMaxPositions = 512;
  constexpr int64_t kTypeVocab = 2;
  const int64_t t = checked_seq_len(model, c, kMaxPositions);
  const int64_t vocab = pick(c.vocab, 30522);
  const int64_t labels = pick(c.num_classes, 2);
  const int64_t n = c.batch, h = sz.hidden;
  const ir::Init init = normal_init(kInitStd);

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  ir::ValueId ids = b.input("ids", {n, t}, ir::DType::i32);
  ir::ValueId y = b.label("label", {n});
  ir::ValueId x;
  ir::ValueId pooled;
  {
    auto sbert = b.scope("bert");
    {
      auto s = b.scope("embeddings");
      x = b.embedding(ids, vocab, h, "word_embeddings", init);
      ir::ValueId positions = b.weight("position_embeddings.weight", {kMaxPositions, h}, init);
      ir::ValueId types = b.weight("token_type_embeddings.weight", {kTypeVocab, h}, init);
      x = b.add(x, b.slice(types, 0, 0, 1));      // token_type_ids = 0
      x = b.add(x, b.slice(positions, 0, 0, t));  // position_ids = 0..T-1
      x = b.dropout(b.layer_norm(x, "LayerNorm", 1e-12), kDropout);
    }
    for (int i = 0; i < sz.layers; ++i) {
      auto s = b.scope("encoder.layer." + std::to_string(i));
      {
        auto sa = b.scope("attention");
        ir::ValueId ctx;
        {
          auto ss = b.scope("self");
          ir::ValueId q = b.linear(x, h, "query", true, init);
          ir::ValueId k = b.linear(x, h, "key", true, init);
          ir::ValueId v = b.linear(x, h, "value", true, init);
          ctx = attention(b, q, k, v, sz.heads, false);
        }
        auto so = b.scope("output");
        ir::ValueId out = b.dropout(b.linear(ctx, h, "dense", true, init), kDropout);
        x = b.layer_norm(b.add(out, x), "LayerNorm", 1e-12);
      }
      ir::ValueId inter;
      {
        auto si = b.scope("intermediate");
        inter = b.gelu(b.linear(x, sz.intermediate, "dense", true, init));
      }
      auto so = b.scope("output");
      ir::ValueId out = b.dropout(b.linear(inter, h, "dense", true, init), kDropout);
      x = b.layer_norm(b.add(out, x), "LayerNorm", 1e-12);
    }
    auto sp = b.scope("pooler");
    ir::ValueId first = b.reshape(b.slice(x, 1, 0, 1), {n, h});
    pooled = b.tanh(b.linear(first, h, "dense", true, init));
  }
  ir::ValueId logits = b.linear(b.dropout(pooled, kDropout), labels, "classifier", true, init);
  b.softmax_xent(logits, y);
  return g;
}

ir::Graph build_gpt2(bool medium, const ModelConfig& c) {
  const std::string model = medium ? "gpt2-medium" : "gpt2-small";
  const TransformerSize sz =
      medium ? TransformerSize{24, 1024, 16, 4096} : TransformerSize{12, 768, 12, 3072};
  constexpr int64_t kMaxPositions = 1024;
  const int64_t t = checked_seq_len(model, c, kMaxPositions);
  const int64_t vocab = pick(c.vocab, 50257);
  const int64_t n = c.batch, h = sz.hidden;
  const ir::Init init = normal_init(kInitStd);
  const ir::Init proj_init =
      normal_init(kInitStd / std::sqrt(2.0f * static_cast<float>(sz.layers)));

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  ir::ValueId ids = b.input("ids", {n, t}, ir::DType::i32);
  ir::ValueId y = b.label("label", {n, t});
  ir::ValueId x;
  ir::ValueId wte;
  {
    auto st = b.scope("transformer");
    x = b.embedding(ids, vocab, h, "wte", init);
    wte = layer_input(g, x, 1);
    ir::ValueId wpe = b.weight("wpe.weight", {kMaxPositions, h}, init);
    x = b.dropout(b.add(x, b.slice(wpe, 0, 0, t)), kDropout);  // position_ids = 0..T-1
    for (int i = 0; i < sz.layers; ++i) {
      auto s = b.scope("h." + std::to_string(i));
      {
        ir::ValueId a = b.layer_norm(x, "ln_1", 1e-5);
        auto sa = b.scope("attn");
        ir::ValueId qkv = b.linear(a, 3 * h, "c_attn", true, init);
        ir::ValueId q = b.slice(qkv, 2, 0, h);
        ir::ValueId k = b.slice(qkv, 2, h, h);
        ir::ValueId v = b.slice(qkv, 2, 2 * h, h);
        ir::ValueId ctx = attention(b, q, k, v, sz.heads, true);
        x = b.add(b.dropout(b.linear(ctx, h, "c_proj", true, proj_init), kDropout), x);
      }
      ir::ValueId m = b.layer_norm(x, "ln_2", 1e-5);
      auto sm = b.scope("mlp");
      m = b.gelu(b.linear(m, sz.intermediate, "c_fc", true, init));
      x = b.add(b.dropout(b.linear(m, h, "c_proj", true, proj_init), kDropout), x);
    }
    x = b.layer_norm(x, "ln_f", 1e-5);
  }
  b.softmax_xent(b.linear_with(x, wte, ir::kNoValue, "lm_head"), y);
  return g;
}

}  // namespace dlmem::models::detail
