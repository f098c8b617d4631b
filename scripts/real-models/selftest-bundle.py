#!/usr/bin/env python3
"""Packs the self-tests of the corpus run's plugins (real-models-out/, `make real-models`) for a
CUDA machine, within what one device call carries: each plugin's kernel and self-test sources, its
constants and its reference data (captured from the model at two sizes of each symbolic dim), with
its folder's Makefile. Plugins whose files pass --max-kib (large weights: a Conv's, an embedding
table) stay behind; the list of what travels and what stayed is written beside the archive.

    scripts/real-models/selftest-bundle.py [--out real-models-out] [--max-kib 512] [--per-op N --all-of OPS] [--synthesize] [ARCHIVE]

With --synthesize the plugins over --max-kib travel too, without their large files: each such file
(a weight, a large input) is described by its dtype, size and value statistics (SYNTHESIZE.json),
drawn afresh there by synthesize.py (scripts/real-models/synthesize_selftest_data.py), and the
outputs are computed there by ONNX Runtime from the plugin's node.onnx: the kernels are checked at
the model's shapes with data like the model's, not with the model's own data. Files that compress
well (masks, position ids) travel as they are, within --structured-mib.

There: tar -xJf ARCHIVE -C /tmp/s && bash /tmp/s/selftests/run.sh   (builds with nvcc, runs each
self-test; prints "PASS ..."/"FAIL ..." lines and a total per model)."""
from __future__ import annotations

import argparse
import io
import json
import lzma
import pathlib
import re
import tarfile
import zlib

import numpy as np

# numpy's dtype for each dtype name of reference.json and the manifest: the device script's table
from synthesize_selftest_data import DTYPES

ROOT = pathlib.Path(__file__).resolve().parents[2]
# What `make tests` and a self-test read; the plugin library's source and the node's model stay.
KEEP_SUFFIXES = ("_kernels.cu", "_kernels.h", "_test.cu", "_constants.cpp")

RUN = """#!/usr/bin/env bash
# Builds and runs the self-tests of every folder here (scripts/real-models/selftest-bundle.py), 4
# folders at a time, each with nproc/4 nvcc jobs; each folder's results land in its check.log as
# soon as it is done (a run cut short keeps what finished), then all are printed, one header each.
# Plugins that travelled without their large files get their data first (synthesize.py).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/synthesize.py" ]; then python3 "$here/synthesize.py" "$here" | grep -v '^SYNTH ' ; fi
jobs=$(( $(nproc) / 4 )); [ "$jobs" -ge 1 ] || jobs=1
ls -d "$here"/*/ | xargs -P 4 -I{} sh -c 'p="$(cat "$1/PLUGINS")"; make -s -C "$1" -j'"$jobs"' tests PLUGINS="$p" >"$1/build.log" 2>&1; make -s -C "$1" check PLUGINS="$p" >"$1/check.log.part" 2>&1; mv "$1/check.log.part" "$1/check.log"' _ {}
status=0
for dir in "$here"/*/; do
  echo "== $(basename "$dir")"
  if [ -f "$dir/check.log" ]; then grep -v '^make' "$dir/check.log"; grep -q ' 0 failed' "$dir/check.log" || status=1; else echo "not run"; status=1; fi
done
exit $status
"""


KERNELS_RUN = """#!/usr/bin/env bash
# Builds the kernel object of every plugin here with nvcc (selftest-bundle.py --kernels-only):
# prints, per folder, how many built and the plugins that did not.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ls -d "$here"/*/ | xargs -P 4 -I{} sh -c 'make -k -s -C "$1" -j4 kernels PLUGINS="$(cat "$1/PLUGINS")" >"$1/build.log" 2>&1' _ {}
status=0
for dir in "$here"/*/; do
  built=0; failed=""
  for p in $(cat "$dir/PLUGINS"); do
    if [ -s "$dir/plugins/$p/build/${p}_kernels.o" ]; then built=$((built+1)); else failed="$failed $p"; status=1; fi
  done
  echo "== $(basename "$dir"): $built built, $(echo $failed | wc -w) failed$failed"
done
exit $status
"""


def plugin_files(folder: pathlib.Path) -> list[pathlib.Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.name.endswith(KEEP_SUFFIXES)]
    for sub in ("constants", "test"):
        if (folder / sub).is_dir():
            files += [p for p in (folder / sub).rglob("*") if p.is_file()]
    return files


# A file this small always travels as it is.
SMALL_FILE = 64 * 1024
# A file whose first MiBs compress at least this well by zlib (a mask, position ids, zeros)
# travels as it is: drawing it afresh would lose its structure.
STRUCTURED_RATIO = 8


def compressed_size(path: pathlib.Path) -> int:
    """zlib's size of the whole file (level 1), a bound on what it costs in the xz archive."""
    compressor, total = zlib.compressobj(1), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            total += len(compressor.compress(chunk))
    return total + len(compressor.flush())


def statistics(path: pathlib.Path, dtype: str) -> dict | None:
    """What synthesize.py draws a stand-in from; None when the file cannot be described so."""
    if dtype not in DTYPES:
        return None
    data = np.fromfile(path, dtype=DTYPES[dtype])
    if data.size == 0:
        return None
    if dtype == "bool":
        return {"kind": "bool", "true_fraction": float(data.mean())}
    if np.issubdtype(data.dtype, np.integer):
        return {"kind": "int", "min": int(data.min()), "max": int(data.max())}
    values = data.astype(np.float64)
    if not np.isfinite(values).all():
        return None
    return {"kind": "float", "mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "max": float(values.max())}


def synthesis_plan(pdir: pathlib.Path, budget: list[int]) -> tuple[list[pathlib.Path], dict | None] | None:
    """The files a plugin too large to carry travels with, and its SYNTHESIZE.json (see the module
    docstring); None when it cannot travel so (a data-dependent output, which ONNX Runtime cannot
    recompute in the self-test's form, or a large file that neither compresses nor has statistics)."""
    manifest = json.loads((pdir / "manifest.json").read_text())
    if any(o.get("dataDependent") for o in manifest.get("outputs", [])) or not (pdir / "node.onnx").is_file():
        # Its actual output extents come from its own data: it travels whole when its large files
        # compress well (an all-zero mask), else stays.
        files = plugin_files(pdir)
        large = [f for f in files if f.stat().st_size > SMALL_FILE]
        packed = [compressed_size(f) for f in large]
        if any(c * STRUCTURED_RATIO > f.stat().st_size for c, f in zip(packed, large)) or sum(packed) > budget[0]:
            return None
        budget[0] -= sum(packed)
        return files, None
    reference = json.loads((pdir / "test" / "reference.json").read_text())
    described = [("constants/" + pathlib.Path(c["file"]).name, c["dtype"]) for c in manifest.get("constants", [])]
    described += [("test/" + t["file"], t["dtype"]) for case in reference["cases"] for t in case["inputs"]]
    files = [p for p in pdir.iterdir() if p.is_file() and p.name.endswith(KEEP_SUFFIXES)]
    files += [pdir / "node.onnx", pdir / "test" / "reference.json"]
    synthesized = []
    for relative, dtype in described:
        path = pdir / relative
        if not path.is_file():
            continue
        size = path.stat().st_size
        if size <= SMALL_FILE:
            files.append(path)
            continue
        packed = compressed_size(path)
        if packed * STRUCTURED_RATIO <= size and packed <= budget[0]:
            budget[0] -= packed
            files.append(path)
            continue
        stats = statistics(path, dtype)
        if stats is None:
            return None
        synthesized.append({"file": relative, "dtype": dtype, "bytes": size, **stats})
    return files, {"plugin": f"{pdir.parent.parent.name}/{pdir.name}", "synthesized": synthesized, "recompute": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", nargs="?", default=str(ROOT / ".device/selftests.tar.xz"))
    parser.add_argument("--out", default=str(ROOT / "real-models-out"), help="the corpus run's output folders")
    parser.add_argument("--max-kib", type=int, default=512, help="largest plugin that travels (its files), KiB")
    parser.add_argument("--per-op", type=int, default=0, help="at most this many plugins per model and op type (0: all)")
    parser.add_argument("--all-of", default="", help="op types whose plugins all travel, --per-op aside (comma-separated)")
    parser.add_argument("--folders", default="", help="only the run folders whose names match this regex (to split a bundle)")
    parser.add_argument("--only-ops", default="", help="only plugins of these op types (comma-separated)")
    parser.add_argument("--synthesize", action="store_true",
                        help="plugins over --max-kib travel without their large files, which are drawn there (see above)")
    parser.add_argument("--structured-mib", type=float, default=12,
                        help="with --synthesize: at most this much (zlib-compressed) of well-compressing large files travels")
    parser.add_argument("--kernels-only", action="store_true",
                        help="every plugin's kernel sources alone, to build the kernel objects (no self-tests, no weights)")
    args = parser.parse_args()
    limit = args.max_kib * 1024
    every = set(filter(None, args.all_of.split(",")))
    only = set(filter(None, args.only_ops.split(",")))
    listing: dict[str, dict] = {}
    structured_budget = [int(args.structured_mib * 2**20)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for report_path in sorted(pathlib.Path(args.out).glob("*/report.json")):
            folder = report_path.parent
            if args.folders and not re.search(args.folders, folder.name):
                continue
            report = json.loads(report_path.read_text())
            taken, left = [], []
            per_op: dict[str, int] = {}
            for plugin in report.get("plugins", []):
                if only and plugin["opType"] not in only:
                    continue
                pdir = folder / "plugins" / plugin["name"]
                if not args.kernels_only and not (pdir / "test" / "reference.json").is_file():
                    left.append({"name": plugin["name"], "opType": plugin["opType"], "why": "no self-test data"})
                    continue
                files = plugin_files(pdir)
                if args.kernels_only:
                    files = [f for f in files if f.name.endswith(("_kernels.cu", "_kernels.h"))]
                size = sum(f.stat().st_size for f in files)
                plan = None
                if size > limit and not args.kernels_only:
                    plan = synthesis_plan(pdir, structured_budget) if args.synthesize else None
                    if plan is None:
                        left.append({"name": plugin["name"], "opType": plugin["opType"], "why": f"{size // 1024} KiB"})
                        continue
                    files = plan[0]
                if args.per_op and not args.kernels_only and plugin["opType"] not in every and per_op.get(plugin["opType"], 0) >= args.per_op:
                    left.append({"name": plugin["name"], "opType": plugin["opType"], "why": "sample"})
                    continue
                per_op[plugin["opType"]] = per_op.get(plugin["opType"], 0) + 1
                taken.append({"name": plugin["name"], "opType": plugin["opType"], "nodes": len(plugin["nodes"]),
                              **({"synthesized": len(plan[1]["synthesized"])} if plan and plan[1] else {})})
                for f in files:
                    tar.add(f, arcname=f"selftests/{folder.name}/{f.relative_to(folder)}")
                if plan and plan[1]:
                    text = json.dumps(plan[1], indent=1).encode()
                    info = tarfile.TarInfo(f"selftests/{folder.name}/{pdir.relative_to(folder)}/SYNTHESIZE.json")
                    info.size = len(text)
                    tar.addfile(info, io.BytesIO(text))
            if not taken:
                continue
            tar.add(folder / "Makefile", arcname=f"selftests/{folder.name}/Makefile")
            names = " ".join(p["name"] for p in taken).encode()
            info = tarfile.TarInfo(f"selftests/{folder.name}/PLUGINS")
            info.size = len(names)
            tar.addfile(info, io.BytesIO(names))
            listing[folder.name] = {"taken": taken, "left": left}
        if args.synthesize:
            tar.add(pathlib.Path(__file__).with_name("synthesize_selftest_data.py"), arcname="selftests/synthesize.py")
        script = (KERNELS_RUN if args.kernels_only else RUN).encode()
        info = tarfile.TarInfo("selftests/run.sh")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    archive = pathlib.Path(args.archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(lzma.compress(buffer.getvalue(), preset=6))
    archive.with_suffix("").with_suffix(".json").write_text(json.dumps(listing, indent=1))
    plugins = sum(len(v["taken"]) for v in listing.values())
    nodes = sum(p["nodes"] for v in listing.values() for p in v["taken"])
    stayed = sum(len(v["left"]) for v in listing.values())
    print(f"{archive}: {archive.stat().st_size / 2**20:.1f} MiB, {plugins} plugins ({nodes} nodes) from {len(listing)} folders; "
          f"{stayed} plugins stayed behind (list: {archive.with_suffix('').with_suffix('.json')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
