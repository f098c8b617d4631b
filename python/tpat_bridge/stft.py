"""TPAT's STFT, which TVM's frontend lacks: the DFT of each windowed frame of a signal, as one
reduction per output element (dft.py's approach, frame by frame).

ONNX's layout: ``signal`` [batch, length, 1 (real) or 2 (real, imaginary)]; frames of
``frame_length`` samples (else the window's length) every ``frame_step`` samples, each multiplied
by ``window`` (else ones); output [batch, frames, bins, 2] with ``onesided`` keeping the
``frame_length // 2 + 1`` first bins. Forward DFT: X[k] = sum_j w[j] x[j] e^(-2 pi i jk/n), the
angle taken from (jk mod n) as in dft.py.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import BridgeError
from .operands import constant_int


def convert_stft(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX STFT (opset 17)."""
    from tvm import relax, te, tirx

    signal = inputs[0]
    if not isinstance(signal.ty, relax.TensorType) or signal.ty.shape is None or len(signal.ty.shape.values) != 3:
        raise BridgeError("unsupported", "STFT: its signal is not [batch, length, 1 or 2]")
    step = constant_int(inputs[1], params, "STFT", "frame_step")
    window = inputs[2] if len(inputs) > 2 else None
    length = constant_int(inputs[3], params, "STFT", "frame_length") if len(inputs) > 3 else None
    if length is None:
        if window is None:
            raise BridgeError("unsupported", "STFT: neither a window nor a frame_length gives the frame's length")
        length = int(window.ty.shape.values[0])
    batch, samples, parts = signal.ty.shape.values
    if not isinstance(samples, tirx.IntImm):
        raise BridgeError("unsupported", "STFT: its signal's length is symbolic; the frame count must be static")
    frames = (int(samples) - length) // step + 1
    bins = length // 2 + 1 if int(attr.get("onesided", 1)) else length
    dtype = str(signal.ty.dtype)
    complex_input = int(parts) == 2

    def transform(x: Any, *w: Any) -> Any:
        j = te.reduce_axis((0, length), name="j")

        def element(b: Any, f: Any, k: Any, c: Any) -> Any:
            at = tirx.Cast("int64", f) * step + tirx.Cast("int64", j)
            scale = tirx.Cast("float32", w[0][j]) if w else tirx.const(1.0, "float32")
            real = tirx.Cast("float32", x[b, at, 0]) * scale
            imag = tirx.Cast("float32", x[b, at, 1]) * scale if complex_input else tirx.const(0.0, "float32")
            angle = tirx.Cast("float32", tirx.floormod(tirx.Cast("int64", j) * tirx.Cast("int64", k), length)) * (2 * math.pi / length)
            cos, sin = tirx.cos(angle), tirx.sin(angle)
            # (real + i imag)(cos - i sin): the real part, or the imaginary one
            term = tirx.Select(c == 0, real * cos + imag * sin, imag * cos - real * sin)
            return te.sum(tirx.Cast(dtype, term), axis=j)

        return te.compute((batch, frames, bins, 2), element, name="stft")

    args = [signal] + ([window] if window is not None else [])
    return bb.emit_te(transform, *args, primfunc_name_hint="stft")
