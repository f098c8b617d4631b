"""``infer-shapes``: one consistent set of symbols for the whole model."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tpat_bridge.shapes import ENGINE_KEY, symbolic_shapes


def dims(model: onnx.ModelProto, name: str) -> list[int | str]:
    info = next(v for v in list(model.graph.value_info) + list(model.graph.output) if v.name == name)
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in info.type.tensor_type.shape.dim]


def attention_cache_model() -> onnx.ModelProto:
    """Two layers' key caches: Concat(past, new) along the sequence, then a Reshape to heads whose
    shape is computed from the first Concat's Shape (the legacy exporter's arithmetic)."""
    i1 = numpy_helper.from_array(np.array(1, np.int64), "i1")
    i0 = numpy_helper.from_array(np.array(0, np.int64), "i0")
    ax = numpy_helper.from_array(np.array([0], np.int64), "ax")
    heads = numpy_helper.from_array(np.array([2, 32], np.int64), "heads")
    nodes = [
        helper.make_node("Concat", ["past0", "x"], ["k0"], axis=1),
        helper.make_node("Concat", ["past1", "x"], ["k1"], axis=1),
        helper.make_node("Shape", ["k0"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["b"], axis=0),
        helper.make_node("Gather", ["s", "i1"], ["l"], axis=0),
        helper.make_node("Unsqueeze", ["b", "ax"], ["b1"]),
        helper.make_node("Unsqueeze", ["l", "ax"], ["l1"]),
        helper.make_node("Concat", ["b1", "l1", "heads"], ["shape"], axis=0),
        helper.make_node("Reshape", ["k1", "shape"], ["r"]),
        helper.make_node("Softmax", ["r"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 64]),
         helper.make_tensor_value_info("past0", TensorProto.FLOAT, ["batch", "past", 64]),
         helper.make_tensor_value_info("past1", TensorProto.FLOAT, ["batch", "past", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [i0, i1, ax, heads])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_related_dims_share_one_symbol() -> None:
    model = attention_cache_model()
    onnx_only = onnx.shape_inference.infer_shapes(model, data_prop=True)
    # ONNX's inference names the concatenated length anew for each Concat
    assert dims(onnx_only, "k0")[1] != dims(onnx_only, "k1")[1]
    inferred = symbolic_shapes(model)
    assert {p.key: p.value for p in inferred.metadata_props}[ENGINE_KEY] == "symbolic"
    length = dims(inferred, "k0")[1]
    assert isinstance(length, str) and "past" in length and "seq" in length
    assert dims(inferred, "k1") == ["batch", length, 64]
    # the Reshape's shape computed at run time is followed: heads stay static
    assert dims(inferred, "r") == ["batch", length, 2, 32]
    assert dims(inferred, "y") == ["batch", length, 2, 32]


def test_an_op_the_symbolic_inference_does_not_know_keeps_the_rest(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = attention_cache_model()
    model.graph.node.append(helper.make_node("Mystery", ["y"], ["w"], domain="example.custom"))
    model.opset_import.append(helper.make_opsetid("example.custom", 1))
    inferred = symbolic_shapes(model)
    assert {p.key: p.value for p in inferred.metadata_props}[ENGINE_KEY] == "symbolic"
    assert dims(inferred, "k0") == dims(inferred, "k1")
    # ONNX Runtime's own entry point would have left sym_shape_infer_temp.onnx here
    assert list(tmp_path.iterdir()) == []


def test_onnx_inference_stands_in_past_the_time_budget(monkeypatch) -> None:
    import tpat_bridge.shapes as shapes

    monkeypatch.setattr(shapes, "SYMBOLIC_SECONDS", 1)
    import time
    from onnxruntime.tools import symbolic_shape_infer

    def slow(self, *args, **kwargs):  # noqa: ANN001
        time.sleep(5)

    monkeypatch.setattr(symbolic_shape_infer.SymbolicShapeInference, "_preprocess", slow)
    start = time.monotonic()
    inferred = shapes.symbolic_shapes(attention_cache_model())
    assert time.monotonic() - start < 4
    assert {p.key: p.value for p in inferred.metadata_props}[ENGINE_KEY] == "onnx"
    assert dims(inferred, "k0")[0] == "batch"


def test_weights_that_are_not_sent_do_not_stop_the_symbolic_inference() -> None:
    """TPAT sends the model without its weights (external references to a file that is not
    there): an Add's weight operand and a large Constant node must not make the symbolic
    inference give up (it reads an initializer's value for some ops' handlers)."""
    def unsent(tensor: onnx.TensorProto) -> onnx.TensorProto:
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "tpat-not-read.bin"
        return tensor

    model = attention_cache_model()
    model.graph.initializer.append(unsent(numpy_helper.from_array(np.zeros(32, np.float32), "bias")))
    big = unsent(numpy_helper.from_array(np.zeros((32,), np.float32), ""))
    model.graph.node.append(helper.make_node("Constant", [], ["scale"], value=big))
    model.graph.node.append(helper.make_node("Add", ["y", "bias"], ["biased"]))
    model.graph.node.append(helper.make_node("Mul", ["biased", "scale"], ["scaled"]))
    inferred = symbolic_shapes(model)
    assert {p.key: p.value for p in inferred.metadata_props}[ENGINE_KEY] == "symbolic"
    assert dims(inferred, "scaled")[0] == "batch"
    assert dims(inferred, "scaled")[2:] == [2, 32]


def test_values_both_inferences_leave_without_a_rank_are_read_from_two_runs(tmp_path):
    """A Reshape to a shape computed at run time leaves everything after it without a rank in
    exported detectors; two ONNX Runtime runs at different sizes give each such value its rank, its
    static dims, and a symbol for each dim that changed."""
    from tpat_bridge.shapes import probe_unknown_shapes

    nodes = [helper.make_node("Relu", ["x"], ["h"], name="relu"), helper.make_node("Neg", ["h"], ["y"], name="neg")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    probed = probe_unknown_shapes(model, str(tmp_path))
    (h,) = [vi for vi in probed.graph.value_info if vi.name == "h"]
    dims = h.type.tensor_type.shape.dim
    assert h.type.tensor_type.elem_type == TensorProto.FLOAT
    assert len(dims) == 2 and dims[0].dim_param.startswith("probe__") and dims[1].dim_value == 4
    # Nothing to find: the model comes back as it is.
    assert probe_unknown_shapes(probed, str(tmp_path)) is probed


def test_values_in_a_body_get_shapes_from_the_probed_values_they_read(tmp_path):
    """torchvision's detectors run NonMaxSuppression in an If's else branch, on boxes sized by a
    run-time TopK outside it: once the runs have sized the outer value, the body's values get
    their shapes too (before, the body kept them rank-less and the node could not be extracted)."""
    from tpat_bridge.shapes import probe_unknown_shapes

    body_nodes = [helper.make_node("Unsqueeze", ["boxes", "zero"], ["batched"], name="unsqueeze"),
                  helper.make_node("Cast", ["batched"], ["as_float"], to=TensorProto.FLOAT, name="cast")]
    zero = numpy_helper.from_array(np.array([0], np.int64), "zero")
    then_g = helper.make_graph([helper.make_node("Unsqueeze", ["boxes", "zero"], ["t_out"], name="t")], "then", [],
                               [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, None)], [zero])
    else_g = helper.make_graph(body_nodes, "else", [], [helper.make_tensor_value_info("as_float", TensorProto.FLOAT, None)],
                               [zero])
    # boxes: a Squeeze over axes computed at run time (no inference gives it a rank)
    nodes = [helper.make_node("Abs", ["two"], ["axes"], name="abs"),
             helper.make_node("Squeeze", ["x", "axes"], ["boxes"], name="squeeze"),
             helper.make_node("If", ["cond"], ["picked"], then_branch=then_g, else_branch=else_g, name="if")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 1]),
                                           helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("picked", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array([2], np.int64), "two")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model = onnx.shape_inference.infer_shapes(model)
    probed = probe_unknown_shapes(model, str(tmp_path))
    body = next(a.g for n in probed.graph.node if n.op_type == "If" for a in n.attribute if a.name == "else_branch")
    (cast,) = [vi for vi in body.value_info if vi.name == "batched"] or [None]
    assert cast is not None and len(cast.type.tensor_type.shape.dim) == 3
    assert cast.type.tensor_type.shape.dim[0].dim_value == 1 and cast.type.tensor_type.shape.dim[2].dim_value == 4
