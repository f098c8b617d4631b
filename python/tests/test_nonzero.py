"""TPAT's NonZero: a data-dependent output through a size output (converters.py, nonzero.py).

Here, without a GPU: the sub-model gets its size output (also behind TPAT's boundary Cast), the
manifest says which dim is data-dependent and which output holds its extent, the kernels are
TPAT's three and nothing calls a host function, and the reference data holds the extents. The
kernels' numbers are checked by the self-tests on a GPU (docs/gpu-runs/)."""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tpat_bridge.converters import SIZE_SUFFIX, data_dependent_dims, with_size_outputs
from tpat_bridge.errors import BridgeError


def nonzero_model(shape, elem=TensorProto.FLOAT, cast_to=None) -> onnx.ModelProto:
    nodes = [helper.make_node("NonZero", ["x"], ["y"], name="nz")]
    out_elem = TensorProto.INT64
    out = "y"
    if cast_to is not None:
        nodes.append(helper.make_node("Cast", ["y"], ["y_cast"], to=cast_to, name="y__tpat_cast"))
        out, out_elem = "y_cast", cast_to
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", elem, list(shape))],
                          [helper.make_tensor_value_info(out, out_elem, [max(len(shape), 1), "K"])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_the_sub_model_gets_a_size_output_and_says_where_it_is():
    model = nonzero_model(["N", 5, 7])
    patched = with_size_outputs(model)
    assert [o.name for o in patched.graph.output] == ["y", f"y{SIZE_SUFFIX}1"]
    assert patched.graph.output[1].type.tensor_type.elem_type == TensorProto.INT32
    assert list(patched.graph.node[0].output) == ["y", f"y{SIZE_SUFFIX}1"]
    dims = data_dependent_dims(patched)
    assert [(d.output, d.dim, d.size_output) for d in dims] == [(0, 1, 1)]
    # The original is untouched, and a model without such ops comes back as it is.
    assert [o.name for o in model.graph.output] == ["y"]
    relu = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]))
    assert with_size_outputs(relu) is relu and data_dependent_dims(relu) == []


def test_the_size_follows_the_data_through_a_boundary_cast():
    patched = with_size_outputs(nonzero_model([4, 6], cast_to=TensorProto.INT32))
    dims = data_dependent_dims(patched)
    assert [(d.output, d.dim, d.size_output) for d in dims] == [(0, 1, 1)]


def test_a_data_dependent_output_that_is_not_an_output_is_refused():
    model = nonzero_model([4, 6])
    model.graph.node.append(helper.make_node("Shape", ["y"], ["s"], name="shape"))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("s", TensorProto.INT64, [2]))
    with pytest.raises(BridgeError) as err:
        data_dependent_dims(with_size_outputs(model))
    assert err.value.error_class == "unsupported" and "size cannot be declared" in str(err.value)


@pytest.mark.parametrize("shape,elem", [(["N", 5, 7], TensorProto.FLOAT), ([3, 1000], TensorProto.BOOL),
                                        ([], TensorProto.INT32)])
def test_the_manifest_declares_the_dim_and_the_kernels_are_tpats(tmp_path, shape, elem):
    from tpat_bridge.bridge import NodeRequest, generate

    path = str(tmp_path / "nz.onnx")
    onnx.save(nonzero_model(shape, elem), path)
    log: list[str] = []
    manifest = json.load(open(generate(NodeRequest("n0", path, str(tmp_path / "out"), "tpat_nz_"), "sm_90", "test", log)))
    rank = max(len(shape), 1)
    data, size = manifest["outputs"]
    assert data["dtype"] == "int64" and data["dataDependent"] == [{"dim": 1, "sizeOutput": 1}]
    assert data["shape"][0] == {"cxx": str(rank), "tree": {"int": rank}}
    # The upper bound is the element count (an expression of the input's symbols).
    numel = int(np.prod([d for d in shape if isinstance(d, int)] or [1]))
    if all(isinstance(d, int) for d in shape):
        assert data["shape"][1]["tree"] == {"int": numel}
    else:
        assert "N" in data["shape"][1]["cxx"]
    assert size["dtype"] == "int32" and size["shape"] == [] and "dataDependent" not in size
    kernels = [k["name"] for k in manifest["kernels"]]
    assert len(kernels) == 3 and all(k.startswith("tpat_nz_nonzero_tpat_kernel") for k in kernels)
    assert [s["kind"] for s in manifest["launches"]] == ["kernel"] * 3
    assert len(manifest["workspace"]["regions"]) == 1  # the blocks' counts, then their offsets
    assert "relax.run.nonzero" not in manifest["cudaSource"]


def test_reference_data_holds_the_extent_and_drawn_inputs_are_sparse(tmp_path):
    from tpat_bridge.reference import write_reference

    path = str(tmp_path / "nz.onnx")
    onnx.save(nonzero_model(["N", 64]), path)
    out = tmp_path / "case0"
    write_reference(path, str(out), 1000, {"N": 3}, None, [{"output": 0, "dim": 1}])
    doc = json.load(open(out / "reference.json"))
    assert [o["name"] for o in doc["outputs"]] == ["y", "size0"]
    indices = np.fromfile(out / "output_0.bin", dtype=np.int64).reshape(doc["outputs"][0]["shape"])
    extent = np.fromfile(out / "output_1.bin", dtype=np.int32)
    assert doc["outputs"][1]["shape"] == [] and doc["outputs"][1]["dtype"] == "int32"
    assert extent.shape == (1,) and extent[0] == indices.shape[1]
    # About 40% of the 192 elements are non-zero: neither none nor all.
    assert 0 < extent[0] < 3 * 64
    x = np.fromfile(out / "input_0.bin", dtype=np.float32).reshape(3, 64)
    assert np.array_equal(np.stack(np.nonzero(x)), indices)
    assert os.path.getsize(out / "output_1.bin") == 4


def test_a_static_extent_in_the_graph_is_not_held_against_the_upper_bound(tmp_path):
    """ONNX's node tests (and exporters that ran the model) declare the data-dependent dim with the
    extent of one run, [2, 3]; the plugin's is the upper bound, 4: ranks compared, not that dim."""
    from tpat_bridge.bridge import NodeRequest, generate

    g = helper.make_graph([helper.make_node("NonZero", ["x"], ["y"], name="nz")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.BOOL, [2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.INT64, [2, 3])])
    path = str(tmp_path / "nz.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    manifest = json.load(open(generate(NodeRequest("n0", path, str(tmp_path / "out"), "tpat_nz_"), "sm_90", "test", [])))
    assert manifest["outputs"][0]["shape"][1]["tree"] == {"int": 4}
    # A static dim that is not data-dependent still must agree.
    from tpat_bridge.plan import check_graph_shape
    from tpat_bridge.expr import Int

    with pytest.raises(BridgeError):
        check_graph_shape(0, [Int(3), Int(4)], helper.make_tensor_value_info("y", TensorProto.INT64, [2, 3]), {1})
    check_graph_shape(0, [Int(2), Int(4)], helper.make_tensor_value_info("y", TensorProto.INT64, [2, 3]), {1})


@pytest.mark.parametrize("axis,shape,cond,dim", [(1, ["N", 9, 4], [9], 1), (-1, [3, 6], [5], 1), (None, [2, 3, 4], [20], 0)])
def test_compress_packs_the_kept_slices_and_declares_their_count(tmp_path, axis, shape, cond, dim):
    from tpat_bridge.bridge import NodeRequest, generate
    from tpat_bridge.reference import write_reference

    attrs = {} if axis is None else {"axis": axis}
    node = helper.make_node("Compress", ["x", "c"], ["y"], name="compress", **attrs)
    out_shape = [None] if axis is None else [d if k != dim else "K" for k, d in enumerate(shape)]
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
                                        helper.make_tensor_value_info("c", TensorProto.BOOL, cond)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["K"] if axis is None else out_shape)])
    path = str(tmp_path / "compress.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    manifest = json.load(open(generate(NodeRequest("c0", path, str(tmp_path / "out"), "tpat_c_"), "sm_90", "test", [])))
    data, size = manifest["outputs"]
    assert data["dataDependent"] == [{"dim": dim, "sizeOutput": 1}]
    assert data["shape"][dim]["tree"] == {"int": cond[0]}  # the upper bound: the condition's length
    assert size["dtype"] == "int32" and size["shape"] == []
    assert "relax.run" not in manifest["cudaSource"]
    # ONNX Runtime's answer is the reference: the kept count is the extent
    out = tmp_path / "case0"
    write_reference(path, str(out), 7, {"N": 3}, None, [{"output": 0, "dim": dim}])
    doc = json.load(open(out / "reference.json"))
    extent = np.fromfile(out / "output_1.bin", dtype=np.int32)
    condition = np.fromfile(out / "input_1.bin", dtype=np.bool_)
    assert extent[0] == doc["outputs"][0]["shape"][dim] == int(condition[: (shape[dim] if axis is not None else 24)].sum())


@pytest.mark.parametrize("axis,shape,cond", [(0, [5, 3], [5]), (1, [3, 4], [4]), (2, [2, 3, 5], [5]),
                                             (1, [2, 6, 3], [6]), (0, [24], [24])])
def test_compress_packs_its_output_as_the_actual_shape(axis, shape, cond):
    """The upper-bound buffer holds the kept slices in the layout of the actual output (the axis's
    extent K): its first K * (other dims) elements are NumPy's answer, whatever the axis (TensorRT
    reads a data-dependent output so). The gather alone, on the CPU (the positions are NonZero's,
    whose kernels are CUDA's)."""
    import tvm
    from tvm import te

    from tpat_bridge.nonzero import compress_gather_te

    rng = np.random.default_rng(len(shape) + axis)
    x = rng.standard_normal(shape).astype(np.float32)
    c = rng.integers(0, 2, cond).astype(np.bool_)
    c[0] = True
    kept = np.nonzero(c)[0]
    where = np.zeros((1, cond[0]), np.int64)
    where[0, :kept.size] = kept
    tx = te.placeholder(shape, "float32", name="x")
    tw = te.placeholder((1, cond[0]), "int64", name="where")
    tk = te.placeholder((), "int32", name="k")
    out = compress_gather_te(tx, tw, tk, axis)
    f = tvm.compile(te.create_prim_func([tx, tw, tk, out]), target="llvm")
    result = tvm.runtime.tensor(np.zeros(shape, np.float32))
    f(tvm.runtime.tensor(x), tvm.runtime.tensor(where), tvm.runtime.tensor(np.array(kept.size, np.int32)), result)
    want = np.compress(c, x, axis=axis)
    np.testing.assert_array_equal(result.numpy().reshape(-1)[:want.size].reshape(want.shape), want)
