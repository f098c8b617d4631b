"""TPAT's QLinearMatMul, which TVM's frontend lacks: ONNX's definition as ONNX Runtime computes it.

The integer operands, less their zero points, are multiplied with 32-bit accumulation; the sum is
scaled by ``a_scale * b_scale / y_scale`` in float32, rounded half to even, offset by the output's
zero point and saturated to its type. Scales and zero points are scalars or per row of A (a vector
of A's rows) and per column of B (a vector of B's columns), as the operator allows.
"""

from __future__ import annotations

from typing import Any

from .errors import BridgeError


def convert_qlinear_matmul(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX QLinearMatMul (opset 10 and 21)."""
    from tvm import relax, te, tirx

    a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero = inputs
    out_dtype = str(y_zero.ty.dtype)
    if out_dtype not in ("int8", "uint8"):
        raise BridgeError("unsupported", f"QLinearMatMul: its output type {out_dtype} is not int8 or uint8")

    def rowwise(t: Any) -> Any:
        # a per-row vector of A's scale or zero point applies along A's rows: [M] -> [M, 1]
        return bb.emit(relax.op.expand_dims(t, -1)) if len(t.ty.shape.values) == 1 else t

    ai = bb.emit(relax.op.subtract(relax.op.astype(a, "int32"), relax.op.astype(rowwise(a_zero), "int32")))
    bi = bb.emit(relax.op.subtract(relax.op.astype(b, "int32"), relax.op.astype(b_zero, "int32")))
    acc = bb.emit(relax.op.matmul(ai, bi, out_dtype="int32"))
    low, high = (-128, 127) if out_dtype == "int8" else (0, 255)

    def requantize(total: Any, sa: Any, sb: Any, sy: Any, zero: Any) -> Any:
        rank = len(total.shape)

        def at(t: Any, i: Any) -> Any:
            # a scalar, a one-element tensor, or a vector along the row or column index i
            if len(t.shape) == 0:
                return t()
            return t[0] if int(t.shape[0]) == 1 else t[i]

        def element(*idx: Any) -> Any:
            # (a_scale * b_scale) / y_scale per element, from the 1-D (or scalar) scales: TVM 0.27's
            # dlight matmul schedule indexes a fused epilogue's 2-D operand wrongly (it reads an
            # [M, N] scale with the padded tile's stride), 1-D ones right
            row, col = at(sa, idx[rank - 2]), at(sb, idx[rank - 1])
            scale = (tirx.Cast("float32", row) * tirx.Cast("float32", col)) / tirx.Cast("float32", at(sy, 0))
            scaled = tirx.Cast("float32", total[idx]) * scale
            z = at(zero, idx[rank - 1])
            q = tirx.Cast("int32", tirx.nearbyint(scaled)) + tirx.Cast("int32", z)
            return tirx.Cast(out_dtype, tirx.Max(tirx.Min(q, tirx.const(high, "int32")), tirx.const(low, "int32")))

        return te.compute(total.shape, element, name="qlinear_requantize")

    return bb.emit_te(requantize, acc, a_scale, b_scale, y_scale, y_zero, primfunc_name_hint="qlinear_requantize")
