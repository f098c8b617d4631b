"""TPAT's TensorScatter (opset 24, TVM's frontend lacks it): a KV cache updated in place.

``past_cache`` with ``update``'s entries written along ``axis`` (default -2, the sequence) from each
batch entry's ``write_indices[b]`` on (0 without them); ``circular`` mode wraps around the cache's
length. One gather per output element: it reads the update where the element lies in the written
window, else the cache.
"""

from __future__ import annotations

from typing import Any

from .errors import BridgeError


def convert_tensor_scatter(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX TensorScatter."""
    from tvm import te, tirx

    cache, update = inputs[0], inputs[1]
    indices = inputs[2] if len(inputs) > 2 else None
    rank = len(cache.ty.shape.values)
    axis = int(attr.get("axis", -2))
    axis = axis + rank if axis < 0 else axis
    if not 0 < axis < rank:
        raise BridgeError("unsupported", f"TensorScatter: axis {attr.get('axis', -2)} is not a non-batch axis of its rank-{rank} cache")
    mode = attr.get("mode", "linear")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    circular = mode == "circular"

    def scatter(c: Any, u: Any, *w: Any) -> Any:
        length, window = c.shape[axis], u.shape[axis]

        def element(*idx: Any) -> Any:
            start = tirx.Cast("int64", w[0][idx[0]]) if w else tirx.const(0, "int64")
            offset = tirx.Cast("int64", idx[axis]) - start
            if circular:
                offset = tirx.floormod(offset, tirx.Cast("int64", length))
            inside = tirx.all(offset >= 0, offset < tirx.Cast("int64", window))
            at = list(idx)
            at[axis] = tirx.max(tirx.min(offset, tirx.Cast("int64", window) - 1), 0)
            return tirx.Select(inside, u[tuple(at)], c[idx])

        return te.compute(c.shape, element, name="tensor_scatter")

    args = [cache, update] + ([indices] if indices is not None else [])
    return bb.emit_te(scatter, *args, primfunc_name_hint="tensor_scatter")
