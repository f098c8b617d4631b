#!/usr/bin/env bash
# The demo: TPAT on the small model that scripts/make-models.py writes (12 ops, among them
# GatherND, ScatterND, OneHot, Resize, ReduceMax, Softmax, LayerNormalization, Conv, TopK, Where):
# inspect it, then turn ten of its nodes into TensorRT plugins in demo-out/.
# On a CUDA machine: make -C demo-out check   (builds and runs every plugin's self-test)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tpat=$(swift build --show-bin-path)/tpat
"$tpat" inspect models/generated/demo.onnx
echo
"$tpat" generate models/generated/demo.onnx -o demo-out --force --arch "${TPAT_ARCH:-sm_90}" \
  --op-types GatherND,ScatterND,OneHot,Resize,ReduceMax,Softmax,LayerNormalization,Conv,TopK,Where
