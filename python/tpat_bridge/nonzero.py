"""TPAT's NonZero: a data-dependent output shape through a size output.

TVM lowers ONNX NonZero to ``relax.run.nonzero``, a host function that a plugin cannot call, and
its output shape ``[rank, K]`` depends on the values of the input. TensorRT 10's IPluginV3 can
declare such a shape: the plugin has one more output, a 0-D int32 *size tensor* holding K, and the
data-dependent dim is ``IExprBuilder::declareSizeTensor(sizeOutput, opt, upper)``; TensorRT sizes
the buffer for ``upper`` and reads K after the launch. So TPAT's converter gives TVM a function of
static (or input-symbolic) shapes: the indices at their upper bound ``[rank, numel]`` (only the
first ``rank * K`` elements, packed as ``[rank, K]``, are the result) and K.

Three kernels, one thread per 4 consecutive elements, 1024 elements per block:
1. each block counts its non-zero elements;
2. one block turns the counts into each block's first output position (an exclusive scan over
   the blocks, 1024 at a time) and writes K;
3. each block recomputes its flags, scans its threads' counts in shared memory, and writes the
   coordinates of its non-zero elements in row-major order (ONNX's order) at ``d * K + position``.
"""

from __future__ import annotations

from typing import Any

from .errors import BridgeError
from .operands import as_int64, packed_coordinates, product

_THREADS = 256
_PER_THREAD = 4
_CHUNK = _THREADS * _PER_THREAD
_SCAN_THREADS = 1024


def nonzero_te(x: Any) -> list[Any]:
    """The TE extern of NonZero on ``x``: [indices (rank, numel) int64, K () int32, scratch (blocks,) int32]."""
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    dims = list(x.shape) if len(x.shape) > 0 else [tirx.const(1, "int64")]
    rank = len(dims)
    idx = "int64"
    c, as_idx = as_int64, as_int64

    numel = as_idx(dims[0])
    for d in dims[1:]:
        numel = numel * as_idx(d)
    blocks = tirx.floordiv(numel + c(_CHUNK - 1), c(_CHUNK))

    def gen_ir(x_ptr: Any, out_ptr: Any, count_ptr: Any, scratch_ptr: Any) -> Any:
        views: dict[str, Any] = {}
        zero = tirx.const(False, "bool") if x.dtype == "bool" else tirx.const(0, x.dtype)

        def flag(e: Any) -> Any:
            # Out-of-range elements of the last block read nothing and count nothing.
            value = tirx.if_then_else(e < numel, views["flat"][e], zero)
            return tirx.Cast("int32", value != zero)

        def block_scan(shared: Any, t: Any, width: int) -> None:
            """Inclusive Hillis-Steele scan of ``shared[0:width]`` by ``width`` threads."""
            off = 1
            while off < width:
                prev = T.bind(tirx.Select(t >= off, shared[tirx.max(t - off, 0)], tirx.const(0, "int32")))
                T.evaluate(T.tvm_storage_sync("shared"))
                shared[t] = shared[t] + prev
                T.evaluate(T.tvm_storage_sync("shared"))
                off *= 2

        with IRBuilder() as ib:
            with T.seq_scope():
                # 1-D views of the buffers (the indices' rows have the run-time stride K).
                views["flat"] = T.buffer_proxy(T.decl_buffer((numel,), x.dtype, data=x_ptr.data))
                out = T.buffer_proxy(T.decl_buffer((c(rank) * numel,), "int64", data=out_ptr.data))
                count = T.buffer_proxy(T.decl_buffer((1,), "int32", data=count_ptr.data))
                scratch = T.buffer_proxy(T.decl_buffer((blocks,), "int32", data=scratch_ptr.data))
                # 1. per-block counts
                tx, bx = te.thread_axis("threadIdx.x"), te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx, "thread_extent", tirx.Cast("int32", blocks)),
                                    T.attr(tx, "thread_extent", _THREADS)]):
                    t = tirx.Cast("int32", tx.var)
                    # The first element in a local (TVM's CSE would otherwise leave unused copies
                    # of it, which nvcc warns about).
                    first = T.buffer_proxy(T.alloc_local((1,), idx))
                    first[0] = as_idx(bx.var) * c(_CHUNK) + as_idx(tx.var) * c(_PER_THREAD)
                    base = first[0]
                    part = T.buffer_proxy(T.alloc_shared((_THREADS,), "int32"))
                    mine = flag(base)
                    for k in range(1, _PER_THREAD):
                        mine = mine + flag(base + c(k))
                    part[t] = mine
                    T.evaluate(T.tvm_storage_sync("shared"))
                    stride = _THREADS // 2
                    while stride >= 1:
                        with T.If(t < stride):
                            with T.Then():
                                part[t] = part[t] + part[t + stride]
                        T.evaluate(T.tvm_storage_sync("shared"))
                        stride //= 2
                    with T.If(t == 0):
                        with T.Then():
                            scratch[as_idx(bx.var)] = part[0]
                # 2. exclusive scan of the block counts (in place), K
                tx2, bx2 = te.thread_axis("threadIdx.x"), te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx2, "thread_extent", 1), T.attr(tx2, "thread_extent", _SCAN_THREADS)]):
                    t = tirx.Cast("int32", tx2.var)
                    sums = T.buffer_proxy(T.alloc_shared((_SCAN_THREADS,), "int32"))
                    carry = T.buffer_proxy(T.alloc_local((1,), "int32"))
                    carry[0] = tirx.const(0, "int32")
                    tiles = tirx.floordiv(blocks + c(_SCAN_THREADS - 1), c(_SCAN_THREADS))
                    with T.serial(c(0), tiles) as tile:
                        at = T.buffer_proxy(T.alloc_local((1,), idx))
                        at[0] = as_idx(tile) * c(_SCAN_THREADS) + as_idx(tx2.var)
                        i = at[0]
                        v = T.bind(tirx.if_then_else(i < blocks, scratch[i], tirx.const(0, "int32")))
                        sums[t] = v
                        T.evaluate(T.tvm_storage_sync("shared"))
                        block_scan(sums, t, _SCAN_THREADS)
                        with T.If(i < blocks):
                            with T.Then():
                                scratch[i] = carry[0] + sums[t] - v
                        carry[0] = carry[0] + sums[_SCAN_THREADS - 1]
                        T.evaluate(T.tvm_storage_sync("shared"))
                    with T.If(t == 0):
                        with T.Then():
                            count[0] = carry[0]
                # 3. coordinates of each non-zero element at d * K + position
                tx3, bx3 = te.thread_axis("threadIdx.x"), te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx3, "thread_extent", tirx.Cast("int32", blocks)),
                                    T.attr(tx3, "thread_extent", _THREADS)]):
                    t = tirx.Cast("int32", tx3.var)
                    first3 = T.buffer_proxy(T.alloc_local((1,), idx))
                    first3[0] = as_idx(bx3.var) * c(_CHUNK) + as_idx(tx3.var) * c(_PER_THREAD)
                    base = first3[0]
                    flags = [T.bind(flag(base + c(k))) for k in range(_PER_THREAD)]
                    total_flags = flags[0]
                    for f in flags[1:]:
                        total_flags = total_flags + f
                    mine_buf = T.buffer_proxy(T.alloc_local((1,), "int32"))
                    mine_buf[0] = total_flags
                    mine = mine_buf[0]
                    scan = T.buffer_proxy(T.alloc_shared((_THREADS,), "int32"))
                    scan[t] = mine
                    T.evaluate(T.tvm_storage_sync("shared"))
                    block_scan(scan, t, _THREADS)
                    total_buf = T.buffer_proxy(T.alloc_local((1,), idx))
                    total_buf[0] = as_idx(count[0])
                    total = total_buf[0]
                    pos = T.buffer_proxy(T.alloc_local((1,), "int64"))
                    pos[0] = as_idx(scratch[as_idx(bx3.var)]) + as_idx(scan[t] - mine)
                    for k in range(_PER_THREAD):
                        with T.If(flags[k] == 1):
                            with T.Then():
                                rest = base + c(k)
                                for d in reversed(range(rank)):
                                    extent = as_idx(dims[d])
                                    # Indices are never negative: C division, no floor fix-ups.
                                    out[c(d) * total + pos[0]] = tirx.truncmod(rest, extent) if d > 0 else rest
                                    rest = tirx.truncdiv(rest, extent)
                                pos[0] = pos[0] + c(1)
            return ib.get()

    out_buf = tirx.decl_buffer((rank, numel), "int64", "indices", layout=None)
    count_buf = tirx.decl_buffer((), "int32", "count", layout=None)
    scratch_buf = tirx.decl_buffer((blocks,), "int32", "block_offsets", layout=None)
    return te.extern([(rank, numel), (), (blocks,)], [x],
                     lambda ins, outs: gen_ir(ins[0], outs[0], outs[1], outs[2]),
                     dtype=["int64", "int32", "int32"], out_buffers=[out_buf, count_buf, scratch_buf],
                     name="nonzero.tpat", tag="nonzero.tpat")


def convert_nonzero(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX NonZero for a node with TPAT's size output: (indices at the upper bound, K)."""
    from tvm import relax

    x = inputs[0]
    if not isinstance(x.ty, relax.TensorType) or x.ty.shape is None:
        raise BridgeError("unsupported", "NonZero: its input's rank is unknown")
    both = bb.emit_te(nonzero_te, x, primfunc_name_hint="nonzero_tpat")
    return relax.Tuple([bb.emit(relax.TupleGetItem(both, 0)), bb.emit(relax.TupleGetItem(both, 1))])


def compress_gather_te(x: Any, where: Any, k: Any, axis: int) -> Any:
    """Compress's output from the kept positions (``where[0, :k]``, NonZero's over the condition):
    the upper-bound buffer holding the kept slices of ``x`` along ``axis``, packed as the actual
    shape."""
    from tvm import te, tirx

    shape = list(x.shape)
    shape[axis] = where.shape[1]
    i64 = "int64"

    def unravel(flat: Any, dims: list[Any]) -> list[Any]:
        index = []
        for d in reversed(dims):
            index.append(tirx.floormod(flat, tirx.Cast(i64, d)))
            flat = tirx.floordiv(flat, tirx.Cast(i64, d))
        return list(reversed(index))

    def element(*idx: Any) -> Any:
        # The buffer holds the kept slices packed as the actual shape (the axis's extent K),
        # as TensorRT reads a data-dependent output: the element at this buffer position is
        # the one of that position in the packed layout, not in the upper bound's.
        position = tirx.const(0, i64)
        for i, d in zip(idx, shape):
            position = position * tirx.Cast(i64, d) + tirx.Cast(i64, i)
        inside, outer, j, rest = packed_coordinates(position, tirx.Cast(i64, k()), product(shape[:axis]),
                                                    product(shape[axis + 1:]))
        source = tirx.Select(inside, where[0, j], tirx.const(0, i64))
        at = [tirx.Select(inside, v, tirx.const(0, i64)) for v in unravel(outer, shape[:axis])]
        after = [tirx.Select(inside, v, tirx.const(0, i64)) for v in unravel(rest, shape[axis + 1:])]
        value = x[tuple(at) + (source,) + tuple(after)]
        return tirx.Select(inside, value, tirx.const(0, x.dtype))

    return te.compute(shape, element, name="compress")


def convert_compress(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX Compress with TPAT's size output: the slices whose condition is true,
    packed at the front of the axis sized for the upper bound (the condition's length; without
    ``axis``, of the flattened input), and their count. The positions are NonZero's over the
    condition (the same three kernels), then one gather."""
    from tvm import relax

    data, condition = inputs[0], inputs[1]
    for name, t in (("input", data), ("condition", condition)):
        if not isinstance(t.ty, relax.TensorType) or t.ty.shape is None:
            raise BridgeError("unsupported", f"Compress: its {name}'s rank is unknown")
    if len(condition.ty.shape.values) != 1:
        raise BridgeError("unsupported", "Compress: its condition is not 1-D")
    if "axis" not in attr:
        data = bb.emit(relax.op.reshape(data, [-1]))
        axis = 0
    else:
        axis = int(attr["axis"]) % len(data.ty.shape.values)
    found = bb.emit_te(nonzero_te, condition, primfunc_name_hint="compress_positions")
    positions, count = bb.emit(relax.TupleGetItem(found, 0)), bb.emit(relax.TupleGetItem(found, 1))

    packed = bb.emit_te(compress_gather_te, data, positions, count, axis, primfunc_name_hint="compress_gather")
    return relax.Tuple([packed, count])
