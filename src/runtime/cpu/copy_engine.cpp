#include "runtime/cpu/copy_engine.h"

#include <cstring>

#include "util/error.h"

namespace dlmem::cpu {

size_t CopyEngine::index(plan::Stream s) {
  DLMEM_CHECK(s != plan::Stream::compute, "copies run on d2h or h2d, not the compute stream");
  return s == plan::Stream::d2h ? 0 : 1;
}

CopyEngine::~CopyEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (Queue& q : queues_)
    if (q.worker.joinable()) q.worker.join();
}

bool CopyEngine::complete_locked(runtime::Event e) const {
  if (e.seq == 0 || e.stream == plan::Stream::compute) return true;
  return queues_[index(e.stream)].completed >= e.seq;
}

runtime::Event CopyEngine::copy(plan::Stream s, void* dst, const void* src, uint64_t bytes) {
  const size_t qi = index(s);
  runtime::Event e{s, 0};
  {
    std::lock_guard<std::mutex> lock(mu_);
    Queue& q = queues_[qi];
    if (!q.worker.joinable()) q.worker = std::thread([this, qi] { work(qi); });
    q.tasks.push_back(Task{dst, src, bytes, {}});
    e.seq = ++q.submitted;
  }
  cv_.notify_all();
  return e;
}

void CopyEngine::wait(plan::Stream waiter, runtime::Event e) {
  if (waiter == plan::Stream::compute) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return complete_locked(e); });
    return;
  }
  const size_t qi = index(waiter);
  {
    std::lock_guard<std::mutex> lock(mu_);
    Queue& q = queues_[qi];
    if (complete_locked(e)) return;
    if (!q.worker.joinable()) q.worker = std::thread([this, qi] { work(qi); });
    q.tasks.push_back(Task{nullptr, nullptr, 0, e});
    ++q.submitted;
  }
  cv_.notify_all();
}

bool CopyEngine::done(runtime::Event e) {
  std::lock_guard<std::mutex> lock(mu_);
  return complete_locked(e);
}

void CopyEngine::synchronize() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] {
    for (const Queue& q : queues_)
      if (q.completed < q.submitted) return false;
    return true;
  });
}

void CopyEngine::work(size_t qi) {
  std::unique_lock<std::mutex> lock(mu_);
  Queue& q = queues_[qi];
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !q.tasks.empty(); });
    if (q.tasks.empty()) return;  // stop_ and drained
    Task t = q.tasks.front();
    if (t.wait_for.seq > 0) {
      cv_.wait(lock, [&] { return complete_locked(t.wait_for); });
    } else {
      lock.unlock();
      std::memcpy(t.dst, t.src, t.bytes);
      lock.lock();
    }
    q.tasks.pop_front();
    ++q.completed;
    cv_.notify_all();
  }
}

}  // namespace dlmem::cpu
