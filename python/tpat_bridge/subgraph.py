"""What TPAT's converters read of a sub-model's graph (the model the extraction stage writes: one
node, or the nodes of a fused part): its constants, which graph output a node output becomes, and
the sub-model with its static shape arithmetic folded."""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper


def graph_constants(graph: onnx.GraphProto) -> set[str]:
    """The values whose data is known before the run: initializers and Constant outputs."""
    return {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}


def graph_output_of(graph: onnx.GraphProto, name: str) -> onnx.ValueInfoProto | None:
    """The graph output ``name`` is, directly or through TPAT's boundary Cast (a Cast keeps the
    shape), or None."""
    outputs = {o.name: o for o in graph.output}
    seen = set()
    while name not in outputs and name not in seen:
        seen.add(name)
        nxt = next((n.output[0] for n in graph.node if n.op_type == "Cast" and n.input and n.input[0] == name), None)
        if nxt is None:
            return None
        name = nxt
    return outputs.get(name)


def constants_as_tensors(model: onnx.ModelProto) -> None:
    """Constant nodes with ``value_float``/``value_int``/``value_floats``/``value_ints`` (what function
    bodies use for their attributes) as ``value`` tensors, the form TVM's frontend reads; in place."""
    kinds = {"value_float": onnx.TensorProto.FLOAT, "value_floats": onnx.TensorProto.FLOAT,
             "value_int": onnx.TensorProto.INT64, "value_ints": onnx.TensorProto.INT64}
    import numpy as np

    for node in model.graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.attribute) != 1:
            continue
        a = node.attribute[0]
        if a.name not in kinds:
            continue
        value = helper.get_attribute_value(a)
        dtype = np.float32 if kinds[a.name] == onnx.TensorProto.FLOAT else np.int64
        tensor = numpy_helper.from_array(np.array(value, dtype=dtype))
        del node.attribute[:]
        node.attribute.append(helper.make_attribute("value", tensor))


# Ops never folded: their value is not a function of their inputs' values.
_NOT_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


def folded_shape_arithmetic(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its shape arithmetic folded to constants, to a fixed point (a fold can make
    more shapes static: a Reshape to a folded shape): the Shape or Size of a tensor whose shape is
    static, and any node whose inputs are all constants, evaluated with onnx's reference
    evaluator. TVM's frontend gives a Shape a shape value, which ops such as Cast, Sqrt, Slice or
    Size then refuse (Attention's body reads Shape -> Cast -> Sqrt for its scale; a decomposed
    LayerNorm reads Shape -> Size -> Slice for its axes)."""
    constants_as_tensors(model)
    for _ in range(_MAX_FOLDS):
        count = len(model.graph.node)
        model = _folded_once(model)
        if len(model.graph.node) == count:
            break
    return model


# Rounds of folding at most (each round folds every node it can, in graph order).
_MAX_FOLDS = 4


def _folded_once(model: onnx.ModelProto) -> onnx.ModelProto:
    """One round of ``folded_shape_arithmetic``."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    try:
        typed = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - without types, nothing is folded
        return model
    shapes = {}
    for v in [*typed.graph.input, *typed.graph.value_info, *typed.graph.output]:
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[v.name] = [d.dim_value for d in t.shape.dim]
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    graph_outputs = {o.name for o in model.graph.output}
    folded = _without_empty_operands(model, shapes)
    kept = []
    for node in model.graph.node:
        inputs = [i for i in node.input if i]
        value = None
        if node.domain in ("", "ai.onnx") and node.op_type not in _NOT_FOLDED \
                and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            if node.op_type == "Shape" and inputs and inputs[0] in shapes:
                start = next((a.i for a in node.attribute if a.name == "start"), 0)
                end = next((a.i for a in node.attribute if a.name == "end"), None)
                value = [np.array(shapes[inputs[0]][start:end], np.int64)]
            elif node.op_type == "Size" and inputs and inputs[0] in shapes:
                value = [np.array(int(np.prod(shapes[inputs[0]], dtype=np.int64)), np.int64)]
            elif node.op_type == "Constant" or (inputs and all(i in values for i in inputs)):
                try:
                    single = onnx.helper.make_model(
                        onnx.helper.make_graph([node], "fold", [], [onnx.helper.make_tensor_value_info(o, 0, None)
                                                                      for o in node.output]),
                        opset_imports=model.opset_import, ir_version=model.ir_version)
                    value = ReferenceEvaluator(single).run(None, {i: values[i] for i in inputs})
                except Exception:  # noqa: BLE001 - an op the evaluator lacks stays a node
                    value = None
        if value is None and len(node.output) == 1 and node.op_type != "Constant" \
                and node.output[0] in graph_outputs and 0 in shapes.get(node.output[0], [1]):
            # an empty graph output (a kernel of size one keeps no state): nothing to compute, and
            # TVM's schedules divide by the zero extent of its loops
            dtype = helper.tensor_dtype_to_np_dtype(_elem_type(typed.graph, node.output[0]))
            empty = numpy_helper.from_array(np.zeros(shapes[node.output[0]], dtype))
            kept.append(helper.make_node("Constant", [], list(node.output), value=empty, name=node.name))
            folded = True
            continue
        if value is None or any(o in graph_outputs for o in node.output):
            kept.append(node)
            continue
        for name, v in zip(node.output, value):
            values[name] = np.asarray(v)
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(v), name))
        folded = True
    if folded:
        kept = _live_nodes(kept, graph_outputs)
        del model.graph.node[:]
        model.graph.node.extend(kept)
        used = {i for n in kept for i in n.input} | graph_outputs
        keep = [t for t in model.graph.initializer if t.name in used]
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)
    return model


def _without_empty_operands(model: onnx.ModelProto, shapes: dict[str, list[int]]) -> bool:
    """Drops the operands of a static size 0 from each Concat that has a non-empty one, in place;
    True when one was dropped. A function body concatenates a part that is empty for some
    attribute values (RotaryEmbedding's unrotated tail when the whole head rotates,
    CausalConvWithState's state for a kernel of size one), and TVM's schedules divide by the
    zero extent of the empty tensor's loops."""
    dropped = False
    for node in model.graph.node:
        if node.op_type != "Concat" or node.domain not in ("", "ai.onnx"):
            continue
        empty = [i for i in node.input if i in shapes and 0 in shapes[i]]
        if empty and len(empty) < len(node.input):
            kept = [i for i in node.input if i not in empty]
            del node.input[:]
            node.input.extend(kept)
            dropped = True
    return dropped


def _live_nodes(nodes: list[onnx.NodeProto], graph_outputs: set[str]) -> list[onnx.NodeProto]:
    """``nodes`` without those no graph output depends on (what a dropped operand leaves behind)."""
    live: list[onnx.NodeProto] = []
    needed = set(graph_outputs)
    for node in reversed(nodes):
        if any(o in needed for o in node.output if o):
            live.append(node)
            needed.update(i for i in node.input if i)
            # a node's subgraphs read outer values by name
            for a in node.attribute:
                for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    needed.update(i for n in g.node for i in n.input if i)
    return list(reversed(live))


def _elem_type(graph: onnx.GraphProto, name: str) -> int:
    """The element type ``graph`` declares for value ``name``."""
    for v in [*graph.output, *graph.value_info, *graph.input]:
        if v.name == name:
            return v.type.tensor_type.elem_type
    raise KeyError(name)
