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


def test_rms_normalization_over_every_axis_builds_and_reproduces_the_node_tests():
    """TVM's rms_norm fails to build for CUDA over every axis (axis 0); TPAT's converter computes
    that case itself. Every RMSNormalization node test reproduces on the CPU, and each builds for
    CUDA."""
    import numpy as np

    from on_cpu import node_test_data, node_tests, run_on_cpu
    from tpat_bridge.compiler import compile_model

    cases = [tc for tc in node_tests("test_rms_normalization") if "expanded" not in tc.name]
    assert len(cases) >= 12
    for tc in cases:
        inputs, expected = node_test_data(tc)
        (got,) = run_on_cpu(tc.model, *inputs.values())
        assert np.allclose(got, expected[0], rtol=1e-5, atol=1e-6), tc.name
        if "axis0" in tc.name or "negative_3" in tc.name or "2d_axis_negative_2" in tc.name:
            assert compile_model(tc.model, "sm_90", []).device_funcs, tc.name


def test_bit_cast_keeps_every_bit():
    """BitCast (TVM's frontend lacks it): each node test's output, bit for bit, on the CPU; each
    builds for CUDA as one kernel."""
    import numpy as np

    from on_cpu import node_test_data, node_tests, run_on_cpu
    from tpat_bridge.compiler import compile_model

    cases = node_tests("test_bitcast")
    assert len(cases) == 10
    for tc in cases:
        inputs, expected = node_test_data(tc)
        (got,) = run_on_cpu(tc.model, *inputs.values())
        assert got.dtype == expected[0].dtype, tc.name
        assert got.tobytes() == expected[0].tobytes(), tc.name
        assert list(compile_model(tc.model, "sm_90", []).device_funcs) == ["bit_cast_kernel"], tc.name


@pytest.mark.parametrize("prefix", ["test_bitshift", "test_bitwise_not"])
def test_bit_ops_reproduce_every_node_test_and_narrow_on_cuda(prefix):
    """BitShift and BitwiseNot (elementwise.py): every node test on the CPU, a shift by the width
    or more and int8 overflow included; and for CUDA the 8-bit results are narrowed back to their
    type (TVM's own code left C's promotion to int in them: uint8 ~37 became -38)."""
    from on_cpu import node_test_data, node_tests, run_on_cpu
    from tpat_bridge.compiler import compile_model

    cases = node_tests(prefix)
    assert len(cases) >= (12 if prefix == "test_bitshift" else 3), prefix
    for case in cases:
        values, (want,) = node_test_data(case)
        (got,) = run_on_cpu(case.model, *values.values())
        assert got.dtype == want.dtype, case.name
        np.testing.assert_array_equal(got, want, err_msg=case.name)
    narrow = next(c for c in cases if c.model.graph.input[0].type.tensor_type.elem_type == 2)  # uint8
    source = compile_model(narrow.model, "sm_90", []).cuda_source
    assert "(uchar)" in source or "(unsigned char)" in source, narrow.name
