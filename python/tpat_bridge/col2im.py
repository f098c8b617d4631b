"""TPAT's Col2Im (TVM's frontend lacks it): the image put back together from its sliding blocks.

Input ``[N, C * prod(block_shape), L]`` holds, for each of the L block positions (row-major over
the spatial dims), each channel's block; the output ``[N, C, *image_shape]`` sums, at every
pixel, the block elements that land on it. One reduction per output element over the kernel
offsets: for offset k along a dim, the pixel lies in the block at ``(pixel + pad - k * dilation) /
stride`` when that divides exactly and falls inside the block grid. No atomics, no scatter.
"""

from __future__ import annotations

from typing import Any

from .errors import BridgeError
from .operands import constant_ints


def convert_col2im(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX Col2Im (opset 18)."""
    from tvm import te, tirx

    data = inputs[0]
    image = constant_ints(inputs[1], params, "Col2Im", "image_shape") or []
    block = constant_ints(inputs[2], params, "Col2Im", "block_shape") or []
    rank = len(image)
    if len(block) != rank:
        raise BridgeError("unsupported", f"Col2Im: image_shape has {rank} dims but block_shape {len(block)}")
    dilations = [int(v) for v in attr.get("dilations", [1] * rank)]
    strides = [int(v) for v in attr.get("strides", [1] * rank)]
    pads = [int(v) for v in attr.get("pads", [0] * (2 * rank))]
    grid = [(image[d] + pads[d] + pads[d + rank] - dilations[d] * (block[d] - 1) - 1) // strides[d] + 1 for d in range(rank)]
    kernel = 1
    for k in block:
        kernel *= k

    def fold(x: Any) -> Any:
        n_, ck, _ = x.shape
        channels = tirx.floordiv(ck, kernel)
        k = te.reduce_axis((0, kernel), name="k")

        def pixel(n: Any, c: Any, *pos: Any) -> Any:
            # the kernel offset along each dim, from the flattened offset k (row-major)
            rest, offsets = k, []
            for d in reversed(range(rank)):
                offsets.append(tirx.floormod(rest, block[d]))
                rest = tirx.floordiv(rest, block[d])
            offsets.reverse()
            valid, column = tirx.const(True, "bool"), tirx.const(0, "int64")
            for d in range(rank):
                at = tirx.Cast("int64", pos[d]) + pads[d] - tirx.Cast("int64", offsets[d]) * dilations[d]
                cell = tirx.floordiv(at, strides[d])
                valid = tirx.all(valid, at >= 0, tirx.floormod(at, strides[d]) == 0, cell < grid[d])
                column = column * grid[d] + tirx.max(tirx.min(cell, grid[d] - 1), 0)
            value = x[n, tirx.Cast("int64", c) * kernel + tirx.Cast("int64", k), column]
            return te.sum(tirx.Select(valid, value, tirx.const(0, x.dtype)), axis=k)

        return te.compute((n_, channels, *image), pixel, name="col2im")

    return bb.emit_te(fold, data, primfunc_name_hint="col2im")
