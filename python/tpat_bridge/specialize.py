"""Specializations: a static launch plan for particular sizes of a node's symbolic dims, beside
the generic plan that serves every size (issue 15; ``tpat generate --profile NAME=MIN:OPT:MAX``
asks for one at OPT and one at MAX, in that order).

TVM's default schedules for symbolic shapes (dlight's) bound-check every tile and cannot be tuned
by MetaSchedule; the same node compiled for static shapes gets TVM's static schedules, and tuning.
The plugin keeps both: at enqueue, the specialization runs when the actual sizes are the ones it
was compiled for (its ``when`` expression over the manifest's symbols), the generic plan otherwise.

All plans live in one manifest (docs/manifest.md, ``specializations``): one CUDA translation unit
(the specialization's kernels carry their own prefix), one constants table (a weight both plans
read is stored once), one workspace (the specialization's regions after the generic plan's).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
import onnx

from .expr import Int, Node, Sym, make, to_json

# Where TVM's CUDA text turns from its preamble (includes, type macros, helpers) to the kernels.
_FIRST_KERNEL = re.compile(r'^extern "C" __global__', re.MULTILINE)


def specialized_model(model: onnx.ModelProto, sizes: dict[str, int], log: list[str]) -> onnx.ModelProto | None:
    """``model`` with each dim named in ``sizes`` set to its size (inputs, outputs, value_info), or
    None, with the reason in ``log``, when a symbolic input dim would remain: the plan would not be
    static, and a guard over symbols it does not bind could not be written."""
    out = copy.deepcopy(model)
    graph = out.graph
    used: set[str] = set()
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in sizes:
                used.add(d.dim_param)
                d.dim_value = int(sizes[d.dim_param])
    initializers = {t.name for t in graph.initializer}
    left = sorted({d.dim_param for vi in graph.input if vi.name not in initializers
                   for d in vi.type.tensor_type.shape.dim if d.HasField("dim_param") or not d.HasField("dim_value")})
    if left or not used:
        why = f"the inputs keep the symbolic dims {left}" if left else "no input dim has these names"
        log.append(f"specialization for {sizes} skipped: {why}")
        return None
    return out


def condition(sizes: dict[str, int], symbols: list[str]) -> Node | None:
    """Nonzero exactly when every symbol of the plan has its specialized size: the product of
    ``symbol == size`` over the plan's symbols; None when one of them has no size."""
    if not symbols or any(s not in sizes for s in symbols):
        return None
    cond: Node | None = None
    for s in symbols:
        term = make("eq", Sym(s), Int(int(sizes[s])))
        cond = term if cond is None else make("mul", cond, term)
    return cond


def split_source(source: str) -> tuple[str, str]:
    """(preamble, kernels) of TVM's CUDA text."""
    m = _FIRST_KERNEL.search(source)
    return (source, "") if m is None else (source[:m.start()], source[m.start():])


def specialization_prefix(k: int) -> str:
    """The prefix of the k-th specialization's kernel and constant names (after the plugin's):
    ``at_`` for the first, ``at2_``, ``at3_`` after it."""
    return "at_" if k == 0 else f"at{k + 1}_"


def merge(doc: dict[str, Any], generic_constants: list[Any], generic_regions: list[Node], special: Any,
          sizes: dict[str, int], log: list[str], k: int = 0) -> tuple[list[Any], list[Node]]:
    """Adds ``special`` (the ManifestBuilder of the static compile) to ``doc`` as its k-th
    specialization, for ``sizes``; ``generic_constants`` and ``generic_regions``: the constants
    and workspace regions ``doc`` holds so far (the generic plan's and the specializations' before
    this one). Returns the constants and regions this specialization adds (the constants to be
    written beside the others). Leaves ``doc`` as it was, and says why in ``log``, when the two
    compilations cannot share a plugin, or when an earlier specialization already covers these
    sizes."""
    from .manifest import workspace_doc

    def skip(why: str) -> tuple[list[Any], list[Node]]:
        log.append(f"specialization for {sizes} skipped: {why}")
        return [], []

    cond = condition(sizes, [s["name"] for s in doc["symbols"]])
    if cond is None:
        return skip(f"the plan's sizes {[s['name'] for s in doc['symbols']]} are not all given")
    if any(s["when"] == to_json(cond) for s in doc.get("specializations", [])):
        return skip("an earlier specialization is for the same sizes of the plan's symbols")
    if any("dataDependent" in o for o in doc["outputs"]):
        return skip("an output's size depends on the input values")
    plan = special.plan
    if ([t.dtype for t in plan.inputs] != [t["dtype"] for t in doc["inputs"]]
            or [t.dtype for t in plan.outputs] != [t["dtype"] for t in doc["outputs"]]):
        return skip("its inputs or outputs differ from the generic plan's")
    kernels = special.kernels()
    source = special.source()
    special.validate(kernels, source)
    preamble, kernel_text = split_source(source)
    generic_preamble, _ = split_source(doc["cudaSource"])
    if preamble != generic_preamble:
        # One translation unit holds both: TVM's helpers would be defined twice.
        return skip("TVM's CUDA preamble differs between the two compilations")
    sdoc = special.document(kernels, source)

    # Constants: a weight both plans read is stored once.
    names = {c["name"] for c in doc["constants"]}
    constant_index: dict[int, int] = {}
    added: list[Any] = []
    for j, c in enumerate(plan.constants):
        same = next((i for i, g in enumerate(generic_constants)
                     if g.data.dtype == c.data.dtype and g.data.shape == c.data.shape and np.array_equal(g.data, c.data)),
                    None)
        if same is None:
            prefix = specialization_prefix(k)
            name = f"{prefix}{c.name}"
            while name in names:
                name = prefix + name
            names.add(name)
            c = copy.copy(c)
            c.name = name
            same = len(generic_constants) + len(added)
            added.append(c)
            doc["constants"].append({"name": name, "dtype": c.dtype, "shape": [int(d) for d in c.data.shape],
                                     "file": f"constants/{name}.bin", "bytes": int(c.data.nbytes)})
        constant_index[j] = same

    first_region = len(generic_regions)

    def remap(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("kind") == "workspace" and "index" in value:
                return dict(value, index=value["index"] + first_region)
            if value.get("kind") == "constant" and "index" in value:
                return dict(value, index=constant_index[value["index"]])
            return {k: remap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [remap(v) for v in value]
        return value

    doc["kernels"] += sdoc["kernels"]
    doc["cudaSource"] = doc["cudaSource"].rstrip("\n") + "\n\n// The launch plan for " + \
        ", ".join(f"{k}={v}" for k, v in sorted(sizes.items())) + "\n" + kernel_text
    doc["workspace"] = workspace_doc(generic_regions + list(plan.regions))
    entry = {
        "when": to_json(cond),
        "sizes": ", ".join(f"{s['name']}={sizes[s['name']]}" for s in doc["symbols"]),
        "launches": remap(sdoc["launches"]),
    }
    doc.setdefault("specializations", []).append(entry)
    log.append(f"specialization for {entry['sizes']}: {len(sdoc['kernels'])} kernel(s), "
               f"{len(sdoc['launches'])} step(s)")
    return added, list(plan.regions)
