// Magnitude pruning (the first stage of Deep Compression, after Han, Pool, Tran and
// Dally, "Learning both Weights and Connections for Efficient Neural Networks",
// NeurIPS 2015, Sec. 3): weights whose magnitude is below a per-layer threshold are
// removed, and the network is retrained with the survivors only. The threshold is "a
// quality parameter multiplied by the standard deviation of a layer's weights"
// (Sec. 4), or -- for layers whose target density is known, e.g. the densities the
// paper reports -- the magnitude that keeps that fraction.
//
//   float sd = deploy::stddev(w);
//   std::vector<uint8_t> mask(w.size(), 1);
//   for (int r = 1; r <= rounds; ++r) {                 // iterative schedule (Sec. 3.3)
//     deploy::prune(w, mask, deploy::round_threshold(q * sd, r, rounds));
//     retrain_with_mask(w, mask);                       // pruned weights stay zero
//   }
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace dlmem::deploy {

// Population standard deviation of the values (0 for none).
double stddev(std::span<const float> w);

// The magnitude below which weights go so that a fraction `density` (in (0, 1]) of
// them stays: the k-th largest |w| with k = round(density * n), so that
// prune(w, mask, threshold) keeps about that many (ties may keep a few more).
float density_threshold(std::span<const float> w, double density);

// The threshold of round r (1..rounds) of an iterative schedule that ends at `final`:
// final * r / rounds, so each round removes a further slice of the smallest weights.
float round_threshold(float final, int round, int rounds);

// Clears mask[i] where |w[i]| < threshold (masks only shrink: a weight once pruned
// stays pruned), then sets w[i] = +0.0 wherever mask[i] == 0. Returns the survivors.
uint64_t prune(std::span<float> w, std::span<uint8_t> mask, float threshold);

// Sets w[i] = +0.0 wherever mask[i] == 0 (after an update that may have moved them).
void apply_mask(std::span<float> w, std::span<const uint8_t> mask);

uint64_t count_kept(std::span<const uint8_t> mask);

}  // namespace dlmem::deploy
