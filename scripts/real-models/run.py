#!/usr/bin/env python3
"""Run tpat generate over the real-model corpus and write docs/real-models.md.

Run it after export.py, in the corpus's environment (`make real-models` does both, after
`make real-models-env` and the Swift build):

    .venv-models/bin/python scripts/real-models/run.py                       # every exported model
    .venv-models/bin/python scripts/real-models/run.py --only resnet50       # one model's exports
    .venv-models/bin/python scripts/real-models/run.py --tpat .build-x/debug/tpat --build
    .venv-models/bin/python scripts/real-models/run.py --report-only         # rewrite the doc from the last runs

For each model that export.py exported (models/real/exports.json), `tpat generate` runs with the
op types a TensorRT user would replace in that family of model (OP_TYPES), `--arch sm_90
--no-build` by default (`--build` runs nvcc too), into real-models-out/<model>/ with its terminal
output in real-models-out/<model>.log, under a per-model time limit. Then the report.json of each
run (or, where tpat wrote none, its exit code and last stderr line) goes into docs/real-models.md:
per model and op type, the nodes in the model (subgraph bodies included), selected, left native
(shape arithmetic), generated and failed; failures grouped by reason; time; output folder size
against the model's size; and the command, date and machine. real-models-out/runs.json keeps what
each run gave, so `--only` refreshes some models and the doc still covers all of them.
"""

import argparse
import collections
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models" / "real"
EXPORTS = MODELS / "exports.json"
OUT = ROOT / "real-models-out"
RUNS = OUT / "runs.json"
DOC = ROOT / "docs" / "real-models.md"
TIMEOUT_S = 600

# The op types a TensorRT user would hand to TPAT, per model family: ops TensorRT runs slowly,
# with restrictions, or not at all in such models, and the heavy ops a user would try to beat.
OP_TYPES = {
    "cnn": ["Conv", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool", "Resize", "HardSigmoid", "HardSwish"],
    "detection": ["TopK", "NonZero", "GatherND", "GatherElements", "ScatterElements", "ScatterND", "Resize", "RoiAlign",
                  "NonMaxSuppression", "Range", "Expand", "Gather", "Where", "Tile"],
    "transformer": ["MatMul", "Gemm", "Softmax", "LayerNormalization", "ReduceMean", "Pow", "Sqrt", "Erf", "Gather",
                    "GatherElements", "Where", "Expand", "Tile", "Range", "CumSum", "Trilu", "Einsum"],
}


def count_op_types(path, op_types):
    """Nodes of each op type in the model: (in the top-level graph, in subgraph bodies), recursively."""
    import onnx

    counts = {op: [0, 0] for op in op_types}

    def walk(graph, nested):
        for node in graph.node:
            if node.op_type in counts:
                counts[node.op_type][nested] += 1
            for attr in node.attribute:
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    walk(sub, 1)

    walk(onnx.load(str(path), load_external_data=False).graph, 0)
    return {op: tuple(c) for op, c in counts.items()}


def folder_bytes(path):
    """Bytes of the regular files under path (links not followed); 0 when it does not exist."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def run_tpat(tpat, model, out, op_types, build, reference, timeout, kernel_cache):
    """Runs tpat generate on one model. Returns what the run gave: exit code, seconds, report or
    tpat's last stderr line, output size."""
    cmd = [str(tpat), "generate", str(model), "-o", str(out), "--op-types", ",".join(op_types), "--arch", "sm_90",
           "--force"]
    cmd += [] if build else ["--no-build"]
    cmd += [] if reference else ["--no-reference"]
    cmd += ["--kernel-cache", str(kernel_cache)] if kernel_cache else ["--no-kernel-cache"]
    log = out.parent / f"{out.name}.log"
    start = time.time()
    with open(log, "w") as stdout, open(log.with_suffix(".stderr"), "w+") as stderr:
        child = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # tpat and its TVM bridge
            child.wait()
            code = None
        stderr.seek(0)
        err_lines = [l.rstrip() for l in stderr if l.strip()]
    seconds = time.time() - start
    with open(log, "a") as stdout:
        stdout.write("".join(l + "\n" for l in err_lines))
    log.with_suffix(".stderr").unlink()
    for leftover in out.parent.glob(f".{out.name}.tpat-*"):  # the work folder of a killed run
        shutil.rmtree(leftover, ignore_errors=True)
    result = {"command": " ".join(shlex.quote(str(c)) for c in cmd), "exit": code, "seconds": round(seconds, 1),
              "log": str(log.relative_to(ROOT))}
    report = out / "report.json"
    if code is not None and report.exists() and report.stat().st_mtime >= start:
        result["report"] = json.loads(report.read_text())
        result["out_bytes"] = folder_bytes(out)
    elif code is None:
        result["error"] = f"timed out after {timeout} s (killed)"
    else:
        result["error"] = err_lines[-1] if err_lines else f"exit code {code}, nothing on stderr"
    return result


# Collecting the reports.

def node_counts(report):
    """Per op type: nodes selected, skipped (left native), generated and failed, from one report.json.

    A node is generated when its plugin's kernels were generated and, when built, built; a plugin
    whose build failed lists its nodes in `plugins` and again in `failures` (errorClass compile).
    """
    counts = collections.defaultdict(collections.Counter)
    for plugin in report.get("plugins", []):
        if plugin.get("kernelBuild") != "failed":
            counts[plugin["opType"]]["generated"] += len(plugin["nodes"])
    for failure in report.get("failures", []):
        counts[failure["opType"]]["failed"] += 1
    for skip in report.get("skipped", []):
        counts[skip["opType"]]["skipped"] += 1
    for c in counts.values():
        c["selected"] = c["generated"] + c["failed"]
    return counts


def short_reason(failure):
    """A failure's message as a group key: its first line, without the op-type prefix the bridge
    adds, with the node's name, quoted names and numbers made generic, at most 160 characters."""
    lines = [l.strip() for l in failure["message"].splitlines() if l.strip()]
    text = lines[0] if lines else failure["errorClass"]
    prefix = failure["opType"] + ": "
    text = text[len(prefix):] if text.startswith(prefix) else text
    text = re.sub(r"(?<![\w/.])" + re.escape(failure["node"]) + r"(?![\w/.])", "<node>", text)
    text = re.sub(r"(?<!\w)'[^']*'(?!\w)", "'…'", text)  # quoted names, not apostrophes
    text = re.sub(r"\b\d+\b", "N", text)
    text = f"[{failure['errorClass']}] {text}"
    return text if len(text) <= 160 else text[:157] + "..."


def failure_groups(report):
    """(reason, op type) -> number of failed nodes, and (reason, op type) -> the first such message."""
    counts, examples = collections.Counter(), {}
    for f in report.get("failures", []):
        key = (short_reason(f), f["opType"])
        counts[key] += 1
        examples.setdefault(key, example(f))
    return counts, examples


def example(failure):
    """A failure's node and the first line of its message, at most 200 characters."""
    lines = [l.strip() for l in failure["message"].splitlines() if l.strip()]
    text = f"{failure['node']}: {lines[0] if lines else ''}"
    return text if len(text) <= 200 else text[:197] + "..."


def mb(n):
    return f"{n / 1e6:.1f} MB"


def cell(text):
    return str(text).replace("|", "\\|")


def write_doc(exports, runs, settings):
    commands = sorted({f"`{run['generic']}` (time limit {run['timeout']} s)" for run in runs.values()})
    lines = [
        "# Real models through TPAT",
        "",
        "Real architectures exported from PyTorch with random weights and dynamic dims (batch; sequence for",
        "text; image size where the model allows it), by the legacy exporter (`dynamo=False`, opset 13 or 17)",
        "and the dynamo exporter (`dynamo=True`, opset 18), then `tpat generate` over each with the op types",
        "a TensorRT user would replace in that family of model. Transformer configs keep the real hidden",
        "sizes, heads and structure with fewer layers (2 per stack; Swin: depths 2-2-2-2) to keep sizes and",
        "times sane on this machine; the exact sizes are in the exports table.",
        "",
        "Reproduce: `make real-models` (creates `.venv-models/` with torch, torchvision and transformers,",
        "builds tpat, runs `scripts/real-models/export.py` then `scripts/real-models/run.py`).",
        "",
        f"- Date: {settings['date']}; machine: {settings['machine']}",
        f"- tpat: `{settings['tpat']}`, built from the checkout; its commit when each model ran: "
        + "; ".join(sorted({run["commit"] for run in runs.values()})),
        "- Command per model: " + "; ".join(commands) + ", where OP_TYPES is, per family:",
        *(f"  - {family}: {','.join(ops)}" for family, ops in OP_TYPES.items()),
        "- Columns: *in model* counts the nodes of that op type in the model, subgraph bodies (If/Loop) in",
        "  brackets; *selected* the nodes tpat took; *native* the nodes tpat left native as shape arithmetic",
        "  (`skipped` in report.json); *generated* those that became plugins (kernels generated",
        "  and, with `--build`, built); *failed* those that did not, with the reasons below each table.",
        "",
        "Time and output size of a large model (resnet50, built, with the build cache): docs/cost.md.",
        "On a GPU: whole-model checks of mobilenet_v3_small, ssdlite320 and whisper_encoder in",
        "docs/plugin-host.md; `scripts/real-models/selftest-bundle.py` packs these plugins' self-tests for a",
        "CUDA machine and `selftest-report.py` writes docs/real-models-gpu.md from that run's log.",
        "",
    ]
    op_totals = collections.defaultdict(collections.Counter)
    reason_totals = collections.Counter()
    reason_ops = collections.defaultdict(collections.Counter)
    reason_models = collections.defaultdict(set)
    reason_examples = {}
    sections = []
    for key, entry in sorted(exports.items(), key=lambda kv: (kv[1]["family"], kv[1]["model"], kv[1]["exporter"])):
        if entry["status"] != "exported" or key not in runs:
            continue
        run = runs[key]
        stem = Path(key).stem
        section = [f"### {stem}", ""] + ([f"`{run['generic']}` (time limit {run['timeout']} s)", ""] if len(commands) > 1 else [])
        report = run.get("report")
        size = entry["bytes"]
        if report:
            plugins = report.get("plugins", [])
            cached = sum(1 for p in plugins if p.get("cached"))
            section.append(f"tpat exit {run['exit']}, {run['seconds']} s ({report['totalSeconds']:.1f} s in the pipeline: "
                           + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(report.get("phaseSeconds", {}).items()))
                           + f"); {len(plugins)} plugin(s)" + (f", {cached} from the kernel cache" if cached else "")
                           + f"; output {mb(run['out_bytes'])} for a {mb(size)} model ({run['out_bytes'] / size:.1f}x).")
            counts = node_counts(report)
        else:
            section.append(f"tpat wrote no report.json (exit {run['exit']}, {run['seconds']} s): `{cell(run['error'])}`")
            counts = {}
        section += ["", "| op type | in model | selected | native | generated | failed |", "|---|---:|---:|---:|---:|---:|"]
        for op, (top, nested) in sorted(run["in_model"].items()):
            if top + nested == 0:
                continue
            c = counts.get(op, collections.Counter())
            section.append(f"| {op} | {top}" + (f" (+{nested})" if nested else "")
                           + f" | {c['selected']} | {c['skipped']} | {c['generated']} | {c['failed']} |")
            total = op_totals[op]
            total["in model"] += top + nested
            total["models"] += 1
            for k in ("selected", "skipped", "generated", "failed"):
                total[k] += c[k]
        if report and report.get("failures"):
            section += ["", "| failed nodes | op type | reason | example |", "|---:|---|---|---|"]
            groups, examples = failure_groups(report)
            for (reason, op), n in groups.most_common():
                section.append(f"| {n} | {op} | {cell(reason)} | {cell(examples[reason, op])} |")
                reason_totals[reason] += n
                reason_ops[reason][op] += n
                reason_models[reason].add(stem)
                reason_examples.setdefault(reason, f"{stem}: {examples[reason, op]}")
        sections += section + [""]

    lines += ["## Exports", "", "| model | family | exporter | opset | result | size | export time | ONNX Runtime |",
              "|---|---|---|---:|---|---:|---:|---|"]
    for key, e in sorted(exports.items(), key=lambda kv: (kv[1]["family"], kv[1]["model"], kv[1]["exporter"])):
        result = "exported" if e["status"] == "exported" else f"failed: {cell(e['reason'])}"
        size = mb(e["bytes"]) if "bytes" in e else ""
        lines.append(f"| {e['model']}{' (' + e['note'] + ')' if e.get('note') else ''} | {e['family']} | {e['exporter']} | "
                     f"{e['opset']} | {result} | {size} | {e.get('seconds', '')} s | {cell(e.get('onnxruntime', ''))} |")
    lines += ["", "## All models, per op type", "",
              "| op type | models | in model | selected | native | generated | failed | generated / in model |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for op, t in sorted(op_totals.items(), key=lambda kv: -kv[1]["in model"]):
        share = f"{100 * t['generated'] / t['in model']:.0f}%" if t["in model"] else ""
        lines.append(f"| {op} | {t['models']} | {t['in model']} | {t['selected']} | {t['skipped']} | {t['generated']} | "
                     f"{t['failed']} | {share} |")
    t = sum(op_totals.values(), collections.Counter())
    if t["in model"]:
        lines.append(f"| **all** | | {t['in model']} | {t['selected']} | {t['skipped']} | {t['generated']} | {t['failed']} | "
                     f"{100 * t['generated'] / t['in model']:.0f}% |")
    lines += ["", "## Failure reasons, all models", "",
              "Messages grouped with quoted names and numbers made generic; the example is one message in full.", "",
              "| failed nodes | models | op types | reason | example |", "|---:|---:|---|---|---|"]
    for reason, n in reason_totals.most_common():
        ops = ", ".join(f"{op} {k}" for op, k in reason_ops[reason].most_common())
        lines.append(f"| {n} | {len(reason_models[reason])} | {ops} | {cell(reason)} | {cell(reason_examples[reason])} |")
    lines += ["", "## Per model", ""] + sections
    DOC.write_text("\n".join(lines).rstrip() + "\n")


def git_commit():
    """The checkout's commit, and whether tpat's sources differ from it."""
    out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "Sources", "python"],
                           capture_output=True, text=True).stdout.strip()
    return (out.stdout.strip() or "unknown") + (" with uncommitted changes in Sources/ or python/" if dirty else "")


def machine():
    gpu = "no GPU" if shutil.which("nvidia-smi") is None else "nvidia-smi present"
    return f"{os.cpu_count()}-core {platform.machine()}, {gpu}, {platform.system()} {platform.release()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tpat", default=str(ROOT / ".build" / "debug" / "tpat"), help="the tpat binary (default %(default)s)")
    parser.add_argument("--only", metavar="NAME", help="run this model's exports only (export.py's name)")
    parser.add_argument("--build", action="store_true", help="run nvcc too (default: --no-build)")
    parser.add_argument("--no-reference", action="store_true", help="pass --no-reference (no ONNX Runtime self-test data)")
    parser.add_argument("--timeout", type=int, default=TIMEOUT_S, help="seconds per model (default %(default)s)")
    parser.add_argument("--kernel-cache", metavar="DIR", help="reuse and fill this kernel cache (default: none, every node through TVM)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the doc from real-models-out/runs.json without running tpat")
    parser.add_argument("--date", default=datetime.date.today().isoformat(), help="the date the doc gives (default today)")
    opts = parser.parse_args()

    if not EXPORTS.exists():
        sys.exit(f"run.py: {EXPORTS.relative_to(ROOT)} is missing: run scripts/real-models/export.py first")
    exports = json.loads(EXPORTS.read_text())
    runs = json.loads(RUNS.read_text()) if RUNS.exists() else {}
    settings = runs.pop("_settings", {})
    if not opts.report_only:
        tpat = Path(opts.tpat).absolute()
        if not tpat.is_file():
            sys.exit(f"run.py: no tpat at {tpat}: build it with `swift build` or pass --tpat")
        OUT.mkdir(exist_ok=True)
        for key, entry in sorted(exports.items()):
            if entry["status"] != "exported" or opts.only not in (None, entry["model"]):
                continue
            model = ROOT / entry["file"]
            if not model.is_file():
                print(f"run.py: {entry['file']} is missing: run export.py --only {entry['model']}", file=sys.stderr)
                continue
            op_types = OP_TYPES[entry["family"]]
            print(f"run.py: {model.name} ...", flush=True)
            run = run_tpat(tpat, model, OUT / model.stem, op_types, opts.build, not opts.no_reference, opts.timeout,
                           opts.kernel_cache)
            run["in_model"] = count_op_types(model, op_types)
            runs[key] = run
            print(f"run.py:   exit {run['exit']} in {run['seconds']} s" + (f": {run['error']}" if "error" in run else ""), flush=True)
            generic = run["command"].replace(str(tpat), "tpat").replace(str(model), "MODEL").replace(str(OUT / model.stem), "OUT")
            run.update(generic=generic.replace(",".join(op_types), "OP_TYPES"), timeout=opts.timeout, commit=git_commit())
            settings = {"date": opts.date, "machine": machine(), "tpat": os.path.relpath(tpat, ROOT)}
            RUNS.write_text(json.dumps({"_settings": settings, **runs}, indent=1) + "\n")
    if not runs:
        sys.exit("run.py: no run to report")
    write_doc(exports, runs, settings)
    print(f"run.py: wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
