"""TPAT's ScatterND legalization: rows scatter in parallel, the copy moves float4s."""
from __future__ import annotations

import onnx
from onnx import TensorProto, helper


def _scatter_model(reduction: str = "none") -> onnx.ModelProto:
    g = helper.make_graph(
        [helper.make_node("ScatterND", ["d", "i", "u"], ["y"], reduction=reduction)], "g",
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, [4, 16, 16, 32]),
         helper.make_tensor_value_info("i", TensorProto.INT64, [4, 10, 3]),
         helper.make_tensor_value_info("u", TensorProto.FLOAT, [4, 10, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16, 16, 32])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _launches(model):
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.plan import build_plan

    compiled = compile_model(model, "sm_90", [])
    return compiled, build_plan(compiled)


def test_scatter_rows_run_in_parallel():
    compiled, plan = _launches(_scatter_model())
    assert "float4" in compiled.cuda_source
    grids = [str(st.grid[0]) for st in plan.steps if hasattr(st, "grid")]
    # where (index wrap), copy, scatter: the scatter covers 40 rows x 32 floats, not one block.
    assert "Int(value=5)" in grids, grids  # 40*32 / 256 threads


def test_scatter_add_keeps_ordered_kernel():
    compiled, _ = _launches(_scatter_model("add"))
    assert "float4" not in compiled.cuda_source
