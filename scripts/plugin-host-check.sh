#!/usr/bin/env bash
# On a CUDA machine with nvcc: builds every output folder of a bundle (scripts/plugin-host-bundle.sh)
# and runs its plugin host: v3 folders against each TensorRT 10/11 header version, v2 folders
# against 8.6; then the demo's two v3 folders (same node names) loaded into one process.
# Prints each host's lines; exits 1 if any plugin failed.
#   scripts/plugin-host-check.sh [BUNDLE]
set -uo pipefail
bundle=$(cd "${1:-.device/hostcheck}" && pwd)
jobs=$(nproc 2>/dev/null || echo 8)
status=0
run() { # folder headers [ALSO]
  local out=$1 trt=$2 also=${3:-}
  [ -d "$out" ] || return 0  # a bundle may travel in parts (v3 folders, v2 folders)
  echo "== $(basename "$out") with TensorRT headers $(basename "$trt")"
  rm -rf "$out"/plugins/*/build/lib*.so "$out/host/build"
  if ! make -s -C "$out" -j"$jobs" plugins TENSORRT_DIR="$trt" >"$out/plugins-build.log" 2>&1; then
    echo "FAIL build of the plugin libraries ($out/plugins-build.log):"; tail -5 "$out/plugins-build.log"; status=1; return
  fi
  make -s -C "$out" check-plugins TENSORRT_DIR="$trt" ALSO="$also" || status=1
}
for trt in "$bundle"/trt/v1[0-9]*; do
  for m in demo ops lowerings; do run "$bundle/$m-v3" "$trt"; done
done
for trt in "$bundle"/trt/v8*; do
  for m in demo ops lowerings; do run "$bundle/$m-v2" "$trt"; done
done
for trt in "$bundle"/trt/v1[0-9]*; do
  [ -d "$bundle/demo-subset-v3" ] || break
  make -s -C "$bundle/demo-subset-v3" -j"$jobs" plugins TENSORRT_DIR="$trt" >/dev/null 2>&1
  echo "(with demo-subset-v3's plugins in the same process)"
  run "$bundle/demo-v3" "$trt" "$bundle/demo-subset-v3/host/plugins.json"
  break
done
exit $status
