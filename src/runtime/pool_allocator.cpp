#include "runtime/pool_allocator.h"

#include <algorithm>

#include "util/error.h"
#include "util/format.h"

namespace dlmem::runtime {

void Stat::add(uint64_t n) {
  current += n;
  peak = std::max(peak, current);
}
void Stat::sub(uint64_t n) {
  DLMEM_CHECK(current >= n, "statistic would go negative: ", current, " - ", n);
  current -= n;
}

namespace {
uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }
uint8_t bit(Stream s) { return static_cast<uint8_t>(1u << static_cast<unsigned>(s)); }
}  // namespace

PoolAllocator::PoolAllocator(uint64_t capacity, PoolOptions opt) : capacity_(capacity), opt_(opt) {
  DLMEM_CHECK(opt_.round > 0 && opt_.small_segment >= opt_.small_limit, "bad pool options");
  // The arena is usable in whole rounding units.
  const uint64_t usable = capacity / opt_.round * opt_.round;
  if (usable > 0) {
    unreserved_[0] = usable;
    unreserved_by_size_.insert({usable, 0});
  }
  stats_.capacity = capacity;
}

bool PoolAllocator::reserve(uint64_t size, bool small, Stream stream) {
  auto it = unreserved_by_size_.lower_bound({size, 0});
  if (it == unreserved_by_size_.end()) return false;
  const auto [range, off] = *it;
  unreserved_by_size_.erase(it);
  unreserved_.erase(off);
  if (range > size) {
    unreserved_[off + size] = range - size;
    unreserved_by_size_.insert({range - size, off + size});
  }
  segments_[off] = Segment{size, small, stream};
  Block& b = blocks_[off];
  b = Block{};
  b.size = size;
  b.segment = off;
  b.stream = stream;
  insert_free(off);
  stats_.reserved.add(size);
  stats_.segments.add(1);
  stats_.segment_reserves++;
  return true;
}

void PoolAllocator::release_segment(uint64_t off) {
  auto seg = segments_.find(off);
  DLMEM_CHECK(seg != segments_.end(), "no segment at ", off);
  const uint64_t size = seg->second.size;
  const Block& b = blocks_.at(off);
  DLMEM_CHECK(b.size == size && !b.allocated && !b.pending, "segment at ", off, " is not free");
  pool_of(seg->second.small).erase({static_cast<int>(b.stream), b.size, off});
  blocks_.erase(off);
  segments_.erase(seg);
  stats_.reserved.sub(size);
  stats_.segments.sub(1);
  stats_.segment_releases++;
  // Back to the unreserved ranges, coalesced with its neighbours.
  uint64_t start = off, len = size;
  auto next = unreserved_.lower_bound(off);
  if (next != unreserved_.end() && next->first == off + size) {
    len += next->second;
    unreserved_by_size_.erase({next->second, next->first});
    next = unreserved_.erase(next);
  }
  if (next != unreserved_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      start = prev->first;
      len += prev->second;
      unreserved_by_size_.erase({prev->second, prev->first});
      unreserved_.erase(prev);
    }
  }
  unreserved_[start] = len;
  unreserved_by_size_.insert({len, start});
}

void PoolAllocator::release_cached() {
  std::vector<uint64_t> empty;
  for (const auto& [off, seg] : segments_) {
    const Block& b = blocks_.at(off);
    if (b.size == seg.size && !b.allocated && !b.pending) empty.push_back(off);
  }
  for (uint64_t off : empty) release_segment(off);
}

void PoolAllocator::insert_free(uint64_t off) {
  const Block& b = blocks_.at(off);
  pool_of(segments_.at(b.segment).small).insert({static_cast<int>(b.stream), b.size, off});
}

void PoolAllocator::take(uint64_t off, uint64_t size, uint64_t requested, bool small) {
  Block& b = blocks_.at(off);
  pool_of(small).erase({static_cast<int>(b.stream), b.size, off});
  const uint64_t rest = b.size - size;
  if (small ? rest >= opt_.round : rest > opt_.large_split) {
    Block& tail = blocks_[off + size];
    tail = Block{};
    tail.size = rest;
    tail.segment = b.segment;
    tail.stream = b.stream;
    b.size = size;
    insert_free(off + size);
    stats_.splits++;
  }
  b.allocated = true;
  b.requested = requested;
  b.used_on = bit(b.stream);
  stats_.allocated.add(b.size);
  stats_.requested.add(requested);
  stats_.blocks.add(1);
  stats_.allocs++;
}

bool PoolAllocator::try_allocate(uint64_t bytes, Stream stream, uint64_t& offset) {
  const uint64_t size = round_up(std::max<uint64_t>(bytes, 1), opt_.round);
  const bool small = size <= opt_.small_limit;
  auto find = [&]() -> bool {
    std::set<FreeKey>& pool = pool_of(small);
    auto it = pool.lower_bound({static_cast<int>(stream), size, 0});
    if (it == pool.end() || std::get<0>(*it) != static_cast<int>(stream)) return false;
    offset = std::get<2>(*it);
    return true;
  };
  auto grow = [&] {
    // Small segments are 2 MiB; an arena with less room left still serves the request
    // from a segment of its own size.
    return (small && reserve(opt_.small_segment, true, stream)) || reserve(size, small, stream);
  };
  bool ok = find() || (grow() && find());
  if (!ok) {
    stats_.cache_flushes++;
    release_cached();
    ok = grow() && find();
  }
  if (!ok) return false;
  take(offset, size, bytes, small);
  return true;
}

uint64_t PoolAllocator::allocate(uint64_t bytes, Stream stream) {
  uint64_t off = 0;
  if (!try_allocate(bytes, stream, off)) {
    const uint64_t size = round_up(std::max<uint64_t>(bytes, 1), opt_.round);
    out_of_memory(bytes, size, size <= opt_.small_limit, stream);
  }
  return off;
}

void PoolAllocator::out_of_memory(uint64_t bytes, uint64_t size, bool small, Stream stream) {
  stats_.ooms++;
  const PoolStats s = stats();
  throw OutOfMemory("out of memory in the device pool: asked for ", human_bytes(bytes), " (", human_bytes(size),
                    " rounded, ", small ? "small" : "large", " pool, ", plan::stream_name(stream),
                    " stream); capacity ", human_bytes(capacity_), ", of which ", human_bytes(s.allocated.current),
                    " is allocated in ", s.blocks.current, " blocks (peak ", human_bytes(s.allocated.peak), "), ",
                    human_bytes(s.pending), " waits for other streams, ", human_bytes(s.free_bytes),
                    " is free but the largest free block is ", human_bytes(s.largest_free), " (fragmentation ",
                    static_cast<int>(100 * s.fragmentation + 0.5),
                    "%); give the device more memory (--budget) or use the static allocator (--allocator static), "
                    "whose offsets are planned ahead and fit the plan's arena");
}

void PoolAllocator::free(uint64_t off) {
  auto it = blocks_.find(off);
  DLMEM_CHECK(it != blocks_.end() && it->second.allocated, "freeing offset ", off, " which is not an allocated block");
  Block& b = it->second;
  b.allocated = false;
  stats_.allocated.sub(b.size);
  stats_.requested.sub(b.requested);
  stats_.blocks.sub(1);
  stats_.frees++;
  b.requested = 0;
  if (b.used_on & ~bit(b.stream)) {
    b.pending = true;  // Note [Streams]: wait until the other streams are done with it
    stats_.pending += b.size;
    return;
  }
  make_free(off);
}

void PoolAllocator::make_free(uint64_t off) {
  Block& b = blocks_.at(off);
  b.pending = false;
  b.used_on = 0;
  auto mergeable = [&](std::map<uint64_t, Block>::iterator n) {
    return n != blocks_.end() && n->second.segment == b.segment && !n->second.allocated && !n->second.pending;
  };
  const bool small = segments_.at(b.segment).small;
  auto it = blocks_.find(off);
  // With the next block.
  auto next = std::next(it);
  if (mergeable(next)) {
    pool_of(small).erase({static_cast<int>(next->second.stream), next->second.size, next->first});
    b.size += next->second.size;
    blocks_.erase(next);
    stats_.merges++;
  }
  // With the previous block.
  if (it != blocks_.begin()) {
    auto prev = std::prev(it);
    if (mergeable(prev)) {
      pool_of(small).erase({static_cast<int>(prev->second.stream), prev->second.size, prev->first});
      prev->second.size += b.size;
      blocks_.erase(it);
      stats_.merges++;
      insert_free(prev->first);
      return;
    }
  }
  insert_free(off);
}

void PoolAllocator::record_stream(uint64_t off, Stream user) {
  auto it = blocks_.find(off);
  DLMEM_CHECK(it != blocks_.end() && it->second.allocated, "record_stream on offset ", off, " which is not allocated");
  it->second.used_on |= bit(user);
}

void PoolAllocator::process_pending(const std::function<bool(Stream)>& idle) {
  if (stats_.pending == 0) return;
  std::vector<uint64_t> ready;
  for (auto& [off, b] : blocks_) {
    if (!b.pending) continue;
    bool done = true;
    for (Stream s : {Stream::compute, Stream::d2h, Stream::h2d})
      if (s != b.stream && (b.used_on & bit(s)) && !idle(s)) done = false;
    if (done) ready.push_back(off);
  }
  for (uint64_t off : ready) {
    stats_.pending -= blocks_.at(off).size;
    make_free(off);
  }
}

uint64_t PoolAllocator::block_size(uint64_t off) const {
  auto it = blocks_.find(off);
  return it != blocks_.end() && it->second.allocated ? it->second.size : 0;
}

PoolStats PoolAllocator::stats() const {
  PoolStats s = stats_;
  s.free_bytes = capacity_ / opt_.round * opt_.round - s.allocated.current - s.pending;
  s.largest_free = 0;
  for (const auto* pool : {&small_free_, &large_free_})
    for (const FreeKey& k : *pool) s.largest_free = std::max(s.largest_free, std::get<1>(k));
  if (!unreserved_by_size_.empty()) s.largest_free = std::max(s.largest_free, unreserved_by_size_.rbegin()->first);
  s.fragmentation = s.free_bytes ? 1.0 - static_cast<double>(s.largest_free) / static_cast<double>(s.free_bytes) : 0.0;
  return s;
}

namespace {
nlohmann::json stat_json(const Stat& s) { return {{"current", s.current}, {"peak", s.peak}}; }
}  // namespace

nlohmann::json PoolAllocator::snapshot() const {
  const PoolStats s = stats();
  nlohmann::json j;
  j["capacity"] = capacity_;
  j["stats"] = {{"allocated", stat_json(s.allocated)},
                {"requested", stat_json(s.requested)},
                {"reserved", stat_json(s.reserved)},
                {"blocks", stat_json(s.blocks)},
                {"segments", stat_json(s.segments)},
                {"pending", s.pending},
                {"allocs", s.allocs},
                {"frees", s.frees},
                {"splits", s.splits},
                {"merges", s.merges},
                {"segment_reserves", s.segment_reserves},
                {"segment_releases", s.segment_releases},
                {"cache_flushes", s.cache_flushes},
                {"ooms", s.ooms},
                {"free_bytes", s.free_bytes},
                {"largest_free", s.largest_free},
                {"fragmentation", s.fragmentation}};
  nlohmann::json segs = nlohmann::json::array();
  for (const auto& [off, seg] : segments_) {
    nlohmann::json blocks = nlohmann::json::array();
    for (auto it = blocks_.find(off); it != blocks_.end() && it->second.segment == off; ++it) {
      const Block& b = it->second;
      nlohmann::json used = nlohmann::json::array();
      for (Stream st : {Stream::compute, Stream::d2h, Stream::h2d})
        if (b.used_on & bit(st)) used.push_back(plan::stream_name(st));
      blocks.push_back({{"offset", it->first},
                        {"size", b.size},
                        {"requested", b.requested},
                        {"state", b.allocated ? "allocated" : b.pending ? "pending" : "free"},
                        {"used_on", std::move(used)}});
    }
    segs.push_back({{"offset", off},
                    {"size", seg.size},
                    {"pool", seg.small ? "small" : "large"},
                    {"stream", plan::stream_name(seg.stream)},
                    {"blocks", std::move(blocks)}});
  }
  j["segments"] = std::move(segs);
  nlohmann::json free_ranges = nlohmann::json::array();
  for (const auto& [off, size] : unreserved_) free_ranges.push_back({{"offset", off}, {"size", size}});
  j["unreserved"] = std::move(free_ranges);
  return j;
}

}  // namespace dlmem::runtime
