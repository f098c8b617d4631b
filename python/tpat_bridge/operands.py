"""Reading the operands TPAT's converters take only as constants (an axis, a length)."""

from __future__ import annotations

from typing import Any

from .errors import BridgeError


def constant_int(value: Any, params: Any, op: str, what: str) -> int | None:
    """The integer an optional constant operand holds (its first element), None when the operand is
    absent; refused, in the user's terms, when it is computed at run time."""
    import tvm
    from tvm.relax.frontend.onnx.onnx_frontend import get_constant

    if value is None:
        return None
    c = get_constant(value, params)
    if not isinstance(c, tvm.ir.GenericConst):
        raise BridgeError("unsupported", f"{op}: its {what} is computed at run time; make it a constant")
    return int(c.value.numpy().reshape(-1)[0])
