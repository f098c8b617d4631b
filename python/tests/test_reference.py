"""The ``reference`` subcommand: inputs drawn to suit the op, ONNX Runtime outputs, raw files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import models
from conftest import PYTHON_DIR
from tpat_bridge.reference import write_reference


def ref(tmp_path: Path, model: onnx.ModelProto, seed: int = 1, dims: dict[str, int] | None = None) -> dict[str, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "ref"
    write_reference(str(path), str(out), seed, dims or {})
    doc = json.loads((out / "reference.json").read_text())
    for t in doc["inputs"] + doc["outputs"]:
        dtype = np.bool_ if t["dtype"] == "bool" else np.dtype(t["dtype"])
        t["array"] = np.fromfile(out / t["file"], dtype=dtype).reshape(t["shape"])
        assert t["array"].nbytes == t["bytes"]
    return doc


def test_cli_symbolic_dims(tmp_path: Path) -> None:
    path = tmp_path / "abs.onnx"
    onnx.save(models.abs_sym(), str(path))
    out = tmp_path / "ref"
    subprocess.run([sys.executable, "-m", "tpat_bridge", "reference", str(path), str(out), "--seed", "3",
                    "--dims", "N=4"], cwd=PYTHON_DIR, check=True)
    doc = json.loads((out / "reference.json").read_text())
    assert doc["seed"] == 3 and doc["dims"] == {"N": 4}
    (x,), (y,) = doc["inputs"], doc["outputs"]
    assert x["name"] == "x" and x["dtype"] == "float32" and x["shape"] == [4, 1024]
    xa = np.fromfile(out / x["file"], np.float32)
    ya = np.fromfile(out / y["file"], np.float32)
    assert np.array_equal(ya, np.abs(xa)) and xa.std() > 0.5


def test_cli_missing_dim_fails(tmp_path: Path) -> None:
    path = tmp_path / "abs.onnx"
    onnx.save(models.abs_sym(), str(path))
    proc = subprocess.run([sys.executable, "-m", "tpat_bridge", "reference", str(path), str(tmp_path / "r")],
                          cwd=PYTHON_DIR, capture_output=True, text=True)
    assert proc.returncode != 0 and "N" in proc.stderr


def test_same_seed_same_data(tmp_path: Path) -> None:
    a = ref(tmp_path / "a", models.erf(), seed=7)
    b = ref(tmp_path / "b", models.erf(), seed=7)
    assert np.array_equal(a["inputs"][0]["array"], b["inputs"][0]["array"])


def test_gathernd_indices_in_range(tmp_path: Path) -> None:
    doc = ref(tmp_path, models.gathernd())
    idx = doc["inputs"][1]["array"]
    assert idx.dtype == np.int64 and idx.shape == (1, 600, 3)
    assert (idx >= 0).all() and (idx[..., 0] < 1).all() and (idx[..., 1:] < 128).all()
    assert len(np.unique(idx[..., 1])) > 50


def test_scatternd_targets_unique(tmp_path: Path) -> None:
    m = models.single("ScatterND", [models.vi("data", models.F32, [4, 16, 16, 32]), models.vi("indices", models.I64, [4, 60, 3]),
                                    models.vi("updates", models.F32, [4, 60, 32])], [models.vi("y", models.F32, [4, 16, 16, 32])])
    doc = ref(tmp_path, m)
    idx = doc["inputs"][1]["array"].reshape(-1, 3)
    assert len({tuple(r) for r in idx}) == len(idx)
    assert (idx.max(axis=0) < [4, 16, 16]).all() and (idx >= 0).all()
    data, upd, out = doc["inputs"][0]["array"], doc["inputs"][2]["array"], doc["outputs"][0]["array"]
    want = data.copy()
    for r, u in zip(idx, upd.reshape(-1, 32)):
        want[tuple(r)] = u
    assert np.array_equal(out, want)


def test_onehot_indices_cover_negative_and_out_of_range(tmp_path: Path) -> None:
    """Mostly in [-depth, depth) (one 1 in the row, negatives counting from the end), some outside
    (an all-off row), including values that alias an index after a 32-bit truncation."""
    doc = ref(tmp_path, models.onehot(rows=256))
    idx = doc["inputs"][0]["array"]
    inside = (idx >= -16384) & (idx < 16384)
    assert inside.any() and (~inside).any() and (idx < 0).any() and (np.abs(idx) >= 2**32).any()
    out = doc["outputs"][0]["array"]
    assert out.dtype == np.float32 and (out.sum(axis=1) == inside).all()
    hot = np.argmax(out[inside], axis=1)
    assert (hot == np.where(idx[inside] < 0, idx[inside] + 16384, idx[inside])).all()


def test_isinf_sees_both_answers(tmp_path: Path) -> None:
    doc = ref(tmp_path, models.isinf())
    y = doc["outputs"][0]["array"]
    assert doc["outputs"][0]["dtype"] == "bool" and y.any() and not y.all()


def test_where_bool_input_and_topk(tmp_path: Path) -> None:
    w = ref(tmp_path / "w", models.where())
    c = w["inputs"][0]["array"]
    assert w["inputs"][0]["dtype"] == "bool" and c.any() and not c.all()
    t = ref(tmp_path / "t", models.topk())
    assert [o["dtype"] for o in t["outputs"]] == ["float32", "int64"]
    x = t["inputs"][0]["array"]
    assert len(np.unique(x)) == x.size  # no ties: indices are well defined


def test_dims_by_original_or_c_name(tmp_path: Path) -> None:
    a = ref(tmp_path / "a", models.add_odd_sym(), dims={"batch-size": 3})
    b = ref(tmp_path / "b", models.add_odd_sym(), dims={"batch_size": 3})
    assert a["inputs"][0]["shape"] == b["inputs"][0]["shape"] == [3, 256]


def test_model_of_a_newer_ir_version_still_runs(tmp_path: Path) -> None:
    """A model saved by a newer onnx (IR 13) than this ONNX Runtime takes: run at the IR version it
    takes, the saved model left alone, no file left behind."""
    model = models.onehot()
    model.ir_version = 13
    doc = ref(tmp_path, model)
    assert doc["outputs"][0]["array"].shape == (16, 16384)
    assert onnx.load(str(tmp_path / "m.onnx")).ir_version == 13
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "ref"]


def test_batch_makes_every_case_and_reports_each_failure(tmp_path: Path) -> None:
    good = tmp_path / "abs.onnx"
    onnx.save(models.abs_sym(), str(good))
    bad = tmp_path / "bad.onnx"
    broken = models.abs_sym()
    broken.graph.node[0].op_type = "NoSuchOp"
    onnx.save(broken, str(bad))
    request = {"jobs": [
        {"model": str(good), "out_dir": str(tmp_path / "t" / "case0"), "seed": 1, "dims": {"N": 4}, "inputs": None},
        {"model": str(bad), "out_dir": str(tmp_path / "u" / "case0"), "seed": 1, "dims": {"N": 4}, "inputs": None},
        {"model": str(good), "out_dir": str(tmp_path / "t" / "case1"), "seed": 2, "dims": {"N": 9}, "inputs": None},
    ]}
    (tmp_path / "request.json").write_text(json.dumps(request))
    subprocess.run([sys.executable, "-m", "tpat_bridge", "references", str(tmp_path / "request.json"),
                    str(tmp_path / "result.json")], cwd=PYTHON_DIR, check=True)
    result = json.loads((tmp_path / "result.json").read_text())
    assert [j["error"] is None for j in result["jobs"]] == [True, False, True]
    assert "NoSuchOp" in result["jobs"][1]["error"]
    assert "Traceback" in (tmp_path / "u" / "case0.log").read_text()
    for case, n in (("case0", 4), ("case1", 9)):
        doc = json.loads((tmp_path / "t" / case / "reference.json").read_text())
        assert doc["inputs"][0]["shape"][0] == n


def test_a_weight_in_the_plugins_constants_folder_is_read_from_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """node.onnx points at constants/c0.bin (TPAT stores a weight once); the reference reads it
    relative to node.onnx, whatever the working folder."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 10
    w = numpy_helper.from_array(weight, "w")
    plugin = tmp_path / "plugin"
    (plugin / "constants").mkdir(parents=True)
    (plugin / "constants" / "c0.bin").write_bytes(weight.tobytes())
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="constants/c0.bin")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(plugin / "node.onnx"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = plugin / "test"
    write_reference(str(plugin / "node.onnx"), str(out), 1, {})
    doc = json.loads((out / "reference.json").read_text())
    x = np.fromfile(out / doc["inputs"][0]["file"], dtype=np.float32).reshape(1, 3, 8, 8)
    y = np.fromfile(out / doc["outputs"][0]["file"], dtype=np.float32).reshape(1, 2, 6, 6)
    want = np.zeros((2, 6, 6), np.float32)
    for o in range(2):
        for i in range(6):
            for j in range(6):
                want[o, i, j] = (x[0, :, i:i + 3, j:j + 3] * weight[o]).sum()
    np.testing.assert_allclose(y[0], want, rtol=1e-5, atol=1e-5)
