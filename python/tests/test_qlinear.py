"""TPAT's QLinearMatMul (qlinear.py) against ONNX Runtime on the CPU through TVM's llvm target."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper


@pytest.mark.parametrize("dtype,a_shape,b_shape,per_axis", [
    (np.uint8, [4, 16], [16, 8], False), (np.int8, [2, 5, 32], [32, 3], False),
    (np.uint8, [6, 10], [10, 7], True), (np.int8, [3, 9], [9, 4], True),
    # one-element tensors instead of scalars (the ONNX node tests' form)
    (np.uint8, [2, 4], [4, 3], "one-element"),
])
def test_qlinear_matmul_is_onnx_runtimes(dtype, a_shape, b_shape, per_axis):
    from on_cpu import run_on_cpu

    rng = np.random.default_rng(a_shape[-1])
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max + 1, a_shape).astype(dtype)
    b = rng.integers(info.min, info.max + 1, b_shape).astype(dtype)
    n = b_shape[-1]
    consts = {
        # ONNX Runtime takes per-column scales of B, not per-row ones of A
        "a_scale": np.array(0.02, np.float32), "a_zero": np.array(3, dtype),
        "b_scale": np.float32(0.03) * (rng.uniform(0.5, 1.5, n).astype(np.float32) if per_axis is True else np.float32(1)),
        "b_zero": (rng.integers(0, 10, n) if per_axis is True else np.array(5)).astype(dtype),
        "y_scale": np.array(0.9 if dtype == np.uint8 else 0.5, np.float32), "y_zero": np.array(100 if dtype == np.uint8 else -3, dtype),
    }
    if per_axis == "one-element":
        consts = {k: np.asarray(v).reshape(1) for k, v in consts.items()}
    elem = TensorProto.UINT8 if dtype == np.uint8 else TensorProto.INT8
    node = helper.make_node("QLinearMatMul", ["a", "a_scale", "a_zero", "b", "b_scale", "b_zero", "y_scale", "y_zero"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", elem, a_shape), helper.make_tensor_value_info("b", elem, b_shape)],
                          [helper.make_tensor_value_info("y", elem, a_shape[:-1] + [n])],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    (got,) = run_on_cpu(model, a, b)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"a": a, "b": b})[0]
    assert got.dtype == want.dtype
    # ONNX Runtime requantizes in float32 like TPAT; a rounding tie may differ by one step
    assert np.abs(got.astype(np.int32) - want.astype(np.int32)).max() <= 1
    assert np.mean(got == want) > 0.99
