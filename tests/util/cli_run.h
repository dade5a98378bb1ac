// Runs the dlmem command line built beside the tests (DLMEM_CLI_PATH, set by
// CMakeLists.txt) and returns its exit code and its stdout and stderr together.
//
//   CliRun r = run_cli("plan --model lenet5 --json");
//   EXPECT_EQ(r.code, 0) << r.out;
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace dlmem::test_util {

struct CliRun {
  int code;
  std::string out;
};

inline CliRun run_cli(const std::string& args) {
  const std::string cmd = std::string(DLMEM_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

}  // namespace dlmem::test_util
