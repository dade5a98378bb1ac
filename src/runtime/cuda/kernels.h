// dlmem's own CUDA kernels: everything the cuda backend runs that is not a cuDNN
// convolution or a cuBLAS GEMM. Plain launchers (host functions) over raw device
// pointers, each queued on `Launch::stream`; the backend (cuda_backend.cpp) maps
// nodes onto them. Semantics are the cpu backend's, op for op (src/runtime/cpu/
// kernels.h): shapes, dropout's counter-based generator (the same hash, so masks
// agree bit for bit across backends), max pooling's u8 index (ry * kw + rx from the
// padded window corner), PyTorch's average-pooling divisors, batch-norm statistics
// (biased variance saved, unbiased running variance), optimizers as torch.optim.
//
//   cuda::Launch l{stream, error_word, node_id};
//   cuda::eltwise_fwd(l, cuda::Eltwise::relu, n, x, y);          // y may equal x
//
// Note [Determinism]: every kernel gives the same bits run after run and whether or
// not an output is written over an input (the in-place pairs of src/ir/ops): sums
// are taken in a fixed order (fixed chunks, fixed reduction trees, no atomics on
// floats), and every kernel that may run in place reads an element before it writes
// it, or finishes its reductions before the element-wise pass. This is what makes
// lossless memory policies bit-identical to the unmanaged run on the GPU.
//
// Note [Exact scalars]: kernels whose cpu counterparts are plain float expressions
// (optimizers, running statistics, dropout, the codecs) use __fmul_rn/__fadd_rn so
// nvcc cannot contract them into fused multiply-adds: they give the cpu backend's
// bits exactly (tests compare them bit for bit).
//
// Note [Device errors]: data errors a user can cause (a label or token id out of
// range, corrupt encoded bytes) are found by kernels, which record the first one in
// `Launch::err` and skip the element; the backend reports it as dlmem::Error at the
// next synchronisation, naming the node.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "runtime/eltwise.h"

namespace dlmem::cuda {

struct DeviceError {
  int code = 0;  // ErrorCode; 0: none
  int node = -1;
  long long a = 0, b = 0, c = 0;
};
enum ErrorCode : int { kNoError = 0, kLabelOutOfRange = 1, kIdOutOfRange = 2, kCorruptEncoding = 3 };

struct Launch {
  cudaStream_t stream = nullptr;
  DeviceError* err = nullptr;  // device memory
  int node = -1;               // reported with an error
};

// Throws dlmem::InternalError when the last launch failed (a bug: bad configuration).
void check_launch(const char* kernel);

// ---------------------------------------------------------------- element-wise (elementwise.cu)
using Eltwise = runtime::Eltwise;  // runtime/eltwise.h
// y may equal x. Backward reads y (relu, relu6, tanh, sigmoid) or x (gelu); dx may
// equal dy or the saved tensor.
void eltwise_fwd(const Launch&, Eltwise, int64_t n, const float* x, float* y);
void eltwise_bwd(const Launch&, Eltwise, int64_t n, const float* dy, const float* saved, float* dx);
void scale(const Launch&, int64_t n, float alpha, const float* x, float* y);
void fill(const Launch&, int64_t n, float value, float* y);
// y = a op b with b broadcast onto a: b_strides[i] is 0 where b's dim is 1.
// a_dims and b_dims have the same rank (b padded with leading 1s); y may be a, or b
// when b is not broadcast.
struct Broadcast {
  int rank = 0;
  int64_t dims[8] = {};
  int64_t b_strides[8] = {};
};
void binary(const Launch&, bool mul, int rank, const int64_t* a_dims, const int64_t* b_dims, const float* a,
            const float* b, float* y);
void dropout_fwd(const Launch&, int64_t n, float p, uint64_t seed, uint64_t step, const float* x, float* y,
                 uint8_t* mask);
void dropout_bwd(const Launch&, int64_t n, float p, const float* dy, const uint8_t* mask, float* dx);
// x: [batch, t, t]; keys j > query i set to -inf (forward) or 0 (backward).
void causal_mask(const Launch&, int64_t batch, int64_t t, bool backward, const float* x, float* y);
// y[n, k, hw] += b[k]
void add_channel_bias(const Launch&, int64_t n, int64_t k, int64_t hw, const float* b, float* y);
void sgd_update(const Launch&, int64_t n, float lr, float momentum, float weight_decay, bool first_step, float* w,
                const float* dw, float* m);
// step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t), computed by the caller
// in double as the cpu backend does.
void adam_update(const Launch&, int64_t n, float step_size, float bc2_sqrt, float beta1, float beta2, float eps,
                 float weight_decay, float* w, const float* dw, float* m, float* v);
void embedding_fwd(const Launch&, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids, const float* table,
                   float* y);
// dtable = 0, then dtable[ids[i]] += dy[i] in order of i (the cpu backend's order).
void embedding_bwd(const Launch&, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids, const float* dy,
                   float* dtable);
// y = x permuted: y's dim i is x's dim perm[i] (rank <= 8).
void transpose(const Launch&, int rank, const int64_t* x_dims, const int* perm, const float* x, float* y);

// ---------------------------------------------------------------- softmax and loss (softmax.cu)
void softmax_fwd(const Launch&, int64_t rows, int64_t cols, const float* x, float* y);
void softmax_bwd(const Launch&, int64_t rows, int64_t cols, const float* dy, const float* y, float* dx);
// Workspace: rows doubles (each row's loss, summed in row order).
size_t softmax_xent_workspace(int64_t rows);
void softmax_xent_fwd(const Launch&, int64_t rows, int64_t cols, const float* logits, const int32_t* labels,
                      float* loss, float* probs, void* workspace);
void softmax_xent_bwd(const Launch&, int64_t rows, int64_t cols, const float* dloss, const float* probs,
                      const int32_t* labels, float* dlogits);

// ---------------------------------------------------------------- reductions, norms, pooling (reduce.cu)
// Sum x (x_dims) down to y (y_dims: same rank, each 1 or equal). Dims merged into
// alternating kept/reduced groups; the reduction is split into a fixed number of
// chunks (a function of the shape only) whose partial sums, in double, are added in
// chunk order.
struct ReducePlan {
  int kept_rank = 0, red_rank = 0;
  int64_t kept_dims[8] = {}, kept_strides[8] = {};
  int64_t red_dims[8] = {}, red_strides[8] = {};
  int64_t outputs = 1, reduced = 1;
  int64_t chunks = 1;
  bool inner_reduced = false;  // the innermost x dim is reduced: a block per (output, chunk)
};
ReducePlan plan_reduce(int rank, const int64_t* x_dims, const int64_t* y_dims);
size_t reduce_workspace(const ReducePlan&);
void reduce_sum(const Launch&, const ReducePlan&, const float* x, float* y, void* workspace);

// Batch normalisation over (N, HW) per channel, x [N, C, HW].
struct BnPlan {
  int64_t n = 1, c = 1, hw = 1;
  int64_t chunks = 1;  // per channel
};
BnPlan plan_batch_norm(int64_t n, int64_t c, int64_t hw);
size_t batch_norm_workspace(const BnPlan&);
void batch_norm_fwd_training(const Launch&, const BnPlan&, float eps, float momentum, bool update_running,
                             const float* x, const float* gamma, const float* beta, float* y, float* mean, float* var,
                             float* running_mean, float* running_var, void* workspace);
void batch_norm_fwd_inference(const Launch&, const BnPlan&, float eps, const float* x, const float* gamma,
                              const float* beta, const float* mean, const float* var, float* y);
void batch_norm_bwd(const Launch&, const BnPlan&, float eps, const float* x, const float* dy, const float* gamma,
                    const float* mean, const float* var, float* dx, float* dgamma, float* dbeta, void* workspace);

// Layer normalisation over the last dimension, x [rows, cols].
struct LnPlan {
  int64_t rows = 1, cols = 1;
  int64_t chunks = 1;  // row chunks of the gamma/beta gradient sums
};
LnPlan plan_layer_norm(int64_t rows, int64_t cols);
size_t layer_norm_bwd_workspace(const LnPlan&);
void layer_norm_fwd(const Launch&, const LnPlan&, float eps, const float* x, const float* gamma, const float* beta,
                    float* y, float* mean, float* var);
void layer_norm_bwd(const Launch&, const LnPlan&, float eps, const float* x, const float* dy, const float* gamma,
                    const float* mean, const float* var, float* dx, float* dgamma, float* dbeta, void* workspace);

struct Pool {
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t oh = 1, ow = 1;
  bool count_include_pad = true;
};
void max_pool_fwd(const Launch&, const Pool&, const float* x, float* y, uint8_t* idx);
void max_pool_bwd(const Launch&, const Pool&, const float* dy, const uint8_t* idx, float* dx);
void avg_pool_fwd(const Launch&, const Pool&, const float* x, float* y);
void avg_pool_bwd(const Launch&, const Pool&, const float* dy, float* dx);
// x [planes, hw] -> y [planes] (mean), and back.
void global_avg_pool_fwd(const Launch&, int64_t planes, int64_t hw, const float* x, float* y);
void global_avg_pool_bwd(const Launch&, int64_t planes, int64_t hw, const float* dy, float* dx);

// ---------------------------------------------------------------- codecs (codecs.cu)
// The activation codecs of src/codec that have device kernels; their bytes are the
// host codecs' bytes exactly.
enum class DeviceCodec { bitmask, sparse, zvc, fp16, bf16, fp8_e4m3 };
std::optional<DeviceCodec> device_codec(std::string_view name);
// Scratch the data-dependent codecs need (a few bytes per 64K elements).
size_t codec_scratch_bytes(DeviceCodec, uint64_t n);
// Writes the encoded size to *size (device memory; nullptr: not wanted, for the codecs
// whose size is always their bound).
void codec_encode(const Launch&, DeviceCodec, const float* x, uint64_t n, uint8_t* dst, unsigned long long* size,
                  void* scratch);
void codec_decode(const Launch&, DeviceCodec, const uint8_t* src, uint64_t size, uint64_t n, float* dst, void* scratch);

}  // namespace dlmem::cuda
