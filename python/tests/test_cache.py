"""The kernel cache: a node generated before comes back without TVM; any change of the node, its
kernel prefix or the arch misses; a tuned node comes back while its tuning database is unchanged."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

PYTHON_DIR = Path(__file__).resolve().parent.parent


def abs_model(shape: list[int]) -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Abs", ["x"], ["y"], name="abs")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def run(tmp: Path, tag: str, model: onnx.ModelProto, cache: Path, prefix: str = "tpat_abs_",
        arch: str = "sm_90", tuning: dict | None = None) -> dict:
    model_path = tmp / f"{tag}.onnx"
    onnx.save(model, str(model_path))
    request = {"arch": arch, "cacheDirectory": str(cache),
               "nodes": [{"id": tag, "model": str(model_path), "outDir": str(tmp / tag), "kernelPrefix": prefix}]}
    if tuning:
        request["tuning"] = tuning
    (tmp / f"{tag}.request.json").write_text(json.dumps(request))
    # -X importtime would be noisy; instead the child reports whether TVM was imported.
    code = ("import sys, tpat_bridge.bridge as b; rc = b.run_request(sys.argv[1], sys.argv[2]); "
            "print('tvm' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp / f"{tag}.request.json"), str(tmp / f"{tag}.result.json")],
                         cwd=PYTHON_DIR, capture_output=True, text=True, check=True)
    result = json.loads((tmp / f"{tag}.result.json").read_text())
    result["tvmImported"] = out.stdout.strip().splitlines()[-1] == "True"
    return result


def test_second_run_comes_from_the_cache_without_tvm(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run(tmp_path, "a", abs_model([4, 1024]), cache)
    assert first["nodes"][0]["status"] == "ok" and not first["nodes"][0].get("cached")
    assert first["tvmImported"]
    second = run(tmp_path, "b", abs_model([4, 1024]), cache)
    node = second["nodes"][0]
    assert node["status"] == "ok" and node["cached"] is True
    assert not second["tvmImported"]
    assert Path(node["manifest"]).read_text() == Path(first["nodes"][0]["manifest"]).read_text()


def test_changes_miss(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run(tmp_path, "a", abs_model([4, 1024]), cache)
    assert not run(tmp_path, "shape", abs_model([4, 512]), cache)["nodes"][0].get("cached")
    assert not run(tmp_path, "prefix", abs_model([4, 1024]), cache, prefix="tpat_other_")["nodes"][0].get("cached")
    assert not run(tmp_path, "arch", abs_model([4, 1024]), cache, arch="sm_80")["nodes"][0].get("cached")


def test_tuned_node_comes_back_while_the_database_is_unchanged(tmp_path: Path) -> None:
    """A database whose index marks the node's task done (nothing to measure, so no GPU needed):
    the first run builds and stores, the second comes from the cache without TVM and reports the
    tuning as reused, and a database changed since misses."""
    from tpat_bridge.bridge import tvm_version
    from tpat_bridge.compiler import import_model
    from tpat_bridge.tuning import TaskIndex, database_dir, extract, target_dict

    import tvm

    model = abs_model([4, 1024])
    db = tmp_path / "db"
    directory = Path(database_dir(str(db), tvm_version(), target_dict("sm_90")))
    directory.mkdir(parents=True)
    index = TaskIndex(str(directory))
    for task in extract(import_model(model, [])[0], tvm.target.Target(target_dict("sm_90"))):
        index.get(task.key).update(complete=True, requested=8, trials=8, untunedUs=5.0, task=task.name)
    index.save()
    tuning = {"trials": 8, "database": str(db)}
    cache = tmp_path / "cache"
    first = run(tmp_path, "a", model, cache, tuning=tuning)
    node = first["nodes"][0]
    assert node["status"] == "ok" and not node.get("cached") and "error" not in node["tuning"], node
    second = run(tmp_path, "b", model, cache, tuning=tuning)
    node = second["nodes"][0]
    assert node["status"] == "ok" and node["cached"] is True and not second["tvmImported"]
    assert node["tuning"]["reused"] is True and node["tuning"]["untunedUs"] == 5.0
    assert Path(node["manifest"]).read_text() == Path(first["nodes"][0]["manifest"]).read_text()
    assert not run(tmp_path, "c", model, cache, tuning={"trials": 16, "database": str(db)})["nodes"][0].get("cached")
    with open(directory / "database_tuning_record.json", "a") as f:
        f.write("\n")
    assert not run(tmp_path, "d", model, cache, tuning=tuning)["nodes"][0].get("cached")
