#!/usr/bin/env python3
"""The conformance runner: the ONNX backend node tests of the pinned onnx through ``tpat generate``.

    run.py collect   [--root conformance-out] [--batch-size 60] [--only REGEX]
    run.py generate  [--root conformance-out] [--jobs 2] [--build] [--tpat .build/debug/tpat]
    run.py bundle    [--root conformance-out] [--max-mb 55]       device folders to carry
    run.py results   [--root conformance-out] --check LOG... [--gpu NAME] [--doc docs/conformance.md]
    run.py sample    [--root conformance-sample]   CI: a fixed sample, generation and nvcc only (no GPU)

``collect`` generates the node tests (onnx.backend.test.loader, as onnx's own runner does) and
writes one combined model per batch; ``generate`` runs ``tpat generate`` on each and writes each
plugin's test/reference.json from the tests' own data; on a CUDA machine
``scripts/conformance/device_check.py RUN...`` builds and runs the self-tests (or
``make -C RUN check``); ``results`` classifies every test and writes results.json and the doc.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(os.path.dirname(HERE))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("collect", "generate", "bundle", "results", "sample"):
        p = sub.add_parser(name)
        p.add_argument("--root", default=os.path.join(ROOT, "conformance-out"))
        if name == "collect":
            p.add_argument("--batch-size", type=int, default=60)
            p.add_argument("--only", default=None, help="regex over test names")
        if name == "generate":
            p.add_argument("--jobs", type=int, default=2)
            p.add_argument("--build", action="store_true", help="let tpat build with nvcc (slow; default --no-build)")
            p.add_argument("--tpat", default=os.path.join(ROOT, ".build/debug/tpat"))
            p.add_argument("--arch", default="sm_90")
            p.add_argument("--batches", default=None, help="comma-separated batch ids")
        if name == "bundle":
            p.add_argument("--max-mb", type=float, default=55)
            p.add_argument("--dest", default=None)
        if name == "sample":
            p.set_defaults(root=os.path.join(ROOT, "conformance-sample"))
            p.add_argument("--tpat", default=os.path.join(ROOT, ".build/debug/tpat"))
            p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
        if name == "results":
            p.add_argument("--check", nargs="*", default=[], help="check.log files from the GPU")
            p.add_argument("--gpu", default="")
            p.add_argument("--command", default="")
            p.add_argument("--doc", default=os.path.join(ROOT, "docs/conformance.md"))
    args = ap.parse_args()
    os.makedirs(args.root, exist_ok=True)
    if args.cmd == "collect":
        import collect

        doc = collect.collect(args.root, args.batch_size, args.only)
        usable = sum(1 for t in doc["tests"] if t["status"] == "usable")
        print(f"{len(doc['tests'])} node tests, {usable} usable, in {len(doc['batches'])} batches under {args.root}")
        return 0
    if args.cmd == "generate":
        import generate

        only = set(args.batches.split(",")) if args.batches else None
        s = generate.generate(args.root, args.tpat, args.arch, args.build, args.jobs, only)
        print(f"generated {len(s['pluginOf'])} tests' plugins in {s['seconds']} s; "
              f"{len(s['referenceErrors'])} reference errors")
        return 0
    if args.cmd == "sample":
        import sample

        return sample.run(args.root, args.tpat, args.jobs)
    if args.cmd == "bundle":
        import report

        for folder in report.bundle(args.root, args.max_mb, args.dest):
            print(folder)
        return 0
    import report

    report.results(args.root, args.check, args.gpu, args.command, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
