"""TPAT's TopK with a K computed at run time (topk.py, converters.py): a data-dependent dim per
output, declared through size outputs. The packing (the first K of each row at the front of the
upper-bound buffer) is checked here against ONNX Runtime on the CPU (TVM's llvm target); the CUDA
kernels are the same TE, checked by the self-tests on a GPU."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tpat_bridge.converters import data_dependent_dims, with_size_outputs


def topk_model(shape, axis=-1, largest=1, k_constant=None) -> onnx.ModelProto:
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk", axis=axis, largest=largest)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    inits = []
    if k_constant is None:
        inputs.append(helper.make_tensor_value_info("k", TensorProto.INT64, [1]))
    else:
        inits.append(helper.make_tensor("k", TensorProto.INT64, [1], [k_constant]))
    g = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("v", TensorProto.FLOAT, None),
                                                helper.make_tensor_value_info("i", TensorProto.INT64, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_a_run_time_k_gets_a_size_output_per_output_at_the_axis():
    dims = data_dependent_dims(with_size_outputs(topk_model(["N", 6, 5], axis=-2)))
    assert [(d.output, d.dim, d.size_output) for d in dims] == [(0, 1, 2), (1, 1, 3)]
    # A constant K keeps TVM's path: no size outputs.
    constant = topk_model([3, 50], k_constant=4)
    assert with_size_outputs(constant) is constant


@pytest.mark.parametrize("declared,shape,axis,largest,k", [
    # a static axis: TVM's sort
    ([3, 50], [3, 50], 1, 1, 7), ([3, 50], [3, 50], -1, 0, 50), ([4, 6, 5], [4, 6, 5], 1, 1, 2),
    ([4, 6, 5], [4, 6, 5], 0, 1, 3), ([40], [40], 0, 1, 0), ([2, 9, 3], [2, 9, 3], 1, 1, 12),
    # a symbolic axis: the rank-based order (ties included: ONNX puts the lower index first)
    (["L"], [300], 0, 1, 100), (["N", "L"], [3, 57], 1, 0, 9), (["N", "L", 2], [2, 33, 2], 1, 1, 40), (["L"], [64], 0, 1, 64),
])
def test_the_first_k_of_each_row_are_packed_as_onnx_runtime_gives_them(declared, shape, axis, largest, k):
    import tvm
    from tvm import relax

    from tpat_bridge.compiler import import_model

    model = topk_model(declared, axis, largest)
    mod, _, _ = import_model(model, [])
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    if shape == [64]:
        x = np.round(x)  # many ties
    got = [o.numpy() for o in vm["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(np.array([k], np.int64)))]
    extent = min(k, shape[axis])  # a K past the axis is clamped (ONNX Runtime refuses it)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values, indices = session.run(None, {"x": x, "k": np.array([extent], np.int64)})
    assert int(got[2]) == int(got[3]) == extent
    # The buffers hold the upper bound (the axis length); the result is packed at the front.
    assert got[0].shape == tuple(shape) and got[1].shape == tuple(shape)
    assert np.array_equal(got[0].reshape(-1)[:values.size], values.reshape(-1))
    assert np.array_equal(got[1].reshape(-1)[:indices.size], indices.reshape(-1))


def test_the_manifest_declares_both_outputs_and_calls_no_host_function(tmp_path):
    from tpat_bridge.bridge import NodeRequest, generate

    path = str(tmp_path / "topk.onnx")
    onnx.save(topk_model(["N", 50], axis=1), path)
    manifest = json.load(open(generate(NodeRequest("n0", path, str(tmp_path / "out"), "tpat_tk_"), "sm_90", "test", [])))
    values, indices, size0, size1 = manifest["outputs"]
    assert values["dataDependent"] == [{"dim": 1, "sizeOutput": 2}] and indices["dataDependent"] == [{"dim": 1, "sizeOutput": 3}]
    assert values["shape"][1]["tree"] == {"int": 50}  # the upper bound: the axis length
    assert size0["dtype"] == size1["dtype"] == "int32" and size0["shape"] == size1["shape"] == []
    assert all(s["kind"] == "kernel" for s in manifest["launches"])


def test_drawn_k_is_within_the_axis(tmp_path):
    from tpat_bridge.reference import write_reference

    path = str(tmp_path / "topk.onnx")
    onnx.save(topk_model(["N", 50], axis=1), path)
    out = tmp_path / "case0"
    write_reference(path, str(out), 7, {"N": 3}, None, [{"output": 0, "dim": 1}, {"output": 1, "dim": 1}])
    doc = json.load(open(out / "reference.json"))
    k = int(np.fromfile(out / "input_1.bin", dtype=np.int64)[0])
    assert 1 <= k <= 50
    assert doc["outputs"][0]["shape"] == [3, k] and [o["name"] for o in doc["outputs"][2:]] == ["size0", "size1"]
