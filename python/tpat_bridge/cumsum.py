"""TPAT's CumSum for inputs with symbolic dims, and CumProd.

TVM's CUDA cumsum picks its launches on the host from the sizes (a loop whose trip count depends
on a symbolic dim) and keeps scratch memory on the host side: neither fits a plugin, whose
kernels are launched with the sizes known only at enqueue. With a symbolic dim, TPAT computes each
output element as a sum over the axis masked to the elements before it (after it with
``reverse``; ``exclusive`` leaving out the element itself): one launch, no scratch, O(n) reads per
element, which suits the short axes exporters cumulate (DETR's mask rows and columns, position
ids). Static shapes keep TVM's scan. CumProd, which TVM's frontend lacks, is the same masked
reduction with a product.
"""

from __future__ import annotations

from typing import Any


def _axis(op: str, inputs: list[Any], params: Any, rank: int) -> int:
    from .operands import constant_int

    return constant_int(inputs[1], params, op, "axis") % rank


def masked_scan(bb: Any, data: Any, axis: int, exclusive: bool, reverse: bool, product: bool) -> Any:
    """Each element: the sum (product) over the axis of the elements before it (after it with
    ``reverse``; itself left out with ``exclusive``), as one masked reduction."""
    from tvm import te, tirx

    def scan(x: Any) -> Any:
        n = x.shape[axis]
        j = te.reduce_axis((0, n), name="j")
        identity = tirx.const(1 if product else 0, x.dtype)
        reducer = te.comm_reducer(lambda a, b: a * b, lambda t: tirx.const(1, t), name="prod") if product else te.sum

        def element(*idx: Any) -> Any:
            i = idx[axis]
            before = (j > i if exclusive else j >= i) if reverse else (j < i if exclusive else j <= i)
            source = x[tuple(idx[:axis]) + (j,) + tuple(idx[axis + 1:])]
            return reducer(tirx.Select(before, source, identity), axis=j)

        return te.compute(x.shape, element, name="cumprod" if product else "cumsum")

    return bb.emit_te(scan, data, primfunc_name_hint="cumprod_masked" if product else "cumsum_masked")


def convert_cumsum(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX CumSum (opset 11/14): TVM's where every dim is static and TVM's CUDA scan
    needs no host-side scratch (an inclusive sum of floats along the last axis), else the masked
    sum (an exclusive sum, another axis, or integers: TVM's scan keeps a per-thread array on the
    host there, which a plugin cannot hold)."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import onnx_frontend

    data = inputs[0]
    shape = list(data.ty.shape.values) if isinstance(data.ty, relax.TensorType) and data.ty.shape is not None else None
    if shape is None:
        return onnx_frontend.CumSum.get_converter(10**6)(bb, inputs, attr, params)
    axis = _axis("CumSum", inputs, params, len(shape))
    exclusive = int(attr.get("exclusive", 0)) != 0
    scan_without_scratch = not exclusive and axis == len(shape) - 1 and str(data.ty.dtype).startswith(("float", "bfloat"))
    if all(isinstance(d, tvm.tirx.IntImm) for d in shape) and scan_without_scratch:
        return onnx_frontend.CumSum.get_converter(10**6)(bb, inputs, attr, params)
    return masked_scan(bb, data, axis, exclusive, int(attr.get("reverse", 0)) != 0, product=False)


def convert_cumprod(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX CumProd (opset 26), which TVM's frontend lacks: the masked product."""
    from tvm import relax

    from .errors import BridgeError

    data = inputs[0]
    if not isinstance(data.ty, relax.TensorType) or data.ty.shape is None:
        raise BridgeError("unsupported", "CumProd: its input's rank is unknown")
    return masked_scan(bb, data, _axis("CumProd", inputs, params, len(data.ty.shape.values)),
                       int(attr.get("exclusive", 0)) != 0, int(attr.get("reverse", 0)) != 0, product=True)
