// The cuda backend (runtime/backend.h): device memory from cudaMalloc (the executor
// makes it one arena of exactly the budget), pinned host memory (cudaHostAlloc) for
// swapped bytes, a compute stream and two copy streams with events, cuDNN for
// convolutions, cuBLAS for GEMMs, and dlmem's own kernels for the rest
// (runtime/cuda/kernels.h).
//
// Note [Convolution algorithms]: for each convolution the backend asks cuDNN's
// heuristics (cudnnGet*Algorithm_v7: deterministic, no timing runs) for its
// algorithms in expected-speed order and takes the first that is deterministic (the
// backward ones: CUDNN_DETERMINISTIC), honours the math mode (exact fp32 unless
// CudaOptions::allow_tf32) and needs no more workspace than the limit. At planning
// time (workspace_bytes) the limit is CudaOptions::conv_workspace_limit and the
// algorithm's exact workspace becomes the node's workspace value, so it is part of
// the plan and of the budget; at run time the limit is the workspace the node has,
// which selects the same algorithm. Timing-based selection (cudnnFind*) could pick
// different algorithms in two runs and break bit-identical results.
//
// Note [cuBLAS workspace]: cuBLAS's scratch is part of the plan too: every GEMM node
// gets a workspace value (CudaOptions::gemm_workspace_limit at most, less for small
// GEMMs) and the backend hands it to cublasSetWorkspace before the call, so cuBLAS
// allocates nothing and its choice of kernel depends on sizes only (bit-identical
// results run to run; one stream per handle).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <unordered_map>
#include <vector>

#include "runtime/backend.h"
#include "runtime/op_args.h"
#include "runtime/cuda/kernels.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::runtime {

namespace {

using ir::OpKind;
using ir::Shape;

// ---------------------------------------------------------------- error checks

[[noreturn]] void cuda_fail(cudaError_t e, const char* what) {
  const std::string msg = std::string("CUDA: ") + what + " failed: " + cudaGetErrorName(e) + " (" +
                          cudaGetErrorString(e) + ")";
  if (e == cudaErrorMemoryAllocation) throw OutOfMemory(msg);
  // A fault inside a kernel is a bug in dlmem, not the user's input.
  if (e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorMisalignedAddress ||
      e == cudaErrorInvalidValue || e == cudaErrorInvalidConfiguration)
    throw InternalError(msg);
  throw Error(msg);
}
#define DLMEM_CUDA(call)                          \
  do {                                            \
    const cudaError_t e_ = (call);                \
    if (e_ != cudaSuccess) cuda_fail(e_, #call);  \
  } while (0)
#define DLMEM_CUDNN(call)                                                                              \
  do {                                                                                                 \
    const cudnnStatus_t s_ = (call);                                                                   \
    DLMEM_CHECK(s_ == CUDNN_STATUS_SUCCESS, #call, " failed: ", cudnnGetErrorString(s_));              \
  } while (0)
#define DLMEM_CUBLAS(call)                                                                             \
  do {                                                                                                 \
    const cublasStatus_t s_ = (call);                                                                  \
    DLMEM_CHECK(s_ == CUBLAS_STATUS_SUCCESS, #call, " failed: ", cublasGetStatusString(s_));           \
  } while (0)

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t align_down(uint64_t v, uint64_t a) { return v / a * a; }

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw Error(what, " of ", v, " does not fit cuDNN's and cuBLAS's 32-bit sizes; use a smaller batch");
  return static_cast<int>(v);
}

cuda::Pool pool_of(const Pool2dShape& s) {
  cuda::Pool p;
  p.n = s.n;
  p.c = s.c;
  p.h = s.h;
  p.w = s.w;
  p.kh = s.kh;
  p.kw = s.kw;
  p.sh = s.stride_h;
  p.sw = s.stride_w;
  p.ph = s.pad_h;
  p.pw = s.pad_w;
  p.oh = s.oh;
  p.ow = s.ow;
  p.count_include_pad = s.count_include_pad;
  return p;
}

// ---------------------------------------------------------------- cuDNN convolutions

enum class ConvKind { fwd, bwd_data, bwd_filter };

struct ConvAlgo {
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t workspace = 0;
};

// Descriptors of one convolution shape (x [n,c,h,w], w [k,c/g,r,s], y [n,k,oh,ow]).
struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int64_t n = 0, k = 0, oh = 0, ow = 0;
  std::map<std::pair<int, uint64_t>, ConvAlgo> chosen;  // (kind, limit) -> algorithm
  ConvPlan() = default;
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
  ~ConvPlan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

// ---------------------------------------------------------------- the backend

constexpr uint64_t kGemmAlign = 256;  // cuBLAS and cuDNN want 256-byte aligned scratch

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& o);
  ~CudaBackend() override;

  std::string name() const override { return "cuda"; }

  void* allocate(Space s, uint64_t bytes) override;
  void deallocate(Space s, void* p) override;
  void upload(void* dst, const void* src, uint64_t bytes) override;
  void download(void* dst, const void* src, uint64_t bytes) override;
  void fill_bytes(Space s, void* p, uint8_t value, uint64_t bytes) override;

  Event copy_async(Stream s, void* dst, const void* src, uint64_t bytes) override;
  void wait_event(Stream waiter, Event e) override;
  bool query(Event e) override;
  void synchronize() override;

  uint64_t workspace_bytes(const ir::Graph& g, const ir::Node& n) override;
  void run(const ir::Graph& g, const ir::Node& n, const KernelArgs& a) override;

  uint64_t encode(const codec::Codec& c, const float* src, uint64_t n, void* dst) override;
  void decode(const codec::Codec& c, const void* src, uint64_t size, uint64_t n, float* dst) override;

 private:
  struct StreamState {
    cudaStream_t stream = nullptr;
    uint64_t seq = 0;     // events handed out
    uint64_t synced = 0;  // every event up to this one is complete
    std::deque<std::pair<uint64_t, cudaEvent_t>> pending;
    cudaEvent_t compute_tail = nullptr;  // copy streams: "everything computed so far"
  };
  StreamState& state(Stream s) { return streams_[static_cast<size_t>(s)]; }
  cudaStream_t stream(Stream s) { return state(s).stream; }
  cudaEvent_t new_event();
  void retire(StreamState& st, uint64_t upto);
  cudaEvent_t find_event(const StreamState& st, uint64_t seq) const;
  void check_device_errors();
  void run_node(const ir::Graph& g, const ir::Node& n, const KernelArgs& a);
  bool is_host_pointer(const void* p) const;
  void* codec_scratch(size_t bytes);
  void* host_staging(size_t bytes);

  ConvPlan& conv_plan(const Conv2dShape& s);
  ConvAlgo choose(ConvPlan& p, ConvKind kind, uint64_t limit, const std::string& node);
  uint64_t conv_workspace(const ir::Graph& g, const ir::Node& n, ConvKind kind);
  void set_math(ConvPlan& p, const ConvAlgo& a);

  uint64_t gemm_workspace(int64_t batch, int64_t m, int64_t n) const;
  void gemm(const cuda::Launch& l, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb, const float* A,
            const float* B, float* C, void* ws, uint64_t ws_bytes);

  CudaOptions opt_;
  cudaDeviceProp prop_{};
  StreamState streams_[3];
  std::vector<cudaEvent_t> free_events_;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  // Control block in device memory: the error word and an encoded size.
  void* control_ = nullptr;
  cuda::DeviceError* err_ = nullptr;
  unsigned long long* d_size_ = nullptr;
  void* host_control_ = nullptr;  // pinned: read-backs of the control block
  void* scratch_ = nullptr;       // codecs' per-super-block counts, grown on demand
  size_t scratch_bytes_ = 0;
  void* staging_ = nullptr;       // pinned host: host codecs of device buffers
  size_t staging_bytes_ = 0;
  std::unordered_map<std::string, std::unique_ptr<ConvPlan>> convs_;
  std::unordered_map<int, std::string> names_;  // nodes whose kernels may report errors
  bool failed_ = false;                         // a device fault was reported
};

CudaBackend::CudaBackend(const CudaOptions& o) : opt_(o) {
  DLMEM_CUDA(cudaSetDevice(o.device));
  DLMEM_CUDA(cudaGetDeviceProperties(&prop_, o.device));
  for (Stream s : {Stream::compute, Stream::d2h, Stream::h2d}) {
    DLMEM_CUDA(cudaStreamCreateWithFlags(&state(s).stream, cudaStreamNonBlocking));
    if (s != Stream::compute) DLMEM_CUDA(cudaEventCreateWithFlags(&state(s).compute_tail, cudaEventDisableTiming));
  }
  DLMEM_CUDNN(cudnnCreate(&cudnn_));
  DLMEM_CUDNN(cudnnSetStream(cudnn_, stream(Stream::compute)));
  DLMEM_CUBLAS(cublasCreate(&cublas_));
  DLMEM_CUBLAS(cublasSetStream(cublas_, stream(Stream::compute)));
  DLMEM_CUBLAS(cublasSetMathMode(cublas_, o.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  DLMEM_CUBLAS(cublasSetWorkspace(cublas_, nullptr, 0));
  DLMEM_CUDA(cudaMalloc(&control_, 256));
  DLMEM_CUDA(cudaMemset(control_, 0, 256));
  err_ = static_cast<cuda::DeviceError*>(control_);
  d_size_ = reinterpret_cast<unsigned long long*>(static_cast<char*>(control_) + 128);
  DLMEM_CUDA(cudaHostAlloc(&host_control_, 256, cudaHostAllocDefault));
}

CudaBackend::~CudaBackend() {
  // No throwing from here: errors of the last step were reported by synchronize().
  cudaSetDevice(opt_.device);
  for (StreamState& st : streams_)
    if (st.stream) cudaStreamSynchronize(st.stream);
  for (StreamState& st : streams_) {
    for (auto& [seq, ev] : st.pending) cudaEventDestroy(ev);
    if (st.compute_tail) cudaEventDestroy(st.compute_tail);
  }
  for (cudaEvent_t ev : free_events_) cudaEventDestroy(ev);
  convs_.clear();
  if (cublas_) cublasDestroy(cublas_);
  if (cudnn_) cudnnDestroy(cudnn_);
  if (scratch_) cudaFree(scratch_);
  if (staging_) cudaFreeHost(staging_);
  if (control_) cudaFree(control_);
  if (host_control_) cudaFreeHost(host_control_);
  for (StreamState& st : streams_)
    if (st.stream) cudaStreamDestroy(st.stream);
}

// ---------------------------------------------------------------- memory

void* CudaBackend::allocate(Space s, uint64_t bytes) {
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  void* p = nullptr;
  const cudaError_t e = s == Space::device ? cudaMalloc(&p, std::max<uint64_t>(bytes, 1))
                                           : cudaHostAlloc(&p, std::max<uint64_t>(bytes, 1), cudaHostAllocDefault);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the sticky-free error state
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    if (s == Space::device)
      throw OutOfMemory("out of memory: cannot allocate ", human_bytes(bytes), " on ", prop_.name, " (", human_bytes(free),
                        " of ", human_bytes(total), " free); the largest budget that fits is --budget ",
                        human_bytes(free), " (less whatever else this process allocates), with a policy that saves memory");
    throw OutOfMemory("out of memory: cannot pin ", human_bytes(bytes),
                      " of host memory for swapped buffers; swap less (a larger --budget, or --host-budget below what "
                      "can be pinned) or free host memory");
  }
  if (e != cudaSuccess) cuda_fail(e, s == Space::device ? "cudaMalloc" : "cudaHostAlloc");
  return p;
}

void CudaBackend::deallocate(Space s, void* p) {
  if (!p) return;
  cudaSetDevice(opt_.device);
  if (s == Space::device) DLMEM_CUDA(cudaFree(p));
  else DLMEM_CUDA(cudaFreeHost(p));
}

void CudaBackend::upload(void* dst, const void* src, uint64_t bytes) {
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  DLMEM_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream(Stream::compute)));
  DLMEM_CUDA(cudaStreamSynchronize(stream(Stream::compute)));
}

void CudaBackend::download(void* dst, const void* src, uint64_t bytes) {
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  DLMEM_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream(Stream::compute)));
  DLMEM_CUDA(cudaStreamSynchronize(stream(Stream::compute)));
  check_device_errors();
}

void CudaBackend::fill_bytes(Space s, void* p, uint8_t value, uint64_t bytes) {
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  if (s == Space::device) {
    DLMEM_CUDA(cudaMemsetAsync(p, value, bytes, stream(Stream::compute)));
    return;
  }
  // Host memory may still be read by a copy that the compute stream waits for.
  DLMEM_CUDA(cudaStreamSynchronize(stream(Stream::compute)));
  std::memset(p, value, bytes);
}

// ---------------------------------------------------------------- streams and events

cudaEvent_t CudaBackend::new_event() {
  if (!free_events_.empty()) {
    cudaEvent_t e = free_events_.back();
    free_events_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  DLMEM_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

void CudaBackend::retire(StreamState& st, uint64_t upto) {
  while (!st.pending.empty() && st.pending.front().first <= upto) {
    free_events_.push_back(st.pending.front().second);
    st.pending.pop_front();
  }
  st.synced = std::max(st.synced, upto);
}

cudaEvent_t CudaBackend::find_event(const StreamState& st, uint64_t seq) const {
  auto it = std::lower_bound(st.pending.begin(), st.pending.end(), seq,
                             [](const auto& p, uint64_t s) { return p.first < s; });
  DLMEM_CHECK(it != st.pending.end() && it->first == seq, "unknown event ", seq);
  return it->second;
}

Event CudaBackend::copy_async(Stream s, void* dst, const void* src, uint64_t bytes) {
  DLMEM_CHECK(s != Stream::compute, "copy_async on the compute stream");
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  StreamState& st = state(s);
  // Note [Stream order] (backend.h): the copy starts after the compute work queued so far.
  DLMEM_CUDA(cudaEventRecord(st.compute_tail, stream(Stream::compute)));
  DLMEM_CUDA(cudaStreamWaitEvent(st.stream, st.compute_tail, 0));
  DLMEM_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, st.stream));
  cudaEvent_t ev = new_event();
  DLMEM_CUDA(cudaEventRecord(ev, st.stream));
  st.pending.emplace_back(++st.seq, ev);
  // Recycle the events of copies that have finished.
  while (st.pending.size() > 1 && cudaEventQuery(st.pending.front().second) == cudaSuccess)
    retire(st, st.pending.front().first);
  return Event{s, st.seq};
}

void CudaBackend::wait_event(Stream waiter, Event e) {
  if (e.seq == 0 || e.stream == waiter) return;  // complete, or ordered by its own stream
  StreamState& st = state(e.stream);
  if (e.seq <= st.synced) return;
  DLMEM_CUDA(cudaStreamWaitEvent(stream(waiter), find_event(st, e.seq), 0));
}

bool CudaBackend::query(Event e) {
  if (e.seq == 0) return true;
  StreamState& st = state(e.stream);
  if (e.seq <= st.synced) return true;
  const cudaError_t r = cudaEventQuery(find_event(st, e.seq));
  if (r == cudaErrorNotReady) return false;
  if (r != cudaSuccess) cuda_fail(r, "cudaEventQuery");
  retire(st, e.seq);  // a stream's events complete in order
  return true;
}

void CudaBackend::synchronize() {
  // The executor's destructor synchronises too: a fault already reported (a sticky
  // CUDA error) or one found while unwinding must not throw again from there.
  const bool quiet = failed_ || std::uncaught_exceptions() > 0;
  try {
    DLMEM_CUDA(cudaSetDevice(opt_.device));
    for (StreamState& st : streams_) DLMEM_CUDA(cudaStreamSynchronize(st.stream));
    for (StreamState& st : streams_) retire(st, st.seq);
    check_device_errors();
  } catch (const Error&) {
    if (!quiet) throw;  // a data error: reported once, cleared
  } catch (const InternalError&) {
    failed_ = true;
    if (!quiet) throw;
  }
}

void CudaBackend::check_device_errors() {
  auto* host = static_cast<cuda::DeviceError*>(host_control_);
  DLMEM_CUDA(cudaMemcpy(host, err_, sizeof(cuda::DeviceError), cudaMemcpyDeviceToHost));
  if (host->code == cuda::kNoError) return;
  const cuda::DeviceError e = *host;
  DLMEM_CUDA(cudaMemset(err_, 0, sizeof(cuda::DeviceError)));
  const auto it = names_.find(e.node);
  const std::string node = it != names_.end() ? "node '" + it->second + "': " : std::string();
  switch (e.code) {
    case cuda::kLabelOutOfRange:
      throw Error(node, "label ", e.a, " of row ", e.b, " is out of range [0, ", e.c, ")");
    case cuda::kIdOutOfRange:
      throw Error(node, "id ", e.a, " at position ", e.b, " is out of range [0, ", e.c, ")");
    case cuda::kCorruptEncoding:
      throw Error(node, "encoded data is truncated or corrupt (check ", e.c, ": ", e.a, " vs ", e.b, ")");
    default: DLMEM_CHECK(false, "unknown device error code ", e.code);
  }
}

// ---------------------------------------------------------------- convolutions

ConvPlan& CudaBackend::conv_plan(const Conv2dShape& s) {
  const Shape x{s.n, s.c, s.h, s.w}, w{s.k, s.c / s.groups, s.r, s.s}, y{s.n, s.k, s.oh, s.ow};
  std::string key;
  for (const Shape* d : {&x, &w, &y})
    for (int64_t v : *d) key += std::to_string(v) + ",";
  for (int64_t v : {s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w, s.groups}) key += std::to_string(v) + ";";
  auto& slot = convs_[key];
  if (slot) return *slot;
  auto p = std::make_unique<ConvPlan>();
  DLMEM_CUDNN(cudnnCreateTensorDescriptor(&p->x));
  DLMEM_CUDNN(cudnnCreateTensorDescriptor(&p->y));
  DLMEM_CUDNN(cudnnCreateFilterDescriptor(&p->w));
  DLMEM_CUDNN(cudnnCreateConvolutionDescriptor(&p->conv));
  to_int(numel(x), "a convolution input");
  to_int(numel(y), "a convolution output");
  DLMEM_CUDNN(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(x[0], "batch"),
                                         to_int(x[1], "channels"), to_int(x[2], "height"), to_int(x[3], "width")));
  DLMEM_CUDNN(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int(y[0], "batch"),
                                         to_int(y[1], "channels"), to_int(y[2], "height"), to_int(y[3], "width")));
  DLMEM_CUDNN(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, to_int(w[0], "filters"),
                                         to_int(w[1], "channels"), to_int(w[2], "kernel"), to_int(w[3], "kernel")));
  DLMEM_CUDNN(cudnnSetConvolution2dDescriptor(p->conv, to_int(s.pad_h, "padding"), to_int(s.pad_w, "padding"),
                                              to_int(s.stride_h, "stride"), to_int(s.stride_w, "stride"),
                                              to_int(s.dil_h, "dilation"), to_int(s.dil_w, "dilation"),
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  DLMEM_CUDNN(cudnnSetConvolutionGroupCount(p->conv, to_int(s.groups, "groups")));
  int on = 0, oc = 0, oh = 0, ow = 0;
  DLMEM_CUDNN(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow));
  DLMEM_CHECK(on == y[0] && oc == y[1] && oh == y[2] && ow == y[3], "cuDNN's convolution output ", on, "x", oc, "x",
              oh, "x", ow, " differs from the graph's ", ir::shape_str(y));
  p->n = y[0];
  p->k = y[1];
  p->oh = y[2];
  p->ow = y[3];
  slot = std::move(p);
  return *slot;
}

void CudaBackend::set_math(ConvPlan& p, const ConvAlgo& a) { DLMEM_CUDNN(cudnnSetConvolutionMathType(p.conv, a.math)); }

ConvAlgo CudaBackend::choose(ConvPlan& p, ConvKind kind, uint64_t limit, const std::string& node) {
  const auto key = std::make_pair(static_cast<int>(kind), limit);
  if (auto it = p.chosen.find(key); it != p.chosen.end()) return it->second;
  // Exact fp32: FMA kernels only; with TF32 allowed, cuDNN's default (tensor cores).
  const cudnnMathType_t base_math = opt_.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  DLMEM_CUDNN(cudnnSetConvolutionMathType(p.conv, base_math));
  struct Candidate {
    int algo;
    cudnnStatus_t status;
    cudnnDeterminism_t det;
    cudnnMathType_t math;
  };
  std::vector<Candidate> cands;
  int found = 0;
  if (kind == ConvKind::fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    DLMEM_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(cudnn_, p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                       &found, perf));
    for (int i = 0; i < found; ++i)
      cands.push_back({static_cast<int>(perf[i].algo), perf[i].status, CUDNN_DETERMINISTIC, perf[i].mathType});
  } else if (kind == ConvKind::bwd_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    DLMEM_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn_, p.w, p.y, p.conv, p.x,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &found, perf));
    for (int i = 0; i < found; ++i)
      cands.push_back({static_cast<int>(perf[i].algo), perf[i].status, perf[i].determinism, perf[i].mathType});
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    DLMEM_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn_, p.x, p.y, p.conv, p.w,
                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &found, perf));
    for (int i = 0; i < found; ++i)
      cands.push_back({static_cast<int>(perf[i].algo), perf[i].status, perf[i].determinism, perf[i].mathType});
  }
  for (const Candidate& c : cands) {
    if (c.status != CUDNN_STATUS_SUCCESS || c.det != CUDNN_DETERMINISTIC) continue;
    const bool tensor_ops = c.math == CUDNN_TENSOR_OP_MATH || c.math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (tensor_ops && !opt_.allow_tf32) continue;
    ConvAlgo a{c.algo, opt_.allow_tf32 ? c.math : CUDNN_FMA_MATH, 0};
    if (a.math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;  // would round fp32 inputs to fp16
    set_math(p, a);
    size_t ws = 0;
    cudnnStatus_t s;
    if (kind == ConvKind::fwd)
      s = cudnnGetConvolutionForwardWorkspaceSize(cudnn_, p.x, p.w, p.conv, p.y,
                                                  static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), &ws);
    else if (kind == ConvKind::bwd_data)
      s = cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn_, p.w, p.y, p.conv, p.x,
                                                       static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), &ws);
    else
      s = cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn_, p.x, p.y, p.conv, p.w,
                                                         static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), &ws);
    if (s != CUDNN_STATUS_SUCCESS || ws > limit) continue;
    a.workspace = ws;
    p.chosen[key] = a;
    return a;
  }
  static const char* kinds[] = {"forward", "backward-data", "backward-filter"};
  throw Error("node '", node, "': no deterministic cuDNN ", kinds[static_cast<int>(kind)],
              " convolution algorithm needs at most ", human_bytes(limit),
              " of workspace; raise the convolution workspace limit (CudaOptions::conv_workspace_limit, now ",
              human_bytes(opt_.conv_workspace_limit), ")");
}

// Bias-gradient partial sums of a conv2d_bwd_weight / linear_bwd_weight node.
cuda::ReducePlan bias_plan(const ir::Graph& g, const ir::Node& n) {
  const Shape& dy = g.value(n.inputs[0]).type.shape;
  if (n.op == OpKind::conv2d_bwd_weight) {
    const int64_t x[3] = {dy[0], dy[1], dy[2] * dy[3]}, y[3] = {1, dy[1], 1};
    return cuda::plan_reduce(3, x, y);
  }
  const int64_t x[2] = {numel(dy) / dy.back(), dy.back()}, y[2] = {1, dy.back()};
  return cuda::plan_reduce(2, x, y);
}

uint64_t CudaBackend::conv_workspace(const ir::Graph& g, const ir::Node& n, ConvKind kind) {
  ConvPlan& p = conv_plan(conv_shape(g, n));
  const uint64_t conv = choose(p, kind, opt_.conv_workspace_limit, n.name).workspace;
  if (kind != ConvKind::bwd_filter || !n.attrs.has_bias) return conv;
  // [bias partial sums][pad to 256][cuDNN workspace]
  return cuda::reduce_workspace(bias_plan(g, n)) + kGemmAlign + align_up(conv, kGemmAlign);
}

// ---------------------------------------------------------------- GEMMs

uint64_t CudaBackend::gemm_workspace(int64_t batch, int64_t m, int64_t n) const {
  const uint64_t want = std::max<uint64_t>(uint64_t{1} << 20, 16 * static_cast<uint64_t>(batch * m * n));
  return align_down(std::min(want, opt_.gemm_workspace_limit), kGemmAlign);
}

// Row-major C[b] = op(A[b]) * op(B[b]) as cuBLAS's column-major C^T = op(B)^T * op(A)^T.
void CudaBackend::gemm(const cuda::Launch& l, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
                       const float* A, const float* B, float* C, void* ws, uint64_t ws_bytes) {
  DLMEM_CUBLAS(cublasSetWorkspace(cublas_, ws_bytes ? ws : nullptr, ws_bytes));
  const float one = 1.f, zero = 0.f;
  const int M = to_int(m, "a GEMM dimension"), N = to_int(n, "a GEMM dimension"), K = to_int(k, "a GEMM dimension");
  DLMEM_CUBLAS(cublasGemmStridedBatchedEx(
      cublas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &one, B, CUDA_R_32F, tb ? K : N,
      static_cast<long long>(k * n), A, CUDA_R_32F, ta ? M : K, static_cast<long long>(m * k), &zero, C, CUDA_R_32F, N,
      static_cast<long long>(m * n), to_int(batch, "a GEMM batch"),
      opt_.allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  (void)l;
}

// ---------------------------------------------------------------- workspaces

uint64_t CudaBackend::workspace_bytes(const ir::Graph& g, const ir::Node& n) {
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  auto shape = [&](ir::ValueId v) -> const Shape& { return g.value(v).type.shape; };
  const ir::Attrs& at = n.attrs;
  switch (n.op) {
    case OpKind::conv2d: return conv_workspace(g, n, ConvKind::fwd);
    case OpKind::conv2d_bwd_data: return conv_workspace(g, n, ConvKind::bwd_data);
    case OpKind::conv2d_bwd_weight: return conv_workspace(g, n, ConvKind::bwd_filter);
    case OpKind::linear:
    case OpKind::linear_bwd_data:
    case OpKind::linear_bwd_weight:
    case OpKind::matmul: {
      // [bias partial sums (linear_bwd_weight)][pad to 256][cuBLAS workspace]
      const MatmulDims d = matmul_dims(g, n);
      const uint64_t bias =
          n.op == OpKind::linear_bwd_weight && d.bias ? cuda::reduce_workspace(bias_plan(g, n)) : 0;
      return bias + kGemmAlign + gemm_workspace(d.batch, d.m, d.n);
    }
    case OpKind::batch_norm:
    case OpKind::batch_norm_bwd: {
      if (n.op == OpKind::batch_norm && !at.training) return 0;
      const BatchNormDims d = batch_norm_dims(g, n);
      return cuda::batch_norm_workspace(cuda::plan_batch_norm(d.n, d.c, d.hw));
    }
    case OpKind::layer_norm_bwd: {
      const RowDims d = row_dims(g, n);
      return cuda::layer_norm_bwd_workspace(cuda::plan_layer_norm(d.rows, d.cols));
    }
    case OpKind::reduce_sum: {
      const Shape& x = shape(n.inputs[0]);
      const auto y = broadcast_dims(at.shape, x.size());
      return cuda::reduce_workspace(cuda::plan_reduce(static_cast<int>(x.size()), x.data(), y.data()));
    }
    case OpKind::softmax_xent: return cuda::softmax_xent_workspace(row_dims(g, n).rows);
    default: return 0;
  }
}

// ---------------------------------------------------------------- kernels

void CudaBackend::run(const ir::Graph& g, const ir::Node& n, const KernelArgs& a) {
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  try {
    run_node(g, n, a);
  } catch (const OutOfMemory&) {
    throw;
  } catch (const Error& e) {
    throw Error("node '", n.name, "': ", e.what());
  }
}

void CudaBackend::run_node(const ir::Graph& g, const ir::Node& n, const KernelArgs& a) {
  auto shape = [&](ir::ValueId v) -> const Shape& { return g.value(v).type.shape; };
  auto in = [&](size_t i) { return static_cast<const float*>(a.inputs[i]); };
  auto out = [&](size_t i) { return static_cast<float*>(a.outputs[i]); };
  auto in_i32 = [&](size_t i) { return static_cast<const int32_t*>(a.inputs[i]); };
  const ir::Attrs& at = n.attrs;
  const Shape& x0 = shape(n.inputs.empty() ? n.outputs[0] : n.inputs[0]);
  const cuda::Launch l{stream(Stream::compute), err_, n.id};
  cudaStream_t cs = l.stream;
  char* ws = static_cast<char*>(a.workspace);
  const uint64_t ws_total = a.workspace && n.workspace != ir::kNoValue ? g.value(n.workspace).type.bytes() : 0;
  const float alpha = 1.f, beta = 0.f;

  // The GEMM region of a GEMM node's workspace: after `skip` bytes, 256-aligned.
  auto gemm_region = [&](uint64_t skip, uint64_t want, void*& p) -> uint64_t {
    if (!ws || ws_total <= skip) return p = nullptr, 0;
    const uintptr_t base = reinterpret_cast<uintptr_t>(ws);
    const uintptr_t start = align_up(base + skip, kGemmAlign), end = base + ws_total;
    if (start >= end) return p = nullptr, 0;
    p = reinterpret_cast<void*>(start);
    return std::min<uint64_t>(want, align_down(end - start, kGemmAlign));
  };

  switch (n.op) {
    case OpKind::conv2d: {
      ConvPlan& p = conv_plan(conv_shape(g, n));
      const ConvAlgo c = choose(p, ConvKind::fwd, std::min(ws_total, opt_.conv_workspace_limit), n.name);
      set_math(p, c);
      DLMEM_CUDNN(cudnnConvolutionForward(cudnn_, &alpha, p.x, in(0), p.w, in(1), p.conv,
                                          static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws, c.workspace, &beta, p.y,
                                          out(0)));
      if (at.has_bias) cuda::add_channel_bias(l, p.n, p.k, p.oh * p.ow, in(2), out(0));
      break;
    }
    case OpKind::conv2d_bwd_data: {
      ConvPlan& p = conv_plan(conv_shape(g, n));
      const ConvAlgo c = choose(p, ConvKind::bwd_data, std::min(ws_total, opt_.conv_workspace_limit), n.name);
      set_math(p, c);
      DLMEM_CUDNN(cudnnConvolutionBackwardData(cudnn_, &alpha, p.w, in(1), p.y, in(0), p.conv,
                                               static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws, c.workspace,
                                               &beta, p.x, out(0)));
      break;
    }
    case OpKind::conv2d_bwd_weight: {
      ConvPlan& p = conv_plan(conv_shape(g, n));
      const uint64_t bias_bytes = at.has_bias ? cuda::reduce_workspace(bias_plan(g, n)) : 0;
      char* conv_ws = ws;
      uint64_t conv_avail = ws_total;
      if (at.has_bias) {  // [bias partial sums][pad][cuDNN workspace]
        void* r = nullptr;
        conv_avail = gemm_region(bias_bytes, ws_total, r);
        conv_ws = static_cast<char*>(r);
      }
      const ConvAlgo c = choose(p, ConvKind::bwd_filter, std::min(conv_avail, opt_.conv_workspace_limit), n.name);
      set_math(p, c);
      DLMEM_CUDNN(cudnnConvolutionBackwardFilter(cudnn_, &alpha, p.x, in(1), p.y, in(0), p.conv,
                                                 static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), conv_ws,
                                                 c.workspace, &beta, p.w, out(0)));
      if (at.has_bias) cuda::reduce_sum(l, bias_plan(g, n), in(0), out(1), ws);
      break;
    }
    case OpKind::linear:
    case OpKind::linear_bwd_data:
    case OpKind::linear_bwd_weight:
    case OpKind::matmul: {
      const MatmulDims d = matmul_dims(g, n);
      const bool bias_grad = n.op == OpKind::linear_bwd_weight && d.bias;
      const uint64_t bias_bytes = bias_grad ? cuda::reduce_workspace(bias_plan(g, n)) : 0;
      void* gw = nullptr;
      const uint64_t gb = gemm_region(bias_bytes, gemm_workspace(d.batch, d.m, d.n), gw);
      gemm(l, d.batch, d.m, d.n, d.k, d.trans_a, d.trans_b, in(0), in(1), out(0), gw, gb);
      if (n.op == OpKind::linear && d.bias) cuda::add_channel_bias(l, d.m, d.n, 1, in(2), out(0));
      if (bias_grad) cuda::reduce_sum(l, bias_plan(g, n), in(0), out(1), ws);
      break;
    }
    case OpKind::add:
    case OpKind::mul: {
      const auto bd = broadcast_dims(shape(n.inputs[1]), x0.size());
      cuda::binary(l, n.op == OpKind::mul, static_cast<int>(x0.size()), x0.data(), bd.data(), in(0), in(1), out(0));
      break;
    }
    case OpKind::scale: cuda::scale(l, numel(x0), static_cast<float>(at.alpha), in(0), out(0)); break;
    case OpKind::relu:
    case OpKind::relu6:
    case OpKind::gelu:
    case OpKind::tanh:
    case OpKind::sigmoid: cuda::eltwise_fwd(l, eltwise_of(n.op), numel(x0), in(0), out(0)); break;
    case OpKind::relu_bwd:
    case OpKind::relu6_bwd:
    case OpKind::gelu_bwd:
    case OpKind::tanh_bwd:
    case OpKind::sigmoid_bwd: cuda::eltwise_bwd(l, eltwise_of(n.op), numel(x0), in(0), in(1), out(0)); break;
    case OpKind::dropout:
      cuda::dropout_fwd(l, numel(x0), static_cast<float>(at.p), at.seed, a.step, in(0), out(0),
                        static_cast<uint8_t*>(a.outputs[1]));
      break;
    case OpKind::dropout_bwd:
      cuda::dropout_bwd(l, numel(x0), static_cast<float>(at.p), in(0), static_cast<const uint8_t*>(a.inputs[1]),
                        out(0));
      break;
    case OpKind::max_pool2d:
      cuda::max_pool_fwd(l, pool_of(pool_shape(g, n)), in(0), out(0), static_cast<uint8_t*>(a.outputs[1]));
      break;
    case OpKind::max_pool2d_bwd:
      cuda::max_pool_bwd(l, pool_of(pool_shape(g, n)), in(0), static_cast<const uint8_t*>(a.inputs[1]), out(0));
      break;
    case OpKind::avg_pool2d: cuda::avg_pool_fwd(l, pool_of(pool_shape(g, n)), in(0), out(0)); break;
    case OpKind::avg_pool2d_bwd: cuda::avg_pool_bwd(l, pool_of(pool_shape(g, n)), in(0), out(0)); break;
    case OpKind::global_avg_pool: cuda::global_avg_pool_fwd(l, x0[0] * x0[1], x0[2] * x0[3], in(0), out(0)); break;
    case OpKind::global_avg_pool_bwd:
      cuda::global_avg_pool_bwd(l, at.shape[0] * at.shape[1], at.shape[2] * at.shape[3], in(0), out(0));
      break;
    case OpKind::batch_norm: {
      if (at.training && !at.unbiased)
        throw Error("batch norm with ONNX's biased running variance has no cuda kernel yet; run with --device cpu");
      const BatchNormDims d = batch_norm_dims(g, n);
      const cuda::BnPlan p = cuda::plan_batch_norm(d.n, d.c, d.hw);
      float* rm = static_cast<float*>(a.inputs[3]);
      float* rv = static_cast<float*>(a.inputs[4]);
      if (at.training)
        cuda::batch_norm_fwd_training(l, p, static_cast<float>(at.eps), static_cast<float>(at.momentum), !a.recompute,
                                      in(0), in(1), in(2), out(0), out(1), out(2), rm, rv, ws);
      else
        cuda::batch_norm_fwd_inference(l, p, static_cast<float>(at.eps), in(0), in(1), in(2), rm, rv, out(0));
      break;
    }
    case OpKind::batch_norm_bwd: {
      const BatchNormDims d = batch_norm_dims(g, n);
      cuda::batch_norm_bwd(l, cuda::plan_batch_norm(d.n, d.c, d.hw), static_cast<float>(at.eps), in(0), in(1), in(2),
                           in(3), in(4), out(0), out(1), out(2), ws);
      break;
    }
    case OpKind::layer_norm:
      cuda::layer_norm_fwd(l, cuda::plan_layer_norm(row_dims(g, n).rows, row_dims(g, n).cols), static_cast<float>(at.eps),
                           in(0), in(1), in(2), out(0), out(1), out(2));
      break;
    case OpKind::layer_norm_bwd:
      cuda::layer_norm_bwd(l, cuda::plan_layer_norm(row_dims(g, n).rows, row_dims(g, n).cols), static_cast<float>(at.eps),
                           in(0), in(1), in(2), in(3), in(4), out(0), out(1), out(2), ws);
      break;
    case OpKind::softmax: cuda::softmax_fwd(l, row_dims(g, n).rows, row_dims(g, n).cols, in(0), out(0)); break;
    case OpKind::softmax_bwd:
      cuda::softmax_bwd(l, row_dims(g, n).rows, row_dims(g, n).cols, in(0), in(1), out(0));
      break;
    case OpKind::causal_mask:
    case OpKind::causal_mask_bwd: {
      const int64_t t = x0.back();
      cuda::causal_mask(l, numel(x0) / (t * t), t, n.op == OpKind::causal_mask_bwd, in(0), out(0));
      break;
    }
    case OpKind::softmax_xent:
      names_[n.id] = n.name;
      cuda::softmax_xent_fwd(l, row_dims(g, n).rows, row_dims(g, n).cols, in(0), in_i32(1), out(0), out(1), ws);
      break;
    case OpKind::softmax_xent_bwd: {
      names_[n.id] = n.name;
      cuda::softmax_xent_bwd(l, row_dims(g, n).rows, row_dims(g, n).cols, in(0), in(1), in_i32(2), out(0));
      break;
    }
    case OpKind::concat: {
      const int64_t rank = static_cast<int64_t>(x0.size());
      const int64_t axis = axis_of(at.axis, x0.size());
      const Shape& y = shape(n.outputs[0]);
      int64_t outer = 1, inner = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= y[static_cast<size_t>(i)];
      for (int64_t i = axis + 1; i < rank; ++i) inner *= y[static_cast<size_t>(i)];
      const size_t row = static_cast<size_t>(y[static_cast<size_t>(axis)] * inner) * sizeof(float);
      size_t offset = 0;
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        const size_t w = static_cast<size_t>(shape(n.inputs[i])[static_cast<size_t>(axis)] * inner) * sizeof(float);
        if (w > 0)
          DLMEM_CUDA(cudaMemcpy2DAsync(reinterpret_cast<char*>(out(0)) + offset, row, a.inputs[i], w, w,
                                       static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, cs));
        offset += w;
      }
      break;
    }
    case OpKind::slice:
    case OpKind::slice_bwd: {
      const Shape& full = n.op == OpKind::slice ? x0 : at.shape;
      const int64_t rank = static_cast<int64_t>(full.size());
      const int64_t axis = axis_of(at.axis, full.size());
      int64_t outer = 1, inner = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= full[static_cast<size_t>(i)];
      for (int64_t i = axis + 1; i < rank; ++i) inner *= full[static_cast<size_t>(i)];
      const size_t f = sizeof(float);
      const size_t wide = static_cast<size_t>(full[static_cast<size_t>(axis)] * inner) * f;
      const size_t part = static_cast<size_t>(at.length * inner) * f, skip = static_cast<size_t>(at.start * inner) * f;
      if (n.op == OpKind::slice) {
        DLMEM_CUDA(cudaMemcpy2DAsync(out(0), part, reinterpret_cast<const char*>(in(0)) + skip, wide, part,
                                     static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, cs));
      } else {
        DLMEM_CUDA(cudaMemsetAsync(out(0), 0, wide * static_cast<size_t>(outer), cs));
        DLMEM_CUDA(cudaMemcpy2DAsync(reinterpret_cast<char*>(out(0)) + skip, wide, in(0), part, part,
                                     static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, cs));
      }
      break;
    }
    case OpKind::transpose: {
      std::vector<int> perm(at.perm.begin(), at.perm.end());
      cuda::transpose(l, static_cast<int>(x0.size()), x0.data(), perm.data(), in(0), out(0));
      break;
    }
    case OpKind::reshape:
      if (a.outputs[0] != a.inputs[0])
        DLMEM_CUDA(cudaMemcpyAsync(a.outputs[0], a.inputs[0], g.value(n.inputs[0]).type.bytes(),
                                   cudaMemcpyDeviceToDevice, cs));
      break;
    case OpKind::embedding: {
      names_[n.id] = n.name;
      const Shape& table = shape(n.inputs[1]);
      cuda::embedding_fwd(l, numel(x0), table[0], table[1], in_i32(0), in(1), out(0));
      break;
    }
    case OpKind::embedding_bwd:
      names_[n.id] = n.name;
      cuda::embedding_bwd(l, numel(shape(n.inputs[1])), at.shape[0], at.shape[1], in_i32(1), in(0), out(0));
      break;
    case OpKind::fill: cuda::fill(l, numel(shape(n.outputs[0])), static_cast<float>(at.alpha), out(0)); break;
    case OpKind::reduce_sum: {
      const auto y = broadcast_dims(at.shape, x0.size());
      cuda::reduce_sum(l, cuda::plan_reduce(static_cast<int>(x0.size()), x0.data(), y.data()), in(0), out(0), ws);
      break;
    }
    case OpKind::sgd_update:
      cuda::sgd_update(l, numel(x0), static_cast<float>(at.lr), static_cast<float>(at.momentum),
                       static_cast<float>(at.weight_decay), a.step == 0, static_cast<float*>(a.inputs[0]), in(1),
                       static_cast<float*>(a.inputs[2]));
      break;
    case OpKind::adam_update: {
      // The scalars exactly as the cpu backend computes them (cpu/kernels/optim.cpp).
      const float lr = static_cast<float>(at.lr), b1 = static_cast<float>(at.beta1), b2 = static_cast<float>(at.beta2);
      const double step = static_cast<double>(a.step + 1);
      const double bc1 = 1.0 - std::pow(static_cast<double>(b1), step);
      const double bc2 = 1.0 - std::pow(static_cast<double>(b2), step);
      cuda::adam_update(l, numel(x0), static_cast<float>(lr / bc1), static_cast<float>(std::sqrt(bc2)), b1, b2,
                        static_cast<float>(at.eps), static_cast<float>(at.weight_decay),
                        static_cast<float*>(a.inputs[0]), in(1), static_cast<float*>(a.inputs[2]),
                        static_cast<float*>(a.inputs[3]));
      break;
    }
    case OpKind::sub:
    case OpKind::div:
    case OpKind::pow:
    case OpKind::sqrt:
    case OpKind::erf:
    case OpKind::exp:
    case OpKind::log:
    case OpKind::leaky_relu:
    case OpKind::log_softmax:
    case OpKind::expand:
    case OpKind::erf_bwd:
    case OpKind::leaky_relu_bwd:
    case OpKind::log_softmax_bwd:
      // The ops ONNX import added (issue 17) have cpu kernels only so far.
      throw Error(ir::op_name(n.op), " has no cuda kernel yet; run this model with --device cpu");
    case OpKind::allreduce:
    case OpKind::reduce_scatter:
    case OpKind::all_gather:
    case OpKind::all_gather_into:
    case OpKind::shard:
      // Data parallelism runs on the cpu backend's collectives (MPI, threads) so far;
      // NCCL for cuda ranks is not built yet.
      throw Error(ir::op_name(n.op), ": data-parallel training on the cuda backend (NCCL) is not built yet; run it "
                  "with --device cpu");
    case OpKind::external:
      throw Error("node '", n.name, "' is a node of an external graph (dlmem remat): it has a cost and a size, no kernel");
    case OpKind::kCount: DLMEM_CHECK(false, "invalid op kind");
  }
}

// ---------------------------------------------------------------- codecs

bool CudaBackend::is_host_pointer(const void* p) const {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();
    return true;
  }
  return attr.type == cudaMemoryTypeHost || attr.type == cudaMemoryTypeUnregistered;
}

void* CudaBackend::host_staging(size_t bytes) {
  if (bytes > staging_bytes_) {
    // Host memory for the host codecs' device buffers (grown rarely; not device memory).
    if (staging_) DLMEM_CUDA(cudaFreeHost(staging_));
    staging_ = nullptr;
    staging_bytes_ = 0;
    DLMEM_CUDA(cudaHostAlloc(&staging_, bytes, cudaHostAllocDefault));
    staging_bytes_ = bytes;
  }
  return staging_;
}

void* CudaBackend::codec_scratch(size_t bytes) {
  if (bytes > scratch_bytes_) {
    // Grown rarely (a few bytes per 64K elements): the only allocation outside the plan.
    DLMEM_CUDA(cudaStreamSynchronize(stream(Stream::compute)));
    if (scratch_) DLMEM_CUDA(cudaFree(scratch_));
    scratch_ = nullptr;
    scratch_bytes_ = 0;
    DLMEM_CUDA(cudaMalloc(&scratch_, std::max<size_t>(bytes, 4096)));
    scratch_bytes_ = std::max<size_t>(bytes, 4096);
  }
  return scratch_;
}

uint64_t CudaBackend::encode(const codec::Codec& c, const float* src, uint64_t n, void* dst) {
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  const auto dc = cuda::device_codec(c.name());
  if (!dc) {  // a host codec (zstd, lz4): it encodes into host memory only
    if (!is_host_pointer(dst))
      throw Error("codec '", c.name(),
                  "' writes host memory only; on the cuda backend device buffers use bitmask, sparse, zvc, fp16, bf16 "
                  "or fp8-e4m3");
    DLMEM_CUDA(cudaStreamSynchronize(stream(Stream::compute)));
    if (is_host_pointer(src)) return c.encode(src, n, static_cast<std::byte*>(dst));
    float* staged = static_cast<float*>(host_staging(4 * n));
    DLMEM_CUDA(cudaMemcpy(staged, src, 4 * n, cudaMemcpyDeviceToHost));
    return c.encode(staged, n, static_cast<std::byte*>(dst));
  }
  const cuda::Launch l{stream(Stream::compute), err_, -1};
  void* scratch = codec_scratch(cuda::codec_scratch_bytes(*dc, n));
  if (!c.data_dependent()) {
    cuda::codec_encode(l, *dc, src, n, static_cast<uint8_t*>(dst), nullptr, scratch);
    return c.bound(n);
  }
  cuda::codec_encode(l, *dc, src, n, static_cast<uint8_t*>(dst), d_size_, scratch);
  auto* host = static_cast<unsigned long long*>(host_control_);
  DLMEM_CUDA(cudaMemcpyAsync(host, d_size_, sizeof(*host), cudaMemcpyDeviceToHost, stream(Stream::compute)));
  DLMEM_CUDA(cudaStreamSynchronize(stream(Stream::compute)));
  DLMEM_CHECK(*host <= c.bound(n), "codec ", c.name(), " wrote ", *host, " bytes, more than its bound ", c.bound(n));
  return *host;
}

void CudaBackend::decode(const codec::Codec& c, const void* src, uint64_t size, uint64_t n, float* dst) {
  DLMEM_CUDA(cudaSetDevice(opt_.device));
  const auto dc = cuda::device_codec(c.name());
  if (!dc) {  // a host codec: it reads host memory only
    if (!is_host_pointer(src))
      throw Error("codec '", c.name(), "' reads host memory only; keep its encodings in host buffers");
    DLMEM_CUDA(cudaStreamSynchronize(stream(Stream::compute)));
    if (is_host_pointer(dst)) return c.decode(static_cast<const std::byte*>(src), size, n, dst);
    float* staged = static_cast<float*>(host_staging(4 * n));
    c.decode(static_cast<const std::byte*>(src), size, n, staged);
    DLMEM_CUDA(cudaMemcpy(dst, staged, 4 * n, cudaMemcpyHostToDevice));
    return;
  }
  const cuda::Launch l{stream(Stream::compute), err_, -1};
  cuda::codec_decode(l, *dc, static_cast<const uint8_t*>(src), size, n, dst,
                     codec_scratch(cuda::codec_scratch_bytes(*dc, n)));
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& o) {
  const CudaDeviceInfo info = cuda_device_info(o.device);
  if (!info.available) throw Error("cannot use CUDA device ", o.device, ": ", info.reason);
  return std::make_unique<CudaBackend>(o);
}

CudaDeviceInfo cuda_device_info(int device) {
  CudaDeviceInfo info;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    info.reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    return info;
  }
  if (count == 0) {
    info.reason = "the CUDA runtime reports no device";
    return info;
  }
  if (device < 0 || device >= count) {
    info.reason = "device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " device" +
                  (count == 1 ? "" : "s") + ")";
    return info;
  }
  cudaDeviceProp prop{};
  cudaError_t r = cudaGetDeviceProperties(&prop, device);
  size_t free = 0, total = 0;
  int previous = 0;
  if (r == cudaSuccess) r = cudaGetDevice(&previous);
  if (r == cudaSuccess) r = cudaSetDevice(device);
  if (r == cudaSuccess) r = cudaMemGetInfo(&free, &total);
  if (r == cudaSuccess) cudaSetDevice(previous);
  if (r != cudaSuccess) {
    cudaGetLastError();
    info.reason = std::string("device ") + std::to_string(device) + ": " + cudaGetErrorName(r) + " (" +
                  cudaGetErrorString(r) + ")";
    return info;
  }
  info.available = true;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.free_bytes = free;
  info.total_bytes = total;
  return info;
}

}  // namespace dlmem::runtime
