"""TPAT's own legalizations: ScatterND rows scatter in parallel and the copy moves float4s;
GatherND loses the frontend's index normalization; row and axis-reduction kernels apply where they should."""
from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper


def _scatter_model(reduction: str = "none", batch: int | str = 4, rows: int | str = 10) -> onnx.ModelProto:
    g = helper.make_graph(
        [helper.make_node("ScatterND", ["d", "i", "u"], ["y"], reduction=reduction)], "g",
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, [batch, 16, 16, 32]),
         helper.make_tensor_value_info("i", TensorProto.INT64, [batch, rows, 3]),
         helper.make_tensor_value_info("u", TensorProto.FLOAT, [batch, rows, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 16, 16, 32])])
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


def test_scatter_rows_run_in_parallel_with_symbolic_dims():
    # A dynamic batch and index count: the same parallel kernel, sized at run time (TOPI's ordered
    # kernel ran every row in one block: 0.02x of the static plugin on an H200).
    compiled, plan = _launches(_scatter_model(batch="N", rows="R"))
    assert "float4" in compiled.cuda_source  # the static 16 x 16 x 32 tail keeps the vector copy
    grids = [st.grid[0] for st in plan.steps if hasattr(st, "grid")]
    symbolic = [g for g in grids if {"N", "R"} & set(str(g).replace("'", " ").split())]
    assert any("R" in str(g) for g in symbolic), grids  # the scatter's grid follows the row count


@pytest.mark.skipif(__import__("cuda_on_cpu").compiler() is None, reason="needs a C++20 compiler")
@pytest.mark.parametrize("batch,rows,size", [(4, 10, (4, 10)), ("N", "R", (2, 10)), ("N", "R", (3, 7))])
def test_scatter_rows_write_the_right_elements(tmp_path, batch, rows, size):
    """The parallel kernel's numbers (its CUDA run on the CPU): every index row, negative ones
    counted from the end, writes its updates; every other element keeps the data."""
    import numpy as np

    from cuda_on_cpu import run_plan_on_cpu

    n, r = size
    rng = np.random.default_rng(3)
    data = rng.standard_normal((n, 16, 16, 32)).astype(np.float32)
    flat = rng.choice(n * 16 * 16, size=n * r, replace=False)   # distinct rows: ONNX's order is undefined
    idx = np.stack(np.unravel_index(flat, (n, 16, 16)), axis=-1).reshape(n, r, 3).astype(np.int64)
    idx[:, ::3, 1] -= 16                                         # the same elements, counted from the end
    upd = rng.standard_normal((n, r, 32)).astype(np.float32)
    want = data.copy()
    for row, u in zip(idx.reshape(-1, 3), upd.reshape(-1, 32)):
        want[tuple(row)] = u
    compiled, plan = _launches(_scatter_model(batch=batch, rows=rows))
    (got,) = run_plan_on_cpu(compiled, plan, [data, idx, upd], str(tmp_path))
    np.testing.assert_array_equal(got, want)


def test_scatter_add_keeps_ordered_kernel():
    compiled, _ = _launches(_scatter_model("add"))
    assert "float4" not in compiled.cuda_source


def _gather_model(data_shape, idx_shape, out_shape, batch_dims=0, data_type=None):
    import onnx
    from onnx import TensorProto, helper

    data_type = data_type or TensorProto.FLOAT
    g = helper.make_graph([helper.make_node("GatherND", ["d", "i"], ["y"], batch_dims=batch_dims)], "g",
                          [helper.make_tensor_value_info("d", data_type, data_shape),
                           helper.make_tensor_value_info("i", TensorProto.INT64, idx_shape)],
                          [helper.make_tensor_value_info("y", data_type, out_shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _ops(mod):
    from tvm import relax

    return [b.value.op.name for b in mod["main"].body.blocks[0].bindings if isinstance(b.value, relax.Call)
            and hasattr(b.value.op, "name")]


def test_gather_nd_index_normalization_is_folded_for_static_float32():
    """The frontend's less/add/where normalization goes; gather_nd reads the raw indices (TPAT's
    kernel normalizes them itself) and the node compiles to one kernel."""
    from tpat_bridge.compiler import compile_model, import_model
    from tpat_bridge.gather_nd import fold_gather_nd_index_normalization

    model = _gather_model([2, 10, 6, 40], [2, 7, 2], [2, 7, 40], batch_dims=1)
    mod = import_model(model, [])[0]
    assert "relax.where" in _ops(mod)
    folded = fold_gather_nd_index_normalization(mod)
    assert _ops(folded) == ["relax.gather_nd"]
    assert list(compile_model(model, "sm_90", []).device_funcs) == ["gather_nd_tpat_kernel"]


@pytest.mark.parametrize("data_shape,idx_shape,out_shape,batch_dims", [
    (["N", 128, 128, 224], ["N", 600, 3], ["N", 600, 224], 0),   # the benchmark's, with a dynamic batch
    (["N", 10, 6, 40], ["N", "R", 2], ["N", "R", 40], 1),         # batch dims and a dynamic index count
    ([4, 10, "W"], [7, 2], [7, "W"], 0),                          # a symbolic slice: no vector width
])
def test_gather_nd_with_symbolic_dims_is_one_tpat_kernel(data_shape, idx_shape, out_shape, batch_dims):
    """A dynamic batch or index count takes TPAT's kernel too (TVM's two launches measured 0.57x of
    the static plugin on an H200): normalization folded, one kernel, sized at run time."""
    from tpat_bridge.compiler import compile_model, import_model
    from tpat_bridge.gather_nd import fold_gather_nd_index_normalization
    from tpat_bridge.plan import build_plan

    model = _gather_model(data_shape, idx_shape, out_shape, batch_dims=batch_dims)
    assert _ops(fold_gather_nd_index_normalization(import_model(model, [])[0])) == ["relax.gather_nd"]
    compiled = compile_model(model, "sm_90", [])
    assert list(compiled.device_funcs) == ["gather_nd_tpat_kernel"]
    plan = build_plan(compiled)
    grid = str([st.grid[0] for st in plan.steps if hasattr(st, "grid")])
    assert "N" in grid or "R" in grid or "W" in grid, grid
    assert ("float4" in compiled.cuda_source) == (data_shape[-1] != "W")


def test_gather_nd_other_dtypes_keep_the_normalization():
    """float16 data is not among the dtypes a GPU run checked: TVM's lowering, normalization kept."""
    from onnx import TensorProto

    from tpat_bridge.compiler import import_model
    from tpat_bridge.gather_nd import fold_gather_nd_index_normalization

    model = _gather_model([4, 8], [3, 1], [3, 8], data_type=TensorProto.FLOAT16)
    folded = fold_gather_nd_index_normalization(import_model(model, [])[0])
    assert "relax.where" in _ops(folded)


def _single(op, shape, out_shape, **attrs):
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    inits, names = [], ["x"]
    if op == "LayerNormalization":
        n = shape[-1]
        inits = [helper.make_tensor("s", TensorProto.FLOAT, [n], [1.0] * n),
                 helper.make_tensor("b", TensorProto.FLOAT, [n], [0.0] * n)]
        names += ["s", "b"]
    g = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], "g", inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])



@pytest.mark.parametrize("op,shape,out_shape,attrs,tpat_kernel", [
    ("Softmax", [5, 64], [5, 64], {"axis": -1}, "softmax_tpat_kernel"),
    ("Softmax", [64, 100], [64, 100], {"axis": -1}, "softmax_rows_tpat_kernel"),   # row not a multiple of 32
    ("Softmax", [4, 4096], [4, 4096], {"axis": -1}, "softmax_rows_tpat_kernel"),   # row longer than 2048
    ("Softmax", [8, 64, 4], [8, 64, 4], {"axis": 1}, None),         # not the last axis
    ("LayerNormalization", [9, 160], [9, 160], {"axis": -1}, "layer_norm_tpat_kernel"),
    ("ReduceMax", [2, 5, 48], [2, 48], {"axes": [1], "keepdims": 0}, "reduce_max_tpat_kernel"),
    ("ReduceMax", [4, 3, 2, 40], [4, 1, 1, 40], {"axes": [1, 2]}, "reduce_max_tpat_kernel"),
    ("ReduceMax", [8, 128], [8, 1], {"axes": [1]}, None),           # innermost axis
    ("ReduceMin", [4, 10, 16], [4, 1, 16], {"axes": [1]}, None),    # fewer than 32 after the axis
    # Symbolic leading dims (a dynamic batch or sequence) take the same kernels.
    ("Softmax", ["N", 1024], ["N", 1024], {"axis": -1}, "softmax_tpat_kernel"),
    ("Softmax", ["B", "S", 64], ["B", "S", 64], {"axis": -1}, "softmax_tpat_kernel"),
    ("LayerNormalization", ["N", 1024], ["N", 1024], {"axis": -1}, "layer_norm_tpat_kernel"),
    ("ReduceMax", ["N", 82, 128], ["N", 128], {"axes": [1], "keepdims": 0}, "reduce_max_tpat_kernel"),
    # The row itself symbolic (attention's scores over a dynamic sequence): register kernels for
    # rows of up to 128 and 512, the streaming one past that, the plan launching one.
    ("Softmax", [4, "L"], [4, "L"], {"axis": -1}, ["softmax_rows_tpat_kernel", "softmax_rows_tpat_kernel_1", "softmax_rows_tpat_kernel_2"]),
    ("Softmax", ["B", 12, "S", "S"], ["B", 12, "S", "S"], {"axis": -1},
     ["softmax_rows_tpat_kernel", "softmax_rows_tpat_kernel_1", "softmax_rows_tpat_kernel_2"]),
    ("ReduceMax", [2, "R", 48], [2, 48], {"axes": [1], "keepdims": 0}, None),  # the reduced axis symbolic
])
def test_row_and_reduction_lowerings_apply_where_they_should(op, shape, out_shape, attrs, tpat_kernel):
    from tpat_bridge.compiler import compile_model

    kernels = list(compile_model(_single(op, shape, out_shape, **attrs), "sm_90", []).device_funcs)
    if tpat_kernel:
        assert sorted(kernels) == sorted(tpat_kernel if isinstance(tpat_kernel, list) else [tpat_kernel])
    else:
        assert not any("tpat" in k for k in kernels), kernels


def _run_with_tpat_reductions(model, *arrays):
    """``model`` on the CPU with TPAT's max/min legalization (the GPU-only kernels left out)."""
    import tvm
    from tvm import relax

    from tpat_bridge.compiler import import_model
    from tpat_bridge.lowering import default_legalizer
    from tpat_bridge.rowwise import _infinite_identity_reduce

    mod, _, _ = import_model(model, [])
    legal = {f"relax.{k}": _infinite_identity_reduce(k, default_legalizer(f"relax.{k}")) for k in ("max", "min")}
    mod = relax.transform.LegalizeOps(customize_legalize_map=legal)(mod)
    out = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())["main"](*[tvm.runtime.tensor(a) for a in arrays])
    return [out.numpy()] if hasattr(out, "numpy") else [o.numpy() for o in out]


def test_max_of_only_minus_infinity_is_minus_infinity_so_a_fully_masked_attention_row_is_zero():
    """TVM starts a float max from the lowest finite value: a fully masked row's max was -3.4e38, so
    Attention's body (``ReduceMax(bias) == -inf`` -> 0) left the row NaN (14 node tests wrong on the
    GPU). TPAT's max/min start from -inf/+inf."""
    import numpy as np

    from on_cpu import node_test_data, node_tests
    from tpat_bridge.compiler import compile_model

    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 2.0]], np.float32)
    model = _single("ReduceMax", [2, 3], [2, 1], axes=[1], keepdims=1)
    (got,) = _run_with_tpat_reductions(model, x)
    assert got[0, 0] == -np.inf and got[1, 0] == 2.0
    (lowest,) = _run_with_tpat_reductions(_single("ReduceMin", [2, 3], [2, 1], axes=[1], keepdims=1), -x)
    assert lowest[0, 0] == np.inf
    assert "-CUDART_INF_F" in compile_model(model, "sm_90", []).cuda_source

    cases = node_tests("test_attention_23_boolmask_fullymasked_row_nan_robustness")
    assert len(cases) == 2
    for tc in cases:
        inputs, expected = node_test_data(tc)
        (out,) = _run_with_tpat_reductions(tc.model, *inputs.values())
        assert not np.isnan(out).any() and np.allclose(out, expected[0], atol=1e-5), tc.name


def test_bool_constants_are_read_as_bytes_on_the_gpu():
    """TVM 0.27 loads a vector of bools from a ``bool*`` buffer as ``*(ushort2*)ptr`` (two bytes a
    lane, a bool is one): FlexAttention's causal mask, folded to a BOOL constant and fused into
    the score MatMul, was read wrong on the H100 (test_flexattention_causal_mask and its expanded
    form). TPAT's pass makes such a constant UINT8, cast to BOOL in the kernel that reads it; the
    numbers stay the test's on the CPU with the pass applied."""
    import re

    import numpy as np
    import tvm
    from tvm import relax

    from on_cpu import node_test_data, node_tests
    from tpat_bridge.compiler import bool_constants_as_bytes_pass, compile_model, import_model

    (case,) = [c for c in node_tests("test_flexattention_causal_mask") if c.name == "test_flexattention_causal_mask"]
    source = compile_model(case.model, "sm_90", []).cuda_source
    assert not re.search(r"\*\(ushort\d\*\)\(param_", source)
    assert re.search(r"\*\(uchar\d\*\)\(param_\d+_ptr", source)
    assert "bool* __restrict__ param_" not in source

    inputs, expected = node_test_data(case)
    mod, _, _ = import_model(case.model, [])
    with tvm.target.Target("llvm"):
        mod = relax.transform.FoldConstant()(relax.transform.LegalizeOps()(mod))
        folded = mod["main"].script(show_meta=False)
        mod = bool_constants_as_bytes_pass()(mod)
    assert "astype" not in folded and "astype" in mod["main"].script(show_meta=False)
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    got = vm["main"](*[tvm.runtime.tensor(a) for a in inputs.values()]).numpy()
    np.testing.assert_allclose(got, expected[0], atol=1e-5)
