"""TPAT's OneHot (relax.one_hot) lowering: the frontend's index normalization and cast are folded
into one_hot, whose kernel normalizes each index itself. Checked numerically on the CPU (the same
TIR arithmetic in serial loops, built by TVM for LLVM) against ONNX Runtime, including negative and
out-of-range indices; on CUDA, that TPAT's kernel is the node's only kernel."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

NP = {TensorProto.INT64: np.int64, TensorProto.INT32: np.int32, TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
      TensorProto.FLOAT16: np.float16}


def one_hot_model(shape, depth, axis, idx_type=TensorProto.INT64, val_type=TensorProto.FLOAT,
                  values=(0, 1), depth_type=TensorProto.INT64) -> onnx.ModelProto:
    rank = len(shape)
    a = axis + rank + 1 if axis < 0 else axis
    out = list(shape[:a]) + [depth] + list(shape[a:])
    inits = [numpy_helper.from_array(np.array(depth, NP[depth_type]), "depth"),
             numpy_helper.from_array(np.array(values, NP[val_type]), "values")]
    g = helper.make_graph([helper.make_node("OneHot", ["i", "depth", "values"], ["y"], axis=axis)], "g",
                          [helper.make_tensor_value_info("i", idx_type, list(shape))],
                          [helper.make_tensor_value_info("y", val_type, out)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def run_cpu(model: onnx.ModelProto, indices: np.ndarray) -> np.ndarray:
    """TVM on the CPU with TPAT's fold and one_hot lowering (serial loops)."""
    import tvm
    from tvm import relax

    from tpat_bridge.compiler import import_model
    from tpat_bridge.one_hot import fold_one_hot_normalization_and_cast, one_hot_legalizer

    mod = fold_one_hot_normalization_and_cast(import_model(model, [])[0])
    target = tvm.target.Target("llvm")
    with target:
        mod = relax.transform.LegalizeOps(customize_legalize_map={"relax.one_hot": one_hot_legalizer(False)})(mod)
    assert "one_hot_tpat" in [gv.name_hint for gv in mod.functions], "TPAT's lowering did not apply"
    ex = tvm.compile(mod, target=target)
    return relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(indices)).numpy()


def run_ort(model: onnx.ModelProto, indices: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"i": indices})[0]


I64, I32, F32, F16 = TensorProto.INT64, TensorProto.INT32, TensorProto.FLOAT, TensorProto.FLOAT16
# The type combinations ONNX Runtime implements (indices, values, depth).
CASES = [
    # shape, depth, axis, indices, values, values' off/on, depth type
    ((16,), 12, -1, I64, F32, (0, 1), I64),        # 4 outputs per thread
    ((7,), 10, -1, I64, F32, (-2.5, 3), I64),      # depth not a multiple of 4
    ((3, 4), 6, 0, I64, F32, (0, 1), I64),         # depth first, rows of 4
    ((2, 3, 5), 4, 1, I32, F32, (1, 0), I32),      # depth in the middle, rows of 5, 32-bit indices
    ((4, 8), 8, -1, I64, I64, (0, 7), I64),        # int64 values
    ((2, 8), 16, 2, I64, F16, (0, 1), I64),        # float16 values
]


@pytest.mark.parametrize("shape,depth,axis,idx_type,val_type,values,depth_type", CASES)
def test_one_hot_matches_onnx_runtime(shape, depth, axis, idx_type, val_type, values, depth_type):
    model = one_hot_model(shape, depth, axis, idx_type, val_type, values, depth_type)
    rng = np.random.default_rng(0)
    n = int(np.prod(shape))
    # in range, negative, and out of range on both sides (an all-off row); 2**40 would alias
    # index 0 after a 32-bit truncation
    pool = list(range(-depth, depth)) + [depth, depth + 3, -depth - 1]
    if idx_type == TensorProto.INT64:
        pool += [2**40, -(2**40)]
    indices = rng.choice(np.array(pool, dtype=np.int64), size=n).astype(NP[idx_type]).reshape(shape)
    got, want = run_cpu(model, indices), run_ort(model, indices)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("val_type", [TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64])
def test_one_hot_is_one_kernel_on_cuda(val_type):
    """The frontend's less/add/where and the cast are folded: TPAT's kernel is the only one."""
    from tpat_bridge.compiler import compile_model

    kernels = list(compile_model(one_hot_model((16,), 64, -1, val_type=val_type), "sm_90", []).device_funcs)
    assert kernels == ["one_hot_tpat_kernel"], kernels


def test_unsupported_dtypes_keep_tvms_lowering():
    """float64 and int32 values: not checked on a GPU, so TVM's lowering and the frontend's ops."""
    from tpat_bridge.compiler import compile_model

    model = one_hot_model((16,), 64, -1, val_type=TensorProto.DOUBLE)
    kernels = list(compile_model(model, "sm_90", []).device_funcs)
    assert not any("tpat" in k for k in kernels), kernels


def test_float_depth_is_cast_to_int64_as_onnx_says():
    """ONNX casts a non-integer depth to int64 before use; TVM's frontend refuses a float depth,
    so the bridge hands it an int64 one (ONNX's backend tests use float depths)."""
    model = one_hot_model((5,), 6, -1, values=(0, 1), depth_type=TensorProto.FLOAT)
    indices = np.array([0, -1, 5, 6, -7], np.int64)
    np.testing.assert_array_equal(run_cpu(model, indices), run_ort(model, indices))
    assert model.graph.initializer[0].data_type == TensorProto.FLOAT  # the input model is left alone


def test_float_indices_are_cast_to_int64_as_onnx_says():
    """Integral values only: for others the spec's cast (truncation) and ONNX Runtime disagree."""
    model = one_hot_model((6,), 5, 0, idx_type=TensorProto.FLOAT, values=(0, 1), depth_type=TensorProto.FLOAT)
    indices = np.array([0.0, 1.0, -1.0, 4.0, 5.0, -6.0], np.float32)
    np.testing.assert_array_equal(run_cpu(model, indices), run_ort(model, indices))


@pytest.mark.parametrize("shape,axis,sizes", [(["N"], -1, [(1,), (5,)]), (["N", 3], 1, [(2, 3), (4, 3)])])
def test_a_symbolic_batch_keeps_tpats_kernel_and_matches_onnx_runtime(shape, axis, sizes):
    """Dims before the depth axis may be symbolic (a dynamic batch: the launch is a run-time count,
    64-bit index math); the same arithmetic on the CPU matches ONNX Runtime at two sizes."""
    from tpat_bridge.compiler import compile_model

    model = one_hot_model(shape, 12, axis)
    rng = np.random.default_rng(1)
    for size in sizes:
        pool = np.array(list(range(-12, 12)) + [12, -13, 2**40], dtype=np.int64)
        indices = rng.choice(pool, size=int(np.prod(size))).reshape(size)
        got, want = run_cpu(model, indices), run_ort(model, indices)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert list(compile_model(model, "sm_90", []).device_funcs) == ["one_hot_tpat_kernel"]
