// Human-readable quantities: byte sizes, memory budgets, counts and durations, both
// ways where users type them (command-line flags, config files).
//
//   human_bytes(1536)              -> "1.50 KiB"
//   parse_bytes("1.5 GiB")         -> 1610612736
//   Budget b = parse_budget("40%"); // b.is_fraction, b.fraction == 0.4
//   uint64_t cap = b.resolve(device_total_bytes);
//   human_count(25'557'032)        -> "25.6M"
//   human_duration(125.0)          -> "2m 05s"
//
// Units: KiB/MiB/GiB/TiB are 1024-based; KB/MB/GB/TB are 1000-based, as in dd(1).
// Bare K/M/G/T are 1024-based, also as in dd(1). Unit names are case-insensitive.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dlmem {

// "0 B", "512 B", "1.50 KiB", "12.3 MiB", "1.25 GiB": three significant digits in the
// largest binary unit (up to TiB) that keeps the value at least 1.
std::string human_bytes(uint64_t bytes);

// Parses "123", "64MiB", "64 MiB", "1.5GiB", "512KB", "2g". A number without a unit is
// a whole number of bytes; with a unit it may have a fraction and is rounded to the
// nearest byte. Throws dlmem::Error naming the text and the accepted forms. "0" is
// accepted (use parse_budget where zero is not a valid answer).
uint64_t parse_bytes(std::string_view text);

// A memory budget: an absolute size, or a fraction of a reference the caller knows
// (device memory, the unconstrained peak, ...).
struct Budget {
  uint64_t bytes = 0;     // when !is_fraction
  double fraction = 0.0;  // in (0, 1] when is_fraction
  bool is_fraction = false;

  // bytes, or fraction * reference_bytes rounded to the nearest byte.
  uint64_t resolve(uint64_t reference_bytes) const;
};

// Accepts everything parse_bytes does, or a percentage "40%" / "12.5 %" with
// 0 < percentage <= 100. Rejects zero, negative sizes, percentages over 100 and
// anything else with a dlmem::Error that says what would work.
Budget parse_budget(std::string_view text);

// Decimal counts for parameters and FLOPs: "999", "1.5K", "25.6M", "256M", "1.2G",
// "3.4T", "5.0P", "12.0E". One decimal below 100 of a unit, none above.
std::string human_count(uint64_t count);

// "850 ns", "42.0 us", "12.3 ms", "1.25 s", "2m 05s", "1h 02m 05s". Three significant
// digits below a minute. Negative or non-finite input (an unknown ETA) gives "--".
std::string human_duration(double seconds);

}  // namespace dlmem
