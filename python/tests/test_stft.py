"""TPAT's STFT (stft.py) on the CPU through TVM's llvm target: the ONNX node tests (with and
without a window), frame_step, frame_length and the window constants as models hold them."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def test_node_tests_reproduce_their_outputs():
    from on_cpu import node_tests, run_on_cpu

    def array(a):
        return numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a)

    cases = node_tests("test_stft")
    assert len(cases) >= 2
    for case in cases:
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        values = dict(zip([i.name for i in model.graph.input], [array(a) for a in case.data_sets[0][0]]))
        (want,) = [array(a) for a in case.data_sets[0][1]]
        for name in ("frame_step", "window", "frame_length"):
            if name in values:
                model.graph.initializer.append(numpy_helper.from_array(values[name], name))
        kept = [i for i in model.graph.input if i.name == "signal"]
        del model.graph.input[:]
        model.graph.input.extend(kept)
        (got,) = run_on_cpu(model, values["signal"])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3, err_msg=case.name)
