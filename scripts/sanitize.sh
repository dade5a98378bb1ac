#!/usr/bin/env bash
# The sanitizer suites of make test (sanitize/CMakeLists.txt says what they cover):
# builds them and runs the ASan+UBSan suite of the planning layers and the TSan suite of
# the thread transport and the copy engine. Exit 0 only when both pass with no report.
#
#   bash scripts/sanitize.sh SRC_DIR BUILD_DIR [DLMEM_CLI]     # ctest: sanitizers
set -euo pipefail
src="${1:?usage: sanitize.sh SRC_DIR BUILD_DIR [DLMEM_CLI]}"
build="${2:?usage: sanitize.sh SRC_DIR BUILD_DIR [DLMEM_CLI]}"
cli="${3:-dlmem}"
mkdir -p "$build"
cmake -S "$src/sanitize" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLMEM_CLI="$cli" > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j 2 > "$build/build.log" 2>&1 || { tail -50 "$build/build.log" >&2; exit 1; }
status=0
echo "sanitize.sh: ASan+UBSan: the planning layers"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 "$build/asan_tests" --gtest_brief=1 || status=1
echo "sanitize.sh: TSan: the thread transport and the copy engine"
TSAN_OPTIONS="halt_on_error=1 suppressions=$src/tests/tsan.supp" "$build/tsan_tests" --gtest_brief=1 || status=1
exit $status
