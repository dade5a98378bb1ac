// A JSON file read whole and parsed, with the errors users should see.
//
//   nlohmann::json j = read_json_file("plan.json", "plan");
//   // dlmem::Error: "plan 'plan.json' is not valid JSON: [json.exception.parse_error.101] ..."
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace dlmem {

// dlmem::Error naming `what` and the path when the file cannot be read (read_file) or
// is not JSON.
nlohmann::json read_json_file(const std::string& path, std::string_view what);

}  // namespace dlmem
