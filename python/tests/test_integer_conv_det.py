"""ConvInteger and Det, TPAT's converters (TVM's frontend lacks both): the node tests and more on
the CPU (TVM's llvm target), and each builds for CUDA."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from on_cpu import node_test_data, node_tests, run_on_cpu
from tpat_bridge.compiler import compile_model


def test_conv_integer_node_tests_and_a_per_channel_zero_point_with_strides():
    cases = node_tests("test_convinteger")
    assert len(cases) == 2
    for tc in cases:
        inputs, expected = node_test_data(tc)
        (got,) = run_on_cpu(tc.model, *inputs.values())
        assert got.dtype == np.int32 and np.array_equal(got, expected[0]), tc.name
        assert compile_model(tc.model, "sm_90", []).device_funcs, tc.name
    # int8 weights with one zero point per output channel, stride 2, SAME_UPPER, two groups
    rng = np.random.default_rng(3)
    x = rng.integers(0, 255, (1, 4, 7, 7), dtype=np.uint8)
    w = rng.integers(-100, 100, (6, 2, 3, 3), dtype=np.int8)
    xz, wz = np.array(128, np.uint8), np.array([1, -2, 3, 0, 5, -6], np.int8)
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], strides=[2, 2], auto_pad="SAME_UPPER", group=2)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 6, 4, 4])],
                          [helper.make_tensor("w", TensorProto.INT8, w.shape, w.flatten().tolist()),
                           helper.make_tensor("xz", TensorProto.UINT8, [], [128]),
                           helper.make_tensor("wz", TensorProto.INT8, [6], wz.tolist())])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (got,) = run_on_cpu(model, x)
    # ONNX Runtime has no int8-weight ConvInteger: the definition, in numpy (SAME_UPPER pads 1, 1)
    xi = np.pad(x.astype(np.int32) - 128, ((0, 0), (0, 0), (1, 1), (1, 1)))
    wi = w.astype(np.int32) - wz.astype(np.int32)[:, None, None, None]
    want = np.zeros((1, 6, 4, 4), np.int32)
    for oc in range(6):
        cin = slice((oc // 3) * 2, (oc // 3) * 2 + 2)
        for i in range(4):
            for j in range(4):
                want[0, oc, i, j] = (xi[0, cin, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * wi[oc]).sum()
    assert np.array_equal(got, want)


@pytest.fixture
def det_on_cpu(monkeypatch):
    from tpat_bridge import det

    monkeypatch.setattr(det, "ON_GPU", False)


def test_det_node_tests_and_larger_zero_and_singular_matrices(det_on_cpu):
    for tc in node_tests("test_det"):
        inputs, expected = node_test_data(tc)
        (got,) = run_on_cpu(tc.model, *inputs.values())
        assert np.allclose(got, expected[0], rtol=1e-5), tc.name
    rng = np.random.default_rng(0)
    for n in (1, 3, 5, 8):
        x = rng.standard_normal((4, n, n)).astype(np.float32)
        x[1] = 0
        if n > 1:
            x[2, :, 0] = x[2, :, 1]   # singular
        g = helper.make_graph([helper.make_node("Det", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
        (got,) = run_on_cpu(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), x)
        assert np.allclose(got, np.linalg.det(x.astype(np.float64)), rtol=1e-4, atol=1e-4), n


def test_det_is_one_thread_per_matrix_on_the_gpu():
    (tc,) = node_tests("test_det_nd")
    assert list(compile_model(tc.model, "sm_90", []).device_funcs) == ["det_kernel"]
