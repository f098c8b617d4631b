"""MetaSchedule tuning for the bridge, with a persistent database.

REQUEST's ``tuning`` object (Swift's ``TuningOptions``)::

    {"trials": 2000, "trialsPerTask": 64, "timeBudgetSeconds": 600, "database": "/abs/dir",
     "rpcTracker": "host:9190", "rpcKey": "h100"}

Database layout (everything under ``database``)::

    tvm-<TVM version>/<target key>/database_workload.json        MetaSchedule's JSONDatabase
    tvm-<TVM version>/<target key>/database_tuning_record.json   (records appended as measured)
    tvm-<TVM version>/<target key>/tpat-tasks.json              TPAT's index: one entry per workload
    tvm-<TVM version>/<target key>/logs/                         MetaSchedule's logs

The TVM version and the full target pick the folder; inside it a task is keyed by the structural
hash of its workload (the fused PrimFunc MetaSchedule tunes). A task whose index entry says
``complete`` is reused without measuring anything: its tuned and untuned times are in the index.
An interrupted run leaves its measured records in the JSON database and ``complete: false`` with
the trials done, so the next run tunes only the rest. Per task, the build uses the tuned schedule
only where it measured faster than TVM's default (dlight) schedule, measured the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from .errors import BridgeError

INDEX_NAME = "tpat-tasks.json"
# Version 1 indexes were written while the default-schedule measurement scheduled the task's own
# module in place, so MetaSchedule tuned (and recorded) an already scheduled function: their
# entries are dropped and those workloads tuned again.
INDEX_VERSION = 2


@dataclass
class TuningOptions:
    """The request's ``tuning`` object."""

    trials: int
    database: str
    trials_per_task: int | None = None
    time_budget_seconds: float | None = None
    rpc_tracker: str | None = None
    rpc_key: str | None = None

    @staticmethod
    def parse(obj: Any) -> "TuningOptions | None":
        """From the request's JSON (None or {} -> no tuning). Raises ValueError on bad values."""
        if not obj:
            return None
        if not isinstance(obj, dict):
            raise ValueError("tuning must be an object")

        def positive_int(key: str, required: bool = False) -> int | None:
            value = obj.get(key)
            if value is None:
                if required:
                    raise ValueError(f"tuning.{key} is required")
                return None
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"tuning.{key} must be a positive integer, not {value!r}")
            return value

        trials = positive_int("trials", required=True)
        per_task = positive_int("trialsPerTask")
        budget = obj.get("timeBudgetSeconds")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
            raise ValueError(f"tuning.timeBudgetSeconds must be a positive number, not {budget!r}")
        database = obj.get("database")
        if not isinstance(database, str) or not database:
            raise ValueError("tuning.database must be a folder path")
        tracker, key = obj.get("rpcTracker"), obj.get("rpcKey")
        if tracker is not None:
            host, _, port = str(tracker).rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"tuning.rpcTracker must be HOST:PORT, not {tracker!r}")
            if not key:
                raise ValueError("tuning.rpcKey is required with tuning.rpcTracker")
        return TuningOptions(trials, os.path.abspath(os.path.expanduser(database)), per_task,
                             float(budget) if budget is not None else None, tracker, key)

    @property
    def per_task(self) -> int:
        """Trials one task gets at most."""
        return min(self.trials_per_task or self.trials, self.trials)


def target_dict(arch: str) -> dict[str, Any]:
    """A full CUDA target for ``arch`` (MetaSchedule needs the thread and shared-memory limits)."""
    return {"kind": "cuda", "arch": arch, "max_num_threads": 1024, "max_threads_per_block": 1024,
            "max_shared_memory_per_block": 49152, "thread_warp_size": 32, "registers_per_block": 65536}


def target_key(target: dict[str, Any]) -> str:
    """Folder name of a target: readable arch plus a hash of the whole target."""
    digest = hashlib.sha256(json.dumps(target, sort_keys=True).encode()).hexdigest()[:10]
    return f"{target['kind']}-{target.get('arch', 'any')}-{digest}"


def database_dir(root: str, tvm_version: str, target: dict[str, Any]) -> str:
    """Where the records of one TVM version and target live."""
    return os.path.join(root, f"tvm-{tvm_version}", target_key(target))


def database_state(opts: "TuningOptions", tvm_version: str, arch: str) -> str:
    """A digest of everything a tuned build of a node depends on besides the node itself: the
    trials asked for and the database's files for this TVM version and target. Unchanged, a node
    built before builds the same again (its tasks were complete then and still are), so the kernel
    cache may hand that build back; any record added since changes it."""
    h = hashlib.sha256(json.dumps({"trials": opts.trials, "perTask": opts.per_task}, sort_keys=True).encode())
    directory = database_dir(opts.database, tvm_version, target_dict(arch))
    for name in ("database_workload.json", "database_tuning_record.json", "tpat-tasks.json"):
        h.update(b"\0" + name.encode() + b"\0")
        try:
            with open(os.path.join(directory, name), "rb") as f:
                h.update(f.read())
        except FileNotFoundError:
            h.update(b"-")
    return h.hexdigest()


class TaskIndex:
    """TPAT's index of tuned workloads in one database folder (``tpat-tasks.json``), written
    atomically after every measured batch."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, INDEX_NAME)
        self.entries: dict[str, dict[str, Any]] = {}
        # Why the index on disk was not used (unreadable or malformed), for a warning; None when
        # it was, or when there is none yet.
        self.problem: str | None = None
        if os.path.exists(self.path):
            try:
                with open(self.path) as f:
                    data = json.load(f)
            except (OSError, ValueError) as exc:
                data = None
                self.problem = f"tuning index {self.path} cannot be read ({exc}): its tasks count as not tuned"
            if isinstance(data, dict) and data.get("version") == INDEX_VERSION and isinstance(data.get("tasks"), dict):
                self.entries = {k: v for k, v in data["tasks"].items() if isinstance(k, str) and isinstance(v, dict)}
                if len(self.entries) != len(data["tasks"]):
                    self.problem = (f"tuning index {self.path}: skipped {len(data['tasks']) - len(self.entries)} "
                                    "malformed task entries (those tasks count as not tuned)")
            elif isinstance(data, dict) and isinstance(data.get("version"), int) and data["version"] < INDEX_VERSION:
                pass  # an older index: its tasks are tuned again (see INDEX_VERSION), as designed
            elif self.problem is None:
                self.problem = f"tuning index {self.path} is not one TPAT wrote: its tasks count as not tuned"

    def get(self, key: str) -> dict[str, Any]:
        return self.entries.setdefault(key, {"trials": 0, "complete": False})

    def is_done(self, key: str, wanted_trials: int) -> bool:
        """True when a task needs no more measuring: tuned to the end (MetaSchedule may stop before
        the trials asked for when its search space runs out) with at least ``wanted_trials`` asked
        for, or stopped by a time budget (which counts as complete)."""
        entry = self.entries.get(key)
        if not entry or not entry.get("complete"):
            return False
        return entry.get("requested", 0) >= wanted_trials or entry.get("stoppedBy") == "budget"

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({"version": INDEX_VERSION, "tasks": self.entries}, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path)


def workload_key(task_mod: Any) -> str:
    """Stable key of a task's workload (MetaSchedule's structural hash, as hex)."""
    from tvm_ffi import structural_hash

    return f"{structural_hash(task_mod) & 0xFFFFFFFFFFFFFFFF:016x}"


def is_prescheduled(func: Any) -> bool:
    """True for PrimFuncs that already carry thread bindings (TE extern kernels such as scatter):
    MetaSchedule has nothing to choose there."""
    if func.attrs is not None and "tirx.is_scheduled" in func.attrs and bool(func.attrs["tirx.is_scheduled"]):
        return True
    text = func.script()
    return "thread_extent" in text or "T.launch_thread" in text or "thread_binding" in text


@dataclass
class TaskInfo:
    """One tuning task of a node."""

    name: str
    key: str
    mod: Any            # IRModule {"main": PrimFunc}, as MetaSchedule extracted it
    weight: float
    reused: bool = False
    entry: dict[str, Any] = field(default_factory=dict)


@dataclass
class TuneOutcome:
    """What tuning a node yields: the schedules to build with, and figures for RESULT."""

    database: Any                      # MemoryDatabase with the chosen records (None: none chosen)
    target: Any                        # the full tvm Target tuned for
    stats: dict[str, Any]


def _alloc_valid(device: Any, args_info: Any, alloc_repeat: int, fill: Any) -> list[Any]:
    """``alloc_repeat`` argument lists on ``device``: floats by ``fill`` (random), integers zero
    (random integers index out of bounds in gathers and scatters and kill the runner's CUDA
    context); all zero where there is no ``fill``."""
    import numpy as np
    import tvm

    repeated = []
    for _ in range(alloc_repeat):
        args = []
        for info in args_info:
            _, dtype, shape = info
            arr = tvm.runtime.empty(shape=shape, dtype=dtype, device=device)
            if dtype.startswith(("int", "uint", "bool")) or fill is None:
                arr.copyfrom(np.zeros(shape, dtype=dtype if dtype != "bool" else "bool"))
            else:
                fill(arr)
            args.append(arr)
        repeated.append(args)
    return repeated


def alloc_argument_valid(device: Any, args_info: Any, alloc_repeat: int) -> list[Any]:
    """MetaSchedule's argument allocation for LocalRunner, with valid indices (``_alloc_valid``)."""
    from tvm_ffi import get_global_func

    fill = get_global_func("tvm.contrib.random.random_fill_for_measure", allow_missing=True)
    return _alloc_valid(device, args_info, alloc_repeat, fill)


def rpc_alloc_argument_valid(session: Any, device: Any, args_info: Any, alloc_repeat: int) -> list[Any]:
    """The same for RPCRunner: the tensors live on the RPC server, floats filled by its random fill."""
    try:
        fill = session.get_function("tvm.contrib.random.random_fill_for_measure")
    except Exception:  # noqa: BLE001 - a server built without it: zeros
        fill = None
    return _alloc_valid(device, args_info, alloc_repeat, fill)


def _runner(opts: TuningOptions) -> Any:
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig, LocalRunner, RPCConfig, RPCRunner

    workers_import_bridge()
    config = EvaluatorConfig(number=5, repeat=1, min_repeat_ms=20, enable_cpu_cache_flush=False)
    if opts.rpc_tracker:
        host, _, port = opts.rpc_tracker.rpartition(":")
        return RPCRunner(RPCConfig(tracker_host=host, tracker_port=int(port), tracker_key=opts.rpc_key,
                                   session_timeout_sec=120), evaluator_config=config,
                         f_alloc_argument=rpc_alloc_argument_valid)
    return LocalRunner(timeout_sec=60, evaluator_config=config, f_alloc_argument=alloc_argument_valid)


def cost_model() -> Any:
    """MetaSchedule's XGBoost cost model when xgboost is installed, else random sampling (TVM's
    default, "xgb", also needs psutil, which TPAT does not require)."""
    from tvm.s_tir.meta_schedule.cost_model import XGBModel
    from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig

    try:
        import xgboost  # noqa: F401
    except ImportError:
        return "random"
    return XGBModel(config=XGBConfig(nthread=os.cpu_count() or 1), adaptive_training=True)


def _seconds(runner_result: Any) -> float | None:
    if runner_result.error_msg or not runner_result.run_secs:
        return None
    values = [float(v) for v in runner_result.run_secs]
    return sum(values) / len(values)


_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception)\b")


def error_line(message: str | None) -> str | None:
    """What a builder's or runner's error message (a traceback, with TVM's hints after it) says
    went wrong, on one line: its last exception line, or the line after it where that line only
    introduces the remote error ("RPCError: Error caught from RPC call:"); else its last line.
    None for no error."""
    lines = [" ".join(line.split()) for line in (message or "").strip().splitlines() if line.strip()]
    if not lines:
        return None
    found = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if not found:
        return lines[-1][:300]
    i = found[-1]
    line = lines[i]
    if line.endswith(":") and i + 1 < len(lines):
        line = f"{line} {lines[i + 1]}"
    return line[:300]


def check_rpc_tracker(tracker: str, key: str, timeout_seconds: float = 5.0) -> None:
    """Fails at once, saying what to do, when the tracker cannot be reached or has no server under
    ``key``; TVM's RPC runner would otherwise retry each connection for a minute per batch."""
    import socket

    from tvm import rpc

    host, _, port = tracker.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_seconds).close()
    except OSError as exc:
        raise RuntimeError(f"cannot reach the RPC tracker {tracker} ({exc}): start it "
                           "(python -m tvm.exec.rpc_tracker) or correct --rpc-tracker") from exc
    queues = rpc.connect_tracker(host, int(port)).summary().get("queue_info", {})
    if key not in queues:
        known = ", ".join(sorted(queues)) or "none"
        raise RuntimeError(f"the RPC tracker {tracker} has no server under the key {key!r} (keys: {known}): "
                           "start one (python -m tvm.exec.rpc_server --tracker ... --key ...) or correct --rpc-key")


def default_schedule(task_mod: Any, target: Any) -> Any:
    """The task under TVM's default (dlight) schedules, as a new module. dlight's module pass
    assigns the scheduled functions into the module it is given, so it gets a copy: scheduling
    the task's own module would make MetaSchedule tune (and record) an already scheduled function."""
    import tvm
    from tvm.s_tir import dlight as dl

    copy = tvm.IRModule(dict(task_mod.functions_items()), attrs=task_mod.attrs)
    with target:
        return dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(),
                                       dl.gpu.GeneralReduction(), dl.gpu.Fallback())(copy)


def build_candidate(mod: Any, target: Any, _params: Any) -> Any:
    """MetaSchedule's ``default_build`` without its ``import tvm.s_tir.tensor_intrin``, which
    registers every tensor intrinsic of every target by parsing TVMScript: 24 s on this 2-core
    machine, paid by each builder worker for each batch (LocalBuilder starts new workers per
    batch), while building one candidate takes 0.1 s. A scheduled candidate needs no registry:
    tensorization already happened when the schedule was applied in the tuning process."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def workers_import_bridge() -> None:
    """Puts the bridge's folder on PYTHONPATH for MetaSchedule's worker processes, which receive
    ``build_candidate`` and ``alloc_argument_valid`` by reference and die unpickling them where
    ``tpat_bridge`` cannot be imported (seen on the GPU machine: "Subprocess terminated")."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])


def builder(max_workers: int) -> Any:
    """MetaSchedule's local builder with ``build_candidate``."""
    from tvm.s_tir.meta_schedule.builder import LocalBuilder

    workers_import_bridge()
    return LocalBuilder(max_workers=max_workers, f_build=build_candidate)


def measure_default_schedule(task_mod: Any, target: Any, runner: Any) -> float | None:
    """Seconds of the task under TVM's default (dlight) schedule, measured like the candidates."""
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.builder import BuilderInput
    from tvm.s_tir.meta_schedule.runner import RunnerInput

    scheduled = default_schedule(task_mod, target)
    built = builder(1).build([BuilderInput(scheduled, target)])[0]
    if built.error_msg:
        return None
    args = ArgInfo.from_prim_func(scheduled["main"])
    result = runner.run([RunnerInput(built.artifact_path, "cuda", args)])[0].result()
    return _seconds(result)


def _fused(mod: Any, target: Any) -> Any:
    import tvm

    from .compiler import fuse_passes

    with target, tvm.transform.PassContext(opt_level=3):
        return tvm.transform.Sequential(fuse_passes())(mod)


def extract(mod: Any, target: Any) -> list[TaskInfo]:
    """The node's tuning tasks (after legalize / fold constants / fuse), pre-scheduled ones left out."""
    from tvm.s_tir import meta_schedule as ms

    tasks = []
    for t in ms.relax_integration.extract_tasks(_fused(mod, target), target):
        task_mod = t.dispatched[0]
        if is_prescheduled(task_mod["main"]):
            continue
        tasks.append(TaskInfo(t.task_name, workload_key(task_mod), task_mod, float(t.weight)))
    return tasks


@dataclass
class DatabaseScan:
    """What TPAT reads of a MetaSchedule JSON database folder: each workload line (by its index,
    the number records name it by; None where the line is malformed) and each well-formed record
    as (workload index, record). ``trusted`` is the number of leading workload indices records may
    be matched against: past a malformed workload line the numbering may have shifted (a line cut
    in two), so records naming those indices are not used. ``damage`` holds one message per file
    with malformed lines."""

    workloads: list[list[Any] | None]
    records: list[tuple[int, list[Any]]]
    trusted: int
    damage: list[str]


def _is_workload(entry: Any) -> bool:
    return isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[0], str)


def _is_record(entry: Any) -> bool:
    """``[workload index, [trace, run_secs, target, args_info]]`` with a trace ``[insts, decisions]``
    and run times that are numbers (or null)."""
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int) and not isinstance(entry[0], bool)):
        return False
    record = entry[1]
    if not (isinstance(record, list) and len(record) >= 2 and isinstance(record[0], list) and record[0]
            and isinstance(record[0][0], list)):
        return False
    secs = record[1]
    return secs is None or (isinstance(secs, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in secs))


def _damage(path: str, bad_lines: list[int], what: str) -> str:
    shown = ", ".join(str(n) for n in bad_lines[:5]) + (f" and {len(bad_lines) - 5} more" if len(bad_lines) > 5 else "")
    return (f"tuning database {path}: skipped {len(bad_lines)} malformed line{'s' if len(bad_lines) > 1 else ''} "
            f"(line{'s' if len(bad_lines) > 1 else ''} {shown}): {what}")


def scan_database(directory: str) -> DatabaseScan:
    """Reads the workload and record files of a JSON database without parsing any trace, checking
    every line's shape (a garbled or truncated line is left out and reported, never used)."""
    workloads: list[list[Any] | None] = []
    damage: list[str] = []
    trusted: int | None = None
    path = os.path.join(directory, "database_workload.json")
    bad: list[int] = []
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue  # blank lines are not workloads (JSONDatabase skips them too)
                try:
                    entry = json.loads(raw)
                except ValueError:
                    entry = None
                if not _is_workload(entry):
                    bad.append(number)
                    trusted = len(workloads) if trusted is None else trusted
                    entry = None
                workloads.append(entry)
    except FileNotFoundError:
        pass
    if bad:
        damage.append(_damage(path, bad, "records of the workloads from there on are not used"))
    records: list[tuple[int, list[Any]]] = []
    path = os.path.join(directory, "database_tuning_record.json")
    bad = []
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw)
                except ValueError:
                    entry = None
                if not _is_record(entry) or not 0 <= entry[0] < len(workloads):
                    bad.append(number)
                    continue
                records.append((entry[0], entry[1]))
    except FileNotFoundError:
        pass
    if bad:
        damage.append(_damage(path, bad, "those records are not used"))
    return DatabaseScan(workloads, records, len(workloads) if trusted is None else trusted, damage)


def top_records(directory: str, mods: list[Any], warnings: list[str] | None = None) -> list[Any | None]:
    """The best record of each module in the MetaSchedule JSON database at ``directory`` (what
    ``JSONDatabase.get_top_k(workload, 1)`` gives: the lowest mean run time among valid records),
    or None. Reads the workloads' hashes and only the chosen records' traces: ``JSONDatabase``
    parses every trace on load (2.0 s for 448 records here), which made reusing a tuned node cost
    seconds. Malformed lines (a damaged or truncated file) are left out, with one message per
    file added to ``warnings``; a record whose trace TVM cannot read gives way to the next best."""
    import tvm_ffi
    from tvm.s_tir.meta_schedule.database import TuningRecord, Workload

    scan = scan_database(directory)
    if warnings is not None:
        warnings.extend(scan.damage)
    found: list[tuple[int, Any] | None] = [None] * len(mods)
    hashes = [str(tvm_ffi.structural_hash(m)) for m in mods]
    for i, entry in enumerate(scan.workloads[:scan.trusted]):  # a record names its workload by this index
        for k, m in enumerate(mods):
            if entry is not None and found[k] is None and entry[0] == hashes[k]:
                try:
                    workload = Workload.from_json(entry)
                except Exception as exc:  # noqa: BLE001 - TVM raises anything for a garbled workload
                    if warnings is not None:
                        warnings.append(f"tuning database {directory}: workload {i} cannot be read "
                                        f"({' '.join(str(exc).split())[:200]}): its records are not used")
                    continue
                if tvm_ffi.structural_equal(workload.mod, m):
                    found[k] = (i, workload)
    wanted = {f[0]: f[1] for f in found if f is not None}
    candidates: dict[int, list[tuple[float, int, list[Any]]]] = {}
    for order, (index, record) in enumerate(scan.records):
        if index not in wanted:
            continue
        insts, secs = record[0][0], [float(x) for x in (record[1] or [])]
        # TuningRecord.IsValid: a trace with an instruction before its postprocessing, and a
        # measurement that is not the 1e10 s MetaSchedule writes for a failed run.
        if not insts or not isinstance(insts[0], list) or not insts[0] or insts[0][0] == "EnterPostproc" \
                or not secs or all(x == 1e10 for x in secs):
            continue
        # JSONDatabase's order: mean run time, the first written wins a tie.
        candidates.setdefault(index, []).append((sum(secs) / len(secs), order, record))
    chosen: list[Any | None] = []
    for f in found:
        record = None
        for _, _, raw in sorted(candidates.get(f[0], []), key=lambda c: (c[0], c[1])) if f is not None else []:
            try:
                record = TuningRecord.from_json(raw, f[1])
                break
            except Exception as exc:  # noqa: BLE001 - a garbled trace: TVM raises anything
                if warnings is not None:
                    warnings.append(f"tuning database {directory}: a record of workload {f[0]} cannot be read "
                                    f"({' '.join(str(exc).split())[:200]}): the next best is used")
        chosen.append(record)
    return chosen


def settle_tasks(entries: list[dict[str, Any]], failures: dict[int, tuple[str, str]], per_task: int,
                 budget_hit: bool) -> list[str]:
    """Marks the index entries of the tasks just tuned; returns "task: reason" for each task whose
    candidates built but never ran (a GPU or RPC server that cannot run them), which stays to do
    so that a run on a working machine tunes it. A task whose candidates never built is done (TVM
    cannot tune it: default schedule, with a note); one no batch reached (the budget ran out
    first) stays to do."""
    unmeasured = []
    for k, entry in enumerate(entries):
        if entry.get("tunedUs") is None:
            if k not in failures:
                continue
            kind, reason = failures[k]
            if kind == "run":
                unmeasured.append(f"{entry.get('task', k)}: {reason}")
                entry["trials"] = 0  # none of them measured anything
                continue
            entry["note"] = f"no candidate built: {reason}"
        entry["complete"] = True
        entry["requested"] = per_task
        if budget_hit:
            entry["stoppedBy"] = "budget"
    return unmeasured


class Progress:
    """Writes one progress line per measured batch to ``stream`` (the bridge's stderr)."""

    def __init__(self, stream: TextIO | None, node: str) -> None:
        self.stream, self.node = stream, node

    def line(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(f"tpat-tune: {self.node}: {text}\n")
            self.stream.flush()


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e6, 3)


def tune_node(mod: Any, arch: str, opts: TuningOptions, tvm_version: str, node_name: str,
              progress_stream: TextIO | None, log: list[str],
              clock: Callable[[], float] = time.monotonic, warnings: list[str] | None = None) -> TuneOutcome:
    """Tune (or reuse) every task of one node's Relax module; returns the schedules to build with.
    What the user should hear about a damaged database goes to ``warnings``."""
    import tvm
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.database import JSONDatabase, MemoryDatabase, TuningRecord

    start = clock()
    tdict = target_dict(arch)
    target = tvm.target.Target(tdict)
    directory = database_dir(opts.database, tvm_version, tdict)
    os.makedirs(directory, exist_ok=True)
    index = TaskIndex(directory)
    if index.problem is not None and warnings is not None:
        warnings.append(index.problem)
    progress = Progress(progress_stream, node_name)
    tasks = extract(mod, target)
    pending = [t for t in tasks if not index.is_done(t.key, opts.per_task)]
    for t in tasks:
        t.reused = t not in pending
        t.entry = index.get(t.key)
        t.entry["task"] = t.name
    log.append(f"tuning: {len(tasks)} task(s), {len(pending)} to tune, database {directory}")
    if pending:
        damage = scan_database(directory).damage
        if damage:
            # MetaSchedule's JSONDatabase refuses a file with a malformed line (and would append
            # new records after a cut-off one): nothing could be measured into it.
            raise RuntimeError(f"{'; '.join(damage)}; MetaSchedule cannot add records to a damaged database: "
                               f"move {directory} away to tune {len(pending)} task(s) again")
    if pending and opts.rpc_tracker:
        check_rpc_tracker(opts.rpc_tracker, opts.rpc_key or "")
    if pending and not opts.rpc_tracker and not tvm.cuda(0).exist:
        # Fail at once: MetaSchedule would build every candidate and only then find no GPU to run it.
        raise RuntimeError(f"{len(pending)} task(s) not in the tuning database {directory} and no CUDA GPU "
                          "here to measure them: tune on a GPU machine (or pass --rpc-tracker), then reuse the database")
    if pending:
        db = JSONDatabase(work_dir=directory)
        runner = _runner(opts)
        for t in pending:
            if t.entry.get("untunedUs") is None:
                t.entry["untunedUs"] = _us(measure_default_schedule(t.mod, target, runner))
        index.save()
        progress.line(f"tuning {len(pending)} task(s), {opts.per_task} trials each"
                      + (f", {opts.time_budget_seconds:g} s budget" if opts.time_budget_seconds else ""))
        deadline = start + opts.time_budget_seconds if opts.time_budget_seconds else None
        budget_hit = {"hit": False}
        failures: dict[int, tuple[str, str]] = {}  # task -> ("build" | "run", what its last empty batch said)

        @derived_object
        class Record(ms.measure_callback.PyMeasureCallback):  # noqa: D401 - TVM callback protocol
            """Counts trials, keeps the best time, saves the index, enforces the time budget."""

            def apply(self, task_scheduler: Any, task_id: int, measure_candidates: Any, builder_results: Any,
                      runner_results: Any) -> None:
                t = pending[task_id]
                t.entry["trials"] = int(t.entry.get("trials", 0)) + len(runner_results)
                times = [s for s in (_seconds(r) for r in runner_results) if s is not None]
                if times:
                    best = min(times) * 1e6
                    if t.entry.get("tunedUs") is None or best < t.entry["tunedUs"]:
                        t.entry["tunedUs"] = round(best, 3)
                else:
                    # Candidates that did not build say nothing about the machine; candidates that
                    # built and did not run do (a GPU or RPC server that cannot run them).
                    built = [r for b, r in zip(builder_results, runner_results) if not b.error_msg]
                    errors = [error_line(r.error_msg) for r in built] or \
                             [error_line(b.error_msg) for b in builder_results]
                    failures[task_id] = ("run" if built else "build",
                                         next((e for e in errors if e), "no run time measured"))
                index.save()
                done = sum(int(p.entry.get("trials", 0)) for p in pending)
                progress.line(f"task {task_id + 1}/{len(pending)} {t.name}: {t.entry['trials']} trials, "
                              f"best {t.entry.get('tunedUs')} us (default {t.entry.get('untunedUs')} us); "
                              f"{done} trials in {clock() - start:.0f} s")
                if not times:
                    what = "runs" if failures[task_id][0] == "run" else "builds"
                    progress.line(f"task {task_id + 1}/{len(pending)} {t.name}: all {len(runner_results)} "
                                  f"candidates of this batch failed ({what}): {failures[task_id][1]}")
                if deadline is not None and clock() > deadline and not budget_hit["hit"]:
                    budget_hit["hit"] = True
                    progress.line("time budget reached: stopping")
                    for k in range(len(pending)):
                        task_scheduler.terminate_task(k)

        contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            [ms.ExtractedTask(t.name, t.mod, target, [t.mod], int(t.weight)) for t in pending],
            work_dir=os.path.join(directory, "logs"), num_threads=os.cpu_count() or 1)
        # Trials already measured (an interrupted run) count toward each task's share.
        remaining = [max(opts.per_task - int(t.entry.get("trials", 0)), 1) for t in pending]
        ms.tune_tasks(
            tasks=contexts, task_weights=weights, work_dir=os.path.join(directory, "logs"),
            max_trials_global=min(opts.trials, sum(remaining)), max_trials_per_task=max(remaining),
            num_trials_per_iter=min(64, max(remaining)),
            builder=builder(os.cpu_count() or 1), runner=runner,
            database=db, cost_model=cost_model(), measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), Record()],
            task_scheduler="gradient")
        unmeasured = settle_tasks([t.entry for t in pending], failures, opts.per_task, budget_hit["hit"])
        index.save()
        if unmeasured:
            raise RuntimeError("no candidate could be run, so nothing was tuned: " + "; ".join(unmeasured))
    chosen = MemoryDatabase()
    n_chosen = 0
    task_stats = []
    for t, rec in zip(tasks, top_records(directory, [t.mod for t in tasks], warnings)):
        tuned = t.entry.get("tunedUs")
        untuned = t.entry.get("untunedUs")
        if rec is not None and rec.run_secs:
            tuned = round(min(float(v) for v in rec.run_secs) * 1e6, 3) if tuned is None else tuned
        use = rec is not None and tuned is not None and (untuned is None or tuned < untuned)
        if use:
            wl = chosen.commit_workload(t.mod)
            chosen.commit_tuning_record(TuningRecord(rec.trace, wl, rec.run_secs, target, rec.args_info))
            n_chosen += 1
        task_stats.append({"task": t.name, "key": t.key, "trials": int(t.entry.get("trials", 0)),
                           "reused": t.reused, "untunedUs": untuned, "tunedUs": tuned,
                           "schedule": "tuned" if use else "default"})
    tuned_total = sum((s["tunedUs"] if s["schedule"] == "tuned" else s["untunedUs"]) or 0 for s in task_stats)
    untuned_total = sum(s["untunedUs"] or 0 for s in task_stats)
    known = all(s["untunedUs"] is not None for s in task_stats)
    stats = {
        "tasks": task_stats,
        "reused": not pending,
        "trials": sum(s["trials"] for s in task_stats),
        "untunedUs": round(untuned_total, 3) if task_stats and known else None,
        "tunedUs": round(tuned_total, 3) if task_stats and known else None,
        "database": directory,
        "seconds": round(clock() - start, 3),
    }
    if not tasks:
        progress.line("nothing to tune: every kernel is scheduled by hand (TPAT's own lowerings)")
    else:
        progress.line(f"{'reused' if not pending else 'tuned'} {len(tasks)} task(s): "
                      f"{stats['untunedUs']} us default -> {stats['tunedUs']} us tuned")
    return TuneOutcome(chosen if n_chosen else None, target, stats)


def progress_stream() -> TextIO:
    """A stream to the bridge's real stderr that stays valid while fd 2 is captured into logs."""
    return os.fdopen(os.dup(2), "w", buffering=1) if hasattr(os, "dup") else sys.stderr
