"""Device bundles, per-test results and docs/conformance.md."""

from __future__ import annotations

import collections
import datetime
import json
import os
import re
import shutil
from typing import Any

# What a device needs of a generated run: its Makefile, and per plugin the kernels, the self-test
# and its data (not the plugin library's sources, the manifest, the sub-model or the logs).
KEEP = re.compile(r"^(Makefile|plugins/[^/]+/([^/]+_kernels\.(cu|h)|[^/]+_test\.cu|constants/.*|test/.*))$")

CLASSES = [
    ("passed", "passed on the GPU"),
    ("wrong", "wrong numbers"),
    ("tpat", "TPAT pipeline failed"),
    ("import", "TVM cannot import"),
    ("build", "TVM cannot build"),
    ("nokernel", "no kernel"),
    ("notrun", "not run on the GPU"),
]
CLASS_TITLE = dict(CLASSES)

# Why TPAT refuses what it refuses: (pattern over the reason, explanation) for the doc.
EXPLANATIONS = [
    (r"which a TensorRT 10 plugin cannot take",
     "TensorRT has no int16, uint16, uint32, uint64 or float64 tensors (nor plugin inputs and outputs of "
     "those types), so TPAT refuses the node when rendering, with this message. BOOL and UINT8 travel as "
     "INT32 through Casts; Casts to these types would not help, since TensorRT cannot hold them either."),
    (r"external function relax\.run\.(nonzero|unique)",
     "data-dependent output shape: TVM computes NonZero/Unique (and Compress, through NonZero) with a host "
     "library call; a plugin's output shapes must follow from its input shapes, so TPAT reports it "
     "unsupported."),
    (r"host allocation in scope local",
     "TVM's CumSum for this case (exclusive, or along a non-innermost axis, or int32) allocates scratch on "
     "the host inside the host function; a TPAT launch plan has no host-side allocation, so TPAT reports it "
     "unsupported."),
    (r"relax\.tensor_to_shape",
     "Reshape with allowzero=1: TVM keeps the shape as a runtime tensor-to-shape conversion (host-side shape "
     "arithmetic); TPAT cannot put that in a plugin and reports it unsupported."),
    (r"in TVM but \[[0-9, ]*\] in the graph",
     "TVM's output shape is not ONNX's: TVM 0.27's frontend gives LayerNormalization's optional Mean and "
     "InvStdDev outputs as scalars, and ignores ConvTranspose's output_shape attribute. The bridge now "
     "compares TVM's static output shapes with the graph's and refuses such nodes (before, it made "
     "plugins with the wrong output shapes: fixed in python/tpat_bridge/plan.py)."),
    (r"kernel manifest cannot carry",
     "float8, float4, int4 and uint4 tensors: TPAT's kernel manifest and plugin templates carry no such "
     "dtype, so the bridge refuses the node with this message (before, it crashed on them: fixed in "
     "python/tpat_bridge/plan.py)."),
]


# Why TVM's numbers differ from ONNX's: (pattern over the test name, explanation).
WRONG_EXPLANATIONS = [
    (r"^test_bitwise_not", "a TVM CUDA codegen bug: BitwiseNot on uint8 is emitted as `~((uchar)x)`, which C "
     "promotes to int before complementing (got -38 for 218)."),
    (r"^test_resize_", "TVM 0.27's Resize differs from ONNX's reference: antialias is not implemented, and "
     "these downsampling and 'sizes' nearest cases give other values (not analysed further)."),
    (r"^test_isinf_(positive|negative)", "TVM's IsInf converter ignores detect_positive/detect_negative."),
    (r"^test_reduce_(max|min)_empty_set", "TVM reduces an empty set to -FLT_MAX/FLT_MAX, ONNX to -inf/inf."),
    (r"^test_roialign_mode_max", "TVM's RoiAlign max mode differs from ONNX's reference (not analysed further)."),
    (r"^test_mod_float_edge_cases", "TVM's floating Mod gives nan where ONNX's reference gives inf (inf/zero edge "
     "cases)."),
    (r"^test_spacetodepth_crd", "TVM's SpaceToDepth converter ignores the mode attribute (CRD)."),
]


def explain(reason: str, test: str = "") -> str:
    """The written explanation of a failure, or ''."""
    for pattern, text in EXPLANATIONS:
        if re.search(pattern, reason):
            return text
    for pattern, text in WRONG_EXPLANATIONS:
        if test and re.search(pattern, test):
            return text
    return ""


# In each bundled run folder: the plugins of issue 14's target tests, one name a line.
TARGET_LIST = "issue14-plugins.txt"


def bundle(root: str, max_mb: float, dest: str | None = None) -> list[str]:
    """Copy what the GPU needs into root/device<k>/ folders of at most ``max_mb`` each."""
    with open(os.path.join(root, "generation.json")) as f:
        gen = json.load(f)
    runs = sorted({os.path.join(root, v["run"]) for v in gen["pluginOf"].values()})
    with open(os.path.join(root, "tests.json")) as f:
        tests = json.load(f)["tests"]
    native = tensorrt_ops()
    targets = {t["name"] for t in tests if t.get("expanded") or issue14_one_node(t, native)}
    base = dest or os.path.join(root, "device")
    for old in [d for d in os.listdir(root) if d.startswith("device")]:
        shutil.rmtree(os.path.join(root, old))
    folders: list[str] = []
    size, k = float("inf"), -1
    for run in runs:
        files = []
        for dirpath, _, names in os.walk(run):
            for n in names:
                rel = os.path.relpath(os.path.join(dirpath, n), run)
                if KEEP.match(rel):
                    files.append(rel)
        run_size = sum(os.path.getsize(os.path.join(run, r)) for r in files) / 2**20
        if size + run_size > max_mb:
            k += 1
            folders.append(f"{base}{k}")
            size = 0.0
        size += run_size
        for rel in files:
            target = os.path.join(folders[-1], os.path.basename(run), rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(run, rel), target)
        # The plugins of issue 14's targets (its one-node tests and the function-expanded ones),
        # for a GPU call that checks those first (device_check.py --only-listed/--skip-listed).
        listed = sorted({v["plugin"] for name, v in gen["pluginOf"].items()
                         if os.path.join(root, v["run"]) == run and name in targets})
        with open(os.path.join(folders[-1], os.path.basename(run), TARGET_LIST), "w") as f:
            f.write("".join(p + "\n" for p in listed))
    return folders


def parse_check(paths: list[str]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """check.log lines -> {(run, plugin): [(PASS|FAIL, rest)]}; rest starts with the case name,
    or with 'build failed'/'crashed' for the whole plugin."""
    lines: dict[tuple[str, str], list[tuple[str, str]]] = collections.defaultdict(list)
    for path in paths:
        with open(path, errors="replace") as f:
            for ln in f:
                parts = ln.rstrip("\n").split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("PASS", "FAIL"):
                    lines[(parts[0], parts[2])].append((parts[1], parts[3] if len(parts) > 3 else ""))
    return lines


def classify_gpu(test: str, entries: list[tuple[str, str]]) -> tuple[str, str, dict[str, Any]]:
    """(class, reason, numbers) of one test from its plugin's check lines."""
    for verdict, rest in entries:
        if rest == test or rest.startswith(test + " "):
            detail = rest[len(test):].strip()
            if verdict == "PASS":
                m = re.search(r"max_abs_err (\S+) max_rel_err (\S+) time_us (\S+)", detail)
                nums = {"maxAbsErr": float(m.group(1)), "maxRelErr": float(m.group(2)),
                        "timeUs": float(m.group(3))} if m else {}
                return "passed", "", nums
            why = re.sub(r"^(\[[^\]]*\],?)+\s*", "", detail)
            if "elements differ" in why:
                return "wrong", why, {}
            return "tpat", f"self-test: {why}", {}
    for verdict, rest in entries:
        if verdict == "FAIL" and not rest.startswith("test_"):
            return "tpat", f"self-test: {rest}"[:300], {}
    return "notrun", "no result line for this test", {}


def results(root: str, checks: list[str], gpu: str, command: str, doc_path: str) -> dict[str, Any]:
    """Classify every test; write root/results.json and the doc."""
    with open(os.path.join(root, "tests.json")) as f:
        tests_doc = json.load(f)
    with open(os.path.join(root, "generation.json")) as f:
        gen = json.load(f)
    check = parse_check(checks) if checks else {}
    failures: dict[str, dict[str, Any]] = {}
    kernels: dict[str, int] = {}
    # a node is named after its test; a function-expanded test's nodes are <test>/<k>
    owner = {n: t["name"] for t in tests_doc["tests"] for n in (t.get("nodes") or [t["name"]])}
    for result in gen["batches"]:
        for run in result["runs"]:
            with open(os.path.join(run, "report.json")) as f:
                report = json.load(f)
            for fail in report["failures"]:
                for n in fail.get("nodes") or [fail["node"]]:
                    failures[owner.get(n, n)] = fail
            for p in report["plugins"]:
                for n in p["nodes"]:
                    kernels[owner.get(n, n)] = p["kernels"]
        for test, why in result.get("runFailures", {}).items():
            failures[test] = {"errorClass": "run", "message": f"tpat generate failed: {why}"}
    rows = []
    for t in tests_doc["tests"]:
        row = {"test": t["name"], "op": t["op"], "domain": t["domain"], "opset": t["opset"],
               "category": t["category"], "status": t["status"], "expanded": t.get("expanded", False)}
        if t["status"] == "excluded":
            row.update(cls="excluded", reason=t["reason"])
        elif t["status"] == "noKernel":
            row.update(cls="nokernel", reason=t["reason"])
        elif t["status"] == "tvmUnsupported":
            row.update(cls="import", reason=t["reason"])
        elif t["name"] in failures:
            fail = failures[t["name"]]
            ec, msg = fail["errorClass"], fail["message"]
            if ec in ("import", "build"):
                row.update(cls=ec, reason=msg)
            elif ec == "unsupported" and "computes shapes, not data" in msg:
                row.update(cls="nokernel", reason="TVM computes its output as a shape, not a tensor: TPAT "
                           "reports it unsupported and leaves the node to TensorRT (" + msg + ")")
            else:
                row.update(cls="tpat", reason=f"{ec}: {msg}")
        elif t["name"] in gen["referenceErrors"]:
            row.update(cls="tpat", reason="reference data: " + gen["referenceErrors"][t["name"]])
        elif t["name"] not in gen["pluginOf"]:
            row.update(cls="tpat", reason="no plugin and no failure reported")
        else:
            where = gen["pluginOf"][t["name"]]
            row["plugin"] = where["plugin"]
            row["kernels"] = kernels.get(t["name"])
            if not check:
                row.update(cls="notrun", reason="no GPU check given")
            else:
                run_tag = os.path.basename(where["run"])
                cls, reason, nums = classify_gpu(t["name"], check.get((run_tag, where["plugin"]), []))
                row.update(cls=cls, reason=reason, **nums)
        rows.append(row)
    device_log = ""
    for path in checks:
        log = os.path.join(os.path.dirname(path), "device.log")
        if os.path.exists(log):
            with open(log) as f:
                text = f.read()
            m = [re.search(p, text) for p in (r"kernels: (\d+) of (\d+) built in (\d+) s",
                                                 r"self-tests: (\d+) unity programs.* in (\d+) s", r"ran in (\d+) s")]
            if all(m):
                device_log = (f"built {m[0].group(1)} plugins' kernels in {m[0].group(3)} s (each with the plugin's own "
                              f"Makefile rule), their self-tests as {m[1].group(1)} unity programs in {m[1].group(2)} s, "
                              f"and ran them in {m[2].group(1)} s")
    out = {"onnxVersion": tests_doc["onnxVersion"], "gpu": gpu, "command": command, "deviceLog": device_log,
           "date": datetime.date.today().isoformat(), "tests": rows}
    with open(os.path.join(root, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    if doc_path:
        with open(doc_path, "w") as f:
            f.write(render_doc(out, gen))
    return out


def render_doc(res: dict[str, Any], gen: dict[str, Any]) -> str:
    """docs/conformance.md."""
    rows = [r for r in res["tests"] if r["cls"] != "excluded"]
    excluded = [r for r in res["tests"] if r["cls"] == "excluded"]
    cats = ["float32", "int/bool", "float16", "float64", "other"]
    order = [c for c, _ in CLASSES]
    out = ["# Conformance: the ONNX backend node tests through TPAT", ""]
    out.append(f"onnx {res['onnxVersion']} (its node tests, generated by `onnx.backend.test.loader."
               f"load_model_tests(kind=\"node\")`), apache-tvm 0.27.0.post1, arch sm_90; "
               f"checked on {res['gpu'] or 'no GPU'} on {res['date']}.")
    out += ["", "How it was run (`make conformance` does the first three steps and prints the rest):", "", "```",
            ".venv/bin/python scripts/conformance/run.py collect        # the node tests -> conformance-out/batches",
            ".venv/bin/python scripts/conformance/run.py generate       # tpat generate per batch, the tests' data",
            ".venv/bin/python scripts/conformance/run.py bundle         # conformance-out/device0: what the GPU needs",
            "# on the GPU machine (Python 3 and nvcc only):",
            res["command"] or "python3 scripts/conformance/device_check.py --out OUT conformance-out/device0/*",
            ".venv/bin/python scripts/conformance/run.py results --check OUT/check.log --gpu NAME",
            "```", ""]
    timing = [f"Generation: {sum(b['tests'] for b in gen['batches'])} tests in {len(gen['batches'])} batch models "
              f"(one per opset, at most 60 nodes: node and value names are prefixed with the test's name), "
              f"{gen['seconds']:.0f} s with {gen['jobs']} batches at a time on a 2-core machine; TVM's import is paid "
              "once per batch (a batch of 60 tests takes about 15 s, one test alone about 2.3 s)."]
    if res.get("deviceLog"):
        timing.append("On the GPU machine (16 cores), `device_check.py` " + res["deviceLog"] + ".")
    out += [" ".join(timing), ""]
    out += ["Each usable test (tensor inputs and outputs; no string, sequence, optional, training "
            "or random test) becomes part of a combined model per opset: one node named after the test, or for a "
            "function-expanded test its nodes named `<test>/<k>`, generated with `--fuse` as one plugin; its "
            "attribute-like inputs (Reshape's shape, Resize's scales, TopK's k, Slice's starts...) become "
            "initializers holding the test's own values, its other inputs stay inputs. `tpat generate` makes "
            "the plugins; each plugin's `test/reference.json` then holds the test's own inputs and expected "
            "outputs (one case per test; identical nodes share one plugin), and the plugin's own self-test "
            "(`<plugin>_test.cu`, default tolerances: float32 atol 1e-4 + rtol 1e-3, integers exact) "
            "checks it on the GPU.", ""]
    out += ["The self-tests are each plugin's own `<plugin>_test.cu`, unchanged; `device_check.py` compiles "
            "the kernels with the plugin's Makefile rule (NVCCFLAGS `-O3 -std=c++17`) and the self-tests as unity "
            "programs of ten plugins (each test source in its own namespace, its `main` renamed): built one by "
            "one, a self-test costs nvcc about 7 CPU seconds, mostly host code and headers. "
            "`make -C conformance-out/gen/bNNN check` runs the same tests the plain way.", ""]
    out += ["What the function-expanded tests (one fused plugin each, first run 2026-12-07) found in TPAT, "
            "and what was fixed:", "",
            "- TVM 0.27's dlight GEMV rule claims a fused elementwise function with 0-d operands (a decomposed "
            "GELU's constants) and then asserts it has reduction loops; the bridge's pipeline now lets the next "
            "rule schedule it (python/tpat_bridge/compiler.py);",
            "- TVM's frontend reads only Constant's `value` form and gives a Shape a shape value that Cast, Size, "
            "Slice or Sqrt then refuse: a fused part's Constant nodes go in as initializers "
            "(Sources/TPATKit/Extraction/NodeExtractor.swift) and its static shape arithmetic is folded before "
            "import (python/tpat_bridge/subgraph.py);",
            "- onnx's inliner needs the types of a function op's inputs inside a part (Swish): the sub-model now "
            "declares the types of the values inside it.",
            "", "Found by the earlier one-node runs and fixed then: TVM's half-precision helpers made `static` so "
            "that two float16 plugins link into one program; output shapes other than ONNX's refused "
            "(LayerNormalization's Mean/InvStdDev, ConvTranspose's output_shape); float8/float4 dtypes refused "
            "with a dtype error instead of a crash; failure messages name the node's op, not TPAT's boundary Cast.", ""]
    # Totals.
    count = collections.Counter((r["category"], r["cls"]) for r in rows)
    out += ["## Totals", "", "| dtype category | tests | " + " | ".join(CLASS_TITLE[c] for c in order) + " |",
            "| --- | ---: | " + " | ".join("---:" for _ in order) + " |"]
    for cat in cats + ["all"]:
        sel = [r for r in rows if cat == "all" or r["category"] == cat]
        if not sel:
            continue
        cells = [str(sum(1 for r in sel if r["cls"] == c)) for c in order]
        label = f"**{cat}**" if cat == "all" else cat
        out.append(f"| {label} | {len(sel)} | " + " | ".join(cells) + " |")
    out += ["", "By form: a test of one node becomes a one-node plugin; a function-expanded test (`test_X_expanded`, "
            "the op's ONNX function body, several nodes) is generated with `--fuse` and becomes one plugin whose "
            "kernels TVM fuses.", "", "| form | tests | " + " | ".join(CLASS_TITLE[c] for c in order) + " |",
            "| --- | ---: | " + " | ".join("---:" for _ in order) + " |"]
    for label, expanded in (("one node", False), ("function-expanded (one fused plugin)", True)):
        sel = [r for r in rows if r.get("expanded", False) == expanded]
        cells = [str(sum(1 for r in sel if r["cls"] == c)) for c in order]
        out.append(f"| {label} | {len(sel)} | " + " | ".join(cells) + " |")
    native = tensorrt_ops()
    lacking = [r for r in res["tests"] if issue14_one_node(r, native)]
    expanded = [r for r in res["tests"] if r.get("expanded")]
    passed = sum(1 for r in res["tests"] if r["cls"] == "passed")
    out += ["", "**Targets (issue 14)**:",
            f"- the one-node tests of the ops TensorRT's ONNX parser does not support (string, sequence, optional "
            f"and random tests aside): **{sum(1 for r in lacking if r['cls'] == 'passed')} of {len(lacking)} pass** on the GPU;",
            f"- the function-expanded tests, one fused plugin each: **{sum(1 for r in expanded if r['cls'] == 'passed')} of "
            f"{len(expanded)} pass** ({sum(1 for r in expanded if r['cls'] != 'excluded')} usable);",
            f"- all node tests: **{passed} of {len(res['tests'])} pass** on the GPU."]
    single = [r for r in rows if not r.get("expanded")]
    f32 = [r for r in single if r["category"] == "float32" and r["cls"] not in ("import", "build", "nokernel")]
    f32_pass = sum(1 for r in f32 if r["cls"] == "passed")
    out += ["", f"**Target (issue 5)**: of the {len(f32)} single-node float32 tests that TVM can import and build "
            f"(every test has static shapes), **{f32_pass} pass on the GPU**."]
    for cat in ("int/bool", "float16"):
        sel = [r for r in single if r["category"] == cat and r["cls"] not in ("import", "build", "nokernel")]
        ok = sum(1 for r in sel if r["cls"] == "passed")
        plugins = [r for r in sel if r.get("plugin")]
        out.append(f"{cat}: of {len(sel)} that TVM can import and build, {ok} pass ({len(plugins)} became plugins; "
                   "the others TPAT refuses, for the reasons below: mostly int16/uint16/uint32/uint64 or float64 tensors).")
    out.append("")
    out += [f"Categories: by the dtypes of the plugin's inputs and outputs (float32: every float tensor is "
            "float32, integer and bool tensors may appear, e.g. ArgMax, Less, Gather; int/bool: no float "
            "tensor, BOOL and UINT8 carried as INT32 through Casts; float16: a float16 or bfloat16 tensor; "
            "other: float8, int4, uint4, int2, uint2, float4 tensors). "
            f"{len(excluded)} of the {len(res['tests'])} generated node tests are not usable:", ""]
    for reason, n in collections.Counter(r["reason"] for r in excluded).most_common():
        out.append(f"- {n}: {reason}")
    copies = sorted({r["op"] for r in rows if r.get("kernels") == 0})
    out += ["", "Plugins with no kernel: where TVM turns a node into a plain copy (here: "
            f"{', '.join(copies) or 'none'}; for some tests only), TPAT's plugin holds one "
            "`cudaMemcpyAsync` step and no kernel; those are counted under *passed* when the copy is right "
            "(column *kernels* = 0 in the op table). *No kernel* is for nodes TPAT makes no plugin of: "
            "nodes whose inputs are all constants once attribute-like inputs are initializers "
            "(ConstantOfShape, Range, the window functions...: they fold to constants, TPAT refuses them with "
            "a message) and nodes TVM computes as shapes (Shape, Size: TPAT reports them unsupported, "
            "TensorRT runs them natively).", ""]
    # Failures by class.
    out += ["## Failures by class", ""]
    for c in ("tpat", "wrong", "build", "import", "nokernel", "notrun"):
        sel = [r for r in rows if r["cls"] == c]
        if not sel:
            continue
        out += [f"### {CLASS_TITLE[c]} ({len(sel)})", ""]
        by_reason: dict[str, list[str]] = collections.defaultdict(list)
        examples: dict[str, str] = {}
        for r in sel:
            key = short_reason(r["reason"])
            why = explain(key, r["test"]) if c in ("tpat", "wrong") else ""
            if why:
                examples.setdefault(why, key)
                key = why
            by_reason[key].append(r["test"])
        for key, names in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            shown = ", ".join(f"`{n}`" for n in names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            if key in examples and c == "wrong":
                out.append(f"- {len(names)} × {key}: {shown}")
            elif key in examples:
                out.append(f"- {len(names)} × *explained*: {key} (e.g. \"{examples[key]}\"): {shown}")
            else:
                out.append(f"- {len(names)} × {key}: {shown}")
        out.append("")
    # Per op.
    out += ["## Per op", "", "TensorRT: whether TensorRT's ONNX parser runs the op (onnx-tensorrt's operators.md, TPAT's "
            "Sources/TPATKit/Resources/ops/tensorrt-onnx-ops.json); tests of an op's function-expanded form count "
            "under the op.", "", "| op | TensorRT | tests | passed | wrong | TPAT failed | TVM import | TVM build | no kernel | "
            "not run | kernels |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    by_op: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by_op[r["op"]].append(r)
    for op in sorted(by_op, key=str.lower):
        sel = by_op[op]
        ks = sorted({r["kernels"] for r in sel if r.get("kernels") is not None})
        kcell = "" if not ks else (str(ks[0]) if len(ks) == 1 else f"{ks[0]}-{ks[-1]}")
        cells = [str(sum(1 for r in sel if r["cls"] == c) or "") for c in
                 ("passed", "wrong", "tpat", "import", "build", "nokernel", "notrun")]
        out.append(f"| {op} | {'yes' if op in native else 'no'} | {len(sel)} | " + " | ".join(cells) + f" | {kcell} |")
    out += ["", "Per-test results: `conformance-out/results.json` (regenerated by the runner; not committed).", ""]
    return "\n".join(out)


# Tests the issue-14 target leaves aside: strings, sequences, optionals, random outputs.
NOT_COUNTED_REASONS = {"string tensors", "sequence_type input or output", "optional_type input or output",
                       "random outputs: nothing to compare with"}


def issue14_one_node(test: dict[str, Any], native: set[str]) -> bool:
    """Whether a test (a tests.json entry or a results row) counts in issue 14's one-node target:
    a test of one node whose op TensorRT's parser does not support, string, sequence, optional
    and random tests and ops aside."""
    return (not test.get("expanded") and test["op"] not in native
            and test.get("reason", "") not in NOT_COUNTED_REASONS and not not_counted_op(test["op"]))


def not_counted_op(op: str) -> bool:
    """A sequence or optional op (the issue leaves these ops aside, not only their tests with such
    inputs): OptionalHasElement over a plain tensor, SequenceMap over a tensor."""
    return op.startswith(("Optional", "Sequence")) or op in ("SplitToSequence", "ConcatFromSequence")


def tensorrt_ops() -> set[str]:
    """The ops TensorRT's ONNX parser supports, from TPAT's own table."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "Sources/TPATKit/Resources/ops/tensorrt-onnx-ops.json")
    with open(path) as f:
        return {op for op, entry in json.load(f)["ops"].items() if entry.get("supported")}


def short_reason(reason: str) -> str:
    """A reason without per-test details, so that equal causes group."""
    r = reason.replace("\n", " ")
    r = re.sub(r"/?\S*conformance-out\S*", "", r)
    r = re.sub(r"first at \d+: got \S+ want \S+", "", r)
    r = re.sub(r"\d+ of \d+ elements differ", "elements differ", r)
    r = re.sub(r"\btest_\w+", "", r)
    r = re.sub(r"tpat_\w+", "<plugin>", r)
    r = r.replace("node '': ", "")
    r = re.sub(r"\s+", " ", r).strip()
    return r[:260]
