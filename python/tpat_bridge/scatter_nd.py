"""TPAT's ScatterND lowering.

``relax.scatter_nd`` (ONNX ScatterND, reduction ``none``): TOPI's GPU scatter keeps ONNX's
"last update wins" order by running every index row in sequence inside one kernel whose grid
covers only the inner (updates) dims, so a ScatterND with 19,200 index rows of 256 floats runs in
a single block. ONNX leaves the result undefined when two index rows name the same element
(reduction ``none``), so TPAT scatters all rows in parallel (one thread per updated element) and
copies the data tensor 4 floats per thread where the size allows. The reductions (add, mul, min,
max) keep TOPI's ordered kernel: parallel rows would race on them. Symbolic dims (a dynamic batch
or index count) take the same kernel, sized at run time.
"""

from __future__ import annotations

from typing import Any


def _fast_scatter_nd(data: Any, indices: Any, updates: Any) -> Any:
    """scatter_nd with ``indices`` in ONNX's layout (Y..., M); parallel rows. Row i's index tuple is
    read at i * M + l. (TOPI's kernel takes them transposed to (M, Y...); TVM inlines that
    transpose into the read and, unable to prove the row below the symbolic row count, unravels it
    with three divisions and remainders by the run-time dims a thread, each with floor division's
    sign fix-ups.)"""
    import tvm
    from tvm import te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T
    from tvm.topi.math import cast
    from tvm.topi.utils import ceil_div

    def gen_ir(data_ptr: Any, indices_ptr: Any, updates_ptr: Any, out_ptr: Any) -> Any:
        data_b = T.buffer_proxy(data_ptr)
        updates_b = T.buffer_proxy(updates_ptr)
        out_b = T.buffer_proxy(out_ptr)
        mdim = int(indices_ptr.shape[-1])
        rows = 1
        for d in indices_ptr.shape[:-1]:
            rows *= d
        inner = 1
        for d in updates_ptr.shape[len(indices_ptr.shape) - 1:]:
            inner *= d
        # Symbolic dims (a dynamic batch) are run-time sizes; the vector width comes from the
        # static trailing dims, which decide whether every row of 4 stays inside the tensor.
        total = tirx.const(1, "int64")
        static_tail = 1
        for d in reversed(list(data_ptr.shape)):
            total = total * cast(d, "int64")
            if isinstance(d, (int, tirx.IntImm)) and static_tail > 0:
                static_tail *= int(d)
            else:
                static_tail = -abs(static_tail)  # the static dims end here
        max_threads = int(tvm.target.Target.current(allow_none=False).attrs["max_num_threads"])
        threads = min(max_threads, 256)
        vec = 4 if abs(static_tail) % 4 == 0 else 1
        idx64 = "int64"
        with IRBuilder() as ib:
            with T.seq_scope():
                # a flat view of the indices: tuple l of row i at i * mdim + l
                indices_b = T.buffer_proxy(T.decl_buffer((rows * mdim,), indices_ptr.dtype, data=indices_ptr.data))
                # Copy data -> out, `vec` consecutive elements per thread.
                nblk = cast(ceil_div(total // vec, threads), "int32")
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
                                index = index + offset * cast(indices_b[i * mdim + l], idx64)
                                offset = offset * data_ptr.shape[l]
                            out_b[index] = updates_b[g]
            return ib.get()

    out_buf = tirx.decl_buffer(data.shape, data.dtype, "out_buf", layout=None)
    # named, so that the kernel's parameters say what they are (the indices' flat view stays "_ptr":
    # T.decl_buffer takes no name, and an extern's input buffer must have its tensor's rank)
    in_bufs = [tirx.decl_buffer(t.shape, t.dtype, name, layout=None)
               for t, name in ((data, "data"), (indices, "indices"), (updates, "updates"))]
    return te.extern([data.shape], [data, indices, updates],
                     lambda ins, outs: gen_ir(ins[0], ins[1], ins[2], outs[0]),
                     dtype=data.dtype, in_buffers=in_bufs, out_buffers=[out_buf], name="scatter_nd.tpat",
                     tag="scatter_nd.tpat")


def legalize_scatter_nd(bb: Any, call: Any) -> Any:
    """relax.scatter_nd: parallel rows for static data without a reduction, else TOPI's ordered kernel."""
    from tvm import tirx, topi

    reduction = str(call.attrs.reduction)

    def scatter_nd(data: Any, indices: Any, updates: Any) -> Any:
        # The index tuples' length decides the kernel's unrolled offset arithmetic: it must be static
        # (it is in every exported model); the other dims may be symbolic.
        if reduction in ("update", "none") and isinstance(indices.shape[-1], (int, tirx.IntImm)):
            return _fast_scatter_nd(data, indices, updates)
        axes = list(range(len(indices.shape)))
        transposed = topi.transpose(indices, axes[-1:] + axes[:-1])   # TOPI's layout, (M, Y...)
        return topi.gpu.scatter_nd(data, transposed, updates, reduction)  # ordered: the reductions

    return bb.call_te(scatter_nd, call.args[0], call.args[1], call.args[2])
