#!/usr/bin/env bash
# Benchmark: load a 1 GB ONNX model, rewrite one node into a plugin node, save it (release build).
# Writes the model once to .build/bench/large.onnx with Python's onnx. Prints a table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
model=.build/bench/large.onnx
if [ ! -f "$model" ]; then
  mkdir -p .build/bench
  .venv/bin/python - "$model" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
# 64 MatMuls with 4096x1024 float32 weights (16 MiB each): 1.07 GB of initializers, inline.
n = 64
rng = np.random.default_rng(0)
nodes, inits = [], []
prev = "x"
for i in range(n):
    w = rng.standard_normal((1024, 1024 * 4), dtype=np.float32) if i % 2 == 0 else rng.standard_normal((4096, 1024), dtype=np.float32)
    inits.append(numpy_helper.from_array(w, f"w{i}"))
    nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"], name=f"layer{i}/matmul"))
    prev = f"h{i}"
graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1024])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", 1024])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
onnx.save(model, sys.argv[1])
PY
fi
swift build -c release --product tpat-bench >/dev/null
"$(swift build -c release --show-bin-path)/tpat-bench" "$model" layer10/matmul 3
