"""Specializations (specialize.py): a static launch plan for the profile's optimum beside the
generic plan, in one manifest."""
from __future__ import annotations

import json
import re
from pathlib import Path

import models
from conftest import load_manifest, run_bridge
from tpat_bridge.expr import evaluate
from tpat_bridge.specialize import split_source


def _expr(tree: dict):
    from tpat_bridge.expr import Int, Op, Sym

    if "int" in tree:
        return Int(tree["int"])
    if "sym" in tree:
        return Sym(tree["sym"])
    return Op(tree["op"], tuple(_expr(a) for a in tree["args"]))


def test_specialized_plan_beside_the_generic_one(tmp_path: Path) -> None:
    doc = run_bridge(tmp_path, {"matmul": models.matmul_sym(), "softmax": models.softmax("N"),
                                "other": models.matmul_sym()},
                     specialize={"matmul": {"batch": 4}, "softmax": {"N": 64}, "other": {"seq": 9}})
    m = load_manifest(doc, "matmul")
    (special,) = m["specializations"]
    assert special["sizes"] == "batch=4"
    when = _expr(special["when"]["tree"])
    assert evaluate(when, {"batch": 4}) == 1 and evaluate(when, {"batch": 3}) == 0
    # kernels of both plans, each in the one translation unit, the specialization's with its prefix
    names = [k["name"] for k in m["kernels"]]
    # (the generic plan: a kernel per GEMM tile; the static one: the tile its sizes choose)
    assert len(names) == 3 and all(n.startswith("tpat_matmul_matmul_tpat_kernel") for n in names[:2])
    assert names[2].startswith("tpat_matmul_at_")
    for k in names:
        assert re.search(r"\b" + k + r"\b", m["cudaSource"])
    # the specialization is static; the weight both plans read is stored once
    launch = special["launches"][0]
    assert all("int" in d["tree"] for d in launch["grid"] + launch["block"])
    assert len(m["constants"]) == 1
    consts = [a["buffer"]["index"] for s in special["launches"] for a in s["args"]
              if a["kind"] == "buffer" and a["buffer"]["kind"] == "constant"]
    assert consts == [0]
    preamble, kernels = split_source(m["cudaSource"])
    assert kernels.count("// The launch plan for batch=4") == 1

    # Softmax: TPAT's own row kernel in both, 32-bit index math in the static one
    s = load_manifest(doc, "softmax")
    assert s["specializations"][0]["sizes"] == "N=64"
    assert [k["name"] for k in s["kernels"]] == ["tpat_softmax_softmax_tpat_kernel", "tpat_softmax_at_softmax_tpat_kernel"]

    # A size the sub-model does not have: no specialization, and the log says why.
    o = load_manifest(doc, "other")
    assert "specializations" not in o
    log = (tmp_path / "other" / "bridge.log").read_text()
    assert "specialization for {'seq': 9} skipped" in log


def _buffers(steps: list[dict], kind: str) -> list[int]:
    out = []
    for st in steps:
        refs = [a["buffer"] for a in st.get("args", []) if a["kind"] == "buffer"] + [st[k] for k in ("src", "dst") if k in st]
        out += [b["index"] for b in refs if b["kind"] == kind]
    return out


def test_workspace_regions_of_both_plans(tmp_path: Path) -> None:
    """TopK's scratch: the specialization's regions come after the generic plan's."""
    import numpy as np

    topk = models.single("TopK", [models.vi("x", models.F32, ["N", 1024])],
                         [models.vi("values", models.F32, ["N", 16]), models.vi("indices", models.I64, ["N", 16])],
                         [models.init("k", np.array([16], np.int64))], axis=-1)
    doc = run_bridge(tmp_path, {"topk": topk}, specialize={"topk": {"N": 8}})
    m = load_manifest(doc, "topk")
    generic = _buffers(m["launches"], "workspace")
    special = _buffers(m["specializations"][0]["launches"], "workspace")
    assert generic and special
    assert min(special) > max(generic)
    assert max(special) < len(m["workspace"]["regions"])


def test_one_specialization_per_profile_point(tmp_path: Path) -> None:
    """Several specializations (--profile asks for OPT, then MAX) each get a static plan, tried in
    the order given; sizes that repeat an earlier plan's add nothing. TopK's scratch: each plan's
    workspace regions after those of the plans before it; each plan's kernels with its prefix."""
    import numpy as np

    topk = models.single("TopK", [models.vi("x", models.F32, ["N", 1024])],
                         [models.vi("values", models.F32, ["N", 16]), models.vi("indices", models.I64, ["N", 16])],
                         [models.init("k", np.array([16], np.int64))], axis=-1)
    doc = run_bridge(tmp_path, {"topk": topk, "softmax": models.softmax("N")},
                     specialize={"topk": [{"N": 8}, {"N": 64}, {"N": 8}], "softmax": [{"N": 64}, {"N": 4096}, {"N": 1}]})
    m = load_manifest(doc, "topk")
    assert [s["sizes"] for s in m["specializations"]] == ["N=8", "N=64"]
    assert "an earlier specialization is for the same sizes" in (tmp_path / "topk" / "bridge.log").read_text()
    plans = [_buffers(m["launches"], "workspace")] + [_buffers(s["launches"], "workspace") for s in m["specializations"]]
    assert all(plans)
    for before, after in zip(plans, plans[1:]):
        assert min(after) > max(before)
    assert max(plans[-1]) < len(m["workspace"]["regions"])
    for k, s in enumerate(m["specializations"]):
        when = _expr(s["when"]["tree"])
        assert evaluate(when, {"N": [8, 64][k]}) == 1 and evaluate(when, {"N": 9}) == 0

    s = load_manifest(doc, "softmax")
    assert [p["sizes"] for p in s["specializations"]] == ["N=64", "N=4096", "N=1"]
    assert [k["name"] for k in s["kernels"]] == ["tpat_softmax_softmax_tpat_kernel", "tpat_softmax_at_softmax_tpat_kernel",
                                                 "tpat_softmax_at2_softmax_tpat_kernel", "tpat_softmax_at3_softmax_tpat_kernel"]
    _, kernels = split_source(s["cudaSource"])
    for sizes in ("N=64", "N=4096", "N=1"):
        assert kernels.count(f"// The launch plan for {sizes}") == 1
