"""What TPAT's converters read of a sub-model's graph (the one-node model the extraction stage
writes): its constants, and which graph output a node output becomes."""

from __future__ import annotations

import onnx


def graph_constants(graph: onnx.GraphProto) -> set[str]:
    """The values whose data is known before the run: initializers and Constant outputs."""
    return {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}


def graph_output_of(graph: onnx.GraphProto, name: str) -> onnx.ValueInfoProto | None:
    """The graph output ``name`` is, directly or through TPAT's boundary Cast (a Cast keeps the
    shape), or None."""
    outputs = {o.name: o for o in graph.output}
    seen = set()
    while name not in outputs and name not in seen:
        seen.add(name)
        nxt = next((n.output[0] for n in graph.node if n.op_type == "Cast" and n.input and n.input[0] == name), None)
        if nxt is None:
            return None
        name = nxt
    return outputs.get(name)
