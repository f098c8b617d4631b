#!/usr/bin/env python3
"""Writes models/generated/bench.onnx: one branch per workload of the kernel benchmark
(scripts/bench-kernels.py; the tuning and performance issue's list). Every node reads graph inputs
(data and indices alike), so the plugins take them at run time; Resize scales/sizes, OneHot's depth
and values and LayerNormalization's scale and bias are initializers (plugin constants).

    .venv/bin/python scripts/make-bench-models.py [OUT.onnx]"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(11)
    inputs, outputs, nodes, inits = [], [], [], []

    def inp(name, dtype, shape):
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


def main() -> None:
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "models/generated/bench.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(), str(out))
    print(out)


if __name__ == "__main__":
    main()
