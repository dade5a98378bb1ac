// Relative indices of a pruned tensor's surviving weights (Deep Compression, Han, Mao
// and Dally, ICLR 2016, Sec. 2 and Fig. 2): instead of absolute positions, each
// surviving weight stores how many zeros precede it since the previous survivor, in
// a few bits; a gap too large for them is bridged with filler entries.
//
//   // positions {1, 3, 20} of a 24-element tensor, 3-bit relative indices (max 6):
//   auto sym = deploy::relative_indices({1, 3, 20}, 3);   // {1, 1, F, F, 2}, F = 7
//   deploy::RelativeIndexDecoder d(24, 3);
//   for (uint32_t s : sym) if (auto p = d.next(s)) ...     // 1, 3, 20
//
// Note [Filler entries]: with b bits the symbols are 0 .. 2^b - 1. A symbol s below
// F = 2^b - 1 means "skip s zeros, then a surviving weight"; F is a filler: "skip F
// positions, no weight". The paper stores a filler as a zero weight with its own
// codebook entry; here the filler is told apart by its index symbol alone, so it costs
// no weight symbol and the codebook needs no zero. Both streams are then Huffman coded
// (deploy/huffman.h), which makes the frequent small gaps cheap.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dlmem::deploy {

inline constexpr int kMaxIndexBits = 12;

inline uint32_t filler_symbol(int bits) { return (uint32_t{1} << bits) - 1; }

// One symbol per survivor plus the fillers. DLMEM_CHECK: positions strictly ascending,
// 1 <= bits <= kMaxIndexBits.
std::vector<uint32_t> relative_indices(std::span<const uint64_t> positions, int bits);

// Turns symbols back into positions, checking each against the tensor's size.
class RelativeIndexDecoder {
 public:
  // `what` names the tensor in error messages.
  RelativeIndexDecoder(uint64_t numel, int bits, std::string what);
  // The position of the next survivor, or nullopt for a filler. dlmem::Error when the
  // symbol is outside the alphabet or leads past the end of the tensor.
  std::optional<uint64_t> next(uint32_t symbol);

 private:
  uint64_t numel_;
  uint64_t cursor_ = 0;  // the first position the next survivor may take
  uint32_t filler_;
  std::string what_;
};

}  // namespace dlmem::deploy
