// A pooled allocator over one device arena of fixed capacity: for execution without a
// static placement (and later for dynamic rematerialisation), where what is resident
// is decided at run time. It hands out offsets into the arena, as the cpu backend's
// "device" is one arena of exactly the budget.
//
//   runtime::PoolAllocator pool(256_MiB);
//   uint64_t off = pool.allocate(3 << 20, Stream::compute);  // best fit, split
//   pool.free(off);                                          // coalesced with neighbours
//   pool.stats().fragmentation;  pool.snapshot().dump();      // what users plot
//
// The design is PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp)
// on a fixed arena, in the role of SuperNeurons' heap-based GPU memory pool that
// replaces cudaMalloc/cudaFree (Wang et al., PPoPP 2018):
//  - Size classes. Requests are rounded up to 512 bytes. Up to 1 MiB they are served
//    from the small pool, whose segments are 2 MiB; larger ones from the large pool,
//    whose segments are exactly the rounded request (reserving is a bookkeeping step
//    here, not a cudaMalloc to amortise, so rounding segments up would only waste).
//  - Best fit: free blocks sit in a set ordered by (stream, size, offset); a request
//    takes the smallest block of its stream and pool that holds it.
//  - Split and coalesce: the remainder of a block is split off when it is at least
//    512 bytes (small pool) or more than 1 MiB (large pool, as PyTorch: smaller tails
//    stay with the block); a freed block merges with free neighbours of its segment.
//  - Retry ladder before out-of-memory: a block from the pool; else a new segment from
//    the arena's unreserved space (best fit); else release every fully free cached
//    segment to the arena and try again; else dlmem::OutOfMemory, saying what was
//    asked, what is live, the peak and the fragmentation.
//  - Per-stream ownership (Note [Streams]): every segment and block belongs to the
//    stream that allocated it and is reused only by that stream. A block that another
//    stream also used (record_stream) and is freed waits, pending, until the caller
//    reports that those streams are idle (process_pending): an asynchronous copy still
//    reading it never sees its memory handed out again.
//  - Statistics as users expect them: Stat{current, peak} of allocated, requested and
//    reserved bytes, of blocks and segments; counts of splits, merges, segment reserves
//    and releases, out-of-memory errors; fragmentation = 1 - largest free block / total
//    free; and a snapshot of every segment and block as JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "plan/plan.h"

namespace dlmem::runtime {

using plan::Stream;

struct Stat {
  uint64_t current = 0;
  uint64_t peak = 0;
  void add(uint64_t n);
  void sub(uint64_t n);
};

struct PoolOptions {
  uint64_t round = 512;                 // allocation granularity (and alignment)
  uint64_t small_limit = 1ull << 20;    // requests up to this come from the small pool
  uint64_t small_segment = 2ull << 20;  // segment size of the small pool
  uint64_t large_split = 1ull << 20;    // large blocks split only when more than this remains
};

struct PoolStats {
  uint64_t capacity = 0;
  Stat allocated;      // bytes of blocks handed out (rounded sizes)
  Stat requested;      // bytes the callers asked for
  Stat reserved;       // bytes of segments carved from the arena
  Stat blocks;         // blocks handed out
  Stat segments;
  uint64_t pending = 0;  // bytes freed but waiting for other streams
  uint64_t allocs = 0, frees = 0, splits = 0, merges = 0;
  uint64_t segment_reserves = 0, segment_releases = 0, cache_flushes = 0, ooms = 0;
  uint64_t free_bytes = 0;     // usable capacity (whole rounding units) - allocated - pending
  uint64_t largest_free = 0;   // largest cached free block or unreserved range
  double fragmentation = 0;    // 1 - largest_free / free_bytes (0 when nothing is free)
};

class PoolAllocator {
 public:
  explicit PoolAllocator(uint64_t capacity, PoolOptions = {});
  PoolAllocator(const PoolAllocator&) = delete;
  PoolAllocator& operator=(const PoolAllocator&) = delete;

  // The offset of a block of at least `bytes` (aligned to PoolOptions::round) owned
  // by `stream`. Throws dlmem::OutOfMemory when the retry ladder fails.
  uint64_t allocate(uint64_t bytes, Stream stream = Stream::compute);
  // As allocate, but returns false instead of throwing (the caller may free memory,
  // e.g. wait for pending blocks, and retry).
  bool try_allocate(uint64_t bytes, Stream stream, uint64_t& offset);
  // Returns a block. Freeing an offset that is not an allocated block is a bug
  // (InternalError).
  void free(uint64_t offset);
  // Note [Streams]: the block at `offset` is also used by work queued on `user`.
  void record_stream(uint64_t offset, Stream user);
  // Pending blocks whose other streams `idle` reports idle become free.
  void process_pending(const std::function<bool(Stream)>& idle);
  // Returns every fully free segment to the arena (PyTorch's empty_cache).
  void release_cached();

  uint64_t capacity() const { return capacity_; }
  // Size of the allocated block at `offset` (rounded), 0 if none.
  uint64_t block_size(uint64_t offset) const;
  PoolStats stats() const;
  // {"capacity", "stats", "segments": [{offset, size, pool, stream, blocks: [...]}],
  //  "unreserved": [{offset, size}]}
  nlohmann::json snapshot() const;

 private:
  struct Block {
    uint64_t size = 0;
    uint64_t requested = 0;
    uint64_t segment = 0;  // offset of its segment
    Stream stream = Stream::compute;
    bool allocated = false;
    bool pending = false;
    uint8_t used_on = 0;   // bit per stream that used it, its own included
  };
  struct Segment {
    uint64_t size = 0;
    bool small = false;
    Stream stream = Stream::compute;
  };
  using FreeKey = std::tuple<int, uint64_t, uint64_t>;  // stream, size, offset

  std::set<FreeKey>& pool_of(bool small) { return small ? small_free_ : large_free_; }
  bool reserve(uint64_t size, bool small, Stream stream);
  void release_segment(uint64_t offset);
  void insert_free(uint64_t offset);
  void make_free(uint64_t offset);  // merges with free neighbours, then pools the block
  void take(uint64_t offset, uint64_t size, uint64_t requested, bool small);
  [[noreturn]] void out_of_memory(uint64_t bytes, uint64_t size, bool small, Stream stream);

  uint64_t capacity_;
  PoolOptions opt_;
  std::map<uint64_t, Block> blocks_;      // every block of every segment, by offset
  std::map<uint64_t, Segment> segments_;  // by offset
  std::set<FreeKey> small_free_, large_free_;
  std::map<uint64_t, uint64_t> unreserved_;                 // offset -> size
  std::set<std::pair<uint64_t, uint64_t>> unreserved_by_size_;  // (size, offset)
  PoolStats stats_;
};

}  // namespace dlmem::runtime
