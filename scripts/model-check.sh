#!/usr/bin/env bash
# On a CUDA machine: the whole-model check of TPAT output folders (docs/plugin-host.md). For each
# OUT=ORIGINAL pair, builds OUT's ONNX Runtime custom-op library (the plugins' kernels) and runs
# OUT/host/verify_model.py against the original model, or against the original's recorded runs
# (ORIGINAL ending in .npz: made with verify_model.py --save-expected where the model is). ORT_DIR
# holds ONNX Runtime's headers in include/ (scripts/fetch-ort-headers.sh). Prints each check's
# lines; exits 1 if any failed.
#   scripts/model-check.sh ORT_DIR OUT=ORIGINAL.onnx|EXPECTED.npz [...]
set -uo pipefail
ort=$(cd "${1:?usage: model-check.sh ORT_DIR OUT=ORIGINAL.onnx ...}" && pwd)
shift
jobs=$(nproc 2>/dev/null || echo 8)
status=0
for pair in "$@"; do
  out=${pair%%=*}
  original=$(cd "$(dirname "${pair#*=}")" && pwd)/$(basename "${pair#*=}")
  echo "== $(basename "$out") against $(basename "$original")"
  start=$(date +%s)
  if ! make -s -C "$out" -j"$jobs" ortops ONNXRUNTIME_DIR="$ort" >"$out/ortops-build.log" 2>&1; then
    echo "FAIL build of the custom-op library ($out/ortops-build.log):"; tail -5 "$out/ortops-build.log"; status=1; continue
  fi
  echo "custom-op library built in $(( $(date +%s) - start )) s"
  case $original in
    *.npz) python3 "$out/host/verify_model.py" --expected "$original" || status=1 ;;
    *) python3 "$out/host/verify_model.py" --original "$original" || status=1 ;;
  esac
done
exit $status
