#include "util/crc32.h"

#include <zlib.h>

#include <algorithm>

namespace dlmem {

uint32_t crc32(std::span<const std::byte> data, uint32_t previous) {
  uLong crc = previous;
  const auto* p = reinterpret_cast<const Bytef*>(data.data());
  size_t left = data.size();
  // zlib takes a 32-bit length (uInt); feed larger buffers in chunks.
  constexpr size_t kChunk = size_t{1} << 30;
  while (left > 0) {
    const size_t n = std::min(left, kChunk);
    crc = ::crc32(crc, p, static_cast<uInt>(n));
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace dlmem
