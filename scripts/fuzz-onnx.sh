#!/usr/bin/env bash
# Fuzzes TPAT's ONNX loader (decode, graph validation, external-data checks, graph index,
# constant reads) with libFuzzer for DURATION seconds, starting from the committed seed corpus
# fuzz/corpus/ (written by fuzz/make-corpus.py). New inputs go to fuzz/.build-fuzz/corpus/;
# a crash, hang (-timeout) or out-of-memory leaves its input in fuzz/.build-fuzz/artifacts/ and
# makes this script fail. Replay one: fuzz/.build-fuzz/release/FuzzONNXLoader FILE
#
#   scripts/fuzz-onnx.sh 600
set -euo pipefail

duration=${1:?usage: scripts/fuzz-onnx.sh DURATION_SECONDS}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch="$root/fuzz/.build-fuzz"
sanitizers=${TPAT_FUZZ_SANITIZERS:-fuzzer,address}

echo "building the fuzz target (-sanitize=$sanitizers, release)..." >&2
swift build --package-path "$root/fuzz" --scratch-path "$scratch" -c release \
    -Xswiftc "-sanitize=$sanitizers" --product FuzzONNXLoader >&2

mkdir -p "$scratch/corpus" "$scratch/artifacts"
binary="$scratch/release/FuzzONNXLoader"
echo "fuzzing for ${duration}s: $binary" >&2
# -timeout: one input taking 10 s is a hang (a FIFO opened for reading blocks forever).
# -rss_limit_mb: an input that makes the loader allocate gigabytes is a finding too.
# -max_len: room for the one seed (large_raw) that takes the zero-copy decoding path.
# The progress lines for each new input are left out of the terminal (they stay in the log).
set +e
"$binary" "$scratch/corpus" "$root/fuzz/corpus" \
    -max_total_time="$duration" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
    -print_final_stats=1 -artifact_prefix="$scratch/artifacts/" > "$scratch/last-run.log" 2>&1
status=$?
set -e
{ grep -v "NEW \|REDUCE \|# Uses:" "$scratch/last-run.log" || true; } | tail -n 40 >&2
runs=$(grep -o "stat::number_of_executed_units: [0-9]*" "$scratch/last-run.log" | grep -o "[0-9]*$" || echo "?")
crashes=$(find "$scratch/artifacts" -type f | wc -l)
seeds=$(find "$root/fuzz/corpus" -type f | wc -l)
echo "fuzz-onnx: ${duration}s, $runs executions, $crashes crash/hang artifacts, $seeds seeds, exit $status" >&2
exit "$status"
