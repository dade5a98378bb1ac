#include "util/format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "util/error.h"

namespace dlmem {
namespace {

TEST(HumanBytes, ExactStrings) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1024), "1.00 KiB");
  EXPECT_EQ(human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(human_bytes(10239), "10.0 KiB");         // 9.999 KiB: not "10.00"
  EXPECT_EQ(human_bytes(12897485), "12.3 MiB");      // 12.3 * 2^20
  EXPECT_EQ(human_bytes(130 * 1048576ull), "130 MiB");
  EXPECT_EQ(human_bytes(1048575), "1.00 MiB");       // 1023.999 KiB rounds up a unit
  EXPECT_EQ(human_bytes(1342177280), "1.25 GiB");
  EXPECT_EQ(human_bytes(1ull << 40), "1.00 TiB");
  EXPECT_EQ(human_bytes(std::numeric_limits<uint64_t>::max()), "16777216 TiB");
}

TEST(ParseBytes, AcceptedForms) {
  EXPECT_EQ(parse_bytes("123"), 123u);
  EXPECT_EQ(parse_bytes("0"), 0u);
  EXPECT_EQ(parse_bytes("64MiB"), 64ull << 20);
  EXPECT_EQ(parse_bytes("64 MiB"), 64ull << 20);
  EXPECT_EQ(parse_bytes("  64 mib "), 64ull << 20);
  EXPECT_EQ(parse_bytes("1.5GiB"), 1610612736u);
  EXPECT_EQ(parse_bytes("512KB"), 512000u);
  EXPECT_EQ(parse_bytes("3 MB"), 3000000u);
  EXPECT_EQ(parse_bytes("2GB"), 2000000000u);
  EXPECT_EQ(parse_bytes("1TB"), 1000000000000u);
  EXPECT_EQ(parse_bytes("2g"), 2ull << 30);
  EXPECT_EQ(parse_bytes("4K"), 4096u);
  EXPECT_EQ(parse_bytes("1TiB"), 1ull << 40);
  EXPECT_EQ(parse_bytes("7 B"), 7u);
  EXPECT_EQ(parse_bytes(".5K"), 512u);
  EXPECT_EQ(parse_bytes("0.3KiB"), 307u);  // 307.2, rounded to the nearest byte
  EXPECT_EQ(parse_bytes("18446744073709551615"), std::numeric_limits<uint64_t>::max());
}

void expect_bytes_error(const std::string& text, const std::string& reason) {
  try {
    parse_bytes(text);
    FAIL() << "parse_bytes(\"" << text << "\") did not throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'" + text + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
    EXPECT_NE(msg.find("64MiB"), std::string::npos) << msg;  // names accepted forms
    EXPECT_NE(msg.find("1000-based"), std::string::npos) << msg;
  }
}

TEST(ParseBytes, Errors) {
  expect_bytes_error("", "empty");
  expect_bytes_error("abc", "does not start with a number");
  expect_bytes_error("-5MiB", "negative");
  expect_bytes_error("12XB", "unknown unit 'XB'");
  expect_bytes_error("1.5", "whole");
  expect_bytes_error("1.5 B", "whole");
  expect_bytes_error("5 MiB extra", "unknown unit");
  expect_bytes_error("18446744073709551616", "too large");
  expect_bytes_error("16777216TiB", "too large");
  expect_bytes_error("1.0000000000001GiB", "decimal places");
  expect_bytes_error("40%", "unknown unit '%'");
}

TEST(ParseBudget, SizesAndFractions) {
  Budget b = parse_budget("40%");
  EXPECT_TRUE(b.is_fraction);
  EXPECT_DOUBLE_EQ(b.fraction, 0.4);
  EXPECT_EQ(b.resolve(1000), 400u);

  EXPECT_EQ(parse_budget("29%").resolve(100), 29u);
  EXPECT_EQ(parse_budget("1%").resolve(1ull << 40), 10995116278u);  // 10995116277.76
  b = parse_budget("12.5 %");
  EXPECT_TRUE(b.is_fraction);
  EXPECT_DOUBLE_EQ(b.fraction, 0.125);

  b = parse_budget("100%");
  EXPECT_DOUBLE_EQ(b.fraction, 1.0);
  EXPECT_EQ(b.resolve(std::numeric_limits<uint64_t>::max()), std::numeric_limits<uint64_t>::max());

  b = parse_budget("64MiB");
  EXPECT_FALSE(b.is_fraction);
  EXPECT_EQ(b.bytes, 64ull << 20);
  EXPECT_EQ(b.resolve(12345), 64ull << 20);
}

void expect_budget_error(const std::string& text, const std::string& reason) {
  try {
    parse_budget(text);
    FAIL() << "parse_budget(\"" << text << "\") did not throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'" + text + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
    EXPECT_NE(msg.find("40%"), std::string::npos) << msg;
    EXPECT_NE(msg.find("64MiB"), std::string::npos) << msg;
  }
}

TEST(ParseBudget, Errors) {
  expect_budget_error("0", "more than 0 bytes");
  expect_budget_error("0 GiB", "more than 0 bytes");
  expect_budget_error("0%", "more than 0%");
  expect_budget_error("-5MiB", "negative");
  expect_budget_error("-5%", "negative");
  expect_budget_error("150%", "more than 100%");
  expect_budget_error("100.01%", "more than 100%");
  expect_budget_error("abc", "does not start with a number");
  expect_budget_error("%", "empty");
  expect_budget_error("5 MiB%", "before '%'");
  expect_budget_error("", "empty");
}

TEST(HumanCount, ExactStrings) {
  EXPECT_EQ(human_count(0), "0");
  EXPECT_EQ(human_count(999), "999");
  EXPECT_EQ(human_count(1000), "1.0K");
  EXPECT_EQ(human_count(1500), "1.5K");
  EXPECT_EQ(human_count(99960), "100K");
  EXPECT_EQ(human_count(999950), "1.0M");
  EXPECT_EQ(human_count(25557032), "25.6M");
  EXPECT_EQ(human_count(256000000), "256M");
  EXPECT_EQ(human_count(1200000000), "1.2G");
  EXPECT_EQ(human_count(3400000000000ull), "3.4T");
  EXPECT_EQ(human_count(std::numeric_limits<uint64_t>::max()), "18.4E");
}

TEST(HumanDuration, ExactStrings) {
  EXPECT_EQ(human_duration(0), "0 s");
  EXPECT_EQ(human_duration(850e-9), "850 ns");
  EXPECT_EQ(human_duration(42e-6), "42.0 us");
  EXPECT_EQ(human_duration(0.0123), "12.3 ms");
  EXPECT_EQ(human_duration(0.9999), "1.00 s");
  EXPECT_EQ(human_duration(1.25), "1.25 s");
  EXPECT_EQ(human_duration(59.4), "59.4 s");
  EXPECT_EQ(human_duration(59.99), "1m 00s");
  EXPECT_EQ(human_duration(125), "2m 05s");
  EXPECT_EQ(human_duration(3725), "1h 02m 05s");
  EXPECT_EQ(human_duration(-1), "--");
  EXPECT_EQ(human_duration(std::nan("")), "--");
  EXPECT_EQ(human_duration(std::numeric_limits<double>::infinity()), "--");
}

}  // namespace
}  // namespace dlmem
