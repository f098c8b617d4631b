"""Single-node ONNX sub-models used by the tests, built with onnx.helper.

Each builder returns an ``onnx.ModelProto`` shaped like the sub-models the Swift side extracts:
non-constant inputs are graph inputs, constants are initializers, symbolic dims are dim_params.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Dim = int | str
F32 = TensorProto.FLOAT
I64 = TensorProto.INT64
BOOL = TensorProto.BOOL


def vi(name: str, elem: int, shape: Sequence[Dim]) -> onnx.ValueInfoProto:
    """A value info with a possibly symbolic shape."""
    return helper.make_tensor_value_info(name, elem, list(shape))


def init(name: str, array: np.ndarray) -> onnx.TensorProto:
    """An initializer from a numpy array."""
    return numpy_helper.from_array(np.asarray(array), name)


def single(op: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
           inits: Sequence[onnx.TensorProto] = (), input_names: Sequence[str] | None = None,
           opset: int = 17, **attrs: object) -> onnx.ModelProto:
    """A model holding one node; its inputs are ``input_names`` (default: graph inputs then
    initializers, in order)."""
    names = list(input_names) if input_names is not None else [i.name for i in inputs] + [t.name for t in inits]
    node = helper.make_node(op, names, [o.name for o in outputs], name=f"{op}_0", **attrs)
    graph = helper.make_graph([node], f"{op}_graph", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def unary(op: str, shape: Sequence[Dim], out_elem: int = F32) -> onnx.ModelProto:
    return single(op, [vi("x", F32, shape)], [vi("y", out_elem, shape)])


def abs_() -> onnx.ModelProto:
    return unary("Abs", [4, 1024])


def abs_sym() -> onnx.ModelProto:
    return unary("Abs", ["N", 1024])


def add_bcast() -> onnx.ModelProto:
    return single("Add", [vi("a", F32, [8, 256]), vi("b", F32, [256])], [vi("y", F32, [8, 256])])


def softmax(n: Dim = 8192) -> onnx.ModelProto:
    return single("Softmax", [vi("x", F32, [n, 1024])], [vi("y", F32, [n, 1024])], axis=-1)


def reducemax() -> onnx.ModelProto:
    return single("ReduceMax", [vi("x", F32, [256, 82, 128])], [vi("y", F32, [256, 1, 128])],
                  [init("axes", np.array([1], np.int64))], opset=18, keepdims=1)


def layernorm(n: Dim = 8192) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    return single("LayerNormalization", [vi("x", F32, [n, 1024])], [vi("y", F32, [n, 1024])],
                  [init("scale", rng.standard_normal(1024).astype(np.float32)),
                   init("bias", rng.standard_normal(1024).astype(np.float32))], axis=-1, epsilon=1e-5)


def gathernd() -> onnx.ModelProto:
    return single("GatherND", [vi("data", F32, [1, 128, 128, 224]), vi("indices", I64, [1, 600, 3])],
                  [vi("y", F32, [1, 600, 224])])


def scatternd() -> onnx.ModelProto:
    return single("ScatterND", [vi("data", F32, [32, 128, 128, 256]), vi("indices", I64, [32, 600, 3]),
                                vi("updates", F32, [32, 600, 256])], [vi("y", F32, [32, 128, 128, 256])])


def onehot(rows: int = 16) -> onnx.ModelProto:
    return single("OneHot", [vi("indices", I64, [rows])], [vi("y", F32, [rows, 16384])],
                  [init("depth", np.array(16384, np.int64)), init("values", np.array([0, 1], np.float32))],
                  axis=-1)


def resize(mode: str) -> onnx.ModelProto:
    inits = [init("roi", np.array([], np.float32)), init("scales", np.array([1, 1, 4, 4], np.float32))]
    extra = {"nearest_mode": "floor", "coordinate_transformation_mode": "asymmetric"} if mode == "nearest" else {}
    return single("Resize", [vi("x", F32, [32, 32, 44, 50])], [vi("y", F32, [32, 32, 176, 200])], inits,
                  mode=mode, **extra)


def matmul() -> onnx.ModelProto:
    return single("MatMul", [vi("a", F32, [1024, 1024]), vi("b", F32, [1024, 1024])], [vi("y", F32, [1024, 1024])])


def matmul_sym() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    return single("MatMul", [vi("a", F32, ["batch", 128, 256])], [vi("y", F32, ["batch", 128, 512])],
                  [init("w", (rng.standard_normal((256, 512)) * 0.05).astype(np.float32))])


def conv() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    return single("Conv", [vi("x", F32, [1, 64, 56, 56])], [vi("y", F32, [1, 64, 56, 56])],
                  [init("w", (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)),
                   init("b", rng.standard_normal(64).astype(np.float32))],
                  kernel_shape=[3, 3], pads=[1, 1, 1, 1])


def erf() -> onnx.ModelProto:
    return unary("Erf", [8, 1024])


def isinf() -> onnx.ModelProto:
    return unary("IsInf", [8, 1024], BOOL)


def where() -> onnx.ModelProto:
    return single("Where", [vi("c", BOOL, [8, 1024]), vi("a", F32, [8, 1024]), vi("b", F32, [1024])],
                  [vi("y", F32, [8, 1024])])


def topk() -> onnx.ModelProto:
    return single("TopK", [vi("x", F32, [8, 1024])], [vi("values", F32, [8, 16]), vi("indices", I64, [8, 16])],
                  [init("k", np.array([16], np.int64))], axis=-1)


def cumsum(axis_dim: Dim = 1024) -> onnx.ModelProto:
    return single("CumSum", [vi("x", F32, [8, axis_dim])], [vi("y", F32, [8, axis_dim])],
                  [init("axis", np.array(1, np.int64))])


def argmax() -> onnx.ModelProto:
    return single("ArgMax", [vi("x", F32, [8, 1024])], [vi("y", I64, [8, 1])], axis=1, keepdims=1)


def reshape() -> onnx.ModelProto:
    return single("Reshape", [vi("x", F32, [8, 1024])], [vi("y", F32, [8192])],
                  [init("shape", np.array([8192], np.int64))])


def identity() -> onnx.ModelProto:
    return single("Identity", [vi("x", F32, [8, 1024])], [vi("y", F32, [8, 1024])])


MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "abs": abs_, "abs_sym": abs_sym, "add_bcast": add_bcast, "softmax": softmax,
    "softmax_sym": lambda: softmax("N"), "reducemax": reducemax, "layernorm": layernorm,
    "layernorm_sym": lambda: layernorm("N"), "gathernd": gathernd, "scatternd": scatternd,
    "onehot": onehot, "resize_nearest": lambda: resize("nearest"), "resize_linear": lambda: resize("linear"),
    "matmul": matmul, "matmul_sym": matmul_sym, "conv": conv, "erf": erf, "isinf": isinf, "where": where,
    "topk": topk, "cumsum": cumsum, "cumsum_sym": lambda: cumsum("L"), "argmax": argmax,
    "reshape": reshape, "identity": identity,
}


def flatten() -> onnx.ModelProto:
    return single("Flatten", [vi("x", F32, ["N", 8, 128])], [vi("y", F32, ["N", 1024])], axis=1)


def squeeze() -> onnx.ModelProto:
    return single("Squeeze", [vi("x", F32, [8, 1, 128])], [vi("y", F32, [8, 128])], [init("axes", np.array([1], np.int64))])


def shape_op() -> onnx.ModelProto:
    return single("Shape", [vi("x", F32, [8, 1, 128])], [vi("y", I64, [3])])


def reshape_sym() -> onnx.ModelProto:
    return single("Reshape", [vi("x", F32, ["N", 8, 128])], [vi("y", F32, ["N", 1024])],
                  [init("shape", np.array([-1, 1024], np.int64))])


def gather() -> onnx.ModelProto:
    return single("Gather", [vi("data", F32, [1000, 64]), vi("idx", I64, [4, 16])], [vi("y", F32, [4, 16, 64])], axis=0)


MODELS.update({"flatten": flatten, "squeeze": squeeze, "shape_op": shape_op, "reshape_sym": reshape_sym,
               "gather": gather})


def add_odd_sym() -> onnx.ModelProto:
    """Two inputs sharing a dim_param that is not a C identifier (TVM would parse 'batch-size')."""
    return single("Add", [vi("a", F32, ["batch-size", 256]), vi("b", F32, ["batch-size", 256])],
                  [vi("y", F32, ["batch-size", 256])])


MODELS["add_odd_sym"] = add_odd_sym
