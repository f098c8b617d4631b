#!/usr/bin/env python3
"""Checks corpus plugins' kernels on the CPU against their self-test data (captured from the model
itself by the corpus run, `make real-models`), without a GPU: each sampled plugin's node.onnx is
compiled by the bridge as `tpat generate` compiles it, its CUDA kernels run on the CPU through
python/tests/cuda_on_cpu.py (g++ and an emulation of blocks, shared memory, barriers and warp
shuffles; kernels with other warp intrinsics are skipped), and the outputs are compared with the
reference outputs at the self-test's tolerance (float32: atol 1e-4 + rtol 1e-3).

    scripts/real-models/cpu-check-kernels.py [--out real-models-out] [--only-ops MatMul,Gemm] [--per-model 2] [--cases 2]

Prints PASS/FAIL/SKIP per plugin and case, and a total; exit code 1 if any failed."""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "python" / "tests")]

from synthesize_selftest_data import DTYPES  # noqa: E402 - numpy's dtype per dtype name, one table



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "real-models-out"))
    parser.add_argument("--only-ops", default="MatMul,Gemm")
    parser.add_argument("--per-model", type=int, default=2, help="plugins per model and op type")
    parser.add_argument("--cases", type=int, default=2, help="self-test cases per plugin")
    args = parser.parse_args()

    import onnx

    from cuda_on_cpu import run_plan_on_cpu, unemulated
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.plan import build_plan

    ops = set(args.only_ops.split(","))
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for report_path in sorted(pathlib.Path(args.out).glob("*/report.json")):
        folder = report_path.parent
        taken: dict[str, int] = {}
        for plugin in json.loads(report_path.read_text()).get("plugins", []):
            if plugin["opType"] not in ops or taken.get(plugin["opType"], 0) >= args.per_model:
                continue
            pdir = folder / "plugins" / plugin["name"]
            if not (pdir / "test" / "reference.json").is_file():
                continue
            taken[plugin["opType"]] = taken.get(plugin["opType"], 0) + 1
            tag = f"{folder.name} {plugin['name']}"
            try:
                compiled = compile_model(onnx.load(str(pdir / "node.onnx")), "sm_90", [])
                plan = build_plan(compiled)
            except Exception as error:  # noqa: BLE001 - reported, the next plugin runs
                print(f"FAIL {tag}: compile: {error}", flush=True)
                counts["FAIL"] += 1
                continue
            refused = unemulated(compiled.cuda_source)
            if refused:
                print(f"SKIP {tag}: warp intrinsics {refused} are not emulated", flush=True)
                counts["SKIP"] += 1
                continue
            reference = json.loads((pdir / "test" / "reference.json").read_text())
            for case in reference["cases"][:args.cases]:
                def read(entry: dict) -> np.ndarray:
                    return np.fromfile(pdir / "test" / entry["file"], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])

                start = time.time()
                with tempfile.TemporaryDirectory() as work:
                    try:
                        got = run_plan_on_cpu(compiled, plan, [read(e) for e in case["inputs"]], work)
                    except Exception as error:  # noqa: BLE001
                        print(f"FAIL {tag} {case['name']}: run: {error}", flush=True)
                        counts["FAIL"] += 1
                        continue
                worst, ok = 0.0, True
                for value, entry in zip(got, case["outputs"]):
                    want = read(entry).astype(np.float64)
                    got64 = value.astype(np.float64)
                    # equal values match, infinities of one sign included (a masked score's -inf,
                    # whose difference is NaN), and NaN matches NaN; the rest within the tolerance: the
                    # self-tests' rule (templates/check_support.mustache)
                    same = (got64 == want) | (np.isnan(got64) & np.isnan(want))
                    with np.errstate(invalid="ignore"):
                        err = np.where(same, 0.0, np.abs(got64 - want))
                    ok = ok and value.shape == want.shape and bool(np.all(same | (err <= 1e-4 + 1e-3 * np.abs(want))))
                    worst = max(worst, float(np.nanmax(err)) if err.size and not np.all(np.isnan(err)) else 0.0)
                status = "PASS" if ok else "FAIL"
                counts[status] += 1
                print(f"{status} {tag} {case['name']} max_abs_err {worst:.3g} ({time.time() - start:.1f} s)", flush=True)
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
