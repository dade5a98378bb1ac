// The host memory a swap plan may fill (--host-budget): what the machine reports
// available, or what the user says.
//
//   uint64_t b = host_budget("");      // MemAvailable of /proc/meminfo
//   uint64_t c = host_budget("50%");   // half of it;  host_budget("16GiB"): 16 GiB
#pragma once

#include <cstdint>
#include <string_view>

namespace dlmem {

// MemAvailable in /proc/meminfo (memory a new allocation can get without swapping),
// in bytes; 0 where it cannot be read.
uint64_t host_memory_available();

// --host-budget as users write it: "" (what the machine reports available), bytes
// ("16GiB"), or a share of what is available ("50%"). dlmem::Error for anything else,
// or for a share when the machine reports nothing.
uint64_t host_budget(std::string_view text);

}  // namespace dlmem
