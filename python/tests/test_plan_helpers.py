"""Small helpers of the launch plan (no TVM needed)."""

from __future__ import annotations

import pytest

from tpat_bridge.plan import dtype_bytes


@pytest.mark.parametrize("dtype,size", [
    ("bool", 1), ("int8", 1), ("uint8", 1), ("float16", 2), ("bfloat16", 2), ("float32", 4), ("int64", 8),
    ("float64", 8), ("int8x4", 1),
    # The narrow floats: their bits come before the "_" (a crash of the bridge before).
    ("float8_e4m3fn", 1), ("float8_e5m2", 1), ("float8_e8m0fnu", 1), ("float4_e2m1fn", 1),
])
def test_dtype_bytes(dtype: str, size: int) -> None:
    assert dtype_bytes(dtype) == size


def test_dtype_bytes_rejects_unknown() -> None:
    with pytest.raises(ValueError):
        dtype_bytes("handle")


def test_manifest_dtypes() -> None:
    from tpat_bridge.errors import BridgeError
    from tpat_bridge.plan import check_manifest_dtype

    check_manifest_dtype("input", 0, "float32")
    check_manifest_dtype("output", 1, "bool")
    with pytest.raises(BridgeError) as info:
        check_manifest_dtype("output", 0, "float8_e4m3fn")
    assert info.value.error_class == "dtype" and "float8_e4m3fn" in info.value.message


def test_graph_shape_check() -> None:
    from onnx import TensorProto, helper

    from tpat_bridge.errors import BridgeError
    from tpat_bridge.expr import Int, Sym
    from tpat_bridge.plan import check_graph_shape

    vi = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 1])
    check_graph_shape(0, [Int(3), Int(1)], vi)
    check_graph_shape(0, [Sym("N"), Int(1)], vi)  # symbolic in TVM: nothing to compare
    check_graph_shape(0, [Int(7)], helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"]))
    check_graph_shape(0, [], helper.make_tensor_value_info("y", TensorProto.FLOAT, None))
    with pytest.raises(BridgeError) as info:
        check_graph_shape(1, [], vi)  # LayerNormalization's Mean as TVM 0.27 gives it
    assert info.value.error_class == "unsupported" and "[3, 1] in the graph" in info.value.message


def test_failure_names_the_original_op(tmp_path) -> None:
    """A sub-model with TPAT's boundary Cast first: the message names the node's op, not Cast."""
    from tpat_bridge.bridge import NodeRequest, run_node

    req = NodeRequest("n0", str(tmp_path / "missing.onnx"), str(tmp_path / "n0"), "tpat_n0_",
                      {"name": "c", "opType": "Compress", "domain": ""})
    entry = run_node(req, "sm_90", "test")
    assert entry["status"] == "error" and entry["errorClass"] == "import"
    assert entry["message"].startswith("Compress: ")
