"""TPAT's OneHot lowering: one kernel, the frontend's index normalization and cast folded in."""

from __future__ import annotations

from typing import Any, Callable

from .lowering import call_kernel, default_legalizer, prod, size_product, static_shape, thread_per_item


# TVM's ONNX frontend normalizes negative indices (less/add/where) before one_hot, whose values
# come as float64 PrimValues and are cast to the output dtype afterwards; FuseOps makes one kernel
# of it, one 64-bit comparison per output element (launch-bound: 1.9 us on an H200 for 16 x 16384
# against 1.7 us for torch.compile). For static shapes TPAT folds the normalization and the cast
# into one_hot (``fold_one_hot_normalization_and_cast``) and lowers one_hot to a kernel that
# normalizes each index itself and writes 4 consecutive outputs per thread (one 16-byte store for
# 4-byte dtypes), 32-bit index math. Indices out of [-depth, depth) give an all-off row (ONNX).

# Output dtypes the vector store was checked on a GPU with (others keep TVM's lowering).
_ONE_HOT_DTYPES = ("float32", "float16", "int64")
_ONE_HOT_THREADS = 128


def one_hot_covered(indices_ty: Any, depth: int, axis: int, dtype: str) -> bool:
    """True when TPAT's one_hot kernel covers these types: static shapes within 32-bit sizes, or
    symbolic dims before ``axis`` only (a dynamic batch: a run-time count, 64-bit index math)."""
    from tvm import tirx

    values = getattr(getattr(indices_ty, "shape", None), "values", None)
    if values is None or str(indices_ty.dtype) not in ("int64", "int32") or dtype not in _ONE_HOT_DTYPES:
        return False
    rank = len(values)
    if depth <= 0 or not -rank - 1 <= axis <= rank:
        return False
    shape = static_shape(indices_ty)
    if shape is not None:
        return prod(shape) * depth < 2**31
    a = axis + rank + 1 if axis < 0 else axis
    return all(isinstance(d, (int, tirx.IntImm)) for d in values[a:])


def fold_one_hot_normalization_and_cast(mod: Any) -> Any:
    """Rewrites ``astype(one_hot(where(less(i, 0), add(i, depth), i), on, off), t)`` (what TVM's ONNX
    frontend emits) to ``one_hot(i, on as t, off as t)`` (and the same without ``astype``), where
    TPAT's one_hot kernel, which normalizes indices itself, will lower it."""
    import tvm
    from tvm import relax, tirx
    from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

    idx, zero, extent, on, off = wildcard(), is_const(), is_const(), wildcard(), wildcard()
    normalized = is_op("relax.where")(is_op("relax.less")(idx, zero), is_op("relax.add")(idx, extent), idx)
    one_hot = is_op("relax.one_hot")(normalized, on, off)
    cast = is_op("relax.astype")(one_hot)

    def value(imm: Any, dtype: str) -> Any:
        return tirx.FloatImm(dtype, float(imm.value)) if "float" in dtype else tirx.IntImm(dtype, int(imm.value))

    def rewrite(expr: Any, matches: Any) -> Any:
        call = matches[one_hot]
        dtype = str(expr.attrs.dtype) if expr.op.name == "relax.astype" else str(call.ty.dtype)
        depth, axis = int(call.attrs.depth), int(call.attrs.axis)
        z, e = matches[zero].value.numpy(), matches[extent].value.numpy()
        if (z.size != 1 or int(z.reshape(-1)[0]) != 0 or e.size != 1 or int(e.reshape(-1)[0]) != depth
                or not isinstance(matches[on], (tirx.FloatImm, tirx.IntImm))
                or not isinstance(matches[off], (tirx.FloatImm, tirx.IntImm))
                or not one_hot_covered(matches[idx].ty, depth, axis, dtype)):
            return expr
        return relax.op.one_hot(matches[idx], value(matches[on], dtype), value(matches[off], dtype), depth, axis)

    def fold(f: Any) -> Any:
        return rewrite_call(one_hot, rewrite, rewrite_call(cast, rewrite, f))

    funcs = {gv: fold(f) if isinstance(f, relax.Function) else f for gv, f in mod.functions_items()}
    return relax.transform.DeadCodeElimination()(tvm.IRModule(funcs, attrs=mod.attrs))


def _fast_one_hot(indices: Any, on: Any, off: Any, depth: int, axis: int, dtype: str, gpu: bool = True) -> Any:
    """one_hot with the index normalization inside; ``gpu=False``: the same arithmetic in serial
    loops (for checking it on the CPU)."""
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    static = all(isinstance(d, (int, tirx.IntImm)) for d in indices.shape)
    # Dims before ``axis`` may be symbolic (one_hot_covered): then sizes are int64 expressions.
    idx = "int32" if static else "int64"
    ishape = [int(d) if isinstance(d, (int, tirx.IntImm)) else tirx.Cast(idx, d) for d in indices.shape]
    rank = len(ishape)
    axis = axis + rank + 1 if axis < 0 else axis
    inner = prod(ishape[axis:])
    out_dims = ishape[:axis] + [depth] + ishape[axis:]

    total = size_product(out_dims, idx)
    last = out_dims[-1]
    vec = 4 if last % 4 == 0 else 1
    chunks = total // vec
    out_shape = list(indices.shape[:axis]) + [depth] + list(indices.shape[axis:])
    on_v, off_v = tirx.const(on, dtype), tirx.const(off, dtype)

    def i(v: Any) -> Any:
        return tirx.const(v, idx) if isinstance(v, int) else v

    def position(raw: Any) -> Any:
        """The index's position along depth in 32 bits, -1 (no position) when out of range:
        normalized and range-checked in the index's own dtype, never truncated first."""
        wide = str(indices.dtype)
        n = tirx.const(depth, wide)
        raw = T.bind(raw)
        v = T.bind(tirx.Select(raw < tirx.const(0, wide), raw + n, raw))
        return T.bind(tirx.Select(tirx.all(v >= tirx.const(0, wide), v < n), tirx.Cast(idx, v), i(-1)))

    def body(g: Any, ind: Any, dst: Any) -> None:
        base = T.bind(g * i(vec))
        # The vector runs along the last output dim: within it, only d (depth last) or the index
        # position j (depth elsewhere) moves.
        if inner == 1:
            row, d0 = T.bind(base // i(depth)), T.bind(base % i(depth))
            v = position(ind[row])
            lanes = [tirx.Select(v == d0 + i(k), on_v, off_v) for k in range(vec)]
        else:
            o, rest = T.bind(base // i(depth * inner)), T.bind(base % i(depth * inner))
            d, j0 = T.bind(rest // i(inner)), T.bind(rest % i(inner))
            lanes = [tirx.Select(position(ind[o * i(inner) + j0 + i(k)]) == d, on_v, off_v) for k in range(vec)]
        if vec == 1:
            dst[base] = lanes[0]
        elif gpu:
            dst[tirx.Ramp(base, i(1), vec)] = tirx.Shuffle(lanes, [i(k) for k in range(vec)])
        else:
            for k in range(vec):
                dst[base + i(k)] = lanes[k]

    def gen_ir(ind_ptr: Any, out_ptr: Any) -> Any:
        def views() -> tuple[Any, Any]:  # 1-D views of the same memory (inside a frame)
            return (T.buffer_proxy(T.decl_buffer((i(size_product(ishape, idx)),), indices.dtype, data=ind_ptr.data)),
                    T.buffer_proxy(T.decl_buffer((i(total),), dtype, data=out_ptr.data)))

        with IRBuilder() as ib:
            if gpu:
                with thread_per_item(chunks, _ONE_HOT_THREADS, idx) as g:
                    ind, dst = views()
                    body(g, ind, dst)
            else:
                # loop variables are 32-bit; the arithmetic takes them as ``idx``
                with T.serial(0, chunks if isinstance(chunks, int) else tirx.Cast("int32", chunks)) as g:
                    ind, dst = views()
                    body(tirx.Cast(idx, g), ind, dst)
            return ib.get()

    out_buf = tirx.decl_buffer(out_shape, dtype, "out_buf", layout=None)
    return te.extern([out_shape], [indices], lambda ins, outs: gen_ir(ins[0], outs[0]),
                     dtype=dtype, out_buffers=[out_buf], name="one_hot.tpat", tag="one_hot.tpat")


def one_hot_legalizer(gpu: bool = True) -> Callable[[Any, Any], Any]:
    """The one_hot legalization; ``gpu=False``: TPAT's arithmetic in serial loops, for the CPU."""
    return lambda bb, call: _legalize_one_hot(bb, call, gpu)


def _legalize_one_hot(bb: Any, call: Any, gpu: bool = True) -> Any:
    from tvm import tirx

    indices, on, off = call.args
    depth, axis, dtype = int(call.attrs.depth), int(call.attrs.axis), str(call.ty.dtype)
    constant = (tirx.FloatImm, tirx.IntImm)  # relax.prim_value of a number
    if not (isinstance(on, constant) and isinstance(off, constant) and one_hot_covered(indices.ty, depth, axis, dtype)):
        return default_legalizer("relax.one_hot")(bb, call)
    return call_kernel(bb, "one_hot_tpat", [indices], ["indices"],
                       lambda ip: _fast_one_hot(ip, on.value, off.value, depth, axis, dtype, gpu))
