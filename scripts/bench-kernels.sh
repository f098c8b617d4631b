#!/usr/bin/env bash
# Kernel benchmark driver, run on the GPU machine (CUDA nvcc, Python with PyTorch and CuPy; no TVM,
# Swift or TensorRT needed there). Builds each plugin folder's kernels with the local nvcc, links
# plugins/<p>/build/lib<p>_kernels.so for ctypes, then runs scripts/bench-kernels.py over them.
#
#   scripts/bench-kernels.sh LABEL=DIR [LABEL=DIR ...] -- [bench-kernels.py options]
#
# {model} in a DIR stands for the file stem of each --model given to bench-kernels.py (a static
# plugin set per size: static=out/{model} with --model a/bench-n1.onnx --model a/bench.onnx).
#
# DIRs come from `tpat generate models/generated/bench.onnx -o DIR --op-types ... --no-reference`
# (add --tune [--tuning-db DB] for tuned kernels); see docs/benchmarks.md for the full recipe.
set -euo pipefail
NVCC=${NVCC:-nvcc}; ARCH=${CUDA_ARCH:-sm_90}
sets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do sets+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
stems=()
prev=""
for a in "$@"; do
  [ "$prev" = "--model" ] && stems+=("$(basename "${a%.onnx}")")
  prev=$a
done
[ ${#stems[@]} -gt 0 ] || stems=(bench)
dirs=()
for s in "${sets[@]}"; do
  d=${s#*=}
  if [[ $d == *"{model}"* ]]; then for m in "${stems[@]}"; do dirs+=("${d//\{model\}/$m}"); done; else dirs+=("$d"); fi
done
for dir in "${dirs[@]}"; do
  # The kernels and their embedded constants (as the plugin library links them).
  constants=()
  for p in "$dir"/plugins/*/; do n=$(basename "$p"); constants+=("plugins/$n/build/${n}_constants.o"); done
  make -s -C "$dir" -j"$(nproc)" kernels "${constants[@]}" NVCC="$NVCC" CUDA_ARCH="$ARCH" >/dev/null
  for p in "$dir"/plugins/*/; do
    n=$(basename "$p")
    "$NVCC" -shared -arch="$ARCH" "$p/build/${n}_kernels.o" "$p/build/${n}_constants.o" -o "$p/build/lib${n}_kernels.so" -lcudart &
  done
  wait
done
args=()
for s in "${sets[@]}"; do args+=(--plugins "$s"); done
exec python3 "$(dirname "$0")/bench-kernels.py" "${args[@]}" "$@"
