"""TPAT's GatherND lowering: one kernel, the frontend's index normalization folded in."""

from __future__ import annotations

from typing import Any

from .lowering import call_kernel, default_legalizer, prod, size_product, static_shape, thread_per_item


# TVM's ONNX frontend normalizes negative indices with Relax ops (shape_of, less, add, where) before
# gather_nd, and TVM's gather_nd PrimFunc (64-bit index math, one element per thread) reads data at
# data-dependent positions, which AnnotateTIROpPattern marks opaque: the normalization stays a
# kernel of its own, two launches for a gather that is launch-bound (2.6-3.1 us on an H200 against
# 1.6-1.7 us for torch.compile's single kernel). For static shapes TPAT drops the frontend's
# normalization (``fold_gather_nd_index_normalization``) and lowers gather_nd to one kernel that
# normalizes (and clamps) each index itself, with 32-bit index math, each thread moving up to
# 16 bytes of a gathered slice. Symbolic dims (a dynamic batch or index count) take the same kernel
# with 64-bit index math, sized at run time.


# Data dtypes whose 16-byte gathers a GPU run has checked (others keep TVM's lowering).
_GATHER_DTYPES = ("float32", "int32")


def _dims(ty: Any) -> list[Any] | None:
    """The dims of a tensor type (ints where static, expressions where symbolic), or None."""
    from tvm import tirx

    values = getattr(getattr(ty, "shape", None), "values", None)
    if values is None:
        return None
    return [int(d) if isinstance(d, (int, tirx.IntImm)) else d for d in values]


def gather_nd_covered(data_ty: Any, indices_ty: Any, batch_dims: int) -> bool:
    """True when TPAT's gather_nd kernel covers these types: known ranks, a static index tuple
    length, 32-bit sizes where the shapes are static (symbolic dims, a dynamic batch or index count,
    take 64-bit index math)."""
    data_shape, idx_shape = _dims(data_ty), _dims(indices_ty)
    if data_shape is None or not idx_shape or str(indices_ty.dtype) not in ("int64", "int32"):
        return False
    if str(data_ty.dtype) not in _GATHER_DTYPES or not isinstance(idx_shape[-1], int):
        return False
    m = idx_shape[-1]
    if m < 1 or batch_dims + m > len(data_shape):
        return False
    if static_shape(data_ty) is None or static_shape(indices_ty) is None:
        return True
    out_shape = idx_shape[:-1] + data_shape[batch_dims + m:]
    sizes = [prod(shape) for shape in (data_shape, idx_shape, out_shape)]
    return min(data_shape + idx_shape) > 0 and max(sizes) < 2**31


def fold_gather_nd_index_normalization(mod: Any) -> Any:
    """Rewrites ``gather_nd(d, where(less(i, 0), add(i, <d's shape>), i))`` (what TVM's ONNX
    frontend emits) to ``gather_nd(d, i)`` where TPAT's gather_nd kernel, which normalizes indices
    itself, will lower it."""
    import tvm
    from tvm import relax
    from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

    data, idx = wildcard(), wildcard()
    shape = is_op("relax.strided_slice")(is_op("relax.shape_to_tensor")(is_op("relax.shape_of")(data)),
                                         wildcard(), wildcard(), wildcard())
    zero = is_const()
    normalized = is_op("relax.where")(is_op("relax.less")(idx, zero), is_op("relax.add")(idx, shape), idx)
    pattern = is_op("relax.gather_nd")(data, normalized)

    def rewrite(expr: Any, matches: Any) -> Any:
        c = matches[zero].value.numpy()
        batch_dims = int(expr.attrs.batch_dims)
        if c.size != 1 or int(c.reshape(-1)[0]) != 0 or not gather_nd_covered(matches[data].ty, matches[idx].ty,
                                                                               batch_dims):
            return expr
        return relax.op.gather_nd(matches[data], matches[idx], batch_dims)

    funcs = {gv: rewrite_call(pattern, rewrite, f) if isinstance(f, relax.Function) else f
             for gv, f in mod.functions_items()}
    return relax.transform.DeadCodeElimination()(tvm.IRModule(funcs, attrs=mod.attrs))


def _fast_gather_nd(data: Any, indices: Any, batch_dims: int) -> Any:
    import tvm
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    static = all(isinstance(d, (int, tirx.IntImm)) for d in list(data.shape) + list(indices.shape))
    idx = "int32" if static else "int64"  # static sizes were checked to fit 32 bits

    def size(d: Any) -> Any:
        return int(d) if isinstance(d, (int, tirx.IntImm)) else tirx.Cast(idx, d)

    def product(ds: list[Any]) -> Any:
        return size_product(ds, idx)

    dshape = [size(d) for d in data.shape]
    ishape = [size(d) for d in indices.shape]
    m = ishape[-1]
    batch = product(dshape[:batch_dims])
    rows = product(ishape[:-1])
    per_batch_rows = rows // batch
    slice_len = product(dshape[batch_dims + m:])
    per_batch_data = product(dshape[batch_dims:])
    strides = [product(dshape[batch_dims + k + 1:batch_dims + m]) * slice_len for k in range(m)]
    width = tvm.DataType(data.dtype).bits // 8
    # The vector width needs a static slice (the innermost dims usually are).
    vec = next(v for v in (16 // width, 4, 2, 1) if v >= 1 and isinstance(slice_len, int) and slice_len % v == 0
               and v * width <= 16) if isinstance(slice_len, int) else 1
    chunks = slice_len // vec
    work = rows * chunks
    threads = 256

    def i(v: Any) -> Any:
        return tirx.const(v, idx) if isinstance(v, int) else v

    def gen_ir(data_ptr: Any, ind_ptr: Any, out_ptr: Any) -> Any:
        with IRBuilder() as ib:
            with thread_per_item(work, threads, idx) as g:
                src = T.buffer_proxy(T.decl_buffer((batch * per_batch_data,), data.dtype, data=data_ptr.data))
                ind = T.buffer_proxy(T.decl_buffer((rows * m,), indices.dtype, data=ind_ptr.data))
                dst = T.buffer_proxy(T.decl_buffer((rows * slice_len,), data.dtype, data=out_ptr.data))
                row = T.bind(g // i(chunks))
                k = T.bind(g % i(chunks))
                offset = (row // i(per_batch_rows)) * i(per_batch_data) if batch_dims > 0 and not (
                    isinstance(batch, int) and batch == 1) else i(0)
                for j in range(m):
                    dim = dshape[batch_dims + j]
                    raw = T.bind(tirx.Cast(idx, ind[row * i(m) + i(j)]))
                    v = tirx.Select(raw < i(0), raw + i(dim), raw)
                    v = tirx.max(tirx.min(v, i(dim) - i(1)), i(0))  # out of range: clamped, never a fault
                    offset = offset + v * i(strides[j])
                base = T.bind(offset + k * i(vec))
                if vec > 1:
                    dst[tirx.Ramp(g * i(vec), i(1), vec)] = src[tirx.Ramp(base, i(1), vec)]
                else:
                    dst[g] = src[base]
            return ib.get()

    out_shape = list(indices.shape[:-1]) + list(data.shape[batch_dims + m:])
    out_buf = tirx.decl_buffer(out_shape, data.dtype, "out_buf", layout=None)
    return te.extern([out_shape], [data, indices], lambda ins, outs: gen_ir(ins[0], ins[1], outs[0]),
                     dtype=data.dtype, out_buffers=[out_buf], name="gather_nd.tpat", tag="gather_nd.tpat")


def legalize_gather_nd(bb: Any, call: Any) -> Any:
    """relax.gather_nd: TPAT's kernel where covered, else TVM's legalization."""
    data, indices = call.args
    batch_dims = int(call.attrs.batch_dims)
    if not gather_nd_covered(data.ty, indices.ty, batch_dims):
        return default_legalizer("relax.gather_nd")(bb, call)
    return call_kernel(bb, "gather_nd_tpat", [data, indices], ["data", "indices"],
                       lambda d, i: _fast_gather_nd(d, i, batch_dims))
