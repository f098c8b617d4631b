"""TPAT's DFT, which TVM's frontend lacks: the discrete Fourier transform along one axis as one
reduction per output element (O(n) per element; the signals exporters transform are short: an
audio frame, an image row).

ONNX's layout: the last dim holds the real part (size 1) or the real and imaginary parts (size 2).
Forward (``inverse=0``): X[k] = sum_j x[j] e^(-2 pi i jk/n); ``onesided`` keeps the n/2 + 1 first
bins. Inverse: x[j] = 1/n sum_k X[k] e^(+2 pi i jk/n); with ``onesided`` the input is the half
spectrum of a real signal of length n = ``dft_length`` or 2 (m - 1), the rest of the spectrum its
conjugate mirror, and the output is real. ``dft_length`` pads with zeros or truncates. The angle is
taken from (jk mod n), so a float32 argument keeps its precision for long signals.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import BridgeError
from .operands import constant_int


def convert_dft(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX DFT (opset 17: ``axis`` an attribute; opset 20: an input)."""
    import tvm
    from tvm import relax, te, tirx

    x = inputs[0]
    if not isinstance(x.ty, relax.TensorType) or x.ty.shape is None:
        raise BridgeError("unsupported", "DFT: its input's rank is unknown")
    shape = list(x.ty.shape.values)
    rank = len(shape)
    dft_length = constant_int(inputs[1] if len(inputs) > 1 else None, params, "DFT", "dft_length")
    axis_input = constant_int(inputs[2] if len(inputs) > 2 else None, params, "DFT", "axis")
    axis = axis_input if axis_input is not None else int(attr.get("axis", -2 if len(inputs) > 2 else 1))
    axis = axis % rank
    inverse = int(attr.get("inverse", 0)) != 0
    onesided = int(attr.get("onesided", 0)) != 0
    if axis == rank - 1:
        raise BridgeError("unsupported", "DFT: its axis is the last dim, which holds the real and imaginary parts")
    for name, d in (("the signal length", shape[axis]), ("the last dim", shape[-1])):
        if not isinstance(d, tvm.tirx.IntImm):
            raise BridgeError("unsupported", f"DFT: {name} is symbolic; TPAT's DFT takes a static signal length")
    length, parts = int(shape[axis]), int(shape[-1])
    if inverse and onesided:
        n = dft_length or 2 * (length - 1)
        bins, out_parts = n, 1
    else:
        n = dft_length or length
        bins, out_parts = (n // 2 + 1 if onesided else n), 2
    sign = 1.0 if inverse else -1.0
    scale = 1.0 / n if inverse else 1.0
    out_shape = list(shape)
    out_shape[axis], out_shape[-1] = bins, out_parts

    f32 = "float32"

    # the parts as their own tensors, from their own kernel: a reduction reading two elements of
    # the last dim is beyond what TVM's GPU schedules analyse
    def part(data: Any, which: int) -> Any:
        return te.compute(shape[:-1], lambda *i: tirx.Cast(f32, data[i + (which,)]), name=f"dft_part{which}")

    planes_in = [bb.emit_te(part, x, p, primfunc_name_hint="dft_part") for p in range(parts)]
    if inverse and onesided:
        # the full spectrum of the real signal from its first half: X[k] = conj(X[n - k]) past it
        def full(plane: Any, imaginary: bool) -> Any:
            def element(*i: Any) -> Any:
                k = i[axis]
                mirrored = k >= length
                source = tirx.Min(tirx.Select(mirrored, tirx.Cast("int64", n) - k, tirx.Cast("int64", k)),
                                  tirx.const(length - 1, "int64"))
                value = plane[tuple(i[:axis]) + (source,) + tuple(i[axis + 1:])]
                return tirx.Select(mirrored, -value, value) if imaginary else value

            full_shape = list(shape[:-1])
            full_shape[axis] = n
            return te.compute(full_shape, element, name="dft_spectrum")

        planes_in = [bb.emit_te(full, plane, which == 1, primfunc_name_hint="dft_spectrum")
                     for which, plane in enumerate(planes_in)]
        length = n

    def transform(*planes: Any) -> Any:
        j = te.reduce_axis((0, n), name="j")

        def element(*idx: Any) -> Any:
            k, c = idx[axis], idx[-1]

            def at(position: Any, part: int) -> Any:
                where = list(idx[:-1])
                where[axis] = position
                return planes[part][tuple(where)]

            inside = j < length
            source = tirx.Min(tirx.Cast("int64", j), tirx.const(length - 1, "int64"))
            re = tirx.Select(inside, at(source, 0), tirx.const(0.0, f32))
            im = tirx.Select(inside, at(source, 1), tirx.const(0.0, f32)) if parts == 2 else tirx.const(0.0, f32)
            valid = inside
            phase = tirx.floormod(tirx.Cast("int64", k) * tirx.Cast("int64", j), tirx.const(n, "int64"))
            angle = tirx.Cast(f32, phase) * tirx.const(sign * 2.0 * math.pi / n, f32)
            cos, sin = tirx.cos(angle), tirx.sin(angle)
            real = re * cos - im * sin
            imag = re * sin + im * cos
            term = tirx.Select(c == 0, real, imag) if out_parts == 2 else real
            return te.sum(tirx.Select(valid, term, tirx.const(0.0, f32)), axis=j)

        summed = te.compute(out_shape, element, name="dft_sum")
        return te.compute(out_shape, lambda *i: tirx.Cast(x.ty.dtype, summed[i] * tirx.const(scale, f32)), name="dft")

    return bb.emit_te(transform, *planes_in, primfunc_name_hint="dft")
