#!/usr/bin/env python3
"""Sweeps the tiles of TPAT's float32 GEMM (python/tpat_bridge/gemm.py) on one GPU, against cuBLAS,
to choose which tile each problem size takes.

    scripts/bench-gemm-tiles.py prepare OUT [--static scores,context]   # here, with TVM
    python3 OUT/bench-gemm-tiles.py run OUT     # on the GPU machine (CuPy): time and check them

`prepare` compiles, for every candidate tile (TILES below) and every form of MatMul TPAT sees in
attention and in a linear layer, the symbolic-size kernel gemm.py generates with that one tile, and
records its CUDA source and, for each problem size (SHAPES), its launch (grid, block, arguments)
evaluated from the launch plan. `run` compiles each source with nvcc (in parallel), loads it with CuPy, launches it on random inputs
with a poisoned output, compares with cuBLAS (cupy.matmul) and times it and cuBLAS (torch.matmul, TF32 off) the same way:
a CUDA graph of R launches replayed many times, median replay / R. It prints one table per form
(microseconds; the fastest tile of each size marked) and writes OUT/results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys

# (bm, bn, tm, tn, bk, a_pad): tm, tn are 4 or 8 (gemm.Tile)
TILES = [
    (128, 128, 8, 8, 8, 0), (128, 128, 8, 8, 8, 4), (128, 128, 8, 8, 16, 4),
    (128, 64, 8, 4, 8, 4), (64, 128, 4, 8, 8, 4),
    (64, 64, 4, 4, 8, 0), (64, 64, 4, 4, 8, 4), (64, 64, 4, 4, 16, 4), (64, 64, 4, 4, 32, 4),
    (128, 64, 8, 8, 8, 0), (128, 64, 8, 8, 8, 4), (128, 64, 8, 8, 16, 4),
    (64, 64, 8, 4, 8, 4), (64, 64, 8, 4, 16, 4),
    (64, 32, 4, 4, 8, 0), (64, 32, 4, 4, 16, 4), (64, 32, 4, 4, 32, 4), (32, 64, 4, 4, 16, 4),
    (64, 64, 8, 8, 8, 4), (64, 64, 8, 8, 16, 4), (64, 64, 8, 8, 32, 4),
    (32, 32, 4, 4, 16, 4), (32, 32, 4, 4, 32, 4),
]

# Tiles also compiled for static shapes with `prepare --static FORMS`: gemm.TILES and their
# nearest rivals (static and symbolic kernels of one tile were measured far apart: scores 64x512
# 128x128 static 945 us, symbolic 715; context 128x64 static 631, symbolic 782).
STATIC_TILES = [
    (128, 128, 8, 8, 16, 4), (128, 128, 8, 8, 8, 4), (128, 64, 8, 8, 8, 4), (128, 64, 8, 8, 16, 4),
    (64, 64, 8, 8, 8, 4), (64, 64, 8, 4, 16, 4), (64, 32, 4, 4, 16, 4), (32, 64, 4, 4, 16, 4),
]

# form: (A's dims, B's dims, {size name: symbol values})
FORMS = {
    "scores": (["B", 12, "S", 64], ["B", 12, 64, "S"],
               {"1x128": {"B": 1, "S": 128}, "8x128": {"B": 8, "S": 128}, "4x256": {"B": 4, "S": 256},
                "64x512": {"B": 64, "S": 512}}),
    "context": (["B", 12, "S", "S"], ["B", 12, "S", 64],
                {"1x128": {"B": 1, "S": 128}, "8x128": {"B": 8, "S": 128}, "4x256": {"B": 4, "S": 256},
                 "64x512": {"B": 64, "S": 512}}),
    "linear768": (["B", "S", 768], [768, 768],
                  {"1x128": {"B": 1, "S": 128}, "8x128": {"B": 8, "S": 128}, "64x512": {"B": 64, "S": 512}}),
    "linear3072": (["B", "S", 768], [768, 3072],
                   {"1x128": {"B": 1, "S": 128}, "8x128": {"B": 8, "S": 128}}),
}


def tile_name(t: tuple[int, ...]) -> str:
    bm, bn, tm, tn, bk, pad = t
    return f"{bm}x{bn}/{tm}x{tn}/k{bk}" + (f"/p{pad}" if pad else "")


def prepare(out: str, static_forms: list[str]) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import onnx
    from onnx import TensorProto, helper

    from tpat_bridge import gemm
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.expr import evaluate
    from tpat_bridge.plan import BufferRef, LaunchStep, ScalarArg, build_plan

    os.makedirs(out, exist_ok=True)
    variants = []

    def model_of(a_dims: list, b_dims: list):
        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, a_dims),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, b_dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    def variant(form: str, name: str, t: tuple[int, ...], model, sizes: dict) -> None:
        """Compiles ``model`` with tile ``t`` alone and records its launch at each of ``sizes``."""
        tile = gemm.Tile(*t)
        gemm.TILES = (tile, tile)
        try:
            compiled = compile_model(model, "sm_90", [])
            plan = build_plan(compiled)
        except Exception as exc:  # a tile the generator cannot make is reported, not fatal
            print(f"{form} {name}: not generated: {exc}", file=sys.stderr)
            return
        (step,) = [s for s in plan.steps if isinstance(s, LaunchStep)]
        launches = {}
        for size, (symbols, a_shape, b_shape) in sizes.items():
            values = {s.name: symbols[s.name if s.name in symbols else s.name.upper()] for s in plan.symbols}
            args = []
            for arg in step.args:
                if isinstance(arg, ScalarArg):
                    args.append([arg.dtype, evaluate(arg.value, values)])
                elif isinstance(arg, BufferRef):
                    args.append([arg.kind, arg.index])
                else:
                    raise ValueError(f"unexpected argument {arg}")
            launches[size] = {"grid": [evaluate(d, values) for d in step.grid],
                              "block": [evaluate(d, values) for d in step.block],
                              "shared": evaluate(step.shared, values), "args": args, "a": a_shape, "b": b_shape}
        variants.append({"form": form, "tile": name, "kernel": step.kernel,
                         "source": compiled.cuda_source, "launches": launches})
        print(f"{form} {name}: ok", file=sys.stderr)

    for form, (a_dims, b_dims, sizes) in FORMS.items():
        def at(dims: list, symbols: dict) -> list[int]:
            return [symbols[d] if isinstance(d, str) else d for d in dims]

        shapes = {size: (symbols, at(a_dims, symbols), at(b_dims, symbols)) for size, symbols in sizes.items()}
        for t in TILES:
            variant(form, tile_name(t), t, model_of(a_dims, b_dims), shapes)
            # the same tile compiled for each size's static shapes (--static-tiles)
            if form in static_forms and t in STATIC_TILES:
                for size, shape in shapes.items():
                    variant(form, tile_name(t) + " static", t, model_of(shape[1], shape[2]), {size: shape})
    with open(os.path.join(out, "variants.json"), "w") as f:
        json.dump({"forms": list(FORMS), "variants": variants}, f)
    shutil.copy(os.path.abspath(__file__), os.path.join(out, "bench-gemm-tiles.py"))


def run(out: str, repeats: int) -> None:
    import cupy as cp

    with open(os.path.join(out, "variants.json")) as f:
        data = json.load(f)
    stream = cp.cuda.Stream(non_blocking=True)

    def timed(launch) -> float:
        """Median microseconds of one launch: a graph of `repeats` launches replayed."""
        with stream:
            for _ in range(3):
                launch()
            stream.synchronize()
            stream.begin_capture()
            for _ in range(repeats):
                launch()
            graph = stream.end_capture()
            graph.launch(stream)
            stream.synchronize()
            times = []
            for _ in range(15):
                start, end = cp.cuda.Event(), cp.cuda.Event()
                start.record(stream)
                graph.launch(stream)
                end.record(stream)
                end.synchronize()
                times.append(cp.cuda.get_elapsed_time(start, end) * 1000 / repeats)
        return statistics.median(times)

    def torch_timed(a_shape: list[int], b_shape: list[int]) -> float:
        """cuBLAS through PyTorch (CuPy's cuBLAS calls cannot be captured in a graph), timed alike."""
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        a, b = torch.randn(a_shape, device="cuda"), torch.randn(b_shape, device="cuda")
        o = torch.matmul(a, b)
        s = torch.cuda.Stream()
        with torch.cuda.stream(s):
            for _ in range(3):
                torch.matmul(a, b, out=o)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(repeats):
                torch.matmul(a, b, out=o)
        graph.replay()
        torch.cuda.synchronize()
        times = []
        for _ in range(15):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) * 1000 / repeats)
        return statistics.median(times)

    rng = cp.random.default_rng(5)
    results: dict = {}
    cases: dict = {}
    for v in data["variants"]:
        for size, launch in v["launches"].items():
            key = (v["form"], size)
            if key not in cases:
                with stream:
                    a = rng.standard_normal(launch["a"], dtype=cp.float32)
                    b = rng.standard_normal(launch["b"], dtype=cp.float32)
                    want = cp.matmul(a, b)
                    out_buf = cp.empty_like(want)
                cases[key] = (a, b, want, out_buf)
                cublas = torch_timed(launch["a"], launch["b"])
                results.setdefault(v["form"], {}).setdefault(size, {})["cuBLAS"] = cublas
    # nvcc, in parallel, into cubins CuPy loads (NVRTC one at a time would take minutes)
    import concurrent.futures
    import subprocess
    import tempfile

    work = tempfile.mkdtemp(prefix="gemm-tiles-")

    def build(k: int) -> str | None:
        src, cubin = os.path.join(work, f"v{k}.cu"), os.path.join(work, f"v{k}.cubin")
        with open(src, "w") as f:
            f.write(data["variants"][k]["source"])
        done = subprocess.run(["nvcc", "-cubin", "-O3", "-arch=sm_90", "-std=c++17", src, "-o", cubin],
                              capture_output=True, text=True)
        return cubin if done.returncode == 0 else None

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 8) as pool:
        cubins = list(pool.map(build, range(len(data["variants"]))))
    for v, cubin in zip(data["variants"], cubins):
        if cubin is None:
            print(f"{v['form']} {v['tile']}: does not compile")
            continue
        function = cp.RawModule(path=cubin).get_function(v["kernel"])
        for size, launch in v["launches"].items():
            a, b, want, out_buf = cases[(v["form"], size)]
            buffers = {("input", 0): a, ("input", 1): b, ("output", 0): out_buf}
            args = []
            for kind, value in launch["args"]:
                if kind in ("input", "output"):
                    args.append(buffers[(kind, value)])
                else:
                    args.append(cp.int32(value) if kind == "int32" else cp.int64(value))

            def go(args=args, launch=launch):
                function(tuple(launch["grid"]), tuple(launch["block"]), tuple(args),
                         shared_mem=int(launch["shared"]))
            with stream:
                out_buf.fill(cp.nan)
                go()
                stream.synchronize()
                err = float(cp.max(cp.abs(out_buf - want) / (1 + cp.abs(want))))
            cell = timed(go) if err < 1e-3 else float("nan")
            if err >= 1e-3:
                print(f"WRONG {v['form']} {size} {v['tile']}: max relative error {err}")
            results[v["form"]][size][v["tile"]] = cell
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"GPU: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}; us per launch, "
          f"median of 15 replays of a graph of {repeats}")
    for form, by_size in results.items():
        sizes = list(by_size)
        def order(name: str) -> list[int]:
            tile, _, static = name.partition(" ")
            return [int(x) for x in tile.replace("/k", "x").replace("/p", "x").replace("/", "x").split("x")] + [bool(static)]

        names = ["cuBLAS"] + sorted({t for s in sizes for t in by_size[s]} - {"cuBLAS"}, key=order)
        print(f"\n{form}\n| tile | " + " | ".join(sizes) + " |\n|---|" + "---:|" * len(sizes))
        for name in names:
            cells = []
            for s in sizes:
                value = by_size[s].get(name)
                best = min(x for t, x in by_size[s].items() if t != "cuBLAS" and x == x)
                cells.append("-" if value is None else f"{value:.1f}" + ("*" if value == best else ""))
            print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("out")
    p.add_argument("--static", default="", help="comma-separated forms whose STATIC_TILES are also "
                   "compiled for each size's static shapes (a row 'TILE static')")
    r = sub.add_parser("run")
    r.add_argument("out")
    r.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out, [f for f in args.static.split(",") if f])
    else:
        run(args.out, args.repeats)


if __name__ == "__main__":
    main()
