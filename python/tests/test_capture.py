"""``capture``: each plugin's self-test inputs come from the whole model run in ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import PYTHON_DIR
from tpat_bridge.reference import write_reference


def scatter_model() -> onnx.ModelProto:
    """ids[N,S] -> Gather(table[10,4]) -> emb[N,S,4]; ScatterElements(emb, ArgMax(emb), ReduceSum(emb))
    along the last axis: the indices and updates of the scatter come from upstream, so drawn
    inputs of unrelated sizes could not feed it; mask[N,S] multiplies the result."""
    table = numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(10, 4) * 0.25 - 3.0, "table")
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed", axis=0),
        helper.make_node("ArgMax", ["emb"], ["idx"], name="argmax", axis=2, keepdims=1),
        helper.make_node("ReduceSum", ["emb", "axes"], ["upd"], name="sum", keepdims=1),
        helper.make_node("ScatterElements", ["emb", "idx", "upd"], ["scattered"], name="scatter", axis=2),
        helper.make_node("Cast", ["mask"], ["maskf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axes"], ["mask3"], name="unsq"),
        helper.make_node("Mul", ["scattered", "mask3"], ["y"], name="mul"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "S"]),
         helper.make_tensor_value_info("mask", TensorProto.INT64, ["N", "S"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "S", 4])], [table, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def scatter_sub_model() -> onnx.ModelProto:
    """The scatter node as TPAT extracts it: its inputs are the sub-model's graph inputs."""
    node = helper.make_node("ScatterElements", ["input0", "input1", "input2"], ["output0"], name="node", axis=2)
    graph = helper.make_graph(
        [node], "tpat_node",
        [helper.make_tensor_value_info("input0", TensorProto.FLOAT, ["N", "S", 4]),
         helper.make_tensor_value_info("input1", TensorProto.INT64, ["N", "S", 1]),
         helper.make_tensor_value_info("input2", TensorProto.FLOAT, ["N", "S", 1])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", "S", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run_capture(tmp_path: Path, model: onnx.ModelProto, request: dict) -> dict:
    model_path = tmp_path / "model" / "m.onnx"
    model_path.parent.mkdir(parents=True)
    # weights as external data, as large models keep them
    onnx.save(model, str(model_path), save_as_external_data=True, location="m.data", size_threshold=0)
    request = {"model": str(model_path), "seed": 5, **request}
    (tmp_path / "request.json").write_text(json.dumps(request))
    subprocess.run([sys.executable, "-m", "tpat_bridge", "capture", str(tmp_path / "request.json"),
                    str(tmp_path / "result.json"), str(tmp_path / "captured")], cwd=PYTHON_DIR, check=True)
    return json.loads((tmp_path / "result.json").read_text())


def test_inputs_come_from_the_model(tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in (tmp_path).glob("**/*") if p.is_file()}
    result = run_capture(tmp_path, scatter_model(), {
        "cases": [{"name": "case0", "dims": {}}, {"name": "case1", "dims": {"S": 5}}],
        "plugins": [{"id": "tpat_scatter", "values": ["emb", "idx", "upd"]},
                    {"id": "tpat_inner", "values": ["no_such_value"]}]})
    assert before == {}
    assert [c["error"] for c in result["cases"]] == [None, None]
    # unspecified dims: the leading (batch) dim 1 then 3, a sequence dim 16 then 7
    assert result["cases"][0]["dims"] == {"N": 1, "S": 16}
    assert result["cases"][1]["dims"] == {"N": 3, "S": 5}
    assert "no_such_value" in result["missing"]["tpat_inner"]
    assert result["plugins"]["tpat_inner"] == {"case0": None, "case1": None}
    assert result["bytes"]["tpat_scatter"] == {"case0": 1 * 16 * 4 * 4 + 1 * 16 * 8 + 1 * 16 * 4,
                                               "case1": 3 * 5 * 4 * 4 + 3 * 5 * 8 + 3 * 5 * 4}
    sub_path = tmp_path / "node.onnx"
    onnx.save(scatter_sub_model(), str(sub_path))
    for case, (n, s) in (("case0", (1, 16)), ("case1", (3, 5))):
        folder = result["plugins"]["tpat_scatter"][case]
        emb, idx, upd = (np.load(Path(folder) / f"input_{i}.npy") for i in range(3))
        assert emb.shape == (n, s, 4) and idx.shape == (n, s, 1) and upd.shape == (n, s, 1)
        # the embedding look-up only worked because ids were drawn below the table's 10 rows
        assert np.all((idx >= 0) & (idx < 4))
        np.testing.assert_allclose(upd, emb.sum(axis=2, keepdims=True), rtol=1e-6)
        out = tmp_path / "ref" / case
        write_reference(str(sub_path), str(out), 0, {}, folder)
        doc = json.loads((out / "reference.json").read_text())
        assert doc["dims"] == {"N": n, "S": s}
        expected = emb.copy()
        np.put_along_axis(expected, idx, upd, axis=2)
        got = np.fromfile(out / doc["outputs"][0]["file"], dtype=np.float32).reshape(doc["outputs"][0]["shape"])
        np.testing.assert_array_equal(got, expected)


def test_a_model_onnx_runtime_cannot_run_is_reported_per_case(tmp_path: Path) -> None:
    model = scatter_model()
    model.graph.node[0].op_type = "NoSuchOp"
    result = run_capture(tmp_path, model, {"cases": [{"name": "case0", "dims": {}}],
                                           "plugins": [{"id": "p", "values": ["emb"]}]})
    assert result["cases"][0]["error"] and "NoSuchOp" in result["cases"][0]["error"]
    assert result["plugins"]["p"] == {"case0": None}


def test_given_inputs_make_one_case(tmp_path: Path) -> None:
    ids = np.array([[9, 0]], np.int64)
    np.savez(tmp_path / "inputs.npz", ids=ids, mask=np.ones((1, 2), np.int64))
    result = run_capture(tmp_path, scatter_model(), {
        "cases": [{"name": "case0", "dims": {}}, {"name": "case1", "dims": {}}], "inputs": str(tmp_path / "inputs.npz"),
        "plugins": [{"id": "p", "values": ["emb"]}]})
    assert [c["name"] for c in result["cases"]] == ["case0"]
    emb = np.load(Path(result["plugins"]["p"]["case0"]) / "input_0.npy")
    np.testing.assert_allclose(emb[0, 0], np.arange(36, 40) * 0.25 - 3.0)


def test_model_inputs_are_kept_and_gather_nd_indices_fit_each_indexed_dim(tmp_path: Path) -> None:
    """GatherND over a graph input of [1, 8, 16, 16] with indices [4, 2]: column 0 indexes a dim of
    1, column 1 a dim of 8 (a single bound of 8 for both made ONNX Runtime refuse the model). Each
    case's model inputs are kept for the whole-model check."""
    node = helper.make_node("GatherND", ["image", "picks"], ["y"], name="gather")
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 16, 16]),
         helper.make_tensor_value_info("picks", TensorProto.INT64, [4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    result = run_capture(tmp_path, model, {"cases": [{"name": "case0", "dims": {}}, {"name": "case1", "dims": {}}],
                                           "plugins": [{"id": "tpat_gather", "values": ["image", "picks"]}]})
    assert [c["error"] for c in result["cases"]] == [None, None]
    picks = []
    for case in ("case0", "case1"):
        with np.load(result["modelInputs"][case]) as data:
            assert sorted(data.files) == ["image", "picks"]
            picks.append(data["picks"])
    for p in picks:
        assert np.all(p[:, 0] == 0) and np.all((p[:, 1] >= 0) & (p[:, 1] < 8))
    assert any(np.any(p[:, 1] > 0) for p in picks), "column 1 is drawn over its whole range"


def test_scatter_nd_targets_are_distinct(tmp_path: Path) -> None:
    """ScatterND with duplicate targets has no defined result (the GPU's write order decides): the
    capture draws the model's indices input with distinct rows, as the self-tests' drawn data does."""
    node = helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"], name="scatter")
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [4, 64, 64, 16]),
         helper.make_tensor_value_info("indices", TensorProto.INT64, [4, 600, 3]),
         helper.make_tensor_value_info("updates", TensorProto.FLOAT, [4, 600, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 64, 64, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    result = run_capture(tmp_path, model, {"cases": [{"name": "case0", "dims": {}}],
                                           "plugins": [{"id": "tpat_scatter", "values": ["data", "indices", "updates"]}]})
    assert result["cases"][0]["error"] is None
    with np.load(result["modelInputs"]["case0"]) as data:
        rows = data["indices"].reshape(-1, 3)
    assert len({tuple(r) for r in rows}) == len(rows)
    assert np.all(rows >= 0) and np.all(rows < np.array([4, 64, 64]))
