"""TPAT's ConvInteger (TVM's frontend lacks it): ``(x - x_zero_point) * (w - w_zero_point)``
convolved with int32 accumulation, as ONNX defines it; ``w_zero_point`` may be one per output
channel. The integer convolution is TVM's own (conv1d/2d/3d with ``out_dtype`` int32)."""

from __future__ import annotations

from typing import Any

from .errors import BridgeError


def _text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def convert_conv_integer(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX ConvInteger."""
    from tvm import relax

    x, w = inputs[0], inputs[1]
    x_zero = inputs[2] if len(inputs) > 2 else None
    w_zero = inputs[3] if len(inputs) > 3 else None
    x_dims = [int(d) for d in x.ty.shape.values] if all(hasattr(d, "value") or isinstance(d, int) for d in x.ty.shape.values) else None
    w_dims = [int(d) for d in w.ty.shape.values]
    spatial = len(w_dims) - 2
    if spatial not in (1, 2, 3):
        raise BridgeError("unsupported", f"ConvInteger: a {spatial}-D convolution (TVM convolves 1-D, 2-D and 3-D)")
    xi = relax.op.astype(x, "int32")
    if x_zero is not None:
        xi = relax.op.subtract(xi, relax.op.astype(x_zero, "int32"))
    wi = relax.op.astype(w, "int32")
    if w_zero is not None:
        wz = relax.op.astype(w_zero, "int32")
        if len(w_zero.ty.shape.values) == 1:
            # one zero point per output channel: broadcast along the filter's other dims
            wz = relax.op.reshape(wz, [w_dims[0]] + [1] * (len(w_dims) - 1))
        wi = relax.op.subtract(wi, wz)
    strides = list(attr.get("strides", [1] * spatial))
    dilations = list(attr.get("dilations", [1] * spatial))
    kernel = list(attr.get("kernel_shape", w_dims[2:]))
    pads = list(attr.get("pads", [0] * (2 * spatial)))
    auto_pad = _text(attr.get("auto_pad"), "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if x_dims is None:
            raise BridgeError("unsupported", f"ConvInteger: auto_pad {auto_pad} with symbolic spatial dims")
        pads = [0] * (2 * spatial)
        for k in range(spatial):
            size = x_dims[2 + k]
            out = -(-size // strides[k])
            total = max(0, (out - 1) * strides[k] + (kernel[k] - 1) * dilations[k] + 1 - size)
            small, large = total // 2, total - total // 2
            pads[k], pads[k + spatial] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    elif auto_pad == "VALID":
        pads = [0] * (2 * spatial)
    conv = {1: relax.op.nn.conv1d, 2: relax.op.nn.conv2d, 3: relax.op.nn.conv3d}[spatial]
    return bb.emit(conv(xi, wi, strides=strides, padding=pads, dilation=dilations, groups=int(attr.get("group", 1)),
                        out_dtype="int32"))
