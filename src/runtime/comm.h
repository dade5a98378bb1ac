// Collectives among the ranks of a data-parallel run (Note [Data parallelism],
// ir/parallel.h), on float buffers in each rank's device space: what the plan's
// communication ops (allreduce, reduce_scatter, all_gather) run on. Two transports:
// Open MPI, for `mpirun -np N dlmem train --data-parallel` (one process per rank, on one
// machine or a cluster), and threads of one process (`--ranks N` without mpirun), whose
// ranks share memory.
//
//   auto comms = runtime::make_thread_comms(2);        // one per rank, used by its thread
//   comms[r]->allreduce_mean(grad, grad, n, ws);       // every rank calls the same sequence
//
// Note [Reduction order]: a mean over ranks is (x_0 + x_1 + ... + x_{N-1}) / N summed in
// rank order, element by element -- the thread transport always, MPI with
// `deterministic` (an all-to-all of chunks, the ordered sum, an all-gather) -- so that N
// ranks give bit-identical results to one process summing the same per-rank values in
// the same order, whatever the transport. Without `deterministic`, MPI's own
// MPI_Allreduce / MPI_Reduce_scatter choose the order (within rounding of it).
//
// Note [Shards]: a tensor of n elements is cut into N shards of s = ceil(n / N)
// elements, rank r's holding elements [r s, min((r+1) s, n)) and zeros after them;
// reduce_scatter and all_gather move exactly those element ranges.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dlmem::runtime {

// Elements per shard of a tensor of n elements over `ranks` ranks (Note [Shards]).
inline int64_t shard_size(int64_t n, int64_t ranks) { return (n + ranks - 1) / ranks; }

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "mpi", "threads"
  // Scratch floats a collective over n elements needs (planned as the op's workspace):
  // all-reduce, or reduce-scatter when `scatter`.
  virtual int64_t workspace_floats(int64_t n, bool scatter) const = 0;
  // y[i] = mean over ranks of x[i], i < n (x == y allowed).
  virtual void allreduce_mean(const float* x, float* y, int64_t n, float* ws) = 0;
  // y[0, s) = mean over ranks of this rank's shard of x (n elements), zero-padded.
  virtual void reduce_scatter_mean(const float* x, float* y, int64_t n, float* ws) = 0;
  // y[0, n) = every rank's shard x[0, s), in rank order.
  virtual void all_gather(const float* x, float* y, int64_t n) = 0;
  // Every rank's value, in rank order (losses, accuracies).
  virtual std::vector<double> gather_doubles(double v) = 0;
  // Rank `root`'s bytes on every rank (checkpoint loading).
  virtual void broadcast(void* data, uint64_t bytes, int root) = 0;
};

// Under mpirun: ends every rank of the job with `code` (MPI_Abort), after `why` went to
// stderr -- a rank that fails must not leave the others waiting in a collective (or in
// MPI_Finalize, which waits for every rank). Without MPI: std::exit.
[[noreturn]] void abort_mpi_job(const std::string& why, int code);
// The transports this build has: "threads", and "mpi" when built with Open MPI.
bool have_mpi();
// Under mpirun (OMPI_COMM_WORLD_SIZE or PMI_SIZE in the environment).
bool launched_by_mpirun();
// MPI_COMM_WORLD (MPI_Init on first use, MPI_Finalize at exit); dlmem::Error when this
// build has no MPI. `deterministic`: Note [Reduction order].
std::unique_ptr<Communicator> make_mpi_comm(bool deterministic);
// N communicators over shared memory, one per rank thread. A rank that fails calls
// abort_all (via ThreadGroup), and the others' collectives then throw instead of waiting.
std::vector<std::unique_ptr<Communicator>> make_thread_comms(int ranks);
// A communicator for planning only (`dlmem plan --ranks N`): rank 0 of `ranks`, with
// the thread transport's workspaces; its collectives throw. Lives as long as the process.
Communicator& planning_comm(int ranks);
// Makes every pending and later collective of a thread group throw dlmem::Error with
// `why` (a rank failed); `c` is any communicator of the group.
void abort_thread_group(Communicator& c, const std::string& why);

}  // namespace dlmem::runtime
