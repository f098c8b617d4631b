"""TPAT's CumSum over inputs with symbolic dims (cumsum.py), against ONNX Runtime on the CPU
through TVM's llvm target; the CUDA kernel is the same TE, checked by the self-tests on a GPU."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from on_cpu import run_on_cpu


def scan_model(op, declared, axis, exclusive, reverse, dtype, opset):
    """One CumSum or CumProd node over x along a constant axis."""
    node = helper.make_node(op, ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", dtype, declared)],
                          [helper.make_tensor_value_info("y", dtype, declared)],
                          [helper.make_tensor("axis", TensorProto.INT64, [], [axis])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8 if opset < 21 else 10)

@pytest.mark.parametrize("declared,shape,axis,exclusive,reverse,dtype", [
    (["batch", "H", "W"], [2, 5, 7], 1, 0, 0, TensorProto.FLOAT),   # DETR's mask rows
    (["batch", "H", "W"], [1, 4, 9], 2, 0, 0, TensorProto.FLOAT),   # and columns
    (["batch", "sequence"], [3, 11], 1, 1, 0, TensorProto.INT64),   # position ids, exclusive
    (["N"], [13], 0, 0, 1, TensorProto.INT32),
    (["N", 4], [6, 4], 0, 1, 1, TensorProto.FLOAT),
])
def test_the_masked_sum_is_onnx_runtimes_cumsum(declared, shape, axis, exclusive, reverse, dtype):
    model = scan_model("CumSum", declared, axis, exclusive, reverse, dtype, 14)
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    x = (np.random.default_rng(3).standard_normal(shape) * 4).astype(np_dtype)
    log: list[str] = []
    (got,) = run_on_cpu(model, x, log=log)
    assert "cumsum_masked" in log[-1]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def numpy_cumprod(x, axis, exclusive, reverse):
    y = np.flip(x, axis) if reverse else x
    out = np.cumprod(y, axis=axis)
    if exclusive:
        out = np.concatenate([np.ones_like(np.take(out, [0], axis=axis)), np.delete(out, -1, axis=axis)], axis=axis)
    return np.flip(out, axis) if reverse else out


@pytest.mark.parametrize("declared,shape,axis,exclusive,reverse,dtype", [
    ([2, 6], [2, 6], 1, 0, 0, TensorProto.FLOAT),
    (["N", 5], [3, 5], 0, 1, 0, TensorProto.DOUBLE),
    ([7], [7], 0, 0, 1, TensorProto.INT64),
    ([3, 4], [3, 4], -1, 1, 1, TensorProto.INT32),
])
def test_cumprod_is_the_running_product(declared, shape, axis, exclusive, reverse, dtype):
    """CumProd (opset 26), which TVM's frontend lacks, against NumPy (the ONNX Runtime here predates it)."""
    model = scan_model("CumProd", declared, axis, exclusive, reverse, dtype, 26)
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    x = np.random.default_rng(5).integers(-3, 4, shape).astype(np_dtype)
    if np.issubdtype(np_dtype, np.floating):
        x = x + np.random.default_rng(6).uniform(-0.5, 0.5, shape).astype(np_dtype)
    (got,) = run_on_cpu(model, x)
    np.testing.assert_allclose(got, numpy_cumprod(x, axis % len(shape), exclusive, reverse), rtol=1e-5)


def test_node_tests_reproduce_their_outputs():
    """Every CumSum node test, its axis a constant as models hold it: static shapes now take the
    masked sum where TVM's CUDA scan would keep host scratch (exclusive, another axis, integers)."""
    from on_cpu import node_tests, run_on_cpu, node_test_data, with_constant_inputs

    cases = node_tests("test_cumsum")
    assert len(cases) >= 9
    for case in cases:
        values, (want,) = node_test_data(case)
        data_name, axis_name = [i.name for i in case.model.graph.input]
        (got,) = run_on_cpu(with_constant_inputs(case.model, {axis_name: values[axis_name]}), values[data_name])
        np.testing.assert_allclose(got, want, err_msg=case.name)
