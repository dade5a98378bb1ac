#!/usr/bin/env bash
# Builds the ONNX importer's libFuzzer target (fuzz/CMakeLists.txt, clang with ASan and
# UBSan) and runs it for SECONDS over a corpus of ONNX models and TensorProto files: the
# PyTorch test models and a sample of the ONNX backend node tests. `make test` runs it
# (ctest: onnx_fuzz) for a short while; a crash, a sanitizer report or a leak fails it
# and leaves the input that caused it in BUILD_DIR (crash-*, leak-*).
#
#   bash scripts/fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS]
set -euo pipefail
src="$(cd "${1:?usage: fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS]}" && pwd)"
build="${2:?usage: fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS]}"
secs="${3:-60}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"
if ! command -v clang++ > /dev/null; then
  echo "fuzz.sh: clang++ is missing (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
CC=clang CXX=clang++ cmake -S "$src/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j 2 > "$build/build.log" 2>&1 || { tail -50 "$build/build.log" >&2; exit 1; }

seeds="$build/seeds"
rm -rf "$seeds" && mkdir -p "$seeds" "$build/corpus"
cp "$src"/tests/data/onnx/*.onnx "$seeds/"
for f in "$src"/tests/data/onnx/*/input_0.pb; do cp "$f" "$seeds/$(basename "$(dirname "$f")")_input.pb"; done
node=/usr/share/libonnx-testdata/data/node
if [[ -d "$node" ]]; then
  for t in conv_with_strides_padding gemm_default_matrix_bias layer_normalization_3d_axis1_epsilon \
           reshape_negative_dim slice_default_axes batchnorm_epsilon_training_mode softmax_axis_1 \
           gather_0 split_equal_parts_1d unsqueeze_axis_0 maxpool_2d_pads averagepool_2d_pads \
           matmul_4d expand_dim_changed dropout_default reduce_mean_keepdims_example shape; do
    [[ -f "$node/test_$t/model.onnx" ]] && cp "$node/test_$t/model.onnx" "$seeds/$t.onnx"
  done
fi
cd "$build"
./onnx_import_fuzzer -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 -timeout=20 \
  -print_final_stats=1 "$build/corpus" "$seeds" 2>&1 | tail -25
