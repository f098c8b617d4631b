"""TPAT's DFT (dft.py), which TVM's frontend lacks: every ONNX backend node test of it (forward,
inverse, one-sided both ways, opsets 19 and 20), on the CPU through TVM's llvm target, against the
test's own expected output. The CUDA kernel is the same TE, checked by the conformance run on a GPU."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from on_cpu import node_tests, run_on_cpu


def test_dft_computes_every_node_tests_output():
    cases = node_tests("test_dft")
    assert len(cases) >= 10
    for tc in cases:
        feeds, expected = tc.data_sets[0]
        arrays = [numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a) for a in feeds]
        graph = tc.model.graph
        # axis and dft_length as constants, as a real model (and the conformance run) has them
        fed = []
        for vi, a in zip(list(graph.input), arrays):
            if vi.name in ("axis", "dft_length"):
                graph.initializer.append(numpy_helper.from_array(a, vi.name))
            else:
                fed.append((vi, a))
        del graph.input[:]
        graph.input.extend(vi for vi, _ in fed)
        (got,) = run_on_cpu(tc.model, *[a for _, a in fed])
        want = numpy_helper.to_array(expected[0]) if isinstance(expected[0], onnx.TensorProto) else np.asarray(expected[0])
        assert got.shape == want.shape, tc.name
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=tc.name)
