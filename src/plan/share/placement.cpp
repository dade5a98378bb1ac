#include "plan/share/placement.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace dlmem::plan {

std::string_view place_algo_name(PlaceAlgo a) {
  switch (a) {
    case PlaceAlgo::greedy_by_size: return "greedy-by-size";
    case PlaceAlgo::greedy_by_breadth: return "greedy-by-breadth";
    case PlaceAlgo::first_fit: return "first-fit";
    case PlaceAlgo::best: return "best";
  }
  return "?";
}

uint64_t max_live(const std::vector<Interval>& iv) {
  std::vector<std::pair<int, int64_t>> ev;
  ev.reserve(iv.size() * 2);
  for (const Interval& i : iv) {
    if (i.begin >= i.end) continue;
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

bool overlap(const Interval& a, const Interval& b) { return a.begin < b.end && b.begin < a.end; }

// Places intervals in `order`. Already placed intervals are kept sorted by offset; for
// each new one, the gaps between placed intervals that overlap it in time are
// candidates: best fit takes the smallest gap that holds it, first fit the lowest.
Placement place_in_order(const std::vector<Interval>& iv, const std::vector<size_t>& order, bool best_fit) {
  Placement pl;
  pl.offsets.assign(iv.size(), 0);
  std::vector<size_t> placed;  // sorted by offset
  placed.reserve(iv.size());
  for (size_t idx : order) {
    const Interval& cur = iv[idx];
    const uint64_t need = align_up(cur.bytes);
    if (cur.begin >= cur.end || need == 0) continue;
    uint64_t prev_end = 0;
    uint64_t best_off = UINT64_MAX, best_gap = UINT64_MAX;
    for (size_t p : placed) {
      const Interval& o = iv[p];
      if (!overlap(cur, o)) continue;
      const uint64_t off = pl.offsets[p];
      if (off > prev_end) {
        const uint64_t gap = off - prev_end;
        if (gap >= need && (best_fit ? gap < best_gap : best_off == UINT64_MAX)) {
          best_gap = gap;
          best_off = prev_end;
        }
      }
      prev_end = std::max(prev_end, off + align_up(o.bytes));
    }
    if (best_off == UINT64_MAX) best_off = prev_end;
    pl.offsets[idx] = best_off;
    pl.size = std::max(pl.size, best_off + need);
    auto pos = std::upper_bound(placed.begin(), placed.end(), best_off,
                                [&](uint64_t off, size_t p) { return off < pl.offsets[p]; });
    placed.insert(pos, idx);
  }
  return pl;
}

std::vector<size_t> by_size(const std::vector<Interval>& iv) {
  std::vector<size_t> order(iv.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (iv[a].bytes != iv[b].bytes) return iv[a].bytes > iv[b].bytes;
    return iv[a].begin < iv[b].begin;
  });
  return order;
}

// Greedy by breadth: visit positions from the one with the most live bytes down, and
// at each place its not-yet-placed intervals, largest first.
std::vector<size_t> by_breadth(const std::vector<Interval>& iv) {
  int horizon = 0;
  for (const Interval& i : iv) horizon = std::max(horizon, i.end);
  std::vector<int64_t> delta(static_cast<size_t>(horizon) + 1, 0);
  for (const Interval& i : iv) {
    if (i.begin >= i.end) continue;
    delta[static_cast<size_t>(i.begin)] += static_cast<int64_t>(i.bytes);
    delta[static_cast<size_t>(i.end)] -= static_cast<int64_t>(i.bytes);
  }
  std::vector<int64_t> breadth(static_cast<size_t>(horizon), 0);
  int64_t cur = 0;
  for (int t = 0; t < horizon; ++t) breadth[static_cast<size_t>(t)] = cur += delta[static_cast<size_t>(t)];
  std::vector<int> steps(static_cast<size_t>(horizon));
  std::iota(steps.begin(), steps.end(), 0);
  std::stable_sort(steps.begin(), steps.end(),
                   [&](int a, int b) { return breadth[static_cast<size_t>(a)] > breadth[static_cast<size_t>(b)]; });
  // Intervals live at each step, largest first; each interval is taken at the first
  // (widest) step that holds it.
  std::vector<size_t> sized = by_size(iv);
  std::vector<std::vector<size_t>> at(static_cast<size_t>(horizon));
  std::vector<size_t> rank(static_cast<size_t>(horizon));
  for (size_t k = 0; k < steps.size(); ++k) rank[static_cast<size_t>(steps[k])] = k;
  for (size_t idx : sized) {
    const Interval& i = iv[idx];
    if (i.begin >= i.end) continue;
    // The widest step within [begin, end).
    int best = i.begin;
    for (int t = i.begin; t < i.end; ++t)
      if (rank[static_cast<size_t>(t)] < rank[static_cast<size_t>(best)]) best = t;
    at[static_cast<size_t>(best)].push_back(idx);
  }
  std::vector<size_t> order;
  order.reserve(iv.size());
  for (int t : steps)
    for (size_t idx : at[static_cast<size_t>(t)]) order.push_back(idx);
  for (size_t idx = 0; idx < iv.size(); ++idx)
    if (iv[idx].begin >= iv[idx].end) order.push_back(idx);
  return order;
}

std::vector<size_t> by_time(const std::vector<Interval>& iv) {
  std::vector<size_t> order(iv.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (iv[a].begin != iv[b].begin) return iv[a].begin < iv[b].begin;
    return iv[a].bytes > iv[b].bytes;
  });
  return order;
}

}  // namespace

Placement place_intervals(const std::vector<Interval>& iv, PlaceAlgo algo) {
  if (algo == PlaceAlgo::best) {
    Placement best;
    bool have = false;
    for (PlaceAlgo a : {PlaceAlgo::greedy_by_size, PlaceAlgo::greedy_by_breadth, PlaceAlgo::first_fit}) {
      Placement p = place_intervals(iv, a);
      if (!have || p.size < best.size) {
        best = std::move(p);
        have = true;
      }
    }
    return best;
  }
  Placement p;
  switch (algo) {
    case PlaceAlgo::greedy_by_size: p = place_in_order(iv, by_size(iv), true); break;
    case PlaceAlgo::greedy_by_breadth: p = place_in_order(iv, by_breadth(iv), true); break;
    case PlaceAlgo::first_fit: p = place_in_order(iv, by_time(iv), false); break;
    case PlaceAlgo::best: break;
  }
  p.algo = algo;
  return p;
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
