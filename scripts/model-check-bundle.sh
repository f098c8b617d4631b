#!/usr/bin/env bash
# Prepares the whole-model check of issue 13 for a CUDA machine (docs/plugin-host.md): output
# folders of the demo and three real exports (a CNN, a detector with If bodies, a transformer
# encoder), the originals' runs recorded here (verify_model.py --save-expected, so the originals
# need not travel), ONNX Runtime's headers, packed into one archive under the 64 MiB a device call
# carries. The real models come from `make real-models-env` and scripts/real-models/export.py
# (--only NAME --exporter legacy).
#   scripts/model-check-bundle.sh [ARCHIVE [NAME...]]   (default .device/model-check.tar.xz, ignored
#   by git; NAMEs pick entries of the list below, all by default)
# There: tar -xJf ARCHIVE -C /tmp/m && scripts/model-check.sh /tmp/m/bundle/ort \
#          /tmp/m/bundle/demo=/tmp/m/bundle/demo/host/expected.npz ...   (printed at the end)
set -euo pipefail
archive=${1:-.device/model-check.tar.xz}
shift || true
picked=("$@")
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tpat=$(swift build --show-bin-path)/tpat
python=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The op types per family are the corpus run's (scripts/real-models/run.py, OP_TYPES).
family() {
  "$python" -c 'import importlib.util, sys
spec = importlib.util.spec_from_file_location("run", "scripts/real-models/run.py")
run = importlib.util.module_from_spec(spec); spec.loader.exec_module(run)
print(",".join(run.OP_TYPES[sys.argv[1]]))' "$1"
}
cnn=$(family cnn); det=$(family detection); tr=$(family transformer)
demo=GatherND,ScatterND,OneHot,Resize,ReduceMax,Softmax,LayerNormalization,Conv,TopK,Where
models=(
  "demo models/generated/demo.onnx $demo"
  "mobilenet models/real/mobilenet_v3_small-legacy-opset17.onnx $cnn"
  "ssdlite models/real/ssdlite320_mobilenet_v3_large-legacy-opset17.onnx $det"
  "whisper models/real/whisper_encoder-legacy-opset17.onnx $tr"
  "dynamic_head models/generated/dynamic_head.onnx TopK,GatherElements,NonZero,Expand"
  "dynamic_masks models/generated/dynamic_masks.onnx Range,Expand,Tile"
)
if [ ${#picked[@]} -gt 0 ]; then
  chosen=()
  for entry in "${models[@]}"; do
    for name in "${picked[@]}"; do [ "${entry%% *}" = "$name" ] && chosen+=("$entry"); done
  done
  [ ${#chosen[@]} -eq ${#picked[@]} ] || { echo "model-check-bundle: unknown name among: ${picked[*]}" >&2; exit 2; }
  models=("${chosen[@]}")
fi
mkdir -p "$work/bundle"
for entry in "${models[@]}"; do
  read -r name model ops <<<"$entry"
  [ -f "$model" ] || { echo "model-check-bundle: $model is missing (see the header of this script)" >&2; exit 1; }
  out=$work/out/$name
  # Exit code 3 (some nodes failed, the rest generated) still leaves a model to check.
  "$tpat" generate "$model" -o "$out" --op-types "$ops" --force --arch sm_90 --no-build -q || [ $? -eq 3 ]
  # One recorded input set for models whose outputs are large (the archive's limit).
  inputs=()
  [ "$name" = whisper ] && inputs=(--inputs "$out/host/inputs/case0.npz")
  "$python" "$out/host/verify_model.py" --original "$model" "${inputs[@]}" --save-expected "$out/host/expected.npz"
  # What the custom-op library needs: kernels, constants, the rewritten model, host/.
  mkdir -p "$work/bundle/$name"
  (cd "$out" && tar --exclude='./plugins/*/test' --exclude='*/build' --exclude='*/bridge.log' --exclude='./bridge-*.json' \
     --exclude='*_plugin.cpp' --exclude='*_test.cu' --exclude='*/node.onnx' --exclude='*/CMakeLists.txt' \
     --exclude='host/tpat_plugin_host.cpp' -cf - .) | tar -xf - -C "$work/bundle/$name"
done
cp -r .venv/onnxruntime "$work/bundle/ort"
mkdir -p "$(dirname "$archive")"
tar -cf - -C "$work" bundle | xz -T0 -6 > "$archive"
ls -la "$archive"
echo "On the CUDA machine: mkdir -p /tmp/m && tar -xJf $archive -C /tmp/m && scripts/model-check.sh /tmp/m/bundle/ort \\"
for entry in "${models[@]}"; do read -r name _ <<<"$entry"; echo "  /tmp/m/bundle/$name=/tmp/m/bundle/$name/host/expected.npz \\"; done
