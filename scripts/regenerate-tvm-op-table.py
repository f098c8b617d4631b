#!/usr/bin/env python3
"""Regenerates Sources/TPATKit/Resources/ops/tvm-onnx-ops.json: the ONNX ops that the pinned TVM's
Relax ONNX frontend converts, read from its converter map (tvm.relax.frontend.onnx), with TPAT's own
converters (python/tpat_bridge/converters.py). Run it with the
project's virtual environment: .venv/bin/python scripts/regenerate-tvm-op-table.py"""
import json
import pathlib
import sys

import onnx

import tvm
from tvm.relax.frontend.onnx import onnx_frontend

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "python"))
from tpat_bridge.converters import CONVERTERS  # noqa: E402
from tpat_bridge.functions import function_ops, qualified_name  # noqa: E402

# TVM's converters, and TPAT's own (python/tpat_bridge/converters.py), which the bridge uses instead;
# an op of another domain than the default one as `domain:op`
tpat_ops = sorted(qualified_name(c.domain, c.op_type) for c in CONVERTERS.values())
ops = sorted(set(onnx_frontend._get_convert_map()) | set(tpat_ops))
# Ops whose every node has a data-dependent output size, which TPAT's converter declares as
# TensorRT size tensors (a record with size outputs for every node; TopK's only for a run-time K)
size_tensor_ops = sorted(qualified_name(c.domain, c.op_type) for c in CONVERTERS.values()
                         if c.size_outputs and c.data_dependent is None)
# Ops TVM lacks whose ONNX schema has a function body: the bridge imports the body instead.
functions = function_ops(set(ops))
out = pathlib.Path(__file__).resolve().parent.parent / "Sources/TPATKit/Resources/ops/tvm-onnx-ops.json"
out.parent.mkdir(parents=True, exist_ok=True)
document = {
    "source": f"apache-tvm=={tvm.__version__}: tvm.relax.frontend.onnx.onnx_frontend._get_convert_map()",
    "regenerate": ".venv/bin/python scripts/regenerate-tvm-op-table.py",
    "ops": ops,
    "tpatOps": tpat_ops,
    "tpatOpsSource": "python/tpat_bridge/converters.py: CONVERTERS (TPAT's own converters, TVM's replaced or missing)",
    "sizeTensorOps": size_tensor_ops,
    "sizeTensorOpsSource": "python/tpat_bridge/converters.py: CONVERTERS with size outputs for every node",
    "functionOps": functions,
    "functionOpsSource": f"onnx=={onnx.__version__}: schemas with a function body (python/tpat_bridge/functions.py)",
}
out.write_text(json.dumps(document, indent=1) + "\n")
print(f"wrote {out} ({len(ops)} ops, {len(functions)} function ops)")
