"""``manifests``: one process compiles every requested node and writes RESULT.json."""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import onnx

from .errors import BridgeError


@dataclass
class NodeRequest:
    """One entry of REQUEST.nodes."""

    id: str
    model: str
    out_dir: str
    kernel_prefix: str
    # The original node's identity (name, opType, domain); the sub-model's own node names are
    # TPAT's, and it may hold Casts around the node.
    node: dict[str, str] | None = None
    # Sizes of the sub-model's symbolic dims to compile a static launch plan for, beside the
    # generic one, one map per plan (``--profile``'s optimum, then its maximum); the
    # first is the one tuned. Empty for none.
    specializations: list[dict[str, int]] = field(default_factory=list)


def tvm_version() -> str:
    """The installed apache-tvm version (the wheel's, e.g. 0.27.0.post1)."""
    try:
        from importlib.metadata import version

        return version("apache-tvm")
    except Exception:  # noqa: BLE001
        import tvm

        return str(tvm.__version__)


def _compile(model: onnx.ModelProto, arch: str, version: str, log: list[str], tuning: Any, label: str,
             progress: Any, stats: dict[str, Any] | None, warnings: list[str] | None) -> tuple[Any, bool]:
    """``model`` compiled, tuned first with ``tuning`` (tuning.TuningOptions) when given: (the
    compilation, whether MetaSchedule's schedules were used)."""
    from .compiler import compile_model, import_model

    if tuning is None:
        return compile_model(model, arch, log), False
    from .tuning import tune_node

    imported = import_model(model, log)
    try:
        outcome = tune_node(imported[0], arch, tuning, version, label, progress, log, warnings=warnings)
    except Exception as exc:  # noqa: BLE001 - MetaSchedule raises anything: build untuned
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        log.append("tuning failed, building with the default schedules:\n" + traceback.format_exc())
        if progress is not None:
            progress.write(f"tpat-tune: {label}: tuning failed ({reason}); default schedules\n")
        if stats is not None:
            stats.update(error=reason)
        return compile_model(model, arch, log, imported=imported), False
    if stats is not None:
        stats.update(outcome.stats)
    return (compile_model(model, arch, log, imported=imported, target=outcome.target, database=outcome.database),
            outcome.database is not None)


def generate(req: NodeRequest, arch: str, version: str, log: list[str], tuning: Any = None,
             progress: Any = None, stats: dict[str, Any] | None = None, warnings: list[str] | None = None) -> str:
    """Compile one node and write its manifest; returns the manifest path. With ``tuning``
    (tuning.TuningOptions), MetaSchedule tunes the node's tasks first (or reuses its database)
    and ``stats`` receives the tuned and untuned times; ``warnings`` receives what the user should
    hear about (a damaged tuning database). With ``req.specializations``, a static launch plan is
    compiled for each map of sizes (the first is the one tuned, when tuning: MetaSchedule tunes
    static shapes) and goes into the manifest as a specialization (specialize.py)."""
    from .manifest import ManifestBuilder, node_info
    from .plan import build_plan
    from .specialize import specialization_prefix, specialized_model

    try:
        model = onnx.load(req.model)
    except Exception as exc:  # noqa: BLE001
        raise BridgeError("import", f"cannot read {req.model}: {exc}") from exc
    label = (req.node or {}).get("name") or req.id
    special_models = [(sizes, m) for sizes in req.specializations
                      if (m := specialized_model(model, sizes, log)) is not None]
    # With a specialization, MetaSchedule tunes the first (the optimum), not the generic plan of
    # symbolic shapes.
    compiled, tuned = _compile(model, arch, version, log, None if special_models else tuning, label,
                               progress, stats, warnings)
    for cast in compiled.casts_added:
        log.append(f"dtype: added a Cast to the graph's dtype for {cast}")
    plan = build_plan(compiled)
    name, op_type, domain = node_info(model)
    if req.node:
        name = req.node.get("name", name)
        op_type = req.node.get("opType", op_type)
        domain = req.node.get("domain", domain)
    specials = []
    for k, (sizes, special_model) in enumerate(special_models):
        s_compiled, s_tuned = _compile(special_model, arch, version, log, tuning if k == 0 else None,
                                       label + f" (specialized at {sizes})", progress, stats, warnings)
        tuned = tuned or s_tuned
        specials.append((ManifestBuilder(s_compiled, build_plan(s_compiled), name, op_type, domain, arch,
                                         req.kernel_prefix + specialization_prefix(k), version, s_tuned), sizes))
    builder = ManifestBuilder(compiled, plan, name, op_type, domain, arch, req.kernel_prefix, version, tuned)
    return builder.write(req.out_dir, specials=specials, log=log)


def op_of(path: str) -> str:
    """The op type of a sub-model, for messages (never raises)."""
    try:
        model = onnx.load(path, load_external_data=False)
        return model.graph.node[0].op_type if model.graph.node else "?"
    except Exception:  # noqa: BLE001
        return "?"


def op_name(req: NodeRequest) -> str:
    """The op type for messages: the original node's (the sub-model's first node may be TPAT's own
    boundary Cast), else the sub-model's."""
    return (req.node or {}).get("opType") or op_of(req.model)


# A log entry of at least this many lines is a module dump (see run_node).
LOG_DUMP_LINES = 20


def _abridged(entry: str) -> str:
    """A log entry as a generated node keeps it: a module dump becomes its first line."""
    breaks = entry.count("\n")
    if breaks < LOG_DUMP_LINES:
        return entry
    return f"[{entry.splitlines()[0].strip()} ... {breaks + 1} lines: kept only when the node fails]"


def run_node(req: NodeRequest, arch: str, version: str, tuning: Any = None, progress: Any = None,
             warnings: list[str] | None = None) -> dict[str, Any]:
    """Generate one node's manifest; never raises (per-node errors go to the result). ``warnings``
    holds what was said about the node before (a damaged cache entry) and receives what
    generating it says; the result carries them all (``warnings``), and so does the node's log."""
    start = time.perf_counter()
    os.makedirs(req.out_dir, exist_ok=True)
    log_path = os.path.join(req.out_dir, "bridge.log")
    log: list[str] = [f"node {req.id}: {req.model}"]
    warnings = [] if warnings is None else warnings
    entry: dict[str, Any] = {"id": req.id}
    try:
        stats: dict[str, Any] = {}
        try:
            entry.update(status="ok", manifest=generate(req, arch, version, log, tuning, progress, stats, warnings))
        finally:
            if stats:
                entry["tuning"] = stats
    except BridgeError as exc:
        log.append(traceback.format_exc())
        entry.update(status="error", errorClass=exc.error_class, message=f"{op_name(req)}: {exc.message}",
                     log=log_path)
    except Exception as exc:  # noqa: BLE001 - a bug in the bridge, or TVM failing unexpectedly
        log.append(traceback.format_exc())
        reason = " ".join(str(exc).split())[:300]
        entry.update(status="error", errorClass="internal",
                     message=f"{op_name(req)}: {type(exc).__name__}: {reason}", log=log_path)
    entry["seconds"] = round(time.perf_counter() - start, 3)
    if warnings:
        entry["warnings"] = warnings
        log[1:1] = [f"warning: {w}" for w in warnings]
    if entry["status"] == "ok":
        # The modules TVM went through (tens of KB a node) matter when a node fails; a node that
        # generated keeps the notes alone, so that OUT stays small (resnet50: 4.8 MB of 156).
        log = [_abridged(e) for e in log]
    with open(log_path, "w") as f:
        f.write("\n\n".join(log))
        f.write("\n")
    return entry


def cache_key(req: NodeRequest, arch: str, version: str, tuning: Any) -> str:
    """The kernel cache key of a node request (with the tuning database's state when tuned)."""
    from . import cache
    from .tuning import database_state

    state = database_state(tuning, version, arch) if tuning is not None else ""
    if req.specializations:
        state += "|specialize " + json.dumps(req.specializations, sort_keys=True)
    return cache.key(req.model, req.node, req.kernel_prefix, arch, version, state)


def cached_entry(req: NodeRequest, k: str, tuned: bool, cache_dir: str, warnings: list[str]) -> dict[str, Any] | None:
    """The result entry of the node the kernel cache holds under ``k`` (manifest and constants
    copied into its folder, checked against the entry's digest), or None. A damaged entry is a
    miss that adds one warning (the entry's path and what is wrong; the caller regenerates the
    node and its store replaces the entry). A tuned entry reports its tuning figures as reused:
    nothing was measured."""
    from . import cache

    try:
        restored = cache.restore(cache_dir, k, req.out_dir)
    except cache.BrokenEntry as broken:
        warnings.append(f"kernel cache entry {broken.path} cannot be used: {broken.reason}; "
                        "generating the node again and replacing the entry")
        return None
    if restored is None:
        return None
    entry: dict[str, Any] = {"id": req.id, "status": "ok", "manifest": restored.manifest, "cached": True}
    note = f"node {req.id}: from the kernel cache ({cache.entry_dir(cache_dir, k)})"
    stats = restored.tuning if tuned else None
    if stats is not None:
        stats = dict(stats, reused=True, seconds=0.0,
                     tasks=[dict(t, reused=True) for t in stats.get("tasks", []) if isinstance(t, dict)])
        entry["tuning"] = stats
        note += f", tuned with the database {stats.get('database', '?')} as it was then and still is"
    with open(os.path.join(req.out_dir, "bridge.log"), "w") as f:
        f.write(note + "\n")
    return entry


def run_request(request_path: str, result_path: str) -> int:
    """The ``manifests`` subcommand. RESULT is always written; returns the exit status."""
    result: dict[str, Any] = {"tvmVersion": "", "nodes": []}
    status = 0
    try:
        with open(request_path) as f:
            request = json.load(f)
        arch = request.get("arch", "sm_90")
        from .tuning import TuningOptions, progress_stream

        tuning = TuningOptions.parse(request.get("tuning"))
        progress = progress_stream() if tuning else None
        cache_dir = request.get("cacheDirectory")
        version = tvm_version()
        result["tvmVersion"] = version
        for n in request["nodes"]:
            req = NodeRequest(n["id"], n["model"], n["outDir"], n["kernelPrefix"], n.get("node"),
                              [{str(k): int(v) for k, v in sizes.items()} for sizes in n.get("specializations") or []])
            start = time.perf_counter()
            k = cache_key(req, arch, version, tuning) if cache_dir else None
            warnings: list[str] = []
            entry = cached_entry(req, k, tuning is not None, cache_dir, warnings) if k else None
            if entry is not None:
                entry["seconds"] = round(time.perf_counter() - start, 3)
                result["nodes"].append(entry)
                continue
            import tvm  # noqa: F401 - paid once for all nodes, and only when one is not cached

            entry = run_node(req, arch, version, tuning, progress, warnings)
            if k and entry["status"] == "ok" and "error" not in entry.get("tuning", {}):
                from . import cache

                if tuning is not None:  # the key holds the database as tuning left it
                    k = cache_key(req, arch, version, tuning)
                problem = cache.store(cache_dir, k, req.out_dir, entry.get("tuning"))
                if problem is not None:
                    entry.setdefault("warnings", []).append(
                        f"kernel cache: could not store the node in {cache.entry_dir(cache_dir, k)} ({problem})")
            result["nodes"].append(entry)
    except Exception as exc:  # noqa: BLE001 - bad request or TVM missing: still write RESULT
        result["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        status = 2
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(tmp, result_path)
    return status
