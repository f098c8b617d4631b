"""The kernel cache: a node generated before comes back without TVM; any change of the node, its
kernel prefix or the arch misses; a tuned node comes back while its tuning database is unchanged."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
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


# ---- Damaged entries: each is a miss that regenerates the node, warns once and replaces the entry.

def _truncate_constant(entry: Path) -> None:
    c0 = entry / "constants" / "c0.bin"
    c0.write_bytes(c0.read_bytes()[: c0.stat().st_size // 2])


def _flip_constant_bit(entry: Path) -> None:
    c0 = entry / "constants" / "c0.bin"
    data = bytearray(c0.read_bytes())
    data[len(data) // 3] ^= 0x04
    c0.write_bytes(bytes(data))


def _remove_constants(entry: Path) -> None:
    import shutil

    shutil.rmtree(entry / "constants")


def _edit_kernel_source(entry: Path) -> None:
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["cudaSource"] = manifest["cudaSource"].replace("1.000000e-05f", "1.000000e-01f", 1) + "\n// edited\n"
    (entry / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _garble_manifest(entry: Path) -> None:
    (entry / "manifest.json").write_text('{"version": 1, "cudaSource": "trunc')


def _remove_digest(entry: Path) -> None:  # what an entry written before digests looks like
    (entry / "digest.json").unlink()


DAMAGE = {
    "truncated_constant": (_truncate_constant, "constants/c0.bin holds"),
    "bit_flipped_constant": (_flip_constant_bit, "constants/c0.bin was changed"),
    "removed_constants": (_remove_constants, "constants/c0.bin is missing"),
    "edited_kernel_source": (_edit_kernel_source, "manifest.json"),
    "garbled_manifest": (_garble_manifest, "manifest.json holds"),
    "no_digest": (_remove_digest, "has no digest.json"),
}


def _run_many(tmp: Path, tag: str, models: dict[str, onnx.ModelProto], cache: Path) -> dict[str, dict]:
    """One bridge process for several nodes (TVM imported once); node id -> result entry."""
    nodes = []
    for case, model in models.items():
        path = tmp / f"{case}.onnx"
        onnx.save(model, str(path))
        nodes.append({"id": case, "model": str(path), "outDir": str(tmp / tag / case), "kernelPrefix": f"tpat_{case}_"})
    request = tmp / f"{tag}.request.json"
    request.write_text(json.dumps({"arch": "sm_90", "cacheDirectory": str(cache), "nodes": nodes}))
    result = tmp / f"{tag}.result.json"
    subprocess.run([sys.executable, "-m", "tpat_bridge", "manifests", str(request), str(result)],
                   cwd=PYTHON_DIR, capture_output=True, text=True, check=True)
    return {n["id"]: n for n in json.loads(result.read_text())["nodes"]}


def _entry(cache: Path, tmp: Path, case: str) -> Path:
    from tpat_bridge import cache as kernel_cache
    from tpat_bridge.bridge import tvm_version

    k = kernel_cache.key(str(tmp / f"{case}.onnx"), None, f"tpat_{case}_", "sm_90", tvm_version())
    return Path(kernel_cache.entry_dir(str(cache), k))


@pytest.fixture(scope="module")
def damaged_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """LayerNormalization (two folded constants) once per kind of damage: a first run fills the
    cache, each entry is damaged its own way, a second run meets the damage, a third reads what
    the second stored."""
    from models import layernorm

    tmp = tmp_path_factory.mktemp("damage")
    cache = tmp / "cache"
    models = {case: layernorm(4) for case in DAMAGE}
    fresh = _run_many(tmp, "fresh", models, cache)
    for case, (damage, _) in DAMAGE.items():
        entry = _entry(cache, tmp, case)
        assert (entry / "digest.json").is_file() and (entry / "constants" / "c0.bin").is_file()
        damage(entry)
    damaged = _run_many(tmp, "damaged", models, cache)
    again = _run_many(tmp, "again", models, cache)
    return {"tmp": tmp, "cache": cache, "fresh": fresh, "damaged": damaged, "again": again}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_entry_is_regenerated_with_one_warning_and_replaced(damaged_runs: dict, case: str) -> None:
    tmp, cache = damaged_runs["tmp"], damaged_runs["cache"]
    fresh, damaged, again = (damaged_runs[run][case] for run in ("fresh", "damaged", "again"))
    entry = _entry(cache, tmp, case)
    assert fresh["status"] == "ok" and not fresh.get("cached") and not fresh.get("warnings")
    # Regenerated (not cached), the same manifest and constants as before the damage.
    assert damaged["status"] == "ok" and not damaged.get("cached"), damaged
    assert Path(damaged["manifest"]).read_text() == Path(fresh["manifest"]).read_text()
    for c in ("c0.bin", "c1.bin"):
        assert (Path(damaged["manifest"]).parent / "constants" / c).read_bytes() == \
            (Path(fresh["manifest"]).parent / "constants" / c).read_bytes()
    # One warning naming the entry and what was wrong with it; the node's log has it too.
    warnings = damaged.get("warnings", [])
    assert len(warnings) == 1, warnings
    assert str(entry) in warnings[0] and DAMAGE[case][1] in warnings[0], warnings[0]
    assert "replacing the entry" in warnings[0]
    assert warnings[0] in (Path(damaged["manifest"]).parent / "bridge.log").read_text()
    # Replaced: the next run is a clean hit with the same manifest, and nothing is left beside it.
    assert again["status"] == "ok" and again.get("cached") is True and not again.get("warnings"), again
    assert Path(again["manifest"]).read_text() == Path(fresh["manifest"]).read_text()
    # (other cases' entries may share the two-character prefix folder: keys are hashes)
    siblings = {e.name for e in (_entry(cache, tmp, c) for c in DAMAGE) if e.parent == entry.parent}
    assert sorted(p.name for p in entry.parent.iterdir()) == sorted(siblings)
    assert sorted(p.name for p in entry.iterdir()) == ["constants", "digest.json", "manifest.json"]


def test_restore_hands_over_only_checked_bytes(tmp_path: Path) -> None:
    """restore copies and checks in one read: a damaged entry leaves no manifest or constants in
    the node's folder; a missing entry is a plain miss; store keeps a sound entry and replaces a
    broken one."""
    from tpat_bridge import cache as kernel_cache

    out = tmp_path / "node"
    (out / "constants").mkdir(parents=True)
    (out / "manifest.json").write_text('{"constants": []}')
    (out / "constants" / "c0.bin").write_bytes(bytes(range(256)) * 4)
    cache = tmp_path / "cache"
    k = "ab" + "0" * 62
    assert kernel_cache.restore(str(cache), k, str(tmp_path / "miss")) is None
    assert kernel_cache.store(str(cache), k, str(out), {"trials": 8}) is None
    entry = Path(kernel_cache.entry_dir(str(cache), k))
    restored = kernel_cache.restore(str(cache), k, str(tmp_path / "hit"))
    assert restored is not None and restored.tuning == {"trials": 8}
    assert (tmp_path / "hit" / "constants" / "c0.bin").read_bytes() == (out / "constants" / "c0.bin").read_bytes()

    (entry / "constants" / "extra.bin").write_bytes(b"x")
    with pytest.raises(kernel_cache.BrokenEntry, match="extra.bin was not there"):
        kernel_cache.restore(str(cache), k, str(tmp_path / "bad"))
    assert not (tmp_path / "bad" / "manifest.json").exists() and not (tmp_path / "bad" / "constants").exists()
    (entry / "constants" / "extra.bin").unlink()
    (entry / "tuning.json").write_text('{"trials": 9}')
    with pytest.raises(kernel_cache.BrokenEntry, match="tuning.json was changed"):
        kernel_cache.restore(str(cache), k, str(tmp_path / "bad"))
    os_link = entry / "constants" / "c0.bin"
    os_link.unlink()
    os_link.symlink_to(out / "constants" / "c0.bin")  # the same bytes, through a link: still refused
    with pytest.raises(kernel_cache.BrokenEntry, match="not a regular file"):
        kernel_cache.restore(str(cache), k, str(tmp_path / "bad"))

    before = (entry / "digest.json").read_text()
    assert kernel_cache.store(str(cache), k, str(out), {"trials": 8}) is None  # broken: replaced
    (entry / "digest.json").write_text('{"version": 1, "files": ')
    with pytest.raises(kernel_cache.BrokenEntry, match="digest.json is unreadable"):
        kernel_cache.restore(str(cache), k, str(tmp_path / "bad"))
    assert kernel_cache.store(str(cache), k, str(out), {"trials": 8}) is None
    assert kernel_cache.restore(str(cache), k, str(tmp_path / "hit2")).tuning == {"trials": 8}
    assert not (entry / "constants" / "c0.bin").is_symlink()
    stat = (entry / "digest.json").stat()
    assert kernel_cache.store(str(cache), k, str(out), {"trials": 99}) is None  # sound: kept
    assert (entry / "digest.json").stat().st_mtime_ns == stat.st_mtime_ns
    assert (entry / "digest.json").read_text() == before
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]

    other = Path(kernel_cache.entry_dir(str(cache), "cd" + "0" * 62))
    other.parent.mkdir(parents=True)
    other.write_text("not a folder")
    with pytest.raises(kernel_cache.BrokenEntry, match="it is not a folder"):
        kernel_cache.restore(str(cache), "cd" + "0" * 62, str(tmp_path / "bad"))
    assert kernel_cache.store(str(cache), "cd" + "0" * 62, str(out)) is None
    assert kernel_cache.restore(str(cache), "cd" + "0" * 62, str(tmp_path / "hit3")).tuning is None
