"""The kernel manifest (docs/manifest.md, version 1): kernel table, renaming, validation, JSON."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from . import MANIFEST_VERSION
from .compiler import Compiled, graph_dtype
from .converters import data_dependent_dims
from .errors import BridgeError
from .expr import Int, Node, symbols_of, to_json
from .plan import BufferRef, CopyStep, LaunchStep, Plan, ScalarArg, WORKSPACE_ALIGNMENT, workspace_layout

# TVM's CUDA codegen spelling of element types
CUDA_TYPES = {
    "float16": "half", "bfloat16": "nv_bfloat16", "float32": "float", "float64": "double",
    "int8": "signed char", "int16": "short", "int32": "int", "int64": "int64_t",
    "uint8": "unsigned char", "uint16": "unsigned short", "uint32": "unsigned int", "uint64": "uint64_t",
    "bool": "bool",
}
# fixed-width spelling for scalar launch arguments
ARG_TYPES = {
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t", "uint8": "uint8_t",
    "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t", "bool": "bool", "float32": "float",
    "float64": "double", "float16": "half", "bfloat16": "nv_bfloat16",
}
MAX_THREADS_PER_BLOCK = 1024


@dataclass
class KernelParam:
    """One CUDA parameter of a kernel."""

    name: str
    kind: str  # pointer | scalar
    dtype: str
    ctype: str


@dataclass
class Kernel:
    """A ``__global__`` function of the source (name already prefixed)."""

    name: str
    tvm_name: str
    params: list[KernelParam]
    max_threads: int | None


def kernel_params(func: Any) -> list[KernelParam]:
    """The parameter list of a device PrimFunc, as CUDA codegen prints it."""
    import tvm

    noalias = func.attrs is not None and "tirx.noalias" in func.attrs and bool(func.attrs["tirx.noalias"])
    out = []
    for p in func.params:
        if isinstance(p.ty, tvm.ir.PointerType):
            dtype = str(p.ty.element_type.dtype)
            ctype = CUDA_TYPES.get(dtype, dtype) + ("* __restrict__" if noalias else "*")
            out.append(KernelParam(str(p.name), "pointer", dtype, ctype))
        else:
            dtype = str(p.ty.dtype)
            out.append(KernelParam(str(p.name), "scalar", dtype, CUDA_TYPES.get(dtype, dtype)))
    return out


def launch_bound(func: Any) -> int | None:
    """The ``__launch_bounds__`` CUDA codegen emits: the product of the kernel's threadIdx
    extents when constant and not 1 (TVM's ThreadIdxExtractor), else None."""
    from tvm import tirx

    extents = {"threadIdx.x": 1, "threadIdx.y": 1, "threadIdx.z": 1}
    constant = True

    def visit(s: Any) -> None:
        nonlocal constant
        if isinstance(s, tirx.AttrStmt):
            if str(s.attr_key) == "thread_extent":
                tag = str(s.node.thread_tag)
                if tag in extents:
                    if isinstance(s.value, tirx.IntImm):
                        extents[tag] = int(s.value.value)
                    else:
                        constant = False
            visit(s.body)
        elif isinstance(s, tirx.SeqStmt):
            for x in s.seq:
                visit(x)
        elif isinstance(s, tirx.IfThenElse):
            visit(s.then_case)
            if s.else_case is not None:
                visit(s.else_case)
        elif hasattr(s, "body") and s.body is not None:
            visit(s.body)

    visit(func.body)
    total = extents["threadIdx.x"] * extents["threadIdx.y"] * extents["threadIdx.z"]
    return total if constant and total != 1 else None


def rename_kernels(source: str, names: list[str], prefix: str) -> str:
    """Prefix every kernel symbol in the CUDA text (exact identifiers, one pass)."""
    if not names:
        return source
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b")
    return pattern.sub(lambda m: prefix + m.group(1), source)


# --------------------------------------------------------------------------- JSON


def _buffer(ref: BufferRef) -> dict:
    out: dict[str, Any] = {"kind": ref.kind, "index": ref.index}
    if ref.byte_offset != Int(0):
        out["byteOffset"] = to_json(ref.byte_offset)
    return out


def _dims(nodes: list[Node]) -> list[dict]:
    return [to_json(n) for n in nodes]


@dataclass
class ManifestBuilder:
    """Assembles, validates and writes one node's manifest."""

    compiled: Compiled
    plan: Plan
    node_name: str
    op_type: str
    domain: str
    arch: str
    prefix: str
    tvm_version: str
    tuned: bool = False  # built with MetaSchedule's schedules for at least one task

    def kernels(self) -> list[Kernel]:
        used: list[str] = []
        for st in self.plan.steps:
            if isinstance(st, LaunchStep) and st.kernel not in used:
                used.append(st.kernel)
        out = []
        for name in used:
            func = self.compiled.device_funcs[name]
            out.append(Kernel(self.prefix + name, name, kernel_params(func), launch_bound(func)))
        return out

    def source(self) -> str:
        return rename_kernels(self.compiled.cuda_source, list(self.compiled.device_funcs), self.prefix)

    def validate(self, kernels: list[Kernel], source: str) -> None:
        """Checks before the manifest leaves the bridge (BridgeError on failure)."""
        by_name = {k.tvm_name: k for k in kernels}
        for k in kernels:
            if not re.search(r"\b" + re.escape(k.name) + r"\b", source):
                raise BridgeError("internal", f"kernel {k.name} is not in the CUDA source")
        sym_names = {s.name for s in self.plan.symbols}
        n_regions = len(self.plan.regions)
        limits = {"input": len(self.plan.inputs), "output": len(self.plan.outputs),
                  "constant": len(self.plan.constants), "workspace": n_regions}

        def check_nodes(nodes: list[Node], what: str) -> None:
            for n in nodes:
                unknown = symbols_of(n) - sym_names
                if unknown:
                    raise BridgeError("unsupported", f"{what} uses undefined sizes {sorted(unknown)}")

        def check_buffer(b: BufferRef, what: str) -> None:
            if b.kind not in limits or not 0 <= b.index < limits[b.kind]:
                raise BridgeError("internal", f"{what}: buffer {b.kind} {b.index} out of range")
            check_nodes([b.byte_offset], what)

        for st in self.plan.steps:
            if isinstance(st, CopyStep):
                check_buffer(st.src, "copy")
                check_buffer(st.dst, "copy")
                check_nodes([st.nbytes], "copy")
                continue
            k = by_name[st.kernel]
            if len(st.args) != len(k.params):
                raise BridgeError("internal", f"{k.name}: {len(st.args)} arguments for {len(k.params)} parameters")
            for a, p in zip(st.args, k.params):
                if isinstance(a, BufferRef):
                    if p.kind != "pointer":
                        raise BridgeError("internal", f"{k.name}: buffer bound to scalar parameter {p.name}")
                    check_buffer(a, k.name)
                elif isinstance(a, ScalarArg):
                    if p.kind != "scalar" or a.dtype != p.dtype:
                        raise BridgeError("internal", f"{k.name}: scalar {a.dtype} bound to {p.kind} {p.name}")
                    check_nodes([a.value], k.name)
                else:
                    raise BridgeError("internal", f"{k.name}: unresolved argument {a}")
            check_nodes(st.grid + st.block + [st.shared], k.name)
            bound = k.max_threads or MAX_THREADS_PER_BLOCK
            threads = 1
            for b in st.block:
                if not isinstance(b, Int):
                    threads = -1
                    break
                threads *= b.value
            if threads < 0:
                if k.max_threads is not None:
                    raise BridgeError("unsupported", f"{k.name}: symbolic block size with launch bounds")
            elif threads > bound or threads < 1:
                raise BridgeError("internal", f"{k.name}: block of {threads} threads exceeds its bound {bound}")
        graph = self.compiled.model.graph
        for j, (spec, vi) in enumerate(zip(self.plan.outputs, graph.output)):
            want = graph_dtype(vi)
            if want is not None and spec.dtype != want:
                raise BridgeError("dtype", f"output {j} is {spec.dtype} in TVM but {want} in the graph")
        for spec in self.plan.inputs + self.plan.outputs:
            check_nodes(spec.shape, spec.name)
        for d in data_dependent_dims(self.compiled.model):
            if not (0 <= d.output < len(self.plan.outputs) and 0 <= d.size_output < len(self.plan.outputs)
                    and 0 <= d.dim < len(self.plan.outputs[d.output].shape)):
                raise BridgeError("internal", f"data-dependent dim {d} is outside the plan's outputs")
            size = self.plan.outputs[d.size_output]
            if size.dtype != "int32" or size.shape:
                raise BridgeError("internal", f"size output {size.name} is {size.dtype}{size.shape}, not a 0-D int32")
        check_nodes(self.plan.regions, "workspace")

    def _output(self, j: int, t: Any) -> dict:
        out: dict[str, Any] = {"name": t.name, "dtype": t.dtype, "shape": _dims(t.shape)}
        dims = [{"dim": d.dim, "sizeOutput": d.size_output} for d in data_dependent_dims(self.compiled.model) if d.output == j]
        if dims:
            out["dataDependent"] = dims
        return out

    def document(self, kernels: list[Kernel], source: str) -> dict:
        by_name = {k.tvm_name: k for k in kernels}
        steps: list[dict] = []
        for st in self.plan.steps:
            if isinstance(st, CopyStep):
                steps.append({"kind": "copy", "src": _buffer(st.src), "dst": _buffer(st.dst),
                              "bytes": to_json(st.nbytes)})
                continue
            args = []
            for a in st.args:
                if isinstance(a, BufferRef):
                    args.append({"kind": "buffer", "buffer": _buffer(a)})
                else:
                    args.append({"kind": "scalar", "ctype": ARG_TYPES.get(a.dtype, a.dtype), "value": to_json(a.value)})
            steps.append({"kind": "kernel", "kernel": by_name[st.kernel].name, "grid": _dims(st.grid),
                          "block": _dims(st.block), "sharedMemBytes": to_json(st.shared), "args": args})
        return {
            "version": MANIFEST_VERSION,
            "node": {"name": self.node_name, "opType": self.op_type, "domain": self.domain},
            "target": {"kind": "cuda", "arch": self.arch, "tvmVersion": self.tvm_version, "tuned": self.tuned},
            "kernelPrefix": self.prefix,
            "symbols": [{"name": s.name, "input": s.input, "dim": s.dim} for s in self.plan.symbols],
            "inputs": [{"name": t.name, "dtype": t.dtype, "shape": _dims(t.shape)} for t in self.plan.inputs],
            "outputs": [self._output(j, t) for j, t in enumerate(self.plan.outputs)],
            "constants": [{"name": c.name, "dtype": c.dtype, "shape": [int(d) for d in c.data.shape],
                           "file": f"constants/{c.name}.bin", "bytes": int(c.data.nbytes)}
                          for c in self.plan.constants],
            "kernels": [{"name": k.name,
                         "params": [{"name": p.name, "kind": p.kind, "dtype": p.dtype, "ctype": p.ctype}
                                    for p in k.params],
                         "maxThreadsPerBlock": k.max_threads} for k in kernels],
            "launches": steps,
            "workspace": workspace_doc(self.plan.regions),
            "cudaSource": source,
        }

    def write(self, out_dir: str, specials: list[tuple["ManifestBuilder", dict[str, int]]] | None = None,
              log: list[str] | None = None) -> str:
        """Validate and write manifest.json and constants/; returns the manifest path.
        ``specials``: builders of the same node compiled for static sizes, each with its sizes,
        added in order as the manifest's specializations where they can share a plugin with the
        generic plan (specialize.py)."""
        from .specialize import merge

        kernels = self.kernels()
        source = self.source()
        self.validate(kernels, source)
        doc = self.document(kernels, source)
        constants = list(self.plan.constants)
        regions = list(self.plan.regions)
        for k, (special, sizes) in enumerate(specials or []):
            added, added_regions = merge(doc, constants, regions, special, sizes, log if log is not None else [], k)
            constants += added
            regions += added_regions
        os.makedirs(os.path.join(out_dir, "constants"), exist_ok=True)
        for c in constants:
            data = c.data
            if data.dtype.byteorder == ">":
                data = data.astype(data.dtype.newbyteorder("<"))
            with open(os.path.join(out_dir, "constants", f"{c.name}.bin"), "wb") as f:
                f.write(data.tobytes(order="C"))
        path = os.path.join(out_dir, "manifest.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        return path


def workspace_doc(regions: list[Node]) -> dict:
    """The manifest's workspace: the regions laid out one after another, each aligned."""
    offsets, total = workspace_layout(regions)
    return {"alignment": WORKSPACE_ALIGNMENT,
            "regions": [{"offset": to_json(o), "bytes": to_json(s)} for o, s in zip(offsets, regions)],
            "totalBytes": to_json(total)}


def node_info(model: Any) -> tuple[str, str, str]:
    """(name, opType, domain) of the sub-model's node (the first one not added by the bridge)."""
    for n in model.graph.node:
        if not n.name.endswith("__tpat_cast"):
            return n.name or n.op_type, n.op_type, n.domain
    return "", "", ""

