#include "plan/placement.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <optional>
#include <numeric>
#include <random>
#include <unordered_set>

#include "util/error.h"

namespace dlmem::plan {

std::string_view place_algo_name(PlaceAlgo a) {
  switch (a) {
    case PlaceAlgo::greedy_by_size: return "greedy-by-size";
    case PlaceAlgo::greedy_by_breadth: return "greedy-by-breadth";
    case PlaceAlgo::first_fit: return "first-fit";
    case PlaceAlgo::hill_climb: return "hill-climb";
    case PlaceAlgo::best: return "best";
    case PlaceAlgo::exact: return "exact";
  }
  return "?";
}

uint64_t max_live(const std::vector<Interval>& iv) {
  std::vector<std::pair<int, int64_t>> ev;
  ev.reserve(iv.size() * 2);
  for (const Interval& i : iv) {
    if (i.begin >= i.end || i.bytes == 0) continue;
    ev.emplace_back(i.begin, static_cast<int64_t>(align_up(i.bytes)));
    ev.emplace_back(i.end, -static_cast<int64_t>(align_up(i.bytes)));
  }
  // At equal positions, ends (negative) come first: [a, b) and [b, c) do not overlap.
  std::sort(ev.begin(), ev.end());
  int64_t cur = 0, best = 0;
  for (auto& e : ev) {
    cur += e.second;
    best = std::max(best, cur);
  }
  return static_cast<uint64_t>(best);
}

namespace {

bool occupies(const Interval& i) { return i.begin < i.end && i.bytes > 0; }

// A placed interval: addresses [off, top), program positions [begin, end).
struct Slot {
  uint64_t off;
  uint64_t top;
  int begin;
  int end;
};

// Places the intervals `order` (all occupying) one after the other above `base`.
// The placed ones are kept in a vector sorted by offset; for each new interval the
// gaps between placed intervals that overlap it in time are the candidates: best fit
// takes the smallest gap that holds it (TFLite's greedy-by-size rule), first fit the
// lowest. Without a gap it goes on top of the highest overlapping one.
//
// Cost: O(n) per interval (one pass over the placed ones, one insertion), O(n^2) in
// all -- but intervals that span the whole program never enter here (see
// place_intervals), and with `drop_expired` (intervals come in order of begin) placed
// intervals that ended before the current one begins are dropped for good, so the
// pass is over the live ones only.
//
// Returns the work done: the number of placed intervals looked at.
uint64_t place_in_order(const std::vector<Interval>& iv, const std::vector<uint32_t>& order, bool best_fit,
                        bool drop_expired, uint64_t base, Placement& pl) {
  std::vector<Slot> placed;
  placed.reserve(order.size());
  uint64_t steps = 0;
  for (uint32_t idx : order) {
    steps += placed.size();
    const Interval& cur = iv[idx];
    const uint64_t need = align_up(cur.bytes);
    uint64_t prev_top = base;
    uint64_t best_off = UINT64_MAX, best_gap = UINT64_MAX;
    if (drop_expired) {
      size_t keep = 0;
      for (size_t k = 0; k < placed.size(); ++k) {
        const Slot s = placed[k];
        if (s.end <= cur.begin) continue;  // expired: every later interval begins later
        placed[keep++] = s;
        if (s.begin >= cur.end) continue;  // not live at the same time
        const uint64_t gap = s.off > prev_top ? s.off - prev_top : 0;
        if (gap >= need && (best_off == UINT64_MAX || (best_fit && gap < best_gap))) {
          best_gap = gap;
          best_off = prev_top;
        }
        prev_top = std::max(prev_top, s.top);
      }
      placed.resize(keep);
    } else {
      // The hot loop of greedy placement, written without branches on the data (the
      // overlaps are unpredictable; conditional moves are not).
      for (const Slot& s : placed) {
        const bool live = s.begin < cur.end && cur.begin < s.end;
        const uint64_t gap = s.off > prev_top ? s.off - prev_top : 0;
        const bool better = live && gap >= need && (best_fit ? gap < best_gap : best_off == UINT64_MAX);
        best_gap = better ? gap : best_gap;
        best_off = better ? prev_top : best_off;
        prev_top = live && s.top > prev_top ? s.top : prev_top;
      }
    }
    if (best_off == UINT64_MAX) best_off = prev_top;
    pl.offsets[idx] = best_off;
    pl.size = std::max(pl.size, best_off + need);
    const Slot slot{best_off, best_off + need, cur.begin, cur.end};
    auto pos = std::upper_bound(placed.begin(), placed.end(), best_off,
                                [](uint64_t off, const Slot& s) { return off < s.off; });
    placed.insert(pos, slot);
  }
  return steps;
}

std::vector<uint32_t> by_size(const std::vector<Interval>& iv, const std::vector<uint32_t>& items) {
  std::vector<uint32_t> order = items;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (iv[a].bytes != iv[b].bytes) return iv[a].bytes > iv[b].bytes;
    return iv[a].begin < iv[b].begin;
  });
  return order;
}

// Greedy by breadth (Pisarchyk & Lee 2020, offset calculation): visit positions from
// the one with the most live bytes down, and at each place its not-yet-placed
// intervals, largest first. Equivalently: each interval is taken at the widest
// position inside its lifetime, found with a sparse table of minimum ranks (O(1) per
// interval after O(T log T) preparation, instead of a walk over its lifetime).
std::vector<uint32_t> by_breadth(const std::vector<Interval>& iv, const std::vector<uint32_t>& items) {
  int horizon = 0;
  for (uint32_t i : items) horizon = std::max(horizon, iv[i].end);
  const size_t T = static_cast<size_t>(horizon);
  std::vector<int64_t> delta(T + 1, 0);
  for (uint32_t i : items) {
    delta[static_cast<size_t>(iv[i].begin)] += static_cast<int64_t>(align_up(iv[i].bytes));
    delta[static_cast<size_t>(iv[i].end)] -= static_cast<int64_t>(align_up(iv[i].bytes));
  }
  std::vector<int64_t> breadth(T, 0);
  int64_t cur = 0;
  for (size_t t = 0; t < T; ++t) breadth[t] = cur += delta[t];
  // rank[t]: position of t when positions are sorted by breadth, widest first (ties:
  // earlier position first). Smaller rank = wider.
  std::vector<uint32_t> steps(T);
  std::iota(steps.begin(), steps.end(), 0u);
  std::stable_sort(steps.begin(), steps.end(), [&](uint32_t a, uint32_t b) { return breadth[a] > breadth[b]; });
  std::vector<uint32_t> rank(T);
  for (size_t k = 0; k < T; ++k) rank[steps[k]] = static_cast<uint32_t>(k);
  // Sparse table of minimum rank over [t, t + 2^j).
  std::vector<std::vector<uint32_t>> table{rank};
  for (size_t j = 1; (size_t{1} << j) <= T; ++j) {
    const std::vector<uint32_t>& prev = table.back();
    const size_t half = size_t{1} << (j - 1);
    std::vector<uint32_t> next(T - (size_t{1} << j) + 1);
    for (size_t t = 0; t < next.size(); ++t) next[t] = std::min(prev[t], prev[t + half]);
    table.push_back(std::move(next));
  }
  auto widest = [&](int b, int e) {  // min rank in [b, e), e > b
    const size_t len = static_cast<size_t>(e - b);
    const size_t j = static_cast<size_t>(std::bit_width(len) - 1);
    return std::min(table[j][static_cast<size_t>(b)], table[j][static_cast<size_t>(e) - (size_t{1} << j)]);
  };
  // Order: by the rank of the widest position in the lifetime, then largest first.
  std::vector<uint32_t> order = by_size(iv, items);
  std::vector<uint32_t> at(iv.size(), 0);
  for (uint32_t i : items) at[i] = widest(iv[i].begin, iv[i].end);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return at[a] < at[b]; });
  return order;
}

std::vector<uint32_t> by_time(const std::vector<Interval>& iv, const std::vector<uint32_t>& items) {
  std::vector<uint32_t> order = items;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (iv[a].begin != iv[b].begin) return iv[a].begin < iv[b].begin;
    return iv[a].bytes > iv[b].bytes;
  });
  return order;
}

// Intervals live over the whole program overlap every other one: in some optimal
// placement they sit stacked at the bottom (take any placement, cut their address
// bands out -- nothing else can use those addresses -- and put them underneath), so
// they are stacked first, largest first, and the heuristics place the rest above.
struct Problem {
  Placement stacked;           // offsets of the spanning intervals, size = their total
  std::vector<uint32_t> rest;  // the others (occupying only)
};

Problem split_spanning(const std::vector<Interval>& iv) {
  DLMEM_CHECK(iv.size() < UINT32_MAX, "too many intervals: ", iv.size());
  Problem pr;
  pr.stacked.offsets.assign(iv.size(), 0);
  int lo = INT32_MAX, hi = INT32_MIN;
  for (const Interval& i : iv)
    if (occupies(i)) {
      lo = std::min(lo, i.begin);
      hi = std::max(hi, i.end);
    }
  std::vector<uint32_t> spanning;
  for (uint32_t k = 0; k < iv.size(); ++k) {
    if (!occupies(iv[k])) continue;
    (iv[k].begin <= lo && iv[k].end >= hi ? spanning : pr.rest).push_back(k);
  }
  for (uint32_t k : by_size(iv, spanning)) {
    pr.stacked.offsets[k] = pr.stacked.size;
    pr.stacked.size += align_up(iv[k].bytes);
  }
  return pr;
}

Placement place_one(const std::vector<Interval>& iv, const Problem& pr, PlaceAlgo algo, uint64_t* steps = nullptr) {
  Placement pl = pr.stacked;
  pl.algo = algo;
  const uint64_t base = pr.stacked.size;
  uint64_t work = 0;
  switch (algo) {
    case PlaceAlgo::greedy_by_size: work = place_in_order(iv, by_size(iv, pr.rest), true, false, base, pl); break;
    case PlaceAlgo::greedy_by_breadth: work = place_in_order(iv, by_breadth(iv, pr.rest), true, false, base, pl); break;
    case PlaceAlgo::first_fit: work = place_in_order(iv, by_time(iv, pr.rest), false, true, base, pl); break;
    case PlaceAlgo::hill_climb:
    case PlaceAlgo::exact:
    case PlaceAlgo::best: DLMEM_CHECK(false, "place_one(", place_algo_name(algo), ")");
  }
  if (steps) *steps = work;
  return pl;
}

// Work budget of the hill climb, in placed intervals looked at (about 20-40 ms). A
// count, not a clock: the same graph always gets the same plan.
constexpr uint64_t kClimbSteps = 8'000'000;

// Hill climbing on the placement order, as TVM's unified static memory planner does
// after its greedy passes (apache/tvm src/tir/usmp/algo/hill_climb.cc): swap two
// intervals in the order, place again best-fit, keep the swap when the arena is no
// larger (equal moves let it drift across plateaus), until the arena reaches the
// max-live bound or the work budget is spent. Only for problems small enough that the
// budget buys at least 64 placements; deterministic (a fixed-seed mt19937).
// `start` is the placement of `order` (best fit), which took `used` steps.
Placement hill_climb(const std::vector<Interval>& iv, const Problem& pr, std::vector<uint32_t> order,
                     Placement start, uint64_t used, uint64_t lower) {
  const uint64_t base = pr.stacked.size;
  Placement best = std::move(start);
  best.algo = PlaceAlgo::hill_climb;
  const size_t n = order.size();
  if (n < 2 || used * 32 > kClimbSteps) return best;
  std::mt19937 gen(0x5eed);
  Placement cand;
  while (best.size > lower && used < kClimbSteps) {
    const size_t i = gen() % n, j = gen() % n;
    if (i == j) continue;
    std::swap(order[i], order[j]);
    cand = pr.stacked;
    used += place_in_order(iv, order, true, false, base, cand) + n;
    if (cand.size <= best.size) {
      std::swap(best.offsets, cand.offsets);
      best.size = cand.size;
    } else {
      std::swap(order[i], order[j]);
    }
  }
  return best;
}

}  // namespace

Placement place_intervals(const std::vector<Interval>& iv, PlaceAlgo algo) {
  if (algo == PlaceAlgo::exact) return place_exact(iv, place_intervals(iv, PlaceAlgo::best)).placement;
  const Problem pr = split_spanning(iv);
  if (algo != PlaceAlgo::best && algo != PlaceAlgo::hill_climb) return place_one(iv, pr, algo);
  // The climb starts from the better of the two best-fit greedy orders.
  uint64_t size_steps = 0, breadth_steps = 0;
  Placement by_size_pl = place_one(iv, pr, PlaceAlgo::greedy_by_size, &size_steps);
  Placement by_breadth_pl = place_one(iv, pr, PlaceAlgo::greedy_by_breadth, &breadth_steps);
  const bool size_wins = by_size_pl.size <= by_breadth_pl.size;
  Placement greedy = std::move(size_wins ? by_size_pl : by_breadth_pl);
  const uint64_t lower = max_live(iv);
  auto climb = [&] {
    return hill_climb(iv, pr, size_wins ? by_size(iv, pr.rest) : by_breadth(iv, pr.rest), greedy,
                      size_wins ? size_steps : breadth_steps, lower);
  };
  if (algo == PlaceAlgo::hill_climb) return climb();
  // Best: the smallest of the three heuristics, improved by the climb when it can.
  Placement best = greedy;
  Placement ff = place_one(iv, pr, PlaceAlgo::first_fit);
  if (ff.size < best.size) best = std::move(ff);
  if (best.size > lower) {
    Placement climbed = climb();
    if (climbed.size < best.size) best = std::move(climbed);
  }
  return best;
}

// ---------------------------------------------------------------- exact placement

namespace {

// The search of Note [Exact placement], in units of kAlignment over the intervals that
// do not span the whole program (those are stacked below: Problem). Time is cut into
// sections at every begin and end; `sky_[s]` is the top of the highest placed buffer
// over section s (the skyline), `rem_[s]` the units still to place there.
class ExactSearch {
 public:
  ExactSearch(const std::vector<Interval>& iv, const Problem& pr, const ExactOptions& o)
      : items_(pr.rest), opts_(o), t0_(std::chrono::steady_clock::now()) {
    const size_t n = items_.size();
    size_.resize(n);
    for (size_t k = 0; k < n; ++k) size_[k] = align_up(iv[items_[k]].bytes) / kAlignment;
    std::vector<int> pts;
    for (uint32_t i : items_) {
      pts.push_back(iv[i].begin);
      pts.push_back(iv[i].end);
    }
    std::sort(pts.begin(), pts.end());
    pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
    lo_.resize(n);
    hi_.resize(n);
    for (size_t k = 0; k < n; ++k) {
      lo_[k] = static_cast<int>(std::lower_bound(pts.begin(), pts.end(), iv[items_[k]].begin) - pts.begin());
      hi_[k] = static_cast<int>(std::lower_bound(pts.begin(), pts.end(), iv[items_[k]].end) - pts.begin());
    }
    const size_t sections = pts.empty() ? 0 : pts.size() - 1;
    rem_.assign(sections, 0);
    for (size_t k = 0; k < n; ++k)
      for (int t = lo_[k]; t < hi_[k]; ++t) rem_[static_cast<size_t>(t)] += size_[k];
    sky_.assign(sections, 0);
    lowest_.assign(sections, 0);
    placed_.assign(n, false);
    off_.assign(n, 0);
  }

  // A placement of height <= W units (of the items), if the search finds one within
  // `seconds` more (and the node limit). `shuffle` != 0: a restart that orders the
  // children after the first preference by a hash seeded with it (the search is then
  // not complete within the node budget `nodes`, only a try).
  std::optional<std::vector<uint64_t>> find(uint64_t W, double seconds, uint64_t shuffle = 0, uint64_t nodes = 0) {
    shuffle_ = shuffle;
    restart_nodes_ = nodes ? nodes_ + nodes : 0;
    W_ = W;
    deadline_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count() + seconds;
    found_.reset();
    stopped_ = false;
    failed_.clear();
    dfs(0, 0);
    return found_;
  }
  bool stopped() const { return stopped_; }
  bool stopped_by_nodes() const { return by_nodes_; }
  uint64_t nodes() const { return nodes_; }
  size_t size() const { return items_.size(); }
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  uint64_t floor_of(size_t k) const {
    uint64_t f = 0;
    for (int t = lo_[k]; t < hi_[k]; ++t) f = std::max(f, sky_[static_cast<size_t>(t)]);
    return f;
  }

  bool out_of_limits() {
    if (stopped_) return true;
    if (opts_.node_limit && nodes_ >= opts_.node_limit) return stopped_ = by_nodes_ = true;
    if (restart_nodes_ && nodes_ >= restart_nodes_) return stopped_ = true;
    if ((nodes_ & 255) == 0 && elapsed() > deadline_) return stopped_ = true;
    return false;
  }

  // Returns true when a placement within W_ was found (the search then unwinds).
  // `level`: the height being filled; no buffer still to place goes below it.
  bool dfs(size_t placed, uint64_t level) {
    if (placed == items_.size()) {
      ++nodes_;
      found_ = off_;
      return true;
    }
    // The waste children are a loop in this frame, not a recursion (a unit at a time:
    // a deep slack would overflow the stack), undone when it returns.
    std::vector<std::pair<size_t, uint64_t>> raised;
    std::vector<std::pair<uint64_t, uint64_t>> seen;
    bool ok = false;
    for (;;) {
      ++nodes_;
      if (out_of_limits()) break;
      // A state (what is placed, the skyline where buffers remain, the level) that
      // failed once fails again: two 64-bit hashes of it.
      const std::pair<uint64_t, uint64_t> key = state_key(level);
      if (failed_.count(key)) break;
      seen.push_back(key);
      size_t low = 0;
      uint64_t h = 0;
      const Step st = expand(placed, level, low, h);
      if (st == Step::found) {
        ok = true;
        break;
      }
      if (st == Step::pruned || stopped_) break;
      // Waste: nothing rests at h over `low`; it rises by one unit.
      raised.emplace_back(low, sky_[low]);
      sky_[low] = h + 1;
      level = h;
    }
    for (auto it = raised.rbegin(); it != raised.rend(); ++it) sky_[it->first] = it->second;
    if (!ok && !stopped_)
      for (const auto& k : seen)
        if (failed_.size() < kMemo) failed_.insert(k);
    return ok;
  }

  enum class Step : uint8_t { found, pruned, waste };

  static constexpr size_t kMemo = 4'000'000;

  std::pair<uint64_t, uint64_t> state_key(uint64_t level) const {
    uint64_t a = 0x9e3779b97f4a7c15ull ^ level, b = 0xc2b2ae3d27d4eb4full + level;
    auto mix = [](uint64_t h, uint64_t v, uint64_t m) {
      h ^= v + m + (h << 6) + (h >> 2);
      return h * 0xff51afd7ed558ccdull;
    };
    for (size_t k = 0; k < placed_.size(); ++k)
      if (placed_[k]) a = mix(a, k, 0x1234567), b = mix(b, k * 31 + 7, 0x89abcdef);
    for (size_t t = 0; t < rem_.size(); ++t)
      if (rem_[t]) a = mix(a, sky_[t] * 1315423911u + t, 0x55), b = mix(b, sky_[t] ^ (t << 32), 0xaa);
    return {a, b};
  }

  // One node: the bounds, then each buffer that can rest at the lowest section (its
  // subtree searched); `waste` when none led to a placement and the section may waste
  // a unit (`low`, `h` say where).
  Step expand(size_t placed, uint64_t level, size_t& low_out, uint64_t& h_out) {
    // Bound (2), with what is still to place at section t starting no lower than the
    // lowest that any of them can rest (a buffer rests on the skyline over its whole
    // lifetime: a step to its left raises it); and the lowest section still to fill
    // (the leftmost of them).
    std::fill(lowest_.begin(), lowest_.end(), UINT64_MAX);
    for (size_t k = 0; k < items_.size(); ++k) {
      if (placed_[k]) continue;
      const uint64_t f = std::max(floor_of(k), level);
      if (f + size_[k] > W_) return Step::pruned;  // bound (1): it only rises from here
      for (int t = lo_[k]; t < hi_[k]; ++t) lowest_[static_cast<size_t>(t)] = std::min(lowest_[static_cast<size_t>(t)], f);
    }
    size_t low = SIZE_MAX;
    uint64_t h = UINT64_MAX;
    for (size_t t = 0; t < rem_.size(); ++t) {
      if (!rem_[t]) continue;
      if (lowest_[t] + rem_[t] > W_) return Step::pruned;
      const uint64_t f = std::max(sky_[t], level);
      if (f < h) h = f, low = t;
    }
    DLMEM_CHECK(low != SIZE_MAX, "exact placement: buffers left but no section to fill");
    // Either a buffer rests at h over section `low` (it covers it, and the skyline over
    // its whole lifetime is at most h), or that section wastes a unit at h.
    std::vector<size_t> kids;
    for (size_t k = 0; k < items_.size(); ++k) {
      if (placed_[k] || lo_[k] > static_cast<int>(low) || hi_[k] <= static_cast<int>(low)) continue;
      if (h + size_[k] > W_) return Step::pruned;  // bound (1): it must cover `low`, at h or above
      if (floor_of(k) > h) continue;
      kids.push_back(k);
    }
    // The run of sections at height h from `low`: a buffer that ends where it ends
    // leaves no new step in the skyline; try those first, then the longest, largest.
    size_t run_end = low;
    while (run_end < rem_.size() && rem_[run_end] && std::max(sky_[run_end], level) == h) ++run_end;
    std::sort(kids.begin(), kids.end(), [&](size_t a, size_t b) {
      const bool fa = static_cast<size_t>(hi_[a]) == run_end, fb = static_cast<size_t>(hi_[b]) == run_end;
      if (fa != fb) return fa;
      if (shuffle_) return jitter(a) < jitter(b);  // a restart: another order among the rest
      const int la = hi_[a] - lo_[a], lb = hi_[b] - lo_[b];
      if (la != lb) return la > lb;
      return size_[a] != size_[b] ? size_[a] > size_[b] : a < b;
    });
    std::vector<uint64_t> saved;
    for (size_t n = 0; n < kids.size(); ++n) {
      const size_t k = kids[n];
      // Identical buffers (same lifetime and size) are interchangeable: try the first.
      if (n > 0 && lo_[kids[n - 1]] == lo_[k] && hi_[kids[n - 1]] == hi_[k] && size_[kids[n - 1]] == size_[k]) continue;
      const size_t len = static_cast<size_t>(hi_[k] - lo_[k]);
      saved.assign(sky_.begin() + lo_[k], sky_.begin() + hi_[k]);
      placed_[k] = true;
      off_[k] = h;
      for (int t = lo_[k]; t < hi_[k]; ++t) {
        sky_[static_cast<size_t>(t)] = h + size_[k];
        rem_[static_cast<size_t>(t)] -= size_[k];
      }
      const bool ok = dfs(placed + 1, h);
      for (size_t d = 0; d < len; ++d) {
        sky_[static_cast<size_t>(lo_[k]) + d] = saved[d];
        rem_[static_cast<size_t>(lo_[k]) + d] += size_[k];
      }
      placed_[k] = false;
      if (ok) return Step::found;
      if (stopped_) return Step::pruned;
    }
    low_out = low;
    h_out = h;
    return Step::waste;
  }

  const std::vector<uint32_t>& items_;
  ExactOptions opts_;
  std::chrono::steady_clock::time_point t0_;
  double deadline_ = 0;
  std::vector<uint64_t> size_;
  std::vector<int> lo_, hi_;
  std::vector<uint64_t> rem_, sky_, lowest_;
  std::vector<bool> placed_;
  std::vector<uint64_t> off_;
  std::optional<std::vector<uint64_t>> found_;
  uint64_t W_ = 0;
  uint64_t nodes_ = 0;
  uint64_t shuffle_ = 0, restart_nodes_ = 0;
  bool stopped_ = false, by_nodes_ = false;
  uint64_t jitter(size_t k) const {
    uint64_t x = (k + 1) * 0x9e3779b97f4a7c15ull ^ shuffle_ * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    return x * 0x94d049bb133111ebull;
  }
  struct PairHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& p) const { return p.first ^ (p.second * 0x9e3779b97f4a7c15ull); }
  };
  std::unordered_set<std::pair<uint64_t, uint64_t>, PairHash> failed_;  // per W: cleared by find()
};

}  // namespace

// Nodes of the shortest restart (Luby's unit).
constexpr uint64_t kRestartUnit = 256;

ExactResult place_exact(const std::vector<Interval>& iv, const Placement& start, const ExactOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ExactResult r;
  r.placement = start;
  r.lower = max_live(iv);
  const Problem pr = split_spanning(iv);
  const uint64_t base = pr.stacked.size;
  DLMEM_CHECK(start.size >= r.lower && start.offsets.size() == iv.size(), "place_exact: not a placement of these intervals");
  ExactSearch search(iv, pr, o);
  auto units = [&](uint64_t bytes) { return (bytes - base) / kAlignment; };
  auto adopt = [&](const std::vector<uint64_t>& f) {
    Placement pl = pr.stacked;
    pl.algo = PlaceAlgo::exact;
    for (size_t k = 0; k < search.size(); ++k) {
      const uint32_t i = pr.rest[k];
      pl.offsets[i] = base + f[k] * kAlignment;
      pl.size = std::max(pl.size, pl.offsets[i] + align_up(iv[i].bytes));
    }
    r.placement = std::move(pl);
  };
  bool proven = false;  // a search below the best exhausted without a placement
  if (r.placement.size > r.lower) {
    // First the lower bound itself, with half the time: where it is reached (tight
    // problems) nothing else needs searching. The search's mistakes near the root are
    // costly (heavy tails), so it restarts with shuffled orders on Luby's budgets for
    // three quarters of that, then ends with a complete search for what is left.
    const double half = o.time_limit_s / 2;
    bool done = false;
    // Luby's sequence (1 1 2 1 1 2 4 ...) of node budgets: the optimal universal
    // restart strategy for a search whose run length is unknown (Luby, Sinclair and
    // Zuckerman 1993).
    auto luby = [](uint64_t i) {  // i >= 1
      for (;;) {
        uint64_t k = 1;
        while ((uint64_t{1} << k) - 1 < i) ++k;
        if ((uint64_t{1} << k) - 1 == i) return uint64_t{1} << (k - 1);
        i -= (uint64_t{1} << (k - 1)) - 1;
      }
    };
    // With a node limit the phases are shares of it too (3/8 restarts, 1/8 complete),
    // so that the result does not depend on the machine's speed.
    const uint64_t N = o.node_limit;
    auto nodes_before = [&](uint64_t share8) { return N == 0 || search.nodes() < N / 8 * share8; };
    for (uint64_t r_ = 1; !done && search.elapsed() < half * 0.75 && nodes_before(3); ++r_) {
      uint64_t cap = kRestartUnit * luby(r_);
      if (N) cap = std::min(cap, N / 8 * 3 - search.nodes());
      if (auto f = search.find(units(r.lower), half * 0.75 - search.elapsed(), r_, cap)) adopt(*f), done = true;
    }
    if (!done && search.elapsed() < half && nodes_before(4))
      if (auto f = search.find(units(r.lower), half - search.elapsed(), 0, N ? N / 2 - search.nodes() : 0)) adopt(*f);
    // Then down from the best known, one unit at a time.
    while (r.placement.size > r.lower) {
      const double left = o.time_limit_s - search.elapsed();
      if (left <= 0) break;
      auto f = search.find(units(r.placement.size) - 1, left);
      if (!f) {
        proven = !search.stopped();
        break;
      }
      adopt(*f);
    }
  }
  r.optimal = r.placement.size == r.lower || proven;
  r.status = r.optimal ? "optimal" : search.stopped_by_nodes() ? "node limit" : "time limit";
  r.nodes = search.nodes();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::vector<Interval> intervals(const Plan& p, Space space, std::vector<BufferId>* ids) {
  std::vector<Interval> iv;
  if (ids) ids->clear();
  for (const Buffer& b : p.buffers) {
    if (b.space != space) continue;
    iv.push_back({b.bytes, b.begin, b.end});
    if (ids) ids->push_back(b.id);
  }
  return iv;
}

void place(Plan& p, PlaceAlgo algo) {
  for (Space space : {Space::device, Space::host}) {
    std::vector<BufferId> ids;
    std::vector<Interval> iv = intervals(p, space, &ids);
    Placement pl = place_intervals(iv, algo);
    for (size_t i = 0; i < ids.size(); ++i) p.buffers[static_cast<size_t>(ids[i])].offset = static_cast<int64_t>(pl.offsets[i]);
    if (space == Space::device) {
      p.device_arena = pl.size;
      p.placement = std::string(place_algo_name(pl.algo));
    } else {
      p.host_arena = pl.size;
    }
  }
}

}  // namespace dlmem::plan
