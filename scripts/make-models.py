#!/usr/bin/env python3
"""Writes the demo model and the test fixtures with Python's onnx package (deterministic).

    models/generated/demo.onnx            the demo: 12 ops, GatherND, ScatterND, OneHot, Resize, ...
    models/generated/ops.onnx             one branch per op of the kernel-manifest issue's list
    models/generated/lowerings.onnx       edge shapes of TPAT's own lowerings (python/tpat_bridge/rowwise.py, legalize.py)
    models/generated/dynamic_head.onnx    a detection head with dynamic dims and data-dependent sizes
    models/generated/dynamic_masks.onnx   a decoder's positions and masks: Range, Expand, Tile of run-time sizes
    Tests/Fixtures/generated/*.onnx       models the Swift tests round-trip and inspect

Run by scripts/setup.sh; both folders are git-ignored."""
from __future__ import annotations

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
OPSET = [helper.make_opsetid("", 17)]


def const(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array, name)


def finish(graph: onnx.GraphProto, path: pathlib.Path, **kwargs) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=kwargs.pop("opsets", OPSET), producer_name="tpat-make-models", **kwargs)
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return model


def demo(path: pathlib.Path) -> None:
    """A small detection-head-like graph with the ops TensorRT plugins are most often made for."""
    rng = np.random.default_rng(7)
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 16, 16])
    labels = helper.make_tensor_value_info("labels", TensorProto.INT64, [8])
    picks = helper.make_tensor_value_info("picks", TensorProto.INT64, [4, 2])
    outputs = [
        helper.make_tensor_value_info("scattered", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("top_values", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("top_indices", TensorProto.INT64, None),
        helper.make_tensor_value_info("one_hot", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("selected", TensorProto.FLOAT, None),
    ]
    inits = [
        const("conv.weight", rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.1),
        const("conv.bias", rng.standard_normal(16).astype(np.float32) * 0.1),
        const("resize.scales", np.array([1, 1, 2, 2], np.float32)),
        const("norm.scale", rng.standard_normal(32).astype(np.float32)),
        const("norm.bias", rng.standard_normal(32).astype(np.float32)),
        const("topk.k", np.array([4], np.int64)),
        const("scatter.indices", np.array([[0, 3], [0, 7], [0, 11], [0, 30]], np.int64)),
        const("onehot.depth", np.array(16, np.int64)),
        const("onehot.values", np.array([0, 1], np.float32)),
        const("threshold", np.array(0.03, np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv.weight", "conv.bias"], ["features"], name="backbone/conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["features"], ["activated"], name="backbone/relu"),
        helper.make_node("Resize", ["activated", "", "resize.scales"], ["upsampled"], name="neck/upsample", mode="nearest"),
        helper.make_node("ReduceMax", ["upsampled"], ["pooled"], name="neck/channel_max", axes=[1], keepdims=0),
        helper.make_node("Softmax", ["pooled"], ["scores"], name="head/softmax", axis=-1),
        helper.make_node("LayerNormalization", ["pooled", "norm.scale", "norm.bias"], ["normed"], name="head/norm", axis=-1),
        helper.make_node("TopK", ["scores", "topk.k"], ["top_values", "top_indices"], name="head/topk", axis=-1),
        helper.make_node("GatherND", ["normed", "picks"], ["gathered"], name="head/gather"),
        helper.make_node("ScatterND", ["normed", "scatter.indices", "gathered"], ["scattered"], name="head/scatter"),
        helper.make_node("OneHot", ["labels", "onehot.depth", "onehot.values"], ["one_hot"], name="head/one_hot"),
        helper.make_node("Greater", ["scores", "threshold"], ["confident"], name="head/confident"),
        helper.make_node("Where", ["confident", "scores", "normed"], ["selected"], name="head/select"),
    ]
    graph = helper.make_graph(nodes, "tpat_demo", [x, labels, picks], outputs, inits)
    finish(graph, path)


def ops(path: pathlib.Path) -> None:
    """The kernel-manifest issue's op list, one branch per op, sized so that the self-test data of
    every plugin fits in one transfer to a GPU machine (about 30 MB); the full sizes are in
    python/tests. Four ops also run with a symbolic batch dim N."""
    rng = np.random.default_rng(3)
    inputs, outputs, inits, nodes = [], [], [], []

    def inp(name, dtype, shape):
        inputs.append(helper.make_tensor_value_info(name, dtype, shape))

    def node(op, ins, outs, name, **attrs):
        nodes.append(helper.make_node(op, ins, outs, name=name, **attrs))
        for o in outs:
            outputs.append(helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None))

    F, I64 = TensorProto.FLOAT, TensorProto.INT64
    inp("abs.x", F, [4, 1024]); node("Abs", ["abs.x"], ["abs.y"], "abs")
    inp("add.a", F, [8, 256]); inp("add.b", F, [256]); node("Add", ["add.a", "add.b"], ["add.y"], "add_broadcast")
    inp("softmax.x", F, [1024, 1024]); node("Softmax", ["softmax.x"], ["softmax.y"], "softmax", axis=-1)
    inp("reducemax.x", F, [256, 82, 128]); node("ReduceMax", ["reducemax.x"], ["reducemax.y"], "reducemax", axes=[1], keepdims=1)
    inp("layernorm.x", F, [1024, 1024])
    inits += [const("layernorm.scale", rng.standard_normal(1024).astype(np.float32)), const("layernorm.bias", rng.standard_normal(1024).astype(np.float32))]
    node("LayerNormalization", ["layernorm.x", "layernorm.scale", "layernorm.bias"], ["layernorm.y"], "layernorm", axis=-1)
    inp("gathernd.data", F, [1, 64, 64, 224]); inp("gathernd.indices", I64, [1, 600, 2])
    node("GatherND", ["gathernd.data", "gathernd.indices"], ["gathernd.y"], "gathernd", batch_dims=1)
    inp("scatternd.data", F, [4, 64, 64, 16]); inp("scatternd.indices", I64, [4, 600, 3]); inp("scatternd.updates", F, [4, 600, 16])
    node("ScatterND", ["scatternd.data", "scatternd.indices", "scatternd.updates"], ["scatternd.y"], "scatternd")
    inp("onehot.indices", I64, [16])
    inits += [const("onehot.depth", np.array(16384, np.int64)), const("onehot.values", np.array([0, 1], np.float32))]
    node("OneHot", ["onehot.indices", "onehot.depth", "onehot.values"], ["onehot.y"], "onehot")
    inits += [const("resize.scales", np.array([1, 1, 4, 4], np.float32))]
    inp("resize_nearest.x", F, [2, 8, 44, 50]); node("Resize", ["resize_nearest.x", "", "resize.scales"], ["resize_nearest.y"], "resize_nearest", mode="nearest")
    inp("resize_linear.x", F, [2, 8, 44, 50]); node("Resize", ["resize_linear.x", "", "resize.scales"], ["resize_linear.y"], "resize_linear", mode="linear")
    inp("matmul.a", F, [512, 512]); inp("matmul.b", F, [512, 512]); node("MatMul", ["matmul.a", "matmul.b"], ["matmul.y"], "matmul")
    inp("conv.x", F, [1, 64, 56, 56])
    inits += [const("conv.w", (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)), const("conv.b", rng.standard_normal(64).astype(np.float32))]
    node("Conv", ["conv.x", "conv.w", "conv.b"], ["conv.y"], "conv", pads=[1, 1, 1, 1])
    inp("erf.x", F, [64, 1024]); node("Erf", ["erf.x"], ["erf.y"], "erf")
    inp("isinf.x", F, [64, 1024]); node("IsInf", ["isinf.x"], ["isinf.y"], "isinf")
    inp("where.c", TensorProto.BOOL, [64, 1024]); inp("where.a", F, [64, 1024]); inp("where.b", F, [64, 1024])
    node("Where", ["where.c", "where.a", "where.b"], ["where.y"], "where")
    inits += [const("topk.k", np.array([8], np.int64)), const("cumsum.axis", np.array(1, np.int64))]
    inp("topk.x", F, [64, 1024]); node("TopK", ["topk.x", "topk.k"], ["topk.values", "topk.indices"], "topk", axis=-1)
    inp("cumsum.x", F, [8, 1024]); node("CumSum", ["cumsum.x", "cumsum.axis"], ["cumsum.y"], "cumsum")
    inp("argmax.x", F, [64, 1024]); node("ArgMax", ["argmax.x"], ["argmax.y"], "argmax", axis=1, keepdims=1)
    inp("abs_n.x", F, ["N", 1024]); node("Abs", ["abs_n.x"], ["abs_n.y"], "abs_symbolic")
    inp("softmax_n.x", F, ["N", 1024]); node("Softmax", ["softmax_n.x"], ["softmax_n.y"], "softmax_symbolic", axis=-1)
    inp("layernorm_n.x", F, ["N", 1024])
    node("LayerNormalization", ["layernorm_n.x", "layernorm.scale", "layernorm.bias"], ["layernorm_n.y"], "layernorm_symbolic", axis=-1)
    inp("matmul_n.a", F, ["N", 256]); inits.append(const("matmul_n.b", rng.standard_normal((256, 256)).astype(np.float32)))
    node("MatMul", ["matmul_n.a", "matmul_n.b"], ["matmul_n.y"], "matmul_symbolic")
    graph = helper.make_graph(nodes, "tpat_ops", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="tpat-make-models")
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    # Declare the inferred output types on the graph outputs too.
    inferred = {vi.name: vi for vi in model.graph.value_info}
    for o in model.graph.output:
        if o.name in inferred:
            o.type.CopyFrom(inferred[o.name].type)
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def fixtures(folder: pathlib.Path) -> None:
    rng = np.random.default_rng(1)
    # Metadata, doc strings, a model-local function and a second opset domain: all must survive.
    fn = helper.make_function(
        "tpat.test", "Swish", ["X"], ["Y"],
        [helper.make_node("Sigmoid", ["X"], ["S"]), helper.make_node("Mul", ["X", "S"], ["Y"])],
        opset_imports=[helper.make_opsetid("", 17)])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])
    graph = helper.make_graph(
        [helper.make_node("Abs", ["x"], ["a"], name="abs", doc_string="absolute value"),
         helper.make_node("Swish", ["a"], ["s"], name="swish", domain="tpat.test"),
         helper.make_node("Add", ["s", "bias"], ["y"], name="add")],
        "rich", [x], [y], [const("bias", rng.standard_normal(64).astype(np.float32))], doc_string="a graph with everything")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("tpat.test", 1)],
                              functions=[fn], producer_name="tpat-make-models", producer_version="1.0", doc_string="model doc")
    model.ir_version = 8
    helper.set_model_props(model, {"author": "tpat", "purpose": "round trip"})
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "rich.onnx"))

    # External data: two large initializers in a side file, one small one inline.
    w1 = rng.standard_normal((256, 256)).astype(np.float32)
    w2 = rng.standard_normal((256,)).astype(np.float32)
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 256])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 256])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["m"], name="matmul"), helper.make_node("Add", ["m", "w2"], ["y"], name="add")],
        "external", [inp], [out], [const("w1", w1), const("w2", w2)])
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="tpat-make-models")
    model.ir_version = 8
    ext = folder / "external"
    ext.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(ext / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=1024)
    np.save(ext / "w1.npy", w1)

    # Every element type as an initializer, stored in the typed fields (not raw_data).
    inits = []
    for name, dtype in [("f32", np.float32), ("f64", np.float64), ("i8", np.int8), ("u8", np.uint8), ("i16", np.int16),
                        ("u16", np.uint16), ("i32", np.int32), ("i64", np.int64), ("u32", np.uint32), ("u64", np.uint64),
                        ("f16", np.float16), ("b", np.bool_)]:
        arr = (np.arange(6).reshape(2, 3) % 2 == 0) if dtype == np.bool_ else (np.arange(6).reshape(2, 3) - 2).astype(dtype)
        if dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
            arr = np.arange(6).reshape(2, 3).astype(dtype)
        t = helper.make_tensor(name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape, arr.flatten().tolist(), raw=False)
        inits.append(t)
        inits.append(helper.make_tensor(name + "_raw", helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape, arr.tobytes(), raw=True))
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"], name="id")], "dtypes",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], inits)
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="tpat-make-models")
    model.ir_version = 8
    onnx.save(model, str(folder / "dtypes.onnx"))


def lowerings(path: pathlib.Path) -> None:
    """Shapes at the edges of TPAT's own lowerings, for their self-tests on a GPU: rows that do not
    fill a block, rows of 64 and 2048, reduced axes shorter than the thread split, inner sizes that
    are not a multiple of 32, two reduced axes, long reduced axes, GatherND with batch_dims, OneHot
    along every kind of axis with each value type TPAT's kernel covers."""
    rng = np.random.default_rng(5)
    F, I64 = TensorProto.FLOAT, TensorProto.INT64
    inputs, outputs, inits, nodes = [], [], [], []

    def node(op, shape, name, extra_inputs=(), dtype=F, **attrs):
        inputs.append(helper.make_tensor_value_info(f"{name}.x", dtype, shape))
        nodes.append(helper.make_node(op, [f"{name}.x", *extra_inputs], [f"{name}.y"], name=name, **attrs))
        outputs.append(helper.make_tensor_value_info(f"{name}.y", TensorProto.UNDEFINED, None))

    node("Softmax", [5, 64], "softmax_5x64", axis=-1)
    node("Softmax", [3, 7, 2048], "softmax_3x7x2048", axis=2)
    node("LogSoftmax", [6, 96], "logsoftmax_6x96", axis=-1)
    for name, n in (("ln_9x160", 160), ("ln_2x3x2048", 2048)):
        inits += [const(f"{name}.scale", rng.standard_normal(n).astype(np.float32)),
                  const(f"{name}.bias", rng.standard_normal(n).astype(np.float32))]
    node("LayerNormalization", [9, 160], "ln_9x160", ["ln_9x160.scale", "ln_9x160.bias"], axis=-1, epsilon=1e-3)
    node("LayerNormalization", [2, 3, 2048], "ln_2x3x2048", ["ln_2x3x2048.scale", "ln_2x3x2048.bias"], axis=-1)
    node("ReduceMax", [2, 5, 48], "reducemax_2x5x48", axes=[1], keepdims=0)
    node("ReduceMin", [4, 3, 2, 40], "reducemin_axes12", axes=[1, 2], keepdims=1)
    node("ReduceMax", [2, 300, 32], "reducemax_long", axes=[1], keepdims=1)
    inits.append(const("reducesum.axes", np.array([1], np.int64)))
    node("ReduceSum", [3, 37, 64], "reducesum_3x37x64", ["reducesum.axes"], keepdims=1)
    inputs.append(helper.make_tensor_value_info("gather_b.indices", I64, [2, 7, 2]))
    node("GatherND", [2, 10, 6, 40], "gather_b", ["gather_b.indices"], batch_dims=1)
    # OneHot: depth first / in the middle / last, 4 outputs per thread or 1, index and value types
    for name, shape, depth, axis, itype, values, dtype in (
            ("onehot_axis0", [3, 4], 6, 0, I64, np.array([0, 1], np.float32), np.int64),
            ("onehot_mid_i32", [2, 3, 5], 4, 1, TensorProto.INT32, np.array([1, 0], np.float32), np.int32),
            ("onehot_depth10", [7], 10, -1, I64, np.array([-2.5, 3], np.float32), np.int64),
            ("onehot_f16", [2, 8], 16, 2, I64, np.array([0, 1], np.float16), np.int64),
            ("onehot_i64", [4, 8], 8, -1, I64, np.array([0, 7], np.int64), np.int64)):
        inits += [const(f"{name}.depth", np.array(depth, dtype)), const(f"{name}.values", values)]
        node("OneHot", shape, name, [f"{name}.depth", f"{name}.values"], dtype=itype, axis=axis)
    graph = helper.make_graph(nodes, "tpat_lowerings", inputs, outputs, initializer=inits)
    finish(graph, path)


def dynamic_head(path: pathlib.Path) -> None:
    """A detector's post-processing as exporters write it: a dynamic batch and number of anchors, a
    K computed at run time from the anchors (Min(anchors, 10)), TopK over that symbolic axis, the
    boxes gathered by the picked indices, and NonZero over a score threshold: the data-dependent
    output sizes of issue 12/14 in one small model whose whole run can be checked on a GPU."""
    F, I64 = TensorProto.FLOAT, TensorProto.INT64
    inputs = [helper.make_tensor_value_info("scores", F, ["batch", "anchors"]),
              helper.make_tensor_value_info("boxes", F, ["batch", "anchors", 4])]
    outputs = [helper.make_tensor_value_info(n, t, None) for n, t in
               (("top_scores", F), ("top_boxes", F), ("keep", I64))]
    inits = [const("head.limit", np.array([10], np.int64)), const("head.axis1", np.array([1], np.int64)),
             const("head.last", np.array([-1], np.int64)), const("head.threshold", np.array(0.5, np.float32))]
    nodes = [
        helper.make_node("Shape", ["scores"], ["head.shape"], name="head/shape"),
        helper.make_node("Gather", ["head.shape", "head.axis1"], ["head.anchors"], name="head/anchors", axis=0),
        helper.make_node("Min", ["head.anchors", "head.limit"], ["head.k"], name="head/k"),
        helper.make_node("TopK", ["scores", "head.k"], ["top_scores", "head.top_idx"], name="head/topk", axis=1),
        helper.make_node("Unsqueeze", ["head.top_idx", "head.last"], ["head.idx3"], name="head/unsqueeze"),
        helper.make_node("Expand", ["head.idx3", "head.expand_shape"], ["head.idx_boxes"], name="head/expand"),
        helper.make_node("GatherElements", ["boxes", "head.idx_boxes"], ["top_boxes"], name="head/gather_boxes", axis=1),
        helper.make_node("Greater", ["scores", "head.threshold"], ["head.mask"], name="head/greater"),
        helper.make_node("NonZero", ["head.mask"], ["keep"], name="head/nonzero"),
    ]
    # The Expand's shape: (batch, K, 4), from the indices' own shape, as exporters build it.
    inits.append(const("head.four", np.array([4], np.int64)))
    nodes[5:5] = [
        helper.make_node("Shape", ["head.top_idx"], ["head.idx_shape"], name="head/idx_shape"),
        helper.make_node("Concat", ["head.idx_shape", "head.four"], ["head.expand_shape"], name="head/expand_shape", axis=0),
    ]
    graph = helper.make_graph(nodes, "tpat_dynamic_head", inputs, outputs, initializer=inits)
    finish(graph, path)


def dynamic_masks(path: pathlib.Path) -> None:
    """A decoder's position ids and attention masks as the legacy exporter writes them: sizes read
    with Shape/Gather at run time, ``Range(0, past + sequence)``, a causal mask ``[1, 1, S, S]``
    expanded to ``[batch, 1, S, S]`` by a computed shape, and a learned query table tiled over the
    batch by computed repeats. Every output's dims are another tensor's (a dim carrier's)."""
    F, I64 = TensorProto.FLOAT, TensorProto.INT64
    rng = np.random.default_rng(11)
    inputs = [helper.make_tensor_value_info("ids", I64, ["batch", "sequence"]),
              helper.make_tensor_value_info("past", F, ["batch", 2, "past_sequence", 4])]
    outputs = [helper.make_tensor_value_info(n, t, None) for n, t in
               (("positions", I64), ("mask", F), ("queries", F))]
    inits = [const("m.zero", np.array(0, np.int64)), const("m.one", np.array(1, np.int64)),
             const("m.i0", np.array([0], np.int64)), const("m.i1", np.array([1], np.int64)),
             const("m.i2", np.array([2], np.int64)), const("m.ones2", np.array([1, 1], np.int64)),
             const("m.ones12", np.array([1, 1], np.int64)), const("m.axes01", np.array([0, 1], np.int64)),
             const("m.query", rng.standard_normal((1, 6, 8)).astype(np.float32))]
    n = helper.make_node
    nodes = [
        n("Shape", ["ids"], ["m.ids_shape"], name="m/ids_shape"),
        n("Gather", ["m.ids_shape", "m.i0"], ["m.batch"], name="m/batch", axis=0),
        n("Gather", ["m.ids_shape", "m.i1"], ["m.seq"], name="m/seq", axis=0),
        n("Shape", ["past"], ["m.past_shape"], name="m/past_shape"),
        n("Gather", ["m.past_shape", "m.i2"], ["m.past_len"], name="m/past_len", axis=0),
        n("Add", ["m.past_len", "m.seq"], ["m.total1"], name="m/total1"),
        n("Squeeze", ["m.total1"], ["m.total"], name="m/total"),
        n("Range", ["m.zero", "m.total", "m.one"], ["positions"], name="m/positions"),
        # the causal mask [S, S] from two Ranges over the sequence, then [1, 1, S, S]
        n("Squeeze", ["m.seq"], ["m.seq0"], name="m/seq0"),
        n("Range", ["m.zero", "m.seq0", "m.one"], ["m.steps"], name="m/steps"),
        n("Unsqueeze", ["m.steps", "m.i1"], ["m.rows"], name="m/rows"),
        n("Unsqueeze", ["m.steps", "m.i0"], ["m.cols"], name="m/cols"),
        n("GreaterOrEqual", ["m.rows", "m.cols"], ["m.causal_bool"], name="m/causal"),
        n("Cast", ["m.causal_bool"], ["m.causal"], name="m/causal_float", to=F),
        n("Unsqueeze", ["m.causal", "m.axes01"], ["m.causal4"], name="m/causal4"),
        n("Concat", ["m.batch", "m.i1", "m.seq", "m.seq"], ["m.mask_shape"], name="m/mask_shape", axis=0),
        n("Expand", ["m.causal4", "m.mask_shape"], ["mask"], name="m/mask"),
        # the query table [1, 6, 8] tiled to [batch, 6, 8]
        n("Concat", ["m.batch", "m.ones12"], ["m.repeats"], name="m/repeats", axis=0),
        n("Tile", ["m.query", "m.repeats"], ["queries"], name="m/queries"),
    ]
    graph = helper.make_graph(nodes, "tpat_dynamic_masks", inputs, outputs, initializer=inits)
    finish(graph, path)


if __name__ == "__main__":
    dynamic_masks(ROOT / "models/generated/dynamic_masks.onnx")
    dynamic_head(ROOT / "models/generated/dynamic_head.onnx")
    demo(ROOT / "models/generated/demo.onnx")
    ops(ROOT / "models/generated/ops.onnx")
    lowerings(ROOT / "models/generated/lowerings.onnx")
    fixtures_dir = ROOT / "Tests/Fixtures/generated"
    fixtures_dir.mkdir(parents=True, exist_ok=True)
    fixtures(fixtures_dir)
    print("wrote models/generated/demo.onnx and Tests/Fixtures/generated/")
