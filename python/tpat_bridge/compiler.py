"""Import an ONNX sub-model into Relax and compile it for CUDA with stock TVM, keeping the
intermediate modules the launch plan is read from.

``tvm.compile`` runs TVM's default CUDA pipeline (legalize, FoldConstant, FuseOps/FuseTIR, dlight
``Matmul, GEMV, Reduction, GeneralReduction, Fallback``, memory planning, TIR lowering). A pass
instrument keeps

* the Relax module right after ``StaticPlanBlockMemory`` (call order, memory plan, constants),
* the TIR module right after ``tirx.SplitHostDevice`` (host stubs with ``call_ffi_kernel``),
* the last version of every device ``PrimFunc`` (what CUDA codegen saw: the exact signatures).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Iterator

import onnx
from onnx import helper

from .errors import BridgeError

ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.BFLOAT16: "bfloat16", onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT8: "int8", onnx.TensorProto.INT16: "int16", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.UINT32: "uint32", onnx.TensorProto.UINT64: "uint64", onnx.TensorProto.BOOL: "bool",
}
DTYPE_TO_ONNX = {v: k for k, v in ONNX_DTYPES.items()}

KERNEL_CALLING_CONV = 2  # CallingConv::kDeviceKernelLaunch
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int "
    "long register restrict return short signed sizeof static struct switch typedef union unsigned void "
    "volatile while bool true false class namespace template typename this new delete operator private "
    "public protected virtual friend using".split())


def c_identifier(name: str) -> str:
    """A valid C identifier for a dim_param (TVM's frontend would otherwise parse ``a-b`` or
    ``N+1`` as expressions and drop spaces)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name) or "sym"
    if ident[0].isdigit() or ident in C_KEYWORDS or ident.startswith("tpat_"):
        ident = "s_" + ident
    return ident


def rename_dim_params(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose dim_params are distinct C identifiers; unnamed dims of graph inputs get names."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    mapping: dict[str, str] = {}
    taken: set[str] = set()

    def name_for(original: str) -> str:
        if original not in mapping:
            base = ident = c_identifier(original)
            k = 1
            while ident in taken:
                ident, k = f"{base}_{k}", k + 1
            taken.add(ident)
            mapping[original] = ident
        return mapping[original]

    inits = {t.name for t in graph.initializer}
    for i, vi in enumerate(v for v in graph.input if v.name not in inits):
        for d, dim in enumerate(vi.type.tensor_type.shape.dim):
            if not dim.HasField("dim_value") and not dim.dim_param:
                dim.dim_param = f"unk_{i}_{d}"
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        for dim in vi.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param:
                dim.dim_param = name_for(dim.dim_param)
    return out


@dataclass
class Compiled:
    """What the launch plan is built from."""

    model: onnx.ModelProto           # the (possibly cast-patched) sub-model that was compiled
    relax_main: Any                  # relax.Function "main" after StaticPlanBlockMemory
    host_mod: Any | None             # IRModule after tirx.SplitHostDevice (None: no TIR at all)
    device_funcs: dict[str, Any]     # kernel name -> final device PrimFunc
    cuda_source: str                 # inspect_source("cuda") of the device module ("" if none)
    casts_added: list[str] = field(default_factory=list)  # outputs converted to the graph's dtype


def graph_dtype(value_info: onnx.ValueInfoProto) -> str | None:
    """The dtype name of an ONNX value, or None where the graph does not say."""
    elem = value_info.type.tensor_type.elem_type
    return ONNX_DTYPES.get(elem) if elem else None


def is_device_func(func: Any) -> bool:
    """True for a CUDA kernel PrimFunc (after SplitHostDevice)."""
    from tvm import tirx

    attrs = func.attrs
    return (isinstance(func, tirx.PrimFunc) and attrs is not None and "calling_conv" in attrs
            and int(attrs["calling_conv"]) == KERNEL_CALLING_CONV)


def relax_output_dtypes(mod: Any) -> list[str]:
    """dtypes of the Relax main function's outputs, flattened."""
    import tvm
    from tvm import relax

    ret = mod["main"].ret_ty
    fields = list(ret.fields) if isinstance(ret, tvm.ir.TupleType) else [ret]
    for j, f in enumerate(fields):
        if not isinstance(f, relax.TensorType):
            raise BridgeError("unsupported", f"output {j} is a {type(f).__name__} in TVM, not a tensor "
                              "(the node computes shapes, not data)")
    return [str(f.dtype) for f in fields]


def with_integer_onehot_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model``, or a copy in which OneHot gets int64 where ONNX casts to int64 before use and TVM's
    frontend refuses anything else: a constant non-integer depth becomes an int64 constant, a
    non-integer indices input passes through a Cast to int64 (truncation, as ONNX Runtime does)."""
    import numpy as np
    from onnx import numpy_helper

    integral = {t for t, name in ONNX_DTYPES.items() if name.startswith(("int", "uint"))}
    inits = {t.name: t for t in model.graph.initializer}
    types = {v.name: v.type.tensor_type.elem_type for v in
             [*model.graph.input, *model.graph.value_info, *model.graph.output]}
    types.update({name: t.data_type for name, t in inits.items()})

    def float_depth(n: Any) -> bool:
        return len(n.input) > 1 and n.input[1] in inits and inits[n.input[1]].data_type not in integral

    def float_indices(n: Any) -> bool:
        return types.get(n.input[0], onnx.TensorProto.INT64) not in integral

    if not any(n.op_type == "OneHot" and (float_depth(n) or float_indices(n)) for n in model.graph.node):
        return model
    patched = onnx.ModelProto()
    patched.CopyFrom(model)
    graph, nodes = patched.graph, list(patched.graph.node)
    del graph.node[:]
    for node in nodes:
        if node.op_type == "OneHot" and float_depth(node):
            name = f"{node.input[1]}__tpat_int64"
            if name not in {t.name for t in graph.initializer}:
                depth = numpy_helper.to_array(inits[node.input[1]]).astype(np.int64)
                graph.initializer.append(numpy_helper.from_array(depth, name))
            node.input[1] = name
        if node.op_type == "OneHot" and float_indices(node):
            name = f"{node.input[0]}__tpat_int64"
            graph.node.append(helper.make_node("Cast", [node.input[0]], [name], to=onnx.TensorProto.INT64,
                                               name=f"{node.name or 'onehot'}__tpat_indices_cast"))
            node.input[0] = name
        graph.node.append(node)
    return patched


def import_onnx(model: onnx.ModelProto) -> Any:
    """TVM's Relax ONNX frontend, parameters bound as constants."""
    from tvm.relax.frontend.onnx import from_onnx

    from .converters import tpat_converters

    try:
        with tpat_converters():
            return from_onnx(with_integer_onehot_inputs(model), keep_params_in_input=False)
    except BridgeError:  # TPAT's own converters say what is wrong in the user's terms
        raise
    except Exception as exc:  # noqa: BLE001 - the frontend raises anything
        raise BridgeError("import", f"TVM's ONNX frontend refused {_node_desc(model)}: {_reason(exc)}") from exc


def add_output_casts(model: onnx.ModelProto, outputs: list[int]) -> onnx.ModelProto:
    """A copy of ``model`` whose given outputs pass through a Cast to the graph's dtype."""
    patched = onnx.ModelProto()
    patched.CopyFrom(model)
    graph = patched.graph
    for j in outputs:
        name = graph.output[j].name
        inner = f"{name}__tpat_uncast"
        for node in graph.node:
            for k, out in enumerate(node.output):
                if out == name:
                    node.output[k] = inner
        graph.node.append(helper.make_node("Cast", [inner], [name], to=graph.output[j].type.tensor_type.elem_type,
                                           name=f"{name}__tpat_cast"))
    return patched


def import_with_graph_dtypes(model: onnx.ModelProto) -> tuple[Any, onnx.ModelProto, list[str]]:
    """Import; where TVM's output dtype differs from the graph's (OneHot gives float64), add a
    Cast and import again. Raises BridgeError("dtype") when that does not help."""
    mod = import_onnx(model)
    want = [graph_dtype(o) for o in model.graph.output]
    got = relax_output_dtypes(mod)
    if len(got) != len(want):
        raise BridgeError("internal", f"TVM gives {len(got)} outputs, the graph has {len(want)}")
    bad = [j for j, (w, g) in enumerate(zip(want, got)) if w is not None and w != g]
    if not bad:
        return mod, model, []
    numeric = all(got[j] in DTYPE_TO_ONNX and got[j] != "bool" and want[j] != "bool" for j in bad)
    if not numeric:
        j = bad[0]
        raise BridgeError("dtype", f"output {j} is {got[j]} in TVM but {want[j]} in the graph")
    patched = add_output_casts(model, bad)
    mod = import_onnx(patched)
    got2 = relax_output_dtypes(mod)
    still = [j for j in bad if got2[j] != want[j]]
    if still:
        j = still[0]
        raise BridgeError("dtype", f"output {j} is {got2[j]} in TVM but {want[j]} in the graph, even after a Cast")
    return mod, patched, [f"{model.graph.output[j].name}: {got[j]} -> {want[j]}" for j in bad]


class _Keeper:
    """Pass instrument state: keeps the modules the plan needs."""

    def __init__(self) -> None:
        self.relax_after_plan: Any = None
        self.host_mod: Any = None
        self.device_funcs: dict[str, Any] = {}

    def after(self, mod: Any, name: str) -> None:
        if name == "StaticPlanBlockMemory":
            self.relax_after_plan = mod
            return
        if self.relax_after_plan is None:  # TIR builds inside FoldConstant: not ours
            return
        if name == "tirx.SplitHostDevice":
            self.host_mod = mod
        if self.host_mod is not None and name.startswith(("tirx.", "s_tir.")):
            for gv, func in mod.functions.items():
                if is_device_func(func):
                    self.device_funcs[gv.name_hint] = func


@contextlib.contextmanager
def captured_stderr(log: list[str]) -> Iterator[None]:
    """Redirect file descriptor 2 (TVM's C++ log) into ``log`` for the duration."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            log.append(tmp.read().decode("utf-8", "replace"))


def find_cuda_module(module: Any) -> Any | None:
    """The CUDA module among a runtime module's imports (depth first)."""
    if getattr(module, "kind", None) == "cuda":
        return module
    for sub in module.imports:
        found = find_cuda_module(sub)
        if found is not None:
            return found
    return None


def bool_constants_as_bytes_pass() -> Any:
    """A Relax pass: each BOOL constant becomes a UINT8 constant cast to BOOL where it is used.
    TVM 0.27's CUDA code holds a vector of bools in ``ushort`` lanes and loads one from a ``bool*``
    buffer as ``*(ushort2*)ptr``, two bytes a lane where a bool is one: a causal mask folded to a
    constant and fused into the score MatMul's epilogue (FlexAttention's mask modifier, an
    exporter's causal-mask buffer) was read wrong on the GPU. A UINT8 load is right, and the cast
    fuses into the kernel that reads the mask. Runs after FoldConstant (which would fold the cast
    back), before LegalizeOps legalizes the casts it adds and FuseOps fuses them."""
    import tvm
    from tvm import relax

    @relax.expr_functor.mutator
    class BoolConstants(relax.PyExprMutator):
        def visit_generic_const_(self, op: Any) -> Any:  # noqa: N802 - TVM's visitor protocol
            value = op.value
            if str(getattr(value, "dtype", "")) != "bool":
                return op
            as_bytes = relax.const(value.numpy().astype("uint8"), "uint8")
            return self.builder_.emit(relax.op.astype(as_bytes, "bool"))

    @tvm.transform.module_pass(opt_level=0, name="TPATBoolConstantsAsBytes")
    def transform(mod: Any, _ctx: Any) -> Any:
        mutator = BoolConstants(mod)
        for gv, func in list(mod.functions.items()):
            if isinstance(func, relax.Function):
                mutator.builder_.update_func(gv, mutator.visit_expr(func))
        return mutator.builder_.get()

    return transform


def fuse_passes() -> list[Any]:
    """Library dispatch, legalize (with TPAT's own legalizations), fold constants, fuse: what runs
    before schedules are chosen. Tuning tasks are extracted after exactly these passes, so that
    their workloads match what the build later looks up."""
    from tvm import relax
    from tvm.relax.backend.cuda import pipeline as cuda_pipeline

    from .legalize import fold_frontend_normalization_pass, legalize_map

    return [
        *cuda_pipeline.library_dispatch_passes(None),
        fold_frontend_normalization_pass(),
        relax.transform.LegalizeOps(customize_legalize_map=legalize_map()),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        bool_constants_as_bytes_pass(),
        relax.transform.LegalizeOps(customize_legalize_map=legalize_map()),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]


def _step_aside_rule() -> Any:
    import tvm
    from tvm.s_tir import dlight as dl

    class StepAsideOnFailure(dl.ScheduleRule):
        """A dlight rule that leaves a function to the next rule when it fails on it: TVM 0.27's
        GEMV rule claims fused elementwise functions with 0-d operands (a decomposed GELU's
        constants) and then asserts that they have reduction loops; its Reduction rule raises a
        KeyError normalizing a reduction with a dilated, strided index (Col2Im's), and fails an
        internal check computing a mean over a gathered, sliced tensor (NegativeLogLikelihoodLoss's
        body). (TPAT's injective rule leaves any function it cannot schedule to Fallback itself.)"""

        def __init__(self, rule: Any) -> None:
            self.rule = rule

        def apply(self, func: Any, target: Any, tunable: bool) -> Any:
            try:
                return self.rule.apply(func, target, tunable)
            except (AssertionError, KeyError, ValueError, tvm.error.InternalError):
                return None

        def is_target_available(self, target: Any) -> bool:
            return self.rule.is_target_available(target)

    return StepAsideOnFailure


def relax_pipeline(target: Any, database: Any = None) -> Any:
    """TVM's default CUDA pipeline (relax/backend/cuda/pipeline.py) with TPAT's legalizations and,
    when ``database`` is given, MetaSchedule's tuned schedules applied before dlight schedules the
    rest (what ``meta_schedule.relax_integration.compile_relax`` does)."""
    import tvm
    from tvm import relax
    from tvm.relax.backend.cuda import pipeline as cuda_pipeline
    from tvm.s_tir import dlight as dl

    from .injective import symbolic_injective_rule

    step_aside = _step_aside_rule()

    @tvm.transform.module_pass(opt_level=0)
    def _pipeline(mod: Any, _ctx: Any) -> Any:
        with target:
            mod = tvm.transform.Sequential(fuse_passes())(mod)
            if database is not None:
                with database:
                    mod = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)
            mod = dl.ApplyDefaultSchedule(
                dl.gpu.Matmul(), step_aside(dl.gpu.GEMV()), step_aside(dl.gpu.Reduction()), dl.gpu.GeneralReduction(),
                symbolic_injective_rule(), dl.gpu.Fallback(),
            )(mod)
            mod = tvm.transform.Sequential(
                cuda_pipeline.dataflow_lower_passes(target) + cuda_pipeline.finalize_passes(target))(mod)
        return mod

    return _pipeline


def import_model(model: onnx.ModelProto, log: list[str]) -> tuple[Any, onnx.ModelProto, list[str]]:
    """The Relax module of a sub-model (dim_params renamed, outputs cast to the graph's dtypes)."""
    from tvm.relax.frontend.onnx import onnx_frontend

    from .converters import CONVERTERS, with_size_outputs
    from .declared import with_declared_shapes
    from .functions import with_function_bodies
    from .subgraph import folded_shape_arithmetic

    known = set(onnx_frontend._get_convert_map()) | set(CONVERTERS)  # noqa: SLF001 - the frontend's own table
    # Declared shapes first: rename_dim_params makes each dim one name, a sum of symbols included.
    model = with_function_bodies(rename_dim_params(with_declared_shapes(model)), known)
    if sum(not n.name.endswith("__tpat_cast") for n in model.graph.node) > 1:
        # a fused part's own shape arithmetic (a decomposed LayerNorm's Shape -> Size -> Slice)
        model = folded_shape_arithmetic(model)
    mod, model, casts = import_with_graph_dtypes(with_size_outputs(model))
    log.append("Relax module from the ONNX frontend:\n" + mod.script(show_meta=False))
    return mod, model, casts


def compile_model(model: onnx.ModelProto, arch: str, log: list[str], *, imported: Any = None,
                  target: Any = None, database: Any = None) -> Compiled:
    """Import and compile one sub-model for ``{"kind": "cuda", "arch": arch}`` (or ``target``),
    with the tuned schedules of ``database`` where given. ``imported``: what ``import_model``
    returned, to import once."""
    import tvm

    mod, model, casts = imported if imported is not None else import_model(model, log)
    keeper = _Keeper()

    @tvm.instrument.pass_instrument
    class Keep:  # noqa: D401 - TVM instrument protocol
        """Keeps the modules after the passes the plan reads."""

        def run_after_pass(self, mod: Any, info: Any) -> None:
            keeper.after(mod, info.name)

    if target is None:
        target = tvm.target.Target({"kind": "cuda", "arch": arch})
    try:
        with captured_stderr(log), tvm.transform.PassContext(opt_level=3, instruments=[Keep()]):
            executable = tvm.compile(mod, target=target, relax_pipeline=relax_pipeline(target, database))
    except Exception as exc:  # noqa: BLE001
        raise BridgeError("build", f"TVM could not compile {_node_desc(model)}: {_reason(exc)}") from exc
    if keeper.relax_after_plan is None:
        raise BridgeError("internal", "StaticPlanBlockMemory did not run")
    cuda = find_cuda_module(executable.mod)
    source = cuda.inspect_source("cuda") if cuda is not None else ""
    log.append("Relax main after StaticPlanBlockMemory:\n" + keeper.relax_after_plan["main"].script(show_meta=False))
    if keeper.host_mod is not None:
        log.append("TIR after tirx.SplitHostDevice:\n" + keeper.host_mod.script(show_meta=False))
    return Compiled(model, keeper.relax_after_plan["main"], keeper.host_mod, keeper.device_funcs, source, casts)


def _node_desc(model: onnx.ModelProto) -> str:
    ops = [n.op_type for n in model.graph.node if not n.name.endswith("__tpat_cast")]
    return "/".join(ops) or "an empty graph"


def _reason(exc: BaseException) -> str:
    """TVM's reason in one line: the last non-empty line of the message that says something."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in reversed(lines):
        if not line.startswith(("File ", "at ", "#")) and "Traceback" not in line:
            return f"{type(exc).__name__}: {line}"[:400]
    return type(exc).__name__
