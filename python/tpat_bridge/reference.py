"""``reference``: inputs (captured from the whole model, or drawn to suit the op), outputs from
ONNX Runtime (CPU), raw files.

Writes ``OUTDIR/input_<i>.bin``, ``OUTDIR/output_<j>.bin`` (raw little-endian, C order) and
``OUTDIR/reference.json`` listing name, dtype, shape, file and bytes of each, plus seed and dims.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .compiler import c_identifier
from .declared import SHAPE_OPERAND, declared_sizes, drawn_operand
from .subgraph import graph_output_of


POSITIVE_OPS = {"Log", "Sqrt", "Reciprocal", "Rsqrt"}
UNIT_OPS = {"Acos", "Asin", "Atanh"}
DIVISOR_OPS = {"Div", "Mod"}
DISTINCT_OPS = {"TopK", "ArgMax", "ArgMin"}  # ties would make indices ill-defined
SPARSE_OPS = {"NonZero"}  # about 60% zeros: what the op is for


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` in C order, its shape kept (``np.ascontiguousarray`` makes a 0-D array 1-D: a scalar
    input such as Range's limit would then have the wrong rank)."""
    return np.ascontiguousarray(a).reshape(np.shape(a))


@dataclass
class Tensor:
    """One reference tensor."""

    name: str
    array: np.ndarray


def resolve_shape(vi: onnx.ValueInfoProto, dims: dict[str, int]) -> list[int]:
    """Concrete shape of a graph input; symbolic dims come from ``dims`` (by dim_param or its
    sanitised C name)."""
    shape = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
            continue
        name = d.dim_param
        alt = c_identifier(name)
        if name in dims:
            shape.append(dims[name])
        elif alt in dims:
            shape.append(dims[alt])
        else:
            raise SystemExit(f"input {vi.name}: no value for symbolic dim '{name}' (pass --dims {alt}=...)")
    return shape


def _unique_rows(rng: np.random.Generator, bounds: list[int], count: int) -> np.ndarray:
    """``count`` distinct index tuples, component c in [0, bounds[c])."""
    total = int(np.prod(bounds, dtype=np.int64)) if bounds else 1
    if count > total:
        raise SystemExit(f"cannot draw {count} distinct scatter targets from {total}")
    if total <= 50_000_000:
        flat = rng.choice(total, size=count, replace=False)
    else:
        seen: set[int] = set()
        while len(seen) < count:
            seen.update(int(x) for x in rng.integers(0, total, size=count - len(seen)))
        flat = rng.permutation(np.fromiter(seen, dtype=np.int64, count=count))
    return np.stack(np.unravel_index(flat, bounds), axis=-1) if bounds else np.zeros((count, 0), np.int64)


INDEX_OPS = ("Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND", "TopK")


def draw_indices(rng: np.random.Generator, op: str, attrs: dict, shape: list[int], data: list[int]) -> np.ndarray | None:
    """Valid values for input 1 (the indices, or TopK's K) of ``op`` over data of shape ``data``,
    or None for an op that takes no indices there. Scatters get distinct targets: with duplicates
    ONNX leaves the result undefined (a GPU kernel's write order decides it). TopK's K is in
    [1, the axis length]. The one rule for indices, used by the self-tests' drawn inputs and by the
    whole-model capture."""
    if op == "TopK":
        axis = int(attrs.get("axis", -1)) % len(data)
        return np.full(shape, rng.integers(1, data[axis] + 1), dtype=np.int64)
    if op == "GatherND":
        b = int(attrs.get("batch_dims", 0))
        k = shape[-1]
        return np.stack([rng.integers(0, data[b + c], size=shape[:-1]) for c in range(k)], axis=-1)
    if op in ("Gather", "GatherElements"):
        axis = int(attrs.get("axis", 0))
        return rng.integers(0, data[axis % len(data)], size=shape)
    if op == "ScatterND":
        k = shape[-1]
        count = int(np.prod(shape[:-1], dtype=np.int64))
        return _unique_rows(rng, data[:k], count).reshape(shape)
    if op == "ScatterElements":
        axis = int(attrs.get("axis", 0)) % len(shape)
        size = data[axis]
        # distinct targets along the axis for each position of the other axes
        arr = np.argsort(rng.random([*shape[:axis], size, *shape[axis + 1:]]), axis=axis)
        return np.take(arr, np.arange(shape[axis]), axis=axis)
    return None


def _generic(rng: np.random.Generator, shape: list[int], dtype: np.dtype, op: str, index: int) -> np.ndarray:
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        lo = 1 if (op in DIVISOR_OPS and index == 1) else 0
        values = rng.integers(lo, 8, size=shape).astype(dtype)
        if op in SPARSE_OPS and values.size:
            values[rng.random(shape) < 0.6] = 0
        return values
    if op in POSITIVE_OPS:
        a = rng.uniform(0.5, 2.0, size=shape)
    elif op in UNIT_OPS:
        a = rng.uniform(-0.9, 0.9, size=shape)
    elif op == "Acosh":
        a = rng.uniform(1.1, 3.0, size=shape)
    elif op in DISTINCT_OPS and np.issubdtype(dtype, np.floating):
        n = int(np.prod(shape, dtype=np.int64))
        a = ((rng.permutation(n) + 0.5) / max(n, 1) * 6.0 - 3.0).reshape(shape)  # distinct, spread like N(0, 1)
    elif op in DIVISOR_OPS and index == 1:
        a = rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    else:
        a = rng.standard_normal(shape)
    a = a.astype(dtype)
    if op in SPARSE_OPS and a.size:
        a[rng.random(shape) < 0.6] = 0  # about 40% non-zero: the count is neither 0 nor everything
    if op in ("IsInf", "IsNaN") and a.size:
        specials = np.array([np.inf, -np.inf, np.nan], dtype=dtype)
        mask = rng.random(shape) < 0.05
        a[mask] = rng.choice(specials, size=int(mask.sum()))
    return a


def make_inputs(model: onnx.ModelProto, seed: int, dims: dict[str, int], base_dir: str = "") -> list[Tensor]:
    """Random inputs for the sub-model's graph inputs, drawn to suit its op."""
    rng = np.random.default_rng(seed)
    graph = model.graph
    # TPAT may wrap the node in Casts (BOOL and, for TensorRT 8, INT64 travel as INT32, UINT8 as
    # FLOAT); the node that decides what inputs suit is the one that is not such a Cast, and a
    # carried input is drawn in the type that node reads (its Cast's `to`), then carried.
    node = next((n for n in graph.node if not n.name.endswith("__tpat_cast")), graph.node[0])
    casts = [n for n in graph.node if n.name.endswith("__tpat_cast") and n.input]
    feeds = {n.input[0]: n.output[0] for n in casts}
    read_as = {n.input[0]: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(onnx.helper.get_attribute_value(n.attribute[0])))
               for n in casts if n.attribute}
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    # A weight may lie in the plugin's constants/ (node.onnx points there: a weight is stored once).
    inits = {t.name: numpy_helper.to_array(t, base_dir) for t in graph.initializer}
    init_names = set(inits)
    inputs = [vi for vi in graph.input if vi.name not in init_names]
    shapes: dict[str, list[int]] = {vi.name: resolve_shape(vi, dims) for vi in inputs}
    shapes.update({k: list(v.shape) for k, v in inits.items()})
    shapes.update({dst: shapes[src] for src, dst in feeds.items() if src in shapes})
    values: dict[str, np.ndarray] = dict(inits)

    def shape_of(i: int) -> list[int]:
        return shapes[node.input[i]]

    # Ops whose output shape is a value of an input (declared.py): that input is drawn to agree
    # with the declared output shape at these sizes.
    declared = None
    if node.op_type in SHAPE_OPERAND and node.output:
        out_vi = graph_output_of(graph, node.output[0])
        if out_vi is not None and out_vi.type.tensor_type.HasField("shape"):
            declared = declared_sizes(out_vi, {**dims, **{d.dim_param: size for vi in inputs for d, size
                                                          in zip(vi.type.tensor_type.shape.dim, shapes[vi.name]) if d.dim_param}})
    known_inputs = {k: values[name] for k, name in enumerate(node.input) if name in values}

    out: list[Tensor] = []
    for vi in inputs:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
        shape = shapes[vi.name]
        fed = feeds.get(vi.name, vi.name)
        pos = list(node.input).index(fed) if fed in node.input else -1
        op = node.op_type
        arr: np.ndarray
        indices = draw_indices(rng, op, attrs, shape, shape_of(0)) if pos == 1 and op in INDEX_OPS else None
        operand = drawn_operand(op, pos, declared, shape_of(0), known_inputs, read_as.get(vi.name, dtype)) \
            if declared is not None and pos >= 0 else None
        if indices is not None:
            arr = indices
        elif operand is not None:
            arr = operand
        elif op == "OneHot" and pos == 0:
            depth_name = node.input[1]
            depth = int(np.asarray(values.get(depth_name, 2)).reshape(-1)[0])
            # negative indices count from the end; one in eight is out of [-depth, depth) (an
            # all-off row), among them values a 32-bit truncation would bring into range
            arr = rng.integers(-depth, depth, size=shape)
            wide = np.dtype(dtype).itemsize == 8
            outside = np.array([depth, depth + 3, -depth - 1] + ([2**40, -(2**40)] if wide else []), np.int64)
            mask = rng.random(shape) < 0.125
            arr[mask] = rng.choice(outside, size=int(mask.sum()))
        else:
            arr = _generic(rng, shape, read_as.get(vi.name, dtype), op, pos)
        arr = contiguous(np.asarray(arr).astype(dtype)).reshape(shape)
        values[vi.name] = arr
        if pos >= 0:
            known_inputs[pos] = arr
        out.append(Tensor(vi.name, arr))
    return out


def dtype_name(a: np.ndarray) -> str:
    """The manifest's dtype name of an array."""
    return "bool" if a.dtype == np.bool_ else str(a.dtype)


def _entry(t: Tensor, file: str) -> dict[str, Any]:
    return {"name": t.name, "dtype": dtype_name(t.array), "shape": [int(d) for d in t.array.shape],
            "file": file, "bytes": int(t.array.nbytes)}


def _write(path: str, a: np.ndarray) -> None:
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(a).tobytes())


def _session(model_path: str) -> Any:
    """An ONNX Runtime CPU session over a model file."""
    model = onnx.load(model_path, load_external_data=False)
    return _session_from_model(model, os.path.dirname(os.path.abspath(model_path)))


def _session_from_model(model: onnx.ModelProto, base_dir: str) -> Any:
    """An ONNX Runtime CPU session over a model held in memory whose external data lies in
    ``base_dir`` (nothing is written anywhere). ONNX Runtime lags ONNX's IR versions (models saved
    by a newer onnx say 12 or 13 where this one takes 11): then the model is run with the highest
    IR version it takes; IR versions add data types and fields, the opset decides what a node
    computes."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.model_external_initializers_file_folder_path", base_dir)
    try:
        return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors have no types to tell them apart
        found = re.search(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)", str(exc))
        if not found:
            raise
        older = onnx.ModelProto()
        older.CopyFrom(model)
        older.ir_version = int(found.group(2))
        return ort.InferenceSession(older.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def captured_inputs(model: onnx.ModelProto, folder: str) -> list[Tensor]:
    """The sub-model's inputs from ``capture``'s files (``input_<i>.npy`` in the sub-model's
    input order), converted to the types the plugin carries (BOOL travels as INT32, UINT8 as FLOAT)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in initializers]
    out: list[Tensor] = []
    for i, vi in enumerate(inputs):
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
        array = np.load(os.path.join(folder, f"input_{i}.npy"), allow_pickle=False)
        out.append(Tensor(vi.name, contiguous(array.astype(dtype))))
    return out


def symbol_values(model: onnx.ModelProto, inputs: list[Tensor]) -> dict[str, int]:
    """The value each symbolic dim of the sub-model's inputs takes in ``inputs`` (C names)."""
    by_name = {t.name: t.array for t in inputs}
    dims: dict[str, int] = {}
    for vi in model.graph.input:
        if vi.name not in by_name:
            continue
        for d, size in zip(vi.type.tensor_type.shape.dim, by_name[vi.name].shape):
            if not d.HasField("dim_value") and d.dim_param:
                dims[c_identifier(d.dim_param)] = int(size)
    return dims


def write_reference(model_path: str, out_dir: str, seed: int, dims: dict[str, int], inputs_dir: str | None = None,
                    size_outputs: list[dict[str, int]] | None = None) -> str:
    """Draw inputs (or take those ``capture`` kept in ``inputs_dir``), run ONNX Runtime on the
    CPU, write the files; returns reference.json's path. ``size_outputs`` (the manifest's
    data-dependent dims, in size-output order: ``{"output", "dim"}``): after the node's outputs,
    one 0-D int32 output each, the extent ONNX Runtime gave that dim."""
    model = onnx.load(model_path, load_external_data=False)
    if inputs_dir:
        inputs = captured_inputs(model, inputs_dir)
        dims = symbol_values(model, inputs)
    else:
        inputs = make_inputs(model, seed, dims, os.path.dirname(os.path.abspath(model_path)))
    session = _session(model_path)
    results = session.run(None, {t.name: t.array for t in inputs})
    outputs = [Tensor(o.name, np.asarray(r)) for o, r in zip(session.get_outputs(), results)]
    for k, size in enumerate(size_outputs or []):
        extent = outputs[int(size["output"])].array.shape[int(size["dim"])]
        outputs.append(Tensor(f"size{k}", np.asarray(extent, dtype=np.int32)))
    os.makedirs(out_dir, exist_ok=True)
    doc: dict[str, Any] = {"model": os.path.abspath(model_path), "seed": seed, "dims": dims,
                           "inputs": [], "outputs": []}
    for i, t in enumerate(inputs):
        _write(os.path.join(out_dir, f"input_{i}.bin"), t.array)
        doc["inputs"].append(_entry(t, f"input_{i}.bin"))
    for j, t in enumerate(outputs):
        _write(os.path.join(out_dir, f"output_{j}.bin"), t.array)
        doc["outputs"].append(_entry(t, f"output_{j}.bin"))
    path = os.path.join(out_dir, "reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return path



def write_references(request_path: str, result_path: str) -> int:
    """``references``: many ``reference`` jobs in one process (ONNX Runtime and numpy imported
    once instead of once per case). Request: ``{"jobs": [{"model", "out_dir", "seed", "dims",
    "inputs", "sizeOutputs"}]}`` (the Swift side's ``ReferenceBatch``); result: ``{"jobs": [{"error": null |
    "reason"}]}`` in request order. A job that fails leaves its traceback in ``<out_dir>.log``
    and does not stop the others."""
    import traceback

    with open(request_path) as f:
        jobs = json.load(f)["jobs"]
    results: list[dict[str, Any]] = []
    for job in jobs:
        log = job["out_dir"].rstrip("/") + ".log"
        try:
            write_reference(job["model"], job["out_dir"], int(job.get("seed", 0)),
                            {k: int(v) for k, v in (job.get("dims") or {}).items()}, job.get("inputs"),
                            job.get("sizeOutputs"))
            results.append({"error": None})
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - each job's failure is reported, the batch goes on
            os.makedirs(os.path.dirname(log), exist_ok=True)
            with open(log, "w") as f:
                traceback.print_exc(file=f)
            text = " ".join(str(exc).split()) or type(exc).__name__
            results.append({"error": re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)})
    with open(result_path, "w") as f:
        json.dump({"jobs": results}, f, indent=1)
        f.write("\n")
    return 0
