#!/usr/bin/env python3
"""Tunes the nodes of `tpat generate` output folders with MetaSchedule on a GPU machine that has
TVM and ONNX but no Swift (the bridge alone), filling a tuning database that `tpat generate --tune
--tuning-db DB` then reuses anywhere without measuring anything.

    PYTHONPATH=python:$TVM_SITE python3 scripts/tune-on-gpu.py OUT [OUT ...] --db DB \\
        [--trials 64] [--trials-per-task 64] [--time-budget 120] [--nodes NAME,...]

OUT is a folder written by `tpat generate` (it keeps bridge-request.json and each plugin's
node.onnx); the request's paths are moved to where OUT is now. --nodes picks plugins by plugin or
node name. Prints one line per tuned task: TVM's default (dlight) schedule against the best
MetaSchedule candidate, both measured by MetaSchedule's runner on this GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))


def relocated_request(out_dir: str, nodes: set[str]) -> dict:
    """OUT/bridge-request.json with its paths moved under OUT as it is now."""
    out_dir = os.path.abspath(out_dir)
    with open(os.path.join(out_dir, "bridge-request.json")) as f:
        request = json.load(f)
    kept = []
    for n in request["nodes"]:
        old_root = n["outDir"].rsplit("/plugins/", 1)[0]
        if nodes and n["id"] not in nodes and (n.get("node") or {}).get("name") not in nodes:
            continue
        for key in ("model", "outDir"):
            n[key] = out_dir + n[key][len(old_root):]
        kept.append(n)
    request["nodes"] = kept
    return request


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outs", nargs="+", help="tpat generate output folders")
    ap.add_argument("--db", required=True, help="tuning database folder")
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--trials-per-task", type=int, default=None)
    ap.add_argument("--time-budget", type=float, default=None, help="seconds per node")
    ap.add_argument("--nodes", default="", help="plugin or node names (comma-separated); default all")
    args = ap.parse_args()
    from tpat_bridge.bridge import run_request

    nodes = set(filter(None, args.nodes.split(",")))
    tuning = {"trials": args.trials, "database": os.path.abspath(args.db)}
    if args.trials_per_task:
        tuning["trialsPerTask"] = args.trials_per_task
    if args.time_budget:
        tuning["timeBudgetSeconds"] = args.time_budget
    rows = []
    status = 0
    for out in args.outs:
        request = relocated_request(out, nodes)
        if not request["nodes"]:
            continue
        request["tuning"] = tuning
        with tempfile.TemporaryDirectory() as tmp:
            req_path, res_path = os.path.join(tmp, "request.json"), os.path.join(tmp, "result.json")
            with open(req_path, "w") as f:
                json.dump(request, f)
            status |= run_request(req_path, res_path)
            with open(res_path) as f:
                result = json.load(f)
        if result.get("error"):
            print(f"{out}: {result['error']}", file=sys.stderr)
        for n in result["nodes"]:
            if n["status"] != "ok":
                print(f"{n['id']}: {n.get('message')}", file=sys.stderr)
                status |= 1
            for t in (n.get("tuning") or {}).get("tasks", []):
                rows.append((n["id"], t["task"], t["trials"], t["untunedUs"], t["tunedUs"], t["schedule"]))
    print("| plugin | task | trials | default us | tuned us | built with |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join("-" if v is None else str(v) for v in r) + " |")
    return status


if __name__ == "__main__":
    sys.exit(main())
