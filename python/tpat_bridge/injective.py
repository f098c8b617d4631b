"""TPAT's schedule of injective kernels (elementwise, broadcast, and the chains FuseOps makes of
them) over run-time dims.

dlight's Fallback fuses every loop into one index and splits it over blocks of 1024 threads; the
buffer addresses are then rebuilt from the dims unravelled from that index. With the dims static
TVM folds them back into the index itself. With a symbolic dim it can, except where the trailing
static dims are a multiple of the thread count (a hidden size of 1024, 2048, 3072, 4096: the
feed-forward GELU of a transformer): TVM rewrites ``index % 3072`` as
``blockIdx.x % 3 * 1024 + threadIdx.x``, no longer sees the whole, and every thread pays the
divisions and remainders by the run-time dims of the unravelling: in 64 bits each is a test of the
operands' width, an inline 32-bit division sequence (a called routine past 2^32) and TVM's sign
fix-ups for floor division (scripts/sass-stats.py on sm_90: Relu over [B, S, 3072] compiles to 193
SASS instructions, against 21 with this rule and 14 with the dims static at 8 x 128).

This rule never unravels: the leading loops, up to the last symbolic one, go to blockIdx.x; the
trailing static ones to blockIdx.y x threadIdx.x, with a thread count that divides them exactly
(no bounds check). The address is then blockIdx.x times the static block plus blockIdx.y times the
thread count plus threadIdx.x.

Where the last dim is the run-time one and an operand broadcasts (an attention mask [B, 1, 1, S]
added to the scores [B, H, S, S]), dlight's flat index divides by the run-time dims twice an
element to find the mask's batch and column (Fallback: about 96 SASS instructions an element run,
static 20). Here a warp takes a row and each lane loops over the row's columns 32 apart: the
output's index is row * S + column, and the mask's batch is one division a row, which nvcc hoists
out of the loop (about 33 instructions an element).

Functions it does not fit (trailing static dims too few or too ragged to fill a warp's lanes; the
run-time dim last with no broadcast, where dlight's flat index has no division, or with fewer rows
than the last dim's own symbol guarantees) are left to the next rule.
"""

from __future__ import annotations

from typing import Any

from .lowering import static_dim

# The trailing static dims must hold at least this many elements, a multiple of a warp, for the
# rule to take a function (fewer would leave lanes idle where the Fallback's flat index keeps
# them busy).
MIN_INNER = 64
MAX_THREADS = 1024
MAX_GRID_Y = 65535
# Rows (warps) a block takes where the last dim is a run-time one.
ROWS_PER_BLOCK = 4


def threads_for(inner: int) -> int | None:
    """Threads a block for ``inner`` trailing static elements: the largest multiple of 32 up to
    MAX_THREADS that divides ``inner``, or None where the rule does not apply."""
    if inner < MIN_INNER or inner % 32:
        return None
    best = max(t for t in range(32, MAX_THREADS + 1, 32) if inner % t == 0)
    return best if inner // best <= MAX_GRID_Y else None


def symbolic_injective_rule() -> Any:
    """The dlight rule (see the module docstring); placed before dlight's Fallback."""
    import tvm_ffi
    from tvm import s_tir, tirx
    from tvm.s_tir.dlight.analysis import normalize_prim_func
    from tvm.s_tir.dlight.base import try_inline
    from tvm.s_tir.dlight.gpu.base import GPUScheduleRule

    class SymbolicInjective(GPUScheduleRule):
        def apply(self, func: Any, target: Any, _tunable: bool) -> Any:
            if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
                return None
            try:
                return self.schedule(func)
            except Exception:  # noqa: BLE001 - any function it cannot read goes to Fallback, as is
                return None

        def schedule(self, func: Any) -> Any:
            sch = s_tir.Schedule(func)
            infos = normalize_prim_func(sch)
            if infos is None:
                return None
            infos = try_inline(sch, infos)
            if len(infos) != 1 or not infos[0].is_injective():
                return None
            block = infos[0].block_rv
            loops = sch.get_loops(block)
            if not loops or any(sch.get(loop).thread_binding is not None for loop in loops):
                return None
            extents = [static_dim(sch.get(loop).extent) for loop in loops]
            symbolic = [j for j, e in enumerate(extents) if e is None]
            if not symbolic:
                return None
            if symbolic[-1] == len(loops) - 1:
                return self.rows(sch, block, loops)
            split_at = symbolic[-1] + 1
            inner = 1
            for e in extents[split_at:]:
                inner *= e
            threads = threads_for(inner)
            if threads is None:
                return None
            outer = sch.fuse(*loops[:split_at])
            by, tx = sch.split(sch.fuse(*loops[split_at:]), factors=[inner // threads, threads])
            sch.bind(outer, "blockIdx.x")
            sch.bind(by, "blockIdx.y")
            sch.bind(tx, "threadIdx.x")
            return sch

        def rows(self, sch: Any, block: Any, loops: list[Any]) -> Any:
            """The last dim is a run-time one (an attention mask [B, 1, 1, S] added to scores [B, H,
            S, S]): where an operand broadcasts, a block takes ROWS_PER_BLOCK rows, a warp each,
            and each lane loops over its row's columns 32 apart, so that the output's index is
            row * S + column and only the broadcast operand's leading index is divided out, once a
            row (dlight's flat index divides twice an element). A grid of rows only: no limit on
            the last dim. Functions with no broadcast keep dlight's flat index, which has no
            division there."""
            if len(loops) < 2 or not _broadcasts(sch.get(block)):
                return None
            # At least as many rows as columns: a leading dim is the last one's own symbol (the
            # scores' [.., S, S]). Few rows and a long last dim ([B, 1, T] by [1, 1, T] in audio)
            # would leave a few blocks looping over everything: Fallback's flat index spreads it.
            last = sch.get(loops[-1]).extent
            if not any(tvm_ffi.structural_equal(sch.get(loop).extent, last) for loop in loops[:-1]):
                return None
            bx, ty = sch.split(sch.fuse(*loops[:-1]), factors=[None, ROWS_PER_BLOCK])
            column_chunks, tx = sch.split(loops[-1], factors=[None, 32])
            sch.reorder(bx, ty, tx, column_chunks)
            sch.bind(bx, "blockIdx.x")
            sch.bind(ty, "threadIdx.y")
            sch.bind(tx, "threadIdx.x")
            return sch

    return SymbolicInjective()


def _broadcasts(block: Any) -> bool:
    """Whether one of ``block``'s operands is read at other indices than its output is written
    (a broadcast: fewer dims, or a constant index where a dim is 1)."""
    import tvm_ffi

    written = [r.min for r in block.writes[0].region]
    return any(len(read.region) != len(written)
               or not all(tvm_ffi.structural_equal(r.min, w) for r, w in zip(read.region, written))
               for read in block.reads)
