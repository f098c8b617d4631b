"""TPAT's NonMaxSuppression: ONNX's greedy NMS on the GPU, its output length through a size output.

TVM's frontend lowers NonMaxSuppression to ``all_class_non_max_suppression``, whose CUDA lowering
fails to build ("Buffer T_gather is used before its definition"), whose output buffer is sized by
``max_output_boxes_per_class`` (INT64_MAX in torchvision's exports: no buffer holds that), and
which reads the thresholds only as constants. The output ``[K, 3]`` (batch, class, box) has a
data-dependent K, as NonZero's (nonzero.py): the converter gives TVM the output at its upper bound,
``batch * classes * boxes`` rows (a class keeps each box at most once), and K as a 0-D size output.
``max_output_boxes_per_class``, ``iou_threshold`` and ``score_threshold`` are read at run time, so
a model may compute them.

The result is exactly the reference's (onnx.reference, ONNX Runtime): per batch and class, the
boxes whose score is above ``score_threshold`` (when given) in descending score order, ties by the
lower box index, each kept unless its IoU with a box kept before exceeds ``iou_threshold``, at most
``max_output_boxes_per_class`` of them; rows ordered by batch, class, then selection order.

Four kernels, one block per (batch, class) except the third:
1. each box's place in the class's order: the number of boxes that come before it (a rank count
   over the class's scores, no sort); clears the suppression flags;
2. the greedy pass in that order: a box that no kept box suppressed is kept, then the block's
   threads flag every box it overlaps above the threshold (one barrier per box of the class);
3. one thread: each class's first output row (an exclusive sum over the classes) and K;
4. the kept boxes' rows, written at their class's first row.
Work per class grows with the boxes squared: fine for detection heads (a few thousand boxes).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .errors import BridgeError
from .operands import as_int64

_THREADS = 256


def nms_te(boxes: Any, scores: Any, limits: list[Any | None], center_point_box: int) -> list[Any]:
    """The TE extern of NonMaxSuppression: [indices (B*C*N, 3) int64, K () int32, and scratch:
    order (B*C, N), suppressed (B*C, N), kept (B*C, N), counts (B*C,), offsets (B*C,), int32].
    ``limits``: the max_output_boxes_per_class, iou_threshold and score_threshold tensors, None
    for each the node leaves out."""
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    idx = "int64"
    c, as_idx = as_int64, as_int64

    batches, num_boxes = as_idx(boxes.shape[0]), as_idx(boxes.shape[1])
    classes = as_idx(scores.shape[1])
    lists = batches * classes
    rows = lists * num_boxes
    given = [t for t in limits if t is not None]
    has_max, has_iou, has_score = (t is not None for t in limits)

    def f32(e: Any, dtype: str) -> Any:
        return e if dtype == "float32" else tirx.Cast("float32", e)

    def gen_ir(ins: list[Any], outs: list[Any]) -> Any:
        box_ptr, score_ptr, *limit_ptrs = ins
        out_ptr, count_ptr, order_ptr, flag_ptr, kept_ptr, counts_ptr, offsets_ptr = outs
        with IRBuilder() as ib:
            with T.seq_scope():
                box = T.buffer_proxy(T.decl_buffer((rows * c(4),), boxes.dtype, data=box_ptr.data))
                score = T.buffer_proxy(T.decl_buffer((rows,), scores.dtype, data=score_ptr.data))
                out = T.buffer_proxy(T.decl_buffer((rows * c(3),), "int64", data=out_ptr.data))
                count = T.buffer_proxy(T.decl_buffer((1,), "int32", data=count_ptr.data))
                order = T.buffer_proxy(T.decl_buffer((rows,), "int32", data=order_ptr.data))
                flag = T.buffer_proxy(T.decl_buffer((rows,), "int32", data=flag_ptr.data))
                kept = T.buffer_proxy(T.decl_buffer((rows,), "int32", data=kept_ptr.data))
                counts = T.buffer_proxy(T.decl_buffer((lists,), "int32", data=counts_ptr.data))
                offsets = T.buffer_proxy(T.decl_buffer((lists,), "int64", data=offsets_ptr.data))
                ptrs = iter(limit_ptrs)
                views = []
                for t in limits:
                    views.append(None if t is None else
                                 T.buffer_proxy(T.decl_buffer((1,), t.dtype, data=next(ptrs).data)))
                max_view, iou_view, score_view = views
                # ONNX's defaults: no boxes without a limit, IoU threshold 0, no score filter
                limit = as_idx(max_view[0]) if has_max else c(0)
                iou_threshold = f32(iou_view[0], limits[1].dtype) if has_iou else tirx.const(0.0, "float32")

                @contextlib.contextmanager
                def each_box(thread: Any, bound: Any) -> Iterator[Any]:
                    """The block's threads over the boxes below ``bound``, ``_THREADS`` apart: the
                    body runs once per box a thread has, with its index."""
                    tiles = tirx.floordiv(num_boxes + c(_THREADS - 1), c(_THREADS))
                    with T.serial(c(0), tiles) as tile:
                        at = T.buffer_proxy(T.alloc_local((1,), idx))
                        at[0] = as_idx(tile) * c(_THREADS) + as_idx(thread)
                        with T.If(at[0] < bound):
                            with T.Then():
                                yield at[0]

                def class_score(lst: Any, i: Any) -> Any:
                    return f32(score[lst * num_boxes + i], scores.dtype)

                def corners(b: Any, i: Any) -> tuple[Any, Any, Any, Any]:
                    """(x_min, x_max, y_min, y_max) of box ``i`` of batch ``b``, as the reference
                    reads them (either corner order; or centre and size)."""
                    v = [T.bind(f32(box[(b * num_boxes + i) * c(4) + c(k)], boxes.dtype)) for k in range(4)]
                    if center_point_box == 0:  # [y1, x1, y2, x2]
                        found = tirx.min(v[1], v[3]), tirx.max(v[1], v[3]), tirx.min(v[0], v[2]), tirx.max(v[0], v[2])
                    else:
                        half_w, half_h = v[2] / tirx.const(2.0, "float32"), v[3] / tirx.const(2.0, "float32")
                        found = v[0] - half_w, v[0] + half_w, v[1] - half_h, v[1] + half_h
                    return tuple(T.bind(e) for e in found)

                def suppresses(a: tuple[Any, ...], b: tuple[Any, ...]) -> Any:
                    """The reference's suppress_by_iou over two boxes' corners."""
                    ix_min, ix_max = tirx.max(a[0], b[0]), tirx.min(a[1], b[1])
                    iy_min, iy_max = tirx.max(a[2], b[2]), tirx.min(a[3], b[3])
                    inter = (ix_max - ix_min) * (iy_max - iy_min)
                    area_a = (a[1] - a[0]) * (a[3] - a[2])
                    area_b = (b[1] - b[0]) * (b[3] - b[2])
                    union = area_a + area_b - inter
                    zero = tirx.const(0.0, "float32")
                    overlap = tirx.all(ix_max > ix_min, iy_max > iy_min, inter > zero, area_a > zero,
                                       area_b > zero, union > zero)
                    iou = inter / tirx.Select(union > zero, union, tirx.const(1.0, "float32"))
                    return tirx.all(overlap, iou > iou_threshold)

                # 1. each box's place in its class's order; flags cleared
                tx, bx = te.thread_axis("threadIdx.x"), te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx, "thread_extent", tirx.Cast("int32", lists)),
                                    T.attr(tx, "thread_extent", _THREADS)]):
                    lst = as_idx(bx.var)
                    with each_box(tx.var, num_boxes) as i:
                        mine = T.buffer_proxy(T.alloc_local((1,), "float32"))
                        mine[0] = class_score(lst, i)
                        place = T.buffer_proxy(T.alloc_local((1,), "int32"))
                        place[0] = tirx.const(0, "int32")
                        with T.serial(c(0), num_boxes) as j:
                            other = class_score(lst, j)
                            before = tirx.any(other > mine[0], tirx.all(other == mine[0], j < i))
                            place[0] = place[0] + tirx.Cast("int32", before)
                        order[lst * num_boxes + as_idx(place[0])] = tirx.Cast("int32", i)
                        flag[lst * num_boxes + i] = tirx.const(0, "int32")
                # 2. the greedy pass in that order
                tx2, bx2 = te.thread_axis("threadIdx.x"), te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx2, "thread_extent", tirx.Cast("int32", lists)),
                                    T.attr(tx2, "thread_extent", _THREADS)]):
                    lst = as_idx(bx2.var)
                    b = tirx.floordiv(lst, classes)
                    taken = T.buffer_proxy(T.alloc_local((1,), idx))  # the same in every thread
                    taken[0] = c(0)
                    with T.serial(c(0), num_boxes) as k:
                        # the flags the block wrote for the boxes before this one are visible
                        T.evaluate(T.tvm_storage_sync("shared"))
                        cand = T.buffer_proxy(T.alloc_local((1,), idx))
                        cand[0] = as_idx(order[lst * num_boxes + k])
                        open_ = tirx.all(taken[0] < limit, flag[lst * num_boxes + cand[0]] == 0)
                        if has_score:
                            open_ = tirx.all(open_, class_score(lst, cand[0]) > f32(score_view[0], limits[2].dtype))
                        keep = T.buffer_proxy(T.alloc_local((1,), "bool"))
                        keep[0] = open_
                        # every thread has read the flags before any is set for this box
                        T.evaluate(T.tvm_storage_sync("shared"))
                        with T.If(keep[0]):
                            with T.Then():
                                with T.If(tx2.var == 0):
                                    with T.Then():
                                        kept[lst * num_boxes + taken[0]] = tirx.Cast("int32", cand[0])
                                taken[0] = taken[0] + c(1)
                                mine = corners(b, cand[0])
                                with each_box(tx2.var, num_boxes) as j:
                                    with T.If(suppresses(corners(b, j), mine)):
                                        with T.Then():
                                            flag[lst * num_boxes + j] = tirx.const(1, "int32")
                    with T.If(tx2.var == 0):
                        with T.Then():
                            counts[lst] = tirx.Cast("int32", taken[0])
                # 3. each class's first row, and K
                tx3, bx3 = te.thread_axis("threadIdx.x"), te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx3, "thread_extent", 1), T.attr(tx3, "thread_extent", 1)]):
                    total = T.buffer_proxy(T.alloc_local((1,), idx))
                    total[0] = c(0)
                    with T.serial(c(0), lists) as lst:
                        offsets[lst] = total[0]
                        total[0] = total[0] + as_idx(counts[lst])
                    count[0] = tirx.Cast("int32", total[0])
                # 4. the kept boxes' rows
                tx4, bx4 = te.thread_axis("threadIdx.x"), te.thread_axis("blockIdx.x")
                with T.frame_scope([T.attr(bx4, "thread_extent", tirx.Cast("int32", lists)),
                                    T.attr(tx4, "thread_extent", _THREADS)]):
                    lst = as_idx(bx4.var)
                    with each_box(tx4.var, as_idx(counts[lst])) as k:
                        row = offsets[lst] + k
                        out[row * c(3)] = tirx.floordiv(lst, classes)
                        out[row * c(3) + c(1)] = tirx.floormod(lst, classes)
                        out[row * c(3) + c(2)] = as_idx(kept[lst * num_boxes + k])
            return ib.get()

    shapes = [(rows, 3), (), (rows,), (rows,), (rows,), (lists,), (lists,)]
    dtypes = ["int64", "int32", "int32", "int32", "int32", "int32", "int64"]
    names = ["selected_indices", "count", "order", "suppressed", "kept", "counts", "offsets"]
    buffers = [tirx.decl_buffer(s, d, n, layout=None) for s, d, n in zip(shapes, dtypes, names)]
    return te.extern(shapes, [boxes, scores, *given], gen_ir, dtype=dtypes, out_buffers=buffers,
                     name="nms.tpat", tag="nms.tpat")


def convert_nms(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX NonMaxSuppression with TPAT's size output: (indices at the upper bound, K)."""
    from tvm import relax

    boxes, scores = inputs[0], inputs[1]
    for name, t in (("boxes", boxes), ("scores", scores)):
        if not isinstance(t.ty, relax.TensorType) or t.ty.shape is None or len(t.ty.shape.values) != 3:
            raise BridgeError("unsupported", f"NonMaxSuppression: its {name} input is not 3-D")
    limits = [inputs[k] if len(inputs) > k and inputs[k] is not None else None for k in (2, 3, 4)]
    for name, t in zip(("max_output_boxes_per_class", "iou_threshold", "score_threshold"), limits):
        if t is not None and isinstance(t.ty, relax.TensorType) and t.ty.shape is not None:
            dims = [int(d) if hasattr(d, "value") else None for d in t.ty.shape.values]
            if dims not in ([], [1]):
                raise BridgeError("unsupported", f"NonMaxSuppression: its {name} input holds more than one value")
    center = int(attr.get("center_point_box", 0))
    given = [t for t in limits if t is not None]

    def te_fn(b: Any, s: Any, *rest: Any) -> Any:
        it = iter(rest)
        return nms_te(b, s, [None if t is None else next(it) for t in limits], center)

    both = bb.emit_te(te_fn, boxes, scores, *given, primfunc_name_hint="non_max_suppression_tpat")
    return relax.Tuple([bb.emit(relax.TupleGetItem(both, 0)), bb.emit(relax.TupleGetItem(both, 1))])
