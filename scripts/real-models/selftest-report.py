#!/usr/bin/env python3
"""Turns the log of a GPU run of scripts/real-models/selftest-bundle.py's archive (run.sh's output)
into docs/real-models-gpu.md: per model and per op type, the plugins (and the nodes they stand
for) whose self-tests passed at every case, those that failed, and those that stayed behind.

    scripts/real-models/selftest-report.py LISTING.json LOG --gpu "H100 80GB HBM3" --date 2026-12-06 \
        --command "..." [--kernels KERNELS.json KERNELS_LOG] [--doc docs/real-models-gpu.md]"""
from __future__ import annotations

import argparse
import collections
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("listing", help="the .json selftest-bundle.py wrote beside its archive")
    parser.add_argument("log", help="run.sh's output on the GPU machine")
    parser.add_argument("--gpu", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--command", required=True, help="the commands that made the log")
    parser.add_argument("--log-path", default="", help="where the raw log is kept in the repository")
    parser.add_argument("--doc", default=str(ROOT / "docs/real-models-gpu.md"))
    parser.add_argument("--kernels", nargs=2, metavar=("LISTING.json", "LOG"),
                        help="the --kernels-only bundle's listing and its run.sh output: every plugin's kernel object")
    args = parser.parse_args()
    listing = json.loads(pathlib.Path(args.listing).read_text())
    model, cases, failed = None, collections.defaultdict(dict), collections.defaultdict(set)
    for line in pathlib.Path(args.log).read_text().splitlines():
        if line.startswith("== "):
            model = line[3:].strip()
            continue
        # run.sh's lines follow a "== model" header; device_check.py's start with the model
        tagged = re.match(r"(\S+) (PASS|FAIL) (\S+)(?: (case\d+))?", line)
        if tagged and tagged.group(1) in listing:
            model = tagged.group(1)
            status, plugin, case = tagged.groups()[1:]
            cases[model].setdefault(plugin, []).append((status, case))
            if status == "FAIL":
                failed[model].add(plugin)
            continue
        m = re.match(r"(PASS|FAIL) (\S+)(?: (case\d+))?", line)
        if m and model:
            status, plugin, case = m.groups()
            cases[model].setdefault(plugin, []).append((status, case))
            if status == "FAIL":
                failed[model].add(plugin)
    per_op = collections.defaultdict(lambda: collections.Counter())
    rows = []
    for name, entry in sorted(listing.items()):
        counts = collections.Counter()
        for p in entry["taken"]:
            ran = cases.get(name, {}).get(p["name"], [])
            ok = ran and p["name"] not in failed[name] and all(s == "PASS" for s, _ in ran)
            key = "passed" if ok else "failed" if ran else "not run"
            counts[key] += 1
            counts[key + " nodes"] += p["nodes"]
            per_op[p["opType"]][key] += 1
            per_op[p["opType"]][key + " nodes"] += p["nodes"]
            two = len({c for s, c in ran if c}) >= 2
            counts["two sizes"] += 1 if ok and two else 0
            counts["drawn"] += 1 if ok and p.get("synthesized", 0) > 0 else 0
        for p in entry["left"]:
            per_op[p["opType"]]["stayed"] += 1
        rows.append((name, counts, len(entry["left"])))
    lines = [
        "# Real models: self-tests on a GPU", "",
        "The plugins of the corpus run (docs/real-models.md) built with nvcc and run on a GPU, each against",
        "reference data captured from its own model run whole in ONNX Runtime, at two sizes of each symbolic",
        "dim where the model has one. A plugin whose files (weights, reference data) are over what one device",
        "call carries travels without its large files (`selftest-bundle.py --synthesize`; *drawn*): each large",
        "weight or input is drawn afresh on the GPU machine with the dtype, size and value statistics of the",
        "model's own (mean and spread, range; integers over their range, so indices stay valid), and the",
        "outputs are computed there by ONNX Runtime from the plugin's node.onnx: the kernels are checked at the",
        "model's shapes with data like the model's. Files that compress well (masks, zeros) travel as they are.",
        "*Stayed*: plugins that could travel neither way.", "",
        f"- Date: {args.date}; GPU: {args.gpu}",
        f"- Command: `{args.command}`",
    ]
    if args.log_path:
        lines.append(f"- Raw log: {args.log_path}")
    total = collections.Counter()
    for _, c, left in rows:
        total.update(c)
        total["stayed"] += left
    lines += ["", f"**{total['passed']} of {total['passed'] + total['failed'] + total['not run']} plugins passed** "
                  f"({total['passed nodes']} nodes), {total['failed']} failed, {total['not run']} did not run; "
                  f"{total['two sizes']} of the passed ran at two sizes; {total['drawn']} of the passed with drawn data; "
                  f"{total['stayed']} stayed behind.", "",
              "| model | plugins passed | nodes | failed | not run | passed at two sizes | of them drawn | stayed behind |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c, left in rows:
        lines.append(f"| {name} | {c['passed']} | {c['passed nodes']} | {c['failed']} | {c['not run']} | {c['two sizes']} | "
                     f"{c['drawn']} | {left} |")
    lines += ["", "## Per op type", "", "| op type | plugins passed | nodes | failed | not run | stayed behind |",
              "|---|---:|---:|---:|---:|---:|"]
    for op, c in sorted(per_op.items(), key=lambda kv: -kv[1]["passed nodes"]):
        lines.append(f"| {op} | {c['passed']} | {c['passed nodes']} | {c['failed']} | {c['not run']} | {c['stayed']} |")
    if args.kernels:
        k_listing = json.loads(pathlib.Path(args.kernels[0]).read_text())
        nodes_of = {(m, p["name"]): p["nodes"] for m, e in k_listing.items() for p in e["taken"]}
        unbuilt = {}
        for line in pathlib.Path(args.kernels[1]).read_text().splitlines():
            m = re.match(r"== (\S+): (\d+) built, (\d+) failed(.*)", line)
            if m:
                unbuilt[m.group(1)] = m.group(4).split()
        plugins = len(nodes_of)
        missing = [(m, p) for m, ps in unbuilt.items() for p in ps]
        reported = {m for m in unbuilt}
        not_reported = [(m, p["name"]) for m, e in k_listing.items() if m not in reported for p in e["taken"]]
        built = plugins - len(missing) - len(not_reported)
        built_nodes = sum(n for key, n in nodes_of.items() if key not in set(missing) | set(not_reported))
        lines += ["", "## Kernel objects of every plugin", "",
                  f"Every plugin's kernels (`make kernels`, nvcc, {args.gpu.split(',')[0]} machine): **{built} of {plugins} plugins "
                  f"built** ({built_nodes} of {sum(nodes_of.values())} nodes); {len(missing)} failed or unfinished, "
                  f"{len(not_reported)} in folders the run did not reach."]
        if missing:
            lines += [""] + [f"- not built: {m}: {p}" for m, p in missing[:40]]
    bad = [(m, p) for m in sorted(failed) for p in sorted(failed[m])]
    if bad:
        lines += ["", "## Failed", ""] + [f"- {m}: {p}" for m, p in bad]
    pathlib.Path(args.doc).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.doc}: {total['passed']} passed, {total['failed']} failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
