#!/usr/bin/env bash
# Prepares the plugin host check of issue 13 for a CUDA machine: output folders of the demo, the op
# list model and the lowerings model for both plugin APIs (rendered here, built there), a second
# demo folder with the same node names (loaded together with the first), and TensorRT's headers.
#   scripts/plugin-host-bundle.sh TRT_HEADERS [BUNDLE]
# TRT_HEADERS holds v8.6.1/include, v10.*/include and v11.*/include (TensorRT's public headers).
# BUNDLE (default .device/hostcheck, ignored by git) is what travels; there, run
#   scripts/plugin-host-check.sh BUNDLE
set -euo pipefail
headers=${1:?usage: plugin-host-bundle.sh TRT_HEADERS [BUNDLE]}
bundle=${2:-.device/hostcheck}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tpat=$(swift build --show-bin-path)/tpat
rm -rf "$bundle"
mkdir -p "$bundle/trt"
for v in "$headers"/*/; do
  name=$(basename "$v")
  mkdir -p "$bundle/trt/$name" && cp -r "$v/include" "$bundle/trt/$name/"
done
demo_ops=GatherND,ScatterND,OneHot,Resize,ReduceMax,Softmax,LayerNormalization,Conv,TopK,Where
list_ops=Abs,Add,Softmax,ReduceMax,LayerNormalization,GatherND,ScatterND,OneHot,Resize,MatMul,Conv,Erf,IsInf,Where,TopK,CumSum,ArgMax
lowering_ops=GatherND,LayerNormalization,LogSoftmax,OneHot,ReduceMax,ReduceMin,ReduceSum,Softmax
# Exit code 3 (some nodes failed, the rest generated) still leaves a folder to check.
generate() { "$tpat" generate "$@" --force --arch sm_90 --no-build || [ $? -eq 3 ]; }
for api in v3 v2; do
  generate models/generated/demo.onnx -o "$bundle/demo-$api" --tensorrt-api $api --op-types $demo_ops
  generate models/generated/ops.onnx -o "$bundle/ops-$api" --tensorrt-api $api --op-types $list_ops
  generate models/generated/lowerings.onnx -o "$bundle/lowerings-$api" --tensorrt-api $api --op-types $lowering_ops
done
# Same node names, same plugin names, other output: both load into one process.
generate models/generated/demo.onnx -o "$bundle/demo-subset-v3" --op-types Softmax,LayerNormalization,Conv
cp scripts/plugin-host-check.sh "$bundle/"
du -sh "$bundle"
