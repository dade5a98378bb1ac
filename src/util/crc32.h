// CRC-32 (ISO-HDLC, the one zip, gzip and PNG use), computed by zlib.
//
//   uint32_t c = crc32(bytes);                 // crc32("123456789") == 0xCBF43926
//   uint32_t d = crc32(more, crc32(first));    // incremental: same as crc32(first + more)
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dlmem {

// `previous` is the CRC of the bytes before `data` (0 for none).
uint32_t crc32(std::span<const std::byte> data, uint32_t previous = 0);

}  // namespace dlmem
