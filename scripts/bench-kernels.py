#!/usr/bin/env python3
"""Times TPAT plugin kernels (untuned and tuned, through the TensorRT-free C entry point) against
PyTorch eager and torch.compile, and against the memory-bandwidth floor, on one CUDA GPU.

    python3 scripts/bench-kernels.py --plugins untuned=DIR --plugins tuned=DIR2 \\
        --model models/generated/bench.onnx [--out results.json] [--quick] [--no-compile]
    python3 scripts/bench-kernels.py --plugins untuned=DIR --plugins tuned=DIR2 --time-plugins tpat_matmul,...

DIR is a `tpat generate` output folder of models/generated/bench.onnx (scripts/make-bench-models.py)
whose plugins/<name>/build/lib<name>_kernels.so exist (scripts/bench-kernels.sh links them).
Every implementation is timed the same way: a CUDA graph of R calls, replayed many times, timed
with events, median replay / R. Where one call's tensors fit in L2 several input sets are rotated
(different buffers on each call) so that timings measure memory; where even the rotation fits in
L2 the row says "L2". The floor is the fewest bytes a workload must move (each input read once,
each output written once) over the bandwidth of a float4 copy kernel measured here.
Correctness: every implementation's output is compared with PyTorch eager (float64 for Softmax
and LayerNormalization) on fresh random inputs, after poisoning the output buffers.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

DT = {"float32": torch.float32, "int64": torch.int64, "int32": torch.int32, "float16": torch.float16,
      "bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8, "float64": torch.float64}


@dataclass
class Workload:
    name: str            # the ONNX node's name; its plugin is tpat_<name>
    label: str
    make: Callable[[torch.Generator], list[torch.Tensor]]   # plugin input order
    torch_fn: Callable[..., torch.Tensor]
    min_bytes: Callable[[list[torch.Tensor], torch.Tensor], int]
    exact: bool = True   # outputs must match bit for bit (gathers, scatters, max, nearest)
    ref64: bool = False  # compare with a float64 eager reference
    extra: dict = field(default_factory=dict)


def nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def rw_bytes(ins: list[torch.Tensor], out: torch.Tensor) -> int:
    return sum(nbytes(t) for t in ins) + nbytes(out)


def model_shapes(model_path: str) -> tuple[dict[str, tuple[int, ...]], set[str], dict]:
    """The graph inputs' static shapes, the node names and the initializers of a benchmark model
    (scripts/make-bench-models.py): each workload's sizes come from the model it runs for."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(model_path)
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in model.graph.input}
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return shapes, {n.name for n in model.graph.node}, inits


def workloads(model_path: str) -> list[Workload]:
    """The workloads whose node the model has, at the model's shapes."""
    shape, present, inits = model_shapes(model_path)
    dev = "cuda"

    def rand(g, *dims):
        return torch.randn(*dims, generator=g, device=dev, dtype=torch.float32)

    def gnd_a(g):
        n, h, w = shape["gathernd_a.data"][:3]
        k = shape["gathernd_a.idx"][1]
        data = rand(g, *shape["gathernd_a.data"])
        idx = torch.stack([torch.randint(0, n, (n, k), generator=g, device=dev),
                           torch.randint(0, h, (n, k), generator=g, device=dev),
                           torch.randint(0, w, (n, k), generator=g, device=dev)], -1)
        return [data, idx]

    def gnd_b(g):
        data = rand(g, *shape["gathernd_b.data"])
        idx = torch.tensor([[0, int(torch.randint(0, shape["gathernd_b.data"][1], (1,), generator=g, device=dev))]], device=dev)
        return [data, idx]

    def scat(g):
        n, h, w, c = shape["scatternd.data"]
        k = shape["scatternd.idx"][1]
        data = rand(g, n, h, w, c)
        rows = torch.stack([torch.randperm(h * w, generator=g, device=dev)[:k] for _ in range(n)])
        b = torch.arange(n, device=dev).view(n, 1).expand(n, k)
        idx = torch.stack([b, rows // w, rows % w], -1).contiguous()
        return [data, idx, rand(g, n, k, c)]

    def scat_fn(data, idx, upd):
        out = data.clone()
        out[idx[..., 0], idx[..., 1], idx[..., 2]] = upd
        return out

    def onehot(g):
        return [torch.randint(0, 16384, shape["onehot.idx"], generator=g, device=dev)]

    def of(name: str):
        return lambda g: [rand(g, *shape[name])]

    def dims(name: str) -> str:
        return "(" + ",".join(map(str, shape[name])) + ")"

    ws: list[Workload] = []
    if "gathernd_a" in present:
        ws.append(Workload("gathernd_a", f"GatherND {dims('gathernd_a.data')} idx {dims('gathernd_a.idx')}", gnd_a,
                           lambda d, i: d[i[..., 0], i[..., 1], i[..., 2]],
                           lambda ins, out: nbytes(ins[1]) + 2 * nbytes(out)))
    if "gathernd_b" in present:
        ws.append(Workload("gathernd_b", f"GatherND {dims('gathernd_b.data')} idx {dims('gathernd_b.idx')}", gnd_b,
                           lambda d, i: d[i[:, 0], i[:, 1]],
                           lambda ins, out: nbytes(ins[1]) + 2 * nbytes(out)))
    if "scatternd" in present:
        ws.append(Workload("scatternd", f"ScatterND {dims('scatternd.data')} idx {dims('scatternd.idx')}", scat, scat_fn,
                           lambda ins, out: 2 * nbytes(ins[0]) + nbytes(ins[1]) + nbytes(ins[2])))
    if "onehot" in present:
        ws.append(Workload("onehot", f"OneHot depth 16384 idx {dims('onehot.idx')}", onehot,
                           lambda i: F.one_hot(i, 16384).to(torch.float32), rw_bytes))
    for mode in ("nearest", "linear"):
        tmode = "nearest" if mode == "nearest" else "bilinear"
        kw = {} if mode == "nearest" else {"align_corners": False}
        for tag in ("a", "b"):
            name = f"resize_{mode}_{tag}"
            if name in present:
                ws.append(Workload(
                    name, f"Resize {mode} {dims(name + '.x')}->(.., 176,200)", of(name + ".x"),
                    (lambda m, k: (lambda x: F.interpolate(x, size=(176, 200), mode=m, **k)))(tmode, kw),
                    rw_bytes, exact=(mode == "nearest")))
    if "reducemax" in present:
        ws.append(Workload("reducemax", f"ReduceMax {dims('reducemax.x')} axis 1", of("reducemax.x"),
                           lambda x: x.amax(1), rw_bytes))
    if "softmax" in present:
        ws.append(Workload("softmax", f"Softmax {dims('softmax.x')}", of("softmax.x"),
                           lambda x: torch.softmax(x, -1), rw_bytes, exact=False, ref64=True))
    for name, label in (("layernorm", "LayerNormalization"), ("bert_layernorm", "BERT LayerNormalization")):
        if name in present:
            w_, b_ = (torch.tensor(inits[f"{name}.{k}"], device=dev) for k in ("scale", "bias"))
            eps = 1e-5 if name == "layernorm" else 1e-12
            ws.append(Workload(name, f"{label} {dims(name + '.x')}", of(name + ".x"),
                               (lambda w_, b_, eps: lambda x: F.layer_norm(x, (x.shape[-1],), w_.to(x.dtype),
                                                                          b_.to(x.dtype), eps))(w_, b_, eps),
                               (lambda w_: lambda ins, out: rw_bytes(ins, out) + 2 * nbytes(w_))(w_),
                               exact=False, ref64=True))
    # BERT-base attention (models/generated/bench-transformer-*.onnx): batch x heads x seq x seq
    if "attn_scores" in present:
        ws.append(Workload("attn_scores", f"Attention scores MatMul {dims('attn_scores.q')} x {dims('attn_scores.kt')}",
                           lambda g: [rand(g, *shape["attn_scores.q"]), rand(g, *shape["attn_scores.kt"])],
                           torch.matmul, rw_bytes, exact=False, ref64=True))
    if "attn_softmax" in present:
        ws.append(Workload("attn_softmax", f"Attention Softmax {dims('attn_softmax.x')}", of("attn_softmax.x"),
                           lambda x: torch.softmax(x, -1), rw_bytes, exact=False, ref64=True))
    if "attn_context" in present:
        ws.append(Workload("attn_context", f"Attention context MatMul {dims('attn_context.p')} x {dims('attn_context.v')}",
                           lambda g: [torch.softmax(rand(g, *shape["attn_context.p"]), -1), rand(g, *shape["attn_context.v"])],
                           torch.matmul, rw_bytes, exact=False, ref64=True))
    if "bert_gelu_erf" in present:
        ws.append(Workload("bert_gelu_erf", f"GELU's Erf {dims('bert_gelu_erf.x')}", of("bert_gelu_erf.x"),
                           torch.erf, rw_bytes, exact=False, ref64=True))
    if "attn_mask" in present:
        ws.append(Workload("attn_mask", f"Attention mask Add {dims('attn_mask.x')} + {dims('attn_mask.m')}",
                           lambda g: [rand(g, *shape["attn_mask.x"]), rand(g, *shape["attn_mask.m"])],
                           torch.add, rw_bytes))
    return ws


class Plugin:
    """A plugin's kernels through <name>_enqueue (ctypes), constants uploaded once."""

    def __init__(self, directory: str, name: str) -> None:
        self.name = name
        self.manifest = json.load(open(os.path.join(directory, "manifest.json")))
        self.lib = ctypes.CDLL(os.path.join(directory, "build", f"lib{name}_kernels.so"))
        p = ctypes.c_void_p
        self.enqueue = getattr(self.lib, f"{name}_enqueue")
        self.enqueue.argtypes = [p, p, p, p, p, p]
        self.enqueue.restype = ctypes.c_int
        self.wsize = getattr(self.lib, f"{name}_workspace_size")
        self.wsize.argtypes = [p]
        self.wsize.restype = ctypes.c_int64
        self.odims = getattr(self.lib, f"{name}_output_dims")
        self.odims.argtypes = [p, p]
        self.odims.restype = ctypes.c_int
        n = len(self.manifest["constants"])
        self.consts = (ctypes.c_void_p * max(n, 1))()
        if n:
            create = getattr(self.lib, f"{name}_constants_create")
            create.argtypes = [p]
            rc = create(ctypes.cast(self.consts, p))
            if rc != 0:
                raise RuntimeError(f"{name}_constants_create: {rc}")
        self.tuned = bool(self.manifest["target"].get("tuned"))

    def bind(self, ins: list[torch.Tensor]) -> tuple[Callable[[], None], list[torch.Tensor]]:
        keep = []
        dims = [(ctypes.c_int64 * max(t.dim(), 1))(*t.shape) for t in ins]
        dims_pp = (ctypes.c_void_p * len(dims))(*[ctypes.cast(d, ctypes.c_void_p) for d in dims])
        outs_m = self.manifest["outputs"]
        odims = [(ctypes.c_int64 * max(len(o["shape"]), 1))() for o in outs_m]
        odims_pp = (ctypes.c_void_p * len(odims))(*[ctypes.cast(d, ctypes.c_void_p) for d in odims])
        rc = self.odims(ctypes.cast(dims_pp, ctypes.c_void_p), ctypes.cast(odims_pp, ctypes.c_void_p))
        if rc != 0:
            raise RuntimeError(f"{self.name}_output_dims: {rc}")
        outs = [torch.empty([odims[j][k] for k in range(len(o["shape"]))], dtype=DT[o["dtype"]], device="cuda")
                for j, o in enumerate(outs_m)]
        ws_bytes = self.wsize(ctypes.cast(dims_pp, ctypes.c_void_p))
        if ws_bytes < 0:
            raise RuntimeError(f"{self.name}_workspace_size: {ws_bytes}")
        ws = torch.empty(max(ws_bytes, 1) + 256, dtype=torch.uint8, device="cuda")
        in_pp = (ctypes.c_void_p * len(ins))(*[t.data_ptr() for t in ins])
        out_pp = (ctypes.c_void_p * len(outs))(*[t.data_ptr() for t in outs])
        # The outputs must outlive every replay of a graph that writes them: freed, the caching
        # allocator may hand their memory back to the driver (illegal address on the next replay).
        keep += [dims, dims_pp, odims, odims_pp, in_pp, out_pp, ws, ins, outs]
        args = [ctypes.cast(x, ctypes.c_void_p) for x in (dims_pp, in_pp, out_pp, self.consts)]
        ws_ptr = ctypes.c_void_p(ws.data_ptr())

        def call() -> None:
            _ = keep
            rc = self.enqueue(*args, ws_ptr, ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
            if rc != 0:
                raise RuntimeError(f"{self.name}_enqueue: {rc}")

        return call, outs


def copy_bandwidth() -> float:
    """Bytes/s of a float4 copy kernel (read + write) over 2 GiB buffers, median of graph replays."""
    import cupy as cp

    src = r'''extern "C" __global__ void copy4(const float4* __restrict__ a, float4* __restrict__ b, long long n) {
      for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) b[i] = a[i]; }'''
    k = cp.RawKernel(src, "copy4")
    n = (1 << 30) // 16
    a = torch.randn(n * 4, device="cuda")
    b = torch.empty_like(a)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    grid = sms * 16

    def call():
        with cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
            k((grid,), (256,), (a.data_ptr(), b.data_ptr(), cp.int64(n)))

    t = time_graph([call], reps=5)
    assert torch.equal(a, b)
    return 2 * n * 16 / t


def time_graph(calls: list[Callable[[], None]], reps: int = 20, per_graph: int | None = None) -> float:
    """Seconds per call: a CUDA graph running `calls` (cycled to `per_graph` calls), replayed."""
    per_graph = per_graph or len(calls)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for c in calls:
            c()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(per_graph):
            calls[i % len(calls)]()
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        g.replay()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) / 1e3 / per_graph)
    del g
    return statistics.median(times)


def check(w: Workload, got: torch.Tensor, ins: list[torch.Tensor]) -> tuple[bool, str]:
    if w.ref64:
        ref = w.torch_fn(*[t.double() if t.is_floating_point() else t for t in ins])
    else:
        ref = w.torch_fn(*ins)
    if tuple(got.shape) != tuple(ref.shape):
        return False, f"shape {tuple(got.shape)} != {tuple(ref.shape)}"
    got = got.to(ref.dtype)
    if torch.isnan(got).any():
        return False, "NaN"
    if w.exact:
        bad = (got != ref).sum().item()
        return bad == 0, "exact" if bad == 0 else f"{bad}/{ref.numel()} differ"
    rel = (torch.linalg.vector_norm((got - ref).double()) / torch.linalg.vector_norm(ref.double())).item()
    return rel < 1e-5, f"rel {rel:.1e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugins", action="append", default=[],
                    help="LABEL=DIR (a tpat generate output); {model} in DIR stands for each --model's file stem")
    ap.add_argument("--model", action="append", default=[],
                    help="a benchmark model (repeatable: one table per model, each at its own sizes)")
    ap.add_argument("--compile-dynamic", action="store_true",
                    help="also time torch.compile(dynamic=True) (column compile-dyn), for the dynamic-shape plugins;"
                         " compiled once per workload for all --model sizes")
    ap.add_argument("--out", default="")
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test)")
    ap.add_argument("--no-compile", action="store_true", help="leave torch.compile (static) out")
    ap.add_argument("--time-plugins", default="",
                    help="plugin names (comma-separated) to time in every --plugins folder with random"
                         " inputs of their manifest's static shapes, instead of the workloads (tuned against"
                         " untuned for nodes outside bench.onnx)")
    args = ap.parse_args()
    models = args.model or ["models/generated/bench.onnx"]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    prop = torch.cuda.get_device_properties(0)
    l2 = getattr(prop, "L2_cache_size", 50 << 20)
    reps = 5 if args.quick else 25
    bw = copy_bandwidth()
    print(f"# {prop.name}, {prop.multi_processor_count} SMs, L2 {l2 >> 20} MiB; copy kernel {bw / 1e9:.0f} GB/s;"
          f" torch {torch.__version__}", flush=True)
    plugin_sets = [p.split("=", 1) for p in args.plugins]
    if args.time_plugins:
        return time_plugins(args, plugin_sets, prop, l2, bw, reps)
    only = set(filter(None, args.only.split(",")))
    labels = [lbl for lbl, _ in plugin_sets] + ["eager"] + ([] if args.no_compile else ["compile"]) + (
        ["compile-dyn"] if args.compile_dynamic else [])
    compiled_dynamic: dict[str, Callable[..., torch.Tensor]] = {}
    tables, all_rows = [], []
    for model in models:
        stem = os.path.splitext(os.path.basename(model))[0]
        print(f"## {model}", flush=True)
        rows = run_model(args, model, stem, plugin_sets, only, l2, bw, reps, compiled_dynamic)
        all_rows += rows
        tables.append(f"### {stem}\n\n" + table(rows, labels))
        print(tables[-1], flush=True)
    summary = overall(all_rows, labels)
    print(summary)
    result = {"gpu": prop.name, "date": datetime.date.today().isoformat(), "copyGBs": bw / 1e9,
              "l2MiB": l2 >> 20, "torch": torch.__version__, "command": " ".join(sys.argv), "rows": all_rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


def run_model(args: argparse.Namespace, model: str, stem: str, plugin_sets: list[list[str]], only: set[str], l2: int,
              bw: float, reps: int, compiled_dynamic: dict[str, Callable[..., torch.Tensor]]) -> list[dict]:
    """Times and checks every workload of one model, for every implementation."""
    rows = []
    g = torch.Generator(device="cuda")
    for w in workloads(model):
        if only and w.name not in only:
            continue
        g.manual_seed(1234)
        first = w.make(g)
        out0 = w.torch_fn(*first)
        set_bytes = rw_bytes(first, out0)
        k, cache, per_graph = rotation(set_bytes, l2)
        sets = [first] + [w.make(g) for _ in range(k - 1)]
        floor_s = w.min_bytes(first, out0) / bw
        row = {"model": stem, "name": w.name, "label": w.label, "sets": k, "cache": cache, "floorUs": floor_s * 1e6,
               "minBytes": w.min_bytes(first, out0), "impl": {}}
        del out0
        impls: dict[str, Callable[[list[torch.Tensor]], tuple[Callable[[], None], list[torch.Tensor]]]] = {}
        for label, directory in plugin_sets:
            pdir = os.path.join(directory.replace("{model}", stem), "plugins", f"tpat_{w.name}")
            try:
                plugin = Plugin(pdir, f"tpat_{w.name}")
                impls[label] = plugin.bind
                row.setdefault("tuned", {})[label] = plugin.tuned
            except Exception as exc:  # noqa: BLE001
                row["impl"][label] = {"error": f"{type(exc).__name__}: {exc}"[:200]}

        def torch_bind(fn):
            def bind(ins):
                outs = [None]

                def call():
                    outs[0] = fn(*ins)
                return call, outs
            return bind

        impls["eager"] = torch_bind(w.torch_fn)
        if not args.no_compile:
            impls["compile"] = torch_bind(torch.compile(w.torch_fn, dynamic=False))
        if args.compile_dynamic:
            if w.name not in compiled_dynamic:
                compiled_dynamic[w.name] = torch.compile(w.torch_fn, dynamic=True)
            impls["compile-dyn"] = torch_bind(compiled_dynamic[w.name])
        for label, bind in impls.items():
            try:
                # Correctness on a fresh input set, outputs poisoned first.
                g.manual_seed(99)
                fresh = w.make(g)
                call, outs = bind(fresh)
                for o in outs:
                    if isinstance(o, torch.Tensor):
                        o.fill_(float("nan") if o.is_floating_point() else -7)
                call()
                torch.cuda.synchronize()
                ok, how = check(w, outs[0], fresh)
                del call, outs, fresh
                calls = [bind(s)[0] for s in sets]
                t = time_graph(calls, reps=reps, per_graph=per_graph)
                del calls
                row["impl"][label] = {"us": t * 1e6, "ok": ok, "check": how, "ofFloor": floor_s / t}
            except Exception as exc:  # noqa: BLE001
                row["impl"][label] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            torch.cuda.empty_cache()
            print(f"  {stem:26s} {w.name:18s} {label:11s} {json.dumps(row['impl'][label])}", flush=True)
        rows.append(row)
        del sets, first
        torch.cuda.empty_cache()
    return rows


def rotation(set_bytes: int, l2: int) -> tuple[int, str, int]:
    """How many input sets to rotate (until they fill 4x L2: at most 16 sets, at most 8 GiB), the
    table's cache mark, and how many calls one CUDA graph holds."""
    k = 1 if set_bytes >= 2 * l2 else min(16, math.ceil(4 * l2 / set_bytes), max(1, (8 << 30) // set_bytes))
    cache = "L2" if k * set_bytes < 2 * l2 else ("rot" if k > 1 else "")
    return k, cache, max(k, 4 if set_bytes < (256 << 20) else 2)


def static_dims(shape: list[dict]) -> list[int]:
    """A manifest shape's dims; only constants (--time-plugins needs static shapes)."""
    dims = [d.get("tree", {}).get("int") for d in shape]
    if any(d is None for d in dims):
        raise ValueError("symbolic shape: --time-plugins needs static shapes")
    return [int(d) for d in dims]


def time_plugins(args: argparse.Namespace, plugin_sets: list[list[str]], prop, l2: int, bw: float,
                 reps: int) -> int:
    """Times the named plugins of every plugin set on the same random inputs (floats from N(0,1),
    integers 0) and checks that every set's outputs agree with the first set's."""
    g = torch.Generator(device="cuda")
    rows = []
    for name in filter(None, args.time_plugins.split(",")):
        row = {"name": name, "impl": {}}
        ref = None
        for label, directory in plugin_sets:
            try:
                plugin = Plugin(os.path.join(directory, "plugins", name), name)

                def make() -> list[torch.Tensor]:
                    ins = []
                    for i in plugin.manifest["inputs"]:
                        dims, dt = static_dims(i["shape"]), DT[i["dtype"]]
                        ins.append(torch.randn(dims, generator=g, device="cuda").to(dt) if dt.is_floating_point
                                   else torch.zeros(dims, dtype=dt, device="cuda"))
                    return ins

                g.manual_seed(1234)
                first = make()
                call, outs = plugin.bind(first)
                call()
                torch.cuda.synchronize()
                set_bytes = sum(nbytes(t) for t in first + outs)
                k, cache, per_graph = rotation(set_bytes, l2)
                sets = [first] + [make() for _ in range(k - 1)]
                t = time_graph([plugin.bind(s)[0] for s in sets], reps=reps, per_graph=per_graph)
                impl = {"us": t * 1e6, "tuned": plugin.tuned, "sets": k, "cache": cache}
                if ref is None:
                    ref = [o.double() for o in outs]
                else:
                    rel = max((torch.linalg.vector_norm(o.double() - r) / torch.linalg.vector_norm(r)).item()
                              for o, r in zip(outs, ref))
                    impl["relToFirst"] = rel
                row["impl"][label] = impl
            except Exception as exc:  # noqa: BLE001
                row["impl"][label] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            print(f"  {name:18s} {label:8s} {json.dumps(row['impl'][label])}", flush=True)
        rows.append(row)
    labels = [lbl for lbl, _ in plugin_sets]
    lines = ["| plugin | " + " | ".join(f"{x} us" for x in labels) + " |", "|" + "---|" * (len(labels) + 1)]
    for r in rows:
        cells = []
        for x in labels:
            i = r["impl"].get(x, {})
            bad = "relToFirst" in i and not i["relToFirst"] < 1e-4
            cells.append("err" if "us" not in i else f"{i['us']:.1f}" + (" (DIFFERS)" if bad else ""))
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"gpu": prop.name, "date": datetime.date.today().isoformat(), "copyGBs": bw / 1e9,
                       "torch": torch.__version__, "command": " ".join(sys.argv), "plugins": rows}, f, indent=1)
    return 0


def table(rows: list[dict], labels: list[str]) -> str:
    """A markdown table: time per implementation (us), % of floor, speed-ups of the best plugin."""
    references = [x for x in ("eager", "compile", "compile-dyn") if x in labels]
    plugin_labels = [x for x in labels if x not in references]
    best = plugin_labels[-1] if plugin_labels else None
    # With two plugin sets (static and dynamic), the last one is also compared with the first.
    others = references + (plugin_labels[:1] if len(plugin_labels) > 1 else [])
    head = ["workload", "floor us"] + [f"{x} us" for x in labels]
    if best:
        head += [f"{best} % floor"] + [f"vs {x}" for x in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["label"] + (f" [{r['cache']}]" if r["cache"] else ""), f"{r['floorUs']:.1f}"]
        for x in labels:
            i = r["impl"].get(x, {})
            cells.append("err" if "us" not in i else f"{i['us']:.1f}" + ("" if i.get("ok") else " (WRONG)"))
        if best:
            b = r["impl"].get(best, {})
            if "us" in b:
                cells.append(f"{100 * b['ofFloor']:.0f}%")
                for x in others:
                    o = r["impl"].get(x, {})
                    cells.append(f"{o['us'] / b['us']:.2f}x" if "us" in o else "-")
            else:
                cells += ["-"] * (1 + len(others))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + overall(rows, labels)


def overall(rows: list[dict], labels: list[str]) -> str:
    """Geometric mean and slowest ratio of the last plugin set against every other implementation,
    and how many of its outputs were wrong."""
    references = [x for x in ("eager", "compile", "compile-dyn") if x in labels]
    plugin_labels = [x for x in labels if x not in references]
    if not plugin_labels:
        return ""
    best = plugin_labels[-1]
    others = references + (plugin_labels[:1] if len(plugin_labels) > 1 else [])
    lines = []
    wrong = [f"{r['model']}/{r['name']}" for r in rows for x in labels
             if "us" in r["impl"].get(x, {}) and not r["impl"][x].get("ok")]
    errors = [f"{r['model']}/{r['name']}:{x}" for r in rows for x in labels if "error" in r["impl"].get(x, {})]
    for x in others:
        ratios = [(r["impl"][x]["us"] / r["impl"][best]["us"], f"{r['model']}/{r['name']}") for r in rows
                  if "us" in r["impl"].get(x, {}) and "us" in r["impl"].get(best, {})]
        if ratios:
            gm = math.exp(sum(math.log(v) for v, _ in ratios) / len(ratios))
            low = min(ratios)
            lines.append(f"geomean {best} vs {x}: {gm:.2f}x over {len(ratios)} workloads; slowest {low[0]:.2f}x ({low[1]})")
    lines.append(f"wrong outputs: {', '.join(wrong) if wrong else 'none'}; errors: {', '.join(errors) if errors else 'none'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
