#include "util/format.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "util/error.h"

namespace dlmem {

namespace {

// A value rounded to three significant digits (two decimals below 10, one below 100,
// none above) and the number of decimals to print it with.
struct Sig3 {
  double value;
  int decimals;
};

Sig3 round_sig3(double v) {
  int d = v < 10 ? 2 : v < 100 ? 1 : 0;
  for (;;) {
    const double scale = std::pow(10.0, d);
    const double r = std::round(v * scale) / scale;
    // 9.996 rounds to 10.00, which has four significant digits: print it as 10.0.
    if ((d == 2 && r >= 10) || (d == 1 && r >= 100)) {
      --d;
      continue;
    }
    return {r, d};
  }
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string sig3(double v) {
  const Sig3 s = round_sig3(v);
  return fixed(s.value, s.decimals);
}

std::string trim(std::string_view s) {
  const auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// The leading decimal number of a quantity: "1.5" of "1.5 GiB".
struct Decimal {
  unsigned __int128 int_part = 0;  // <= 2^64 - 1
  uint64_t frac = 0;               // the digits after the point, as an integer
  int frac_digits = 0;             // how many (<= kMaxFracDigits)
  std::string rest;                // what follows the number, trimmed
};

constexpr int kMaxFracDigits = 12;

// Parses [digits][.digits] then trims the rest. Returns the reason on failure.
std::optional<std::string> parse_decimal(const std::string& s, Decimal& out) {
  if (s.empty()) return "it is empty";
  if (s[0] == '-') return "it is negative";
  size_t i = 0;
  int digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    out.int_part = out.int_part * 10 + static_cast<unsigned>(s[i] - '0');
    if (out.int_part > std::numeric_limits<uint64_t>::max()) return "it is too large";
    ++i;
    ++digits;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (out.frac_digits == kMaxFracDigits) return "it has too many decimal places";
      out.frac = out.frac * 10 + static_cast<uint64_t>(s[i] - '0');
      ++out.frac_digits;
      ++i;
      ++digits;
    }
  }
  if (digits == 0) return "it does not start with a number";
  out.rest = trim(std::string_view(s).substr(i));
  return std::nullopt;
}

uint64_t pow10(int n) {
  uint64_t p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

// Parses a size; returns the reason on failure.
std::optional<std::string> parse_size(std::string_view text, uint64_t& bytes) {
  Decimal d;
  if (auto err = parse_decimal(trim(text), d)) return err;

  struct Unit {
    const char* name;
    uint64_t multiplier;
  };
  static constexpr std::array<Unit, 14> kUnits{{
      {"", 1},
      {"b", 1},
      {"k", 1ull << 10},
      {"kib", 1ull << 10},
      {"m", 1ull << 20},
      {"mib", 1ull << 20},
      {"g", 1ull << 30},
      {"gib", 1ull << 30},
      {"t", 1ull << 40},
      {"tib", 1ull << 40},
      {"kb", 1000ull},
      {"mb", 1000ull * 1000},
      {"gb", 1000ull * 1000 * 1000},
      {"tb", 1000ull * 1000 * 1000 * 1000},
  }};
  const std::string unit = lower(d.rest);
  uint64_t mult = 0;
  for (const Unit& u : kUnits)
    if (unit == u.name) mult = u.multiplier;
  if (mult == 0) return "unknown unit '" + d.rest + "'";
  if (mult == 1 && d.frac != 0) return "a number of bytes must be whole";

  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  if (d.int_part > kMax / mult) return "it is too large";
  // Exact: (int_part * 10^k + frac) * mult / 10^k, rounded to the nearest byte.
  // int_part * mult < 2^64 and 10^k <= 10^12, so nothing here overflows 128 bits.
  const unsigned __int128 scale = pow10(d.frac_digits);
  const unsigned __int128 num = (d.int_part * scale + d.frac) * mult;
  const unsigned __int128 value = (num + scale / 2) / scale;
  if (value > kMax) return "it is too large";
  bytes = static_cast<uint64_t>(value);
  return std::nullopt;
}

constexpr const char* kSizeForms =
    "write a whole number of bytes such as 123, or a number and a unit such as 64MiB, "
    "64 MiB, 1.5GiB or 512KB (KiB/MiB/GiB/TiB and K/M/G/T are 1024-based, "
    "KB/MB/GB/TB are 1000-based)";

}  // namespace

std::string human_bytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr std::array<const char*, 4> kUnits{"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (unit + 1 < kUnits.size() && round_sig3(v).value >= 1024) {
    v /= 1024.0;
    ++unit;
  }
  return sig3(v) + " " + kUnits[unit];
}

uint64_t parse_bytes(std::string_view text) {
  uint64_t bytes = 0;
  if (auto err = parse_size(text, bytes))
    throw Error("cannot read '", text, "' as a size in bytes (", *err, "); ", kSizeForms);
  return bytes;
}

uint64_t Budget::resolve(uint64_t reference_bytes) const {
  if (!is_fraction) return bytes;
  // Nearest, not floor: 0.29 is stored as 0.28999..., and 29% of 100 bytes is 29.
  const long double v = std::round(static_cast<long double>(reference_bytes) * fraction);
  if (v >= static_cast<long double>(reference_bytes)) return reference_bytes;
  return v <= 0 ? 0 : static_cast<uint64_t>(v);
}

Budget parse_budget(std::string_view text) {
  const std::string t = trim(text);
  const auto fail = [&](const std::string& reason) {
    return Error("cannot read '", text, "' as a memory budget (", reason,
                 "); give a percentage above 0 and at most 100 such as 40%, or a size: ",
                 kSizeForms);
  };
  if (!t.empty() && t.back() == '%') {
    Decimal d;
    if (auto err = parse_decimal(t.substr(0, t.size() - 1), d)) throw fail(*err);
    if (!d.rest.empty()) throw fail("unexpected '" + d.rest + "' before '%'");
    const double percent = static_cast<double>(d.int_part) +
                           static_cast<double>(d.frac) / static_cast<double>(pow10(d.frac_digits));
    if (percent <= 0) throw fail("a budget must be more than 0%");
    if (percent > 100) throw fail("a budget cannot be more than 100%");
    return Budget{.bytes = 0, .fraction = percent / 100.0, .is_fraction = true};
  }
  uint64_t bytes = 0;
  if (auto err = parse_size(t, bytes)) throw fail(*err);
  if (bytes == 0) throw fail("a budget must be more than 0 bytes");
  return Budget{.bytes = bytes, .fraction = 0.0, .is_fraction = false};
}

std::string human_count(uint64_t count) {
  if (count < 1000) return std::to_string(count);
  static constexpr std::array<const char*, 6> kUnits{"K", "M", "G", "T", "P", "E"};
  double v = static_cast<double>(count) / 1000.0;
  size_t unit = 0;
  for (;;) {
    const double one = std::round(v * 10) / 10;  // one decimal
    if (one < 100) return fixed(one, 1) + kUnits[unit];
    const double none = std::round(v);
    if (none < 1000 || unit + 1 == kUnits.size()) return fixed(none, 0) + kUnits[unit];
    v /= 1000.0;
    ++unit;
  }
}

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e15) return "--";
  if (seconds == 0) return "0 s";
  struct Unit {
    const char* name;
    double per_second;
  };
  static constexpr std::array<Unit, 3> kSubSecond{{{"ns", 1e9}, {"us", 1e6}, {"ms", 1e3}}};
  for (const Unit& u : kSubSecond) {
    const double v = seconds * u.per_second;
    if (round_sig3(v).value < 1000) return sig3(v) + " " + u.name;
  }
  if (round_sig3(seconds).value < 60) return sig3(seconds) + " s";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
  char buf[64];
  if (h == 0)
    std::snprintf(buf, sizeof buf, "%lldm %02llds", static_cast<long long>(m),
                  static_cast<long long>(s));
  else
    std::snprintf(buf, sizeof buf, "%lldh %02lldm %02llds", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  return buf;
}

}  // namespace dlmem
