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


def with_constant_inputs(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph inputs named in ``values`` are initializers holding those
    values, as models hold attribute-like operands (an axis, a shape, a window)."""
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), name) for name, v in values.items())
    kept = [i for i in out.graph.input if i.name not in values]
    del out.graph.input[:]
    out.graph.input.extend(kept)
    return out


def node_test_data(case: Any) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """A node test's inputs by graph input name, and its expected outputs."""
    from onnx import numpy_helper

    def array(a: Any) -> np.ndarray:
        return numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a)

    inputs, outputs = case.data_sets[0]
    return dict(zip([i.name for i in case.model.graph.input], map(array, inputs))), [array(a) for a in outputs]
