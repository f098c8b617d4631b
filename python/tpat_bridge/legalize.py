"""TPAT's own legalizations, where TVM's stock CUDA lowering is far from the memory-bandwidth limit.

``relax.scatter_nd`` (ONNX ScatterND, reduction ``none``): TOPI's GPU scatter keeps ONNX's
"last update wins" order by running every index row in sequence inside one kernel whose grid
covers only the inner (updates) dims, so a ScatterND with 19,200 index rows of 256 floats runs in
a single block. ONNX leaves the result undefined when two index rows name the same element
(reduction ``none``), so TPAT scatters all rows in parallel (one thread per updated element) and
copies the data tensor 4 floats per thread where the size allows. The reductions (add, mul, min,
max) keep TOPI's ordered kernel: parallel rows would race on them.
"""

from __future__ import annotations

from typing import Any, Callable

from .lowering import call_prim_func, default_legalizer, placeholder, prod, static_shape, streaming_store


def _fast_scatter_nd(data: Any, indices: Any, updates: Any) -> Any:
    """scatter_nd with ``indices`` already transposed to (M, Y...) like TOPI's; parallel rows."""
    import tvm
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T
    from tvm.topi.math import cast
    from tvm.topi.utils import ceil_div

    def gen_ir(data_ptr: Any, indices_ptr: Any, updates_ptr: Any, out_ptr: Any) -> Any:
        data_b = T.buffer_proxy(data_ptr)
        indices_b = T.buffer_proxy(indices_ptr)
        updates_b = T.buffer_proxy(updates_ptr)
        out_b = T.buffer_proxy(out_ptr)
        mdim = int(indices_ptr.shape[0])
        rows = 1
        for d in indices_ptr.shape[1:]:
            rows *= d
        inner = 1
        for d in updates_ptr.shape[len(indices_ptr.shape) - 1:]:
            inner *= d
        total = 1
        for d in data_ptr.shape:
            total *= int(d)  # static (checked by the caller)
        max_threads = int(tvm.target.Target.current(allow_none=False).attrs["max_num_threads"])
        threads = min(max_threads, 256)
        vec = 4 if total % 4 == 0 else 1
        idx64 = "int64"
        with IRBuilder() as ib:
            with T.seq_scope():
                # Copy data -> out, `vec` consecutive elements per thread.
                nblk = tirx.IntImm("int32", -(-(total // vec) // threads))
                tx = te.thread_axis("threadIdx.x")
                bx = te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx, "thread_extent", nblk), T.attr(tx, "thread_extent", threads)]):
                    tid = cast(bx, idx64) * threads + cast(tx, idx64)
                    if vec > 1:
                        # 1-D views of the same memory: a vector access needs a flat buffer.
                        src = T.buffer_proxy(T.decl_buffer((total,), data_ptr.dtype, data=data_ptr.data))
                        dst = T.buffer_proxy(T.decl_buffer((total,), out_ptr.dtype, data=out_ptr.data))
                        with T.If(tid < total // vec):
                            with T.Then():
                                base = tid * vec
                                dst[tirx.Ramp(base, 1, vec)] = src[tirx.Ramp(base, 1, vec)]
                    else:
                        with T.If(tid < total):
                            with T.Then():
                                out_b[tid] = data_b[tid]
                # Scatter: one thread per (row, inner element); rows in parallel.
                work = rows * inner
                nblk2 = cast(ceil_div(work, threads), "int32")
                tx2 = te.thread_axis("threadIdx.x")
                bx2 = te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx2, "thread_extent", nblk2), T.attr(tx2, "thread_extent", threads)]):
                    g = cast(bx2, idx64) * threads + cast(tx2, idx64)
                    with T.If(g < work):
                        with T.Then():
                            i = g // inner
                            j = g % inner
                            index = j
                            offset = inner
                            for l in reversed(range(mdim)):
                                index = index + offset * cast(indices_b[i + l * rows], idx64)
                                offset = offset * data_ptr.shape[l]
                            out_b[index] = updates_b[g]
            return ib.get()

    out_buf = tirx.decl_buffer(data.shape, data.dtype, "out_buf", layout=None)
    return te.extern([data.shape], [data, indices, updates],
                     lambda ins, outs: gen_ir(ins[0], ins[1], ins[2], outs[0]),
                     dtype=data.dtype, out_buffers=[out_buf], name="scatter_nd.tpat", tag="scatter_nd.tpat")


def _legalize_scatter_nd(bb: Any, call: Any) -> Any:
    from tvm import tirx, topi

    reduction = str(call.attrs.reduction)

    def scatter_nd(data: Any, indices: Any, updates: Any) -> Any:
        axes = list(range(len(indices.shape)))
        indices = topi.transpose(indices, axes[-1:] + axes[:-1])
        static = all(isinstance(d, (int, tirx.IntImm)) for d in data.shape)
        if reduction in ("update", "none") and static:
            return _fast_scatter_nd(data, indices, updates)
        return topi.gpu.scatter_nd(data, indices, updates, reduction)  # ordered: reductions, symbolic data

    return bb.call_te(scatter_nd, call.args[0], call.args[1], call.args[2])




# --- Resize (relax.image.resize2d) -------------------------------------------------------------
#
# TOPI's resize2d computes, for every output element, the source coordinates from the flat index
# with several 64-bit divisions and modulos and float conversions, which leaves the kernel bound
# by integer arithmetic at 3-7x the memory-bandwidth floor. TPAT's lowering covers NCHW
# nearest/linear with static shapes and the coordinate modes ONNX Runtime shares with TVM's
# frontend: one thread per output position (oh, ow) of a plane computes its source row/column
# and weights once (32-bit index math where sizes fit) and then writes that position for
# `_RESIZE_PLANES` consecutive (n, c) planes, consecutive threads writing consecutive addresses.
# The coordinate arithmetic is ONNX Runtime's, in float32 and in the same order
# (onnxruntime/core/providers/cpu/tensor/upsamplebase.h): scale = float(out) / float(in),
# half_pixel = (x + 0.5) / scale - 0.5, ..., nearest modes without TOPI's 1e-5 epsilons.
# Everything else (cubic, tf_crop_and_resize / extrapolation, other layouts, symbolic shapes,
# integer linear) keeps TOPI's lowering.

_RESIZE_COORD_MODES = ("half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel", "tf_half_pixel_for_nn")
_RESIZE_ROUNDING = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_RESIZE_PLANES = 8
_RESIZE_THREADS = 256


def _resize_source_coord(o: Any, in_len: int, out_len: int, mode: str) -> Any:
    """ONNX Runtime's ``get_original_coordinate`` in float32; ``o`` is the float32 output coordinate."""
    import numpy as np
    from tvm import tirx

    f32 = "float32"
    scale = tirx.const(float(np.float32(out_len) / np.float32(in_len)), f32)
    half = tirx.const(0.5, f32)
    if mode == "half_pixel":
        return (o + half) / scale - half
    if mode == "pytorch_half_pixel":
        return (o + half) / scale - half if out_len > 1 else tirx.const(0.0, f32)
    if mode == "tf_half_pixel_for_nn":
        return (o + half) / scale
    if mode == "asymmetric":
        return o / scale
    if mode == "align_corners":
        if out_len == 1:
            return tirx.const(0.0, f32)
        return (o * tirx.const(float(in_len - 1), f32)) / tirx.const(float(out_len - 1), f32)
    raise ValueError(mode)


def _resize_nearest_index(x: Any, in_len: int, rounding: str, idx: str) -> Any:
    """ONNX Runtime's ``GetNearestPixelFromOriginal``, clamped into [0, in_len): exact, no epsilon."""
    from tvm import tirx

    f32 = "float32"
    if rounding == "ceil":
        r = tirx.ceil(x)
    else:
        f = tirx.floor(x)
        if rounding == "floor":
            r = f
        else:
            frac = x - f  # exact in float32
            half = tirx.const(0.5, f32)
            up = frac > half if rounding == "round_prefer_floor" else frac >= half
            r = tirx.Select(up, f + tirx.const(1.0, f32), f)
    r = tirx.max(tirx.min(r, tirx.const(float(in_len - 1), f32)), tirx.const(0.0, f32))
    return tirx.Cast(idx, r)


def _fast_resize2d(data: Any, out_h: int, out_w: int, method: str, coord: str, rounding: str,
                   gpu: bool = True) -> Any:
    """resize2d NCHW, nearest or linear, static shapes. ``gpu=False`` runs the same arithmetic in
    serial loops (for checking it on the CPU)."""
    import tvm
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    n, c, h, w = (int(d) for d in data.shape)
    nc, plane, in_plane = n * c, out_h * out_w, h * w
    idx = "int32" if max(nc * plane, nc * in_plane) < 2**31 else "int64"
    planes = next(k for k in (_RESIZE_PLANES, 4, 2, 1) if nc % k == 0)
    threads = _RESIZE_THREADS
    if gpu:
        threads = min(threads, int(tvm.target.Target.current(allow_none=False).attrs["max_num_threads"]))
    dtype = data.dtype
    f32 = "float32"

    def i(v: int) -> Any:
        return tirx.const(v, idx)

    def body(t: Any, group: Any, in_ptr: Any, out_ptr: Any) -> None:
        # 1-D views of the same memory
        in_b = T.buffer_proxy(T.decl_buffer((nc * in_plane,), dtype, data=in_ptr.data))
        out_b = T.buffer_proxy(T.decl_buffer((nc * plane,), dtype, data=out_ptr.data))
        def store(index: Any, value: Any) -> None:
            # The output is usually many times the input: streaming stores keep the input in L2
            # for the planes and rows that read it again (H200, (32,32,44,50) -> (.., 176,200):
            # nearest 41.7 -> 35.7 us, linear 50.1 -> 37.7 us; docs/benchmarks.md).
            streaming_store(out_b, index, value, gpu)

        oh = T.bind(tirx.truncdiv(t, i(out_w)))
        ow = T.bind(tirx.truncmod(t, i(out_w)))
        sy = T.bind(_resize_source_coord(tirx.Cast(f32, oh), h, out_h, coord))
        sx = T.bind(_resize_source_coord(tirx.Cast(f32, ow), w, out_w, coord))
        if method == "nearest_neighbor":
            src = T.bind(_resize_nearest_index(sy, h, rounding, idx) * i(w) + _resize_nearest_index(sx, w, rounding, idx))
            for k in range(planes):
                p = T.bind(group * i(planes) + i(k))
                store(p * i(plane) + t, in_b[p * i(in_plane) + src])
            return
        # linear: ONNX Runtime clamps the source coordinate into [0, len - 1] first.
        yc = T.bind(tirx.max(tirx.min(sy, tirx.const(float(h - 1), f32)), tirx.const(0.0, f32)))
        xc = T.bind(tirx.max(tirx.min(sx, tirx.const(float(w - 1), f32)), tirx.const(0.0, f32)))
        y0 = T.bind(tirx.Cast(idx, yc))  # yc >= 0: truncation is floor
        x0 = T.bind(tirx.Cast(idx, xc))
        ly = T.bind(yc - tirx.Cast(f32, y0))
        lx = T.bind(xc - tirx.Cast(f32, x0))
        dy = T.bind(tirx.Select(y0 < i(h - 1), i(w), i(0)))
        dx = T.bind(tirx.Select(x0 < i(w - 1), i(1), i(0)))
        off = T.bind(y0 * i(w) + x0)
        one = tirx.const(1.0, f32)
        for k in range(planes):
            p = T.bind(group * i(planes) + i(k))
            a = T.bind(p * i(in_plane) + off)
            v00, v01 = tirx.Cast(f32, in_b[a]), tirx.Cast(f32, in_b[a + dx])
            v10, v11 = tirx.Cast(f32, in_b[a + dy]), tirx.Cast(f32, in_b[a + dy + dx])
            top = v00 * (one - lx) + v01 * lx
            bot = v10 * (one - lx) + v11 * lx
            store(p * i(plane) + t, tirx.Cast(dtype, top * (one - ly) + bot * ly))

    def gen_ir(in_ptr: Any, out_ptr: Any) -> Any:
        nblk = -(-plane // threads)
        with IRBuilder() as ib:
            if gpu:
                tx = te.thread_axis("threadIdx.x")
                bx = te.thread_axis("blockIdx.x")
                by = te.thread_axis("blockIdx.y")
                with T.frame_scope([T.attr(bx, "thread_extent", nblk), T.attr(by, "thread_extent", nc // planes),
                                    T.attr(tx, "thread_extent", threads)]):
                    t = T.bind(tirx.Cast(idx, bx.var) * i(threads) + tirx.Cast(idx, tx.var))
                    with T.If(t < i(plane)):
                        with T.Then():
                            body(t, tirx.Cast(idx, by.var), in_ptr, out_ptr)
            else:
                with T.serial(0, nc // planes, dtype=idx) as g:
                    with T.serial(0, plane, dtype=idx) as t:
                        body(t, g, in_ptr, out_ptr)
            return ib.get()

    out_buf = tirx.decl_buffer((n, c, out_h, out_w), dtype, "out_buf", layout=None)
    return te.extern([(n, c, out_h, out_w)], [data], lambda ins, outs: gen_ir(ins[0], outs[0]),
                     dtype=dtype, out_buffers=[out_buf], name="resize2d.tpat", tag="resize2d.tpat")


def resize2d_covered(call: Any) -> tuple[int, int] | None:
    """The static output (height, width) when TPAT's resize2d lowering covers ``call``, else None."""
    from tvm import tirx

    a = call.attrs
    data_shape = getattr(call.args[0].ty, "shape", None)
    size = call.args[1]
    if data_shape is None or not hasattr(size, "values"):
        return None
    dims = list(data_shape.values) + list(size.values)
    if len(dims) != 6 or not all(isinstance(d, (int, tirx.IntImm)) for d in dims):
        return None
    method, coord, rounding = str(a.method), str(a.coordinate_transformation_mode), str(a.rounding_method)
    dtype = str(call.args[0].ty.dtype)
    out_dtype = str(a.out_dtype) if a.out_dtype is not None else ""
    if str(a.layout) != "NCHW" or coord not in _RESIZE_COORD_MODES or out_dtype not in ("", "void", dtype):
        return None
    if method == "nearest_neighbor":
        if rounding not in _RESIZE_ROUNDING:
            return None
    elif method != "linear" or dtype not in ("float32", "float16"):
        return None
    n, c, h, w, oh, ow = (int(d) for d in dims)
    if min(n, c, h, w, oh, ow) <= 0 or (n * c) // _RESIZE_PLANES > 65535:
        return None
    return oh, ow


def resize2d_legalizer(gpu: bool = True) -> Callable[[Any, Any], Any]:
    """The resize2d legalization; ``gpu=False``: TPAT's arithmetic in serial loops, for the CPU."""
    return lambda bb, call: _legalize_resize2d(bb, call, gpu)


def _legalize_resize2d(bb: Any, call: Any, gpu: bool = True) -> Any:
    from tvm import topi

    a = call.attrs
    covered = resize2d_covered(call)
    if covered is None:
        return bb.call_te(topi.image.resize2d, call.args[0], roi=a.roi, size=call.args[1], layout=a.layout,
                          method=a.method, coordinate_transformation_mode=a.coordinate_transformation_mode,
                          rounding_method=a.rounding_method, bicubic_alpha=a.cubic_alpha,
                          bicubic_exclude=a.cubic_exclude, extrapolation_value=a.extrapolation_value)
    x = placeholder(call.args[0], "x")
    y = _fast_resize2d(x, covered[0], covered[1], str(a.method), str(a.coordinate_transformation_mode),
                       str(a.rounding_method), gpu)
    return call_prim_func(bb, "resize2d_tpat", [call.args[0]], [x], y)

# --- GatherND (relax.gather_nd) -------------------------------------------------------------------
#
# TVM's ONNX frontend normalizes negative indices with Relax ops (shape_of, less, add, where) before
# gather_nd, and TVM's gather_nd PrimFunc (64-bit index math, one element per thread) reads data at
# data-dependent positions, which AnnotateTIROpPattern marks opaque: the normalization stays a
# kernel of its own, two launches for a gather that is launch-bound (2.6-3.1 us on an H200 against
# 1.6-1.7 us for torch.compile's single kernel). For static shapes TPAT drops the frontend's
# normalization (``fold_gather_nd_index_normalization``) and lowers gather_nd to one kernel that
# normalizes (and clamps) each index itself, with 32-bit index math, each thread moving up to
# 16 bytes of a gathered slice.


# Data dtypes whose 16-byte gathers a GPU run has checked (others keep TVM's lowering).
_GATHER_DTYPES = ("float32", "int32")


def gather_nd_covered(data_ty: Any, indices_ty: Any, batch_dims: int) -> bool:
    """True when TPAT's gather_nd kernel covers these types (static shapes, 32-bit sizes)."""
    data_shape, idx_shape = static_shape(data_ty), static_shape(indices_ty)
    if data_shape is None or not idx_shape or str(indices_ty.dtype) not in ("int64", "int32"):
        return False
    if str(data_ty.dtype) not in _GATHER_DTYPES:
        return False
    m = idx_shape[-1]
    if m < 1 or batch_dims + m > len(data_shape):
        return False
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


def fold_frontend_normalization_pass() -> Any:
    """``fold_gather_nd_index_normalization`` and ``fold_one_hot_normalization_and_cast`` as one
    module pass (before LegalizeOps)."""
    import tvm

    return tvm.transform.module_pass(
        lambda mod, _ctx: fold_one_hot_normalization_and_cast(fold_gather_nd_index_normalization(mod)),
        opt_level=0, name="tpat.FoldFrontendIndexNormalization")


def _fast_gather_nd(data: Any, indices: Any, batch_dims: int) -> Any:
    import tvm
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    dshape = [int(d) for d in data.shape]
    ishape = [int(d) for d in indices.shape]
    m = ishape[-1]
    batch = prod(dshape[:batch_dims])
    rows = prod(ishape[:-1])
    per_batch_rows = rows // batch
    slice_len = prod(dshape[batch_dims + m:])
    per_batch_data = prod(dshape[batch_dims:])
    strides = [prod(dshape[batch_dims + k + 1:batch_dims + m]) * slice_len for k in range(m)]
    width = tvm.DataType(data.dtype).bits // 8
    vec = next(v for v in (16 // width, 4, 2, 1) if v >= 1 and slice_len % v == 0 and v * width <= 16)
    chunks = slice_len // vec
    work = rows * chunks
    threads = 256
    idx = "int32"

    def i(v: int) -> Any:
        return tirx.const(v, idx)

    def gen_ir(data_ptr: Any, ind_ptr: Any, out_ptr: Any) -> Any:
        with IRBuilder() as ib:
            tx = te.thread_axis("threadIdx.x")
            bx = te.thread_axis("blockIdx.x")
            with T.frame_scope([T.attr(bx, "thread_extent", -(-work // threads)), T.attr(tx, "thread_extent", threads)]):
                src = T.buffer_proxy(T.decl_buffer((batch * per_batch_data,), data.dtype, data=data_ptr.data))
                ind = T.buffer_proxy(T.decl_buffer((rows * m,), indices.dtype, data=ind_ptr.data))
                dst = T.buffer_proxy(T.decl_buffer((rows * slice_len,), data.dtype, data=out_ptr.data))
                g = T.bind(tirx.Cast(idx, bx.var) * i(threads) + tirx.Cast(idx, tx.var))
                with T.If(g < i(work)):
                    with T.Then():
                        row = T.bind(g // i(chunks))
                        k = T.bind(g % i(chunks))
                        offset = (row // i(per_batch_rows)) * i(per_batch_data) if batch > 1 else i(0)
                        for j in range(m):
                            dim = dshape[batch_dims + j]
                            raw = T.bind(tirx.Cast(idx, ind[row * i(m) + i(j)]))
                            v = tirx.Select(raw < i(0), raw + i(dim), raw)
                            v = tirx.max(tirx.min(v, i(dim - 1)), i(0))  # out of range: clamped, never a fault
                            offset = offset + v * i(strides[j])
                        base = T.bind(offset + k * i(vec))
                        if vec > 1:
                            dst[tirx.Ramp(g * i(vec), i(1), vec)] = src[tirx.Ramp(base, i(1), vec)]
                        else:
                            dst[g] = src[base]
            return ib.get()

    out_shape = ishape[:-1] + dshape[batch_dims + m:]
    out_buf = tirx.decl_buffer(out_shape, data.dtype, "out_buf", layout=None)
    return te.extern([out_shape], [data, indices], lambda ins, outs: gen_ir(ins[0], ins[1], outs[0]),
                     dtype=data.dtype, out_buffers=[out_buf], name="gather_nd.tpat", tag="gather_nd.tpat")


def _legalize_gather_nd(bb: Any, call: Any) -> Any:
    data, indices = call.args
    batch_dims = int(call.attrs.batch_dims)
    if not gather_nd_covered(data.ty, indices.ty, batch_dims):
        return default_legalizer("relax.gather_nd")(bb, call)
    dp, ip = placeholder(data, "data"), placeholder(indices, "indices")
    return call_prim_func(bb, "gather_nd_tpat", [data, indices], [dp, ip], _fast_gather_nd(dp, ip, batch_dims))


# --- OneHot (relax.one_hot) ---------------------------------------------------------------------
#
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
    """True when TPAT's one_hot kernel covers these types (static shapes, 32-bit sizes)."""
    shape = static_shape(indices_ty)
    if shape is None or str(indices_ty.dtype) not in ("int64", "int32") or dtype not in _ONE_HOT_DTYPES:
        return False
    rank = len(shape)
    return depth > 0 and -rank - 1 <= axis <= rank and prod(shape) * depth < 2**31


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

    ishape = [int(d) for d in indices.shape]
    rank = len(ishape)
    axis = axis + rank + 1 if axis < 0 else axis
    inner = prod(ishape[axis:])
    out_shape = ishape[:axis] + [depth] + ishape[axis:]
    total = prod(out_shape)
    last = out_shape[-1]
    vec = 4 if last % 4 == 0 else 1
    chunks = total // vec
    idx = "int32"
    on_v, off_v = tirx.const(on, dtype), tirx.const(off, dtype)

    def i(v: int) -> Any:
        return tirx.const(v, idx)

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
            return (T.buffer_proxy(T.decl_buffer((prod(ishape),), indices.dtype, data=ind_ptr.data)),
                    T.buffer_proxy(T.decl_buffer((total,), dtype, data=out_ptr.data)))

        with IRBuilder() as ib:
            if gpu:
                tx = te.thread_axis("threadIdx.x")
                bx = te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx, "thread_extent", -(-chunks // _ONE_HOT_THREADS)),
                                    T.attr(tx, "thread_extent", _ONE_HOT_THREADS)]):
                    ind, dst = views()
                    g = T.bind(tirx.Cast(idx, bx.var) * i(_ONE_HOT_THREADS) + tirx.Cast(idx, tx.var))
                    with T.If(g < i(chunks)):
                        with T.Then():
                            body(g, ind, dst)
            else:
                with T.serial(0, chunks, dtype=idx) as g:
                    ind, dst = views()
                    body(g, ind, dst)
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
    ip = placeholder(indices, "indices")
    y = _fast_one_hot(ip, on.value, off.value, depth, axis, dtype, gpu)
    return call_prim_func(bb, "one_hot_tpat", [indices], [ip], y)


def legalize_map() -> dict[str, Callable[[Any, Any], Any]]:
    """The ``customize_legalize_map`` TPAT passes to ``LegalizeOps``."""
    from .rowwise import legalize_map as rowwise_map

    return {"relax.scatter_nd": _legalize_scatter_nd, "relax.image.resize2d": resize2d_legalizer(),
            "relax.gather_nd": _legalize_gather_nd, "relax.one_hot": one_hot_legalizer(), **rowwise_map()}
