// The cpu backend's copy streams: one worker thread per copy direction (d2h, h2d),
// each draining its queue in order, with events as per-stream sequence numbers. Copies
// really overlap with compute (the calling thread), as on a GPU with copy engines.
//
//   cpu::CopyEngine ce;
//   runtime::Event e = ce.copy(plan::Stream::d2h, host, dev, n);
//   ce.wait(plan::Stream::compute, e);   // blocks the caller until the copy is done
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "runtime/backend.h"

namespace dlmem::cpu {

class CopyEngine {
 public:
  CopyEngine() = default;
  ~CopyEngine();
  CopyEngine(const CopyEngine&) = delete;
  CopyEngine& operator=(const CopyEngine&) = delete;

  // Queues a copy on a copy stream (d2h or h2d).
  runtime::Event copy(plan::Stream, void* dst, const void* src, uint64_t bytes);
  // The compute stream (the caller) blocks until `e` completes; a copy stream queues a
  // wait, so its later copies start only after `e`.
  void wait(plan::Stream waiter, runtime::Event e);
  bool done(runtime::Event e);
  void synchronize();

 private:
  struct Task {
    void* dst = nullptr;
    const void* src = nullptr;
    uint64_t bytes = 0;
    runtime::Event wait_for;  // when set (seq > 0): a wait, not a copy
  };
  struct Queue {
    std::thread worker;
    std::deque<Task> tasks;
    uint64_t submitted = 0;
    uint64_t completed = 0;
  };
  static size_t index(plan::Stream s);
  bool complete_locked(runtime::Event e) const;
  void work(size_t q);

  std::mutex mu_;
  std::condition_variable cv_;
  std::array<Queue, 2> queues_;
  bool stop_ = false;
};

}  // namespace dlmem::cpu
