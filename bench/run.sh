#!/usr/bin/env bash
# make bench: every benchmark in its quick mode, JSON lines to stdout and to
# out/bench.jsonl. Full runs: see docs/benchmarks.md for each command.
set -uo pipefail
BUILD=${1:-build/release}
mkdir -p out
: > out/bench.jsonl
run() {
  echo "== $*" >&2
  "$@" | tee -a out/bench.jsonl
}
run /usr/bin/python3 bench/torch_peer.py "$BUILD" --quick
for b in "$BUILD"/*_bench; do
  [[ -x "$b" ]] || continue
  run "$b" --quick
done
echo "wrote out/bench.jsonl" >&2
