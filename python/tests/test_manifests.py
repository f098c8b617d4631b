"""The ``manifests`` subcommand: every required op compiles, its manifest is complete and
consistent with the CUDA source, and the source + a launcher made from the manifest compile."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import load_manifest
from tpat_bridge.expr import Int, Sym, cxx, evaluate, make

F, I, B = "float32", "int64", "bool"

# name -> (inputs [(dtype, shape)], outputs, kernel launches, copies, constants, symbols, workspace bytes)
EXPECT: dict[str, dict[str, Any]] = {
    "abs": dict(inputs=[(F, ["4", "1024"])], outputs=[(F, ["4", "1024"])], launches=1),
    "abs_sym": dict(inputs=[(F, ["N", "1024"])], outputs=[(F, ["N", "1024"])], launches=1, symbols=[("N", 0, 0)]),
    "add_bcast": dict(inputs=[(F, ["8", "256"]), (F, ["256"])], outputs=[(F, ["8", "256"])], launches=1),
    "softmax": dict(inputs=[(F, ["8192", "1024"])], outputs=[(F, ["8192", "1024"])], launches=1),
    "softmax_sym": dict(inputs=[(F, ["N", "1024"])], outputs=[(F, ["N", "1024"])], launches=1, symbols=[("N", 0, 0)]),
    "reducemax": dict(inputs=[(F, ["256", "82", "128"])], outputs=[(F, ["256", "1", "128"])], launches=1),
    "layernorm": dict(inputs=[(F, ["8192", "1024"])], outputs=[(F, ["8192", "1024"])], launches=1, constants=2),
    "layernorm_sym": dict(inputs=[(F, ["N", "1024"])], outputs=[(F, ["N", "1024"])], launches=1, constants=2,
                          symbols=[("N", 0, 0)]),
    "gathernd": dict(inputs=[(F, ["1", "128", "128", "224"]), (I, ["1", "600", "3"])], outputs=[(F, ["1", "600", "224"])],
                     launches=1),
    "scatternd": dict(inputs=[(F, ["32", "128", "128", "256"]), (I, ["32", "600", "3"]), (F, ["32", "600", "256"])],
                      outputs=[(F, ["32", "128", "128", "256"])], launches=3, workspace=True, constants=1),
    "onehot": dict(inputs=[(I, ["16"])], outputs=[(F, ["16", "16384"])], launches=1),
    "resize_nearest": dict(inputs=[(F, ["32", "32", "44", "50"])], outputs=[(F, ["32", "32", "176", "200"])], launches=1),
    "resize_linear": dict(inputs=[(F, ["32", "32", "44", "50"])], outputs=[(F, ["32", "32", "176", "200"])], launches=1),
    "matmul": dict(inputs=[(F, ["1024", "1024"]), (F, ["1024", "1024"])], outputs=[(F, ["1024", "1024"])], launches=1),
    "matmul_sym": dict(inputs=[(F, ["batch", "128", "256"])], outputs=[(F, ["batch", "128", "512"])], launches=2,
                       constants=1, symbols=[("batch", 0, 0)]),
    "conv": dict(inputs=[(F, ["1", "64", "56", "56"])], outputs=[(F, ["1", "64", "56", "56"])], launches=1, constants=2),
    "erf": dict(inputs=[(F, ["8", "1024"])], outputs=[(F, ["8", "1024"])], launches=1),
    "isinf": dict(inputs=[(F, ["8", "1024"])], outputs=[(B, ["8", "1024"])], launches=1),
    "where": dict(inputs=[(B, ["8", "1024"]), (F, ["8", "1024"]), (F, ["1024"])], outputs=[(F, ["8", "1024"])], launches=1),
    "topk": dict(inputs=[(F, ["8", "1024"])], outputs=[(F, ["8", "16"]), (I, ["8", "16"])], launches=8, workspace=True),
    "cumsum": dict(inputs=[(F, ["8", "1024"])], outputs=[(F, ["8", "1024"])], launches=3, workspace=True),
    "argmax": dict(inputs=[(F, ["8", "1024"])], outputs=[(I, ["8", "1"])], launches=1),
    "reshape": dict(inputs=[(F, ["8", "1024"])], outputs=[(F, ["8192"])], launches=None),
    "identity": dict(inputs=[(F, ["8", "1024"])], outputs=[(F, ["8", "1024"])], launches=0, copies=1),
    "flatten": dict(inputs=[(F, ["N", "8", "128"])], outputs=[(F, ["N", "1024"])], launches=None, symbols=[("N", 0, 0)]),
    "reshape_sym": dict(inputs=[(F, ["N", "8", "128"])], outputs=[(F, ["N", "1024"])], launches=None,
                        symbols=[("N", 0, 0)]),
    "add_odd_sym": dict(inputs=[(F, ["batch_size", "256"]), (F, ["batch_size", "256"])],
                        outputs=[(F, ["batch_size", "256"])], launches=1, symbols=[("batch_size", 0, 0)]),
    "squeeze": dict(inputs=[(F, ["8", "1", "128"])], outputs=[(F, ["8", "128"])], launches=None),
    "gather": dict(inputs=[(F, ["1000", "64"]), (I, ["4", "16"])], outputs=[(F, ["4", "16", "64"])], launches=2,
                   constants=1, workspace=True),
}

# `__launch_bounds__(threads)` or `(threads, blocks per SM)` (TPAT's GEMM bounds its registers so)
SIGNATURE = re.compile(r'extern "C" __global__ void (?:__launch_bounds__\((\d+)(?:, \d+)?\) )?(\w+)\(([^)]*)\)')


def expr_ok(e: dict[str, Any]) -> None:
    assert set(e) == {"cxx", "tree"} and isinstance(e["cxx"], str)


def all_exprs(m: dict[str, Any]) -> list[dict[str, Any]]:
    out = [d for t in m["inputs"] + m["outputs"] for d in t["shape"]]
    for st in m["launches"]:
        if st["kind"] == "kernel":
            out += st["grid"] + st["block"] + [st["sharedMemBytes"]]
            out += [a["value"] for a in st["args"] if a["kind"] == "scalar"]
            out += [a["buffer"]["byteOffset"] for a in st["args"] if a["kind"] == "buffer" and "byteOffset" in a["buffer"]]
        elif st["kind"] == "copy":
            out.append(st["bytes"])
    ws = m["workspace"]
    out += [r["offset"] for r in ws["regions"]] + [r["bytes"] for r in ws["regions"]] + [ws["totalBytes"]]
    return out


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_manifest_fields(bridge: dict[str, Any], name: str) -> None:
    exp = EXPECT[name]
    m = load_manifest(bridge, name)
    assert m["version"] == 1
    assert m["target"] == {"kind": "cuda", "arch": "sm_90", "tvmVersion": bridge["tvmVersion"], "tuned": False}
    assert m["kernelPrefix"] == f"tpat_{name}_"
    assert [(t["dtype"], [d["cxx"] for d in t["shape"]]) for t in m["inputs"]] == exp["inputs"]
    assert [(t["dtype"], [d["cxx"] for d in t["shape"]]) for t in m["outputs"]] == exp["outputs"]
    kernels = [s for s in m["launches"] if s["kind"] == "kernel"]
    copies = [s for s in m["launches"] if s["kind"] == "copy"]
    if exp["launches"] is not None:
        assert len(kernels) == exp["launches"]
    assert len(copies) == exp.get("copies", 0)
    assert len(m["constants"]) == exp.get("constants", 0)
    assert [(s["name"], s["input"], s["dim"]) for s in m["symbols"]] == exp.get("symbols", [])
    has_ws = m["workspace"]["totalBytes"]["tree"] != {"int": 0}
    assert has_ws == exp.get("workspace", False)
    for e in all_exprs(m):
        expr_ok(e)
    sym_names = {s["name"] for s in m["symbols"]}
    for e in all_exprs(m):
        assert set(re.findall(r"[A-Za-z_]\w*", e["cxx"])) - {"tpat_floordiv", "tpat_floormod", "tpat_ceildiv",
                                                              "tpat_min", "tpat_max"} <= sym_names


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_kernels_match_source(bridge: dict[str, Any], name: str) -> None:
    """Kernel names, parameter lists and launch bounds agree with the CUDA text; every symbol of
    the source carries the prefix; launches bind one argument per parameter."""
    m = load_manifest(bridge, name)
    src = m["cudaSource"]
    sigs = {g[1]: (g[0], g[2]) for g in SIGNATURE.findall(src)}
    assert all(n.startswith(m["kernelPrefix"]) for n in sigs), sigs.keys()
    kernels = {k["name"]: k for k in m["kernels"]}
    for k in m["kernels"]:
        bound, params = sigs[k["name"]]
        assert (int(bound) if bound else None) == k["maxThreadsPerBlock"]
        want = [f"{p['ctype']} {p['name']}" for p in k["params"]]
        assert [p.strip() for p in params.split(",") if p.strip()] == want
    for st in m["launches"]:
        if st["kind"] != "kernel":
            continue
        k = kernels[st["kernel"]]
        assert len(st["args"]) == len(k["params"])
        for a, p in zip(st["args"], k["params"]):
            assert (a["kind"] == "buffer") == (p["kind"] == "pointer")
        block = [d["tree"].get("int") for d in st["block"]]
        if all(b is not None for b in block):
            assert 1 <= np.prod(block) <= (k["maxThreadsPerBlock"] or 1024)
    for r in m["workspace"]["regions"]:
        if "int" in r["offset"]["tree"]:
            assert r["offset"]["tree"]["int"] % 256 == 0


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_nvcc_compiles(compiled: dict[str, Any], name: str) -> None:
    """cudaSource + a launcher generated from the manifest alone compile with nvcc -arch=sm_90."""
    proc = compiled[name]
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_constants_written(bridge: dict[str, Any]) -> None:
    m = load_manifest(bridge, "conv")
    out_dir = Path(bridge["by_id"]["conv"]["manifest"]).parent
    c0 = m["constants"][0]
    assert c0["shape"] == [64, 64, 3, 3] and c0["dtype"] == "float32"
    data = np.fromfile(out_dir / c0["file"], dtype=np.float32)
    assert data.nbytes == c0["bytes"] == 64 * 64 * 9 * 4
    rng = np.random.default_rng(0)
    want = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
    assert np.array_equal(data.reshape(64, 64, 3, 3), want)


def test_onehot_dtype_follows_graph(bridge: dict[str, Any]) -> None:
    """TVM's OneHot gives float64; the bridge adds a Cast so the output is the graph's float32
    (which TPAT's one_hot lowering then folds into the kernel: one kernel writing float32)."""
    m = load_manifest(bridge, "onehot")
    assert m["outputs"][0]["dtype"] == "float32"
    assert len(m["kernels"]) == 1 and len(m["launches"]) == 1
    args = m["launches"][0]["args"]
    out_at = next(k for k, a in enumerate(args) if a.get("buffer", {}).get("kind") == "output")
    assert m["kernels"][0]["params"][out_at]["dtype"] == "float32"
    log = Path(bridge["by_id"]["onehot"]["manifest"]).with_name("bridge.log").read_text()
    assert "float64 -> float32" in log
    # a node that generated keeps its notes, not TVM's long module dumps (those stay for failures)
    assert "kept only when the node fails" in log and len(log) < 4000


def test_identity_is_a_copy(bridge: dict[str, Any]) -> None:
    m = load_manifest(bridge, "identity")
    assert m["launches"] == [{"kind": "copy", "src": {"kind": "input", "index": 0},
                              "dst": {"kind": "output", "index": 0}, "bytes": {"cxx": "32768", "tree": {"int": 32768}}}]
    assert m["kernels"] == []


def test_symbolic_launch_uses_symbols(bridge: dict[str, Any]) -> None:
    m = load_manifest(bridge, "matmul_sym")
    # TPAT's GEMM (gemm.py) over batch x 128 rows of a 256 x 512 weight: a kernel per tile, the
    # largest that fills the GPU launched (264 blocks: 128 x 64 from batch 33, else 64 x 32), the
    # other with an empty grid (both dims: a grid too tall for a tile that does not run must not
    # fail the launch check)
    chosen = "((33 <= batch) ? 0 : 1)"
    assert [st["grid"][0]["cxx"] for st in m["launches"]] == [f"(({chosen} == 0) ? 8 : 0)", f"(({chosen} == 1) ? 16 : 0)"]
    assert [st["grid"][1]["cxx"] for st in m["launches"]] == [
        f"(({chosen} == 0) ? batch : 0)", f"(({chosen} == 1) ? (batch * 2) : 0)"]
    for st in m["launches"]:
        scalars = [a for a in st["args"] if a["kind"] == "scalar"]
        assert scalars and all("batch" in a["value"]["cxx"] and a["ctype"] in ("int64_t", "int32_t") for a in scalars)


def test_topk_scratch_workspace(bridge: dict[str, Any]) -> None:
    """TopK's host stub allocates four scratch buffers (two float32, two int64 of 8*1024)."""
    m = load_manifest(bridge, "topk")
    sizes = sorted(r["bytes"]["tree"]["int"] for r in m["workspace"]["regions"])
    assert sizes == [32768, 32768, 65536, 65536]
    assert m["workspace"]["totalBytes"]["tree"] == {"int": 196608}
    used = {a["buffer"]["kind"] for st in m["launches"] for a in st["args"] if a["kind"] == "buffer"}
    assert used == {"input", "output", "workspace"}


def test_cumsum_over_a_symbolic_axis_is_one_launch_without_host_scratch(bridge: dict[str, Any]) -> None:
    """TVM's CUDA scan loops on the host over a symbolic trip count; TPAT's masked sum (cumsum.py)
    is one launch whose grid follows the run-time length."""
    entry = bridge["by_id"]["cumsum_sym"]
    assert entry["status"] == "ok", entry.get("message")
    m = load_manifest(bridge, "cumsum_sym")
    assert len(m["launches"]) == 1 and not m["workspace"]["regions"]
    assert "L" in json.dumps(m["launches"][0]["grid"])


def test_shape_output_is_unsupported(bridge: dict[str, Any]) -> None:
    entry = bridge["by_id"]["shape_op"]
    assert entry["status"] == "error" and entry["errorClass"] == "unsupported"
    assert entry["message"].startswith("Shape:")


def test_all_plugins_link_together(compiled: dict[str, Any], tmp_path: Path) -> None:
    """Every object (kernels named the same by TVM in several nodes) links into one shared library:
    the prefixes leave no two plugins sharing a symbol."""
    import subprocess

    from conftest import NVCC

    objects = [p.args[p.args.index("-o") + 1] for p in compiled.values()]
    proc = subprocess.run([str(NVCC), "-shared", "-o", str(tmp_path / "liball.so"), *objects],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_unknown_op_is_an_import_error(bridge: dict[str, Any]) -> None:
    entry = bridge["by_id"]["custom_op"]
    assert entry["status"] == "error" and entry["errorClass"] == "import"
    assert entry["message"].startswith("NoSuchOp:") and "\n" not in entry["message"]
    assert Path(entry["log"]).exists()


def test_result_document(bridge: dict[str, Any]) -> None:
    assert bridge["returncode"] == 0
    assert bridge["tvmVersion"] == "0.27.0.post1"
    for n in bridge["nodes"]:
        assert isinstance(n["seconds"], float)
        assert set(n) >= {"id", "status", "seconds"}


def test_expr_rendering() -> None:
    n = make("floordiv", make("add", make("mul", Sym("N"), Int(1024)), Int(255)), Int(256))
    assert cxx(n) == "tpat_floordiv(((N * 1024) + 255), 256)"
    assert evaluate(n, {"N": 3}) == (3 * 1024 + 255) // 256
    assert make("mul", Int(4), Int(8)) == Int(32)
    assert make("select", make("lt", Int(1), Int(2)), Sym("a"), Sym("b")) == Sym("a")
    assert evaluate(make("ceildiv", Sym("x"), Int(256)), {"x": 257}) == 2
