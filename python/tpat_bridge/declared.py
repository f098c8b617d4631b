"""Ops whose output shape is a *value* of an input (Expand's shape, Range's limit, Tile's repeats)
computed at run time: their output shape is read from the sub-model's declared output shape.

TVM's ONNX frontend takes those inputs only as constants (a computed one becomes
``vm.builtin.tensor_to_shape``, a host call a plugin cannot make). The model's own shape inference
usually knows the output's dims all the same (``Range(0, Shape(ids)[1])`` is ``[sequence]``), and
TPAT's extraction (NodeExtractor, Swift) gives the sub-model graph inputs whose dims carry every
symbol of the declared output shape: the node's own inputs, or a *dim carrier* (a tensor of the
model with those dims, whose data the kernels never read). ``with_declared_shapes`` writes, into
each such node of the sub-model, where each output dim comes from (appended inputs and the
``tpat_output_dims`` attribute); the converters below build the output at that shape, so the
kernels follow the run-time dims with no host call. The output's values still come from the
node's own inputs: a declared shape that does not match them is caught by the self-tests, which
run on values the original model produced.
"""

from __future__ import annotations

import re
from typing import Any

import onnx
from onnx import helper

from .errors import BridgeError
from .subgraph import graph_constants, graph_output_of

# The attribute ``with_declared_shapes`` adds: per output dim, a sum of products of integers and
# ``i<k>_<d>`` (dim d of appended input k).
DIMS_ATTRIBUTE = "tpat_output_dims"

# op type -> the index of its input whose value gives the output shape
SHAPE_OPERAND = {"Expand": 1, "Range": 1, "Tile": 1}
# op type -> how many inputs the op itself has (the carriers follow)
OWN_INPUTS = {"Expand": 2, "Range": 3, "Tile": 2}


_TERM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|\d+)\s*")


def _sum_of_products(dim: str) -> list[tuple[int, list[str]]] | None:
    """``dim`` as signed products of symbols and integers (``past_sequence + sequence``, the form
    of NodeExtractor.sumOfProductsTerms), or None."""
    terms: list[tuple[int, list[str]]] = []
    for sign, term in re.findall(r"([+-]?)([^+-]+)", dim.replace(" ", "")):
        factors = term.split("*")
        if not all(_TERM.fullmatch(f) for f in factors):
            return None
        terms.append((-1 if sign == "-" else 1, factors))
    return terms or None


def _dim_reference(dim: str, where: dict[str, str]) -> str | None:
    """``dim`` with each symbol replaced by its ``i<k>_<d>`` reference (``where``), or None when a
    symbol has none."""
    terms = _sum_of_products(dim)
    if terms is None:
        return None
    out = []
    for sign, factors in terms:
        refs = []
        for f in factors:
            if f.isdigit():
                refs.append(f)
            elif f in where:
                refs.append(where[f])
            else:
                return None
        out.append(("-" if sign < 0 else "+") + "*".join(refs))
    return "".join(out)


def with_declared_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model``, or a copy in which every Expand/Range/Tile whose shape operand is computed at run
    time, and whose declared output dims are each static or a sum of products of graph inputs'
    dims, reads them there (its ``tpat_output_dims``: per dim, an expression over ``i<k>_<d>``,
    dim d of appended input k)."""
    constants = graph_constants(model.graph)
    first_seen: dict[str, tuple[str, int]] = {}
    for i in model.graph.input:
        for k, e in enumerate(i.type.tensor_type.shape.dim):
            if e.dim_param and e.dim_param not in first_seen:
                first_seen[e.dim_param] = (i.name, k)

    def plan(node: onnx.NodeProto) -> tuple[list[str], list[str]] | None:
        if node.domain not in ("", "ai.onnx") or node.op_type not in SHAPE_OPERAND:
            return None
        operand = SHAPE_OPERAND[node.op_type]
        if len(node.input) <= operand or node.input[operand] in constants or len(node.input) > OWN_INPUTS[node.op_type]:
            return None
        out = graph_output_of(model.graph, node.output[0])
        if out is None or not out.type.tensor_type.HasField("shape"):
            return None
        out_dims = out.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") and not d.dim_param for d in out_dims):
            return None
        # the graph inputs whose dims the declared shape uses, in their order
        used = {first_seen[t][0] for d in out_dims if d.dim_param for _, fs in (_sum_of_products(d.dim_param) or []) for t in fs
                if t in first_seen}
        carriers = [i.name for i in model.graph.input if i.name in used]
        where = {sym: f"i{carriers.index(name)}_{k}" for sym, (name, k) in first_seen.items() if name in used}
        dims: list[str] = []
        for d in out_dims:
            ref = str(d.dim_value) if d.HasField("dim_value") else _dim_reference(d.dim_param, where)
            if ref is None:
                return None
            dims.append(ref)
        return carriers, dims

    plans = [plan(n) for n in model.graph.node]
    if not any(plans):
        return model
    patched = onnx.ModelProto()
    patched.CopyFrom(model)
    for node, p in zip(patched.graph.node, plans):
        if p is None:
            continue
        carriers, dims = p
        while len(node.input) < OWN_INPUTS[node.op_type]:
            node.input.append("")
        node.input.extend(carriers)
        node.attribute.append(helper.make_attribute(DIMS_ATTRIBUTE, dims))
    return patched


def _declared_shape(op: str, inputs: list[Any], attr: dict[str, Any]) -> list[Any]:
    """The output shape ``tpat_output_dims`` gives, as TVM expressions of the inputs' dims."""
    from tvm import tirx

    extra = inputs[OWN_INPUTS[op]:]
    shape = []
    for dim in attr[DIMS_ATTRIBUTE]:
        dim = dim.decode() if isinstance(dim, bytes) else dim
        total: Any = tirx.const(0, "int64")
        for sign, factors in _sum_of_products(dim) or []:
            product: Any = tirx.const(sign, "int64")
            for f in factors:
                if f.isdigit():
                    product = product * tirx.const(int(f), "int64")
                else:
                    k, d = (int(x) for x in f[1:].split("_"))
                    product = product * tirx.Cast("int64", extra[k].ty.shape.values[d])
            total = total + product
        shape.append(tvm_simplify(total))
    return shape


def tvm_simplify(expr: Any) -> Any:
    """``expr`` simplified (a static dim back to an integer)."""
    from tvm import sym

    return sym.Analyzer().simplify(expr)


def _refuse_unrelated(op: str, inputs: list[Any], params: Any) -> None:
    """A shape operand computed at run time whose output dims no input gives: TVM would read the
    values on the host (``tensor_to_shape``), which a plugin cannot; say so in the user's terms."""
    from tvm import relax
    from tvm.relax.frontend.onnx.onnx_frontend import get_constant

    operand = inputs[SHAPE_OPERAND[op]] if len(inputs) > SHAPE_OPERAND[op] else None
    if operand is None or not isinstance(get_constant(operand, params), relax.Var):
        return
    what = {"Expand": "target shape", "Range": "limit", "Tile": "repeats"}[op]
    raise BridgeError("unsupported", f"{op}: its {what} is computed at run time, and the model's shape inference does "
                                     "not relate its output's dims to a tensor computed before it (a dim carrier); "
                                     "leave the node native, or give the model's inputs named dims so that the "
                                     "output's dims follow from them")


def _frontend(op: str) -> Any:
    from tvm.relax.frontend.onnx import onnx_frontend

    return getattr(onnx_frontend, op).get_converter(10**6)


def _scalar(x: Any) -> Any:
    return x[0] if len(x.shape) == 1 else x()


def convert_expand(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX Expand: to the declared shape when its target shape is computed at run time, else TVM's."""
    from tvm import relax

    if DIMS_ATTRIBUTE not in attr:
        _refuse_unrelated("Expand", inputs, params)
        return _frontend("Expand")(bb, inputs, attr, params)
    shape = _declared_shape("Expand", inputs, attr)
    return relax.op.broadcast_to(inputs[0], relax.ShapeExpr(shape))


def convert_range(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX Range: ``start + i * delta`` over the declared length when its bounds are computed at
    run time, else TVM's."""
    from tvm import te, tirx

    if DIMS_ATTRIBUTE not in attr:
        _refuse_unrelated("Range", inputs, params)
        return _frontend("Range")(bb, inputs, attr, params)
    (n,) = _declared_shape("Range", inputs, attr)
    start, delta = inputs[0], inputs[2]
    dtype = start.ty.dtype

    def values(s: Any, d: Any) -> Any:
        return te.compute((n,), lambda i: _scalar(s) + tirx.Cast(dtype, i) * _scalar(d), name="range")

    return bb.emit_te(values, start, delta, primfunc_name_hint="range")


def convert_tile(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ONNX Tile: each output element reads its input element modulo the input's dims, at the
    declared shape, when the repeats are computed at run time, else TVM's."""
    from tvm import te, tirx

    if DIMS_ATTRIBUTE not in attr:
        _refuse_unrelated("Tile", inputs, params)
        return _frontend("Tile")(bb, inputs, attr, params)
    shape = _declared_shape("Tile", inputs, attr)

    def tiled(x: Any) -> Any:
        def element(*idx: Any) -> Any:
            return x[tuple(tirx.floormod(tirx.Cast("int64", i), tirx.Cast("int64", e)) for i, e in zip(idx, x.shape))]

        return te.compute(shape, element, name="tile")

    return bb.emit_te(tiled, inputs[0], primfunc_name_hint="tile")


def drawn_operand(op: str, pos: int, output_shape: list[int], input_shape: list[int], known: dict[int, Any],
                  dtype: Any) -> Any:
    """A self-test value for input ``pos`` of ``op`` that agrees with the output's declared shape
    at the drawn sizes (``output_shape``): Expand's target shape, Tile's repeats, Range's limit
    (after ``known`` start and delta, drawn or constant); None for other inputs, drawn as usual."""
    import numpy as np

    if op == "Expand" and pos == 1:
        return np.array(output_shape, dtype)
    if op == "Tile" and pos == 1:
        return np.array([o // max(i, 1) for o, i in zip(output_shape, input_shape)], dtype)
    if op == "Range" and pos in (0, 1, 2):
        n = output_shape[0] if output_shape else 0
        start = np.asarray(known.get(0, np.array(1, dtype))).reshape(-1)[0]
        delta = np.asarray(known.get(2, np.array(1, dtype))).reshape(-1)[0]
        if pos == 0:
            return np.array(start, dtype)
        if pos == 2:
            return np.array(delta, dtype)
        # ceil((limit - start) / delta) == n; half a step short for floating point
        steps = n if np.issubdtype(np.dtype(dtype), np.integer) else n - 0.5
        return np.array(start + steps * delta, dtype)
    return None


def declared_sizes(vi: onnx.ValueInfoProto, dims: dict[str, int]) -> list[int] | None:
    """The shape ``vi`` declares at the sizes ``dims`` (symbol -> size), sums of products of
    symbols included; None when a dim is unnamed or a symbol has no size."""
    shape = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
            continue
        total = 0
        for sign, factors in _sum_of_products(d.dim_param) or [(0, [])]:
            if sign == 0:
                return None
            product = sign
            for f in factors:
                if f.isdigit():
                    product *= int(f)
                elif f in dims:
                    product *= int(dims[f])
                else:
                    return None
            total += product
        shape.append(total)
    return shape
