"""Helpers shared by TPAT's own lowerings (scatter_nd.py, gather_nd.py, one_hot.py, resize.py,
rowwise.py): static shapes, placeholders, calling a hand-scheduled PrimFunc from Relax, a 1-D
launch with one thread per item, and streaming stores."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator


def static_dim(d: Any) -> int | None:
    """A dim's (or a loop extent's) value when it is a constant, else None (a run-time size)."""
    from tvm import tirx

    return int(d) if isinstance(d, (int, tirx.IntImm)) else None


def static_shape(ty: Any) -> list[int] | None:
    """The dims of a tensor type when every one is a constant, else None."""
    values = getattr(getattr(ty, "shape", None), "values", None)
    if values is None:
        return None
    dims = [static_dim(d) for d in values]
    return None if any(d is None for d in dims) else dims


def prod(xs: list[int]) -> int:
    """The product of ``xs`` (1 for none)."""
    p = 1
    for x in xs:
        p *= x
    return p


def placeholder(expr: Any, name: str) -> Any:
    """A TE placeholder with the (static) shape and dtype of a Relax expression."""
    from tvm import te

    return te.placeholder(static_shape(expr.ty), str(expr.ty.dtype), name=name)


def call_prim_func(bb: Any, name: str, args: list[Any], placeholders: list[Any], y: Any) -> Any:
    """Adds ``y``'s PrimFunc (built from ``placeholders``) to the module and calls it on ``args``;
    not bb.call_te, which rewrites every index of the PrimFunc to int64."""
    from tvm import relax, te

    func = te.create_prim_func([*placeholders, y]).without_attr("global_symbol")
    gvar = bb.add_func(func, name)
    out_ty = relax.TensorType(relax.ShapeExpr([int(d) for d in y.shape]), y.dtype, args[0].ty.vdevice)
    return relax.call_tir(gvar, args, out_ty)


def size_product(dims: list[Any], idx: str) -> Any:
    """The product of ``dims``: an int while every dim is an int, else an expression of dtype
    ``idx`` (symbolic dims, which the caller has cast to ``idx``)."""
    from tvm import tirx

    out: Any = 1
    for d in dims:
        if isinstance(out, int) and isinstance(d, int):
            out *= d
        else:
            out = (tirx.const(out, idx) if isinstance(out, int) else out) * (tirx.const(d, idx) if isinstance(d, int) else d)
    return out


def call_kernel(bb: Any, name: str, args: list[Any], names: list[str], make: Callable[..., Any]) -> Any:
    """Calls the PrimFunc ``make(*placeholders)`` builds on ``args``: through ``call_prim_func``
    (32-bit index math kept) when every shape is static, through ``bb.call_te`` when one is symbolic
    (call_te gives the PrimFunc its own symbols, so ``make`` takes the sizes from its placeholders)."""
    if all(static_shape(a.ty) is not None for a in args):
        ps = [placeholder(a, n) for a, n in zip(args, names)]
        return call_prim_func(bb, name, args, ps, make(*ps))
    return bb.call_te(make, *args, primfunc_name_hint=name)


def call_kernel_own_index_types(bb: Any, name: str, args: list[Any], names: list[str],
                                make: Callable[..., Any]) -> Any:
    """``call_kernel`` without call_te's rewrite of every index to int64 where a shape is
    symbolic: the PrimFunc gets fresh copies of the argument shapes' symbols and keeps the index
    types ``make`` chose (a kernel doing 64-bit math only where it must). Falls back to
    ``call_kernel`` where a dim is an expression rather than a symbol or a constant."""
    from tvm import relax, te, tirx

    shapes = [list(a.ty.shape.values) for a in args]
    if all(static_shape(a.ty) is not None for a in args) or not all(
            isinstance(d, (int, tirx.IntImm, tirx.Var)) for dims in shapes for d in dims):
        return call_kernel(bb, name, args, names, make)
    fresh: dict[Any, Any] = {}

    def own(d: Any) -> Any:
        if isinstance(d, tirx.Var):
            return fresh.setdefault(d, tirx.Var(d.name, d.ty))
        return d

    ps = [te.placeholder([own(d) for d in dims], str(a.ty.dtype), name=n) for a, dims, n in zip(args, shapes, names)]
    y = make(*ps)
    func = te.create_prim_func([*ps, y]).without_attr("global_symbol")
    gvar = bb.add_func(func, name)
    # the output's dims in the caller's symbols (``make`` builds them from the placeholders' dims)
    caller = {v: k for k, v in fresh.items()}
    if not all(isinstance(d, (int, tirx.IntImm)) or d in caller for d in y.shape):
        raise ValueError(f"{name}: an output dim is an expression of the input dims: use call_kernel")
    out_shape = [d if isinstance(d, (int, tirx.IntImm)) else caller[d] for d in y.shape]
    out_ty = relax.TensorType(relax.ShapeExpr(out_shape), y.dtype, args[0].ty.vdevice)
    return relax.call_tir(gvar, args, out_ty)


def default_legalizer(op_name: str) -> Callable[[Any, Any], Any]:
    """TVM's own legalization of ``op_name`` (what LegalizeOps would use)."""
    import tvm

    return tvm.ir.Op.get(op_name).get_attr("FLegalize")


# CUDA's __stcs has overloads for these (cuda_fp16.h's for half); other dtypes keep plain stores.
_STREAMING_STORE_DTYPES = ("float32", "float16")


def streaming_store(buf: Any, index: Any, value: Any, gpu: bool = True) -> None:
    """Stores ``value`` at ``buf[index]`` (a 1-D buffer proxy, inside an IRBuilder frame) with
    CUDA's ``__stcs`` (evict-first: the line is not kept in L2 for a later read), for outputs that
    nothing in the same kernel reads back; a plain store off the GPU or for other dtypes."""
    from tvm import tirx
    from tvm.script.ir_builder import tirx as T

    if gpu and str(buf.dtype) in _STREAMING_STORE_DTYPES:
        T.evaluate(tirx.call_extern("void", "__stcs", tirx.address_of(buf[index]), value))
    else:
        buf[index] = value


@contextmanager
def thread_per_item(count: Any, threads: int, idx: str) -> Iterator[Any]:
    """Inside an IRBuilder: a 1-D launch of ceil(count / threads) blocks of ``threads`` threads;
    yields the thread's item index (dtype ``idx``), bound, inside ``if index < count``. ``count``
    is an int or, for symbolic shapes, an expression of the input sizes."""
    from tvm import te, tirx
    from tvm.script.ir_builder import tirx as T

    tx = te.thread_axis("threadIdx.x")
    bx = te.thread_axis("blockIdx.x")
    if isinstance(count, int):
        blocks: Any = -(-count // threads)
        limit = tirx.const(count, idx)
    else:
        limit = tirx.Cast(idx, count)
        blocks = tirx.Cast("int32", tirx.floordiv(limit + tirx.const(threads - 1, idx), tirx.const(threads, idx)))
    with T.frame_scope([T.attr(bx, "thread_extent", blocks), T.attr(tx, "thread_extent", threads)]):
        g = T.bind(tirx.Cast(idx, bx.var) * tirx.const(threads, idx) + tirx.Cast(idx, tx.var))
        with T.If(g < limit):
            with T.Then():
                yield g
