"""TPAT's Resize lowering (relax.image.resize2d): NCHW nearest/linear with static channels and
spatial dims; the batch may be symbolic."""

from __future__ import annotations

from typing import Any, Callable

from .lowering import call_kernel, streaming_store


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

    # The batch may be symbolic (a dynamic batch: a run-time count of plane groups, 64-bit index
    # math); channels and the spatial dims are static.
    n = int(data.shape[0]) if isinstance(data.shape[0], (int, tirx.IntImm)) else data.shape[0]
    c, h, w = (int(d) for d in data.shape[1:])
    plane, in_plane = out_h * out_w, h * w
    if isinstance(n, int):
        nc: Any = n * c
        idx = "int32" if max(nc * plane, nc * in_plane) < 2**31 else "int64"
        planes = next(k for k in (_RESIZE_PLANES, 4, 2, 1) if nc % k == 0)
    else:
        idx = "int64"
        nc = tirx.Cast(idx, n) * tirx.const(c, idx)
        planes = next(k for k in (_RESIZE_PLANES, 4, 2, 1) if c % k == 0)
    threads = _RESIZE_THREADS
    if gpu:
        threads = min(threads, int(tvm.target.Target.current(allow_none=False).attrs["max_num_threads"]))
    dtype = data.dtype
    f32 = "float32"

    def i(v: Any) -> Any:
        return tirx.const(v, idx) if isinstance(v, int) else v

    groups = nc // planes if isinstance(nc, int) else tirx.floordiv(nc, tirx.const(planes, idx))

    def body(t: Any, group: Any, in_ptr: Any, out_ptr: Any) -> None:
        # 1-D views of the same memory
        in_b = T.buffer_proxy(T.decl_buffer((i(nc) * i(in_plane),), dtype, data=in_ptr.data))
        out_b = T.buffer_proxy(T.decl_buffer((i(nc) * i(plane),), dtype, data=out_ptr.data))
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
                with T.frame_scope([T.attr(bx, "thread_extent", nblk),
                                    T.attr(by, "thread_extent", groups if isinstance(groups, int) else tirx.Cast("int32", groups)),
                                    T.attr(tx, "thread_extent", threads)]):
                    t = T.bind(tirx.Cast(idx, bx.var) * i(threads) + tirx.Cast(idx, tx.var))
                    with T.If(t < i(plane)):
                        with T.Then():
                            body(t, tirx.Cast(idx, by.var), in_ptr, out_ptr)
            else:
                # loop variables are 32-bit; the arithmetic takes them as ``idx``
                count = groups if isinstance(groups, int) else tirx.Cast("int32", groups)
                with T.serial(0, count) as g:
                    with T.serial(0, plane) as t:
                        body(tirx.Cast(idx, t), tirx.Cast(idx, g), in_ptr, out_ptr)
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
    # The batch may be symbolic (the plane groups are a run-time count); the rest must be static.
    if len(dims) != 6 or not all(isinstance(d, (int, tirx.IntImm)) for d in dims[1:]):
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
    c, h, w, oh, ow = (int(d) for d in dims[1:])
    if min(c, h, w, oh, ow) <= 0:
        return None
    if isinstance(dims[0], (int, tirx.IntImm)) and (int(dims[0]) <= 0 or (int(dims[0]) * c) // _RESIZE_PLANES > 65535):
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
    method, coord, rounding = str(a.method), str(a.coordinate_transformation_mode), str(a.rounding_method)
    return call_kernel(bb, "resize2d_tpat", [call.args[0]], ["x"],
                       lambda x: _fast_resize2d(x, covered[0], covered[1], method, coord, rounding, gpu))
