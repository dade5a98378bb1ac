// A word-level LSTM language model as PyTorch's word_language_model example defines it
// (examples/word_language_model/model.py, RNNModel with rnn_type LSTM, untied), at the
// "medium" size of Zaremba et al. 2014: vocabulary 10000 (Penn Treebank), embedding and
// hidden size 650, 2 layers, 35 steps, dropout 0.5. Parameters = nn.Embedding +
// nn.LSTM + nn.Linear = 10000*650 + 2*4*(650*650 + 650*650 + 650 + 650) + 650*10000 +
// 10000 = 19,780,400.
//
//   encoder (embedding) -> dropout -> rnn: L layers unrolled over T steps -> dropout ->
//   decoder (linear to the vocabulary) -> logits [N, T, V]
//
// Each step of layer l is nn.LSTM's cell, with PyTorch's weight layout and gate order:
//   gates = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh           [N, 4H]
//   i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of the four H-wide slices
//   c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
// The weights rnn.weight_ih_l<l>, rnn.weight_hh_l<l>, rnn.bias_ih_l<l> and
// rnn.bias_hh_l<l> are one value each, read at every step (their gradients are summed
// over the steps by autodiff). nn.LSTM's dropout is applied to every output of each
// layer but the last. Layer-major order, as nn.LSTM computes it.
//
// The initial state h_0, c_0 is the state the example carries between batches
// (init_hidden at the start of an epoch, then the detached last state): here the
// non-trainable zero-initialised values rnn.h0_l<l> and rnn.c0_l<l>, [N, H] each.
//
// Input "ids" i32 [N, T] (batch-first; the example is sequence-first), label "label"
// i32 [N, T] (the next word at every step, shifted by the trainer).
// Initialisation as the example: encoder and decoder weights U(-0.1, 0.1), decoder bias
// 0; LSTM weights and biases nn.LSTM's U(-1/sqrt(H), 1/sqrt(H)).
#include <cmath>

#include "models/common.h"

namespace dlmem::models::detail {

namespace {
constexpr int64_t kHidden = 650;
constexpr int kLayers = 2;
constexpr double kDropout = 0.5;
}  // namespace

ir::Graph build_lstm(const ModelConfig& c) {
  const int64_t t_steps = pick(c.seq_len, 35);
  const int64_t vocab = pick(c.vocab, 10000);
  const int64_t n = c.batch, h = kHidden;

  ir::Graph g;
  ir::Builder b(g, c.training, c.seed);
  ir::ValueId ids = b.input("ids", {n, t_steps}, ir::DType::i32);
  ir::ValueId y = b.label("label", {n, t_steps});
  ir::ValueId emb = b.dropout(b.embedding(ids, vocab, h, "encoder", uniform_init(0.1f)), kDropout);

  // The inputs of the current layer, one [N, in] value per step.
  std::vector<ir::ValueId> xs;
  for (int64_t t = 0; t < t_steps; ++t) xs.push_back(b.reshape(b.slice(emb, 1, t, 1), {n, h}));

  {
    auto s = b.scope("rnn");
    const ir::Init init = uniform_init(1.0f / std::sqrt(static_cast<float>(h)));
    for (int l = 0; l < kLayers; ++l) {
      const std::string sfx = "_l" + std::to_string(l);
      const int64_t in = b.shape(xs[0])[1];
      ir::ValueId w_ih = b.weight("weight_ih" + sfx, {4 * h, in}, init);
      ir::ValueId w_hh = b.weight("weight_hh" + sfx, {4 * h, h}, init);
      ir::ValueId b_ih = b.weight("bias_ih" + sfx, {4 * h}, init);
      ir::ValueId b_hh = b.weight("bias_hh" + sfx, {4 * h}, init);
      ir::ValueId hs = b.weight("h0" + sfx, {n, h}, zeros_init(), false);
      ir::ValueId cs = b.weight("c0" + sfx, {n, h}, zeros_init(), false);
      for (int64_t t = 0; t < t_steps; ++t) {
        const std::string step = "l" + std::to_string(l) + ".t" + std::to_string(t);
        // One statement per node: argument evaluation order is unspecified in C++,
        // and the node order is what the planners see.
        ir::ValueId gi = b.linear_with(xs[static_cast<size_t>(t)], w_ih, b_ih, step + ".ih");
        ir::ValueId gh = b.linear_with(hs, w_hh, b_hh, step + ".hh");
        ir::ValueId gates = b.add(gi, gh);
        ir::ValueId i = b.sigmoid(b.slice(gates, 1, 0, h));
        ir::ValueId f = b.sigmoid(b.slice(gates, 1, h, h));
        ir::ValueId gg = b.tanh(b.slice(gates, 1, 2 * h, h));
        ir::ValueId o = b.sigmoid(b.slice(gates, 1, 3 * h, h));
        ir::ValueId fc = b.mul(f, cs);
        ir::ValueId ig = b.mul(i, gg);
        cs = b.add(fc, ig);
        hs = b.mul(o, b.tanh(cs));
        // Inter-layer dropout (nn.LSTM's `dropout`) on all layers but the last.
        xs[static_cast<size_t>(t)] = l + 1 < kLayers ? b.dropout(hs, kDropout) : hs;
      }
    }
  }
  std::vector<ir::ValueId> outs;
  for (ir::ValueId x : xs) outs.push_back(b.reshape(x, {n, 1, h}));
  ir::ValueId out = b.dropout(b.concat(outs, 1), kDropout);
  ir::ValueId logits = b.linear(out, vocab, "decoder", true, uniform_init(0.1f));
  b.softmax_xent(logits, y);
  return g;
}

}  // namespace dlmem::models::detail
