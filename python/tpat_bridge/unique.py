"""TPAT's Unique: a data-dependent output length through size outputs.

TVM lowers ONNX Unique to ``relax.run.unique``, a host function that a plugin cannot call, and its
outputs' length K (the number of distinct elements, or distinct slices along ``axis``) depends on
the values. As for NonZero (nonzero.py), the converter gives TVM every output at its upper bound
(the length of the axis, or the element count without one) and K as a 0-D size output, once per
output that has it (Y's axis, ``indices``, ``counts``); ``inverse_indices`` has the input's length.

The input is viewed as ``[outer, A, inner]`` (A the axis's length, or the element count with
``outer = inner = 1`` without an axis), and each of the A slices is compared with every other:
which slices are equal, which is the first of its kind, and (``sorted=1``) which comes first in
lexicographic order, by the first element where two slices differ. Each output then follows from
those comparisons by reductions, with no sort and no host step. The work grows with A squared
(times the slice size): fine for what models run Unique on (class ids, label sets), slow for an
axis of many thousands.
"""

from __future__ import annotations

from typing import Any

from .errors import BridgeError
from .operands import packed_coordinates, product


def unique_te(x: Any, sort: bool) -> list[Any]:
    """The TE of Unique over ``x`` viewed as [outer, A, inner]: [Y (outer, A, inner), indices (A,),
    inverse (A,), counts (A,) int64, K () int32]; Y's buffer holds the result packed as
    [outer, K, inner] at its front, indices and counts their first K entries."""
    from tvm import te, tirx

    outer, length, inner = x.shape
    size = outer * inner  # elements per slice
    i64 = "int64"
    if isinstance(length, tirx.IntImm) and int(length.value) == 1:
        # one slice: itself, once (TVM's CUDA schedules stumble on the reductions of extent 1)
        zero = te.compute((1,), lambda k: tirx.const(0, i64), name="indices")
        return [te.compute((outer, 1, inner), lambda o, k, r: x[o, k, r], name="values"), zero,
                te.compute((1,), lambda i: tirx.const(0, i64), name="inverse"),
                te.compute((1,), lambda k: tirx.const(1, i64), name="counts"),
                te.compute((), lambda: tirx.const(1, "int32"), name="count")]

    def element(t: Any, a: Any) -> Any:
        # element t (row-major over outer, inner) of slice a
        return x[tirx.floordiv(t, inner), a, tirx.floormod(t, inner)]

    t = te.reduce_axis((0, size), name="t")
    differing = te.compute(
        (length, length), lambda i, j: te.sum(tirx.Cast("int32", element(t, i) != element(t, j)), axis=t), name="differing")
    j = te.reduce_axis((0, length), name="j")
    first = te.compute(
        (length,), lambda i: te.min(tirx.Select(differing[i, j] == 0, tirx.Cast(i64, j), tirx.Cast(i64, length)), axis=j),
        name="first")

    def is_first(i: Any) -> Any:
        return first[i] == tirx.Cast(i64, i)

    if sort:
        t2 = te.reduce_axis((0, size), name="t2")
        # the first element where slices i and j differ (size when they are equal)
        first_difference = te.compute(
            (length, length),
            lambda i, j: te.min(tirx.Select(element(t2, i) != element(t2, j), tirx.Cast(i64, t2), tirx.Cast(i64, size)), axis=t2),
            name="first_difference")

        def before(a: Any, b: Any) -> Any:
            # slice a sorts before slice b
            d = first_difference[a, b]
            at = tirx.min(d, tirx.Cast(i64, size) - 1)
            return tirx.all(d < tirx.Cast(i64, size), element(at, a) < element(at, b))

        j2 = te.reduce_axis((0, length), name="j2")
        rank = te.compute(
            (length,), lambda i: te.sum(tirx.Cast(i64, tirx.all(is_first(j2), before(j2, i))), axis=j2), name="rank")
    else:
        j2 = te.reduce_axis((0, length), name="j2")
        rank = te.compute(
            (length,), lambda i: te.sum(tirx.Cast(i64, tirx.all(is_first(j2), tirx.Cast(i64, j2) < first[i])), axis=j2),
            name="rank")
    i3 = te.reduce_axis((0, length), name="i3")
    count = te.compute((), lambda: te.sum(tirx.Cast("int32", is_first(i3)), axis=i3), name="count")
    i4 = te.reduce_axis((0, length), name="i4")
    indices = te.compute(
        (length,),
        lambda k: te.min(tirx.Select(tirx.all(is_first(i4), rank[i4] == tirx.Cast(i64, k)), tirx.Cast(i64, i4),
                                     tirx.Cast(i64, length)), axis=i4),
        name="indices")

    def chosen(k: Any) -> Any:
        # the slice of unique entry k, within bounds past K (those entries are not read)
        return tirx.min(indices[k], tirx.Cast(i64, length) - 1)

    def packed(o: Any, a: Any, r: Any) -> Any:
        # The buffer holds Y packed as its actual shape [outer, K, inner] (as TensorRT reads a
        # data-dependent output), not Y's first K slices in the upper bound's layout: the two
        # differ where the axis is not the outermost dim.
        position = (tirx.Cast(i64, o) * tirx.Cast(i64, length) + tirx.Cast(i64, a)) * tirx.Cast(i64, inner) + tirx.Cast(i64, r)
        inside, po, pk, pr = packed_coordinates(position, tirx.Cast(i64, count()), tirx.Cast(i64, outer), tirx.Cast(i64, inner))
        po, pk = (tirx.Select(inside, v, tirx.const(0, i64)) for v in (po, pk))
        return tirx.Select(inside, x[po, chosen(pk), pr], tirx.const(0, x.dtype))

    values = te.compute((outer, length, inner), packed, name="values")
    inverse = te.compute((length,), lambda i: rank[i], name="inverse")
    i5 = te.reduce_axis((0, length), name="i5")
    counts = te.compute(
        (length,), lambda k: te.sum(tirx.Cast(i64, differing[i5, chosen(k)] == 0), axis=i5), name="counts")
    return [values, indices, inverse, counts, count]


def convert_unique(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX Unique with TPAT's size outputs: (Y, indices, inverse_indices, counts) at
    their upper bounds, then K for each of Y, indices and counts."""
    from tvm import relax, tirx

    x = inputs[0]
    if not isinstance(x.ty, relax.TensorType) or x.ty.shape is None:
        raise BridgeError("unsupported", "Unique: its input's rank is unknown")
    dims = list(x.ty.shape.values)

    axis = attr.get("axis")
    if axis is None:
        view = [tirx.const(1, "int64"), product(dims), tirx.const(1, "int64")]
        y_shape = [product(dims)]
    else:
        axis = int(axis) + (len(dims) if int(axis) < 0 else 0)
        if not 0 <= axis < len(dims):
            raise BridgeError("unsupported", f"Unique: axis {attr.get('axis')} is outside its input's rank {len(dims)}")
        view = [product(dims[:axis]), dims[axis], product(dims[axis + 1:])]
        y_shape = dims
    flat = bb.emit(relax.op.reshape(x, relax.ShapeExpr(view)))
    parts = bb.emit_te(unique_te, flat, bool(int(attr.get("sorted", 1))), primfunc_name_hint="unique_tpat")
    values, indices, inverse, counts, count = (bb.emit(relax.TupleGetItem(parts, k)) for k in range(5))
    y = bb.emit(relax.op.reshape(values, relax.ShapeExpr(y_shape)))
    return relax.Tuple([y, indices, inverse, counts, count, count, count])
