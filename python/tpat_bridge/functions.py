"""Ops that TVM's ONNX frontend lacks but whose ONNX schema defines a function body (Celu,
Swish, SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss, ...): the node is replaced by that body
before import, at the model's opset, so that TVM compiles the body's ops (which it has) into the
plugin's kernels. The plugin is still the one node the user chose: the expansion lives only in the
sub-model the bridge hands to TVM.

onnx's own machinery does the work: the schema gives the function (a context-dependent one is built
for the node's attributes and input types), and ``onnx.inliner`` inlines it with the attribute
references bound and the body converted to the model's opset.
"""

from __future__ import annotations

from typing import Any

import onnx
import onnx.inliner
from onnx import defs, helper

from .subgraph import folded_shape_arithmetic

# The private domain the bodies are registered under while they are inlined.
_DOMAIN = "tpat.function"
# Not expanded: a random op (its body draws numbers no reference can match) and an op over
# sequences (no plugin takes a sequence).
_NOT_EXPANDED = {"Bernoulli", "SequenceMap"}
# Ops TVM's converter map has under the name but converts otherwise than the ONNX schema (TVM's
# Attention is ONNX Runtime's com.microsoft contrib op, not opset 23's): their body instead.
_BODY_OVER_FRONTEND = {"Attention"}
# A body may call other function ops (SoftmaxCrossEntropyLoss calls NegativeLogLikelihoodLoss).
_MAX_DEPTH = 4
# The domains whose function ops are expanded, each with the domain its schemas are registered
# under: the default one, and ONNX's preview domain (FlexAttention, whose body is plain attention).
_DOMAINS = {"": "", "ai.onnx": "", "ai.onnx.preview": "ai.onnx.preview"}


def qualified_name(domain: str, op: str) -> str:
    """An op's name in TPAT's op table: ``op`` in the default domain, ``domain:op`` elsewhere."""
    return op if domain in ("", "ai.onnx") else f"{domain}:{op}"


def _opset(model: onnx.ModelProto, domain: str) -> int:
    """The version ``model`` imports of ``domain`` (of the default domain for ""/"ai.onnx"), or 0."""
    names = ("", "ai.onnx") if domain in ("", "ai.onnx") else (domain,)
    return max((o.version for o in model.opset_import if o.domain in names), default=0)


def _function_of(node: onnx.NodeProto, opset: int, types: dict[str, onnx.TypeProto]) -> onnx.FunctionProto | None:
    """The schema's function body for ``node`` at ``opset`` (of the node's domain), or None."""
    try:
        schema = defs.get_schema(node.op_type, max_inclusive_version=opset, domain=_DOMAINS[node.domain])
    except Exception:  # noqa: BLE001 - not an ONNX op at this opset
        return None
    # Attributes the node leaves to their defaults: the body refers to them by name, and an
    # unbound reference would leave its Constant without a value.
    given = {a.name for a in node.attribute}
    for name, attribute in schema.attributes.items():
        default = attribute.default_value
        if name not in given and default is not None and default.name:
            node.attribute.append(default)
    body: Any = None
    if schema.has_function:
        body = schema.get_function_with_opset_version(schema.since_version)
    elif schema.has_context_dependent_function:
        input_types = [(types.get(name) or onnx.TypeProto()).SerializeToString() for name in node.input]
        body = schema.get_context_dependent_function_with_opset_version(
            schema.since_version, node.SerializeToString(), input_types)
    if not body:
        return None
    function = onnx.FunctionProto()
    if isinstance(body, bytes):
        function.ParseFromString(body)
    else:
        function.CopyFrom(body)
    return function


def _expandable(node: onnx.NodeProto, known: set[str]) -> bool:
    """Whether a node is imported through its op's body: an op of a domain in ``_DOMAINS`` that the
    frontend lacks (or converts another op of that name), whose body TPAT does not leave alone."""
    if node.domain not in _DOMAINS:
        return False
    if node.domain not in ("", "ai.onnx"):
        return qualified_name(node.domain, node.op_type) not in known
    return (node.op_type not in known or node.op_type in _BODY_OVER_FRONTEND) and node.op_type not in _NOT_EXPANDED


def with_function_bodies(model: onnx.ModelProto, known: set[str]) -> onnx.ModelProto:
    """``model``, or a copy in which every node of a domain in ``_DOMAINS`` whose op is not in
    ``known`` (the ops the frontend converts, ``qualified_name``s) and whose schema has a function
    body is that body, inlined."""
    for _ in range(_MAX_DEPTH):
        wanted = [n for n in model.graph.node if _expandable(n, known) and _opset(model, n.domain)]
        if not wanted:
            return model
        expanded = onnx.ModelProto()
        expanded.CopyFrom(model)
        try:
            # the types of the nodes' inputs, for context-dependent bodies (the losses)
            typed = onnx.shape_inference.infer_shapes(expanded)
        except Exception:  # noqa: BLE001 - the types are a help, not a requirement
            typed = expanded
        types = {v.name: v.type for v in [*typed.graph.input, *typed.graph.value_info, *typed.graph.output]}
        # The inliner's version converter needs the type of every value a body reads: those an
        # earlier round inlined (SwiGLU's body calls Swish on its own SwishGate) have none yet.
        declared = {v.name for v in [*expanded.graph.input, *expanded.graph.value_info, *expanded.graph.output]}
        expanded.graph.value_info.extend(v for v in typed.graph.value_info if v.name not in declared)
        types.update({t.name: helper.make_tensor_type_proto(t.data_type, list(t.dims)) for t in expanded.graph.initializer})
        del expanded.functions[:]
        functions: dict[str, onnx.FunctionProto] = {}
        for node in expanded.graph.node:
            if not _expandable(node, known) or not _opset(expanded, node.domain):
                continue
            function = _function_of(node, _opset(expanded, node.domain), types)
            if function is None:
                continue
            # one body per node: context-dependent bodies differ with the node's attributes and types
            name = f"{node.op_type}_{len(functions)}"
            function.domain, function.name = _DOMAIN, name
            node.domain, node.op_type = _DOMAIN, name
            functions[name] = function
        if not functions:
            return model
        expanded.functions.extend(functions.values())
        if not any(o.domain == _DOMAIN for o in expanded.opset_import):
            expanded.opset_import.append(helper.make_opsetid(_DOMAIN, 1))
        model = onnx.inliner.inline_local_functions(expanded, convert_version=True)
        del model.functions[:]
        kept = [o for o in model.opset_import if o.domain != _DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(kept)
        model = folded_shape_arithmetic(model)
    return model


def function_ops(known: set[str]) -> list[str]:
    """The ops (``qualified_name``s) of the domains in ``_DOMAINS`` that are not in ``known`` and
    whose schema, at some opset, has a function body: what ``with_function_bodies`` can expand (the
    Swift op table lists them, scripts/regenerate-tvm-op-table.py)."""
    out = set()
    for schema in defs.get_all_schemas_with_history():
        if _expandable(helper.make_node(schema.name, [], [], domain=schema.domain), known) and (
                schema.has_function or schema.has_context_dependent_function):
            out.add(qualified_name(schema.domain, schema.name))
    return sorted(out)
