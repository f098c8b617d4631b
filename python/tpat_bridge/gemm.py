"""TPAT's float32 matrix multiply (``relax.matmul``): a register-tiled GEMM kernel with run-time
sizes, for attention's batched MatMuls over a dynamic batch and sequence and for a dynamic
activation against a weight.

TVM's own lowering (dlight's GEMM rule) reaches 0.56x-0.77x of cuBLAS's float32 GEMM on an H100
static and adds bound checks for symbolic dims (docs/benchmarks.md). This kernel is the classic
SIMT GEMM: a block computes a BM x BN tile of C over BK-deep slices of A and B staged in shared
memory (A transposed there, so that a thread's column of A is one 16-byte load), each thread an 8 x
8 register tile split into 4 x 4 quarters half a tile apart (consecutive threads read consecutive
16-byte words of shared memory: no bank conflicts), the next slice's global loads issued before the
current slice's multiply-adds (register prefetch, their latency hidden behind the arithmetic) and
staged into the other half of a double buffer. Every size may be a run-time value; loads past an
edge read 0, stores past it are skipped; index math is 32-bit where every size is static and fits.
The tile is chosen per problem (choose_tile: the largest that fills the GPU): at generation for
static sizes; for symbolic ones the plan holds a kernel per tile and launches the one the sizes
choose (the others' grids are empty and skipped).

Covered: float32 A [..., M, K] times B [..., K, N] where B is a matrix (its batch dims, if any, are
all 1: a weight; A's batch dims then fold into M) or both have the same batch dims (attention).
Everything else keeps TVM's lowering, as do small static problems where a GEMV schedule is better.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .lowering import call_kernel_own_index_types, default_legalizer, prod, static_dim

@dataclass(frozen=True)
class Tile:
    """A block's tile of C (bm x bn), a thread's register tile (tm x tn, in quarters of 4 x 4 half a
    tile apart when 8), the depth of a staged slice (bk) and the padding of A's shared rows (a_pad
    floats: a multiple of 4 keeps the float4 reads aligned and spreads the transposing stores over
    the banks)."""

    bm: int
    bn: int
    tm: int
    tn: int
    bk: int = 8
    a_pad: int = 0

    @property
    def threads_m(self) -> int:
        return self.bm // self.tm

    @property
    def threads_n(self) -> int:
        return self.bn // self.tn

    @property
    def threads(self) -> int:
        return self.threads_m * self.threads_n

    @property
    def a_stride(self) -> int:
        """Floats between two k of A's shared slice."""
        return self.bm + self.a_pad


# The tiles, largest first: a problem takes the first of which it has at least FILL_BLOCKS blocks
# (enough to fill the GPU), else the last; chosen at generation for static sizes, in the launch
# plan at run time otherwise (choose_tile). Measured one by one on an H100, static and symbolic
# (scripts/bench-gemm-tiles.py; docs/benchmarks.md): at attention's sizes each tile here was the
# fastest, or within 9% of it, where this rule picks it. A 128 x 128 tile
# (8 x 8 a thread, 16-deep slices) was slower than 128 x 64 everywhere but the symbolic score
# MatMul at 64x512 (1.5% faster there), and compiled for static sizes it was slower at every size
# (scores 64x512: 946 us against 749).
TILES = (Tile(128, 64, 8, 8, 8, 4), Tile(64, 32, 4, 4, 16, 4))
# Fewer blocks of a tile than this take the next smaller one: twice an H100's 132 SMs.
FILL_BLOCKS = 264
# Registers a thread of an 8 x 8 tile may use (through __launch_bounds__' blocks per SM): unbounded,
# ptxas gives the symbolic 128 x 64 kernel 139, which cuts by a quarter the blocks an SM holds; on
# the H100 it ran slower than its static twin at 125 (docs/benchmarks.md; context at 64x512 781
# against 633 us). Bounded, it fits 128 without spilling.
MAX_REGISTERS = 128
REGISTER_FILE = 65536   # 32-bit registers of an SM
MIN_ROWS = 32           # a static problem with fewer rows (M times batch) or columns keeps TVM's


def choose_tile(tiles: tuple[Tile, ...], blocks: Callable[[Tile], Any],
                select: Callable[[Any, Any, Any], Any] = lambda fills, this, other: this if fills else other) -> Any:
    """The index in ``tiles`` of the tile a problem takes: the first with at least FILL_BLOCKS
    blocks (``blocks(tile)``), else the last. With static sizes an int; with symbolic ones, given
    TIR's select, the expression the launch plan evaluates at run time."""
    chosen: Any = len(tiles) - 1
    for j in reversed(range(len(tiles) - 1)):
        chosen = select(blocks(tiles[j]) >= FILL_BLOCKS, j, chosen)
    return chosen


def _dims(ty: Any) -> list[Any] | None:
    values = getattr(getattr(ty, "shape", None), "values", None)
    return None if values is None else list(values)


def _same(a: Any, b: Any) -> bool:
    """Two dims known equal: the same constant or the same symbol."""
    from tvm import tirx

    sa, sb = static_dim(a), static_dim(b)
    if sa is not None or sb is not None:
        return sa == sb
    return isinstance(a, tirx.Var) and a.same_as(b)


def covered(a_ty: Any, b_ty: Any) -> str | None:
    """"matrix" (B a weight: A's batch folds into M), "batched" (same batch dims), or None."""
    da, db = _dims(a_ty), _dims(b_ty)
    if da is None or db is None or len(da) < 2 or len(db) < 2:
        return None
    if str(a_ty.dtype) != "float32" or str(b_ty.dtype) != "float32":
        return None
    # two symbolic depths are equal by the frontend's own check; a static one must match
    if not _same(da[-1], db[-2]) and not (static_dim(da[-1]) is None and static_dim(db[-2]) is None):
        return None
    rows, n = [static_dim(d) for d in da[:-1]], db[-1]
    if all(r is not None for r in rows) and prod(rows) < MIN_ROWS:
        return None
    if static_dim(n) is not None and static_dim(n) < MIN_ROWS:
        return None
    if all(static_dim(d) == 1 for d in db[:-2]):
        return "matrix" if len(db) <= len(da) else None
    if len(da) == len(db) and all(_same(x, y) for x, y in zip(da[:-2], db[:-2])):
        return "batched"
    return None


def _gemm(a: Any, b: Any, form: str) -> Any:
    """The te.extern computing A @ B (see the module docstring); sizes from the placeholders."""
    import tvm
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    da, db = list(a.shape), list(b.shape)
    k_dim, n_dim = da[-1], db[-1]
    if form == "matrix":
        batch_dims, m_dims = [], da[:-1]
    else:
        batch_dims, m_dims = da[:-2], da[-2:-1]
    out_shape = [*da[:-1], n_dim]
    static = all(static_dim(d) is not None for d in [*da, *db])

    def flat(dims: list[Any]) -> int:      # of static dims
        return prod([static_dim(d) for d in dims])

    idx = "int32" if static and max(flat(da), flat(db), flat(out_shape)) < 2**31 else "int64"

    def i(v: Any) -> Any:
        return tirx.const(v, idx) if isinstance(v, int) else tirx.Cast(idx, v)

    def size(d: Any) -> Any:
        """A dim as an index value: a constant, or the symbol cast to the index type."""
        return i(static_dim(d)) if static_dim(d) is not None else i(d)

    def product(dims: list[Any]) -> Any:
        out: Any = i(1)
        for d in dims:
            out = out * size(d)
        return out

    if static:
        batch_s, m_s, n_s = flat(batch_dims), flat(m_dims), static_dim(n_dim)
        tiles = [TILES[choose_tile(TILES, lambda t: batch_s * -(-m_s // t.bm) * -(-n_s // t.bn))]]
    else:
        tiles = list(dict.fromkeys(TILES))

    def gen_ir(ins: list[Any], out: Any) -> Any:
        a_buf, b_buf = ins
        with IRBuilder() as ib:
            m = product(m_dims)
            n, k = size(n_dim), size(k_dim)
            batch = product(batch_dims)

            def grid(tile: Tile) -> tuple[Any, Any]:
                tiles_n = tirx.truncdiv(n + i(tile.bn - 1), i(tile.bn))
                return tiles_n, tirx.truncdiv(m + i(tile.bm - 1), i(tile.bm))

            def register_cap(tile: Tile) -> list[Any]:
                """__launch_bounds__' blocks per SM for an 8 x 8 thread tile (see MAX_REGISTERS); a 4 x 4
                one needs about 70 registers, and a bound would only let ptxas spend more of them."""
                if tile.tm * tile.tn < 64:
                    return []
                return [T.attr(tirx.const(0, "int32"), "tirx.launch_bounds_min_blocks_per_sm",
                               tirx.const(REGISTER_FILE // (tile.threads * MAX_REGISTERS), "int32"))]

            def kernel(tile: Tile, active: Any) -> None:
                """The kernel of one tile; ``active`` (None: the only kernel) empties its grid when false."""
                threads = tile.threads
                tiles_n, tiles_m = grid(tile)
                blocks_x, blocks_y = batch * tiles_n, tiles_m
                if active is not None:
                    # both empty when another tile is chosen: a grid too tall for this tile must not fail
                    # the launch check of a kernel that does not run
                    blocks_x, blocks_y = tirx.Select(active, blocks_x, i(0)), tirx.Select(active, blocks_y, i(0))
                bx, by, tx = te.thread_axis("blockIdx.x"), te.thread_axis("blockIdx.y"), te.thread_axis("threadIdx.x")
                with T.frame_scope([T.attr(bx, "thread_extent", tirx.Cast("int32", blocks_x)),
                                    T.attr(by, "thread_extent", tirx.Cast("int32", blocks_y)),
                                    T.attr(tx, "thread_extent", threads), *register_cap(tile)]):
                    A = T.buffer_proxy(T.decl_buffer((product(da),), "float32", data=a_buf.data))
                    B = T.buffer_proxy(T.decl_buffer((product(db),), "float32", data=b_buf.data))
                    C = T.buffer_proxy(T.decl_buffer((product(out_shape),), "float32", data=out.data))
                    # two slices each: [buffer][k][m] and [buffer][k][n]
                    a_tile = T.buffer_proxy(T.alloc_shared((2 * tile.bk * tile.a_stride,), "float32"))
                    b_tile = T.buffer_proxy(T.alloc_shared((2 * tile.bk * tile.bn,), "float32"))
                    acc = T.buffer_proxy(T.alloc_local((tile.tm * tile.tn,), "float32"))
                    a_frag = T.buffer_proxy(T.alloc_local((tile.tm,), "float32"))
                    b_frag = T.buffer_proxy(T.alloc_local((tile.tn,), "float32"))
                    a_next = T.buffer_proxy(T.alloc_local((tile.bm * tile.bk // threads,), "float32"))
                    b_next = T.buffer_proxy(T.alloc_local((tile.bk * tile.bn // threads,), "float32"))
                    t = T.bind(tirx.Cast("int32", tx.var))
                    blk = T.bind(i(bx.var))
                    # C's division (truncdiv): every operand is non-negative, and floor division by a
                    # run-time value costs sign fix-ups on every index. By a run-time tile count it
                    # is 32-bit: the block index and the count are below 2^31 (the plan checks the
                    # grid against that). In 64 bits nvcc tests the operands' width and branches to
                    # an inline 32-bit division or, past 2^32, a called routine; this is the
                    # division alone.
                    if idx == "int64" and static_dim(n_dim) is None:
                        blk32, tiles_n32 = T.bind(tirx.Cast("int32", bx.var)), T.bind(tirx.Cast("int32", tiles_n))
                        z = T.bind(i(tirx.truncdiv(blk32, tiles_n32)))
                        n_tile = T.bind(i(tirx.truncmod(blk32, tiles_n32)))
                    else:
                        z = T.bind(tirx.truncdiv(blk, tiles_n))
                        n_tile = tirx.truncmod(blk, tiles_n)
                    # 64-bit math only for where a block's matrices start (once a slice); inside a tile
                    # 32-bit offsets from base pointers: rows and slices are at most 128 apart, so an
                    # offset fits while K and N are below 2^24
                    a_base = T.bind(z * m * k)
                    b_base = T.bind(z * k * n) if form == "batched" else i(0)
                    c_base = T.bind(z * m * n)
                    k32, n32 = T.bind(tirx.Cast("int32", k)), T.bind(tirx.Cast("int32", n))
                    zero = tirx.const(0.0, "float32")
                    pointer = tvm.ir.PointerType(tvm.ir.PrimType("float32"))

                    def view(buf: Any, at: Any, extent: Any) -> Any:
                        """``buf`` from element ``at`` on, indexed in 32 bits."""
                        return T.buffer_proxy(T.decl_buffer((extent,), "float32",
                                                            data=T.bind(tirx.address_of(buf[at]), type_annotation=pointer)))

                    def body(tile: Tile) -> None:
                        bm, bn, tm, tn, bk, a_stride = tile.bm, tile.bn, tile.tm, tile.tn, tile.bk, tile.a_stride
                        a_loads, b_loads = bm * bk // threads, bk * bn // threads
                        slices = T.bind(tirx.Cast("int32", tirx.truncdiv(k + i(bk - 1), i(bk))))
                        row_t = T.bind(t // tile.threads_n)     # the thread's rows: quarter-tiles at row_t * 4
                        col_t = T.bind(t % tile.threads_n)      # and columns at col_t * 4
                        m0 = T.bind(i(by.var) * i(bm))
                        n0 = T.bind(n_tile * i(bn))
                        rows = T.bind(tirx.Cast("int32", tirx.min(m - m0, i(bm))))   # of this tile, in C
                        cols = T.bind(tirx.Cast("int32", tirx.min(n - n0, i(bn))))

                        def a_elem(r: int) -> tuple[Any, Any]:      # (row in the tile, k in the slice)
                            e = t + r * threads
                            return e // bk, e % bk

                        def b_elem(r: int) -> tuple[Any, Any]:      # (k in the slice, column in the tile)
                            e = t + r * threads
                            return e // bn, e % bn

                        # With run-time sizes, a block whose tile lies wholly inside C (most of
                        # them: every one when the sizes are multiples of the tile) takes a path
                        # with no bounds checks, for each slice wholly inside the depth and for its
                        # stores. The condition is the same for all of the block's threads (no
                        # divergence); without it, ptxas recomputed a predicate per load in every
                        # slice (sm_90 SASS of the 64 x 32 context kernel: 780 instructions a loop
                        # iteration against the static kernel's 658). Static sizes keep one path:
                        # there the checks are constants TVM folds where the tiles fit.
                        whole = None if static else T.bind(tirx.all(rows == bm, cols == bn))

                        def fetch(s: Any) -> None:
                            """Slice ``s``'s share of this thread, into registers."""
                            k0 = T.bind(i(s) * i(bk))
                            depth = T.bind(tirx.Cast("int32", tirx.min(k - k0, i(bk))))
                            a_at = view(A, a_base + m0 * k + k0, bm * k32)
                            b_at = view(B, b_base + k0 * n + n0, bk * n32)

                            def load(checked: bool) -> None:
                                for r in range(a_loads):
                                    row, kk = a_elem(r)
                                    value = a_at[row * k32 + kk]
                                    a_next[r] = tirx.if_then_else(tirx.all(row < rows, kk < depth), value, zero) if checked else value
                                for r in range(b_loads):
                                    kk, col = b_elem(r)
                                    value = b_at[kk * n32 + col]
                                    b_next[r] = tirx.if_then_else(tirx.all(kk < depth, col < cols), value, zero) if checked else value

                            if whole is None:
                                load(checked=True)
                                return
                            with T.If(tirx.all(whole, depth == bk)):
                                with T.Then():
                                    load(checked=False)
                                with T.Else():
                                    load(checked=True)

                        def stage(buffer: int) -> None:
                            for r in range(a_loads):
                                row, kk = a_elem(r)
                                a_tile[buffer * (bk * a_stride) + kk * a_stride + row] = a_next[r]
                            for r in range(b_loads):
                                kk, col = b_elem(r)
                                b_tile[buffer * (bk * bn) + kk * bn + col] = b_next[r]

                        def step(s: Any, current: int) -> None:
                            """Slice ``s`` (in buffer ``current``): the next one's loads issued, this
                            one's multiply-adds, the next one staged in the other buffer. Two barriers
                            (TVM's ThreadSync would insert the first, as it cannot tell the buffers
                            apart; written here because it inserts none inside a branch)."""
                            with T.If(s + 1 < slices):
                                with T.Then():
                                    fetch(s + 1)
                            for kk in range(bk):
                                a_row = current * (bk * a_stride) + kk * a_stride + row_t * 4
                                b_row = current * (bk * bn) + kk * bn + col_t * 4
                                for quarter in range(tm // 4):
                                    a_frag[tirx.Ramp(quarter * 4, 1, 4)] = a_tile[tirx.Ramp(a_row + quarter * (bm // 2), 1, 4)]
                                for quarter in range(tn // 4):
                                    b_frag[tirx.Ramp(quarter * 4, 1, 4)] = b_tile[tirx.Ramp(b_row + quarter * (bn // 2), 1, 4)]
                                for p in range(tm):
                                    for q in range(tn):
                                        acc[p * tn + q] = acc[p * tn + q] + a_frag[p] * b_frag[q]
                            T.evaluate(T.tvm_storage_sync("shared"))
                            with T.If(s + 1 < slices):
                                with T.Then():
                                    stage(1 - current)
                            T.evaluate(T.tvm_storage_sync("shared"))

                        for q in range(tm * tn):
                            acc[q] = zero
                        fetch(tirx.const(0, "int32"))
                        stage(0)
                        T.evaluate(T.tvm_storage_sync("shared"))
                        # two slices an iteration, so that each reads a buffer known at compile time
                        with T.serial(tirx.const(0, "int32"), tirx.truncdiv(slices + 1, 2)) as pair:
                            step(pair * 2, 0)
                            with T.If(pair * 2 + 1 < slices):
                                with T.Then():
                                    step(pair * 2 + 1, 1)
                        c_at = view(C, c_base + m0 * n + n0, bm * n32)

                        def store(checked: bool) -> None:
                            for p in range(tm):
                                row = T.bind(tirx.const((p // 4) * (bm // 2) + p % 4, "int32") + row_t * 4)
                                cols_of_row = [tirx.const((q // 4) * (bn // 2) + q % 4, "int32") + col_t * 4
                                               for q in range(tn)]
                                if not checked:
                                    for q, col in enumerate(cols_of_row):
                                        c_at[row * n32 + col] = acc[p * tn + q]
                                    continue
                                with T.If(row < rows):
                                    with T.Then():
                                        for q, col in enumerate(cols_of_row):
                                            with T.If(col < cols):
                                                with T.Then():
                                                    c_at[row * n32 + col] = acc[p * tn + q]

                        if whole is None:
                            store(checked=True)
                        else:
                            with T.If(whole):
                                with T.Then():
                                    store(checked=False)
                                with T.Else():
                                    store(checked=True)

                    body(tile)

            # Symbolic sizes: a kernel per tile, launched only when it is the one choose_tile
            # would pick at these sizes (the others get an empty grid, which the plan skips).
            # One kernel holding every tile's body would take the largest body's registers, and
            # so its occupancy, for all of them.
            def select(fills: Any, this: int, other: Any) -> Any:
                return tirx.Select(fills, i(this), i(other) if isinstance(other, int) else other)

            chosen = choose_tile(tuple(tiles), lambda t: batch * grid(t)[0] * grid(t)[1], select)
            with T.seq_scope():
                for j, tile in enumerate(tiles):
                    kernel(tile, None if len(tiles) == 1 else tirx.EQ(chosen, i(j)))
            return ib.get()

    out_buf = tirx.decl_buffer(out_shape, "float32", "out_buf", layout=None)
    return te.extern([out_shape], [a, b], lambda ins, outs: gen_ir(list(ins), outs[0]), dtype="float32",
                     out_buffers=[out_buf], name="matmul.tpat", tag="matmul.tpat")


def legalize_matmul(bb: Any, call: Any) -> Any:
    """``relax.matmul``: TPAT's GEMM where ``covered``, else TVM's."""
    a, b = call.args
    form = covered(a.ty, b.ty)
    if form is None or str(call.attrs.out_dtype) not in ("None", "", "void", "float32"):
        return default_legalizer("relax.matmul")(bb, call)
    return call_kernel_own_index_types(bb, "matmul_tpat", [a, b], ["a", "b"], lambda ap, bp: _gemm(ap, bp, form))
