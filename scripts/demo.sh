#!/usr/bin/env bash
# The demo: TPAT on the small model that scripts/make-models.py writes (12 ops, among them
# GatherND, ScatterND, OneHot, Resize, ReduceMax, Softmax, LayerNormalization, Conv, TopK, Where).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tpat=$(swift build --show-bin-path)/tpat
"$tpat" inspect models/generated/demo.onnx
