"""TPAT's STFT (stft.py) on the CPU through TVM's llvm target: the ONNX node tests (with and
without a window), frame_step, frame_length and the window constants as models hold them."""
from __future__ import annotations

import numpy as np


def test_node_tests_reproduce_their_outputs():
    from on_cpu import node_tests, run_on_cpu, node_test_data, with_constant_inputs

    cases = node_tests("test_stft")
    assert len(cases) >= 2
    for case in cases:
        values, (want,) = node_test_data(case)
        model = with_constant_inputs(case.model, {k: v for k, v in values.items() if k != "signal"})
        (got,) = run_on_cpu(model, values["signal"])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3, err_msg=case.name)
