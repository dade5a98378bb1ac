#!/usr/bin/env bash
# Installs what dlmem needs to build, test and run its demo, from Debian's packages.
# Idempotent: packages already installed are skipped; apt-get runs only when something
# is missing. Set DLMEM_SKIP_DEPS=1 to skip entirely (e.g. on a machine you manage).
set -euo pipefail

if [[ "${DLMEM_SKIP_DEPS:-0}" == "1" ]]; then exit 0; fi

pkgs=(
  build-essential cmake pkg-config
  libdnnl-dev            # oneDNN: CPU kernels
  ocl-icd-opencl-dev opencl-c-headers  # Debian's dnnl CMake config asks for OpenCL
  coinor-libcbc-dev      # CBC: the MILP rematerialisation planner
  nlohmann-json3-dev     # JSON for plans, reports, snapshots
  libcli11-dev           # the dlmem command line
  libgtest-dev libgmock-dev
  libbenchmark-dev       # micro benchmarks
  zlib1g-dev             # reading the gzipped IDX files
  libonnx-dev libprotobuf-dev  # ONNX import: ONNX's own protobuf schema
  libonnx-testdata       # the ONNX backend node tests (make test runs them)
  clang libclang-rt-14-dev  # libFuzzer: make test fuzzes the ONNX importer (scripts/fuzz.sh)
  pybind11-dev python3-dev python3-numpy python3-pytest  # the Python package (python/) and its tests
  libzstd-dev liblz4-dev # general codecs for host-side swap buffers
  libopenmpi-dev openmpi-bin  # data-parallel training across processes (mpirun; tests run -np 2)
  chromium fonts-liberation  # make test opens the plan report in headless Chromium (tests/report)
  dataset-fashion-mnist  # the demo's data, under /usr/share/datasets/fashion-mnist
)
# Extra packages for the PyTorch peer benchmark (make bench only).
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(python3-torch python3-torchvision libopenblas0-pthread)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then exit 0; fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
