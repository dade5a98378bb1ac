// Data parallelism (`dlmem train --data-parallel`): one rank's training graph, with
// the collectives of DDP and of ZeRO (Rajbhandari et al., SC 2020) as its nodes, so
// that every planner plans a rank's memory -- its shards, its communication buffers,
// its activations -- like any graph's.
//
//   auto params = ir::build_training_graph(g, opt);
//   ir::make_data_parallel(g, params, {.ranks = 8, .rank = 3, .zero = 2});
//
// Note [Data parallelism]: each rank runs the model on its shard of every global batch
// (batch / ranks samples) and the ranks keep the same weights:
//  - ZeRO 0 (DDP): each final weight gradient is all-reduced (the mean over ranks), in
//    buckets of DataParallel::bucket_bytes as the backward produces them; every rank
//    updates every weight.
//  - ZeRO 1: as 0, but each rank keeps optimizer state for its shard of each weight only
//    (Note [Shards], runtime/comm.h); it updates that shard and all-gathers the weight.
//  - ZeRO 2: the gradient is reduce-scattered instead, so a rank holds only its shard
//    of each gradient from the backward on; otherwise as 1.
//  - ZeRO 3: a rank stores only its shard of each trainable weight; the whole weight is
//    all-gathered before its first forward use and again before its first backward
//    use, each copy freed after its last use (role communication); the gradient is
//    reduce-scattered and the shard updated in place.
// The optimizer's update is elementwise, so updating shards gives the bytes a whole
// update gives. Non-trainable weights (batch-norm running statistics) stay per rank,
// as in DDP without buffer broadcast. Values keep their single-process names, and a
// sharded value says what it is a shard of (Value::shard), so checkpoints hold whole
// tensors whatever the number of ranks.
#pragma once

#include <span>
#include <vector>

#include "ir/autodiff.h"
#include "ir/graph.h"

namespace dlmem::ir {

struct DataParallel {
  int ranks = 1;  // 1: a single process (the graph is left alone)
  int rank = 0;
  int zero = 0;   // ZeRO stage, 0..3
  // ZeRO 0 and 1: gradients are all-reduced in buckets of at least this many bytes, as
  // DDP does (its default: 25 MiB), each bucket one collective once its last gradient is
  // made (or before anything reads one of them); 0: one collective per gradient.
  uint64_t bucket_bytes = 25ull << 20;
};

// Rewrites `g`, the training graph build_training_graph made (with its `params`), into
// rank dp.rank's graph. dlmem::Error for a bad rank, rank count or stage.
void make_data_parallel(Graph& g, const std::vector<ParamGrad>& params, const DataParallel& dp);

// Rank s.rank's shard of a whole tensor's values (zero-padded, Note [Shards]).
std::vector<float> take_shard(std::span<const float> full, const Shard& s);

}  // namespace dlmem::ir
