"""CPU-checkable parts of tuning: request parsing, database keying, reuse and resume logic."""
from __future__ import annotations

import json
import os

import pytest

from tpat_bridge.tuning import TaskIndex, TuningOptions, database_dir, target_dict, target_key


def test_parse_none_and_empty():
    assert TuningOptions.parse(None) is None
    assert TuningOptions.parse({}) is None


def test_parse_full(tmp_path):
    opts = TuningOptions.parse({"trials": 128, "trialsPerTask": 64, "timeBudgetSeconds": 30,
                                "database": str(tmp_path), "rpcTracker": "host:9190", "rpcKey": "h100"})
    assert (opts.trials, opts.trials_per_task, opts.time_budget_seconds) == (128, 64, 30.0)
    assert opts.per_task == 64 and opts.rpc_tracker == "host:9190" and opts.rpc_key == "h100"
    assert TuningOptions.parse({"trials": 8, "trialsPerTask": 64, "database": "d"}).per_task == 8
    assert os.path.isabs(TuningOptions.parse({"trials": 8, "database": "rel/db"}).database)


@pytest.mark.parametrize("bad", [
    {"database": "d"}, {"trials": 0, "database": "d"}, {"trials": True, "database": "d"},
    {"trials": 8}, {"trials": 8, "database": ""}, {"trials": 8, "database": "d", "timeBudgetSeconds": -1},
    {"trials": 8, "database": "d", "rpcTracker": "nohost"}, {"trials": 8, "database": "d", "rpcTracker": "h:1"},
    [1, 2],
])
def test_parse_rejects(bad):
    with pytest.raises(ValueError):
        TuningOptions.parse(bad)


def test_database_dir_keys_version_and_target(tmp_path):
    a = database_dir(str(tmp_path), "0.27.0.post1", target_dict("sm_90"))
    assert a == database_dir(str(tmp_path), "0.27.0.post1", target_dict("sm_90"))
    assert a != database_dir(str(tmp_path), "0.28.0", target_dict("sm_90"))
    assert a != database_dir(str(tmp_path), "0.27.0.post1", target_dict("sm_80"))
    assert target_key(target_dict("sm_90")).startswith("cuda-sm_90-")


def test_index_reuse_and_resume(tmp_path):
    index = TaskIndex(str(tmp_path))
    assert not index.is_done("k", 64)
    entry = index.get("k")
    entry.update(trials=20, untunedUs=10.0, tunedUs=8.0)  # an interrupted run: not complete
    index.save()
    again = TaskIndex(str(tmp_path))
    assert not again.is_done("k", 64) and again.get("k")["trials"] == 20
    again.get("k").update(complete=True, requested=64, trials=40)  # search space ran out at 40
    again.save()
    third = TaskIndex(str(tmp_path))
    assert third.is_done("k", 64) and third.is_done("k", 32) and not third.is_done("k", 128)
    third.get("k").update(requested=16, stoppedBy="budget")
    assert third.is_done("k", 1000)  # a time budget counts as complete


def test_index_survives_garbage(tmp_path):
    (tmp_path / "tpat-tasks.json").write_text("{not json")
    assert TaskIndex(str(tmp_path)).entries == {}


def test_request_with_bad_tuning_writes_result(tmp_path):
    from tpat_bridge.bridge import run_request

    req = tmp_path / "req.json"
    req.write_text(json.dumps({"arch": "sm_90", "nodes": [], "tuning": {"trials": -1, "database": "d"}}))
    res = tmp_path / "res.json"
    assert run_request(str(req), str(res)) == 2
    assert "trials" in json.loads(res.read_text())["error"]


def test_extraction_keys_are_stable():
    """Tasks come after legalize/fold/fuse; the key is the workload's structural hash. (Softmax over
    the first axis: TVM schedules it, where a last-axis one is TPAT's own kernel, no task.)"""
    import onnx
    import tvm
    from onnx import TensorProto, helper

    from tpat_bridge.compiler import import_model
    from tpat_bridge.tuning import extract

    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=0)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 100])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 100])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    target = tvm.target.Target(target_dict("sm_90"))
    keys = [[t.key for t in extract(import_model(model, [])[0], target)] for _ in range(2)]
    assert keys[0] == keys[1] and len(keys[0]) == 1


def test_default_schedule_leaves_the_task_alone():
    """Measuring the default schedule must not schedule the task's own module: MetaSchedule would
    then tune an already scheduled function, and a later process would not find its records."""
    import tvm
    from onnx import TensorProto, helper
    from tvm_ffi import structural_hash

    from tpat_bridge.compiler import import_model
    from tpat_bridge.tuning import default_schedule, extract, workload_key

    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=0)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 100])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 100])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    target = tvm.target.Target(target_dict("sm_90"))
    task = extract(import_model(model, [])[0], target)[0]
    before = structural_hash(task.mod)
    scheduled = default_schedule(task.mod, target)
    assert structural_hash(task.mod) == before and workload_key(task.mod) == task.key
    assert "tirx.is_scheduled" not in (task.mod["main"].attrs or {})
    assert scheduled["main"].attrs["tirx.is_scheduled"]


def test_index_of_an_older_version_is_tuned_again(tmp_path):
    """Version-1 indexes recorded tuning of already scheduled functions: their entries are dropped."""
    (tmp_path / "tpat-tasks.json").write_text(json.dumps(
        {"version": 1, "tasks": {"k": {"complete": True, "requested": 64, "trials": 64}}}))
    assert not TaskIndex(str(tmp_path)).is_done("k", 64)
    index = TaskIndex(str(tmp_path))
    index.get("k").update({"complete": True, "requested": 64, "trials": 64})
    index.save()
    assert TaskIndex(str(tmp_path)).is_done("k", 64)


def test_tuning_without_a_gpu_fails_at_once(tmp_path):
    """No GPU and no RPC tracker: tasks missing from the database are refused before MetaSchedule
    builds anything (the bridge then builds with the default schedules and says why)."""
    import pytest
    import tvm
    from onnx import TensorProto, helper

    from tpat_bridge.compiler import import_model
    from tpat_bridge.tuning import TuningOptions, tune_node

    if tvm.cuda(0).exist:
        pytest.skip("a GPU is present: tuning would really run")
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=0)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 100])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 100])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(RuntimeError, match="no CUDA GPU here"):
        tune_node(import_model(model, [])[0], "sm_90", TuningOptions(8, str(tmp_path)), "0.27.0.post1", "n", None, [])


def test_candidates_build_in_workers_without_the_tensor_intrinsics():
    """TPAT's builder: MetaSchedule's worker processes build a scheduled task (they import the
    bridge, wherever PYTHONPATH pointed) and never import tvm.s_tir.tensor_intrin (24 s a worker
    on 2 cores, once per batch)."""
    import subprocess
    import sys

    import tvm
    from onnx import TensorProto, helper
    from tvm.s_tir.meta_schedule.builder import BuilderInput

    from tpat_bridge.compiler import import_model
    from tpat_bridge.tuning import builder, default_schedule, extract

    # eight columns: TVM's schedule, which MetaSchedule tunes (a wider float32 MatMul takes TPAT's
    # GEMM, gemm.py, which leaves nothing to tune)
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [64, 64]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [64, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 8])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    target = tvm.target.Target(target_dict("sm_90"))
    task = extract(import_model(model, [])[0], target)[0]
    results = builder(1).build([BuilderInput(default_schedule(task.mod, target), target)])
    assert results[0].error_msg is None, results[0].error_msg
    assert results[0].artifact_path.endswith(".tar")
    # The build function itself pulls in no tensor intrinsics.
    probe = ("import sys; from tpat_bridge import tuning; import tvm; "
             "print('tvm.s_tir.tensor_intrin' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert out.stdout.strip() == "False"


def test_top_records_match_metaschedules_database(tmp_path):
    """TPAT's reader of the JSON database picks the record JSONDatabase.get_top_k picks (best mean
    run time, failed measurements left out) and None for a module the database does not hold."""
    import tvm
    from onnx import TensorProto, helper
    from tvm.s_tir import Schedule
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.database import JSONDatabase, TuningRecord

    from tpat_bridge.compiler import import_model
    from tpat_bridge.tuning import extract, top_records

    def task_mod(n: int):
        # eight columns: TVM's MatMul schedule, a tuning task (TPAT's GEMM takes wider ones)
        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, 8])])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        return extract(import_model(model, [])[0], target)[0].mod

    target = tvm.target.Target(target_dict("sm_90"))
    a, b, missing = task_mod(32), task_mod(48), task_mod(64)
    db = JSONDatabase(work_dir=str(tmp_path))
    runs = {0: [[3e-6], [1e10], [2e-6, 2.2e-6], [2.5e-6], [1e-6]], 1: [[1e10], [5e-6], [4e-6, 7e-6], [1e10, 1e-7]]}
    for k, mod in enumerate((a, b)):
        wl = db.commit_workload(mod)
        for n, secs in enumerate(runs[k]):
            sch = Schedule(mod)
            if not (k == 0 and n == 4):  # an empty trace: not a valid record, however fast
                sch.get_sblock("matmul")
            db.commit_tuning_record(TuningRecord(sch.trace, wl, [float(s) for s in secs], target,
                                                 ArgInfo.from_prim_func(mod["main"])))
    got = top_records(str(tmp_path), [a, b, missing])
    fresh = JSONDatabase(work_dir=str(tmp_path))
    for mod, rec in zip((a, b), got):
        want = fresh.get_top_k(fresh.commit_workload(mod), 1)[0]
        assert rec is not None and [float(x) for x in rec.run_secs] == [float(x) for x in want.run_secs]
    assert [float(x) for x in got[0].run_secs] == [2e-6, 2.2e-6]
    assert [float(x) for x in got[1].run_secs] == [5e-6]
    assert got[2] is None
    assert top_records(str(tmp_path / "absent"), [a]) == [None]


def test_rpc_runner_allocates_valid_indices_on_the_server():
    """With --rpc-tracker, the arguments live on the RPC server: integers zero (random ones index
    out of bounds and kill the server's CUDA context), floats filled; here through an in-process
    RPC session on the CPU."""
    import numpy as np
    from tvm import rpc
    from tvm.s_tir.meta_schedule.runner import RPCRunner

    from tpat_bridge.tuning import TuningOptions, _runner, rpc_alloc_argument_valid

    session = rpc.LocalSession()
    args_info = [["TENSOR", "int64", [4, 3]], ["TENSOR", "float32", [64]], ["TENSOR", "int32", [5]]]
    repeated = rpc_alloc_argument_valid(session, session.cpu(0), args_info, 2)
    assert len(repeated) == 2 and all(len(args) == 3 for args in repeated)
    for args in repeated:
        assert not args[0].numpy().any() and not args[2].numpy().any()
        assert args[1].numpy().shape == (64,) and args[1].numpy().dtype == np.float32
        assert args[1].numpy().any()  # the server's random fill (the pip build has it)
    runner = _runner(TuningOptions(8, "db", rpc_tracker="127.0.0.1:9190", rpc_key="h200"))
    assert isinstance(runner, RPCRunner) and runner.f_alloc_argument is rpc_alloc_argument_valid


def test_error_line_says_what_went_wrong():
    from tpat_bridge.tuning import error_line

    remote = ("Traceback (most recent call last):\n  File \"x.py\", line 3, in run\n"
              "tvm.error.RPCError: RPCError: Error caught from RPC call:\n"
              "Library binary was created using {cuda} but a loader of that name is not registered.\n")
    assert error_line(remote) == ("tvm.error.RPCError: RPCError: Error caught from RPC call: Library binary was "
                                  "created using {cuda} but a loader of that name is not registered.")
    hinted = ("Traceback (most recent call last):\n  File \"c.py\", line 9, in connect\n"
              "RuntimeError: Cannot connect to tracker ('127.0.0.1', 9), make sure tracker is running\n"
              "You can check tracker status by running:\n"
              "python3 -m tvm.exec.query_rpc_tracker --host 127.0.0.1 --port 9\n")
    assert error_line(hinted).startswith("RuntimeError: Cannot connect to tracker")
    assert error_line("just one line") == "just one line"
    assert error_line("") is None and error_line(None) is None


def test_unreachable_rpc_tracker_fails_before_anything_is_built(tmp_path):
    """An RPC tracker nobody listens at: refused at once with what to do (TVM's runner would retry
    each connection for a minute, batch after batch)."""
    import socket
    import time

    from onnx import TensorProto, helper

    from tpat_bridge.compiler import import_model
    from tpat_bridge.tuning import TuningOptions, tune_node

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=0)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 100])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 100])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    opts = TuningOptions(8, str(tmp_path), rpc_tracker=f"127.0.0.1:{port}", rpc_key="h200")
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="cannot reach the RPC tracker"):
        tune_node(import_model(model, [])[0], "sm_90", opts, "0.27.0.post1", "n", None, [])
    assert time.monotonic() - start < 30


def test_settling_tuned_tasks():
    """Measured: done. Built but never ran: to do again, reported. Never built: done with a note
    (TVM cannot tune it). Not reached before the budget ran out: to do, not an error."""
    from tpat_bridge.tuning import settle_tasks

    entries = [{"task": "a", "trials": 64, "tunedUs": 3.0}, {"task": "b", "trials": 64},
               {"task": "c", "trials": 64}, {"task": "d", "trials": 0}]
    failures = {1: ("run", "no CUDA loader"), 2: ("build", "bad schedule")}
    assert settle_tasks(entries, failures, 64, budget_hit=True) == ["b: no CUDA loader"]
    a, b, c, d = entries
    assert a["complete"] and a["requested"] == 64 and a["stoppedBy"] == "budget"
    assert not b.get("complete") and b["trials"] == 0
    assert c["complete"] and c["note"] == "no candidate built: bad schedule"
    assert not d.get("complete") and "note" not in d


# ---- A damaged database: malformed lines are left out with one warning per file, never used.

def _matmul_database(tmp_path):
    """A JSONDatabase with two MatMul workloads (a: 32x32 by 32x8, b: 48x48 by 48x8), three records each; a's best
    is its second record, b's its first."""
    import tvm
    from onnx import TensorProto, helper
    from tvm.s_tir import Schedule
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.database import JSONDatabase, TuningRecord

    from tpat_bridge.compiler import import_model
    from tpat_bridge.tuning import extract

    target = tvm.target.Target(target_dict("sm_90"))

    def task_mod(n: int):
        # eight columns: TVM's MatMul schedule, a tuning task (TPAT's GEMM takes wider ones)
        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "g",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, 8])])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        return extract(import_model(model, [])[0], target)[0].mod

    a, b = task_mod(32), task_mod(48)
    db = JSONDatabase(work_dir=str(tmp_path))
    for mod, runs in ((a, [3e-6, 1e-6, 2e-6]), (b, [4e-6, 5e-6, 6e-6])):
        wl = db.commit_workload(mod)
        for secs in runs:
            sch = Schedule(mod)
            sch.get_sblock("matmul")
            db.commit_tuning_record(TuningRecord(sch.trace, wl, [secs], target, ArgInfo.from_prim_func(mod["main"])))
    return a, b


def _lines(path):
    return path.read_text().splitlines(keepends=True)


def test_damaged_records_are_skipped_with_one_warning(tmp_path):
    from tpat_bridge.tuning import top_records

    a, b = _matmul_database(tmp_path)
    records = tmp_path / "database_tuning_record.json"
    lines = _lines(records)
    # Records are written in order: a's 3 then b's 3. Garble a's best (line 2), give one a wrong
    # shape (line 4: valid JSON), and cut the file short in the middle of b's last record.
    lines[1] = lines[1][:40] + "#garbage#" + lines[1][49:]
    lines[3] = json.dumps([1, "not a record"]) + "\n"
    lines[5] = lines[5][: len(lines[5]) // 2]
    records.write_text("".join(lines))
    warnings = []
    got = top_records(str(tmp_path), [a, b], warnings)
    assert [float(x) for x in got[0].run_secs] == [2e-6]  # the best record left: never the garbled one
    assert [float(x) for x in got[1].run_secs] == [5e-6]
    assert len(warnings) == 1, warnings
    assert str(records) in warnings[0] and "lines 2, 4, 6" in warnings[0]


def test_a_damaged_workload_line_stops_its_records_and_later_ones_being_used(tmp_path):
    """Records name workloads by line: past a malformed workload line (perhaps a line cut in two)
    the numbering cannot be trusted, so those records are not used (default schedules instead)."""
    from tpat_bridge.tuning import top_records

    a, b = _matmul_database(tmp_path)
    workloads = tmp_path / "database_workload.json"
    lines = _lines(workloads)
    workloads.write_text(lines[0] + lines[1][:30] + "\n" + lines[1][30:])  # b's line cut in two
    warnings = []
    got = top_records(str(tmp_path), [a, b], warnings)
    assert [float(x) for x in got[0].run_secs] == [1e-6] and got[1] is None
    assert len(warnings) == 1 and str(workloads) in warnings[0] and "lines 2, 3" in warnings[0]

    workloads.write_text("")  # truncated to nothing: every record names a missing workload
    warnings = []
    assert top_records(str(tmp_path), [a, b], warnings) == [None, None]
    assert len(warnings) == 1 and "lines 1, 2, 3, 4, 5 and 1 more" in warnings[0]


def test_the_cache_key_changes_with_any_change_of_the_database(tmp_path):
    from tpat_bridge.tuning import database_state

    opts = TuningOptions(8, str(tmp_path))
    directory = tmp_path / database_dir(str(tmp_path), "0.27.0.post1", target_dict("sm_90")).split(str(tmp_path) + os.sep)[1]
    directory.mkdir(parents=True)
    (directory / "database_tuning_record.json").write_text('[0, [[[["A"]], []], [1e-6]]]\n')
    before = database_state(opts, "0.27.0.post1", "sm_90")
    (directory / "database_tuning_record.json").write_text('[0, [[[["A"]], []], [1e-7]]]\n')  # one digit
    after = database_state(opts, "0.27.0.post1", "sm_90")
    (directory / "database_tuning_record.json").write_text('[0, [[[["A"]], []], [1e-7')  # truncated
    truncated = database_state(opts, "0.27.0.post1", "sm_90")
    assert len({before, after, truncated}) == 3


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", json.dumps({"version": 2, "tasks": [1]}),
                                  json.dumps({"version": 2, "tasks": {"k": "x", "j": {"complete": True}}})])
def test_a_damaged_index_is_reported_and_never_crashes(tmp_path, text):
    (tmp_path / "tpat-tasks.json").write_text(text)
    index = TaskIndex(str(tmp_path))
    assert index.problem is not None and str(tmp_path / "tpat-tasks.json") in index.problem
    assert not index.is_done("k", 1)
    assert list(index.entries) == (["j"] if '"j"' in text else [])  # only well-formed entries kept
    index.get("k").update(complete=True, requested=8)  # a malformed entry is never handed out
    index.save()
    again = TaskIndex(str(tmp_path))
    assert again.problem is None and again.is_done("k", 8)


def test_an_index_of_an_older_version_is_no_problem(tmp_path):
    (tmp_path / "tpat-tasks.json").write_text(json.dumps({"version": 1, "tasks": {}}))
    assert TaskIndex(str(tmp_path)).problem is None


def test_tuning_into_a_damaged_database_builds_the_node_with_default_schedules(tmp_path):
    """A task still to tune and a database MetaSchedule cannot load: the node is built (default
    schedules), tuning reports why, naming the file and line; nothing is stored in the cache."""
    from tpat_bridge.bridge import run_request, tvm_version
    from onnx import TensorProto, helper
    import onnx

    directory = tmp_path / "db" / os.path.relpath(database_dir(str(tmp_path / "db"), tvm_version(), target_dict("sm_90")),
                                                   str(tmp_path / "db"))
    directory.mkdir(parents=True)
    (directory / "database_workload.json").write_text('["123", {"trunc\n')
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=0)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 100])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 100])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    request = {"arch": "sm_90", "cacheDirectory": str(tmp_path / "cache"), "tuning": {"trials": 8, "database": str(tmp_path / "db")},
               "nodes": [{"id": "n", "model": str(tmp_path / "m.onnx"), "outDir": str(tmp_path / "n"), "kernelPrefix": "tpat_n_"}]}
    (tmp_path / "req.json").write_text(json.dumps(request))
    assert run_request(str(tmp_path / "req.json"), str(tmp_path / "res.json")) == 0
    node = json.loads((tmp_path / "res.json").read_text())["nodes"][0]
    assert node["status"] == "ok" and os.path.isfile(node["manifest"])
    assert "database_workload.json" in node["tuning"]["error"] and "line 1" in node["tuning"]["error"]
    assert "move" in node["tuning"]["error"]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("manifest.json"))
