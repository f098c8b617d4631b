#!/usr/bin/env python3
"""Runs on the CUDA machine before the corpus self-tests (scripts/real-models/selftest-bundle.py
--synthesize): rebuilds the self-test data of the plugins whose weights and reference data were too
large to carry, so that their kernels are still checked at the model's real shapes.

For each plugin folder holding SYNTHESIZE.json:
- every file listed under "synthesized" (a large weight in constants/, a large input in test/) is
  drawn afresh, with the dtype, size and value statistics measured on the model's own file here
  (floats: normal with its mean and standard deviation, clipped to its minimum and maximum;
  integers: uniform over its range, so indices stay valid; booleans: its fraction of true);
- when "recompute" is set, every case's outputs are computed again by ONNX Runtime from the
  plugin's node.onnx (which reads the same constants/ files) on the case's inputs, and written
  where the self-test reads them (test/reference.json keeps their shapes).

Needs only numpy and onnxruntime (no onnx, no TVM). Prints one line per plugin and a total; exit
code 1 if any plugin's data could not be made (its self-test then fails and says so).

    python3 synthesize.py ROOT [--jobs N]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# numpy's dtype for each dtype name of reference.json and the manifest (selftest-bundle.py and
# cpu-check-kernels.py read this table too)
DTYPES = {
    "float32": np.float32, "float16": np.float16, "float64": np.float64,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_,
}


def draw(spec: dict, seed: int) -> np.ndarray:
    """One synthesized tensor, flat, from the statistics measured on the model's own file."""
    dtype = np.dtype(DTYPES[spec["dtype"]])
    count = spec["bytes"] // dtype.itemsize
    rng = np.random.default_rng(seed)
    kind = spec["kind"]
    if kind == "float":
        values = rng.normal(spec["mean"], max(spec["std"], 0.0), size=count)
        return np.clip(values, spec["min"], spec["max"]).astype(dtype)
    if kind == "int":
        return rng.integers(spec["min"], spec["max"], size=count, endpoint=True, dtype=np.int64).astype(dtype)
    if kind == "bool":
        return rng.random(size=count) < spec["true_fraction"]
    raise ValueError(f"unknown kind {kind!r}")


def read_tensor(folder: pathlib.Path, entry: dict) -> np.ndarray:
    data = np.fromfile(folder / "test" / entry["file"], dtype=DTYPES[entry["dtype"]])
    return data.reshape(entry["shape"])


def synthesize(plugin: pathlib.Path) -> tuple[str, bool, str]:
    """Makes one plugin's data; returns (name, ok, what was done or why not)."""
    try:
        spec = json.loads((plugin / "SYNTHESIZE.json").read_text())
        for entry in spec["synthesized"]:
            seed = zlib.crc32(f"{spec['plugin']}/{entry['file']}".encode())
            path = plugin / entry["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            draw(entry, seed).tofile(path)
        if not spec["recompute"]:
            return plugin.name, True, f"{len(spec['synthesized'])} files drawn"
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(str(plugin / "node.onnx"), options, providers=["CPUExecutionProvider"])
        known = {o.name for o in session.get_outputs()}
        reference = json.loads((plugin / "test" / "reference.json").read_text())
        for case in reference["cases"]:
            feeds = {entry["name"]: read_tensor(plugin, entry) for entry in case["inputs"]}
            names = [entry["name"] for entry in case["outputs"]]
            missing = [n for n in names if n not in known]
            if missing:
                return plugin.name, False, f"node.onnx has no output {missing}"
            results = session.run(names, feeds)
            for entry, value in zip(case["outputs"], results):
                if list(value.shape) != list(entry["shape"]):
                    return plugin.name, False, f"{entry['name']}: ONNX Runtime gives {list(value.shape)}, the case says {entry['shape']}"
                out = plugin / "test" / entry["file"]
                out.parent.mkdir(parents=True, exist_ok=True)
                np.ascontiguousarray(value.astype(DTYPES[entry["dtype"]], copy=False)).tofile(out)
        return plugin.name, True, f"{len(spec['synthesized'])} files drawn, {len(reference['cases'])} cases recomputed"
    except Exception as error:  # one plugin's failure is reported, never stops the others
        return plugin.name, False, f"{type(error).__name__}: {error}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="the unpacked selftests/ folder")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    args = parser.parse_args()
    plugins = sorted(p.parent for p in pathlib.Path(args.root).glob("*/plugins/*/SYNTHESIZE.json"))
    failed = 0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name, ok, what in pool.map(synthesize, plugins):
            print(f"{'SYNTH' if ok else 'SYNTH-FAILED'} {name}: {what}", flush=True)
            failed += not ok
    print(f"synthesized data for {len(plugins) - failed} of {len(plugins)} plugins")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
