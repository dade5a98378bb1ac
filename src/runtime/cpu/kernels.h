// CPU kernels of dlmem: plain functions over raw f32 (and u8/i32) pointers in
// row-major / NCHW layout, implemented with oneDNN primitives where oneDNN has one,
// and with dlmem's own loops only where it does not (dropout, losses, embedding,
// optimizers, causal mask) or where its primitive is slow on plain layouts (batch
// norm) -- each such place says why.
//
//   cpu::Context ctx(/*threads=*/2);
//   cpu::Conv2dShape s{.n=8, .c=3, .h=32, .w=32, .k=16, .r=3, .s=3, .pad_h=1, .pad_w=1};
//   s.infer_output();
//   std::vector<std::byte> scratch(cpu::conv2d_fwd_scratch_bytes(ctx, s));
//   cpu::conv2d_fwd(ctx, s, x, w, b, y, scratch.data());
//
// Note [Scratchpad]: every oneDNN primitive is created with scratchpad_mode::user, so
// the temporaries a kernel needs are part of dlmem's memory plan (a `workspace`
// value), never a hidden allocation. Each kernel with a scratchpad has a
// `*_scratch_bytes` query that returns exactly what the primitive asks for; the caller
// passes a pointer to at least that many bytes (nullptr is allowed when it is 0).
// The kernels without a query (eltwise, binary, softmax, transpose, concat, slice) use
// primitives that ask for no scratchpad on the plain layouts dlmem passes; should one
// ever ask, the Context lends it a buffer of its own, grown on demand and kept. The
// only other temporary outside the plan is softmax_xent_fwd's rows/64 doubles of
// per-chunk loss sums. The scratch queries of batch and layer norm take no epsilon:
// the scratchpad does not depend on it (dlmem's batch norm needs none).
//
// Note [Primitive cache]: primitives are created once per distinct shape/parameter set
// and cached in the Context (keyed by a string of the parameters), as oneDNN advises.
//
// Determinism: for a fixed thread count every kernel gives bit-identical results run
// after run (no atomics, no run-to-run varying reduction order). dlmem's own loops
// (kernels/*.cpp that are loops, kernels/batch_norm.cpp) give the same bits for any thread count.
//
// User errors (a label or id out of range, impossible shapes in infer_output(), a
// dropout p outside [0, 1]) throw std::invalid_argument naming the value and the valid
// range; broken invariants (a shape inconsistent with infer_output(), a missing
// scratchpad) throw dlmem::InternalError through DLMEM_CHECK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/eltwise.h"
#include "runtime/op_args.h"

namespace dlmem::cpu {

// Owns the oneDNN engine (cpu, index 0), one stream and the primitive cache. Not
// thread-safe: one per executing thread. With threads > 0 every kernel call first
// sets the calling thread's OpenMP thread count to it (oneDNN sizes its per-thread
// temporaries when a primitive is created, so creation and execution must agree);
// threads() is the count in effect.
class Context {
 public:
  explicit Context(int threads = 0);  // 0: leave the OpenMP default
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  int threads() const;
  struct Impl;
  Impl& impl();

 private:
  std::unique_ptr<Impl> impl_;
};

// ---- convolution (NCHW activations, OIHW weights with O=k, I=c/groups) ----
using runtime::Conv2dShape;  // runtime/op_args.h
size_t conv2d_fwd_scratch_bytes(Context&, const Conv2dShape&, bool has_bias);
void conv2d_fwd(Context&, const Conv2dShape&, const float* x, const float* w,
                const float* b /*nullable*/, float* y, void* scratch);
size_t conv2d_bwd_data_scratch_bytes(Context&, const Conv2dShape&);
void conv2d_bwd_data(Context&, const Conv2dShape&, const float* dy, const float* w, float* dx,
                     void* scratch);
size_t conv2d_bwd_weight_scratch_bytes(Context&, const Conv2dShape&, bool has_bias);
void conv2d_bwd_weight(Context&, const Conv2dShape&, const float* dy, const float* x, float* dw,
                       float* db /*nullable*/, void* scratch);

// ---- pooling (NCHW) ----
using runtime::Pool2dShape;  // runtime/op_args.h
// Max pooling for training: `idx` (u8, same shape and NCHW layout as y) is oneDNN's
// workspace: the position of the maximum inside its window, ry * kw + rx counted from
// the window's padded top-left corner (kh*kw <= 256 required, else
// std::invalid_argument). Backward reads only dy and idx.
// Average pooling follows PyTorch, ceil_mode included: with count_include_pad a
// window hanging over the right padding is divided by its size clipped to the padded
// input (oneDNN divides by kh*kw; those windows are recomputed by an own loop).
size_t max_pool2d_fwd_scratch_bytes(Context&, const Pool2dShape&);
void max_pool2d_fwd(Context&, const Pool2dShape&, const float* x, float* y, uint8_t* idx,
                    void* scratch);
size_t max_pool2d_bwd_scratch_bytes(Context&, const Pool2dShape&);
void max_pool2d_bwd(Context&, const Pool2dShape&, const float* dy, const uint8_t* idx, float* dx,
                    void* scratch);
size_t avg_pool2d_fwd_scratch_bytes(Context&, const Pool2dShape&);
void avg_pool2d_fwd(Context&, const Pool2dShape&, const float* x, float* y, void* scratch);
size_t avg_pool2d_bwd_scratch_bytes(Context&, const Pool2dShape&);
void avg_pool2d_bwd(Context&, const Pool2dShape&, const float* dy, float* dx, void* scratch);

// ---- batch normalisation over (N, H, W) per channel C, NCHW ----
// Training forward: y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch's
// mean and biased variance, written to mean/var (C each). Backward needs no beta.
// dlmem's own loops (kernels/batch_norm.cpp: oneDNN's batch norm on plain NCHW is its
// slow generic path), so the same bits for any thread count; y may be x, dx may be dy
// or x. They need no scratch: the queries return 0 (scratch may be nullptr).
size_t batch_norm_fwd_scratch_bytes(Context&, int64_t n, int64_t c, int64_t hw, bool training);
void batch_norm_fwd_training(Context&, int64_t n, int64_t c, int64_t hw, float eps,
                             const float* x, const float* gamma, const float* beta, float* y,
                             float* mean, float* var, void* scratch);
void batch_norm_fwd_inference(Context&, int64_t n, int64_t c, int64_t hw, float eps,
                              const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* var, float* y, void* scratch);
size_t batch_norm_bwd_scratch_bytes(Context&, int64_t n, int64_t c, int64_t hw);
void batch_norm_bwd(Context&, int64_t n, int64_t c, int64_t hw, float eps, const float* x,
                    const float* dy, const float* gamma, const float* mean, const float* var,
                    float* dx, float* dgamma, float* dbeta, void* scratch);
// The same with oneDNN's primitive (use_scale | use_shift; its own scratchpad): the
// reference the tests compare the kernels above with. Deterministic for a fixed thread
// count only.
size_t batch_norm_fwd_onednn_scratch_bytes(Context&, int64_t n, int64_t c, int64_t hw,
                                           bool training);
void batch_norm_fwd_training_onednn(Context&, int64_t n, int64_t c, int64_t hw, float eps,
                                    const float* x, const float* gamma, const float* beta,
                                    float* y, float* mean, float* var, void* scratch);
void batch_norm_fwd_inference_onednn(Context&, int64_t n, int64_t c, int64_t hw, float eps,
                                     const float* x, const float* gamma, const float* beta,
                                     const float* mean, const float* var, float* y,
                                     void* scratch);
size_t batch_norm_bwd_onednn_scratch_bytes(Context&, int64_t n, int64_t c, int64_t hw);
void batch_norm_bwd_onednn(Context&, int64_t n, int64_t c, int64_t hw, float eps,
                           const float* x, const float* dy, const float* gamma, const float* mean,
                           const float* var, float* dx, float* dgamma, float* dbeta,
                           void* scratch);

// ---- layer normalisation over the last dimension (rows x cols) ----
// gamma, beta, dgamma, dbeta: cols each; mean, var (biased): rows each, written by the
// forward and read by the backward.
size_t layer_norm_fwd_scratch_bytes(Context&, int64_t rows, int64_t cols);
void layer_norm_fwd(Context&, int64_t rows, int64_t cols, float eps, const float* x,
                    const float* gamma, const float* beta, float* y, float* mean, float* var,
                    void* scratch);
size_t layer_norm_bwd_scratch_bytes(Context&, int64_t rows, int64_t cols);
void layer_norm_bwd(Context&, int64_t rows, int64_t cols, float eps, const float* x,
                    const float* dy, const float* gamma, const float* mean, const float* var,
                    float* dx, float* dgamma, float* dbeta, void* scratch);

// ---- element-wise ----
using runtime::Eltwise;  // runtime/eltwise.h
// Which tensor the backward reads: relu, relu6, tanh, sigmoid -> the forward output y;
// gelu -> the forward input x.
bool eltwise_bwd_uses_output(Eltwise);
void eltwise_fwd(Context&, Eltwise, int64_t n, const float* x, float* y);  // y may equal x
// `saved` is y or x as eltwise_bwd_uses_output says; dx may equal dy.
void eltwise_bwd(Context&, Eltwise, int64_t n, const float* dy, const float* saved, float* dx);
// y = alpha * x (y may equal x).
void scale(Context&, int64_t n, float alpha, const float* x, float* y);

// ---- binary with NumPy broadcasting of b onto a (a's shape is the output shape) ----
// `a_dims`/`b_dims` have the same rank (b padded with leading 1s by the caller); every
// b dim is either equal to a's or 1. y may equal a.
enum class Binary { add, mul, sub, div };
void binary(Context&, Binary, int rank, const int64_t* a_dims, const int64_t* b_dims,
            const float* a, const float* b, float* y);
// y = x broadcast to y_dims (x_dims of the same rank, each 1 or y's): the gradient of
// reduce_sum. y must not overlap x.
void expand(Context&, int rank, const int64_t* x_dims, const int64_t* y_dims, const float* x, float* y);
// Element-wise math (y may equal x): pow (y = x^alpha), sqrt, erf, exp, log, leaky_relu
// (slope alpha below 0); std:: functions of float, as PyTorch's CPU kernels.
enum class Math { pow, sqrt, erf, exp, log, leaky_relu };
void math_fwd(Context&, Math, int64_t n, float alpha, const float* x, float* y);
// dx = dy * 2/sqrt(pi) * exp(-x^2); dx = dy * (x > 0 ? 1 : alpha). dx may equal dy or x.
void erf_bwd(Context&, int64_t n, const float* dy, const float* x, float* dx);
void leaky_relu_bwd(Context&, int64_t n, float alpha, const float* dy, const float* x, float* dx);
// Sum `x` (dims x_dims) down to y (dims y_dims, same rank, each 1 or equal): the
// gradient of a broadcast. Deterministic.
size_t reduce_sum_scratch_bytes(Context&, int rank, const int64_t* x_dims, const int64_t* y_dims);
void reduce_sum(Context&, int rank, const int64_t* x_dims, const int64_t* y_dims, const float* x,
                float* y, void* scratch);

// ---- softmax over the last dimension ----
void softmax_fwd(Context&, int64_t rows, int64_t cols, const float* x, float* y);
void softmax_bwd(Context&, int64_t rows, int64_t cols, const float* dy, const float* y, float* dx);
// log-softmax over the last dimension (oneDNN's logsoftmax); backward reads y.
void log_softmax_fwd(Context&, int64_t rows, int64_t cols, const float* x, float* y);
void log_softmax_bwd(Context&, int64_t rows, int64_t cols, const float* dy, const float* y, float* dx);
// x is [batch, T, T] (batch = the product of the leading dims): entries above the
// diagonal (key j > query i) set to -inf (y may equal x). Backward zeroes the same
// entries of dy (dx may equal dy).
void causal_mask_fwd(Context&, int64_t batch, int64_t t, const float* x, float* y);
void causal_mask_bwd(Context&, int64_t batch, int64_t t, const float* dy, float* dx);

// ---- matrix products ----
// C[b] = op(A[b]) * op(B[b]) (+ bias[n] when given), for b in [0, batch); op = transpose
// when the flag is set. A is (M x K) or (K x M) when trans_a, B is (K x N) or (N x K)
// when trans_b, C is M x N; all contiguous row-major per batch. The overloads with
// `accumulate` set compute C += result instead (gradient accumulation, as a oneDNN
// sum post-op); their scratchpad can differ, so they have their own query.
size_t matmul_scratch_bytes(Context&, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                            bool trans_b, bool has_bias);
void matmul(Context&, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
            const float* a, const float* b, const float* bias /*nullable*/, float* c,
            void* scratch);
size_t matmul_scratch_bytes(Context&, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                            bool trans_b, bool has_bias, bool accumulate);
void matmul(Context&, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
            const float* a, const float* b, const float* bias /*nullable*/, float* c,
            void* scratch, bool accumulate);
// db[n] = sum over rows of dy[m, n] (bias gradient).
void bias_grad(Context&, int64_t m, int64_t n, const float* dy, float* db);

// ---- data movement ----
// y = x permuted: y's dim i is x's dim perm[i]. rank <= 6.
void transpose(Context&, int rank, const int64_t* x_dims, const int* perm, const float* x, float* y);
// Concatenate `count` inputs along `axis` (all other dims equal).
void concat(Context&, int rank, const int64_t* const* in_dims, int count, int axis,
            const float* const* in, float* y);
// y = x[..., start:start+len, ...] along `axis`.
void slice(Context&, int rank, const int64_t* x_dims, int axis, int64_t start, int64_t len,
           const float* x, float* y);
// Gradient of slice: dx = 0 everywhere, then dx[..., start:start+len, ...] += dy.
void slice_bwd(Context&, int rank, const int64_t* x_dims, int axis, int64_t start, int64_t len,
               const float* dy, float* dx);
void copy(Context&, size_t bytes, const void* src, void* dst);  // no overlap unless equal
void fill(Context&, int64_t n, float value, float* y);
// y += x
void accumulate(Context&, int64_t n, const float* x, float* y);

// ---- dlmem's own kernels (no oneDNN primitive exists for these) ----
// Dropout with a counter-based generator: element i is kept iff
// uniform(seed, step, i) >= p, so the same (seed, step) always gives the same mask --
// recomputation replays it bit-identically (splitmix64 of the element index in a
// stream keyed by seed and step; 24-bit uniforms). mask is u8 (1 kept, 0 dropped);
// y = x * mask * (1 / (1 - p)), and 0 for p = 1. Backward: dx = dy * mask / (1 - p).
// p outside [0, 1] throws std::invalid_argument.
void dropout_fwd(Context&, int64_t n, float p, uint64_t seed, uint64_t step, const float* x,
                 float* y, uint8_t* mask, int64_t offset = 0);  // offset: index of x[0] in the mask stream
void dropout_bwd(Context&, int64_t n, float p, const float* dy, const uint8_t* mask, float* dx);
// Mean softmax cross-entropy over rows: loss[0] = -mean_i log softmax(logits_i)[label_i];
// probs = softmax(logits). Labels are i32 in [0, cols); an out-of-range label is a
// user error (throws std::invalid_argument naming it).
void softmax_xent_fwd(Context&, int64_t rows, int64_t cols, const float* logits,
                      const int32_t* labels, float* loss, float* probs);
// dlogits = dloss[0] * (probs - onehot(labels)) / rows
void softmax_xent_bwd(Context&, int64_t rows, int64_t cols, const float* dloss,
                      const float* probs, const int32_t* labels, float* dlogits);
// y[i, :] = table[ids[i], :]; ids out of range throws std::invalid_argument.
void embedding_fwd(Context&, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids,
                   const float* table, float* y);
// dtable = 0, then dtable[ids[i], :] += dy[i, :] in order of i (deterministic).
void embedding_bwd(Context&, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids,
                   const float* dy, float* dtable);
// SGD with momentum as PyTorch's torch.optim.SGD (dampening 0, not Nesterov):
//   g = dw + weight_decay * w;  m = momentum * m + g  (m = g on the first step);  w -= lr * m
// With momentum 0, w -= lr * g and m is not touched (it may be nullptr).
void sgd_update(Context&, int64_t n, float lr, float momentum, float weight_decay,
                bool first_step, float* w, const float* dw, float* m);
// Adam as torch.optim.Adam (L2 weight decay added to the gradient, bias-corrected,
// no amsgrad), `step` counted from 1:
//   g = dw + weight_decay * w;  m = beta1 * m + (1 - beta1) * g;
//   v = beta2 * v + (1 - beta2) * g^2;
//   w -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
void adam_update(Context&, int64_t n, float lr, float beta1, float beta2, float eps,
                 float weight_decay, int64_t step, float* w, const float* dw, float* m, float* v);
// PyTorch's running statistics update for batch norm: running = (1-momentum)*running
// + momentum*batch, where the variance is made unbiased with count/(count-1); `count`
// is n*h*w per channel and must be at least 2 (std::invalid_argument otherwise, as
// PyTorch refuses training batch norm on one value per channel). !unbiased: the batch
// variance as it is (ONNX's BatchNormalization).
void batch_norm_update_running(Context&, int64_t c, int64_t count, float momentum,
                               const float* mean, const float* var, float* running_mean,
                               float* running_var, bool unbiased = true);

}  // namespace dlmem::cpu
