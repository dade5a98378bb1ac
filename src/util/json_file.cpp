#include "util/json_file.h"

#include "util/atomic_file.h"
#include "util/error.h"

namespace dlmem {

nlohmann::json read_json_file(const std::string& path, std::string_view what) {
  const std::vector<std::byte> bytes = read_file(path);
  try {
    return nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data()),
                                 reinterpret_cast<const char*>(bytes.data()) + bytes.size());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(what, " '", path, "' is not valid JSON: ", e.what());
  }
}

}  // namespace dlmem
