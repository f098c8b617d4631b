#!/usr/bin/env bash
# Generates the plugin folders of the dynamic-shape benchmark (issue 15; docs/benchmarks.md) into
# DIR (default .device/b15): the benchmark model static at N = 1, the benchmark's N and the
# largest N (bench-n1, bench, bench-nmax), its dynamic twin (bench-dynamic); BERT-base's attention
# and norm workloads (and two elementwise ones of TVM's kernels: the GELU's Erf, the attention mask's
# Add) static at 1x128, 8x128 and 64x512 (bench-transformer-*), dynamic without a
# profile (bench-transformer-dynamic) and with one (bench-transformer-profiled: the specialized
# launch plan at 8x128); and the dynamic check model with self-test data (dyncheck).
# Then, on a GPU machine, from the repository root, `OUT=RESULTS bash DIR/run.sh` (written here; the
# whole check in one call: both benchmark lines, then the self-tests):
#   scripts/bench-kernels.sh static=DIR/{model} generic=DIR/bench-transformer-dynamic dynamic=DIR/bench-transformer-profiled -- \
#       --model models/generated/bench-transformer-1x128.onnx --model models/generated/bench-transformer-8x128.onnx \
#       --model models/generated/bench-transformer-64x512.onnx --compile-dynamic --no-compile
#   scripts/bench-kernels.sh static=DIR/{model} dynamic=DIR/bench-dynamic -- --model models/generated/bench-n1.onnx \
#       --model models/generated/bench.onnx --model models/generated/bench-nmax.onnx --compile-dynamic --no-compile
#   make -C DIR/dyncheck check
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.device/b15}
T=${TPAT:-.build/debug/tpat}
PY=.venv/bin/python
# DIR's subfolders are replaced: only in a folder this script made (its marker file), never
# through a link, never in a folder of the user's.
MARK=.tpat-bench-dynamic
if [ -L "$DIR" ]; then echo "prepare-bench-dynamic: $DIR is a link; give a plain folder" >&2; exit 1; fi
if [ -e "$DIR" ] && [ ! -f "$DIR/$MARK" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
  echo "prepare-bench-dynamic: $DIR exists and was not made by this script; give a new folder" >&2; exit 1
fi
mkdir -p "$DIR" && touch "$DIR/$MARK"
for a in "--size 1" "--size bench" "--size max" "--dynamic" "--dynamic-check" \
         "--transformer 1x128" "--transformer 8x128" "--transformer 64x512" "--transformer dynamic"; do
  $PY scripts/make-bench-models.py $a >/dev/null
done
gen() { local out=$1; shift; rm -rf "$DIR/$out"; "$T" generate "$@" -o "$DIR/$out" --arch sm_90 --no-build --no-kernel-cache -q; }
OPS=GatherND,ScatterND,OneHot,Resize,ReduceMax,Softmax,LayerNormalization
for m in bench bench-n1 bench-nmax bench-dynamic; do gen $m models/generated/$m.onnx --op-types $OPS --no-reference; done
TOPS=MatMul,Softmax,LayerNormalization,Erf,Add
for m in 1x128 8x128 64x512 dynamic; do
  gen bench-transformer-$m models/generated/bench-transformer-$m.onnx --op-types $TOPS --no-reference
done
gen bench-transformer-profiled models/generated/bench-transformer-dynamic.onnx --op-types $TOPS \
  --no-reference --profile B=1:8:64 --profile S=16:128:512
gen dyncheck models/generated/bench-dynamic-check.onnx --op-types GatherND,ScatterND,Resize,ReduceMax,Softmax,LayerNormalization,MatMul,Erf,Mul \
  --profile N=1:2:4 --profile S=8:40:64 --profile K=200:700:1100
# run.sh finds its folder from its own path: no path of the user's is written into its text.
cat > "$DIR/run.sh" <<'RUN'
#!/usr/bin/env bash
# Issue 15's GPU check, one call (written by scripts/prepare-bench-dynamic.sh; run from the
# repository root): results into $OUT.
set -uo pipefail
D=$(dirname "$0")
G=models/generated
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 280 scripts/bench-kernels.sh "static=$D/{model}" "generic=$D/bench-transformer-dynamic" \
  "dynamic=$D/bench-transformer-profiled" ${EXTRA_TRANSFORMER:-} -- --model "$G/bench-transformer-1x128.onnx" \
  --model "$G/bench-transformer-8x128.onnx" --model "$G/bench-transformer-64x512.onnx" --compile-dynamic --no-compile \
  --out "$OUT/bench-transformer.json" > "$OUT/bench-transformer.log" 2>&1
echo "transformer rc=$?"; tail -40 "$OUT/bench-transformer.log"
timeout 280 scripts/bench-kernels.sh "static=$D/{model}" "dynamic=$D/bench-dynamic" -- --model "$G/bench-n1.onnx" \
  --model "$G/bench.onnx" --model "$G/bench-nmax.onnx" --compile-dynamic --no-compile \
  --out "$OUT/bench-dynamic.json" > "$OUT/bench-dynamic.log" 2>&1
echo "dynamic twin rc=$?"; tail -45 "$OUT/bench-dynamic.log"
# the self-tests last: a call cut short by the device's time keeps both benchmarks
( time make -s -C "$D/dyncheck" check -j16 ) > "$OUT/dyncheck.log" 2>&1; grep -v "^PASS" "$OUT/dyncheck.log" | tail -12
RUN
echo "$DIR"
