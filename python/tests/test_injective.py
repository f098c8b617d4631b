"""injective.py: TPAT's schedule of elementwise and broadcast kernels over run-time dims. Which
functions it takes (trailing static dims that fill whole warps after a symbolic dim; a broadcast
over a run-time last dim) and leaves to dlight's Fallback; that what it takes indexes with no
division or remainder by a run-time dim in the elementwise case (one a row in a broadcast); and the
numbers, its CUDA run on the CPU (cuda_on_cpu.py) at two sizes, against numpy."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inputs, inits=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _gelu(width):
    """BERT's exported GELU: x / sqrt(2), Erf, + 1, * x, * 0.5 (FuseOps makes one kernel of it)."""
    c = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("r2", 1.4142135), ("one", 1.0), ("half", 0.5))]
    nodes = [helper.make_node("Div", ["x", "r2"], ["a"]), helper.make_node("Erf", ["a"], ["b"]),
             helper.make_node("Add", ["b", "one"], ["c"]), helper.make_node("Mul", ["x", "c"], ["d"]),
             helper.make_node("Mul", ["d", "half"], ["y"])]
    return _model(nodes, [("x", ["B", "S", width])], c)


def _erf(x):
    from math import erf

    return np.vectorize(erf)(x.astype(np.float64))


CASES = {
    # name: (model, inputs' numpy function of the sizes, reference)
    "gelu 3072": (lambda: _gelu(3072), lambda b, s, r: [r.standard_normal((b, s, 3072))],
                  lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "add 1024": (lambda: _model([helper.make_node("Add", ["x", "z"], ["y"])], [("x", ["B", "S", 1024]), ("z", ["B", "S", 1024])]),
                 lambda b, s, r: [r.standard_normal((b, s, 1024)), r.standard_normal((b, s, 1024))], lambda x, z: x + z),
    "bias 768": (lambda: _model([helper.make_node("Add", ["x", "z"], ["y"])], [("x", ["B", "S", 768]), ("z", [768])]),
                 lambda b, s, r: [r.standard_normal((b, s, 768)), r.standard_normal(768)], lambda x, z: x + z),
    "head broadcast": (lambda: _model([helper.make_node("Mul", ["x", "z"], ["y"])], [("x", ["B", 12, "S", 64]), ("z", [12, 1, 64])]),
                       lambda b, s, r: [r.standard_normal((b, 12, s, 64)), r.standard_normal((12, 1, 64))], lambda x, z: x * z),
    # the run-time dim last: rows of a warp, each lane looping over the columns 32 apart
    "attention mask": (lambda: _model([helper.make_node("Add", ["x", "m"], ["y"])], [("x", ["B", 12, "S", "S"]), ("m", ["B", 1, 1, "S"])]),
                       lambda b, s, r: [r.standard_normal((b, 12, s, s)), r.standard_normal((b, 1, 1, s))], lambda x, m: x + m),
}


def _compile(model):
    from tpat_bridge.compiler import compile_model

    return compile_model(model, "sm_90", [])


def _taken(model) -> list[bool]:
    """Whether the rule schedules each PrimFunc of ``model`` (after the passes that precede
    scheduling)."""
    import tvm

    from tpat_bridge.compiler import fuse_passes, import_model
    from tpat_bridge.injective import symbolic_injective_rule

    mod, _, _ = import_model(model, [])
    target = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})
    with target:
        mod = tvm.transform.Sequential(fuse_passes())(mod)
        rule = symbolic_injective_rule()
        return [rule.apply(f, target, False) is not None for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]


@pytest.mark.parametrize("name", list(CASES))
def test_the_rule_takes_them_and_indexes_without_dividing_by_a_run_time_dim(name):
    model = CASES[name][0]()
    assert _taken(model) == [True]
    source = _compile(model).cuda_source
    source = source[source.index("__global__"):]
    # TVM's integer division and remainder by a run-time value (64-bit, a called routine): none;
    # a broadcast along a dim before the symbolic one still unravels the block index (the head
    # of [B, 12, S, 64] is blockIdx.x / S % 12), once a thread
    if name in ("head broadcast", "attention mask"):
        assert source.count("rdiv") <= 4 and "threadIdx.x) %" not in source, source[:1500]
    else:
        assert "rmod" not in source and "rdiv" not in source, source[:1500]


@pytest.mark.parametrize("shape", [["B", "S"], ["B", "S", 100], ["B", "S", 16], [4, 3072]])
def test_dims_that_cannot_fill_warps_or_are_static_are_left_to_dlight(shape):
    """And with the run-time dim last and no broadcast ([B, S]): dlight's flat index has no
    division there."""
    assert _taken(_model([helper.make_node("Relu", ["x"], ["y"])], [("x", shape)])) == [False]


def test_a_long_last_dim_over_few_rows_is_left_to_dlight():
    """[B, 1, T] by a window [1, 1, T]: B rows could be one, each looping over all of T."""
    model = _model([helper.make_node("Mul", ["x", "w"], ["y"])], [("x", ["B", 1, "T"]), ("w", [1, 1, "T"])])
    assert _taken(model) == [False]


def test_threads_divide_the_trailing_dims():
    from tpat_bridge.injective import threads_for

    assert [threads_for(n) for n in (3072, 768, 64, 96, 1000, 48, 32)] == [1024, 768, 64, 96, None, None, None]


@pytest.mark.skipif(__import__("cuda_on_cpu").compiler() is None, reason="needs a C++20 compiler")
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("sizes", [(1, 3), (2, 5)])
def test_the_numbers(tmp_path, name, sizes):
    _check_numbers(tmp_path, name, sizes)


@pytest.mark.skipif(__import__("cuda_on_cpu").compiler() is None, reason="needs a C++20 compiler")
def test_the_mask_over_two_column_chunks(tmp_path):
    """40 columns: a lane takes two, the second chunk half outside the row."""
    _check_numbers(tmp_path, "attention mask", (2, 40))


def _check_numbers(tmp_path, name, sizes):
    from cuda_on_cpu import run_plan_on_cpu
    from tpat_bridge.plan import build_plan

    make, inputs, reference = CASES[name]
    compiled = _compile(make())
    arrays = [a.astype(np.float32) for a in inputs(*sizes, np.random.default_rng(5))]
    # a constant input (the GELU's) is the model's initializer, not a plan input
    (got,) = run_plan_on_cpu(compiled, build_plan(compiled), arrays, str(tmp_path))
    np.testing.assert_allclose(got, reference(*[a.astype(np.float64) for a in arrays]), rtol=1e-5, atol=1e-6)
