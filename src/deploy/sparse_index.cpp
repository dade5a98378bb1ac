#include "deploy/sparse_index.h"

#include "util/error.h"

namespace dlmem::deploy {

std::vector<uint32_t> relative_indices(std::span<const uint64_t> positions, int bits) {
  DLMEM_CHECK(bits >= 1 && bits <= kMaxIndexBits, "index bits ", bits);
  const uint32_t filler = filler_symbol(bits);
  std::vector<uint32_t> out;
  out.reserve(positions.size());
  uint64_t cursor = 0;
  for (uint64_t p : positions) {
    DLMEM_CHECK(p >= cursor, "positions not strictly ascending at ", p);
    uint64_t gap = p - cursor;
    while (gap >= filler) {  // Note [Filler entries]
      out.push_back(filler);
      gap -= filler;
    }
    out.push_back(static_cast<uint32_t>(gap));
    cursor = p + 1;
  }
  return out;
}

RelativeIndexDecoder::RelativeIndexDecoder(uint64_t numel, int bits, std::string what)
    : numel_(numel), filler_(filler_symbol(bits)), what_(std::move(what)) {
  DLMEM_CHECK(bits >= 1 && bits <= kMaxIndexBits, "index bits ", bits);
}

std::optional<uint64_t> RelativeIndexDecoder::next(uint32_t symbol) {
  if (symbol > filler_) throw Error(what_, ": relative index ", symbol, " exceeds the largest, ", filler_);
  if (symbol == filler_) {
    if (numel_ - cursor_ <= filler_) throw Error(what_, ": a filler entry runs past the end of the tensor (", numel_, " elements)");
    cursor_ += filler_;
    return std::nullopt;
  }
  if (numel_ - cursor_ <= symbol)
    throw Error(what_, ": a relative index points past the end of the tensor (", numel_, " elements)");
  const uint64_t p = cursor_ + symbol;
  cursor_ = p + 1;
  return p;
}

}  // namespace dlmem::deploy
