"""TPAT's float32 GEMM (gemm.py): where it applies and what it generates.

Here, without a GPU: which MatMuls take it (attention's batched ones and an activation against a
weight, with symbolic dims; not small static problems, other dtypes or batch dims that broadcast),
the tile it picks, that the CUDA has the shape the module docstring describes (double-buffered
shared tiles read as float4), and its numbers: TVM's CUDA source run on the CPU (cuda_on_cpu.py), on
every tile, static and symbolic, with ragged edges. On a GPU they are checked by the dynamic
self-tests (make-bench-models.py --dynamic-check: the score and context MatMuls and a weight whose
depth and width are not multiples of the tiles, each at two sizes) and by the kernel benchmark
against PyTorch (docs/benchmarks.md)."""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def _matmul(a_shape, b_shape, dtype=TensorProto.FLOAT, weight=False) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("a", dtype, a_shape)]
    inits = []
    if weight:
        inits.append(numpy_helper.from_array(np.ones(b_shape, np.float32), "b"))
    else:
        inputs.append(helper.make_tensor_value_info("b", dtype, b_shape))
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g", inputs,
                          [helper.make_tensor_value_info("y", dtype, None)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("a_shape,b_shape,weight,tpat", [
    (["B", 12, "S", 64], ["B", 12, 64, "S"], False, True),      # attention's scores
    (["B", 12, "S", "S"], ["B", 12, "S", 64], False, True),     # attention's context: a run-time depth
    (["B", "S", 96], [96, 200], True, True),                     # an activation against a weight
    ([64, 128], [128, 256], False, True),                        # static
    ([2, 3, 40, 64], [2, 3, 64, 48], False, True),               # static, batched, ragged tiles
    ([4, 64], [64, 256], True, False),                           # four rows: TVM's GEMV schedule
    ([64, 128], [128, 8], True, False),                          # eight columns
    ([2, 3, 64, 64], [3, 64, 64], False, False),                 # batch dims that broadcast
])
def test_the_gemm_applies_where_it_should(a_shape, b_shape, weight, tpat):
    from tpat_bridge.compiler import compile_model

    kernels = list(compile_model(_matmul(a_shape, b_shape, weight=weight), "sm_90", []).device_funcs)
    if tpat:
        assert kernels and all(k.startswith("matmul_tpat_kernel") for k in kernels), kernels
    else:
        assert not any("tpat" in k for k in kernels), kernels


def test_float16_keeps_tvm():
    from tpat_bridge.compiler import compile_model

    model = _matmul(["B", 64, 64], ["B", 64, 64], dtype=TensorProto.FLOAT16)
    assert not any("tpat" in k for k in compile_model(model, "sm_90", []).device_funcs)


@pytest.mark.parametrize("a_shape,b_shape,kernels", [
    # (threads, a thread's rows and columns, the slice depth) of each kernel. Symbolic: one kernel
    # per tile (128 x 64, 64 x 32), the plan launching one
    (["B", 12, "S", 64], ["B", 12, 64, "S"], [(128, 8, 8, 8), (128, 4, 4, 16)]),
    (["B", 12, "S", "S"], ["B", 12, "S", 64], [(128, 8, 8, 8), (128, 4, 4, 16)]),
    ([64, 12, 512, 64], [64, 12, 64, 512], [(128, 8, 8, 8)]),     # enough 128 x 64 tiles to fill the GPU
    ([8, 12, 128, 64], [8, 12, 64, 128], [(128, 4, 4, 16)]),      # 192 of them: the smaller tile
])
def test_the_kernel_is_double_buffered_and_reads_shared_memory_as_float4(a_shape, b_shape, kernels):
    from tpat_bridge.compiler import compile_model

    source = compile_model(_matmul(a_shape, b_shape), "sm_90", []).cuda_source
    bodies = source.split("extern \"C\" __global__ void ")[1:]
    bodies = [b for b in bodies if "{" in b.split("\n")[0]]     # definitions, not declarations
    assert len(bodies) == len(kernels)
    for body, (threads, tm, tn, depth) in zip(bodies, kernels):
        # an 8 x 8 thread tile also bounds its registers through blocks per SM (gemm.MAX_REGISTERS)
        bound = f"{threads}, {65536 // (threads * 128)}" if tm * tn == 64 else f"{threads}"
        assert body.startswith(f"__launch_bounds__({bound})")
        assert "__shared__ alignas(64) float" in body
        # after the first slice is staged, and two a slice (before and after staging the next),
        # the slice loop unrolled by two (each half reads a buffer known at compile time)
        assert body.count("__syncthreads()") == 5
        # a thread's values of A and of B per step: float4 copies from shared memory into
        # registers (`*(float4*)(frag) = *(float4*)(tile + ...)`), one per 4 rows and per 4
        # columns; a step per k of a slice, two slices in the loop's body
        assert body.count("*(float4*)") == 2 * (tm // 4 + tn // 4) * depth * 2
        # 64-bit math only where a block's matrices start: the loads and stores through a tile's
        # base pointers (`v_N[...]`) index in 32 bits
        accesses = [line for line in body.split("\n") if re.search(r"\bv_\d+\[", line)]
        assert accesses and not any("int64_t" in line for line in accesses), accesses[:3]


# ---- The kernel's numbers on the CPU (cuda_on_cpu.py: TVM's CUDA source compiled by g++ against an
# emulation of blocks, shared memory and barriers), against numpy, on both tiles and ragged edges.

@pytest.mark.skipif(__import__("cuda_on_cpu").compiler() is None, reason="needs a C++20 compiler")
@pytest.mark.parametrize("a_shape,b_shape,weight,a_size,b_size", [
    # attention's scores with symbolic dims: too few tiles of any size, the smallest (64 x 32),
    # ragged at 40
    (["B", 12, "S", 64], ["B", 12, 64, "S"], False, (1, 12, 40, 64), (1, 12, 64, 40)),
    # the same plan with 192 tiles of 128 x 64, too few: 64 x 32, ragged at 200
    (["B", 12, "S", 64], ["B", 12, 64, "S"], False, (2, 12, 200, 64), (2, 12, 64, 200)),
    # with 288, enough to fill the GPU: the 128 x 64 kernel, ragged at 200
    (["B", 12, "S", 64], ["B", 12, 64, "S"], False, (3, 12, 200, 64), (3, 12, 64, 200)),
    # the context MatMul: a run-time depth of 40 (three 16-deep slices), 64 x 32 tiles
    (["B", 4, "S", "S"], ["B", 4, "S", 64], False, (2, 4, 40, 40), (2, 4, 40, 64)),
    # at the benchmark's 1x128: every tile and every slice whole, only the unchecked path runs
    (["B", 12, "S", "S"], ["B", 12, "S", 64], False, (1, 12, 128, 128), (1, 12, 128, 64)),
    # an activation against a weight: batch folds into rows; depth 100 (a partial slice), width 200
    (["N", "S", 100], [100, 200], True, (2, 40, 100), (100, 200)),
    # static: small tiles, and large ones (528 of 128 x 64) at a depth of one slice
    ([2, 3, 40, 64], [2, 3, 64, 48], False, (2, 3, 40, 64), (2, 3, 64, 48)),
    ([264, 128, 8], [264, 8, 128], False, (264, 128, 8), (264, 8, 128)),
])
def test_the_kernel_computes_the_product(tmp_path, a_shape, b_shape, weight, a_size, b_size):
    from cuda_on_cpu import run_plan_on_cpu
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.plan import build_plan

    rng = np.random.default_rng(7)
    a = rng.standard_normal(a_size).astype(np.float32)
    b = rng.standard_normal(b_size).astype(np.float32)
    model = _matmul(a_shape, b_shape, weight=weight)
    if weight:
        model.graph.initializer[0].CopyFrom(numpy_helper.from_array(b, "b"))
    compiled = compile_model(model, "sm_90", [])
    assert all(k.startswith("matmul_tpat_kernel") for k in compiled.device_funcs)
    (got,) = run_plan_on_cpu(compiled, build_plan(compiled), [a] if weight else [a, b], str(tmp_path))
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(__import__("cuda_on_cpu").compiler() is None, reason="needs a C++20 compiler")
@pytest.mark.parametrize("tile", [
    (64, 64, 4, 4, 16, 4),      # deeper slices, A's shared rows padded
    (32, 32, 4, 4, 32, 4),      # a slice deeper than the tile is wide, 64 threads
    (128, 64, 8, 4, 8, 4),      # 8 x 4 a thread
    (64, 128, 4, 8, 16, 0),     # 4 x 8 a thread
    (64, 64, 8, 8, 8, 4),       # 8 x 8 a thread on a 64 x 64 tile: 64 threads
])
def test_every_tile_shape_computes_the_product(tmp_path, monkeypatch, tile):
    """The tile parameters gemm.Tile takes (thread tiles of 4 or 8 each way, slice depth, padding)
    on a ragged problem: rows, columns and a depth of 40 (a partial slice for every depth)."""
    from cuda_on_cpu import run_plan_on_cpu
    from tpat_bridge import gemm
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.plan import build_plan

    t = gemm.Tile(*tile)
    monkeypatch.setattr(gemm, "TILES", (t, t))
    rng = np.random.default_rng(11)
    a = rng.standard_normal((1, 2, 40, 40)).astype(np.float32)
    b = rng.standard_normal((1, 2, 40, 70)).astype(np.float32)
    compiled = compile_model(_matmul(["B", 2, "S", "S"], ["B", 2, "S", "N"]), "sm_90", [])
    (got,) = run_plan_on_cpu(compiled, build_plan(compiled), [a, b], str(tmp_path))
    np.testing.assert_allclose(got, np.matmul(a.astype(np.float64), b.astype(np.float64)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("a_shape,b_shape", [
    (["B", 12, "S", 64], ["B", 12, 64, "S"]),        # symbolic: both tiles
    ([64, 12, 512, 64], [64, 12, 64, 512]),          # static 128 x 64
    (["B", 12, "S", "S"], ["B", 12, "S", 64]),       # symbolic, a run-time depth: 128 x 64 (139 unbounded)
])
def test_no_kernel_needs_more_than_128_registers_or_spills(tmp_path, a_shape, b_shape):
    """ptxas's own count (nvcc -Xptxas -v): an 8 x 8 thread tile within gemm.MAX_REGISTERS, so
    that an SM holds the blocks the tile was measured with, and nothing spilled to local memory."""
    import subprocess

    from conftest import NVCC
    from tpat_bridge import gemm
    from tpat_bridge.compiler import compile_model

    if not NVCC.exists():
        pytest.skip(f"nvcc not found at {NVCC}")
    source = tmp_path / "gemm.cu"
    source.write_text(compile_model(_matmul(a_shape, b_shape), "sm_90", []).cuda_source)
    done = subprocess.run([str(NVCC), "-cubin", "-arch=sm_90", "-O3", "-Xptxas", "-v", str(source),
                           "-o", str(tmp_path / "gemm.cubin")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    registers = [int(r) for r in re.findall(r"Used (\d+) registers", done.stderr)]
    spills = [int(s) for s in re.findall(r"(\d+) bytes spill (?:stores|loads)", done.stderr)]
    assert registers and max(registers) <= gemm.MAX_REGISTERS, done.stderr
    assert spills and not any(spills), done.stderr
