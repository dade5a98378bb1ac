// The MPI transport (runtime/comm.h) on Open MPI's MPI_COMM_WORLD. Counts above
// INT_MAX elements go in pieces (MPI counts are int).
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/comm.h"
#include "util/error.h"

#ifdef DLMEM_MPI
#include <mpi.h>
#endif

namespace dlmem::runtime {

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr ||
         std::getenv("PMIX_RANK") != nullptr;
}

#ifndef DLMEM_MPI

bool have_mpi() { return false; }
void abort_mpi_job(const std::string& why, int code) {
  std::fprintf(stderr, "%s\n", why.c_str());
  std::exit(code);
}
std::unique_ptr<Communicator> make_mpi_comm(bool) {
  throw Error("this dlmem was built without MPI: install libopenmpi-dev (scripts/install-deps.sh) and rebuild, or run "
              "the ranks as threads of one process with --ranks N");
}

#else

bool have_mpi() { return true; }

void abort_mpi_job(const std::string& why, int code) {
  std::fprintf(stderr, "%s\n", why.c_str());
  std::fflush(stderr);
  int init = 0, done = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&done);
  if (init && !done) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error("MPI ", what, " failed: ", std::string(text, static_cast<size_t>(len)));
}

int count(int64_t n) {
  if (n > INT_MAX) throw Error("a collective of ", n, " elements per rank is over MPI's int count; use more ranks");
  return static_cast<int>(n);
}

class MpiComm final : public Communicator {
 public:
  explicit MpiComm(bool deterministic) : deterministic_(deterministic) {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owner_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiComm() override {
    if (owner_) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return deterministic_ ? "mpi (deterministic reduce)" : "mpi"; }
  int64_t workspace_floats(int64_t n, bool) const override {
    return deterministic_ ? shard_size(n, size_) * size_ : 0;
  }

  void allreduce_mean(const float* x, float* y, int64_t n, float* ws) override {
    if (deterministic_) {
      // Every rank sums its shard in rank order, then the shards are gathered.
      const int64_t s = shard_size(n, size_);
      ordered_shard_sum(x, ws, n);
      const int64_t lo = std::min(n, rank_ * s), hi = std::min(n, lo + s);
      reduce_chunks(ws, n, y + lo, hi - lo);
      all_gather_from(y + lo, y, n);
      return;
    }
    check(MPI_Allreduce(x == y ? MPI_IN_PLACE : x, y, count(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    const float k = static_cast<float>(size_);
    for (int64_t i = 0; i < n; ++i) y[i] /= k;
  }
  void reduce_scatter_mean(const float* x, float* y, int64_t n, float* ws) override {
    const int64_t s = shard_size(n, size_), lo = std::min(n, rank_ * s), hi = std::min(n, lo + s);
    if (deterministic_) {
      ordered_shard_sum(x, ws, n);
      reduce_chunks(ws, n, y, hi - lo);
    } else {
      std::vector<int> counts(static_cast<size_t>(size_));
      for (int k = 0; k < size_; ++k) counts[static_cast<size_t>(k)] = count(std::min(n, (k + 1) * s) - std::min(n, k * s));
      check(MPI_Reduce_scatter(x, y, counts.data(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Reduce_scatter");
      const float k = static_cast<float>(size_);
      for (int64_t i = 0; i < hi - lo; ++i) y[i] /= k;
    }
    std::fill(y + (hi - lo), y + s, 0.f);
  }
  void all_gather(const float* x, float* y, int64_t n) override { all_gather_from(x, y, n); }
  std::vector<double> gather_doubles(double v) override {
    std::vector<double> out(static_cast<size_t>(size_));
    check(MPI_Allgather(&v, 1, MPI_DOUBLE, out.data(), 1, MPI_DOUBLE, MPI_COMM_WORLD), "MPI_Allgather");
    return out;
  }
  void broadcast(void* data, uint64_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (uint64_t at = 0; at < bytes; at += INT_MAX) {
      const int len = static_cast<int>(std::min<uint64_t>(INT_MAX, bytes - at));
      check(MPI_Bcast(p + at, len, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
  }

 private:
  // Element ranges of the shards (Note [Shards]).
  void layout(int64_t n, std::vector<int>& counts, std::vector<int>& displs) const {
    const int64_t s = shard_size(n, size_);
    counts.resize(static_cast<size_t>(size_));
    displs.resize(static_cast<size_t>(size_));
    for (int k = 0; k < size_; ++k) {
      const int64_t lo = std::min(n, k * s), hi = std::min(n, lo + s);
      counts[static_cast<size_t>(k)] = count(hi - lo);
      displs[static_cast<size_t>(k)] = count(lo);
    }
  }
  // ws[k s, k s + len) = rank k's elements of this rank's shard (an all-to-all).
  void ordered_shard_sum(const float* x, float* ws, int64_t n) {
    std::vector<int> counts, displs;
    layout(n, counts, displs);
    const int64_t s = shard_size(n, size_);
    std::vector<int> rcounts(static_cast<size_t>(size_), counts[static_cast<size_t>(rank_)]), rdispls(static_cast<size_t>(size_));
    for (int k = 0; k < size_; ++k) rdispls[static_cast<size_t>(k)] = count(k * s);
    check(MPI_Alltoallv(x, counts.data(), displs.data(), MPI_FLOAT, ws, rcounts.data(), rdispls.data(), MPI_FLOAT,
                        MPI_COMM_WORLD),
          "MPI_Alltoallv");
  }
  // out[j] = (ws[j] + ws[s + j] + ... ) / N in rank order (Note [Reduction order]).
  void reduce_chunks(const float* ws, int64_t n, float* out, int64_t len) const {
    const int64_t s = shard_size(n, size_);
    const float k = static_cast<float>(size_);
    for (int64_t j = 0; j < len; ++j) {
      float sum = 0.f;
      for (int r = 0; r < size_; ++r) sum += ws[r * s + j];
      out[j] = sum / k;
    }
  }
  void all_gather_from(const float* shard, float* y, int64_t n) {
    std::vector<int> counts, displs;
    layout(n, counts, displs);
    const bool in_place = shard == y + displs[static_cast<size_t>(rank_)];
    check(MPI_Allgatherv(in_place ? MPI_IN_PLACE : shard, counts[static_cast<size_t>(rank_)], MPI_FLOAT, y,
                         counts.data(), displs.data(), MPI_FLOAT, MPI_COMM_WORLD),
          "MPI_Allgatherv");
  }

  bool deterministic_;
  bool owner_ = false;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_comm(bool deterministic) { return std::make_unique<MpiComm>(deterministic); }

#endif

}  // namespace dlmem::runtime
