"""Shared fixtures: build every sub-model, run the bridge once (one process for all nodes), and
compile each manifest's CUDA source + generated launcher with nvcc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import onnx
import pytest

HERE = Path(__file__).resolve().parent
PYTHON_DIR = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(PYTHON_DIR))

import models  # noqa: E402
from launcher import launcher_source  # noqa: E402

VENV = PYTHON_DIR.parent / ".venv"
NVCC_DIR = VENV / "lib/python3.11/site-packages/nvidia/cu13/bin"
NVCC = Path(os.environ.get("TPAT_NVCC", NVCC_DIR / "nvcc"))



def custom_op_model() -> onnx.ModelProto:
    """A node TVM's frontend has never heard of (import error expected)."""
    from onnx import TensorProto, helper

    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="NoSuchOp_0", domain="tpat.test")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("tpat.test", 1)])


def run_bridge(tmp: Path, named_models: dict[str, onnx.ModelProto], arch: str = "sm_90",
               specialize: dict[str, dict[str, int] | list[dict[str, int]]] | None = None) -> dict[str, Any]:
    """Write the sub-models and a REQUEST, run ``python -m tpat_bridge manifests``, return RESULT
    plus ``wall`` (seconds for the whole process). ``specialize``: sizes to specialize, by name (a
    list of maps for several specializations)."""
    nodes = []
    for name, model in named_models.items():
        path = tmp / f"{name}.onnx"
        onnx.save(model, str(path))
        nodes.append({"id": name, "model": str(path), "outDir": str(tmp / name), "kernelPrefix": f"tpat_{name}_"})
        if specialize and name in specialize:
            sizes = specialize[name]
            nodes[-1]["specializations"] = sizes if isinstance(sizes, list) else [sizes]
    request = tmp / "request.json"
    result = tmp / "result.json"
    request.write_text(json.dumps({"arch": arch, "nodes": nodes, "tuning": None}))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tpat_bridge", "manifests", str(request), str(result)],
                          cwd=PYTHON_DIR, capture_output=True, text=True)
    wall = time.perf_counter() - start
    assert result.exists(), proc.stderr
    doc = json.loads(result.read_text())
    doc["wall"] = wall
    doc["returncode"] = proc.returncode
    doc["by_id"] = {n["id"]: n for n in doc["nodes"]}
    return doc


@pytest.fixture(scope="session")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One bridge run over all test models (plus failing ones)."""
    tmp = tmp_path_factory.mktemp("bridge")
    named = {name: build() for name, build in models.MODELS.items()}
    named["custom_op"] = custom_op_model()
    doc = run_bridge(tmp, named)
    timing = ", ".join(f"{n['id']} {n['seconds']:.2f}s" for n in doc["nodes"])
    print(f"\nbridge: {doc['wall']:.1f}s wall for {len(named)} nodes; {timing}")
    return doc


def load_manifest(bridge: dict[str, Any], name: str) -> dict[str, Any]:
    entry = bridge["by_id"][name]
    assert entry["status"] == "ok", entry
    return json.loads(Path(entry["manifest"]).read_text())


def nvcc_compile(source: str, path: Path) -> subprocess.CompletedProcess:
    path.write_text(source)
    return subprocess.run([str(NVCC), "-arch=sm_90", "-std=c++17", "-Xcompiler", "-fPIC", "-c", str(path), "-o", str(path.with_suffix(".o")),
                           "-w"], capture_output=True, text=True)


@pytest.fixture(scope="session")
def compiled(bridge: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """nvcc -c of each ok manifest's source + launcher, two at a time (2 cores)."""
    if not NVCC.exists():
        pytest.skip(f"nvcc not found at {NVCC}")
    tmp = tmp_path_factory.mktemp("nvcc")
    ok = [n["id"] for n in bridge["nodes"] if n["status"] == "ok"]

    def one(name: str) -> tuple[str, subprocess.CompletedProcess]:
        m = load_manifest(bridge, name)
        return name, nvcc_compile(launcher_source(m), tmp / f"{name}.cu")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        out = dict(pool.map(one, ok))
    print(f"\nnvcc: {time.perf_counter() - start:.1f}s for {len(ok)} translation units")
    return out
