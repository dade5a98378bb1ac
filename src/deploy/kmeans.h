// Weight sharing by k-means (the second stage of Deep Compression: Han, Mao and Dally,
// ICLR 2016, Sec. 3): the surviving weights of one layer are clustered into k = 2^bits
// groups that share one value (a centroid), so each weight is stored as a bits-wide
// index into a small codebook.
//
//   deploy::Clusters c = deploy::kmeans(kept_weights, /*bits=*/5);
//   c.centroids[c.assignment[i]]          // the shared value of kept_weights[i]
//
// Centroids start linearly spaced over [min, max] of the weights ("linear
// initialization", Sec. 3.2: it keeps the rare large weights, which matter most,
// represented, where density-based or random initialisation would not), then Lloyd's
// algorithm minimises the within-cluster sum of squares (Eq. 1). In one dimension an
// assignment step is a sweep over the sorted weights with the midpoints between
// consecutive centroids as boundaries, so an iteration costs O(n + k). Clusters left
// empty are dropped, so the codebook may have fewer than 2^bits entries.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace dlmem::deploy {

struct Clusters {
  std::vector<float> centroids;        // ascending, every one used
  std::vector<uint32_t> assignment;    // per input weight, an index into centroids
  int iterations = 0;                  // Lloyd iterations run
};

struct KMeansOptions {
  int max_iterations = 100;            // stops earlier when no assignment changes
};

// DLMEM_CHECK: 1 <= bits <= 12 (deploy/huffman.h's alphabet limit).
Clusters kmeans(std::span<const float> w, int bits, const KMeansOptions& = {});

// Sum of squared distances of the weights to their centroids (k-means' objective).
double within_cluster_ss(std::span<const float> w, const Clusters&);

}  // namespace dlmem::deploy
