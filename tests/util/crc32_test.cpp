#include "util/crc32.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace dlmem {
namespace {

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

TEST(Crc32, KnownValues) {
  EXPECT_EQ(crc32(bytes_of("123456789")), 0xCBF43926u);  // the standard check value
  EXPECT_EQ(crc32(bytes_of("")), 0u);
  EXPECT_EQ(crc32(bytes_of("The quick brown fox jumps over the lazy dog")), 0x414FA339u);
}

TEST(Crc32, Incremental) {
  const std::string_view s = "123456789";
  EXPECT_EQ(crc32(bytes_of(s.substr(4)), crc32(bytes_of(s.substr(0, 4)))), 0xCBF43926u);
}

}  // namespace
}  // namespace dlmem
