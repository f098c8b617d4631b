"""Running a sub-model as TPAT imports it (TPAT's converters, function bodies, declared shapes) on
the CPU through TVM's llvm target, to check a converter's numbers against ONNX Runtime or a node
test's expected outputs without a GPU; and the ONNX backend's node tests themselves."""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np
import onnx


def run_on_cpu(model: onnx.ModelProto, *arrays: np.ndarray, log: list[str] | None = None) -> list[np.ndarray]:
    """``model``'s outputs for ``arrays`` (its non-constant inputs, in order). ``log`` gets the
    bridge's import log (the Relax module)."""
    import tvm
    from tvm import relax

    from tpat_bridge.compiler import import_model

    mod, _, _ = import_model(model, log if log is not None else [])
    out = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())["main"](*[tvm.runtime.tensor(a) for a in arrays])
    return [out.numpy()] if hasattr(out, "numpy") else [o.numpy() for o in out]


def node_tests(prefix: str) -> list[Any]:
    """The onnx wheel's node tests whose names start with ``prefix`` (generated quietly)."""
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return [t for t in load_model_tests(kind="node") if t.name.startswith(prefix)]
