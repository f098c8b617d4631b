"""Expand, Range and Tile whose shape operand is computed at run time (declared.py): the output at
the sub-model's declared shape, its dims read from graph inputs (the node's own or a dim carrier
NodeExtractor adds). Checked against ONNX Runtime on the CPU through TVM's llvm target; the CUDA
kernels are the same TE, checked by the self-tests on a GPU."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from on_cpu import run_on_cpu
from tpat_bridge.declared import DIMS_ATTRIBUTE, declared_sizes, with_declared_shapes
from tpat_bridge.reference import make_inputs

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def model(node: onnx.NodeProto, inputs: list, output: onnx.ValueInfoProto, inits=()) -> onnx.ModelProto:
    g = helper.make_graph([node], "g", inputs, [output], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def expand_model() -> onnx.ModelProto:
    # a causal mask [1, 1, S, S] expanded to [batch, 1, S, S]; batch only on the carrier's dims
    return model(helper.make_node("Expand", ["mask", "shape"], ["y"]),
                 [helper.make_tensor_value_info("mask", F, [1, 1, "sequence", "sequence"]),
                  helper.make_tensor_value_info("shape", I64, [4]),
                  helper.make_tensor_value_info("ids", I64, ["batch", "sequence"])],
                 helper.make_tensor_value_info("y", F, ["batch", 1, "sequence", "sequence"]))


def range_model(dtype=I64) -> onnx.ModelProto:
    # positions past_sequence .. past_sequence + sequence (GPT-2 with a cache); the length is a sum
    return model(helper.make_node("Range", ["start", "limit", "delta"], ["y"]),
                 [helper.make_tensor_value_info("limit", dtype, []),
                  helper.make_tensor_value_info("past", F, ["batch", 2, "past_sequence", 4]),
                  helper.make_tensor_value_info("ids", I64, ["batch", "sequence"])],
                 helper.make_tensor_value_info("y", dtype, ["past_sequence + sequence"]),
                 [helper.make_tensor("start", dtype, [], [0]), helper.make_tensor("delta", dtype, [], [1])])


def tile_model() -> onnx.ModelProto:
    # DETR's query embeddings [1, 100, 8] tiled over the batch
    return model(helper.make_node("Tile", ["q", "repeats"], ["y"]),
                 [helper.make_tensor_value_info("q", F, [1, 6, 8]),
                  helper.make_tensor_value_info("repeats", I64, [3]),
                  helper.make_tensor_value_info("image", F, ["batch", 3, 5])],
                 helper.make_tensor_value_info("y", F, ["batch", 6, 8]))


def run_tvm(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    log: list[str] = []
    names = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    (out,) = run_on_cpu(m, *[feeds[n] for n in names], log=log)
    assert "tensor_to_shape" not in "\n".join(log)
    return out


def run_ort(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("make,sizes", [
    (expand_model, [{"batch": 3, "sequence": 5}, {"batch": 1, "sequence": 2}]),
    (range_model, [{"batch": 2, "past_sequence": 3, "sequence": 4}, {"batch": 1, "past_sequence": 0, "sequence": 7}]),
    (tile_model, [{"batch": 4}, {"batch": 1}]),
])
def test_the_output_follows_the_run_time_dims_as_onnx_runtime_gives_it(make, sizes):
    m = make()
    for k, dims in enumerate(sizes):
        # the self-test's own draw: the shape operand agrees with the declared shape at these sizes
        feeds = {t.name: t.array for t in make_inputs(m, k, dims)}
        want = run_ort(m, feeds)
        got = run_tvm(m, feeds)
        assert want.shape == tuple(declared_sizes(m.graph.output[0], dims))
        assert got.shape == want.shape and np.array_equal(got, want)


def test_a_scalar_operand_keeps_its_rank():
    # Range's limit is 0-D: the self-test (and the plugin host) check each input's rank
    limit = make_inputs(range_model(), 0, {"batch": 2, "past_sequence": 3, "sequence": 4})[0]
    assert limit.name == "limit" and limit.array.shape == () and int(limit.array) == 7


def test_the_declared_dims_name_the_inputs_they_come_from():
    patched = with_declared_shapes(range_model())
    node = patched.graph.node[0]
    # the carriers follow Range's own three inputs; the length is past_sequence + sequence
    assert list(node.input[3:]) == ["past", "ids"]
    dims = [d.decode() for d in helper.get_attribute_value(next(a for a in node.attribute if a.name == DIMS_ATTRIBUTE))]
    assert dims == ["+i0_2+i1_1"]


def test_a_constant_shape_operand_or_an_unnamed_dim_keeps_tvms_path():
    constant = model(helper.make_node("Expand", ["x", "shape"], ["y"]),
                     [helper.make_tensor_value_info("x", F, [1, 3])],
                     helper.make_tensor_value_info("y", F, [2, 3]), [helper.make_tensor("shape", I64, [2], [2, 3])])
    assert with_declared_shapes(constant) is constant
    unnamed = expand_model()
    unnamed.graph.output[0].type.tensor_type.shape.dim[0].ClearField("dim_param")
    assert with_declared_shapes(unnamed) is unnamed
    # a dim no graph input has (a carrier could not be found): TVM's path, which refuses it cleanly
    unknown = expand_model()
    unknown.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "beams"
    assert with_declared_shapes(unknown) is unknown


def test_a_run_time_shape_without_related_dims_is_refused_in_the_users_terms():
    from tpat_bridge.compiler import import_model
    from tpat_bridge.errors import BridgeError

    unrelated = expand_model()
    unrelated.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "beams"
    with pytest.raises(BridgeError, match="target shape is computed at run time") as err:
        import_model(unrelated, [])
    assert err.value.error_class == "unsupported"
