"""``infer-shapes``: ONNX shape inference that keeps external data external.

The model is loaded without its external data (so the protobuf stays small, also for models over
2 GB), shapes are inferred, and the result is written next to OUT. Where OUT is in the same folder
as IN, the external data references stay as they are; elsewhere the tensors are loaded from IN's
folder and written as external data beside OUT (``<OUT name>.data``).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import onnx
from onnx import external_data_helper

# Time the symbolic inference may take before ONNX's inference stands in.
# The metadata entry of the inferred model that says which inference made its shapes:
# "symbolic" (related symbols, which the Swift side prefers to declared ones) or "onnx".
ENGINE_KEY = "tpat.shape_inference"
SYMBOLIC_SECONDS = int(os.environ.get("TPAT_SYMBOLIC_SHAPES_SECONDS", "60"))


def _has_external(model: onnx.ModelProto) -> bool:
    return any(external_data_helper.uses_external_data(t)
               for t in external_data_helper._get_all_tensors(model))  # noqa: SLF001 - public in practice


def _weights_as_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose external-data initializers and Constant nodes (weights, which the caller does
    not send) are graph inputs of their type and shape: the symbolic inference reads the value of any
    initializer an op's handler wants (an Add's operand, for instance), and a weight's value never
    decides a shape. Small constants, inline, stay initializers: shape arithmetic reads those."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    kept = []
    declared = {i.name for i in graph.input}
    for tensor in graph.initializer:
        if not external_data_helper.uses_external_data(tensor):
            kept.append(tensor)
            continue
        if tensor.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # Large Constant nodes (the legacy exporter's way of storing some weights) likewise
    nodes = []
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR), None)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and value is not None \
                and external_data_helper.uses_external_data(value):
            graph.input.append(onnx.helper.make_tensor_value_info(node.output[0], value.data_type, list(value.dims)))
            continue
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return out


def symbolic_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shapes with one consistent set of symbols for the whole model: ONNX Runtime's symbolic
    shape inference follows the shape arithmetic of exported graphs (Shape -> Gather -> Concat ->
    Reshape) with sympy, so a dim is ``batch`` or ``2*seq`` wherever it occurs, static dims stay
    static (a ViT's heads), and two dims that must agree (the operands of an Add) are merged into
    one symbol. ONNX's own inference names every dim it cannot compute ``unk__N`` anew, which
    relates nothing: it is the fallback for models the symbolic inference cannot take (ops of
    other domains, for instance)."""
    model = _weights_as_inputs(model)

    def out_of_time(signum: int, frame: Any) -> None:
        raise TimeoutError(f"over {SYMBOLIC_SECONDS} s")

    # sympy can take minutes on the box arithmetic of a detection head: past the budget, ONNX's
    # inference (which never takes long) stands in
    previous = signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(SYMBOLIC_SECONDS)
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        # The loop of SymbolicShapeInference.infer_shapes, whose incomplete answer would be
        # saved as sym_shape_infer_temp.onnx in the working folder and then thrown away: here an
        # incomplete answer (an op it does not know) is kept, and ONNX's inference adds what it can.
        engine = SymbolicShapeInference(2**31 - 1, True, False, 0)
        engine._preprocess(model)  # noqa: SLF001 - see above
        complete = False
        try:
            while engine.run_:
                complete = engine._infer_impl()  # noqa: SLF001
        except TimeoutError:
            # what it found so far (the nodes before the slow one) is kept; ONNX's adds the rest
            print(f"infer-shapes: symbolic shape inference stopped after {SYMBOLIC_SECONDS} s; ONNX's inference adds the rest",
                  file=sys.stderr)
        signal.alarm(0)
        engine._update_output_from_vi()  # noqa: SLF001
        inferred = engine.out_mp_
        if not complete:
            inferred = onnx.shape_inference.infer_shapes(inferred, check_type=False, strict_mode=False, data_prop=True)
        onnx.helper.set_model_props(inferred, {**{p.key: p.value for p in inferred.metadata_props}, ENGINE_KEY: "symbolic"})
        return inferred
    except Exception as exc:  # noqa: BLE001 - the symbolic inference raises anything; ONNX's is the fallback
        print(f"infer-shapes: symbolic shape inference failed ({type(exc).__name__}: {exc}); using ONNX's", file=sys.stderr)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    onnx.helper.set_model_props(inferred, {**{p.key: p.value for p in inferred.metadata_props}, ENGINE_KEY: "onnx"})
    return inferred


# The most values whose shapes one probe run fetches (each is a graph output of that run).
PROBE_LIMIT = 4096


def _bodies(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    """The bodies (If branches, Loop and Scan bodies) of ``graph``'s nodes, not theirs."""
    return [body for node in graph.node for a in node.attribute
            for body in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs))]


def _outer_reads(graph: onnx.GraphProto) -> list[str]:
    """The names the bodies of ``graph``'s nodes (recursively) read without defining them."""
    reads: list[str] = []
    for body in _bodies(graph):
        defined = {i.name for i in body.input} | {t.name for t in body.initializer} | {
            o for n in body.node for o in n.output}
        inner = [v for n in body.node for v in n.input] + _outer_reads(body)
        reads += [v for v in inner if v and v not in defined]
    return reads


def probe_unknown_shapes(model: onnx.ModelProto, base_dir: str, run_model: onnx.ModelProto | None = None) -> onnx.ModelProto:
    """Where both inferences leave a value of the main graph without a rank (a Reshape to a shape
    computed at run time, then everything after it), run the model in ONNX Runtime at two sample
    sizes (``capture.sample_inputs``) and read each such value's shape: a dim equal in both runs is
    static, one that differs becomes a symbol of its own (``probe__<n>``). The model is returned
    as it is when nothing lacks a rank or the runs fail (the values then stay unknown, and the
    nodes reading them say so). ``run_model`` (whose external data lies in ``base_dir``): the
    model with its weights, which is run instead of ``model`` (random weights can leave a
    detector's post-processing with nothing, and a Reshape of nothing fails)."""
    import numpy as np

    from .capture import CaseSpec, sample_inputs
    from .reference import _session_from_model

    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    known = {vi.name for vi in list(graph.input) + list(graph.value_info) + list(graph.output)
             if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}
    # Values the bodies of If/Loop/Scan read from the main graph whose dims ONNX's inference left
    # anonymous (``unk__N``, or none): the bodies' own values follow from them, so their real dims
    # are read too (retinanet's NonMaxSuppression reads boxes [1, unk, unk] otherwise, and drawn
    # self-test boxes then do not have 4 coordinates).
    graph_inputs = {i.name for i in graph.input}
    anonymous = {vi.name for vi in graph.value_info if vi.type.HasField("tensor_type") and any(
        not d.HasField("dim_value") and (not d.HasField("dim_param") or d.dim_param.startswith("unk__"))
        for d in vi.type.tensor_type.shape.dim)}
    read_in_bodies = set(_outer_reads(graph)) & anonymous - graph_inputs - initializers
    wanted: list[str] = []
    for node in graph.node:
        for value in list(node.input) + list(node.output):
            if value and (value not in known or value in read_in_bodies) and value not in initializers and value not in wanted:
                wanted.append(value)
    if not wanted:
        return model
    wanted = wanted[:PROBE_LIMIT]
    probe = onnx.ModelProto()
    probe.CopyFrom(run_model if run_model is not None else model)
    outputs = {o.name for o in probe.graph.output}
    for value in wanted:
        if value not in outputs:
            probe.graph.output.append(onnx.ValueInfoProto(name=value))
    try:
        session = _session_from_model(probe, base_dir)
        names = [o.name for o in session.get_outputs()]
        runs = []
        for case in range(2):
            feeds, _ = sample_inputs(probe, case, CaseSpec(f"probe{case}"), 4242)
            runs.append(dict(zip(names, session.run(names, feeds))))
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors have no types to tell them apart
        print(f"infer-shapes: {len(wanted)} values have no shape and the model did not run to find them ({exc})".splitlines()[0],
              file=sys.stderr)
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    declared = {vi.name: vi for vi in out.graph.value_info}
    found = 0
    for value in wanted:
        if value not in runs[0] or value not in runs[1]:
            continue
        a, b = np.asarray(runs[0][value]), np.asarray(runs[1][value])
        if a.ndim != b.ndim or a.dtype != b.dtype:
            continue
        dims: list[Any] = []
        for da, db in zip(a.shape, b.shape):
            # an extent of 0 in both runs is not a size: a detector with random weights keeps no
            # box above its score threshold, which says nothing about the boxes of a real image
            if da == db and da != 0:
                dims.append(int(da))
            else:
                dims.append(f"probe__{found}_{len(dims)}")
        elem = onnx.helper.np_dtype_to_tensor_dtype(a.dtype)
        vi = onnx.helper.make_tensor_value_info(value, elem, dims)
        if value in declared:
            declared[value].CopyFrom(vi)
        else:
            out.graph.value_info.append(vi)
        found += 1
    print(f"infer-shapes: {found} of {len(wanted)} values without a shape read from two ONNX Runtime runs", file=sys.stderr)
    if found and _bodies(graph):
        # The bodies of If/Loop/Scan read values of the main graph that only the runs sized (a
        # detector's boxes after a run-time TopK): ONNX's inference again, now that they have
        # shapes, gives the values inside the bodies theirs (torchvision's NonMaxSuppression in
        # an If's else branch reads boxes computed there).
        try:
            out = onnx.shape_inference.infer_shapes(out, check_type=False, strict_mode=False, data_prop=True)
        except Exception as exc:  # noqa: BLE001 - the bodies keep what they had
            print(f"infer-shapes: the subgraph bodies got no shapes from the probed values ({type(exc).__name__})", file=sys.stderr)
        _name_anonymous_body_dims(out.graph)
    return out


def _name_anonymous_body_dims(graph: onnx.GraphProto, count: list[int] | None = None) -> None:
    """Gives each dim of a body's value that ONNX's inference left without a value or a name
    (a broadcast of a probed symbol with an unknown dim) a name of its own, ``unk__body_N``, as
    its inference names such dims elsewhere: a plugin then takes it as a symbolic dim (and its
    self-test draws sizes for it) instead of an unknown one. In place, recursively."""
    count = count if count is not None else [0]
    for body in _bodies(graph):
        for vi in list(body.value_info) + list(body.output):
            if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
                continue
            for d in vi.type.tensor_type.shape.dim:
                if not d.HasField("dim_value") and not d.HasField("dim_param"):
                    d.dim_param = f"unk__body_{count[0]}"
                    count[0] += 1
        _name_anonymous_body_dims(body, count)


def infer_shapes(in_path: str, out_path: str, run_path: str | None = None) -> None:
    """Infer shapes of IN and write OUT; RUN (the model with its weights), where given, is run to
    read the shapes no inference finds."""
    model = onnx.load(in_path, load_external_data=False)
    inferred = symbolic_shapes(model)
    run_model = None
    if run_path:
        try:
            run_model = onnx.load(run_path, load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - the probe is a best effort: the inferences' answer stands
            print(f"infer-shapes: cannot read {run_path} to run it ({type(exc).__name__}); probing without its weights", file=sys.stderr)
    if run_model is not None:
        inferred = probe_unknown_shapes(inferred, os.path.dirname(os.path.abspath(run_path)), run_model)
    else:
        inferred = probe_unknown_shapes(inferred, os.path.dirname(os.path.abspath(in_path)))
    in_dir = os.path.dirname(os.path.abspath(in_path))
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not _has_external(inferred) or in_dir == out_dir:
        onnx.save(inferred, out_path)
        return
    external_data_helper.load_external_data_for_model(inferred, in_dir)
    onnx.save(inferred, out_path, save_as_external_data=True, all_tensors_to_one_file=True,
              location=os.path.basename(out_path) + ".data", size_threshold=1024)
