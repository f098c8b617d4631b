#!/usr/bin/env python3
"""A fused subgraph plugin against the single-node plugins of the same nodes (issue 14).

``prepare`` runs ``tpat generate`` twice over each chain (a real model and a ``--nodes`` pattern
naming the chain: a decomposed GELU, an RMS norm): once with ``--fuse`` (one plugin) and once
without (one plugin per node), with the same ``--dim`` sizes, so both self-tests run the same
captured cases; it packs what the self-tests need into one folder to carry to a CUDA machine.
There, ``run.sh`` in that folder builds and runs every self-test (``make check``). ``report``
reads the logs back and prints, per chain and case, the fused plugin's kernel time against the
sum of the single-node plugins' times (each self-test's median ``time_us``) as a markdown table.

    scripts/bench-fusion.py prepare DIR                      (the chains in CHAINS below)
    # on the GPU machine: bash DIR/run.sh > LOG
    scripts/bench-fusion.py report LOG
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _selftest_bundle() -> Any:
    """scripts/real-models/selftest-bundle.py, which owns what a self-test needs of a plugin folder."""
    spec = importlib.util.spec_from_file_location("selftest_bundle", ROOT / "scripts/real-models/selftest-bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

# name, model (from `make real-models-env` and scripts/real-models/export.py), the chain's
# --nodes pattern, and the self-test sizes of the model's dims.
CHAINS = [
    ("bert_gelu", "models/real/bert-legacy-opset17.onnx",
     "/module/encoder/layer.0/intermediate/intermediate_act_fn/*", ["batch=1", "sequence=32,128"]),
    ("gpt2_gelu_new", "models/real/gpt2-legacy-opset17.onnx",
     "/decoder/h.0/mlp/act/*", ["batch=1", "sequence=32,64", "past_sequence=1", "total_sequence=33,65"]),
    ("t5_rms_norm", "models/real/t5_encoder-legacy-opset17.onnx",
     "/module/encoder/block.0/layer.0/layer_norm/*", ["batch=1", "sequence=64,128"]),
]

RUN = """#!/usr/bin/env bash
# Builds and runs every self-test here (scripts/bench-fusion.py): one folder per chain and variant.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for dir in "$here"/*/*/; do
  name=$(basename "$(dirname "$dir")")/$(basename "$dir")
  echo "== $name"
  make -s -C "$dir" -j"$(nproc)" tests >"$dir/build.log" 2>&1 || { echo "build failed"; tail -5 "$dir/build.log"; continue; }
  make -s -C "$dir" check 2>&1 | grep -E '^(PASS|FAIL)'
done
"""


def tpat() -> str:
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True, capture_output=True, text=True)
    return str(pathlib.Path(out.stdout.strip()) / "tpat")


# Written into the folder ``prepare`` makes: only such a folder is ever replaced.
MARKER = ".bench-fusion"


def prepare(dest: pathlib.Path) -> int:
    if dest.is_symlink():
        print(f"{dest} is a link; give a folder path", file=sys.stderr)
        return 2
    if dest.exists():
        # Replace only an earlier `prepare` folder, never a folder of the user's.
        if not (dest / MARKER).is_file():
            if dest.is_dir() and not any(dest.iterdir()):
                dest.rmdir()
            else:
                print(f"{dest} exists and was not made by this script; give a new or empty folder", file=sys.stderr)
                return 2
        else:
            shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / MARKER).write_text("made by scripts/bench-fusion.py prepare; replaced by the next prepare\n")
    binary = tpat()
    bundle = _selftest_bundle()
    for name, model, pattern, dims in CHAINS:
        if not (ROOT / model).is_file():
            print(f"{name}: {model} is missing (make real-models-env; scripts/real-models/export.py)", file=sys.stderr)
            return 1
        for variant, extra in (("fused", ["--fuse"]), ("single", [])):
            with tempfile.TemporaryDirectory() as work:
                out = pathlib.Path(work) / "out"
                cmd = [binary, "generate", str(ROOT / model), "-o", str(out), "--nodes", pattern, "--arch", "sm_90",
                       "--no-build", "-q"] + [a for d in dims for a in ("--dim", d)] + extra
                rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
                if rc != 0:
                    print(f"{name} {variant}: tpat generate exited {rc}", file=sys.stderr)
                    return 1
                report = json.loads((out / "report.json").read_text())
                target = dest / name / variant
                target.mkdir(parents=True)
                shutil.copy2(out / "Makefile", target / "Makefile")
                for plugin in report["plugins"]:
                    source = out / "plugins" / plugin["name"]
                    for f in bundle.plugin_files(source):
                        rel = f.relative_to(source)
                        (target / "plugins" / plugin["name"] / rel).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(f, target / "plugins" / plugin["name"] / rel)
                (target / "plugins.json").write_text(json.dumps(
                    [{"name": p["name"], "opType": p["opType"], "nodes": p["nodes"], "kernels": p["kernels"]}
                     for p in report["plugins"]], indent=1))
    (dest / "run.sh").write_text(RUN)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    print(f"{dest}: {size / 2**20:.1f} MiB; on the GPU machine: bash {dest}/run.sh")
    return 0


LINE = re.compile(r"^(PASS|FAIL) (\S+) (case\d+)(?: \(([^)]*)\))?.*?time_us ([0-9.]+)")


def report(log: pathlib.Path) -> int:
    times: dict[tuple[str, str], dict[str, list[tuple[str, float, str]]]] = {}
    section = None
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("== "):
            # a chain's folder (`== bert_gelu/fused`); any other header ends the chains' part
            parts = line[3:].split("/")
            known = len(parts) == 2 and parts[0] in {c[0] for c in CHAINS}
            section = (parts[0], parts[1]) if known else None
            continue
        m = LINE.match(line)
        if m and section:
            verdict, plugin, case, dims, us = m.groups()
            times.setdefault(section, {}).setdefault(f"{case} ({dims})" if dims else case, []).append((plugin, float(us), verdict))
    rows = ["| chain | case | fused plugin (us) | single-node plugins (us, sum) | plugins | speed-up | self-tests |",
            "|---|---|---:|---:|---:|---:|---|"]
    for name, *_ in CHAINS:
        fused, single = times.get((name, "fused"), {}), times.get((name, "single"), {})
        for case in sorted(fused):
            f_us = sum(t for _, t, _ in fused[case])
            s = single.get(case, [])
            s_us = sum(t for _, t, _ in s)
            verdicts = [v for _, _, v in fused[case] + s]
            ok = "all pass" if verdicts and all(v == "PASS" for v in verdicts) else f"{verdicts.count('FAIL')} fail"
            ratio = f"{s_us / f_us:.2f}x" if f_us and s else "-"
            rows.append(f"| {name} | {case} | {f_us:.2f} | {s_us:.2f} | {len(s)} | {ratio} | {ok} |")
    print("\n".join(rows))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dest", type=pathlib.Path)
    r = sub.add_parser("report")
    r.add_argument("log", type=pathlib.Path)
    args = parser.parse_args()
    if args.cmd == "prepare":
        return prepare(args.dest)
    return report(args.log)


if __name__ == "__main__":
    raise SystemExit(main())
