"""Reading the operands TPAT's converters take only as constants (an axis, a length, a shape), and
the size arithmetic they share."""

from __future__ import annotations

from typing import Any

from .errors import BridgeError


def constant_ints(value: Any, params: Any, op: str, what: str) -> list[int] | None:
    """The integers an optional constant operand holds, None when the operand is absent; refused,
    in the user's terms, when it is computed at run time."""
    import tvm
    from tvm.relax.frontend.onnx.onnx_frontend import get_constant

    if value is None:
        return None
    c = get_constant(value, params)
    if not isinstance(c, tvm.ir.GenericConst):
        raise BridgeError("unsupported", f"{op}: its {what} is computed at run time; make it a constant")
    return [int(v) for v in c.value.numpy().reshape(-1)]


def constant_int(value: Any, params: Any, op: str, what: str) -> int | None:
    """The integer an optional constant operand holds (its first element), None when the operand is
    absent; refused, in the user's terms, when it is computed at run time."""
    values = constant_ints(value, params, op, what)
    return None if values is None else values[0]


def product(dims: list[Any]) -> Any:
    """The product of dims (static or symbolic) as an int64 expression; 1 for none."""
    from tvm import tirx

    result: Any = tirx.const(1, "int64")
    for d in dims:
        if isinstance(d, int):
            d = tirx.const(d, "int64")
        # no Cast where none is needed: a shape with a Cast no longer matches the sizes Relax knows
        result = result * (d if str(d.ty) == "int64" else tirx.Cast("int64", d))
    return result


def as_int64(e: Any) -> Any:
    """``e`` (an int, a constant or an expression) as an int64 TIR value, with no Cast where none
    is needed: a Cast in an output shape no longer matches the sizes Relax knows
    (``T.Cast("int64", T.int64(5))`` is not ``5`` to call_tir's checks)."""
    from tvm import tirx

    if isinstance(e, int):
        return tirx.const(e, "int64")
    if isinstance(e, tirx.IntImm):
        return tirx.const(int(e.value), "int64")
    return tirx.Cast("int64", e)


def packed_coordinates(position: Any, kept: Any, outer: Any, inner: Any) -> tuple[Any, Any, Any, Any]:
    """Where element ``position`` of an upper-bound buffer lies in data packed as its actual shape
    [outer, K, inner] (K = ``kept``, int64), as TensorRT reads a data-dependent output: (whether
    it lies inside the packed data, its outer index, its index along K, its inner index). The
    indices are meaningful only inside."""
    from tvm import tirx

    extent = tirx.max(kept, tirx.const(1, "int64"))  # no division by zero when nothing is kept
    return (position < outer * kept * inner, tirx.floordiv(position, extent * inner),
            tirx.floormod(tirx.floordiv(position, inner), extent), tirx.floormod(position, inner))
