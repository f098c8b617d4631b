"""TPAT's CumSum over inputs with symbolic dims (cumsum.py), against ONNX Runtime on the CPU
through TVM's llvm target; the CUDA kernel is the same TE, checked by the self-tests on a GPU."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper


@pytest.mark.parametrize("declared,shape,axis,exclusive,reverse,dtype", [
    (["batch", "H", "W"], [2, 5, 7], 1, 0, 0, TensorProto.FLOAT),   # DETR's mask rows
    (["batch", "H", "W"], [1, 4, 9], 2, 0, 0, TensorProto.FLOAT),   # and columns
    (["batch", "sequence"], [3, 11], 1, 1, 0, TensorProto.INT64),   # position ids, exclusive
    (["N"], [13], 0, 0, 1, TensorProto.INT32),
    (["N", 4], [6, 4], 0, 1, 1, TensorProto.FLOAT),
])
def test_the_masked_sum_is_onnx_runtimes_cumsum(declared, shape, axis, exclusive, reverse, dtype):
    import tvm
    from tvm import relax

    from tpat_bridge.compiler import import_model

    node = helper.make_node("CumSum", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", dtype, declared)],
                          [helper.make_tensor_value_info("y", dtype, declared)],
                          [helper.make_tensor("axis", TensorProto.INT64, [], [axis])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    log: list[str] = []
    mod, _, _ = import_model(model, log)
    assert "cumsum_masked" in log[-1]
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    x = (np.random.default_rng(3).standard_normal(shape) * 4).astype(np_dtype)
    got = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
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
    import tvm
    from tvm import relax

    from tpat_bridge.compiler import import_model

    node = helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", dtype, declared)],
                          [helper.make_tensor_value_info("y", dtype, declared)],
                          [helper.make_tensor("axis", TensorProto.INT64, [], [axis])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 26)], ir_version=10)
    mod, _, _ = import_model(model, [])
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    x = np.random.default_rng(5).integers(-3, 4, shape).astype(np_dtype)
    if np.issubdtype(np_dtype, np.floating):
        x = x + np.random.default_rng(6).uniform(-0.5, 0.5, shape).astype(np_dtype)
    got = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(got, numpy_cumprod(x, axis % len(shape), exclusive, reverse), rtol=1e-5)
