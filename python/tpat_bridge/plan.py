"""The launch plan, read from TVM's own modules (never from running kernels or parsing CUDA).

* The Relax ``main`` after ``StaticPlanBlockMemory`` gives the call order, the memory plan
  (``builtin.alloc_tensor`` for outputs, ``memory.alloc_storage`` + ``memory.alloc_tensor`` for
  intermediates), constants, and views (``vm.builtin.reshape``, tuples).
* Each called TIR function, after ``tirx.SplitHostDevice``, is a host stub: its
  ``call_ffi_kernel(kernel, args..., launch values..., launch_params=[tags])`` calls are the kernel
  launches; host loops with constant trip counts are unrolled, host ``alloc_buffer``s become
  workspace regions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .compiler import Compiled, c_identifier, graph_dtype
from .converters import data_dependent_dims
from .errors import BridgeError
from .expr import Int, Node, Sym, align_up, from_tir, make, symbols_of

WORKSPACE_ALIGNMENT = 256
# --------------------------------------------------------------------------- plan data


@dataclass(frozen=True)
class Loc:
    """Where a tensor lives before outputs are assigned: ``input``, ``constant``, ``alloc`` (an
    output-style allocation), ``storage`` (planned intermediate memory), ``scratch`` (a host stub's
    own allocation); plus a byte offset."""

    kind: str
    index: int
    offset: Node = Int(0)


@dataclass
class BufferRef:
    """A manifest ``Buffer``: kind in input/output/constant/workspace."""

    kind: str
    index: int
    byte_offset: Node = Int(0)


@dataclass
class ScalarArg:
    """A scalar kernel argument."""

    dtype: str
    value: Node


@dataclass
class LaunchStep:
    """One kernel launch (kernel is TVM's name, before renaming)."""

    kernel: str
    grid: list[Node]
    block: list[Node]
    shared: Node
    args: list[Union[Loc, BufferRef, ScalarArg]]


@dataclass
class CopyStep:
    """A device-to-device copy (an output aliasing another buffer)."""

    src: Union[Loc, BufferRef]
    dst: BufferRef
    nbytes: Node


@dataclass
class TensorSpec:
    """An input or output of the node."""

    name: str
    dtype: str
    shape: list[Node]


@dataclass
class Constant:
    """A tensor the kernels read that is not an input."""

    name: str
    dtype: str
    data: np.ndarray


@dataclass
class SymbolSpec:
    """A symbolic size and the input dim that defines it."""

    name: str
    input: int
    dim: int


@dataclass
class Plan:
    """Everything the manifest needs except the kernel table and the source."""

    symbols: list[SymbolSpec]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    constants: list[Constant]
    regions: list[Node]                     # workspace region sizes in bytes
    steps: list[Union[LaunchStep, CopyStep]]


# --------------------------------------------------------------------------- helpers


def dtype_bytes(dtype: str) -> int:
    """Bytes per element (bool is one byte, as TVM stores it)."""
    if dtype == "bool":
        return 1
    # "float32", "int8x4" (lanes ignored, as before), and the narrow floats "float8_e4m3fn",
    # "float4_e2m1fn" (their bits come before the "_").
    m = re.match(r"^[a-z]+(\d+)", dtype)
    if m is None:
        raise ValueError(f"unknown dtype {dtype!r}")
    return max(1, int(m.group(1)) // 8)


# The dtypes a kernel manifest may give inputs and outputs (docs/manifest.md).
MANIFEST_DTYPES = frozenset("float16 bfloat16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 "
                            "bool".split())


def check_manifest_dtype(role: str, index: int, dtype: str) -> None:
    """A clean refusal for dtypes the manifest cannot carry (float8, float4...), instead of a
    manifest that Swift rejects."""
    if dtype not in MANIFEST_DTYPES:
        raise BridgeError("dtype", f"{role} {index} is {dtype}, which TPAT's kernel manifest cannot carry")


def check_graph_shape(index: int, shape: list[Node], value_info: Any, data_dependent: set[int] = frozenset()) -> None:
    """TVM's output shape must be the graph's where both are static (TVM's frontend leaves some
    optional outputs as scalars, e.g. LayerNormalization's Mean and InvStdDev, and ignores some
    attributes, e.g. ConvTranspose's output_shape): a plugin of another shape would be wrong.
    ``data_dependent`` dims are compared by rank only: TVM's is the upper bound, the graph's the
    extent one run happened to give."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return
    dims = tensor_type.shape.dim
    if any(not d.HasField("dim_value") for d in dims) or any(not isinstance(d, Int) for d in shape):
        return
    want = [-1 if k in data_dependent else int(d.dim_value) for k, d in enumerate(dims)]
    got = [-1 if k in data_dependent else d.value for k, d in enumerate(shape)]
    if want != got:
        raise BridgeError("unsupported", f"output {index} has shape {got} in TVM but {want} in the graph")


def sanitize(name: str, taken: set[str]) -> str:
    """A valid, unused C identifier for a size variable (dim_params are already C identifiers:
    see compiler.rename_dim_params)."""
    base = ident = c_identifier(name)
    k = 1
    while ident in taken:
        ident, k = f"{base}_{k}", k + 1
    taken.add(ident)
    return ident


def _product(nodes: list[Node]) -> Node:
    out: Node = Int(1)
    for n in nodes:
        out = make("mul", out, n)
    return out


def _is_op(call: Any, name: str) -> bool:
    import tvm

    return isinstance(call, tvm.ir.Call) and isinstance(call.op, tvm.ir.Op) and call.op.name == name


# --------------------------------------------------------------------------- builder


class PlanBuilder:
    """Walks the Relax main and the host stubs it calls."""

    def __init__(self, compiled: Compiled) -> None:
        self.c = compiled
        self.sym_of: dict[Any, Node] = {}
        self.symbols: list[SymbolSpec] = []
        self.constants: list[Constant] = []
        self._const_objs: list[Any] = []
        self.allocs: list[Node] = []           # bytes of each builtin.alloc_tensor
        self.storages: list[Node] = []         # bytes of each memory.alloc_storage
        self.scratch: list[Node] = []          # bytes of each host alloc_buffer
        self.steps: list[Union[LaunchStep, CopyStep]] = []

    # ---- Relax level

    def relax_node(self, e: Any) -> Node:
        """A Relax-level PrimExpr (shape dim, size) as a node of symbols."""

        def lookup(v: Any) -> Node:
            if v in self.sym_of:
                return self.sym_of[v]
            raise BridgeError("unsupported", f"size '{v}' is not defined by any input dim (data-dependent shape)")

        return from_tir(e, lookup)

    def shape_of(self, ty: Any) -> list[Node]:
        shape = getattr(ty, "shape", None)
        if shape is None or not hasattr(shape, "values"):
            raise BridgeError("unsupported", f"tensor of unknown shape: {ty}")
        return [self.relax_node(d) for d in shape.values]

    def define_symbols(self, model_inputs: list[Any]) -> list[TensorSpec]:
        from tvm import tirx

        params = list(self.c.relax_main.params)
        if len(params) != len(model_inputs):
            raise BridgeError("internal", f"Relax main has {len(params)} params, the graph {len(model_inputs)} inputs")
        taken: set[str] = set()
        for i, p in enumerate(params):
            for d, dim in enumerate(p.ty.shape.values):
                if isinstance(dim, tirx.Var) and dim not in self.sym_of:
                    name = sanitize(str(dim.name), taken)
                    self.sym_of[dim] = Sym(name)
                    self.symbols.append(SymbolSpec(name, i, d))
        specs = []
        for i, (p, vi) in enumerate(zip(params, model_inputs)):
            want, got = graph_dtype(vi), str(p.ty.dtype)
            if want is not None and want != got:
                raise BridgeError("dtype", f"input {i} is {got} in TVM but {want} in the graph")
            check_manifest_dtype("input", i, want or got)
            specs.append(TensorSpec(vi.name, want or got, self.shape_of(p.ty)))
        return specs

    def constant(self, const: Any) -> Loc:
        for k, seen in enumerate(self._const_objs):
            if seen.same_as(const):
                return Loc("constant", k)
        data = const.value.numpy()
        self._const_objs.append(const)
        self.constants.append(Constant(f"c{len(self.constants)}", str(const.ty.dtype), np.ascontiguousarray(data)))
        return Loc("constant", len(self.constants) - 1)

    def run(self) -> tuple[list[Any], list[Any]]:
        """Interpret main; returns (output refs, output types)."""
        import tvm
        from tvm import relax

        main = self.c.relax_main
        env: dict[Any, Any] = {p: Loc("input", i) for i, p in enumerate(main.params)}

        def ref(e: Any) -> Any:
            if isinstance(e, relax.Tuple):
                return tuple(ref(f) for f in e.fields)
            if isinstance(e, relax.TupleGetItem):
                return ref(e.tuple_value)[int(e.index)]
            if type(e).__name__ == "GenericConst" and isinstance(e.ty, relax.TensorType):
                return self.constant(e)
            if e in env:
                return env[e]
            raise BridgeError("unsupported", f"cannot follow Relax value {type(e).__name__}: {e}")

        for block in main.body.blocks:
            for binding in block.bindings:
                value = binding.value
                if isinstance(binding, relax.MatchCast):
                    env[binding.var] = ref(value)
                    continue
                if isinstance(value, relax.Call):
                    env[binding.var] = self.call(value, ref)
                else:
                    env[binding.var] = ref(value)
        result = main.body.body
        ret_ty = main.ret_ty
        tys = list(ret_ty.fields) if isinstance(ret_ty, tvm.ir.TupleType) else [ret_ty]
        r = ref(result)
        refs = list(r) if isinstance(r, tuple) else [r]
        return refs, tys

    def call(self, call: Any, ref: Any) -> Any:
        import tvm
        from tvm import relax

        op = call.op
        if isinstance(op, tvm.ir.GlobalVar):
            self.host_call(op.name_hint, call.args, ref)
            return None
        if isinstance(op, relax.ExternFunc):
            name = str(op.global_symbol)
            if name == "vm.builtin.reshape":
                return ref(call.args[0])
            raise BridgeError("unsupported", f"the plan calls the external function {name}")
        name = op.name
        if name == "relax.builtin.alloc_tensor":
            shape = [self.relax_node(d) for d in call.args[0].values]
            dtype = str(call.args[1].value)
            self.allocs.append(make("mul", _product(shape), Int(dtype_bytes(dtype))))
            return Loc("alloc", len(self.allocs) - 1)
        if name == "relax.memory.alloc_storage":
            self.storages.append(self.relax_node(call.args[0].values[0]))
            return Loc("storage", len(self.storages) - 1)
        if name == "relax.memory.alloc_tensor":
            storage = ref(call.args[0])
            return Loc(storage.kind, storage.index, make("add", storage.offset, self.relax_node(call.args[1])))
        if name in ("relax.reshape", "relax.memory.ensure_zero_offset"):
            return ref(call.args[0])
        if name in ("relax.call_packed", "relax.call_pure_packed"):
            raise BridgeError("unsupported", f"the plan calls a packed function: {call}")
        raise BridgeError("unsupported", f"the plan uses the Relax op {name}")

    # ---- host stubs

    def host_call(self, func_name: str, relax_args: Any, ref: Any) -> None:
        """Interpret one TIR host stub called from Relax with the given arguments."""
        import tvm
        from tvm import relax, tirx

        if self.c.host_mod is None:
            raise BridgeError("internal", f"no TIR module for the call to {func_name}")
        try:
            func = self.c.host_mod[func_name]
        except Exception as exc:  # noqa: BLE001
            raise BridgeError("internal", f"{func_name} is not in the TIR module") from exc

        items: list[tuple[str, Any]] = []  # ("tensor", (Loc, shape)) | ("scalar", Node)
        for a in relax_args:
            if isinstance(a, relax.ShapeExpr):
                items += [("scalar", self.relax_node(v)) for v in a.values]
            elif isinstance(a, tirx.IntImm):
                items.append(("scalar", Int(int(a.value))))
            elif isinstance(getattr(a, "ty", None), tvm.ir.PrimType):
                # a symbolic size handed to a kernel as a number: shape_to_tensor(dim0, dim1, ...),
                # which the frontend emits where ONNX reads a shape as data (Gather's index
                # normalised against the gathered dim)
                items.append(("scalar", self.relax_node(a)))
            else:
                items.append(("tensor", (ref(a), self.shape_of(a.ty))))
        params = list(func.params)
        if len(items) != len(params):
            raise BridgeError("internal", f"{func_name}: {len(items)} arguments for {len(params)} parameters")

        env: dict[Any, Node] = {}
        bufs: dict[Any, tuple[Any, Node, str]] = {}  # buffer var -> (Loc, byte offset, dtype)
        handles: dict[Any, tuple[Any, Node, str]] = {}

        def lookup(v: Any) -> Node:
            if v in env:
                return env[v]
            raise BridgeError("unsupported", f"{func_name}: value '{v}' is not known on the host")

        def node(e: Any) -> Node:
            return from_tir(e, lookup)

        for p, (kind, val) in zip(params, items):
            if isinstance(p.ty, tirx.BufferType):
                if kind != "tensor":
                    raise BridgeError("internal", f"{func_name}: scalar given for buffer {p.name}")
                loc, shape = val
                for hd, rd in zip(p.shape, shape):
                    if isinstance(hd, tirx.Var) and hd not in env:
                        env[hd] = rd
                if isinstance(p.elem_offset, tirx.Var):
                    env[p.elem_offset] = Int(0)
                stride: Node = Int(1)
                strides = list(p.strides)
                for axis in reversed(range(len(strides))):
                    if isinstance(strides[axis], tirx.Var) and strides[axis] not in env:
                        env[strides[axis]] = stride
                    stride = make("mul", stride, shape[axis])
                bufs[p] = (loc, Int(0), str(p.dtype))
            else:
                if kind != "scalar":
                    raise BridgeError("internal", f"{func_name}: tensor given for scalar {p.name}")
                env[p] = val

        def pointer(e: Any) -> tuple[Any, Node, str]:
            if _is_op(e, "tirx.buffer_data"):
                buf = e.args[0]
                if buf in bufs:
                    return bufs[buf]
            if isinstance(e, tirx.Var) and e in handles:
                return handles[e]
            if _is_op(e, "tirx.address_of") and isinstance(e.args[0], tirx.BufferLoad):
                load = e.args[0]
                loc, off, dtype = pointer(load.buffer.data) if load.buffer not in bufs else bufs[load.buffer]
                idx = node(load.indices[0]) if len(load.indices) == 1 else None
                if idx is None:
                    raise BridgeError("unsupported", f"{func_name}: multi-dim address_of")
                return loc, make("add", off, make("mul", idx, Int(dtype_bytes(dtype)))), dtype
            raise BridgeError("unsupported", f"{func_name}: cannot tell which buffer {e} points to")

        def declare(buf: Any, data: Any) -> None:
            loc, off, _ = pointer(data)
            eo = node(buf.elem_offset) if buf.elem_offset is not None else Int(0)
            bufs[buf] = (loc, make("add", off, make("mul", eo, Int(dtype_bytes(str(buf.dtype))))), str(buf.dtype))

        def execute(s: Any) -> None:
            if isinstance(s, tirx.SeqStmt):
                for x in s.seq:
                    execute(x)
            elif isinstance(s, tirx.Bind):
                if isinstance(s.var.ty, tvm.ir.PointerType):
                    handles[s.var] = pointer(s.value)
                else:
                    env[s.var] = node(s.value)
            elif isinstance(s, tirx.LetStmt):
                env[s.var] = node(s.value)
                execute(s.body)
            elif isinstance(s, tirx.DeclBuffer):
                declare(s.buffer, s.data)
            elif isinstance(s, tirx.AllocBuffer):
                scope = s.buffer.scope()
                if scope not in ("global", ""):
                    raise BridgeError("unsupported", f"{func_name}: host allocation in scope {scope}")
                shape = [node(d) for d in s.buffer.shape]
                dtype = str(s.buffer.dtype)
                self.scratch.append(make("mul", _product(shape), Int(dtype_bytes(dtype))))
                bufs[s.buffer] = (Loc("scratch", len(self.scratch) - 1), Int(0), dtype)
            elif isinstance(s, tirx.AttrStmt):
                execute(s.body)
            elif isinstance(s, tirx.AssertStmt):
                pass
            elif isinstance(s, tirx.For):
                lo, extent = node(s.min), node(s.extent)
                if not isinstance(lo, Int) or not isinstance(extent, Int):
                    syms = ", ".join(sorted(symbols_of(extent) | symbols_of(lo)))
                    raise BridgeError("unsupported", f"{func_name}: host-side loop with a symbolic trip count "
                                      f"(depends on {syms}); TPAT cannot express a number of launches that "
                                      f"depends on input shapes")
                for i in range(lo.value, lo.value + extent.value):
                    env[s.loop_var] = Int(i)
                    execute(s.body)
            elif isinstance(s, tirx.IfThenElse):
                cond = node(s.condition)
                if not isinstance(cond, Int):
                    syms = ", ".join(sorted(symbols_of(cond))) or "the input sizes"
                    raise BridgeError("unsupported", f"{func_name}: TVM's lowering picks its launches on the host by a "
                                      f"condition on {syms} (a symbolic dim), which TPAT cannot express yet; give the "
                                      f"model fixed sizes for that dim or leave the node native")
                if cond.value:
                    execute(s.then_case)
                elif s.else_case is not None:
                    execute(s.else_case)
            elif isinstance(s, tirx.Evaluate):
                v = s.value
                if isinstance(v, tirx.IntImm):
                    return
                if _is_op(v, "tirx.call_ffi_kernel"):
                    self.launch(func_name, v, node, pointer)
                    return
                raise BridgeError("unsupported", f"{func_name}: host-side call {v.op if hasattr(v, 'op') else v}")
            else:
                raise BridgeError("unsupported", f"{func_name}: host-side {type(s).__name__} statement")

        execute(func.body)

    def launch(self, func_name: str, call: Any, node: Any, pointer: Any) -> None:
        """One ``call_ffi_kernel`` as a launch step."""
        import tvm

        kernel = str(call.args[0].value)
        tags = [str(t) for t in call.attrs.launch_params]
        args = list(call.args[1:])
        nargs = len(args) - len(tags)
        device = self.c.device_funcs.get(kernel)
        if device is None:
            raise BridgeError("internal", f"kernel {kernel} has no device function")
        dparams = list(device.params)
        if nargs != len(dparams):
            raise BridgeError("internal", f"{kernel}: {nargs} arguments for {len(dparams)} parameters")
        out_args: list[Union[Loc, BufferRef, ScalarArg]] = []
        for a, p in zip(args[:nargs], dparams):
            if isinstance(p.ty, tvm.ir.PointerType):
                loc, off, _ = pointer(a)
                out_args.append(Loc(loc.kind, loc.index, make("add", loc.offset, off)))
            else:
                out_args.append(ScalarArg(str(p.ty.dtype), node(a)))
        grid: list[Node] = [Int(1)] * 3
        block: list[Node] = [Int(1)] * 3
        shared: Node = Int(0)
        for tag, value in zip(tags, args[nargs:]):
            v = node(value)
            if tag.startswith("blockIdx."):
                grid["xyz".index(tag[-1])] = v
            elif tag.startswith("threadIdx."):
                block["xyz".index(tag[-1])] = v
            elif tag.endswith("use_dyn_shared_memory"):
                shared = v
            else:
                raise BridgeError("unsupported", f"{kernel}: launch parameter {tag}")
        self.steps.append(LaunchStep(kernel, grid, block, shared, out_args))

    # ---- outputs and workspace

    def finish(self, inputs: list[TensorSpec], refs: list[Any], tys: list[Any],
               model_outputs: list[Any], data_dependent: dict[int, set[int]] | None = None) -> Plan:
        outputs: list[TensorSpec] = []
        claimed: dict[int, int] = {}  # alloc index -> output index
        copies: list[CopyStep] = []
        for j, (r, ty) in enumerate(zip(refs, tys)):
            shape = self.shape_of(ty)
            dtype = str(ty.dtype)
            check_manifest_dtype("output", j, dtype)
            check_graph_shape(j, shape, model_outputs[j], (data_dependent or {}).get(j, set()))
            name = model_outputs[j].name
            outputs.append(TensorSpec(name, dtype, shape))
            nbytes = make("mul", _product(shape), Int(dtype_bytes(dtype)))
            if not isinstance(r, Loc):
                raise BridgeError("unsupported", f"output {j} is not a tensor the plan can follow")
            if r.kind == "alloc" and r.index not in claimed and r.offset == Int(0):
                claimed[r.index] = j
            else:
                copies.append(CopyStep(r, BufferRef("output", j), nbytes))

        region_of: dict[tuple[str, int], int] = {}
        regions: list[Node] = []
        for kind, sizes in (("storage", self.storages), ("alloc", self.allocs), ("scratch", self.scratch)):
            for i, size in enumerate(sizes):
                if kind == "alloc" and i in claimed:
                    continue
                region_of[(kind, i)] = len(regions)
                regions.append(size)

        def resolve(x: Any) -> Any:
            if not isinstance(x, Loc):
                return x
            if x.kind in ("input", "constant"):
                return BufferRef(x.kind, x.index, x.offset)
            if x.kind == "alloc" and x.index in claimed:
                return BufferRef("output", claimed[x.index], x.offset)
            return BufferRef("workspace", region_of[(x.kind, x.index)], x.offset)

        steps: list[Union[LaunchStep, CopyStep]] = []
        for st in self.steps + copies:
            if isinstance(st, LaunchStep):
                steps.append(LaunchStep(st.kernel, st.grid, st.block, st.shared, [resolve(a) for a in st.args]))
            else:
                steps.append(CopyStep(resolve(st.src), st.dst, st.nbytes))
        return Plan(self.symbols, inputs, outputs, self.constants, regions, steps)


def build_plan(compiled: Compiled) -> Plan:
    """The launch plan of a compiled sub-model."""
    graph = compiled.model.graph
    init_names = {t.name for t in graph.initializer}
    model_inputs = [vi for vi in graph.input if vi.name not in init_names]
    builder = PlanBuilder(compiled)
    inputs = builder.define_symbols(model_inputs)
    refs, tys = builder.run()
    dependent: dict[int, set[int]] = {}
    for d in data_dependent_dims(compiled.model):
        dependent.setdefault(d.output, set()).add(d.dim)
    return builder.finish(inputs, refs, tys, list(graph.output), dependent)


def workspace_layout(regions: list[Node]) -> tuple[list[Node], Node]:
    """Offsets of the regions (each aligned to WORKSPACE_ALIGNMENT) and the total size."""
    offsets: list[Node] = []
    total: Node = Int(0)
    for size in regions:
        offsets.append(total)
        total = make("add", total, align_up(size, WORKSPACE_ALIGNMENT))
    return offsets, total
