// The thread transport (runtime/comm.h): N ranks as threads of one process. Every
// collective is two barriers around direct reads of the other ranks' buffers: post
// your pointer, wait until all have, read (sums in rank order, Note [Reduction order]),
// wait until all have read, so that no rank reuses a buffer another still reads.
// Written here because no library offers collectives between threads of one process
// on the caller's own buffers (MPI's are between processes).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>

#include "runtime/comm.h"
#include "util/error.h"

namespace dlmem::runtime {

namespace {

struct Group {
  explicit Group(int n) : ranks(n), posted(static_cast<size_t>(n)), values(static_cast<size_t>(n)) {}
  const int ranks;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  std::string aborted;  // non-empty: a rank failed; every wait throws this
  std::vector<const void*> posted;
  std::vector<double> values;

  // Waits until every rank has arrived; throws when the group was aborted.
  void barrier() {
    std::unique_lock lock(mu);
    if (!aborted.empty()) throw Error(aborted);
    const uint64_t gen = generation;
    if (++arrived == ranks) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return;
    }
    cv.wait(lock, [&] { return generation != gen || !aborted.empty(); });
    if (generation == gen) throw Error(aborted);
  }
  void abort(const std::string& why) {
    std::lock_guard lock(mu);
    if (aborted.empty()) aborted = why;
    cv.notify_all();
  }
};

class ThreadComm final : public Communicator {
 public:
  ThreadComm(std::shared_ptr<Group> g, int rank) : g_(std::move(g)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->ranks; }
  std::string name() const override { return "threads"; }
  // All-reduce sums into its workspace (y may be x, which the others still read);
  // reduce-scatter writes its own shard straight into y.
  int64_t workspace_floats(int64_t n, bool scatter) const override { return scatter ? 0 : n; }
  Group& group() { return *g_; }

  void allreduce_mean(const float* x, float* y, int64_t n, float* ws) override {
    post(x);
    sum_into(ws, 0, n);  // into the workspace: y may be x, which the others still read
    g_->barrier();
    std::memcpy(y, ws, static_cast<size_t>(n) * sizeof(float));
  }
  void reduce_scatter_mean(const float* x, float* y, int64_t n, float*) override {
    const int64_t s = shard_size(n, size()), lo = std::min(n, rank_ * s), hi = std::min(n, lo + s);
    post(x);
    sum_into(y, lo, hi - lo);
    std::fill(y + (hi - lo), y + s, 0.f);
    g_->barrier();
  }
  void all_gather(const float* x, float* y, int64_t n) override {
    const int64_t s = shard_size(n, size());
    post(x);
    for (int k = 0; k < size(); ++k) {
      const int64_t lo = std::min(n, k * s), hi = std::min(n, lo + s);
      std::memcpy(y + lo, static_cast<const float*>(g_->posted[static_cast<size_t>(k)]),
                  static_cast<size_t>(hi - lo) * sizeof(float));
    }
    g_->barrier();
  }
  std::vector<double> gather_doubles(double v) override {
    {
      std::lock_guard lock(g_->mu);
      g_->values[static_cast<size_t>(rank_)] = v;
    }
    g_->barrier();
    std::vector<double> out;
    {
      std::lock_guard lock(g_->mu);
      out = g_->values;
    }
    g_->barrier();
    return out;
  }
  void broadcast(void* data, uint64_t bytes, int root) override {
    post(data);
    if (rank_ != root) std::memcpy(data, g_->posted[static_cast<size_t>(root)], bytes);
    g_->barrier();
  }

 private:
  void post(const void* p) {
    {
      std::lock_guard lock(g_->mu);
      g_->posted[static_cast<size_t>(rank_)] = p;
    }
    g_->barrier();
  }
  // out[j] = (x_0[lo + j] + ... + x_{N-1}[lo + j]) / N, j < len, in rank order.
  void sum_into(float* out, int64_t lo, int64_t len) const {
    const float n = static_cast<float>(size());
    for (int64_t j = 0; j < len; ++j) {
      float s = 0.f;
      for (int k = 0; k < size(); ++k) s += static_cast<const float*>(g_->posted[static_cast<size_t>(k)])[lo + j];
      out[j] = s / n;
    }
  }

  std::shared_ptr<Group> g_;
  int rank_;
};

class PlanningComm final : public Communicator {
 public:
  explicit PlanningComm(int ranks) : ranks_(ranks) {}
  int rank() const override { return 0; }
  int size() const override { return ranks_; }
  std::string name() const override { return "planning only"; }
  int64_t workspace_floats(int64_t n, bool scatter) const override { return scatter ? 0 : n; }  // the threads'
  void allreduce_mean(const float*, float*, int64_t, float*) override { refuse(); }
  void reduce_scatter_mean(const float*, float*, int64_t, float*) override { refuse(); }
  void all_gather(const float*, float*, int64_t) override { refuse(); }
  std::vector<double> gather_doubles(double) override { refuse(); }
  void broadcast(void*, uint64_t, int) override { refuse(); }

 private:
  [[noreturn]] static void refuse() {
    throw Error("this plan of a data-parallel rank was made to be planned and simulated, not run; train with "
                "'dlmem train --data-parallel'");
  }
  int ranks_;
};

}  // namespace

Communicator& planning_comm(int ranks) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<Communicator>> comms;
  std::lock_guard lock(mu);
  auto& c = comms[ranks];
  if (!c) c = std::make_unique<PlanningComm>(ranks);
  return *c;
}

std::vector<std::unique_ptr<Communicator>> make_thread_comms(int ranks) {
  if (ranks < 1) throw Error("a data-parallel run needs at least one rank, got ", ranks);
  auto g = std::make_shared<Group>(ranks);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < ranks; ++r) out.push_back(std::make_unique<ThreadComm>(g, r));
  return out;
}

void abort_thread_group(Communicator& c, const std::string& why) {
  if (auto* t = dynamic_cast<ThreadComm*>(&c)) t->group().abort(why);
}

}  // namespace dlmem::runtime
