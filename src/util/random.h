// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
// OOPSLA 2014): a good 64-bit mixer, for the data pipeline's shuffles and synthetic
// data -- portable and the same on every machine, unlike std::uniform_*_distribution.
#pragma once

#include <cstdint>

namespace dlmem {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace dlmem
