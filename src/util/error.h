// Two kinds of error (STYLE.md, rule 5):
//  - dlmem::Error: the user's mistake (unknown model, impossible budget, malformed
//    file, wrong shapes). Its message says what was wrong and what would work. The CLI
//    prints it on one line and exits with status 2.
//  - DLMEM_CHECK: a broken internal invariant -- a bug in dlmem, never user input. It
//    throws InternalError with the file, line and condition.
//
//   if (batch <= 0) throw dlmem::Error("--batch must be positive, got ", batch);
//   DLMEM_CHECK(offset + bytes <= arena_size, "buffer ", id, " overflows the arena");
#pragma once

#include <cstdint>

#include <sstream>
#include <stdexcept>
#include <string>

namespace dlmem {

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

class Error : public std::runtime_error {
 public:
  template <typename... Args>
  explicit Error(const Args&... args) : std::runtime_error(detail::concat(args...)) {}
};

// Raised when a plan or an allocation does not fit the device memory. `min_budget`:
// the smallest budget the policy can reach, when it knows (0: unknown).
class OutOfMemory : public Error {
 public:
  using Error::Error;
  OutOfMemory& reach(uint64_t bytes) {
    min_budget = bytes;
    return *this;
  }
  uint64_t min_budget = 0;
};

class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& what) : std::logic_error(what) {}
};

}  // namespace dlmem

#define DLMEM_CHECK(cond, ...)                                                               \
  do {                                                                                       \
    if (!(cond))                                                                             \
      throw ::dlmem::InternalError(::dlmem::detail::concat(                                  \
          "internal error at ", __FILE__, ":", __LINE__, ": ", #cond, " ", ##__VA_ARGS__)); \
  } while (0)
