"""TPAT's RoiAlign: ONNX's definition (as ONNX Runtime computes it) in one TE computation.

TVM 0.27's frontend stops on an internal check for the RoiAlign of exported detectors (Faster
R-CNN's box head: a symbolic number of boxes). Each output element averages (or takes the largest
of) a fixed grid of bilinear samples of its box's bin: ``sampling_ratio`` samples per bin side. An
adaptive grid (``sampling_ratio=0``: ceil(box size / output size), a count that depends on the box
values) is refused with that reason: TorchVision's detectors export a fixed ratio.
"""

from __future__ import annotations

from typing import Any

from .errors import BridgeError


def convert_roialign(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX RoiAlign (opset 10 and 16: ``coordinate_transformation_mode``)."""
    from tvm import te, tirx

    ratio = int(attr.get("sampling_ratio", 0))
    if ratio <= 0:
        raise BridgeError("unsupported", "RoiAlign: sampling_ratio=0 (an adaptive sampling grid) makes the number of "
                                         "samples depend on each box's size; export with a fixed sampling_ratio")
    out_h, out_w = int(attr.get("output_height", 1)), int(attr.get("output_width", 1))
    scale = float(attr.get("spatial_scale", 1.0))
    mode = attr.get("mode", b"avg")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    transform = attr.get("coordinate_transformation_mode", b"half_pixel")
    transform = transform.decode() if isinstance(transform, bytes) else transform
    # opset 10 has no such attribute and behaves as output_half_pixel
    half_pixel = transform == "half_pixel" and "coordinate_transformation_mode" in attr

    def roi_align(data: Any, rois: Any, batch: Any) -> Any:
        height, width = data.shape[2], data.shape[3]
        last_row = tirx.Cast("int64", height) - 1
        last_col = tirx.Cast("int64", width) - 1
        zero = tirx.const(0.0, "float32")

        def f(v: Any) -> Any:
            return tirx.Cast("float32", v)

        def corners(n: Any, c: Any, ph: Any, pw: Any, iy: int, ix: int) -> tuple[Any, tuple[Any, Any, Any, Any]]:
            """Whether sample (iy, ix) of bin (ph, pw) lies outside the map, and its four weighted corners."""
            offset = 0.5 if half_pixel else 0.0
            start_w = f(rois[n, 0]) * scale - offset
            start_h = f(rois[n, 1]) * scale - offset
            roi_w = f(rois[n, 2]) * scale - offset - start_w
            roi_h = f(rois[n, 3]) * scale - offset - start_h
            if not half_pixel:
                roi_w = tirx.Max(roi_w, tirx.const(1.0, "float32"))
                roi_h = tirx.Max(roi_h, tirx.const(1.0, "float32"))
            py = start_h + f(ph) * roi_h / out_h + (iy + 0.5) * roi_h / out_h / ratio
            px = start_w + f(pw) * roi_w / out_w + (ix + 0.5) * roi_w / out_w / ratio
            outside = tirx.Or(tirx.Or(py < -1.0, py > f(height)), tirx.Or(px < -1.0, px > f(width)))
            py = tirx.Max(py, zero)
            px = tirx.Max(px, zero)
            y_floor = tirx.Cast("int64", tirx.floor(py))
            x_floor = tirx.Cast("int64", tirx.floor(px))
            y_low, x_low = tirx.Min(y_floor, last_row), tirx.Min(x_floor, last_col)
            y_high, x_high = tirx.Min(y_low + 1, last_row), tirx.Min(x_low + 1, last_col)
            # on or past the last row (column) the sample sits on it: all weight there
            py = tirx.Select(y_floor >= last_row, f(y_low), py)
            px = tirx.Select(x_floor >= last_col, f(x_low), px)
            ly, lx = py - f(y_low), px - f(x_low)
            hy, hx = 1.0 - ly, 1.0 - lx
            b = batch[n]
            return outside, (hy * hx * f(data[b, c, y_low, x_low]), hy * lx * f(data[b, c, y_low, x_high]),
                             ly * hx * f(data[b, c, y_high, x_low]), ly * lx * f(data[b, c, y_high, x_high]))

        def element(n: Any, c: Any, ph: Any, pw: Any) -> Any:
            # the grid is static and small: unrolled (a reduction over loads at computed indices
            # is beyond what TVM's GPU schedules analyse)
            total = None
            for iy in range(ratio):
                for ix in range(ratio):
                    outside, (v1, v2, v3, v4) = corners(n, c, ph, pw, iy, ix)
                    if mode == "max":
                        # ONNX Runtime's max mode: the largest weighted corner over all samples
                        value = tirx.Select(outside, zero, tirx.Max(tirx.Max(v1, v2), tirx.Max(v3, v4)))
                        total = value if total is None else tirx.Max(total, value)
                    else:
                        value = tirx.Select(outside, zero, v1 + v2 + v3 + v4)
                        total = value if total is None else total + value
            divisor = 1.0 if mode == "max" else float(ratio * ratio)
            return tirx.Cast(data.dtype, total / divisor)

        return te.compute((rois.shape[0], data.shape[1], out_h, out_w), element, name="roi_align")

    return bb.emit_te(roi_align, inputs[0], inputs[1], inputs[2], primfunc_name_hint="roi_align")
