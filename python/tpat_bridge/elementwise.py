"""Elementwise ops TVM 0.27's frontend converts in the wrong dtype: each in the input's own."""

from __future__ import annotations

from typing import Any


def convert_elu(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX Elu, ``alpha * (exp(x) - 1)`` below zero and ``x`` elsewhere, in ``x``'s dtype: TVM's
    converter subtracts a float32 constant, which a float16 or bfloat16 input refuses (Celu's
    function body, the node tests of both at half precision)."""
    from tvm import relax

    x = inputs[0]
    dtype = x.ty.dtype
    alpha = relax.const(float(attr.get("alpha", 1.0)), dtype)
    below = relax.op.multiply(alpha, relax.op.subtract(relax.op.exp(x), relax.const(1.0, dtype)))
    return bb.emit(relax.op.where(relax.op.less(x, relax.const(0.0, dtype)), below, x))
