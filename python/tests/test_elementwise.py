"""TPAT's Elu (elementwise.py) on the CPU through TVM's llvm target: Elu's and Celu's node tests at
float32, float16 and bfloat16 (Celu through its function body, which calls Elu)."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("prefix", ["test_elu", "test_celu"])
def test_node_tests_reproduce_their_outputs(prefix):
    from on_cpu import node_test_data, node_tests, run_on_cpu

    cases = [t for t in node_tests(prefix) if len(t.model.graph.node) == 1]
    assert cases, prefix
    checked = 0
    for case in cases:
        values, want = node_test_data(case)
        (got,) = run_on_cpu(case.model, *values.values())
        assert got.dtype == want[0].dtype, case.name
        tolerance = 1e-5 if got.dtype == np.float32 else 1e-2
        np.testing.assert_allclose(got.astype(np.float32), want[0].astype(np.float32), rtol=tolerance, atol=tolerance,
                                   err_msg=case.name)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("prefix", ["test_eyelike", "test_tensorscatter"])
def test_generated_node_tests_reproduce_their_outputs(prefix):
    """EyeLike (a dtype other than the input's) and TensorScatter (tensor_scatter.py, linear and
    circular): every node test, every input a plugin input."""
    from on_cpu import node_test_data, node_tests, run_on_cpu

    cases = node_tests(prefix)
    assert len(cases) >= 3, prefix
    for case in cases:
        values, (want,) = node_test_data(case)
        (got,) = run_on_cpu(case.model, *values.values())
        assert got.dtype == want.dtype, case.name
        np.testing.assert_array_equal(got, want, err_msg=case.name)
