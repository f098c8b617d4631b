"""TPAT's Det (TVM's frontend lacks it): the determinant of each square matrix of ``[..., n, n]``,
by Gaussian elimination with partial pivoting, one thread per matrix (a model's matrices are small:
a camera's, a transform's), in float32 (the input's dtype for float64). n must be static."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .errors import BridgeError
from .lowering import prod, static_shape, thread_per_item


# One thread per matrix on the GPU; False (the CPU checks of pytest, TVM's llvm target): the same
# arithmetic in a serial loop over the matrices.
ON_GPU = True


@contextmanager
def _each_matrix(batch: int) -> Iterator[Any]:
    from tvm.script.ir_builder import tirx as T

    if ON_GPU:
        with thread_per_item(batch, 64, "int32") as b:
            yield b
    else:
        with T.serial(0, batch) as b:
            yield b


def convert_det(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX Det."""
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    x = inputs[0]
    shape = static_shape(x.ty)
    if shape is None or len(shape) < 2 or shape[-1] != shape[-2]:
        raise BridgeError("unsupported", f"Det: the input must have static square matrices, not {x.ty.shape}")
    n = shape[-1]
    batch = prod(shape[:-2])
    dtype = str(x.ty.dtype)
    acc = "float64" if dtype == "float64" else "float32"

    def make(xp: Any) -> Any:
        def gen(src_buf: Any, out_buf: Any) -> Any:
            with IRBuilder() as ib:
                with _each_matrix(batch) as b:
                    # flat views of the same memory (declared inside a frame)
                    src = T.buffer_proxy(T.decl_buffer((batch * n * n,), dtype, data=src_buf.data))
                    dst = T.buffer_proxy(T.decl_buffer((max(batch, 1),), dtype, data=out_buf.data))
                    a = T.buffer_proxy(T.alloc_local((n * n,), acc))
                    det = T.buffer_proxy(T.alloc_local((1,), acc))
                    pivot = T.buffer_proxy(T.alloc_local((1,), "int32"))
                    best = T.buffer_proxy(T.alloc_local((1,), acc))
                    with T.serial(0, n * n) as e:
                        a[e] = tirx.Cast(acc, src[b * (n * n) + e])
                    det[0] = tirx.const(1.0, acc)
                    with T.serial(0, n) as k:
                        pivot[0] = k
                        best[0] = tirx.abs(a[k * n + k])
                        with T.serial(k + 1, n) as i:
                            with T.If(tirx.abs(a[i * n + k]) > best[0]):
                                with T.Then():
                                    best[0] = tirx.abs(a[i * n + k])
                                    pivot[0] = i
                        with T.If(pivot[0] != k):
                            with T.Then():
                                with T.serial(0, n) as j:
                                    t = T.bind(a[k * n + j])
                                    a[k * n + j] = a[pivot[0] * n + j]
                                    a[pivot[0] * n + j] = t
                                det[0] = -det[0]
                        d = T.bind(a[k * n + k])
                        det[0] = det[0] * d
                        with T.If(d != tirx.const(0.0, acc)):
                            with T.Then():
                                with T.serial(k + 1, n) as i:
                                    f = T.bind(a[i * n + k] / d)
                                    with T.serial(k, n) as j:
                                        a[i * n + j] = a[i * n + j] - f * a[k * n + j]
                    dst[b] = tirx.Cast(dtype, det[0])
                return ib.get()

        out = tirx.decl_buffer(shape[:-2], dtype, "det_out", layout=None)
        return te.extern([shape[:-2]], [xp], lambda ins, outs: gen(ins[0], outs[0]), dtype=dtype,
                         out_buffers=[out], name="det.tpat", tag="det.tpat")

    return bb.emit_te(make, x, primfunc_name_hint="det")
