#include "util/host_memory.h"

#include <fstream>
#include <string>

#include "util/error.h"
#include "util/format.h"

namespace dlmem {

uint64_t host_memory_available() {
  std::ifstream f("/proc/meminfo");
  std::string key, unit;
  uint64_t kib = 0;
  while (f >> key >> kib) {
    std::getline(f, unit);
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

uint64_t host_budget(std::string_view text) {
  if (text.empty()) return host_memory_available();
  const Budget b = parse_budget(text);
  if (!b.is_fraction) return b.bytes;
  const uint64_t avail = host_memory_available();
  if (avail == 0)
    throw Error("--host-budget ", text, ": a share of the available host memory, but this machine does not report it "
                "(no MemAvailable in /proc/meminfo); give bytes (16GiB)");
  return b.resolve(avail);
}

}  // namespace dlmem
