#!/usr/bin/env bash
# Everything TPAT needs on a fresh Linux x86_64 machine with Swift and Python 3: a virtual
# environment inside the repo (.venv, git-ignored) with the pinned Python packages (TVM, ONNX,
# ONNX Runtime, nvcc and the CUDA runtime from pip), then the demo model and test fixtures.
# Idempotent: the venv is rebuilt only when scripts/requirements.txt changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv"
stamp="$venv/.tpat-requirements"
python=${PYTHON:-python3}
if ! cmp -s scripts/requirements.txt "$stamp" 2>/dev/null; then
  echo "setup: creating $venv with the pinned Python packages (a few minutes the first time)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -U pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
  cp scripts/requirements.txt "$stamp"
fi
"$venv/bin/python" -c "import tvm, tvm_ffi, onnx, onnxruntime; assert tvm_ffi.__version__ == '0.1.14.post1', tvm_ffi.__version__"
nvcc=$(ls "$venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc 2>/dev/null | head -1)
[ -x "$nvcc" ] || { echo "setup: nvcc missing from the nvidia-cuda-nvcc wheel" >&2; exit 1; }
"$venv/bin/python" scripts/make-models.py
# ONNX Runtime's C API headers (the whole-model check's custom-op library builds against them; the
# pip wheel has none). Optional: without them that one test is skipped, nothing else changes.
scripts/fetch-ort-headers.sh "$venv/onnxruntime" || echo "setup: warning: no ONNX Runtime headers; the custom-op library test is skipped" >&2
