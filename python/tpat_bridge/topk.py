"""TPAT's TopK: a K computed at run time, through size outputs.

TVM's ONNX frontend takes TopK's K only as a constant. Exported detectors compute it
(``Min(300, number of anchors)``), so the output extent along the axis is a value of an input: a
data-dependent dim, which TensorRT 10's IPluginV3 declares with a size tensor per output. The
converter orders the whole axis (a static axis: ``relax.op.topk`` with k < 1, every element in
order; a symbolic one: TPAT's rank-based order, since TVM's CUDA sort picks its launches on the
host by the axis length), packs the first K of each row as the ONNX result ``[..., K, ...]`` at
the front of the buffer sized for the upper bound (the axis length), and gives K (clamped to
[0, axis length]) as the size outputs. A constant K takes TVM's own path, unchanged.
"""

from __future__ import annotations

from typing import Any

from .errors import BridgeError


def runtime_k(node: Any, constants: set[str]) -> bool:
    """Whether ``node`` (a TopK) reads its K at run time (opset 10+: input 1, not a constant)."""
    return len(node.input) > 1 and bool(node.input[1]) and node.input[1] not in constants


def _clamped_k(k: Any, n: Any) -> Any:
    """K (a [1] or 0-D int64 tensor) clamped to [0, n], as an int64 expression."""
    from tvm import tirx

    kk = tirx.Cast("int64", k[0] if len(k.shape) == 1 else k())
    return tirx.Min(tirx.Max(kk, tirx.const(0, "int64")), tirx.Cast("int64", n))


def _packed_te(full: Any, k: Any, axis: int) -> Any:
    """``full`` sorted along ``axis`` (shape = the upper bound); the first K of every row packed as
    ``[..., K, ...]`` at the front, the rest zero."""
    from tvm import te, tirx

    shape = list(full.shape)
    kk = _clamped_k(k, shape[axis])
    inner = tirx.const(1, "int64")
    for d in shape[axis + 1:]:
        inner = inner * tirx.Cast("int64", d)
    outer = tirx.const(1, "int64")
    for d in shape[:axis]:
        outer = outer * tirx.Cast("int64", d)
    one = tirx.const(1, "int64")
    safe_k = tirx.Max(kk, one)
    safe_inner = tirx.Max(inner, one)

    def element(*idx: Any) -> Any:
        # the flat position in the upper-bound buffer, read as a position of the packed [outer, K, inner]
        p = tirx.const(0, "int64")
        for i, d in zip(idx, shape):
            p = p * tirx.Cast("int64", d) + tirx.Cast("int64", i)
        i_in = tirx.floormod(p, safe_inner)
        j = tirx.floormod(tirx.floordiv(p, safe_inner), safe_k)
        o = tirx.floordiv(p, safe_inner * safe_k)
        source = []
        rest = o
        for d in reversed(shape[:axis]):
            source.append(tirx.floormod(rest, tirx.Cast("int64", d)))
            rest = tirx.floordiv(rest, tirx.Cast("int64", d))
        source = list(reversed(source)) + [j]
        tail = []
        rest = i_in
        for d in reversed(shape[axis + 1:]):
            tail.append(tirx.floormod(rest, tirx.Cast("int64", d)))
            rest = tirx.floordiv(rest, tirx.Cast("int64", d))
        source += list(reversed(tail))
        inside = p < outer * kk * inner
        return tirx.if_then_else(inside, full[tuple(source)], tirx.const(0, full.dtype))

    return te.compute(shape, element, name="topk_packed")


def _ranked_te(x: Any, axis: int, largest: bool) -> Any:
    """``x`` sorted along ``axis`` without TVM's sort (whose CUDA lowering picks its launches on
    the host by the axis length, which a plugin cannot do for a symbolic length): each element's
    rank is the number of elements ahead of it (greater, or equal at a lower index, as ONNX
    orders ties), and the output at rank r is the element whose rank is r. Two reductions of
    O(n^2) per row, one launch each: for the few thousand candidates per level of a detector's
    head, microseconds. Returns the order (the source index of each output position)."""
    from tvm import te, tirx

    shape = list(x.shape)
    n = shape[axis]

    def at(idx: tuple, position: Any) -> tuple:
        return tuple(idx[:axis]) + (position,) + tuple(idx[axis + 1:])

    j = te.reduce_axis((0, n), name="j")

    def rank(*idx: Any) -> Any:
        i = idx[axis]
        other, mine = x[at(idx, j)], x[idx]
        ahead = (other > mine) if largest else (other < mine)
        ahead = tirx.Or(ahead, tirx.And(other == mine, j < i))
        return te.sum(tirx.Select(ahead, tirx.const(1, "int64"), tirx.const(0, "int64")), axis=j)

    ranks = te.compute(shape, rank, name="topk_rank")
    m = te.reduce_axis((0, n), name="m")

    def source(*idx: Any) -> Any:
        r = idx[axis]
        return te.sum(tirx.Select(ranks[at(idx, m)] == tirx.Cast("int64", r), tirx.Cast("int64", m), tirx.const(0, "int64")), axis=m)

    return te.compute(shape, source, name="topk_order")


def _gather_te(x: Any, order: Any, axis: int) -> Any:
    """``x`` read along ``axis`` in ``order`` (its own function: a function's output cannot be
    inlined into another computation of the same function by TVM's GPU schedules)."""
    from tvm import te

    def value(*idx: Any) -> Any:
        return x[tuple(idx[:axis]) + (order[idx],) + tuple(idx[axis + 1:])]

    return te.compute(list(x.shape), value, name="topk_values")


def _size_te(k: Any, n: Any) -> Any:
    from tvm import te, tirx

    return te.compute((), lambda: tirx.Cast("int32", _clamped_k(k, n)), name="topk_size")


def convert_topk(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX TopK. A constant K (or opset 1's attribute): TVM's ``relax.op.topk``. A
    run-time K: (values, indices) at the upper bound, packed, then K twice (one size output each)."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx.onnx_frontend import get_constant

    data = inputs[0]
    axis = int(attr.get("axis", -1))
    largest = bool(attr.get("largest", 1))
    if len(inputs) < 2 or inputs[1] is None:
        return relax.op.topk(data, int(attr.get("k", 1)), axis, ret_type="both", largest=largest, dtype="int64")
    k = get_constant(inputs[1], params)
    if isinstance(k, tvm.ir.GenericConst):
        if int(attr.get("sorted", 1)) != 1:
            raise BridgeError("unsupported", "TopK: sorted=0 with a constant K is TVM's to refuse: give the node sorted=1")
        return relax.op.topk(data, int(k.value.numpy().reshape(-1)[0]), axis, ret_type="both", largest=largest, dtype="int64")
    if not isinstance(data.ty, relax.TensorType) or data.ty.shape is None:
        raise BridgeError("unsupported", "TopK: its input's rank is unknown")
    shape = list(data.ty.shape.values)
    axis %= len(shape)
    # sorted=0 leaves the order to the implementation: a full sort is one of them. TVM's sort for
    # a static axis; for a symbolic one, the rank-based order (see _ranked_te).
    if isinstance(shape[axis], tvm.tirx.IntImm):
        both = bb.emit(relax.op.topk(data, 0, axis, ret_type="both", largest=largest, dtype="int64"))
        values = bb.emit(relax.TupleGetItem(both, 0))
        indices = bb.emit(relax.TupleGetItem(both, 1))
    else:
        indices = bb.emit_te(_ranked_te, data, axis, largest, primfunc_name_hint="topk_ranked")
        values = bb.emit_te(_gather_te, data, indices, axis, primfunc_name_hint="topk_gather")
    packed_values = bb.emit_te(_packed_te, values, inputs[1], axis, primfunc_name_hint="topk_pack_values")
    packed_indices = bb.emit_te(_packed_te, indices, inputs[1], axis, primfunc_name_hint="topk_pack_indices")
    size_values = bb.emit_te(_size_te, inputs[1], shape[axis], primfunc_name_hint="topk_size")
    size_indices = bb.emit_te(_size_te, inputs[1], shape[axis], primfunc_name_hint="topk_size")
    return relax.Tuple([packed_values, packed_indices, size_values, size_indices])
