"""The numbers of TPAT's row kernels (rowwise.py: Softmax and LayerNormalization, one warp per
row, warp shuffles for the row's max and sum) computed by their CUDA on the CPU (cuda_on_cpu.py,
lockstep warps), against numpy. On a GPU they are checked by the self-tests and the kernel
benchmark (docs/benchmarks.md); here every Softmax kernel is run: the static register kernel, the
register kernels for rows of a run-time (or ragged) length and the streaming kernel for longer
ones, each at the lengths that pick it and at its edges, and rows of -inf."""
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
    """The plan's output for ``x`` on the CPU; ``kernel`` must be the one kernel the plan launches
    at x's sizes (the others of a run-time choice get an empty grid)."""
    from cuda_on_cpu import run_plan_on_cpu
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.expr import evaluate
    from tpat_bridge.plan import LaunchStep, build_plan

    compiled = compile_model(model, "sm_90", [])
    plan = build_plan(compiled)
    values = {s.name: int(x.shape[s.dim]) for s in plan.symbols}
    launched = [s.kernel for s in plan.steps if isinstance(s, LaunchStep) and all(evaluate(d, values) for d in s.grid)]
    assert launched == [kernel], (launched, list(compiled.device_funcs))
    (got,) = run_plan_on_cpu(compiled, plan, [x], workdir)
    return got


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


# A run-time row length picks its kernel at enqueue: registers for up to 4 x 32 values a lane
# (softmax_rows_tpat_kernel), up to 16 x 32 (_kernel_1), streaming beyond (_kernel_2).
@pytest.mark.parametrize("shape,size,kernel", [
    ([4, "L"], (4, 20), "softmax_rows_tpat_kernel"),      # shorter than a warp: lanes with nothing
    ([4, "L"], (4, 100), "softmax_rows_tpat_kernel"),     # ragged: slots past the end
    ([4, "L"], (4, 128), "softmax_rows_tpat_kernel"),     # exactly 4 values a lane
    ([4, "L"], (4, 129), "softmax_rows_tpat_kernel_1"),   # one past: 16 slots, 11 of them empty
    ([4, "L"], (4, 512), "softmax_rows_tpat_kernel_1"),   # exactly 16 values a lane
    ([4, "L"], (4, 600), "softmax_rows_tpat_kernel_2"),   # streaming, a partial last chunk
    ([4, "L"], (4, 1024), "softmax_rows_tpat_kernel_2"),  # streaming, whole chunks read twice
    (["B", 2, "S", "S"], (1, 2, 40, 40), "softmax_rows_tpat_kernel"),   # attention's scores
    ([3, 100], (3, 100), "softmax_rows_tpat_kernel"),     # static but ragged: only the 4-slot kernel
    ([3, 600], (3, 600), "softmax_rows_tpat_kernel"),     # static, ragged and long: only streaming
    ([6, 128], (6, 128), "softmax_tpat_kernel"),          # static: the register kernel, no checks
])
def test_softmax_rows(tmp_path, shape, size, kernel):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(size) * 4).astype(np.float32)
    got = _run(_model("Softmax", shape, axis=-1), x, str(tmp_path), kernel)
    np.testing.assert_allclose(got, _softmax(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length,kernel", [(100, "softmax_rows_tpat_kernel"), (128, "softmax_rows_tpat_kernel"),
                                           (300, "softmax_rows_tpat_kernel_1"), (600, "softmax_rows_tpat_kernel_2")])
def test_a_row_of_minus_infinity_gives_nan_and_spares_the_others(tmp_path, length, kernel):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, length)).astype(np.float32)
    x[1] = -np.inf
    x[2, ::3] = -np.inf     # masked positions, as attention masks give: zeros there
    got = _run(_model("Softmax", [4, "L"], axis=-1), x, str(tmp_path), kernel)
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
