#include "deploy/prune.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace dlmem::deploy {

double stddev(std::span<const float> w) {
  if (w.empty()) return 0;
  double mean = 0;
  for (float x : w) mean += x;
  mean /= static_cast<double>(w.size());
  double var = 0;
  for (float x : w) var += (x - mean) * (x - mean);
  return std::sqrt(var / static_cast<double>(w.size()));
}

float density_threshold(std::span<const float> w, double density) {
  DLMEM_CHECK(density > 0 && density <= 1, "density ", density);
  if (w.empty()) return 0;
  std::vector<float> mag(w.size());
  for (size_t i = 0; i < w.size(); ++i) mag[i] = std::fabs(w[i]);
  const size_t keep = std::clamp<size_t>(static_cast<size_t>(std::llround(density * static_cast<double>(w.size()))), 1, w.size());
  // The keep-th largest magnitude: everything at or above it stays.
  std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(keep - 1), mag.end(), std::greater<float>());
  return mag[keep - 1];
}

float round_threshold(float final, int round, int rounds) {
  DLMEM_CHECK(rounds >= 1 && round >= 1 && round <= rounds, "round ", round, " of ", rounds);
  return static_cast<float>(static_cast<double>(final) * round / rounds);
}

uint64_t prune(std::span<float> w, std::span<uint8_t> mask, float threshold) {
  DLMEM_CHECK(w.size() == mask.size(), "weights ", w.size(), " mask ", mask.size());
  uint64_t kept = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (mask[i] && std::fabs(w[i]) < threshold) mask[i] = 0;
    if (!mask[i]) w[i] = 0.0f;
    kept += mask[i] != 0;
  }
  return kept;
}

void apply_mask(std::span<float> w, std::span<const uint8_t> mask) {
  DLMEM_CHECK(w.size() == mask.size(), "weights ", w.size(), " mask ", mask.size());
  for (size_t i = 0; i < w.size(); ++i)
    if (!mask[i]) w[i] = 0.0f;
}

uint64_t count_kept(std::span<const uint8_t> mask) {
  uint64_t n = 0;
  for (uint8_t m : mask) n += m != 0;
  return n;
}

}  // namespace dlmem::deploy
