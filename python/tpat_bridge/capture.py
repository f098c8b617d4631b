"""``capture``: the values each chosen node really sees, from the original model run whole.

A node cut out of its model and fed random inputs sees data the model never gives it: indices out
of range, sizes that disagree (a ScatterElements whose indices and updates come from one upstream
shape), boxes that are not boxes. So the self-test's inputs come from the model itself: ONNX
Runtime runs the original model on sample inputs (or the user's), once per case, with every value
a plugin reads added to the graph outputs, and each plugin's inputs are kept as ``.npy`` files;
``reference --inputs DIR`` then runs the plugin's sub-model on exactly those.

Request (JSON, written by the Swift side's ``CaptureRequest``)::

    {"model": "/abs/model.onnx", "seed": 1000,
     "cases": [{"name": "case0", "dims": {"batch": 3}}, {"name": "case1", "dims": {"batch": 8}}],
     "inputs": null | "/abs/inputs.npz",
     "plugins": [{"id": "tpat_x", "values": ["/layer/Add_output_0", ...]}]}

Result (JSON, the Swift side's ``CaptureResult``)::

    {"cases": [{"name": "case0", "dims": {"batch": 3, ...}, "error": null | "reason"}],
     "plugins": {"tpat_x": {"case0": "OUT/tpat_x/case0" | null, ...}},
     "bytes": {"tpat_x": {"case0": 123456, ...}},
     "missing": {"tpat_x": "reason"},
     "modelInputs": {"case0": "OUT/model-inputs/case0.npz", ...}}

``modelInputs`` keeps each case that ran: the model's own inputs, keyed by graph input name, so
that the whole-model check (host/verify_model.py) runs the rewritten model on the same inputs.

``dims`` of a case is every symbolic dim of the model's inputs with the value it took. A
symbolic dim the request does not give gets a value that suits where it appears, different in each
case: the leading (batch) dim 1 then 3, a spatial dim of an image input 64x64 then 32x48, anything
else (a sequence) 16 then 7. Small on purpose: the captured tensors become the self-tests' data in
OUT (a resnet50 at batch 8 and 96x128 stored twice its weights in test data). Integer inputs that
index data of a known size (an embedding table, GatherND's data, a scatter's target) are drawn by
``reference.draw_indices`` (in range; a scatter's targets distinct), ``*mask*`` inputs are ones, images are uniform in [0, 1).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import external_data_helper

from .reference import INDEX_OPS, _session_from_model, contiguous, draw_indices

BATCH_DIMS = (1, 3)
DEFAULT_DIMS = (16, 7)
# (height, width) of image inputs by case: square, then not, so that a detection model's own
# resize (to a fixed shorter side) still gives the two cases different feature-map sizes
SPATIAL_DIMS = ((64, 64), (32, 48))
SMALL_TENSOR_BYTES = 64 * 1024


@dataclass
class CaseSpec:
    """One run of the whole model: its name and the symbolic dims the request fixes."""

    name: str
    dims: dict[str, int] = field(default_factory=dict)


@dataclass
class PluginSpec:
    """A plugin and the model values its inputs are, in the plugin's input order."""

    id: str
    values: list[str]


@dataclass
class CaptureRequest:
    """The ``capture`` request (see the module docstring)."""

    model: str
    seed: int
    cases: list[CaseSpec]
    plugins: list[PluginSpec]
    inputs: str | None = None

    @staticmethod
    def load(path: str) -> "CaptureRequest":
        with open(path) as f:
            doc = json.load(f)
        return CaptureRequest(
            model=doc["model"], seed=int(doc.get("seed", 0)), inputs=doc.get("inputs"),
            cases=[CaseSpec(c["name"], {k: int(v) for k, v in (c.get("dims") or {}).items()}) for c in doc["cases"]],
            plugins=[PluginSpec(p["id"], list(p["values"])) for p in doc["plugins"]])


def _index_uses(model: onnx.ModelProto) -> dict[str, tuple[str, dict, list[int]]]:
    """Graph inputs that are the indices (input 1) of a Gather/GatherElements/GatherND/Scatter*
    node whose data has a known static size: (op, attributes, data shape), drawn by the one rule
    for indices (``reference.draw_indices``: in range, distinct targets for scatters)."""
    graph = model.graph
    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in graph.initializer}
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
    except Exception:  # noqa: BLE001 - a model ONNX cannot infer keeps the initializers' shapes
        inferred = graph
    for vi in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes.setdefault(vi.name, [int(d.dim_value) for d in dims])
    feeds = {i.name for i in graph.input} - {t.name for t in graph.initializer}
    uses: dict[str, tuple[str, dict, list[int]]] = {}
    for node in graph.node:
        if node.op_type in INDEX_OPS and len(node.input) > 1 and node.input[1] in feeds and node.input[0] in shapes:
            data = shapes[node.input[0]]
            if data and all(d > 0 for d in data):
                uses.setdefault(node.input[1], (node.op_type, {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}, data))
    return uses


def _dim_value(name: str, position: int, rank: int, is_float: bool, case: int, given: dict[str, int]) -> int:
    if name in given:
        return given[name]
    # images: NCHW with dynamic H and W (detection models)
    if is_float and rank in (3, 4) and position >= rank - 2:
        return SPATIAL_DIMS[case % len(SPATIAL_DIMS)][position - (rank - 2)]
    if position == 0:
        return BATCH_DIMS[case % len(BATCH_DIMS)]
    return DEFAULT_DIMS[case % len(DEFAULT_DIMS)]


def sample_inputs(model: onnx.ModelProto, case: int, spec: CaseSpec, seed: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Inputs for the model's graph inputs, and the value each symbolic dim took."""
    rng = np.random.default_rng(seed + case)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    index_uses = _index_uses(model)
    dims: dict[str, int] = dict(spec.dims)
    feeds: dict[str, np.ndarray] = {}
    for vi in graph.input:
        if vi.name in initializers:
            continue
        tensor = vi.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        is_float = np.issubdtype(dtype, np.floating)
        rank = len(tensor.shape.dim)
        shape = []
        for p, d in enumerate(tensor.shape.dim):
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
                continue
            name = d.dim_param or f"{vi.name}_dim{p}"
            value = dims.get(name) or _dim_value(name, p, rank, is_float, case, spec.dims)
            dims[name] = value
            shape.append(value)
        if dtype == np.bool_:
            array = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer):
            array = None
            if vi.name in index_uses:
                op, attrs, data = index_uses[vi.name]
                try:
                    array = draw_indices(rng, op, attrs, shape, data)
                except (SystemExit, ValueError, IndexError):
                    array = None  # more distinct targets than the data has: drawn as any integer
            if array is not None:
                pass
            elif "mask" in vi.name.lower():
                array = np.ones(shape, dtype)
            else:
                array = rng.integers(0, 8, size=shape)
        elif rank in (3, 4):
            array = rng.random(shape)  # images: [0, 1)
        else:
            array = rng.standard_normal(shape)
        feeds[vi.name] = contiguous(np.asarray(array).astype(dtype))
    return feeds, dims


def _given_inputs(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def capture(request_path: str, result_path: str, out_dir: str) -> int:
    """Runs the request; writes the result JSON. Exit status 0 even when a case fails: the
    result says which, and the caller falls back to drawn inputs for those."""
    req = CaptureRequest.load(request_path)
    model = onnx.load(req.model, load_external_data=False)
    base_dir = os.path.dirname(os.path.abspath(req.model))
    _load_small_external_tensors(model, base_dir)
    graph_outputs = {o.name for o in model.graph.output}
    produced = {o for n in model.graph.node for o in n.output if o}
    graph_values = produced | {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer}
    wanted: list[str] = []
    missing: dict[str, str] = {}
    for plugin in req.plugins:
        absent = [v for v in plugin.values if v not in graph_values]
        if absent:
            missing[plugin.id] = f"value '{absent[0]}' is not in the model's main graph"
            continue
        wanted += [v for v in plugin.values if v not in wanted]
    result: dict[str, Any] = {"cases": [], "plugins": {p.id: {} for p in req.plugins}, "missing": missing,
                              "bytes": {p.id: {} for p in req.plugins}, "modelInputs": {}}
    fetch = [v for v in wanted if v not in graph_outputs]
    for v in fetch:
        model.graph.output.append(onnx.ValueInfoProto(name=v))
    session = None
    session_error = None
    try:
        session = _session_from_model(model, base_dir)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors have no types to tell them apart
        session_error = _reason(exc)
    given = _given_inputs(req.inputs) if req.inputs else None
    names = [o.name for o in session.get_outputs()] if session else []
    # the user's inputs make one case
    cases = req.cases[:1] if given is not None else req.cases
    for k, case in enumerate(cases):
        entry: dict[str, Any] = {"name": case.name, "dims": {}, "error": session_error}
        for plugin in req.plugins:
            result["plugins"][plugin.id][case.name] = None
        if session is None:
            result["cases"].append(entry)
            continue
        if given is not None:
            feeds, dims = given, {}
        else:
            feeds, dims = sample_inputs(model, k, case, req.seed)
        entry["dims"] = dims
        try:
            values = dict(zip(names, session.run(names, feeds)))
        except Exception as exc:  # noqa: BLE001
            entry["error"] = _reason(exc)
            result["cases"].append(entry)
            continue
        # "model-inputs" is no plugin id (those are C identifiers)
        inputs_file = os.path.join(out_dir, "model-inputs", f"{case.name}.npz")
        os.makedirs(os.path.dirname(inputs_file), exist_ok=True)
        np.savez(inputs_file, **feeds)
        result["modelInputs"][case.name] = inputs_file
        for plugin in req.plugins:
            if plugin.id in missing:
                continue
            folder = os.path.join(out_dir, plugin.id, case.name)
            os.makedirs(folder, exist_ok=True)
            for i, v in enumerate(plugin.values):
                np.save(os.path.join(folder, f"input_{i}.npy"), contiguous(values[v]), allow_pickle=False)
            result["plugins"][plugin.id][case.name] = folder
            result["bytes"][plugin.id][case.name] = int(sum(np.asarray(values[v]).nbytes for v in plugin.values))
        result["cases"].append(entry)
    with open(result_path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return 0


def _reason(exc: Exception) -> str:
    """ONNX Runtime's message on one line, without its ``[ONNXRuntimeError] : 1 : FAIL :`` prefix."""
    text = " ".join(str(exc).split())
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)


def _load_small_external_tensors(model: onnx.ModelProto, base_dir: str) -> None:
    """ONNX Runtime's shape inference reads small constants (axes, shapes) itself and cannot
    read them from external data: those come into the model; large weights stay where they are."""
    for tensor in external_data_helper._get_all_tensors(model):  # noqa: SLF001 - public in practice
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = external_data_helper.ExternalDataInfo(tensor)
        if info.length is not None and info.length <= SMALL_TENSOR_BYTES:
            external_data_helper.load_external_data_for_tensor(tensor, base_dir)
            tensor.data_location = onnx.TensorProto.DEFAULT
            del tensor.external_data[:]
