"""Collect the ONNX backend node tests of the installed onnx and lay them out as batch models.

The onnx wheel no longer ships the node tests as files: it generates them from its case
scripts (``onnx.backend.test.case.node``), through the loader its own test runner uses
(``onnx.backend.test.loader.load_model_tests(kind="node")``). Each usable test (tensor inputs
and outputs, no string/sequence/optional/training/random test) becomes part of a combined model
per opset: a one-node test's node keeps the test's name, the nodes of a function-expanded test
(``test_X_expanded``: the op's function body, several nodes) are named ``<test>/<k>`` and are
generated with ``--fuse`` as one plugin; its values are prefixed with the test's name, its attribute-like inputs (Reshape's shape, Resize's scales, TopK's k, ...) become
initializers holding the test's own values, as a real model would have them, and its other
inputs become graph inputs. The test's inputs and expected outputs are saved beside.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

# Inputs that models hold as constants: they say what to compute, not what to compute it on.
# Keyed by op type, by the schema's formal input names.
ATTRIBUTE_LIKE_INPUTS: dict[str, set[str]] = {
    "Reshape": {"shape"},
    "Expand": {"shape"},
    "Tile": {"repeats"},
    "Resize": {"roi", "scales", "sizes"},
    "Upsample": {"scales"},
    "TopK": {"K"},
    "Slice": {"starts", "ends", "axes", "steps"},
    "Pad": {"pads", "constant_value", "axes"},
    "Split": {"split"},
    "Squeeze": {"axes"},
    "Unsqueeze": {"axes"},
    "OneHot": {"depth", "values"},
    "CumSum": {"axis"},
    "CumProd": {"axis"},
    "ConstantOfShape": {"input"},
    "Range": {"start", "limit", "delta"},
    "Clip": {"min", "max"},
    "Trilu": {"k"},
    "CenterCropPad": {"shape"},
    "Col2Im": {"image_shape", "block_shape"},
    "DFT": {"dft_length", "axis"},
    "STFT": {"frame_step", "window", "frame_length"},
    "MelWeightMatrix": {"num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz"},
    "HannWindow": {"size"},
    "HammingWindow": {"size"},
    "BlackmanWindow": {"size"},
    "NonMaxSuppression": {"max_output_boxes_per_class", "iou_threshold", "score_threshold"},
    "Dropout": {"ratio", "training_mode"},
    "QuantizeLinear": {"y_scale", "y_zero_point"},
    "DequantizeLinear": {"x_scale", "x_zero_point"},
    "QLinearConv": {"x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale", "y_zero_point", "B"},
    "QLinearMatMul": {"a_scale", "a_zero_point", "b_scale", "b_zero_point", "y_scale", "y_zero_point"},
    "ConvInteger": {"x_zero_point", "w_zero_point"},
    "MatMulInteger": {"a_zero_point", "b_zero_point"},
    "MaxUnpool": {"output_shape"},
    "AffineGrid": {"size"},
    "GRU": {"sequence_lens"},
    "LSTM": {"sequence_lens"},
    "RNN": {"sequence_lens"},
}
for _op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
            "ReduceProd", "ReduceSum", "ReduceSumSquare"):
    ATTRIBUTE_LIKE_INPUTS[_op] = {"axes"}

# Ops whose outputs are random: nothing to compare against.
TVM_OPS: set[str] = set()
RANDOM_OPS = {"Bernoulli", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}

FLOATS = {"float32", "float16", "bfloat16", "float64"}
PLAIN_DTYPES = {"float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                "uint32", "uint64", "bool"}


def dtype_name(elem_type: int) -> str:
    """ONNX element type -> name (``float32``, ``int64``, ``float8e4m3fn``...)."""
    names = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
             9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64",
             15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2",
             20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2",
             26: "int2"}
    return names.get(elem_type, f"type{elem_type}")


@dataclass
class Port:
    """A plugin input or output of a test: the test's value name and its data."""

    name: str          # the test's value name
    dtype: str
    shape: list[int]
    file: str          # .npy under the test's data folder


@dataclass
class Test:
    """One node test and where the runner stands with it."""

    name: str
    op: str
    domain: str
    opset: int
    category: str = ""            # float32 | int/bool | float16 | float64 | other
    status: str = "usable"        # usable | excluded | noKernel | tvmUnsupported
    reason: str = ""              # why excluded
    constants: list[str] = field(default_factory=list)    # inputs turned into initializers
    inputs: list[Port] = field(default_factory=list)      # plugin inputs, in plugin order
    outputs: list[Port] = field(default_factory=list)     # plugin outputs, in order
    batch: str = ""
    nodes: list[str] = field(default_factory=list)        # node names in the batch model
    expanded: bool = False        # the function-expanded form of an op (several nodes, one plugin)
    rtol: float = 1e-3
    atol: float = 1e-7


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# TPAT's selection refuses these before TVM sees them (Sources/TPATKit/Selection/NodeSelector.swift).
OPS_WITHOUT_KERNELS = {"Constant", "Shape", "Size", "ConstantOfShape", "Optional", "OptionalGetElement",
                       "OptionalHasElement"}


FUNCTION_OPS: set[str] = set()


def qualified(node: onnx.NodeProto) -> str:
    """A node's op as TPAT's op table names it: the default domain's op, another domain's
    ``domain:op``."""
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"


def tvm_ops() -> set[str]:
    """The ops TPAT can import, from its own table: those TVM's ONNX frontend converts and those
    whose function body the bridge imports instead (``functionOps``)."""
    with open(os.path.join(REPO, "Sources/TPATKit/Resources/ops/tvm-onnx-ops.json")) as f:
        table = json.load(f)
    return set(table["ops"]) | set(table.get("functionOps", []))


def load_tests() -> list[Any]:
    """The onnx wheel's node tests, generated from its case scripts (quietly)."""
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        np.seterr(all="ignore")
        return load_model_tests(kind="node")


def formal_inputs(node: onnx.NodeProto, opset: int) -> list[str]:
    """The schema's formal input name of each of the node's input slots."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except Exception:  # noqa: BLE001
        return [""] * len(node.input)
    names = [i.name for i in schema.inputs]
    return [names[min(k, len(names) - 1)] if names else "" for k in range(len(node.input))]


def category_of(dtypes: set[str]) -> str:
    """The dtype category of a test, from its plugin inputs' and outputs' dtypes."""
    if not dtypes <= PLAIN_DTYPES:
        return "other"
    if dtypes & {"float16", "bfloat16"}:
        return "float16"
    if "float64" in dtypes:
        return "float64"
    if "float32" in dtypes:
        return "float32"
    return "int/bool"


def value_type(v: onnx.ValueInfoProto) -> str:
    """'tensor_type', 'sequence_type', 'optional_type', 'map_type', 'sparse_tensor_type' or ''."""
    return v.type.WhichOneof("value") or ""


EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


def analyse(tc: Any, base_ops: dict[str, tuple[str, str]]) -> tuple[Test, dict[str, Any]]:
    """A Test for one loader test case, and the arrays by value name (inputs and outputs).
    ``base_ops`` gives the op (and domain) of the one-node test a function-expanded test expands."""
    model: onnx.ModelProto = tc.model
    graph = model.graph
    nodes = list(graph.node)
    expanded = len(nodes) > 1
    domain_opsets = {o.domain or "": o.version for o in model.opset_import}
    if expanded:
        op, domain = base_ops.get(EXPANDED.sub("", tc.name), ("/".join(sorted({n.op_type for n in nodes})), ""))
    else:
        op, domain = (nodes[0].op_type, nodes[0].domain) if nodes else ("", "")
    test = Test(tc.name, op, domain, domain_opsets.get(domain, domain_opsets.get("", 0)), rtol=tc.rtol, atol=tc.atol,
                expanded=expanded)
    arrays: dict[str, Any] = {}

    def exclude(reason: str) -> tuple[Test, dict[str, Any]]:
        test.status, test.reason = "excluded", reason
        return test, arrays

    if not nodes:
        return exclude("no node")
    if expanded and not EXPANDED.search(tc.name):
        return exclude("several nodes that are not an op's function body")
    # a training-mode test of an inference op (Dropout's, BatchNormalization's); the optimizers of
    # ai.onnx.preview.training are ops TPAT converts (training.py)
    if "training" in tc.name and domain != "ai.onnx.preview.training":
        return exclude("training test")
    if op in RANDOM_OPS:
        return exclude("random outputs: nothing to compare with")
    # a function op's graph attributes (FlexAttention's score_mod) are inlined with its body:
    # not control flow
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in nodes for a in n.attribute
           if qualified(n) not in FUNCTION_OPS):
        return exclude("control flow: a node holds subgraphs")
    for v in list(graph.input) + list(graph.output):
        kind = value_type(v)
        if kind != "tensor_type":
            return exclude(f"{kind or 'untyped'} input or output")
        if v.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            return exclude("string tensors")
    if len(tc.data_sets) != 1:
        return exclude(f"{len(tc.data_sets)} data sets")
    feeds, expected = tc.data_sets[0]
    if len(feeds) != len(graph.input) or len(expected) != len(graph.output):
        return exclude("the data set does not match the graph's inputs and outputs")
    for v, a in zip(list(graph.input) + list(graph.output), list(feeds) + list(expected)):
        if isinstance(a, onnx.TensorProto):
            a = numpy_helper.to_array(a)
        elif isinstance(a, (np.generic, int, float, bool)):
            a = np.asarray(a)
        if not isinstance(a, np.ndarray):
            return exclude(f"'{v.name}' holds a {type(a).__name__}, not a tensor")
        arrays[v.name] = a
    for init in graph.initializer:
        arrays[init.name] = numpy_helper.to_array(init)
    for v in graph.input:
        dims = v.type.tensor_type.shape.dim
        if v.type.tensor_type.HasField("shape") and any(not d.HasField("dim_value") for d in dims):
            test.reason = "symbolic input dims (the test's data gives them)"

    # The plugin's inputs are the values entering the nodes, in order of first use (TPAT's
    # Subgraph.entering); an attribute-like operand or an initializer is held inside the plugin.
    initializers = {i.name for i in graph.initializer}
    produced: set[str] = set()
    seen: set[str] = set()
    if expanded:
        # A function body's inputs are the op's inputs, in order: an attribute-like one (a window's
        # size, CenterCropPad's shape) is a constant, as in the one-node test of the op.
        base_formal = formal_inputs(helper.make_node(op, [v.name for v in graph.input], [], domain=domain), test.opset)
        for value, formal in zip([v.name for v in graph.input], base_formal):
            if formal in ATTRIBUTE_LIKE_INPUTS.get(op, set()):
                test.constants.append(value)
                seen.add(value)
    for node in nodes:
        constant_slots = ATTRIBUTE_LIKE_INPUTS.get(node.op_type, set())
        formal = formal_inputs(node, domain_opsets.get(node.domain or "", test.opset))
        for slot, value in enumerate(node.input):
            if not value or value in seen or value in produced:
                continue
            seen.add(value)
            if formal[slot] in constant_slots or value in initializers:
                test.constants.append(value)
                continue
            a = arrays[value]
            test.inputs.append(Port(value, dtype_name(helper.np_dtype_to_tensor_dtype(a.dtype)), list(a.shape), ""))
        produced.update(o for o in node.output if o)
    # ... and its outputs the values leaving them (graph outputs), in the order the nodes make them.
    outputs_by_name = {v.name: v for v in graph.output}
    for node in nodes:
        for value in node.output:
            if not value or (expanded and value not in outputs_by_name):
                continue
            if value not in outputs_by_name:
                return exclude(f"node output '{value}' is not a graph output")
            a = arrays[value]
            elem = outputs_by_name[value].type.tensor_type.elem_type
            test.outputs.append(Port(value, dtype_name(elem or helper.np_dtype_to_tensor_dtype(a.dtype)), list(a.shape), ""))
    if {p.name for p in test.outputs} != set(outputs_by_name):
        return exclude("a graph output is not computed by the nodes (an input passed through)")
    for p in test.inputs:
        p.dtype = dtype_name(next(v for v in graph.input if v.name == p.name).type.tensor_type.elem_type)
    test.category = category_of({p.dtype for p in test.inputs + test.outputs})
    kernel_ops = [n.op_type for n in nodes if n.op_type not in OPS_WITHOUT_KERNELS]
    if not kernel_ops or (not expanded and op in OPS_WITHOUT_KERNELS):
        test.status = "noKernel"
        test.reason = (f"{op} computes no data on the GPU: TPAT refuses to select it (TensorRT runs it natively)")
        return test, arrays
    # the table's names: the default domain's op, another domain's as `domain:op` (function ops)
    foreign = [n for n in nodes if qualified(n) not in TVM_OPS]
    if foreign:
        n = foreign[0]
        test.status = "tvmUnsupported"
        test.reason = (f"op {n.op_type}{' of domain ' + n.domain if n.domain else ''} is not in TVM 0.27's ONNX converter "
                       "map: TPAT refuses to select it")
        return test, arrays
    if not test.inputs:
        test.status = "noKernel"
        test.reason = ("every input is a constant (attribute-like inputs are initializers): the node folds to a "
                       "constant, TPAT refuses to make a plugin of it")
    return test, arrays


def safe(name: str) -> str:
    """A file-name-safe form of a value name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "v"


def build_batches(tests: list[tuple[Test, dict[str, Any], Any]], root: str, batch_size: int) -> list[dict[str, Any]]:
    """Group usable tests by opset imports (and dtype category), write one combined model per
    batch and the tests' arrays; returns the batches."""
    groups: dict[tuple[Any, ...], list[tuple[Test, dict[str, Any], Any]]] = {}
    for item in tests:
        test, _, tc = item
        key = (tuple(sorted((o.domain, o.version) for o in tc.model.opset_import)), test.category == "other", test.expanded)
        groups.setdefault(key, []).append(item)
    batches: list[dict[str, Any]] = []
    for key in sorted(groups, key=lambda k: (k[2], k[1], str(k[0]))):
        items = groups[key]
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            bid = f"b{len(batches):03d}"
            write_batch(chunk, os.path.join(root, "batches", bid))
            batch = {"id": bid, "opsets": [list(x) for x in key[0]], "tests": [t.name for t, _, _ in chunk]}
            if key[2]:
                # a pattern per test: its nodes' names would pass the command line's length
                batch.update(fuse=True, nodes=[f"{t.name}/*" for t, _, _ in chunk])
            batches.append(batch)
            for t, _, _ in chunk:
                t.batch = bid
    return batches


def write_batch(chunk: list[tuple[Test, dict[str, Any], Any]], folder: str) -> None:
    """One model whose nodes are the chunk's tests (values prefixed with the test name)."""
    os.makedirs(folder, exist_ok=True)
    nodes, inputs, outputs, inits = [], [], [], []
    ir = 3
    opsets: dict[str, int] = {}
    for test, arrays, tc in chunk:
        model: onnx.ModelProto = tc.model
        ir = max(ir, model.ir_version)
        for o in model.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    # a test of another domain alone (ai.onnx.ml's) imports no default opset, which a model must
    # (the checker and TPAT refuse it); 17 has every op TPAT adds around a plugin (Cast)
    opsets.setdefault("", 17)
    for test, arrays, tc in chunk:
        model = tc.model
        prefix = test.name + "/"
        test.nodes = []
        for k, original in enumerate(model.graph.node):
            node = onnx.NodeProto()
            node.CopyFrom(original)
            node.name = f"{test.name}/{k}" if test.expanded else test.name
            node.input[:] = [prefix + v if v else "" for v in node.input]
            node.output[:] = [prefix + v if v else "" for v in node.output]
            nodes.append(node)
            test.nodes.append(node.name)
        data = os.path.join(folder, "data", test.name)
        os.makedirs(data, exist_ok=True)
        for value in test.constants:
            inits.append(numpy_helper.from_array(np.asarray(arrays[value]), prefix + value))
        for k, p in enumerate(test.inputs):
            a = np.asarray(arrays[p.name], order="C")
            inputs.append(helper.make_tensor_value_info(prefix + p.name, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape))
            p.file = os.path.join(data, f"in{k}.npy")
            np.save(p.file, a)
        outs = {v.name: v for v in model.graph.output}
        for k, p in enumerate(test.outputs):
            a = np.asarray(arrays[p.name], order="C")
            elem = outs[p.name].type.tensor_type.elem_type or onnx.helper.np_dtype_to_tensor_dtype(a.dtype)
            outputs.append(helper.make_tensor_value_info(prefix + p.name, elem, a.shape))
            p.file = os.path.join(data, f"out{k}.npy")
            np.save(p.file, a)
    graph = helper.make_graph(nodes, "conformance", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                              producer_name="tpat-conformance")
    model.ir_version = ir
    onnx.save(model, os.path.join(folder, "model.onnx"))


def collect(root: str, batch_size: int, only: str | None = None) -> dict[str, Any]:
    """Generate, filter and lay out the tests under ``root``; writes root/tests.json."""
    global TVM_OPS, FUNCTION_OPS
    TVM_OPS = tvm_ops()
    with open(os.path.join(REPO, "Sources/TPATKit/Resources/ops/tvm-onnx-ops.json")) as f:
        FUNCTION_OPS = set(json.load(f).get("functionOps", []))
    pattern = re.compile(only) if only else None
    cases = load_tests()
    all_tests: list[Test] = []
    usable: list[tuple[Test, dict[str, Any], Any]] = []
    base_ops = {tc.name: (tc.model.graph.node[0].op_type, tc.model.graph.node[0].domain)
                for tc in cases if len(tc.model.graph.node) == 1}
    for tc in cases:
        if pattern and not pattern.search(tc.name):
            continue
        test, arrays = analyse(tc, base_ops)
        all_tests.append(test)
        if test.status == "usable":
            usable.append((test, arrays, tc))
    os.makedirs(root, exist_ok=True)
    batches = build_batches(usable, root, batch_size)
    doc = {"onnxVersion": onnx.__version__, "batches": batches, "tests": [asdict(t) for t in all_tests]}
    with open(os.path.join(root, "tests.json"), "w") as f:
        json.dump(doc, f, indent=1)
    return doc
