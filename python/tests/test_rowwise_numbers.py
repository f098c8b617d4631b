"""The numbers of TPAT's row kernels (rowwise.py: Softmax and LayerNormalization, one warp per
row, warp shuffles for the row's max and sum) computed by their CUDA on the CPU (cuda_on_cpu.py,
lockstep warps), against numpy. On a GPU they are checked by the self-tests and the kernel
benchmark (docs/benchmarks.md); here both Softmax kernels are run: the static register kernel and
the streaming kernel (rows of run-time length, or static ones too long or ragged for registers),
short and long rows, ragged lengths, and a row of -inf."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytestmark = pytest.mark.skipif(__import__("cuda_on_cpu").compiler() is None, reason="needs a C++20 compiler")


def _model(op: str, shape: list, inits: list | None = None, **attrs) -> onnx.ModelProto:
    inputs = ["x"] + [t.name for t in inits or []]
    g = helper.make_graph([helper.make_node(op, inputs, ["y"], **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits or [])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray, workdir: str, kernel: str) -> np.ndarray:
    from cuda_on_cpu import run_plan_on_cpu
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.plan import build_plan

    compiled = compile_model(model, "sm_90", [])
    assert kernel in compiled.device_funcs, list(compiled.device_funcs)
    (got,) = run_plan_on_cpu(compiled, build_plan(compiled), [x], workdir)
    return got


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("shape,size,kernel", [
    ([4, "L"], (4, 20), "softmax_rows_tpat_kernel"),      # shorter than a warp: lanes with nothing
    ([4, "L"], (4, 100), "softmax_rows_tpat_kernel"),     # run-time length, ragged: a partial chunk
    ([4, "L"], (4, 128), "softmax_rows_tpat_kernel"),     # one whole chunk: read once, from registers
    ([4, "L"], (4, 512), "softmax_rows_tpat_kernel"),     # whole chunks of 4 x 32
    ([4, "L"], (4, 600), "softmax_rows_tpat_kernel"),     # longer, ragged
    (["B", 2, "S", "S"], (1, 2, 40, 40), "softmax_rows_tpat_kernel"),   # attention's scores
    ([3, 100], (3, 100), "softmax_rows_tpat_kernel"),     # static but ragged: the streaming kernel
    ([6, 128], (6, 128), "softmax_tpat_kernel"),          # static: the register kernel
])
def test_softmax_rows(tmp_path, shape, size, kernel):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(size) * 4).astype(np.float32)
    got = _run(_model("Softmax", shape, axis=-1), x, str(tmp_path), kernel)
    np.testing.assert_allclose(got, _softmax(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length", [100, 600])
def test_a_row_of_minus_infinity_gives_nan_and_spares_the_others(tmp_path, length):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, length)).astype(np.float32)
    x[1] = -np.inf
    x[2, ::3] = -np.inf     # masked positions, as attention masks give: zeros there
    got = _run(_model("Softmax", [4, "L"], axis=-1), x, str(tmp_path), "softmax_rows_tpat_kernel")
    assert np.isnan(got[1]).all()
    np.testing.assert_allclose(got[[0, 2, 3]], _softmax(x[[0, 2, 3]]), rtol=1e-5, atol=1e-6)


def test_layer_normalization_rows(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 768)).astype(np.float32)
    gamma = rng.standard_normal(768).astype(np.float32)
    beta = rng.standard_normal(768).astype(np.float32)
    model = _model("LayerNormalization", ["B", 3, 768],
                   [numpy_helper.from_array(gamma, "gamma"), numpy_helper.from_array(beta, "beta")], axis=-1)
    from cuda_on_cpu import run_plan_on_cpu
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.plan import build_plan

    compiled = compile_model(model, "sm_90", [])
    assert any("layer_norm" in k or "layernorm" in k for k in compiled.device_funcs), list(compiled.device_funcs)
    (got,) = run_plan_on_cpu(compiled, build_plan(compiled), [x], str(tmp_path))
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5) * gamma + beta
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
