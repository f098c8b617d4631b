"""ai.onnx.ml TreeEnsemble (v5; TVM's frontend lacks the domain): each row of X walks every tree
from its root to a leaf, and the leaves' weights are aggregated per target.

The trees are attributes, so the host lays them out once as constant arrays (one entry per node the
walk can visit, built in the order onnx's reference builds them, which is also the order in which a
set-membership node takes its set from ``membership_values``) and the kernel runs one thread per
row: a loop that compares the row's feature with the node's split (or looks it up in the node's
set), follows the branch, and adds the leaf's weight to the row's target. ``post_transform`` must be
NONE: onnx's reference ignores the attribute, so there is nothing to check another one against."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from .errors import BridgeError
from .lowering import static_shape, thread_per_item

# One thread per row on the GPU; False (the CPU checks of pytest, TVM's llvm target): a serial loop.
ON_GPU = True

_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER = range(7)
_SUM, _AVERAGE, _MIN, _MAX = 1, 0, 2, 3


def _array(value: Any) -> np.ndarray:
    """An attribute's value (a TensorProto or a tuple, as TVM's frontend parses them) as numpy."""
    from onnx import numpy_helper

    if value is None:
        return np.zeros(0)
    if hasattr(value, "dims"):
        return numpy_helper.to_array(value)
    return np.asarray(value)


def _layout(attr: dict[str, Any]) -> dict[str, np.ndarray]:
    """The trees as flat arrays, walked as onnx's reference builds them (a node reached twice is laid
    out twice, as the reference builds it twice)."""
    modes = _array(attr["nodes_modes"]).astype(np.int64)
    features = _array(attr["nodes_featureids"]).astype(np.int64)
    splits = _array(attr["nodes_splits"]).astype(np.float64)
    true_ids, false_ids = _array(attr["nodes_truenodeids"]).astype(np.int64), _array(attr["nodes_falsenodeids"]).astype(np.int64)
    true_leafs, false_leafs = _array(attr["nodes_trueleafs"]).astype(bool), _array(attr["nodes_falseleafs"]).astype(bool)
    missing = _array(attr.get("nodes_missing_value_tracks_true")).astype(bool)
    members = iter(_array(attr.get("membership_values")).astype(np.float64).tolist())
    out: dict[str, list[Any]] = {k: [] for k in ("mode", "feature", "split", "missing", "member_start", "member_count",
                                                   "true_child", "false_child", "true_leaf", "false_leaf")}
    flat_members: list[float] = []

    def node(i: int) -> int:
        k = len(out["mode"])
        for key in out:
            out[key].append(0)
        out["mode"][k], out["feature"][k], out["split"][k] = int(modes[i]), int(features[i]), float(splits[i])
        out["missing"][k] = int(missing[i]) if missing.size else 0
        if modes[i] == _MEMBER:
            out["member_start"][k] = len(flat_members)
            for value in members:
                if np.isnan(value):
                    break
                flat_members.append(value)
            out["member_count"][k] = len(flat_members) - out["member_start"][k]
        for side, ids, leafs in (("true", true_ids, true_leafs), ("false", false_ids, false_leafs)):
            out[f"{side}_leaf"][k] = int(leafs[i])
            out[f"{side}_child"][k] = int(ids[i]) if leafs[i] else node(int(ids[i]))
        return k

    roots, root_leaf = [], []
    for r in _array(attr["tree_roots"]).astype(np.int64).tolist():
        if true_leafs[r] and false_leafs[r] and true_ids[r] == false_ids[r]:
            roots.append(int(true_ids[r]))
            root_leaf.append(1)
        else:
            roots.append(node(r))
            root_leaf.append(0)
    arrays = {k: np.asarray(v if v else [0], np.float64 if k == "split" else np.int32) for k, v in out.items()}
    arrays["members"] = np.asarray(flat_members or [0.0], np.float64)
    arrays["root"], arrays["root_leaf"] = np.asarray(roots, np.int32), np.asarray(root_leaf, np.int32)
    arrays["leaf_target"] = _array(attr["leaf_targetids"]).astype(np.int32)
    arrays["leaf_weight"] = _array(attr["leaf_weights"]).astype(np.float64)
    return arrays


@contextmanager
def _each_row(rows: int) -> Iterator[Any]:
    from tvm.script.ir_builder import tirx as T

    if ON_GPU:
        with thread_per_item(rows, 128, "int32") as r:
            yield r
    else:
        with T.serial(0, rows) as r:
            yield r


def convert_tree_ensemble(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ai.onnx.ml TreeEnsemble: ``[N, n_targets]`` in X's type."""
    from tvm import relax, te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    x = inputs[0]
    shape = static_shape(x.ty)
    if shape is None or len(shape) != 2:
        raise BridgeError("unsupported", f"TreeEnsemble: X must be a static [N, features] matrix, not {x.ty.shape}")
    if int(attr.get("post_transform", 0)) != 0:
        raise BridgeError("unsupported", "TreeEnsemble: only post_transform NONE is supported (apply the transform after the plugin)")
    aggregate = int(attr.get("aggregate_function", _SUM))
    rows, features = shape
    targets = int(attr["n_targets"])
    dtype = str(x.ty.dtype)
    layout = _layout(attr)
    trees = len(layout["root"])
    names = ["mode", "feature", "split", "missing", "member_start", "member_count", "true_child", "false_child",
             "true_leaf", "false_leaf", "members", "root", "root_leaf", "leaf_target", "leaf_weight"]
    consts = [relax.const(layout[n].astype(dtype) if layout[n].dtype == np.float64 else layout[n]) for n in names]
    big = float(np.finfo(np.dtype(dtype)).max)
    start = {_MIN: big, _MAX: -big}.get(aggregate, 0.0)

    def make(xt: Any, *tables: Any) -> Any:
        def gen(ins: list[Any], out_buf: Any) -> Any:
            with IRBuilder() as ib:
                with _each_row(rows) as r:
                    xs = T.buffer_proxy(T.decl_buffer((rows * features,), dtype, data=ins[0].data))
                    out = T.buffer_proxy(T.decl_buffer((rows * targets,), dtype, data=out_buf.data))
                    tab = {n: T.buffer_proxy(T.decl_buffer(tuple(t.shape), t.dtype, data=b.data))
                           for n, t, b in zip(names, tables, ins[1:])}
                    cur = T.buffer_proxy(T.alloc_local((1,), "int32"))
                    leaf = T.buffer_proxy(T.alloc_local((1,), "int32"))
                    hit = T.buffer_proxy(T.alloc_local((1,), "int32"))
                    with T.serial(0, targets) as j:
                        out[r * targets + j] = tirx.const(start, dtype)
                    with T.serial(0, trees) as tree:
                        cur[0] = tab["root"][tree]
                        leaf[0] = tab["root_leaf"][tree]
                        with T.While(leaf[0] == 0):
                            n = cur[0]
                            v = T.bind(xs[r * features + tab["feature"][n]])
                            s = tab["split"][n]
                            m = tab["mode"][n]
                            hit[0] = tirx.Select(m == _LEQ, tirx.Cast("int32", v <= s), tirx.Select(
                                m == _LT, tirx.Cast("int32", v < s), tirx.Select(
                                    m == _GTE, tirx.Cast("int32", v >= s), tirx.Select(
                                        m == _GT, tirx.Cast("int32", v > s), tirx.Select(
                                            # NEQ as 1 - EQ: NaN differs from every split, as
                                            # in C and numpy (TVM's llvm `!=`, and its
                                            # simplification of not-equal, are ordered)
                                            m == _EQ, tirx.Cast("int32", v == s), 1 - tirx.Cast("int32", v == s))))))
                            with T.If(m == _MEMBER):
                                with T.Then():
                                    hit[0] = 0
                                    with T.serial(0, tab["member_count"][n]) as k:
                                        with T.If(tab["members"][tab["member_start"][n] + k] == v):
                                            with T.Then():
                                                hit[0] = 1
                            with T.If(tirx.all(tab["missing"][n] != 0, tirx.isnan(v))):
                                with T.Then():
                                    hit[0] = 1
                            with T.If(hit[0] != 0):
                                with T.Then():
                                    leaf[0] = tab["true_leaf"][n]
                                    cur[0] = tab["true_child"][n]
                                with T.Else():
                                    leaf[0] = tab["false_leaf"][n]
                                    cur[0] = tab["false_child"][n]
                        at = T.bind(r * targets + tab["leaf_target"][cur[0]])
                        w = tab["leaf_weight"][cur[0]]
                        if aggregate == _MIN:
                            out[at] = tirx.min(out[at], w)
                        elif aggregate == _MAX:
                            out[at] = tirx.max(out[at], w)
                        elif aggregate == _AVERAGE:
                            out[at] = out[at] + w / tirx.const(trees, dtype)
                        else:
                            out[at] = out[at] + w
            return ib.get()

        result = tirx.decl_buffer((rows, targets), dtype, "tree_ensemble_out")
        return te.extern([(rows, targets)], [xt, *tables], lambda ins, outs: gen(list(ins), outs[0]), dtype=dtype,
                         out_buffers=[result], name="tree_ensemble.tpat", tag="tree_ensemble.tpat")

    return bb.emit_te(make, x, *consts, primfunc_name_hint="tree_ensemble")
