"""End-to-end check on a GPU machine: manifest-driven launchers against ONNX Runtime references.

Run here (no GPU needed):   .venv/bin/python python/tests/gpu_check.py python/out/gpu
It writes, per node, ``<name>.cu`` (cudaSource + launcher + main, generated from the manifest
alone), the constants and the reference data, and ``run.sh``. On a CUDA machine:
``bash python/out/gpu/run.sh`` compiles each with nvcc and runs it (PASS/FAIL per node).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import onnx  # noqa: E402

import models  # noqa: E402
from launcher import check_main, launcher_source  # noqa: E402

F, I64 = models.F32, models.I64

# node -> (model, dims for symbolic inputs); big test shapes are replaced by smaller ones of the same op
CASES = {
    "abs": (models.abs_(), {}), "abs_sym": (models.abs_sym(), {"N": 5}), "add_bcast": (models.add_bcast(), {}),
    "softmax_sym": (models.softmax("N"), {"N": 64}), "reducemax": (models.reducemax(), {}),
    "layernorm_sym": (models.layernorm("N"), {"N": 96}),
    "gathernd": (models.single("GatherND", [models.vi("data", F, [1, 32, 32, 64]), models.vi("indices", I64, [1, 100, 3])],
                               [models.vi("y", F, [1, 100, 64])]), {}),
    "scatternd": (models.single("ScatterND", [models.vi("data", F, [4, 16, 16, 32]), models.vi("indices", I64, [4, 60, 3]),
                                              models.vi("updates", F, [4, 60, 32])],
                                [models.vi("y", F, [4, 16, 16, 32])]), {}),
    "onehot": (models.onehot(), {}),
    "resize_nearest": (models.single("Resize", [models.vi("x", F, [2, 3, 11, 10])], [models.vi("y", F, [2, 3, 44, 40])],
                                     [models.init("roi", models.np.array([], models.np.float32)),
                                      models.init("scales", models.np.array([1, 1, 4, 4], models.np.float32))],
                                     mode="nearest", nearest_mode="floor", coordinate_transformation_mode="asymmetric"), {}),
    "resize_linear": (models.single("Resize", [models.vi("x", F, [2, 3, 11, 10])], [models.vi("y", F, [2, 3, 44, 40])],
                                    [models.init("roi", models.np.array([], models.np.float32)),
                                     models.init("scales", models.np.array([1, 1, 4, 4], models.np.float32))],
                                    mode="linear"), {}),
    "matmul": (models.matmul(), {}), "matmul_sym": (models.matmul_sym(), {"batch": 3}), "conv": (models.conv(), {}),
    "erf": (models.erf(), {}), "isinf": (models.isinf(), {}), "where": (models.where(), {}), "topk": (models.topk(), {}),
    "cumsum": (models.cumsum(), {}), "argmax": (models.argmax(), {}), "reshape": (models.reshape(), {}),
    "identity": (models.identity(), {}),
}


def main(out: Path) -> int:
    from tpat_bridge.bridge import run_request
    from tpat_bridge.reference import write_reference

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    nodes = []
    for name, (model, _) in CASES.items():
        onnx.save(model, str(out / f"{name}.onnx"))
        nodes.append({"id": name, "model": str(out / f"{name}.onnx"), "outDir": str(out / name),
                      "kernelPrefix": f"tpat_{name}_"})
    (out / "request.json").write_text(json.dumps({"arch": "sm_90", "nodes": nodes, "tuning": None}))
    run_request(str(out / "request.json"), str(out / "result.json"))
    result = json.loads((out / "result.json").read_text())
    names = []
    for entry in result["nodes"]:
        name = entry["id"]
        if entry["status"] != "ok":
            print(f"{name}: {entry['status']} {entry.get('message')}")
            continue
        m = json.loads(Path(entry["manifest"]).read_text())
        ref_path = write_reference(str(out / f"{name}.onnx"), str(out / name / "ref"), 0, CASES[name][1])
        ref = json.loads(Path(ref_path).read_text())
        (out / f"{name}.cu").write_text(launcher_source(m) + check_main(m, ref, name, f"{name}/ref"))
        os.remove(out / name / "manifest.json")  # keep the carried folder small; the .cu has it all
        names.append(name)
    (out / "run.sh").write_text(
        "#!/bin/bash\n# compile and run every check program (from any folder)\ncd \"$(dirname \"$0\")\"\n"
        f"NAMES=\"{' '.join(names)}\"\n"
        "echo $NAMES | tr ' ' '\\n' | xargs -P 16 -I{} sh -c 'nvcc -arch=sm_90 -O2 -w -o {}.bin {}.cu || echo BUILD FAIL {}'\n"
        "for n in $NAMES; do echo \"== $n\"; ./$n.bin . ; done\n")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{len(names)} checks in {out} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/gpu").resolve()))
