"""Ops TVM 0.27's frontend converts in the wrong dtype (Elu at half precision, EyeLike with a dtype), each
in the type ONNX says."""

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


def convert_eye_like(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX EyeLike: ones on the ``k``-th diagonal of a 2-D tensor of the input's shape, in the
    ``dtype`` attribute's type (else the input's): TVM's converter refuses a ``dtype`` other than
    the input's."""
    import onnx
    from tvm import te, tirx

    x = inputs[0]
    dtype = str(x.ty.dtype)
    if "dtype" in attr:
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(int(attr["dtype"])))
    k = int(attr.get("k", 0))

    def eye(t: Any) -> Any:
        rows, cols = t.shape
        return te.compute((rows, cols), lambda i, j: tirx.Cast(dtype, tirx.Cast("int64", j) - tirx.Cast("int64", i) == k),
                          name="eye_like")

    return bb.emit_te(eye, x, primfunc_name_hint="eye_like")


def convert_rms_normalization(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX RMSNormalization, ``x / sqrt(mean(x^2 over axis..last) + epsilon) * scale``, computed in
    float32 when ``stash_type`` is 1. Over trailing axes with a leading dim before them it is TVM's
    ``rms_norm``; over every axis (``axis`` 0) TVM's ``rms_norm`` reads its input with no index and
    fails to build (6 node tests), so that case is the mean, the square root and the products."""
    from tvm import relax

    x, scale = inputs[0], inputs[1]
    rank = len(x.ty.shape.values)
    axis = int(attr.get("axis", -1))
    axis = axis + rank if axis < 0 else axis
    eps = float(attr.get("epsilon", 1e-5))
    dtype = str(x.ty.dtype)
    compute = "float32" if int(attr.get("stash_type", 1)) == 1 and dtype != "float32" else dtype
    xc = relax.op.astype(x, compute) if compute != dtype else x
    sc = relax.op.astype(scale, compute) if str(scale.ty.dtype) != compute else scale
    axes = list(range(axis, rank))
    if axis > 0:
        y = relax.op.nn.rms_norm(xc, sc, axes, eps)
    else:
        mean = relax.op.mean(relax.op.multiply(xc, xc), axis=axes, keepdims=True)
        inv = relax.op.divide(relax.const(1.0, compute), relax.op.sqrt(relax.op.add(mean, relax.const(eps, compute))))
        y = relax.op.multiply(relax.op.multiply(xc, inv), sc)
    return bb.emit(relax.op.astype(y, dtype) if compute != dtype else y)


def convert_bit_cast(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX BitCast (opset 26): the input's bits read as the ``to`` type, of the same width and
    shape (TVM's frontend lacks it): TOPI's reinterpret, one kernel; bool, whose storage TVM and
    ONNX both keep in a byte, reads as uint8/int8 through a select."""
    import onnx
    from tvm import te, tirx, topi

    x = inputs[0]
    src = str(x.ty.dtype)
    dst = str(onnx.helper.tensor_dtype_to_np_dtype(int(attr["to"])))
    dst = {"bool": "bool"}.get(dst, dst)

    def cast(t: Any) -> Any:
        if src == "bool" or dst == "bool":
            # a byte either way: bool 1/0 <-> the integer 1/0
            return te.compute(t.shape, lambda *i: tirx.Cast(dst, t(*i)), name="bit_cast")
        return topi.reinterpret(t, dst)

    return bb.emit_te(cast, x, primfunc_name_hint="bit_cast")


def convert_bit_shift(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX BitShift in the input's type, a shift by a negative amount or by the type's width or
    more included (opset 28: 0, or the sign for a right shift of a signed type). TVM's CUDA code
    shifts an 8- or 16-bit value after C's promotion to int and never narrows it back (the int8
    node tests: 128 for -128, -2048 for 0), and a shift by 32 or more is undefined in C: the
    shift runs in 32 bits (or the type's own 64) and is cast back."""
    from tvm import relax

    x, y = inputs
    dtype = str(x.ty.dtype)
    bits = int("".join(c for c in dtype if c.isdigit()))
    signed = dtype.startswith("int")
    wide = dtype if bits >= 32 else ("int32" if signed else "uint32")
    xw = relax.op.astype(x, wide) if wide != dtype else x
    yw = relax.op.astype(y, wide) if wide != dtype else y
    too_far = relax.op.greater_equal(yw, relax.const(bits, wide))
    if signed:
        too_far = relax.op.logical_or(too_far, relax.op.less(yw, relax.const(0, wide)))
    zero = relax.const(0, wide)
    direction = attr.get("direction", b"LEFT")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if direction == "LEFT":
        shifted = relax.op.where(too_far, zero, relax.op.left_shift(xw, yw))
    elif signed:
        # an arithmetic shift by width - 1 leaves the sign in every bit
        shifted = relax.op.right_shift(xw, relax.op.where(too_far, relax.const(bits - 1, wide), yw))
    else:
        shifted = relax.op.where(too_far, zero, relax.op.right_shift(xw, yw))
    return bb.emit(relax.op.astype(shifted, dtype) if wide != dtype else shifted)


def convert_bitwise_not(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX BitwiseNot as an exclusive or with all ones of the input's type: TVM's CUDA code
    complements an 8- or 16-bit value after C's promotion to int and never narrows it back (uint8
    37 became -38, not 218); the exclusive or of two promoted values of the type stays in its
    range."""
    from tvm import relax

    x = inputs[0]
    dtype = str(x.ty.dtype)
    bits = int("".join(c for c in dtype if c.isdigit()))
    ones = -1 if dtype.startswith("int") else (1 << bits) - 1
    return bb.emit(relax.op.bitwise_xor(x, relax.const(ones, dtype)))
