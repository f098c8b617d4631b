#!/usr/bin/env python3
"""Writes models/generated/bench.onnx: one branch per workload of the kernel benchmark
(scripts/bench-kernels.py; the tuning and performance issue's list). Every node reads graph inputs
(data and indices alike), so the plugins take them at run time; Resize scales/sizes, OneHot's depth
and values and LayerNormalization's scale and bias are initializers (plugin constants).

With --dynamic, its twin models/generated/bench-dynamic.onnx: the same nodes (so the same plugin
names) with the leading dim of every input symbolic (``N``), except where the node fixes it (the
second GatherND's 2-D index, the second Resize's constant sizes). Its plugins run at the static
model's shapes in the same benchmark run, beside the static model's plugins:

With --dynamic-check, models/generated/bench-dynamic-check.onnx: the same ops at small sizes with
a symbolic leading dim, whose plugins' self-tests (``--dim N=1,3``) check the dynamic kernels at two
sizes.

    .venv/bin/python scripts/make-bench-models.py [--dynamic | --dynamic-check] [OUT.onnx]"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
F, I64 = TensorProto.FLOAT, TensorProto.INT64


# Inputs whose leading dim the node fixes: they stay static in the dynamic twin.
STATIC_IN_TWIN = ("gathernd_b.", "resize_nearest_b.", "resize_linear_b.")


def build(dynamic: bool = False) -> onnx.ModelProto:
    rng = np.random.default_rng(11)
    inputs, outputs, nodes, inits = [], [], [], []

    def inp(name, dtype, shape):
        if dynamic and not name.startswith(STATIC_IN_TWIN):
            shape = ["N"] + list(shape[1:])
        inputs.append(helper.make_tensor_value_info(name, dtype, shape))

    def node(op, ins, out, name, **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=name, **attrs))
        outputs.append(helper.make_tensor_value_info(out, F, None))

    def const(name, array):
        inits.append(numpy_helper.from_array(array, name))

    inp("gathernd_a.data", F, [1, 128, 128, 224]); inp("gathernd_a.idx", I64, [1, 600, 3])
    node("GatherND", ["gathernd_a.data", "gathernd_a.idx"], "gathernd_a.y", "gathernd_a")
    inp("gathernd_b.data", F, [1, 158, 128, 128]); inp("gathernd_b.idx", I64, [1, 2])
    node("GatherND", ["gathernd_b.data", "gathernd_b.idx"], "gathernd_b.y", "gathernd_b")
    inp("scatternd.data", F, [32, 128, 128, 256]); inp("scatternd.idx", I64, [32, 600, 3])
    inp("scatternd.updates", F, [32, 600, 256])
    node("ScatterND", ["scatternd.data", "scatternd.idx", "scatternd.updates"], "scatternd.y", "scatternd")
    inp("onehot.idx", I64, [16])
    const("onehot.depth", np.array(16384, np.int64)); const("onehot.values", np.array([0, 1], np.float32))
    node("OneHot", ["onehot.idx", "onehot.depth", "onehot.values"], "onehot.y", "onehot")
    const("resize.scales4", np.array([1, 1, 4, 4], np.float32))
    const("resize.sizes_b", np.array([32, 64, 176, 200], np.int64))
    for mode in ("nearest", "linear"):
        extra = dict(coordinate_transformation_mode="asymmetric", nearest_mode="floor") if mode == "nearest" else {}
        inp(f"resize_{mode}_a.x", F, [32, 32, 44, 50])
        node("Resize", [f"resize_{mode}_a.x", "", "resize.scales4"], f"resize_{mode}_a.y", f"resize_{mode}_a", mode=mode, **extra)
        inp(f"resize_{mode}_b.x", F, [32, 64, 11, 12])
        node("Resize", [f"resize_{mode}_b.x", "", "", "resize.sizes_b"], f"resize_{mode}_b.y", f"resize_{mode}_b", mode=mode, **extra)
    inp("reducemax.x", F, [256, 82, 128])
    node("ReduceMax", ["reducemax.x"], "reducemax.y", "reducemax", axes=[1], keepdims=0)
    inp("softmax.x", F, [8192, 1024])
    node("Softmax", ["softmax.x"], "softmax.y", "softmax", axis=-1)
    inp("layernorm.x", F, [8192, 1024])
    const("layernorm.scale", (1 + 0.1 * rng.standard_normal(1024)).astype(np.float32))
    const("layernorm.bias", (0.1 * rng.standard_normal(1024)).astype(np.float32))
    node("LayerNormalization", ["layernorm.x", "layernorm.scale", "layernorm.bias"], "layernorm.y", "layernorm",
         axis=-1, epsilon=1e-5)
    graph = helper.make_graph(nodes, "tpat_bench", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tpat-make-bench-models")
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def build_dynamic_check() -> onnx.ModelProto:
    """The benchmark's ops at small sizes with a symbolic leading dim: the self-tests of its plugins
    (``--dim N=1,3``) check the dynamic kernels at two sizes with data small enough to carry."""
    inputs, outputs, nodes, inits = [], [], [], []

    def inp(name, dtype, shape):
        inputs.append(helper.make_tensor_value_info(name, dtype, shape))

    def node(op, ins, out, name, **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=name, **attrs))
        outputs.append(helper.make_tensor_value_info(out, F, None))

    inp("gathernd.data", F, ["N", 16, 16, 40]); inp("gathernd.idx", I64, ["N", 30, 3])
    node("GatherND", ["gathernd.data", "gathernd.idx"], "gathernd.y", "gathernd")
    inp("scatternd.data", F, ["N", 16, 16, 64]); inp("scatternd.idx", I64, ["N", 50, 3])
    inp("scatternd.updates", F, ["N", 50, 64])
    node("ScatterND", ["scatternd.data", "scatternd.idx", "scatternd.updates"], "scatternd.y", "scatternd")
    inits.append(numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "resize.scales4"))
    for mode in ("nearest", "linear"):
        extra = dict(coordinate_transformation_mode="asymmetric", nearest_mode="floor") if mode == "nearest" else {}
        inp(f"resize_{mode}.x", F, ["N", 8, 11, 12])
        node("Resize", [f"resize_{mode}.x", "", "resize.scales4"], f"resize_{mode}.y", f"resize_{mode}", mode=mode, **extra)
    inp("reducemax.x", F, ["N", 82, 128])
    node("ReduceMax", ["reducemax.x"], "reducemax.y", "reducemax", axes=[1], keepdims=0)
    inp("softmax.x", F, ["N", 1024])
    node("Softmax", ["softmax.x"], "softmax.y", "softmax", axis=-1)
    inp("layernorm.x", F, ["N", 1024])
    rng = np.random.default_rng(12)
    inits.append(numpy_helper.from_array((1 + 0.1 * rng.standard_normal(1024)).astype(np.float32), "layernorm.scale"))
    inits.append(numpy_helper.from_array((0.1 * rng.standard_normal(1024)).astype(np.float32), "layernorm.bias"))
    node("LayerNormalization", ["layernorm.x", "layernorm.scale", "layernorm.bias"], "layernorm.y", "layernorm",
         axis=-1, epsilon=1e-5)
    graph = helper.make_graph(nodes, "tpat_bench_dynamic_check", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tpat-make-bench-models")
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    args = sys.argv[1:]
    dynamic, check = "--dynamic" in args, "--dynamic-check" in args
    args = [a for a in args if a not in ("--dynamic", "--dynamic-check")]
    default = ("models/generated/bench-dynamic-check.onnx" if check else
               "models/generated/bench-dynamic.onnx" if dynamic else "models/generated/bench.onnx")
    out = pathlib.Path(args[0]) if args else ROOT / default
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build_dynamic_check() if check else build(dynamic), str(out))
    print(out)


if __name__ == "__main__":
    main()
