#!/usr/bin/env python3
"""Writes the kernel benchmark's models (scripts/bench-kernels.py reads every shape from them):

* ``bench.onnx``: one branch per workload of the tuning and performance issue's list. Every node
  reads graph inputs (data and indices alike), so the plugins take them at run time; Resize
  scales/sizes, OneHot's depth and values and LayerNormalization's scale and bias are initializers.
* ``--size 1`` / ``--size max``: ``bench-n1.onnx`` / ``bench-nmax.onnx``, the same workloads with
  the leading dim of each input (its ``N``) at 1, or at the largest that fits one call's tensors
  (inputs and output) in 4 GiB (at most 2**30 float32 elements, so static kernels keep 32-bit
  element counts). The two workloads whose node fixes N (the second GatherND and the second
  Resize pair) are left out there: they have one size.
* ``--dynamic``: ``bench-dynamic.onnx``, the same nodes (so the same plugin names) with the leading
  dim of every input symbolic (``N``), except where the node fixes it. Its plugins run at the
  static models' shapes beside their plugins.
* ``--transformer SIZE`` (``1x128``, ``8x128``, ``64x512``: batch x sequence) and ``--transformer
  dynamic``: BERT-base's attention and norm workloads with a static or a symbolic batch ``B`` and
  sequence ``S``: the score MatMul Q [B,12,S,64] x K^T [B,12,64,S], the Softmax over the scores
  (a row of length S), the context MatMul P [B,12,S,S] x V [B,12,S,64], LayerNormalization
  over [B,S,768], the feed-forward GELU's Erf over [B,S,3072] and the attention mask's add
  [B,12,S,S] + [B,1,1,S].
* ``--dynamic-check``: ``bench-dynamic-check.onnx``, the ops at small sizes with symbolic dims,
  whose plugins' self-tests (``--dim N=1,3``) check the dynamic kernels at two sizes.

    .venv/bin/python scripts/make-bench-models.py [--size 1|bench|max | --dynamic | --dynamic-check
                                                   | --transformer 8x128|dynamic] [OUT.onnx]"""
from __future__ import annotations

import argparse
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
F, I64 = TensorProto.FLOAT, TensorProto.INT64


# Inputs whose leading dim the node fixes: they stay static in the dynamic twin and have one size.
STATIC_IN_TWIN = ("gathernd_b.", "resize_nearest_b.", "resize_linear_b.")
CALL_BUDGET = 4 << 30    # bytes of one call's tensors at --size max
ELEMENT_LIMIT = 1 << 30  # elements of any one tensor at --size max


def _finish(name: str, nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tpat-make-bench-models")
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def _largest_n(bench: onnx.ModelProto) -> dict[str, int]:
    """Each workload's largest N (by node name) whose call fits CALL_BUDGET and whose tensors stay
    within ELEMENT_LIMIT elements, from the benchmark model's own shapes (N = their leading dim)."""
    itemsize = {TensorProto.FLOAT: 4, TensorProto.INT64: 8}
    shapes = {v.name: ([d.dim_value for d in v.type.tensor_type.shape.dim], v.type.tensor_type.elem_type)
              for v in [*bench.graph.input, *bench.graph.output]}
    out = {}
    for node in bench.graph.node:
        tensors = [shapes[t] for t in [*node.input, *node.output] if t in shapes]
        n = tensors[0][0][0]
        per_n = sum(np.prod(dims) * itemsize[t] for dims, t in tensors) // n
        largest = max(np.prod(dims) for dims, _ in tensors) // n
        out[node.name] = int(min(CALL_BUDGET // per_n, ELEMENT_LIMIT // largest))
    return out


def build(dynamic: bool = False, size: str = "bench") -> onnx.ModelProto:
    """The benchmark model: static at the benchmark's sizes (``size`` "bench"), at N = 1 ("1") or
    at each workload's largest N ("max"); or its dynamic twin."""
    rng = np.random.default_rng(11)
    inputs, outputs, nodes, inits = [], [], [], []
    # the leading dim of each workload's inputs at this size, by workload (node) name
    scaled = size != "bench" and not dynamic

    def n_for(workload: str, bench_n: int) -> int:
        if size == "1":
            return 1
        return max_n.get(workload, bench_n) if size == "max" else bench_n

    max_n = _largest_n(build()) if size == "max" else {}

    def inp(name, dtype, shape):
        workload = name.split(".")[0]
        if dynamic and not name.startswith(STATIC_IN_TWIN):
            shape = ["N"] + list(shape[1:])
        elif scaled:
            shape = [n_for(workload, shape[0])] + list(shape[1:])
        inputs.append(helper.make_tensor_value_info(name, dtype, shape))

    def node(op, ins, out, name, **attrs):
        if scaled and name.startswith(tuple(p[:-1] for p in STATIC_IN_TWIN)):
            for i in [x for x in inputs if x.name in ins]:
                inputs.remove(i)
            return
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
    sizes_b = np.array([32, 64, 176, 200], np.int64)
    if not scaled:
        const("resize.sizes_b", sizes_b)
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
    return _finish("tpat_bench", nodes, inputs, outputs, inits)


TRANSFORMER_SIZES = {"1x128": (1, 128), "8x128": (8, 128), "64x512": (64, 512)}
HIDDEN, HEADS = 768, 12


def build_transformer(size: str) -> onnx.ModelProto:
    """BERT-base's attention and norm workloads, at batch x sequence ``size`` or, for "dynamic",
    with a symbolic batch B and sequence S."""
    b, s = ("B", "S") if size == "dynamic" else TRANSFORMER_SIZES[size]
    d = HIDDEN // HEADS
    rng = np.random.default_rng(13)
    inputs, outputs, nodes, inits = [], [], [], []

    def inp(name, shape):
        inputs.append(helper.make_tensor_value_info(name, F, shape))

    def node(op, ins, name, **attrs):
        nodes.append(helper.make_node(op, ins, [f"{name}.y"], name=name, **attrs))
        outputs.append(helper.make_tensor_value_info(f"{name}.y", F, None))

    inp("attn_scores.q", [b, HEADS, s, d]); inp("attn_scores.kt", [b, HEADS, d, s])
    node("MatMul", ["attn_scores.q", "attn_scores.kt"], "attn_scores")
    inp("attn_softmax.x", [b, HEADS, s, s])
    node("Softmax", ["attn_softmax.x"], "attn_softmax", axis=-1)
    inp("attn_context.p", [b, HEADS, s, s]); inp("attn_context.v", [b, HEADS, s, d])
    node("MatMul", ["attn_context.p", "attn_context.v"], "attn_context")
    inp("bert_layernorm.x", [b, s, HIDDEN])
    inits.append(numpy_helper.from_array((1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32), "bert_layernorm.scale"))
    inits.append(numpy_helper.from_array((0.1 * rng.standard_normal(HIDDEN)).astype(np.float32), "bert_layernorm.bias"))
    node("LayerNormalization", ["bert_layernorm.x", "bert_layernorm.scale", "bert_layernorm.bias"], "bert_layernorm",
         axis=-1, epsilon=1e-12)
    # two elementwise workloads of TVM's default kernels: the feed-forward GELU's Erf (trailing
    # static dims a multiple of 1024, TPAT's injective schedule) and the attention mask's
    # broadcast add (the run-time dim last: dlight's Fallback)
    inp("bert_gelu_erf.x", [b, s, 4 * HIDDEN])
    node("Erf", ["bert_gelu_erf.x"], "bert_gelu_erf")
    inp("attn_mask.x", [b, HEADS, s, s]); inp("attn_mask.m", [b, 1, 1, s])
    node("Add", ["attn_mask.x", "attn_mask.m"], "attn_mask")
    return _finish("tpat_bench_transformer", nodes, inputs, outputs, inits)


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
    # rows of a run-time length K beyond the register kernels' reach (the self-tests' K of 200 and
    # 700 take the 16-slot register kernel and the streaming one)
    inp("long_softmax.x", F, ["N", "K"])
    node("Softmax", ["long_softmax.x"], "long_softmax.y", "long_softmax", axis=-1)
    # attention's scores over a dynamic sequence: the row itself is symbolic
    inp("attn_softmax.x", F, ["N", 4, "S", "S"])
    node("Softmax", ["attn_softmax.x"], "attn_softmax.y", "attn_softmax", axis=-1)
    inp("attn_scores.q", F, ["N", 4, "S", 64]); inp("attn_scores.kt", F, ["N", 4, 64, "S"])
    node("MatMul", ["attn_scores.q", "attn_scores.kt"], "attn_scores.y", "attn_scores")
    # the context MatMul (K = S: a run-time depth) and a dynamic activation against a weight whose
    # depth (100) and width (200) are not multiples of TPAT's GEMM tiles
    inp("attn_context.p", F, ["N", 4, "S", "S"]); inp("attn_context.v", F, ["N", 4, "S", 64])
    node("MatMul", ["attn_context.p", "attn_context.v"], "attn_context.y", "attn_context")
    inp("linear.x", F, ["N", "S", 100])
    inits.append(numpy_helper.from_array((0.1 * np.random.default_rng(13).standard_normal((100, 200))).astype(np.float32),
                                         "linear.w"))
    node("MatMul", ["linear.x", "linear.w"], "linear.y", "linear")
    # an elementwise op of TVM's default kernel over trailing static dims of 3072 (TPAT's
    # injective schedule) and a broadcast over a head dim before the symbolic one
    inp("gelu_erf.x", F, ["N", "S", 3072])
    node("Erf", ["gelu_erf.x"], "gelu_erf.y", "gelu_erf")
    inp("head_scale.x", F, ["N", 4, "S", 64])
    inits.append(numpy_helper.from_array(np.random.default_rng(14).standard_normal((4, 1, 64)).astype(np.float32),
                                         "head_scale.w"))
    node("Mul", ["head_scale.x", "head_scale.w"], "head_scale.y", "head_scale")
    inp("layernorm.x", F, ["N", 1024])
    rng = np.random.default_rng(12)
    inits.append(numpy_helper.from_array((1 + 0.1 * rng.standard_normal(1024)).astype(np.float32), "layernorm.scale"))
    inits.append(numpy_helper.from_array((0.1 * rng.standard_normal(1024)).astype(np.float32), "layernorm.bias"))
    node("LayerNormalization", ["layernorm.x", "layernorm.scale", "layernorm.bias"], "layernorm.y", "layernorm",
         axis=-1, epsilon=1e-5)
    return _finish("tpat_bench_dynamic_check", nodes, inputs, outputs, inits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kind = ap.add_mutually_exclusive_group()
    kind.add_argument("--size", choices=("1", "bench", "max"), default="bench")
    kind.add_argument("--dynamic", action="store_true")
    kind.add_argument("--dynamic-check", action="store_true")
    kind.add_argument("--transformer", choices=(*TRANSFORMER_SIZES, "dynamic"))
    ap.add_argument("out", nargs="?")
    args = ap.parse_args()
    if args.dynamic_check:
        model, default = build_dynamic_check(), "bench-dynamic-check.onnx"
    elif args.dynamic:
        model, default = build(dynamic=True), "bench-dynamic.onnx"
    elif args.transformer:
        model, default = build_transformer(args.transformer), f"bench-transformer-{args.transformer}.onnx"
    else:
        model, default = build(size=args.size), {"1": "bench-n1.onnx", "bench": "bench.onnx", "max": "bench-nmax.onnx"}[args.size]
    out = pathlib.Path(args.out) if args.out else ROOT / "models/generated" / default
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    print(out)


if __name__ == "__main__":
    main()
