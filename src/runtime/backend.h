// The interface between the executor and the hardware. Designed for both the cpu
// (oneDNN) and the cuda (cuDNN + cuBLAS) backends: memory spaces, asynchronous copies
// on copy streams with events, and one kernel entry per op kind.
//
//   auto be = runtime::make_cpu_backend({.threads = 2});
//   void* arena = be->allocate(plan::Space::device, bytes);
//   runtime::Event e = be->copy_async(plan::Stream::d2h, host, dev, n);
//   be->wait_event(plan::Stream::compute, e);      // compute waits for the copy
//   be->run(graph, node, args);                    // the node's kernel
//
// Lifecycle: the executor allocates the device arena once (exactly the budget), host
// buffers once, then for every instruction calls run() or copy_async(); the backend
// never allocates per tensor.
//
// Note [Stream order]: on the cpu backend the compute stream is the calling thread, so
// a copy queued after a kernel always sees that kernel's results, and plans rely on
// it (a swap-out names no wait for the node that produced its source). A backend
// whose compute stream is asynchronous (cuda) must keep that order: a copy starts
// only after the compute work queued before it. Compute waits for copies only where
// an instruction says so (wait_event).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "codec/codec.h"
#include "ir/graph.h"
#include "plan/plan.h"

namespace dlmem::runtime {

using plan::Space;
using plan::Stream;

// Completion marker of work queued on a stream. Events of one backend are totally
// ordered per stream; 0 is "already complete".
struct Event {
  Stream stream = Stream::compute;
  uint64_t seq = 0;
};

struct KernelArgs {
  std::span<void* const> inputs;   // one pointer per node input (in the device space)
  std::span<void* const> outputs;  // one per node output (may equal an input: in place)
  void* workspace = nullptr;       // workspace_bytes(node) bytes, or nullptr when 0
  uint64_t step = 0;               // training step, from 0 (dropout streams, Adam's t)
  bool recompute = false;          // a recomputation: no side effects (running statistics)
};

class Communicator;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // The collectives a data-parallel rank's communication nodes run on (runtime/comm.h;
  // not owned). Set before workspace_bytes is asked about those nodes.
  void set_communicator(Communicator* c) { comm_ = c; }
  Communicator* communicator() const { return comm_; }

  // Memory. Device memory on the cpu backend is ordinary (64-byte aligned) memory:
  // the executor makes it one arena of exactly the budget, which enforces capacity.
  virtual void* allocate(Space, uint64_t bytes) = 0;
  virtual void deallocate(Space, void* p) = 0;
  // Synchronous copies between user memory and a space.
  virtual void upload(void* device_dst, const void* host_src, uint64_t bytes) = 0;
  virtual void download(void* host_dst, const void* device_src, uint64_t bytes) = 0;
  // Sets `bytes` bytes of memory of a space to `value`, in order with the compute
  // stream (work queued before it is not disturbed, work queued after sees it). The
  // executor zeroes preloaded buffers and poisons freed ones with it.
  virtual void fill_bytes(Space, void* p, uint8_t value, uint64_t bytes) { std::memset(p, value, bytes); }

  // Asynchronous copy on a copy stream (d2h or h2d); returns its completion event.
  virtual Event copy_async(Stream, void* dst, const void* src, uint64_t bytes) = 0;
  // Makes later work on `waiter` wait for `e` (on the cpu compute stream: blocks).
  virtual void wait_event(Stream waiter, Event e) = 0;
  virtual bool query(Event e) = 0;  // true when complete
  virtual void synchronize() = 0;   // waits for every stream

  // Kernels: the scratch bytes a node's kernel needs, and the kernel itself.
  virtual uint64_t workspace_bytes(const ir::Graph&, const ir::Node&) = 0;
  virtual void run(const ir::Graph&, const ir::Node&, const KernelArgs&) = 0;

  // Activation codecs (src/codec) on device memory, queued on the compute stream:
  // encodes n floats at `src` into `dst` (codec.bound(n) bytes) and returns the bytes
  // written; decodes `size` such bytes back into n floats. The bytes are the codec's
  // own format on every backend. The cpu backend runs the codec itself; the cuda
  // backend runs kernels of its own for bitmask, sparse, zvc and the reduced
  // precisions -- also straight into and out of pinned host buffers (Space::host),
  // over the bus, as cDMA does -- and the host codecs (zstd, lz4) on the host,
  // staging device data through pinned memory.
  virtual uint64_t encode(const codec::Codec& c, const float* src, uint64_t n, void* dst) {
    return c.encode(src, n, static_cast<std::byte*>(dst));
  }
  virtual void decode(const codec::Codec& c, const void* src, uint64_t size, uint64_t n, float* dst) {
    c.decode(static_cast<const std::byte*>(src), size, n, dst);
  }

 protected:
  Communicator* comm_ = nullptr;
};

struct CpuOptions {
  int threads = 0;  // 0: OpenMP's default
};
std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& = {});

// The cuda backend (src/runtime/cuda): one device arena from a single cudaMalloc,
// pinned host memory, a compute stream and two copy streams (d2h, h2d) with events,
// cuDNN convolutions, cuBLAS GEMMs and dlmem's own kernels for everything else. Every
// kernel is deterministic (deterministic cuDNN algorithms, fixed reduction orders),
// so lossless policies give bit-identical results on it as on the cpu backend.
struct CudaOptions {
  int device = 0;
  // TF32 tensor cores for convolutions and GEMMs (PyTorch's default for cuDNN
  // convolutions); off: exact fp32 arithmetic, as the cpu backend.
  bool allow_tf32 = false;
  // Most scratch bytes a convolution may take; the fastest deterministic cuDNN
  // algorithm within it is chosen, and its workspace is part of the plan.
  uint64_t conv_workspace_limit = uint64_t{1} << 30;
  // Most cuBLAS workspace bytes a GEMM node may take (part of the plan, like a
  // convolution's); smaller GEMMs get less.
  uint64_t gemm_workspace_limit = uint64_t{32} << 20;
};
// Throws dlmem::Error when this dlmem was built without CUDA, or when the device
// cannot be used (the message names the CUDA error).
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& = {});

// What the CUDA runtime says about a device; never throws. Without CUDA, or without a
// usable device, `available` is false and `reason` says why.
struct CudaDeviceInfo {
  bool available = false;
  std::string reason;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  uint64_t total_bytes = 0, free_bytes = 0;
};
CudaDeviceInfo cuda_device_info(int device = 0);

// "cpu" or "cuda" (dlmem::Error naming both for anything else), and a backend for it.
enum class DeviceKind : uint8_t { cpu, cuda };
DeviceKind parse_device(std::string_view);
std::string_view device_name(DeviceKind);
std::unique_ptr<Backend> make_backend(DeviceKind, int cpu_threads = 0, const CudaOptions& = {});

// Gives every node whose kernel needs scratch space a workspace value of that size,
// so that the workspace is part of the graph, the plan and the budget.
void attach_workspaces(ir::Graph&, Backend&);

}  // namespace dlmem::runtime
