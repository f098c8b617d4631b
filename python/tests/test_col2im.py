"""TPAT's Col2Im (col2im.py) on the CPU through TVM's llvm target: the ONNX node tests (2-D and
3-D images, strides, pads, dilations), their image and block shapes constants as models hold them."""
from __future__ import annotations

import numpy as np


def test_node_tests_reproduce_their_outputs():
    from on_cpu import node_tests, run_on_cpu, node_test_data, with_constant_inputs

    cases = node_tests("test_col2im")
    assert len(cases) >= 5
    for case in cases:
        values, (want,) = node_test_data(case)
        model = with_constant_inputs(case.model, {k: values[k] for k in ("image_shape", "block_shape")})
        (got,) = run_on_cpu(model, values["input"])
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=case.name)
