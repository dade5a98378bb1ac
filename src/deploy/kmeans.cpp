#include "deploy/kmeans.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace dlmem::deploy {

Clusters kmeans(std::span<const float> w, int bits, const KMeansOptions& opt) {
  DLMEM_CHECK(bits >= 1 && bits <= 12, "bits ", bits);
  Clusters out;
  const size_t n = w.size();
  if (n == 0) return out;

  // Sorted order of the weights (ties by index: deterministic).
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return w[a] < w[b]; });
  std::vector<float> sorted(n);
  for (size_t i = 0; i < n; ++i) sorted[i] = w[order[i]];

  // Linear initialisation over [min, max] (Han et al. 2016, Sec. 3.2).
  const size_t k = size_t{1} << bits;
  const double lo = sorted.front(), hi = sorted.back();
  std::vector<double> c(k);
  for (size_t j = 0; j < k; ++j) c[j] = k == 1 ? (lo + hi) / 2 : lo + (hi - lo) * static_cast<double>(j) / static_cast<double>(k - 1);

  // Lloyd's algorithm on the sorted weights: cluster j holds [start[j], start[j + 1]).
  std::vector<size_t> start(k + 1, 0), prev(k + 1, n + 1);
  std::vector<double> sum(k);
  for (int it = 0; it < opt.max_iterations; ++it) {
    // Assignment: boundaries at midpoints of consecutive centroids (c ascending).
    size_t i = 0;
    for (size_t j = 0; j < k; ++j) {
      start[j] = i;
      if (j + 1 == k) {
        i = n;
      } else {
        const double boundary = (c[j] + c[j + 1]) / 2;
        while (i < n && static_cast<double>(sorted[i]) < boundary) ++i;
      }
    }
    start[k] = n;
    out.iterations = it + 1;
    if (start == prev) break;
    prev = start;
    // Update: each non-empty cluster moves to its mean; then keep c ascending.
    for (size_t j = 0; j < k; ++j) {
      if (start[j + 1] == start[j]) continue;
      double s = 0;
      for (size_t t = start[j]; t < start[j + 1]; ++t) s += sorted[t];
      c[j] = s / static_cast<double>(start[j + 1] - start[j]);
    }
    std::sort(c.begin(), c.end());
  }

  // Drop empty clusters; assign in the caller's order.
  out.assignment.assign(n, 0);
  for (size_t j = 0; j < k; ++j) {
    if (start[j + 1] == start[j]) continue;
    // The centroid is the mean of its members (what the last assignment holds).
    double s = 0;
    for (size_t t = start[j]; t < start[j + 1]; ++t) s += sorted[t];
    const auto id = static_cast<uint32_t>(out.centroids.size());
    out.centroids.push_back(static_cast<float>(s / static_cast<double>(start[j + 1] - start[j])));
    for (size_t t = start[j]; t < start[j + 1]; ++t) out.assignment[order[t]] = id;
  }
  return out;
}

double within_cluster_ss(std::span<const float> w, const Clusters& c) {
  DLMEM_CHECK(w.size() == c.assignment.size(), "weights ", w.size(), " assignment ", c.assignment.size());
  double ss = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - c.centroids.at(c.assignment[i]);
    ss += d * d;
  }
  return ss;
}

}  // namespace dlmem::deploy
