"""The ``infer-shapes`` subcommand keeps external data external."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import PYTHON_DIR


def two_nodes(tmp: Path) -> tuple[Path, np.ndarray]:
    w = np.arange(64 * 32, dtype=np.float32).reshape(64, 32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "model.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="model.data", size_threshold=0)
    return path, w


def check(out: Path, w: np.ndarray) -> None:
    lean = onnx.load(str(out), load_external_data=False)
    assert lean.graph.initializer[0].data_location == TensorProto.EXTERNAL
    shapes = {vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(lean.graph.value_info) + list(lean.graph.output)}
    assert shapes["h"] == ["N", 32] and shapes["y"] == ["N", 32]
    full = onnx.load(str(out))
    assert np.array_equal(numpy_helper.to_array(full.graph.initializer[0]), w)


def test_other_folder(tmp_path: Path) -> None:
    src, w = two_nodes(tmp_path / "in")
    out = tmp_path / "out" / "inferred.onnx"
    out.parent.mkdir()
    subprocess.run([sys.executable, "-m", "tpat_bridge", "infer-shapes", str(src), str(out)], cwd=PYTHON_DIR, check=True)
    assert (out.parent / "inferred.onnx.data").exists()
    check(out, w)


def test_same_folder(tmp_path: Path) -> None:
    src, w = two_nodes(tmp_path)
    out = tmp_path / "inferred.onnx"
    subprocess.run([sys.executable, "-m", "tpat_bridge", "infer-shapes", str(src), str(out)], cwd=PYTHON_DIR, check=True)
    assert not (tmp_path / "inferred.onnx.data").exists()
    check(out, w)
