// The pooled allocator (src/runtime/pool_allocator.h): split and coalesce, best fit,
// size classes, the retry ladder and its out-of-memory message, fragmentation,
// per-stream ownership, the JSON snapshot, and invariants under random traffic.
#include "runtime/pool_allocator.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "util/error.h"

namespace dlmem::runtime {
namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * 1024;

// Invariants read from the snapshot: blocks tile each segment, no two free neighbours
// (coalescing is complete), segments and unreserved ranges tile the usable arena, and
// the statistics agree with the blocks.
void expect_consistent(const PoolAllocator& pool) {
  const nlohmann::json j = pool.snapshot();
  uint64_t reserved = 0, allocated = 0, blocks = 0;
  std::map<uint64_t, uint64_t> ranges;  // offset -> size: segments and unreserved
  for (const auto& seg : j["segments"]) {
    const uint64_t off = seg["offset"], size = seg["size"];
    ranges[off] = size;
    reserved += size;
    uint64_t at = off;
    bool prev_free = false;
    for (const auto& b : seg["blocks"]) {
      EXPECT_EQ(b["offset"].get<uint64_t>(), at) << "blocks do not tile the segment at " << off;
      at += b["size"].get<uint64_t>();
      const bool is_free = b["state"] == "free";
      EXPECT_FALSE(prev_free && is_free) << "two free neighbours at " << b["offset"];
      prev_free = is_free;
      if (b["state"] == "allocated") {
        allocated += b["size"].get<uint64_t>();
        ++blocks;
      }
    }
    EXPECT_EQ(at, off + size);
  }
  for (const auto& r : j["unreserved"]) ranges[r["offset"]] = r["size"];
  uint64_t at = 0;
  for (const auto& [off, size] : ranges) {
    EXPECT_EQ(off, at) << "segments and unreserved ranges do not tile the arena";
    at = off + size;
  }
  EXPECT_EQ(at, pool.capacity() / 512 * 512);
  const PoolStats s = pool.stats();
  EXPECT_EQ(s.reserved.current, reserved);
  EXPECT_EQ(s.allocated.current, allocated);
  EXPECT_EQ(s.blocks.current, blocks);
  EXPECT_LE(s.allocated.peak, s.reserved.peak);
  EXPECT_LE(s.reserved.peak, s.capacity);
}

TEST(PoolAllocator, SplitsAndCoalescesWithNeighbours) {
  PoolAllocator pool(8 * MiB);
  const uint64_t a = pool.allocate(1000);  // small: one 2 MiB segment, split
  const uint64_t b = pool.allocate(3000);
  const uint64_t c = pool.allocate(512);
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 1024u);  // rounded to 512
  EXPECT_EQ(c, 4096u);
  EXPECT_EQ(pool.block_size(b), 3072u);
  PoolStats s = pool.stats();
  EXPECT_EQ(s.splits, 3u);
  EXPECT_EQ(s.reserved.current, 2 * MiB);
  EXPECT_EQ(s.allocated.current, 1024u + 3072u + 512u);
  EXPECT_EQ(s.requested.current, 1000u + 3000u + 512u);
  expect_consistent(pool);

  pool.free(b);  // both neighbours allocated: nothing to merge
  EXPECT_EQ(pool.stats().merges, 0u);
  pool.free(a);  // merges with b's hole
  EXPECT_EQ(pool.stats().merges, 1u);
  pool.free(c);  // merges with [a, b) below and the tail above
  s = pool.stats();
  EXPECT_EQ(s.merges, 3u);
  EXPECT_EQ(s.allocated.current, 0u);
  EXPECT_EQ(s.allocated.peak, 4608u);
  EXPECT_EQ(s.reserved.current, 2 * MiB);  // cached, not returned
  expect_consistent(pool);
  EXPECT_EQ(pool.snapshot()["segments"][0]["blocks"].size(), 1u);
}

TEST(PoolAllocator, BestFitTakesTheSmallestHoleThatHolds) {
  PoolAllocator pool(8 * MiB);
  std::vector<uint64_t> off;
  for (uint64_t kib : {4, 1, 2, 1, 8, 1}) off.push_back(pool.allocate(kib * KiB));
  pool.free(off[0]);  // a 4 KiB hole
  pool.free(off[2]);  // a 2 KiB hole
  pool.free(off[4]);  // an 8 KiB hole
  EXPECT_EQ(pool.allocate(2 * KiB), off[2]);
  EXPECT_EQ(pool.allocate(3 * KiB), off[0]);
  EXPECT_EQ(pool.allocate(5 * KiB), off[4]);
  expect_consistent(pool);
}

TEST(PoolAllocator, LargeRequestsGetExactSegmentsAndKeepSmallTails) {
  PoolAllocator pool(64 * MiB);
  const uint64_t a = pool.allocate(5 * MiB);
  EXPECT_EQ(pool.stats().reserved.current, 5 * MiB);  // no rounding of large segments
  pool.free(a);
  // 4.5 MiB fits the cached 5 MiB block; the 0.5 MiB tail is not worth a split.
  const uint64_t b = pool.allocate(4 * MiB + 512 * KiB);
  EXPECT_EQ(b, a);
  EXPECT_EQ(pool.block_size(b), 5 * MiB);
  EXPECT_EQ(pool.stats().requested.current, 4 * MiB + 512 * KiB);
  EXPECT_EQ(pool.stats().splits, 0u);
  pool.free(b);
  // 3 MiB leaves 2 MiB: split.
  EXPECT_EQ(pool.allocate(3 * MiB), a);
  EXPECT_EQ(pool.stats().splits, 1u);
  // Small requests never take large blocks (size classes).
  const uint64_t s = pool.allocate(100 * KiB);
  EXPECT_EQ(pool.stats().segments.current, 2u);
  EXPECT_EQ(pool.snapshot()["segments"][1]["pool"], "small");
  EXPECT_NE(s, a + 3 * MiB);
  expect_consistent(pool);
}

TEST(PoolAllocator, OutOfMemorySaysWhatWasAskedWhatIsLiveAndTheFragmentation) {
  PoolAllocator pool(8 * MiB);
  std::vector<uint64_t> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(pool.allocate(2 * MiB));  // four exact segments
  EXPECT_EQ(pool.stats().fragmentation, 0.0);
  pool.free(blocks[0]);
  pool.free(blocks[2]);
  PoolStats s = pool.stats();
  EXPECT_EQ(s.free_bytes, 4 * MiB);
  EXPECT_EQ(s.largest_free, 2 * MiB);
  EXPECT_DOUBLE_EQ(s.fragmentation, 0.5);
  // 4 MiB are free, but not 3 MiB in one piece, even after releasing cached segments.
  try {
    pool.allocate(3 * MiB);
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("asked for 3.00 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("capacity 8.00 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("4.00 MiB is allocated in 2 blocks (peak 8.00 MiB)"), std::string::npos) << m;
    EXPECT_NE(m.find("largest free block is 2.00 MiB (fragmentation 50%)"), std::string::npos) << m;
    EXPECT_NE(m.find("--allocator static"), std::string::npos) << m;
  }
  s = pool.stats();
  EXPECT_EQ(s.ooms, 1u);
  EXPECT_EQ(s.cache_flushes, 1u);
  EXPECT_EQ(s.segment_releases, 2u);  // the ladder returned the two free segments
  expect_consistent(pool);
  // Freeing the block between them makes 6 MiB contiguous: the ladder finds it.
  pool.free(blocks[1]);
  EXPECT_EQ(pool.allocate(3 * MiB), 0u);
  expect_consistent(pool);
  // Larger than the whole device.
  EXPECT_THROW(pool.allocate(9 * MiB), OutOfMemory);
}

TEST(PoolAllocator, BlocksBelongToTheirStreamAndWaitForOtherStreams) {
  PoolAllocator pool(16 * MiB);
  const uint64_t a = pool.allocate(64 * KiB, Stream::compute);
  pool.free(a);
  const uint64_t b = pool.allocate(64 * KiB, Stream::d2h);  // not compute's cached block
  EXPECT_GE(b, 2 * MiB);
  EXPECT_EQ(pool.stats().segments.current, 2u);
  EXPECT_EQ(pool.snapshot()["segments"][1]["stream"], "d2h");

  const uint64_t c = pool.allocate(64 * KiB, Stream::compute);
  EXPECT_EQ(c, a);
  pool.record_stream(c, Stream::h2d);  // a copy on h2d still reads it
  pool.free(c);
  EXPECT_EQ(pool.stats().pending, 64 * KiB);
  EXPECT_NE(pool.allocate(64 * KiB, Stream::compute), c);  // not handed out while pending
  pool.process_pending([](Stream s) { return s != Stream::h2d; });
  EXPECT_EQ(pool.stats().pending, 64 * KiB);
  pool.process_pending([](Stream) { return true; });
  EXPECT_EQ(pool.stats().pending, 0u);
  EXPECT_EQ(pool.allocate(64 * KiB, Stream::compute), c);
  expect_consistent(pool);
}

TEST(PoolAllocator, SnapshotIsJsonUsersCanRead) {
  PoolAllocator pool(32 * MiB);
  const uint64_t a = pool.allocate(10);
  pool.allocate(3 * MiB);
  pool.free(a);
  const nlohmann::json j = nlohmann::json::parse(pool.snapshot().dump());
  EXPECT_EQ(j["capacity"], 32 * MiB);
  EXPECT_EQ(j["stats"]["allocated"]["current"], 3 * MiB);
  EXPECT_EQ(j["stats"]["allocated"]["peak"], 3 * MiB + 512);
  EXPECT_EQ(j["stats"]["requested"]["peak"], 3 * MiB + 10);
  EXPECT_EQ(j["stats"]["reserved"]["current"], 5 * MiB);
  ASSERT_EQ(j["segments"].size(), 2u);
  EXPECT_EQ(j["segments"][0]["pool"], "small");
  EXPECT_EQ(j["segments"][0]["blocks"][0]["state"], "free");
  EXPECT_EQ(j["segments"][1]["blocks"][0]["state"], "allocated");
  EXPECT_EQ(j["segments"][1]["blocks"][0]["requested"], 3 * MiB);
  EXPECT_EQ(j["unreserved"][0]["offset"], 5 * MiB);
  expect_consistent(pool);
}

TEST(PoolAllocator, RandomTrafficKeepsBlocksDisjointAndStatisticsExact) {
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    std::mt19937 gen(seed);
    PoolAllocator pool(48 * MiB + 100);
    std::map<uint64_t, uint64_t> live;  // offset -> requested
    uint64_t requested = 0, ooms = 0;
    for (int step = 0; step < 3000; ++step) {
      if (!live.empty() && gen() % 5 < 2) {
        auto it = std::next(live.begin(), static_cast<long>(gen() % live.size()));
        requested -= it->second;
        pool.free(it->first);
        live.erase(it);
        continue;
      }
      const uint64_t bytes = gen() % 4 == 0 ? 1 + gen() % (6 * MiB) : 1 + gen() % (200 * KiB);
      uint64_t off = 0;
      if (!pool.try_allocate(bytes, Stream::compute, off)) {
        ++ooms;
        continue;
      }
      EXPECT_EQ(off % 512, 0u);
      EXPECT_GE(pool.block_size(off), bytes);
      // Disjoint from its neighbours among the live blocks.
      auto next = live.lower_bound(off);
      if (next != live.end()) {
        EXPECT_LE(off + pool.block_size(off), next->first);
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        EXPECT_LE(prev->first + pool.block_size(prev->first), off);
      }
      live[off] = bytes;
      requested += bytes;
      if (step % 500 == 0) expect_consistent(pool);
    }
    EXPECT_EQ(pool.stats().requested.current, requested);
    EXPECT_GT(pool.stats().merges, 0u);
    EXPECT_GT(pool.stats().splits, 0u);
    EXPECT_GT(ooms, 0u);  // the arena was under pressure
    expect_consistent(pool);
    for (const auto& [off, bytes] : live) pool.free(off);
    pool.release_cached();
    EXPECT_EQ(pool.stats().reserved.current, 0u);
    EXPECT_EQ(pool.stats().fragmentation, 0.0);
    expect_consistent(pool);
  }
}

}  // namespace
}  // namespace dlmem::runtime
