"""Run ``tpat generate`` over the batch models and give each plugin the tests' own data.

For each batch: ``tpat generate batches/bNNN/model.onnx -o gen/bNNN --nodes <its tests' nodes>
--no-reference [--no-build]`` (with ``--fuse`` for a batch of function-expanded tests, whose
several nodes make one plugin per test); then, mapping plugins to tests through report.json (a
plugin lists the nodes it replaces, and a node is named after its test, ``<test>/<k>`` in an
expanded test), replace each plugin's
``test/reference.json`` by one case per test: the test's own inputs and expected outputs, in the
plugin's input and output order, in the manifest's dtypes (a type TPAT carries in another is converted exactly).
A batch whose ``tpat generate`` fails as a whole is run again one test at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


def run_tpat(tpat: str, model: str, out: str, nodes: list[str], arch: str, build: bool, log: str,
             fuse: bool = False) -> tuple[int, float]:
    """One ``tpat generate``; returns its exit status and seconds."""
    cmd = [tpat, "generate", model, "-o", out, "--nodes", ",".join(nodes), "--arch", arch, "--no-reference",
           "--force", "-q"] + (["--fuse"] if fuse else [])
    if not build:
        cmd.append("--no-build")
    start = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    return rc, time.perf_counter() - start


def generate_batch(root: str, batch: dict[str, Any], tpat: str, arch: str, build: bool,
                   tests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Generate one batch (falling back to one run per test); returns what happened."""
    bid = batch["id"]
    model = os.path.join(root, "batches", bid, "model.onnx")
    out = os.path.join(root, "gen", bid)
    os.makedirs(os.path.join(root, "gen"), exist_ok=True)
    log = os.path.join(root, "gen", f"{bid}.log")
    fuse = bool(batch.get("fuse"))
    rc, seconds = run_tpat(tpat, model, out, batch.get("nodes", batch["tests"]), arch, build, log, fuse)
    result: dict[str, Any] = {"id": bid, "tests": len(batch["tests"]), "seconds": round(seconds, 1), "runs": [out]}
    if rc == 0 or os.path.exists(os.path.join(out, "report.json")):
        return result
    # The whole run failed (bad input for one node aborts it): one run per test.
    result["wholeBatchFailed"] = tail(log)
    result["runs"] = []
    for k, test in enumerate(batch["tests"]):
        single = os.path.join(root, "gen", f"{bid}-{k:02d}")
        slog = single + ".log"
        rc, s = run_tpat(tpat, model, single, [f"{test}/*" if fuse else test], arch, build, slog, fuse)
        result["seconds"] = round(result["seconds"] + s, 1)
        if rc == 0 or os.path.exists(os.path.join(single, "report.json")):
            result["runs"].append(single)
        else:
            result.setdefault("runFailures", {})[test] = tail(slog)
    return result


def tail(path: str, lines: int = 3) -> str:
    """The last lines of a log, as one line."""
    try:
        with open(path, errors="replace") as f:
            text = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(text[-lines:])[:600]


def write_references(run: str, tests: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """Replace each plugin's test/reference.json with its tests' own data; returns
    ({test name: plugin name}, {test name: why its data could not be written})."""
    with open(os.path.join(run, "report.json")) as f:
        report = json.load(f)
    mapping: dict[str, str] = {}
    errors: dict[str, str] = {}
    owner = {node: name for name, test in tests.items() for node in (test.get("nodes") or [name])}
    for plugin in report["plugins"]:
        served = list(dict.fromkeys(owner.get(node, node) for node in plugin["nodes"]))
        try:
            mapping.update(write_plugin_reference(run, plugin, served, tests))
        except (ValueError, OSError, KeyError) as exc:
            for test in served:
                errors[test] = f"{type(exc).__name__}: {exc}"
    return mapping, errors


def write_plugin_reference(run: str, plugin: dict[str, Any], served: list[str],
                           tests: dict[str, dict[str, Any]]) -> dict[str, str]:
    """One plugin's test/reference.json: one case per test it serves (``served``, test names)."""
    mapping: dict[str, str] = {}
    directory = os.path.join(run, "plugins", plugin["name"])
    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
    test_dir = os.path.join(directory, "test")
    if os.path.isdir(test_dir):
        shutil.rmtree(test_dir)
    os.makedirs(test_dir)
    cases = []
    for k, node in enumerate(served):
        test = tests[node]
        case_dir = f"t{k}"
        os.makedirs(os.path.join(test_dir, case_dir))
        case: dict[str, Any] = {"name": test["name"], "inputs": [], "outputs": []}
        for role, ports, specs in (("inputs", test["inputs"], manifest["inputs"]),
                                   ("outputs", test["outputs"], manifest["outputs"])):
            arrays = [(np.load(port["file"], allow_pickle=False), port["dtype"]) for port in ports]
            if role == "outputs":
                # A data-dependent dim's size output (docs/manifest.md) follows the node's outputs:
                # the extent the test's expected output has.
                sizes = {d["sizeOutput"]: (j, d["dim"]) for j, spec in enumerate(specs) for d in spec.get("dataDependent", [])}
                for k in sorted(sizes):
                    j, dim = sizes[k]
                    if k == len(arrays) and j < len(ports):
                        arrays.append((np.asarray(arrays[j][0].shape[dim], dtype=np.int32), "int32"))
            if len(arrays) != len(specs):
                raise ValueError(f"{plugin['name']}: {len(specs)} {role} in the manifest, the test has {len(ports)}")
            for j, ((a, port_dtype), spec) in enumerate(zip(arrays, specs)):
                dtype = spec["dtype"]
                if dtype != port_dtype:
                    # TPAT carries some types in another at the plugin's boundary (NodeExtractor's
                    # carrierTypes: BOOL as INT32, UINT8 and INT8 as FLOAT): exact conversions only,
                    # but DOUBLE as FLOAT, which TensorRT's parser documents (cast down, clamped to
                    # +-FLT_MAX): the values a plugin gets there
                    carried = np.asarray(a).astype(dtype)
                    if port_dtype == "float64" and dtype == "float32":
                        finite = np.finfo(np.float32).max
                        a = np.where(np.isfinite(a), np.clip(a, -finite, finite), a).astype(np.float32)
                    elif carried.shape == np.shape(a) and np.array_equal(carried.astype(port_dtype), a):
                        a = carried
                    else:
                        raise ValueError(f"{plugin['name']}: {role} {j} is {spec['dtype']} in the manifest, "
                                         f"{port_dtype} in the test")
                file = f"{case_dir}/{role[:-1]}{j}.bin"
                with open(os.path.join(test_dir, file), "wb") as f:
                    f.write(np.ascontiguousarray(a).tobytes())
                case[role].append({"name": spec["name"], "dtype": dtype, "shape": list(a.shape), "file": file})
        cases.append(case)
        mapping[node] = plugin["name"]
    with open(os.path.join(test_dir, "reference.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)
    return mapping


def generate(root: str, tpat: str, arch: str, build: bool, jobs: int, only: set[str] | None = None) -> dict[str, Any]:
    """Every batch (in parallel, ``jobs`` at a time), then the reference data; writes
    root/generation.json."""
    with open(os.path.join(root, "tests.json")) as f:
        doc = json.load(f)
    tests = {t["name"]: t for t in doc["tests"]}
    batches = [b for b in doc["batches"] if only is None or b["id"] in only]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda b: generate_batch(root, b, tpat, arch, build, tests), batches))
    plugin_of: dict[str, dict[str, str]] = {}
    reference_errors: dict[str, str] = {}
    for result in results:
        for run in result["runs"]:
            mapping, errors = write_references(run, tests)
            for test, plugin in mapping.items():
                plugin_of[test] = {"run": os.path.relpath(run, root), "plugin": plugin}
            reference_errors.update(errors)
    summary = {"seconds": round(time.perf_counter() - start, 1), "jobs": jobs, "build": build, "arch": arch,
               "batches": results, "pluginOf": plugin_of, "referenceErrors": reference_errors}
    previous = os.path.join(root, "generation.json")
    if only is not None and os.path.exists(previous):
        # Some batches again: keep what the others gave.
        with open(previous) as f:
            old = json.load(f)
        again = {t for b in batches for t in b["tests"]}
        summary["batches"] = [b for b in old["batches"] if b["id"] not in only] + results
        summary["batches"].sort(key=lambda b: b["id"])
        summary["pluginOf"] = {k: v for k, v in old["pluginOf"].items() if k not in again} | plugin_of
        summary["referenceErrors"] = {k: v for k, v in old["referenceErrors"].items() if k not in again} | reference_errors
    with open(os.path.join(root, "generation.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary
