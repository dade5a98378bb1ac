#!/usr/bin/env bash
# Builds dlmem's libFuzzer targets (fuzz/CMakeLists.txt: clang, ASan, UBSan) and runs
# each for SECONDS over a seed corpus of real files: the ONNX importer (the PyTorch
# test models and a sample of the ONNX node tests), checkpoints and .dlmz models
# (written by DLMEM_CLI when given), device profiles, placement CSVs, IDX dataset files. `make test` runs
# a short smoke of each (ctest: fuzz); `make fuzz` runs them longer (FUZZ_SECONDS). A
# crash, a sanitizer report or a leak fails the run and leaves the input in
# BUILD_DIR/TARGET/ (crash-*, leak-*, timeout-*): turn it into a regression test.
#
#   bash scripts/fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS [DLMEM_CLI]]
set -euo pipefail
src="$(cd "${1:?usage: fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS [DLMEM_CLI]]}" && pwd)"
build="${2:?usage: fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS [DLMEM_CLI]]}"
secs="${3:-60}"
cli="${4:-}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"
if ! command -v clang++ > /dev/null; then
  echo "fuzz.sh: clang++ is missing (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
CC=clang CXX=clang++ cmake -S "$src/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j 2 > "$build/build.log" 2>&1 || { tail -50 "$build/build.log" >&2; exit 1; }

seed() { mkdir -p "$build/seeds/$1"; }
rm -rf "$build/seeds"
seed onnx_import; seed checkpoint; seed dlmz; seed profile; seed place_csv; seed idx; seed remat_graph; seed plan_json
cp "$src"/tests/data/onnx/*.onnx "$build/seeds/onnx_import/"
for f in "$src"/tests/data/onnx/*/input_0.pb; do cp "$f" "$build/seeds/onnx_import/$(basename "$(dirname "$f")")_input.pb"; done
node=/usr/share/libonnx-testdata/data/node
if [[ -d "$node" ]]; then
  for t in conv_with_strides_padding gemm_default_matrix_bias layer_normalization_3d_axis1_epsilon \
           reshape_negative_dim slice_default_axes batchnorm_epsilon_training_mode softmax_axis_1 \
           gather_0 split_equal_parts_1d unsqueeze_axis_0 maxpool_2d_pads averagepool_2d_pads \
           matmul_4d expand_dim_changed dropout_default reduce_mean_keepdims_example shape convtranspose; do
    [[ -f "$node/test_$t/model.onnx" ]] && cp "$node/test_$t/model.onnx" "$build/seeds/onnx_import/$t.onnx"
  done
fi
# fuzz/seeds/TARGET: hand-written seeds and regress-*: inputs that once crashed a target.
for t in onnx_import checkpoint dlmz profile place_csv idx remat_graph plan_json; do
  [[ -d "$src/fuzz/seeds/$t" ]] && cp "$src/fuzz/seeds/$t"/* "$build/seeds/$t/"
done
if [[ -n "$cli" && -x "$cli" ]]; then
  "$cli" train --model mlp --dataset synthetic --epochs 1 --steps 1 --batch 8 --no-eval \
    --save "$build/seeds/checkpoint/mlp.ckpt" > /dev/null 2>&1 || true
  "$cli" compress --model mlp --checkpoint "$build/seeds/checkpoint/mlp.ckpt" \
    --out "$build/seeds/dlmz/mlp.dlmz" > /dev/null 2>&1 || true
fi
# The plan target's graph is its own (no kernel workspaces): it writes its seed plans.
DLMEM_FUZZ_WRITE_SEEDS="$build/seeds/plan_json" "$build/plan_json_fuzzer" > /dev/null 2>&1 || true
for d in checkpoint dlmz plan_json; do  # something to mutate when no CLI wrote seeds
  [[ -n "$(ls -A "$build/seeds/$d")" ]] || printf 'seed' > "$build/seeds/$d/empty"
done

status=0
for t in onnx_import checkpoint dlmz profile place_csv idx remat_graph plan_json; do
  mkdir -p "$build/$t/corpus"
  echo "fuzz.sh: $t for ${secs}s"
  if ! (cd "$build/$t" && "$build/${t}_fuzzer" -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 \
          -timeout=20 -print_final_stats=1 "$build/$t/corpus" "$build/seeds/$t" > "$build/$t/log" 2>&1); then
    echo "fuzz.sh: $t FAILED:" >&2
    grep -E "ERROR|SUMMARY|runtime error|what\(\)|Test unit written" "$build/$t/log" | head -20 >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|Done" "$build/$t/log" | head -1
  fi
done
exit $status
