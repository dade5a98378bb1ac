#include "plan/place_problem.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "util/atomic_file.h"
#include "util/error.h"

namespace dlmem::plan {

namespace {

bool parse_int(std::string_view s, int64_t& v) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> f;
  size_t at = 0;
  for (;;) {
    const size_t c = line.find(',', at);
    f.push_back(line.substr(at, c == std::string_view::npos ? std::string_view::npos : c - at));
    if (c == std::string_view::npos) return f;
    at = c + 1;
  }
}

}  // namespace

PlaceProblem parse_place_csv(const std::string& text, const std::string& name) {
  PlaceProblem pb;
  std::set<int64_t> seen;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  bool have_alignment = false;
  std::vector<std::pair<int64_t, int64_t>> life;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::vector<std::string_view> f = split(line);
    int64_t v[5] = {0, 0, 0, 0, 1};
    bool ok = f.size() == 4 || f.size() == 5;
    for (size_t i = 0; ok && i < f.size(); ++i) ok = parse_int(f[i], v[i]);
    if (!ok) {
      if (lineno == 1 && !line.empty() && !std::isdigit(static_cast<unsigned char>(line[0])) && line[0] != '-')
        continue;  // a header row (id,lower,upper,size[,alignment])
      throw Error(name, ":", lineno, ": expected id,lower,upper,size[,alignment] as integers, got '", line, "'");
    }
    const auto [id, lower, upper, size, align] = std::tuple(v[0], v[1], v[2], v[3], v[4]);
    if (lower < 0 || upper < 0) throw Error(name, ":", lineno, ": negative lifetime [", lower, ", ", upper, ")");
    if (lower >= upper)
      throw Error(name, ":", lineno, ": lower ", lower, " >= upper ", upper, " (lifetimes are half-open [lower, upper))");
    if (size < 0) throw Error(name, ":", lineno, ": negative size ", size);
    if (align <= 0) throw Error(name, ":", lineno, ": alignment must be positive, got ", align);
    if (upper > INT32_MAX) throw Error(name, ":", lineno, ": upper ", upper, " exceeds ", INT32_MAX);
    if (!seen.insert(id).second) throw Error(name, ":", lineno, ": duplicate id ", id);
    if (f.size() == 5) {
      if (have_alignment && static_cast<uint64_t>(align) != pb.alignment)
        throw Error(name, ":", lineno, ": alignment ", align, " differs from the earlier rows' ", pb.alignment,
                    "; dlmem place takes one alignment for every buffer");
      have_alignment = true;
      pb.alignment = static_cast<uint64_t>(align);
    }
    pb.ids.push_back(id);
    pb.sizes.push_back(static_cast<uint64_t>(size));
    life.emplace_back(lower, upper);
  }
  if (pb.ids.empty()) throw Error(name, ": no buffers (expected rows id,lower,upper,size[,alignment])");
  // Offsets are sums of sizes in units of kAlignment: keep every sum far from overflow.
  uint64_t total = 0;
  for (uint64_t s : pb.sizes) {
    total += s / pb.alignment + 1;
    if (total > (uint64_t{1} << 50) / kAlignment)
      throw Error(name, ": the sizes add up to over 2^50 alignment units; dlmem place takes problems whose buffers fit "
                        "in 2^50 units together");
  }
  // Only the order of the lifetimes' ends matters to placement: times are renumbered
  // 0, 1, 2, ... in that order (half-open overlaps are kept), so the solvers' per-time
  // arrays are as long as the problem, not as its largest time.
  std::vector<int64_t> times;
  for (const auto& [lo, hi] : life) times.insert(times.end(), {lo, hi});
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  auto rank = [&](int64_t t) { return static_cast<int>(std::lower_bound(times.begin(), times.end(), t) - times.begin()); };
  for (size_t k = 0; k < pb.sizes.size(); ++k) {
    const uint64_t units = (pb.sizes[k] + pb.alignment - 1) / pb.alignment;
    pb.intervals.push_back({units * kAlignment, rank(life[k].first), rank(life[k].second)});
  }
  return pb;
}

PlaceProblem read_place_csv(const std::string& path) {
  const std::vector<std::byte> bytes = read_file(path);
  return parse_place_csv(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
}

std::vector<uint64_t> problem_offsets(const PlaceProblem& pb, const Placement& pl) {
  std::vector<uint64_t> o(pl.offsets.size());
  for (size_t k = 0; k < o.size(); ++k) o[k] = pl.offsets[k] / kAlignment * pb.alignment;
  return o;
}

uint64_t problem_height(const PlaceProblem& pb, const std::vector<uint64_t>& offsets) {
  uint64_t h = 0;
  for (size_t k = 0; k < offsets.size(); ++k) h = std::max(h, offsets[k] + pb.sizes[k]);
  return h;
}

uint64_t problem_max_live(const PlaceProblem& pb) { return max_live(pb.intervals) / kAlignment * pb.alignment; }

std::string offsets_csv(const PlaceProblem& pb, const std::vector<uint64_t>& offsets) {
  std::ostringstream os;
  os << "id,offset\n";
  for (size_t k = 0; k < offsets.size(); ++k) os << pb.ids[k] << "," << offsets[k] << "\n";
  return os.str();
}

std::string to_csv(const PlaceProblem& pb) {
  std::ostringstream os;
  os << "id,lower,upper,size\n";
  for (size_t k = 0; k < pb.ids.size(); ++k)
    os << pb.ids[k] << "," << pb.intervals[k].begin << "," << pb.intervals[k].end << "," << pb.sizes[k] << "\n";
  return os.str();
}

PlaceProblem tight_instance(uint64_t width, int horizon, int pieces, uint64_t seed) {
  DLMEM_CHECK(width >= 1 && horizon >= 1 && pieces >= 1, "tight_instance(", width, ", ", horizon, ", ", pieces, ")");
  struct Rect {
    uint64_t y, h;  // memory
    int t, d;       // time
  };
  std::mt19937_64 gen(seed);
  std::vector<Rect> rects = {{0, width, 0, horizon}};
  // Cut the largest-area splittable rectangle each time, across a random axis.
  for (int tries = 0; static_cast<int>(rects.size()) < pieces && tries < pieces * 20; ++tries) {
    size_t pick = 0;
    double area = -1;
    for (size_t k = 0; k < rects.size(); ++k) {
      const double a = static_cast<double>(rects[k].h) * rects[k].d * (0.5 + static_cast<double>(gen() % 1000) / 1000.0);
      if ((rects[k].h > 1 || rects[k].d > 1) && a > area) area = a, pick = k;
    }
    if (area < 0) break;
    Rect r = rects[pick];
    const bool in_time = r.h <= 1 || (r.d > 1 && gen() % 2 == 0);
    Rect a = r, b = r;
    if (in_time) {
      const int cut = 1 + static_cast<int>(gen() % static_cast<uint64_t>(r.d - 1));
      a.d = cut;
      b.t = r.t + cut;
      b.d = r.d - cut;
    } else {
      const uint64_t cut = 1 + gen() % (r.h - 1);
      a.h = cut;
      b.y = r.y + cut;
      b.h = r.h - cut;
    }
    rects[pick] = a;
    rects.push_back(b);
  }
  std::shuffle(rects.begin(), rects.end(), gen);
  PlaceProblem pb;
  for (size_t k = 0; k < rects.size(); ++k) {
    pb.ids.push_back(static_cast<int64_t>(k));
    pb.sizes.push_back(rects[k].h);
    pb.intervals.push_back({rects[k].h * kAlignment, rects[k].t, rects[k].t + rects[k].d});
  }
  return pb;
}

std::string find_overlap(const PlaceProblem& pb, const std::vector<uint64_t>& offsets) {
  if (offsets.size() != pb.sizes.size()) return "offsets for " + std::to_string(offsets.size()) + " of " +
                                                std::to_string(pb.sizes.size()) + " buffers";
  // A sweep over time (ends before begins at one time: lifetimes are half-open) with
  // the live buffers ordered by offset: while none overlap, their address ranges are
  // disjoint, so a new one can only overlap its neighbours in that order. O(n log n),
  // and it shares nothing with the placement code it checks.
  struct Event {
    int t;
    bool begins;
    size_t k;
  };
  std::vector<Event> events;
  for (size_t k = 0; k < offsets.size(); ++k) {
    if (pb.alignment > 1 && offsets[k] % pb.alignment) return "buffer " + std::to_string(pb.ids[k]) + " unaligned";
    if (pb.sizes[k] == 0) continue;
    events.push_back({pb.intervals[k].begin, true, k});
    events.push_back({pb.intervals[k].end, false, k});
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.t != b.t ? a.t < b.t : (a.begins != b.begins ? !a.begins : a.k < b.k);
  });
  auto overlap = [&](size_t a, size_t b) {
    return "buffers " + std::to_string(pb.ids[a]) + " and " + std::to_string(pb.ids[b]) + " overlap";
  };
  std::map<uint64_t, size_t> live;  // offset -> buffer
  for (const Event& e : events) {
    if (!e.begins) {
      live.erase(offsets[e.k]);
      continue;
    }
    const uint64_t off = offsets[e.k];
    auto next = live.lower_bound(off);
    if (next != live.end() && next->first < off + pb.sizes[e.k]) return overlap(e.k, next->second);
    if (next != live.begin()) {
      const auto prev = std::prev(next);
      if (prev->first + pb.sizes[prev->second] > off) return overlap(prev->second, e.k);
    }
    live.emplace(off, e.k);
  }
  return "";
}

}  // namespace dlmem::plan
