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
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

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

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Memory. Device memory on the cpu backend is ordinary (64-byte aligned) memory:
  // the executor makes it one arena of exactly the budget, which enforces capacity.
  virtual void* allocate(Space, uint64_t bytes) = 0;
  virtual void deallocate(Space, void* p) = 0;
  // Synchronous copies between user memory and a space.
  virtual void upload(void* device_dst, const void* host_src, uint64_t bytes) = 0;
  virtual void download(void* host_dst, const void* device_src, uint64_t bytes) = 0;

  // Asynchronous copy on a copy stream (d2h or h2d); returns its completion event.
  virtual Event copy_async(Stream, void* dst, const void* src, uint64_t bytes) = 0;
  // Makes later work on `waiter` wait for `e` (on the cpu compute stream: blocks).
  virtual void wait_event(Stream waiter, Event e) = 0;
  virtual bool query(Event e) = 0;  // true when complete
  virtual void synchronize() = 0;   // waits for every stream

  // Kernels: the scratch bytes a node's kernel needs, and the kernel itself.
  virtual uint64_t workspace_bytes(const ir::Graph&, const ir::Node&) = 0;
  virtual void run(const ir::Graph&, const ir::Node&, const KernelArgs&) = 0;
};

struct CpuOptions {
  int threads = 0;  // 0: OpenMP's default
};
std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& = {});

// Gives every node whose kernel needs scratch space a workspace value of that size,
// so that the workspace is part of the graph, the plan and the budget.
void attach_workspaces(ir::Graph&, Backend&);

}  // namespace dlmem::runtime
