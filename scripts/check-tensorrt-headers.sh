#!/usr/bin/env bash
# Compiles every generated plugin of an output folder against TensorRT headers (no TensorRT
# library needed), in both registration modes:
#   scripts/check-tensorrt-headers.sh OUT TENSORRT_INCLUDE_DIR
# TensorRT's own headers warn about deprecations; those are silenced, nothing else is.
set -euo pipefail
out=$1; include=$2
root=$(cd "$(dirname "$0")/.." && pwd)
nvcc=${TPAT_NVCC:-$(ls "$root"/.venv/lib/python3*/site-packages/nvidia/cu13/bin/nvcc | head -1)}
passed=0; failed=0
for dir in "$out"/plugins/*/; do
  name=$(basename "$dir")
  for static in 0 1; do
    if "$nvcc" -std=c++17 -I"$include" -I"$dir" -Xcompiler -Wall -Xcompiler -Wno-deprecated-declarations \
        -DTPAT_STATIC_REGISTRATION=$static -c "$dir/${name}_plugin.cpp" -o /tmp/tpat-trt-check.o 2>/tmp/tpat-trt-check.log; then
      passed=$((passed+1))
    else
      failed=$((failed+1)); echo "FAIL $name (static=$static)"; head -20 /tmp/tpat-trt-check.log
    fi
  done
done
echo "$passed passed, $failed failed"
test "$failed" -eq 0
