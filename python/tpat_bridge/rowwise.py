"""TPAT's lowerings of row-wise and axis reductions, where TVM's default GPU schedules stay well
under the memory-bandwidth limit.

* ``relax.nn.softmax`` and ``relax.nn.layer_norm`` over the last axis: one warp per row. Each lane
  loads its ``L / 32`` elements of the row once into registers (consecutive lanes, consecutive
  addresses), the row's max / sum / mean / variance are reduced with warp shuffles, and the row is
  written once: one read and one write of the tensor, the floor (dlight's reduction schedules
  reached 76-80% of it on an H200, TPAT's 86%: docs/benchmarks.md).
* ``relax.nn.softmax`` over a last axis of run-time length (attention's scores over a dynamic
  sequence) or a static one not a multiple of 32 or longer than 2048: the same register kernel
  with the slots past the row's end unused, one for rows of up to 128 and one for up to 512, and
  past that one warp per row streaming it twice (an online max and sum, then the write); the plan
  launches the kernel the row's length picks.
* ``relax.max`` / ``relax.min`` / ``relax.sum`` over one axis (or consecutive axes) with at least
  32 contiguous elements after it, e.g. ReduceMax (256, 82, 128) over axis 1: a block of 32 x 8
  threads covers 32 consecutive columns of one outer index; its 8 rows of threads split the
  reduced axis, each thread loading all of its rows before reducing them (many loads in flight),
  and shared memory combines the 8 partial results.

Leading dims (before the row, or before the reduced axes) may be symbolic, a dynamic batch or
sequence: the number of rows or blocks is then a run-time size and the index math 64-bit.
Everything else (symbolic dims in a LayerNormalization row or after the reduced axes, its rows
longer than 2048 or not a multiple of 32, dtypes other than float32, which no GPU run has checked
yet, reductions over the innermost axis) keeps TVM's lowering and dlight's schedules. These kernels
are written with TVM's IR builder (like TOPI's GPU scatter), so MetaSchedule leaves them alone.
"""

from __future__ import annotations

from typing import Any, Callable

from .lowering import call_kernel, default_legalizer, prod, static_dim, static_shape

WARPS_PER_BLOCK = 4
MAX_ROW = 2048          # 64 values a lane, kept in registers
REDUCE_SPLIT = 8        # rows of threads splitting a reduced axis
FLOAT_DTYPES = ("float32",)   # other dtypes keep TVM's lowering until a GPU run has checked them
# What a Softmax slot past the row's end holds, and a running max starts from: the lowest float32,
# not -inf (-inf - -inf would be NaN where a row's max is -inf).
LOWEST_FLOAT32 = -3.4028234663852886e38


def _leading(ty: Any, static_from: int) -> tuple[Any, list[int]] | None:
    """(the product of the dims before ``static_from``, the dims from ``static_from`` on) when
    those are static: the product is an int for a static shape and an int64 expression where a
    leading dim is symbolic (a dynamic batch or sequence), which the kernels take as a run-time
    size. None when the rank is unknown or a later dim is symbolic. ``ty`` is a Relax type or,
    inside a TE function, the placeholder's shape (whose symbols are the PrimFunc's own)."""
    from tvm import tirx

    values = list(ty) if isinstance(ty, (list, tuple)) else getattr(getattr(ty, "shape", None), "values", None)
    if values is None or not 0 <= static_from <= len(values):
        return None
    tail = list(values[static_from:])
    if not all(isinstance(d, (int, tirx.IntImm)) for d in tail):
        return None
    lead: Any = 1
    for d in values[:static_from]:
        if isinstance(d, (int, tirx.IntImm)) and isinstance(lead, int):
            lead *= int(d)
        else:
            lead = (tirx.const(lead, "int64") if isinstance(lead, int) else lead) * (
                tirx.const(int(d), "int64") if isinstance(d, (int, tirx.IntImm)) else tirx.Cast("int64", d))
    return lead, [int(d) for d in tail]


def _const(v: Any, idx: str) -> Any:
    """``v`` as a TIR value of dtype ``idx``: ints become constants, expressions are cast."""
    from tvm import tirx

    return tirx.const(v, idx) if isinstance(v, int) else tirx.Cast(idx, v)


def _tree(values: list[Any], op: Callable[[Any, Any], Any]) -> Any:
    """Pairwise combination (independent operations in flight, fewer rounding steps for sums)."""
    while len(values) > 1:
        nxt = [op(values[k], values[k + 1]) for k in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


def _warp_allreduce(value: Any, op: Callable[[Any, Any], Any]) -> Any:
    """Every lane ends with the warp's combined value (butterfly of __shfl_xor_sync)."""
    from tvm import tirx
    from tvm.script.ir_builder import tirx as T

    mask = tirx.const(0xFFFFFFFF, "uint32")
    for offset in (16, 8, 4, 2, 1):
        other = tirx.call_extern("float32", "__shfl_xor_sync", mask, value, tirx.const(offset, "int32"),
                                 tirx.const(32, "int32"))
        value = T.bind(op(value, other))
    return value


def _row_extern(name: str, inputs: list[Any], out_shape: list[Any], dtype: str, rows: Any, length: Any,
                body: Callable[..., None] | list[tuple[Callable[..., None], Any]],
                prologue: Callable[[Any, list[Any], Callable[[int], Any]], Any] | None = None) -> Any:
    """A te.extern running ``body(row, lane, in_buffers, out_buffer, idx[, state])`` on one warp per
    row; ``prologue(thread, in_buffers, idx)``, when given, runs first in every thread of the block
    (e.g. staging parameters in shared memory) and its result is passed to ``body`` as ``state``.
    ``body`` may be a list of (body, condition) pairs: a kernel each, the plan launching the one
    whose condition (over ``length``, given ``idx``) holds; the others get an empty grid, which the
    plan skips."""
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    # rows and length: ints, or int64 expressions of symbolic dims (64-bit index math then)
    static = isinstance(rows, int) and isinstance(length, int)
    idx = "int32" if static and rows * length < 2**31 else "int64"
    threads = 32 * WARPS_PER_BLOCK
    kernels = body if isinstance(body, list) else [(body, None)]

    def i(v: Any) -> Any:
        return _const(v, idx)

    def flat_size(b: Any) -> Any:
        n: Any = tirx.const(1, idx)
        for d in b.shape:
            n = n * _const(int(d) if isinstance(d, (int, tirx.IntImm)) else d, idx)
        return n

    def gen_ir(ins: list[Any], out: Any) -> Any:
        with IRBuilder() as ib:
            nblk = tirx.const(-(-rows // WARPS_PER_BLOCK), "int32") if isinstance(rows, int) else \
                tirx.Cast("int32", tirx.floordiv(i(rows) + i(WARPS_PER_BLOCK - 1), i(WARPS_PER_BLOCK)))
            with T.seq_scope():
                for kernel_body, when in kernels:
                    tx = te.thread_axis("threadIdx.x")
                    bx = te.thread_axis("blockIdx.x")
                    blocks = nblk if when is None else tirx.Select(when(i), nblk, tirx.const(0, "int32"))
                    with T.frame_scope([T.attr(bx, "thread_extent", blocks), T.attr(tx, "thread_extent", threads)]):
                        lane = T.bind(tirx.Cast(idx, tx.var) % i(32))
                        row = T.bind(tirx.Cast(idx, bx.var) * i(WARPS_PER_BLOCK) + tirx.Cast(idx, tx.var) // i(32))
                        flat_in = [T.buffer_proxy(T.decl_buffer((flat_size(b),), b.dtype, data=b.data)) for b in ins]
                        flat_out = T.buffer_proxy(T.decl_buffer((i(rows) * i(length),), dtype, data=out.data))
                        state = prologue(tirx.Cast(idx, tx.var), flat_in, i) if prologue is not None else None
                        with T.If(row < i(rows)):
                            with T.Then():
                                if prologue is None:
                                    kernel_body(row, lane, flat_in, flat_out, i)
                                else:
                                    kernel_body(row, lane, flat_in, flat_out, i, state)
            return ib.get()

    out_buf = tirx.decl_buffer(out_shape, dtype, "out_buf", layout=None)
    return te.extern([out_shape], inputs, lambda ins, outs: gen_ir(list(ins), outs[0]), dtype=dtype,
                     out_buffers=[out_buf], name=name, tag=name)


def _load_row(buf: Any, row: Any, lane: Any, length: int, i: Callable[[int], Any]) -> list[Any]:
    """The lane's elements of the row as float32 values: element j * 32 + lane for each j, loaded
    into a local array (registers once nvcc unrolls; let-bound values instead cost TVM's
    SplitHostDevice seconds when there are many)."""
    from tvm import tirx
    from tvm.script.ir_builder import tirx as T

    base = T.bind(row * i(length) + lane)
    n = length // 32
    values = T.buffer_proxy(T.alloc_local((n,), "float32"))
    for j in range(n):
        values[j] = tirx.Cast("float32", buf[base + i(32 * j)])
    return [values[j] for j in range(n)]


def _softmax_in_registers(length: Any, slots: int) -> Callable[..., None]:
    """The body of the register Softmax: a lane's ``slots`` values of the row (element 32 * j +
    lane) loaded once, the max and the sum reduced with warp shuffles, the row written once. When
    ``length`` is exactly 32 * slots (static) no slot is checked; otherwise (a run-time or ragged
    length of at most 32 * slots) slots past the row's end load nothing, add nothing and store
    nothing (a row of only -inf still gives NaN)."""
    from tvm import tirx
    from tvm.script.ir_builder import tirx as T

    exact = isinstance(length, int) and length == 32 * slots
    lowest = tirx.const(LOWEST_FLOAT32, "float32")

    def body(row: Any, lane: Any, ins: list[Any], out: Any, i: Callable[[int], Any]) -> None:
        dtype = out.dtype
        if exact:
            xs = _load_row(ins[0], row, lane, length, i)
            inside = [None] * slots
        else:
            n = T.bind(i(length))
            base = T.bind(row * n + lane)
            inside = [lane + i(32 * j) < n for j in range(slots)]
            values = T.buffer_proxy(T.alloc_local((slots,), "float32"))
            for j in range(slots):
                values[j] = tirx.if_then_else(inside[j], tirx.Cast("float32", ins[0][base + i(32 * j)]), lowest)
            xs = [values[j] for j in range(slots)]
        m = _warp_allreduce(T.bind(_tree(list(xs), tirx.max)), tirx.max)
        # Every slot's exponential is computed and the empty ones zeroed by a select, and every
        # slot is scaled, so that only the loads and the stores are predicated: computed inside a
        # branch per slot, nvcc kept a branch around each exponential and each reciprocal of the
        # sum (its slow path included): 20 branches in the 4-slot kernel against the static
        # kernel's 7. What an empty slot computes (from LOWEST_FLOAT32) the select discards.
        exps = T.buffer_proxy(T.alloc_local((slots,), "float32"))
        for j, v in enumerate(xs):
            exps[j] = tirx.exp(v - m)
            if not exact:
                exps[j] = tirx.Select(inside[j], exps[j], tirx.const(0.0, "float32"))
        es = [exps[j] for j in range(slots)]
        s = _warp_allreduce(T.bind(_tree(list(es), lambda a, b: a + b)), lambda a, b: a + b)
        inv = T.bind(tirx.const(1.0, "float32") / s)
        if exact:   # _load_row bound the row's start for itself; the checked path reuses its own
            base = T.bind(row * i(length) + lane)
        for j, e in enumerate(es):
            if exact:
                out[base + i(32 * j)] = tirx.Cast(dtype, e * inv)
            else:
                exps[j] = e * inv
                with T.If(inside[j]):
                    with T.Then():
                        out[base + i(32 * j)] = tirx.Cast(dtype, exps[j])

    return body


def _fast_softmax(x: Any, rows: Any, length: int) -> Any:
    return _row_extern("softmax.tpat", [x], list(x.shape), x.dtype, rows, length,
                       _softmax_in_registers(length, length // 32))


# Rows of a run-time length (or a ragged static one) up to 32 x these slots a lane are held in
# registers by a kernel of that many slots, the smallest that fits (few slots load nothing); longer
# rows stream. Measured on an H100 at attention's 128 keys (docs/benchmarks.md): the static
# register kernel 2.11 us, the streaming one 2.66.
SHORT_ROW_SLOTS = (4, 16)


def _softmax_any_length(x: Any, rows: Any, length: Any) -> Any:
    """Softmax over rows whose length is a run-time size (an attention score's dynamic key length)
    or is static but ragged or longer than MAX_ROW: a register kernel for each bucket of
    SHORT_ROW_SLOTS, the streaming kernel past them; the plan launches the one the row's length
    falls in (for a static length only that one is generated)."""
    from tvm import tirx

    ranges: list[tuple[int, int | None, Callable[..., None]]] = []   # (above, up to, body)
    above = 0
    for slots in SHORT_ROW_SLOTS:
        ranges.append((above, 32 * slots, _softmax_in_registers(length, slots)))
        above = 32 * slots
    ranges.append((above, None, _streaming_softmax_body(length)))
    if isinstance(length, int):
        body = next(body for _, up_to, body in ranges if up_to is None or length <= up_to)
        return _row_extern("softmax_rows.tpat", [x], list(x.shape), x.dtype, rows, length, body)

    def launched_when(above: int, up_to: int | None) -> Callable[[Callable[[int], Any]], Any]:
        """above < length <= up_to, in the kernel's index type (the first range has no lower
        bound, the last no upper)."""
        return lambda i: tirx.all(*([i(above) < i(length)] if above else []),
                                  *([i(length) <= i(up_to)] if up_to is not None else []))

    return _row_extern("softmax_rows.tpat", [x], list(x.shape), x.dtype, rows, length,
                       [(body, launched_when(above, up_to)) for above, up_to, body in ranges])


def _streaming_softmax_body(length: Any) -> Callable[..., None]:
    """The body of the streaming Softmax, for rows longer than the register kernels hold (any
    length): one warp per row, the row read in chunks of 128 (4 values a lane, loaded together). The
    first pass keeps each lane's running max and sum of exponentials, rescaled once a chunk, and
    keeps the last chunk's values; the lanes then agree on the row's max (shuffles), rescale their
    sums to it once and add them up (shuffles). The second pass reads the earlier chunks again (from
    L1/L2) and takes the last from registers. A row of only -inf gives NaN, as ONNX's reference
    does."""
    from tvm import tirx
    from tvm.script.ir_builder import tirx as T

    chunk = 4   # values a lane loads at once: one rescale of its running sum per chunk
    lowest = tirx.const(LOWEST_FLOAT32, "float32")
    zero = tirx.const(0.0, "float32")

    def body(row: Any, lane: Any, ins: list[Any], out: Any, i: Callable[[int], Any]) -> None:
        src, dtype = ins[0], out.dtype
        n = T.bind(i(length))
        base = T.bind(row * n)
        chunks = T.bind(tirx.floordiv(n + i(32 * chunk - 1), i(32 * chunk)))
        acc = T.buffer_proxy(T.alloc_local((2,), "float32"))   # running max, running sum
        last = T.buffer_proxy(T.alloc_local((chunk,), "float32"))   # the latest chunk's values
        acc[0] = lowest
        acc[1] = zero
        with T.serial(0, chunks) as it:
            first = T.bind(i(it) * i(32 * chunk) + lane)
            inside = [first + i(32 * k) < n for k in range(chunk)]
            for k in range(chunk):
                last[k] = tirx.if_then_else(inside[k], tirx.Cast("float32", src[base + first + i(32 * k)]), lowest)
            m_new = T.bind(tirx.max(acc[0], _tree([last[k] for k in range(chunk)], tirx.max)))
            # slots past the row add nothing (else a row of -inf would sum their exp(0) = 1s); a
            # select, not a branch around each exponential (see _softmax_in_registers)
            terms = [tirx.Select(inside[k], T.bind(tirx.exp(last[k] - m_new)), zero) for k in range(chunk)]
            acc[1] = acc[1] * tirx.exp(acc[0] - m_new) + _tree(terms, lambda a, b: a + b)
            acc[0] = m_new
        row_max = _warp_allreduce(acc[0], tirx.max)
        total = _warp_allreduce(T.bind(acc[1] * tirx.exp(acc[0] - row_max)), lambda a, b: a + b)
        inv = T.bind(tirx.const(1.0, "float32") / total)
        # every chunk before the last lies wholly inside the row: no bounds checks there
        with T.serial(0, chunks - i(1)) as it:
            first = T.bind(i(it) * i(32 * chunk) + lane)
            vals = [T.bind(tirx.Cast("float32", src[base + first + i(32 * k)])) for k in range(chunk)]
            for k, v in enumerate(vals):
                out[base + first + i(32 * k)] = tirx.Cast(dtype, tirx.exp(v - row_max) * inv)
        tail = T.bind((chunks - i(1)) * i(32 * chunk) + lane)
        for k in range(chunk):   # scaled outside the stores' branches, like the register kernels
            last[k] = tirx.exp(last[k] - row_max) * inv
        for k in range(chunk):
            with T.If(tail + i(32 * k) < n):
                with T.Then():
                    out[base + tail + i(32 * k)] = tirx.Cast(dtype, last[k])

    return body


def _fast_layer_norm(x: Any, gamma: Any, beta: Any, rows: Any, length: int, eps: float, center: bool,
                     scale: bool) -> Any:
    from tvm import tirx
    from tvm.script.ir_builder import tirx as T

    dtype = x.dtype

    n = length // 32
    threads = 32 * WARPS_PER_BLOCK

    def stage(t: Any, ins: list[Any], i: Callable[[int], Any]) -> Any:
        """Scale and bias into shared memory once per block (the block's warps share them)."""
        params = T.buffer_proxy(T.alloc_shared((2 * length,), "float32"))
        with T.serial(0, -(-length // threads)) as j:
            c = t + tirx.Cast("int32" if isinstance(rows, int) and rows * length < 2**31 else "int64", j) * i(threads)
            with T.If(c < i(length)):
                with T.Then():
                    params[c] = tirx.Cast("float32", ins[1][c]) if scale else tirx.const(1.0, "float32")
                    params[c + i(length)] = tirx.Cast("float32", ins[2][c]) if center else tirx.const(0.0, "float32")
        T.evaluate(T.tvm_storage_sync("shared"))
        return params

    def body(row: Any, lane: Any, ins: list[Any], out: Any, i: Callable[[int], Any], params: Any) -> None:
        xs = _load_row(ins[0], row, lane, length, i)
        add = lambda a, b: a + b  # noqa: E731
        inv_len = tirx.const(1.0 / length, "float32")
        mean = T.bind(_warp_allreduce(T.bind(_tree(list(xs), add)), add) * inv_len)
        centered = T.buffer_proxy(T.alloc_local((len(xs),), "float32"))
        for j, v in enumerate(xs):
            centered[j] = v - mean
        ds = [centered[j] for j in range(len(xs))]
        var = T.bind(_warp_allreduce(T.bind(_tree([d * d for d in ds], add)), add) * inv_len)
        rstd = T.bind(tirx.rsqrt(var + tirx.const(eps, "float32")))
        base = T.bind(row * i(length) + lane)
        for j, d in enumerate(ds):
            col = lane + i(32 * j)
            y = d * rstd
            if scale:
                y = y * params[col]
            if center:
                y = y + params[col + i(length)]
            out[base + i(32 * j)] = tirx.Cast(dtype, y)

    return _row_extern("layer_norm.tpat", [x, gamma, beta], list(x.shape), dtype, rows, length, body,
                       prologue=stage)


def _row_covered(ty: Any, dtype: str) -> tuple[Any, int] | None:
    """(rows, length) when a last-axis row kernel covers this type: a static row of a multiple of
    32 up to MAX_ROW; rows an int, or an expression where leading dims are symbolic."""
    rank = len(ty.shape.values) if getattr(getattr(ty, "shape", None), "values", None) is not None else 0
    split = _leading(ty, rank - 1) if rank else None
    if split is None or dtype not in FLOAT_DTYPES:
        return None
    rows, (length,) = split
    if length <= 0 or length % 32 or length > MAX_ROW:
        return None
    if isinstance(rows, int) and (rows <= 0 or -(-rows // WARPS_PER_BLOCK) >= 2**31):
        return None
    return rows, length


def _rows_and_length(dims: list[Any]) -> tuple[Any, Any]:
    """(the number of rows, the row's length) of a last-axis row-wise op: ints where the dims are
    static, int64 expressions where one is symbolic."""
    from tvm import tirx

    def as64(d: Any) -> Any:
        return tirx.const(int(d), "int64") if isinstance(d, (int, tirx.IntImm)) else tirx.Cast("int64", d)

    static = [static_dim(d) for d in dims]
    if all(d is not None for d in static):
        return prod(static[:-1]), static[-1]
    rows: Any = tirx.const(1, "int64")
    for d in dims[:-1]:
        rows = rows * as64(d)
    return rows, as64(dims[-1])


def _legalize_softmax(bb: Any, call: Any) -> Any:
    x = call.args[0]
    values = getattr(getattr(x.ty, "shape", None), "values", None)
    rank = len(values) if values is not None else 0
    if not rank or (int(call.attrs.axis) % rank) != rank - 1 or str(x.ty.dtype) not in FLOAT_DTYPES:
        return default_legalizer("relax.nn.softmax")(bb, call)
    covered = _row_covered(x.ty, str(x.ty.dtype))
    if covered is None:
        # A row of run-time length (attention's scores over a dynamic sequence) or one too long
        # or ragged for _fast_softmax: register kernels for short rows, the streaming one beyond.
        return call_kernel(bb, "softmax_rows_tpat", [x], ["x"],
                           lambda xp: _softmax_any_length(xp, *_rows_and_length(list(xp.shape))))
    length = covered[1]
    # rows from the placeholder: call_te gives the PrimFunc its own symbols
    return call_kernel(bb, "softmax_tpat", [x], ["x"], lambda xp: _fast_softmax(xp, _leading(list(xp.shape), len(xp.shape) - 1)[0], length))


def _legalize_layer_norm(bb: Any, call: Any) -> Any:
    x, gamma, beta = call.args
    a = call.attrs
    covered = _row_covered(x.ty, str(x.ty.dtype))
    if covered is None:
        return default_legalizer("relax.nn.layer_norm")(bb, call)
    rank = len(x.ty.shape.values)
    axes = [int(v) % rank for v in a.axes]
    length = covered[1]
    same = all(str(t.ty.dtype) == str(x.ty.dtype) and static_shape(t.ty) == [length] for t in (gamma, beta))
    if axes != [rank - 1] or not same:
        return default_legalizer("relax.nn.layer_norm")(bb, call)
    eps, center, scale = float(a.epsilon), bool(a.center), bool(a.scale)
    return call_kernel(bb, "layer_norm_tpat", [x, gamma, beta], ["x", "gamma", "beta"],
                 lambda xp, gp, bp: _fast_layer_norm(xp, gp, bp, _leading(list(xp.shape), len(xp.shape) - 1)[0], length,
                                                     eps, center, scale))


# --- Reductions over an axis with contiguous elements after it ------------------------------------

def reduce_covered(shape: list[int] | None, axes: list[int], dtype: str) -> tuple[int, int, int] | None:
    """(outer, reduced, inner) when TPAT's axis reduction covers these axes (consecutive, not the
    innermost, at least 32 contiguous elements after them)."""
    if shape is None or not shape or not axes or dtype not in FLOAT_DTYPES:
        return None
    axes = sorted(a % len(shape) for a in axes)
    if axes != list(range(axes[0], axes[-1] + 1)):
        return None
    outer = prod(shape[:axes[0]])
    reduced = prod(shape[axes[0]:axes[-1] + 1])
    inner = prod(shape[axes[-1] + 1:])
    if inner < 32 or reduced < 1 or outer < 1 or outer * reduced * inner >= 2**31:
        return None
    if outer * (-(-inner // 32)) >= 2**31:
        return None
    return outer, reduced, inner


def _fast_reduce(x: Any, kind: str, outer: Any, reduced: int, inner: int, out_shape: list[Any]) -> Any:
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    dtype = x.dtype
    split = next(s for s in (REDUCE_SPLIT, 4, 2, 1) if s <= reduced)
    per_thread = -(-reduced // split)
    col_blocks = -(-inner // 32)
    # outer: an int, or an int64 expression of symbolic leading dims (64-bit index math then)
    idx = "int32" if isinstance(outer, int) else "int64"
    acc_dtype = "float32"

    def i(v: Any) -> Any:
        return _const(v, idx)

    blocks = outer * col_blocks if isinstance(outer, int) else tirx.Cast("int32", i(outer) * i(col_blocks))

    def combine(a: Any, b: Any) -> Any:
        if kind == "max":
            return tirx.max(a, b)
        if kind == "min":
            return tirx.min(a, b)
        return a + b

    def gen_ir(in_ptr: Any, out_ptr: Any) -> Any:
        with IRBuilder() as ib:
            tx = te.thread_axis("threadIdx.x")
            ty = te.thread_axis("threadIdx.y")
            bx = te.thread_axis("blockIdx.x")
            with T.frame_scope([T.attr(bx, "thread_extent", blocks), T.attr(tx, "thread_extent", 32),
                                T.attr(ty, "thread_extent", split)]):
                src = T.buffer_proxy(T.decl_buffer((i(outer) * i(reduced * inner),), dtype, data=in_ptr.data))
                dst = T.buffer_proxy(T.decl_buffer((i(outer) * i(inner),), dtype, data=out_ptr.data))
                part = T.buffer_proxy(T.alloc_shared((split, 32), acc_dtype))
                b = tirx.Cast(idx, bx.var)
                o = T.bind(b // i(col_blocks))
                col = T.bind((b % i(col_blocks)) * i(32) + tirx.Cast(idx, tx.var))
                r0 = tirx.Cast(idx, ty.var)
                with T.If(col < i(inner)):
                    with T.Then():
                        base = T.bind(o * i(reduced * inner) + r0 * i(inner) + col)
                        first = T.bind(tirx.Cast(acc_dtype, src[base]))
                        vals = [first]
                        for j in range(1, per_thread):
                            r = r0 + i(split * j)
                            v = tirx.Cast(acc_dtype, src[base + i(split * j * inner)]) if split * (j + 1) <= reduced \
                                else tirx.if_then_else(r < i(reduced), tirx.Cast(acc_dtype, src[tirx.min(
                                    base + i(split * j * inner), i(outer) * i(reduced * inner) - i(1))]),
                                    first if kind != "sum" else tirx.const(0.0, acc_dtype))
                            vals.append(T.bind(v))
                        part[tirx.Cast(idx, ty.var), tirx.Cast(idx, tx.var)] = _tree(vals, combine)
                T.evaluate(T.tvm_storage_sync("shared"))
                with T.If(tirx.all(tirx.Cast(idx, ty.var) == i(0), col < i(inner))):
                    with T.Then():
                        parts = [part[k, tirx.Cast(idx, tx.var)] for k in range(split)]
                        dst[o * i(inner) + col] = tirx.Cast(dtype, _tree(parts, combine))
            return ib.get()

    out_buf = tirx.decl_buffer(out_shape, dtype, "out_buf", layout=None)
    return te.extern([out_shape], [x], lambda ins, outs: gen_ir(ins[0], outs[0]), dtype=dtype,
                     out_buffers=[out_buf], name=f"reduce_{kind}.tpat", tag=f"reduce_{kind}.tpat")


def _infinite_identity_reduce(kind: str, tvm_default: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """TVM's max/min of a float tensor starts from the dtype's lowest/highest finite value, so a
    max over only -inf gives -3.4e38, not -inf (ONNX's): attention's check for a fully masked row
    (``ReduceMax(bias) == -inf``, then 0 for that row) never fires, and the row stays NaN. Over
    floats, this is the same reduction starting from -inf/+inf (TVM's schedules take it alike);
    other dtypes keep TVM's."""

    def legalize(bb: Any, call: Any) -> Any:
        from tvm import te, tirx

        x = call.args[0]
        dtype = str(x.ty.dtype)
        values = getattr(getattr(x.ty, "shape", None), "values", None)
        if not dtype.startswith(("float", "bfloat")) or values is None:
            return tvm_default(bb, call)
        rank = len(values)
        axes = sorted(int(a) % rank for a in call.attrs.axis) if call.attrs.axis is not None else list(range(rank))
        keep = bool(call.attrs.keepdims)
        combine = tirx.max if kind == "max" else tirx.min
        start = float("-inf") if kind == "max" else float("inf")
        reducer = te.comm_reducer(lambda a, b: combine(a, b), lambda t: tirx.const(start, t), name=f"{kind}_from_inf")

        def make(xp: Any) -> Any:
            dims = list(xp.shape)
            out_shape = [1 if k in axes else d for k, d in enumerate(dims) if keep or k not in axes]
            raxes = {k: te.reduce_axis((0, dims[k]), name=f"r{k}") for k in axes}

            def body(*idx: Any) -> Any:
                it = iter(idx)
                full = []
                for k in range(rank):
                    if k in raxes:
                        if keep:
                            next(it)
                        full.append(raxes[k])
                    else:
                        full.append(next(it))
                return reducer(xp[tuple(full)], axis=[raxes[k] for k in axes])

            return te.compute(out_shape, body, name=f"{kind}_red")

        return bb.call_te(make, x, primfunc_name_hint=kind)

    return legalize


def _reduce_legalizer(kind: str, fallback: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def legalize(bb: Any, call: Any) -> Any:
        x = call.args[0]
        values = getattr(getattr(x.ty, "shape", None), "values", None)
        out_values = getattr(getattr(call.ty, "shape", None), "values", None)
        if values is None or out_values is None or not values:
            return fallback(bb, call)
        rank = len(values)
        axis = call.attrs.axis
        axes = sorted(int(a) % rank for a in axis) if axis is not None else list(range(rank))
        if not axes:
            return fallback(bb, call)
        # Leading dims (before the reduced ones) may be symbolic: a dynamic batch is a run-time
        # count of blocks; the reduced and inner dims decide the kernel's shape and stay static.
        split = _leading(x.ty, axes[0])
        if split is None:
            return fallback(bb, call)
        outer, tail = split
        covered = reduce_covered([1] + tail, [a - axes[0] + 1 for a in axes], str(x.ty.dtype))
        if covered is None or (isinstance(outer, int) and outer * covered[1] * covered[2] >= 2**31):
            return fallback(bb, call)
        _, reduced, inner = covered
        keep = call.attrs.keepdims if hasattr(call.attrs, "keepdims") else False

        def make(xp: Any) -> Any:
            # shapes from the placeholder: call_te gives the PrimFunc its own symbols
            dims = list(xp.shape)
            out_shape = [d if k not in axes else 1 for k, d in enumerate(dims) if keep or k not in axes]
            return _fast_reduce(xp, kind, _leading(dims, axes[0])[0], reduced, inner, out_shape)

        return call_kernel(bb, f"reduce_{kind}_tpat", [x], ["x"], make)

    return legalize


def legalize_map() -> dict[str, Callable[[Any, Any], Any]]:
    """TPAT's row-wise and axis-reduction legalizations (TVM's own where they do not apply)."""
    return {
        "relax.nn.softmax": _legalize_softmax,
        "relax.nn.layer_norm": _legalize_layer_norm,
        **{f"relax.{k}": _reduce_legalizer(k, _infinite_identity_reduce(k, default_legalizer(f"relax.{k}")))
           for k in ("max", "min")},
        "relax.sum": _reduce_legalizer("sum", default_legalizer("relax.sum")),
    }
