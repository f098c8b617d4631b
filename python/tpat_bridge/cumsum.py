"""TPAT's CumSum for inputs with symbolic dims.

TVM's CUDA cumsum picks its launches on the host from the sizes (a loop whose trip count depends
on a symbolic dim) and keeps scratch memory on the host side: neither fits a plugin, whose
kernels are launched with the sizes known only at enqueue. With a symbolic dim, TPAT computes each
output element as a sum over the axis masked to the elements before it (after it with
``reverse``; ``exclusive`` leaving out the element itself): one launch, no scratch, O(n) reads per
element, which suits the short axes exporters cumulate (DETR's mask rows and columns, position
ids). Static shapes keep TVM's scan.
"""

from __future__ import annotations

from typing import Any


def convert_cumsum(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX CumSum (opset 11/14): TVM's where every dim is static, else the masked sum."""
    import tvm
    from tvm import relax, te, tirx
    from tvm.relax.frontend.onnx import onnx_frontend
    from tvm.relax.frontend.onnx.onnx_frontend import get_constant

    data = inputs[0]
    shape = list(data.ty.shape.values) if isinstance(data.ty, relax.TensorType) and data.ty.shape is not None else None
    if shape is None or all(isinstance(d, tvm.tirx.IntImm) for d in shape):
        return onnx_frontend.CumSum.get_converter(10**6)(bb, inputs, attr, params)
    axis_input = get_constant(inputs[1], params)
    if not isinstance(axis_input, tvm.ir.GenericConst):
        from .errors import BridgeError

        raise BridgeError("unsupported", "CumSum: its axis is computed at run time; make it a constant")
    axis = int(axis_input.value.numpy().reshape(-1)[0]) % len(shape)
    exclusive = int(attr.get("exclusive", 0)) != 0
    reverse = int(attr.get("reverse", 0)) != 0

    def masked_sum(x: Any) -> Any:
        n = x.shape[axis]
        j = te.reduce_axis((0, n), name="j")

        def element(*idx: Any) -> Any:
            i = idx[axis]
            before = (j > i if exclusive else j >= i) if reverse else (j < i if exclusive else j <= i)
            source = x[tuple(idx[:axis]) + (j,) + tuple(idx[axis + 1:])]
            return te.sum(tirx.Select(before, source, tirx.const(0, x.dtype)), axis=j)

        return te.compute(x.shape, element, name="cumsum")

    return bb.emit_te(masked_sum, data, primfunc_name_hint="cumsum_masked")
