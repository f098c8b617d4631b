"""ai.onnx.ml ops and ai.onnx.preview.training optimizers, which TPAT converts itself (ml.py,
training.py; TVM's frontend has none of those domains): their node
tests and more cases against onnx's reference on the CPU (TVM's llvm target), and the CUDA build."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from on_cpu import node_test_data, node_tests, run_on_cpu
from tpat_bridge.compiler import compile_model


@pytest.mark.parametrize("prefix", ["test_ai_onnx_ml_binarizer", "test_ai_onnx_ml_array_feature_extractor"])
def test_node_tests_reproduce_and_build(prefix):
    (tc,) = node_tests(prefix)
    inputs, (want,) = node_test_data(tc)
    (got,) = run_on_cpu(tc.model, *inputs.values())
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert compile_model(tc.model, "sm_90", []).device_funcs


def _ml_model(node: object, inputs: list[object], output: object) -> object:
    model = helper.make_model(helper.make_graph([node], "g", inputs, [output]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("shape,indices", [((7,), [6, 0, 3]), ((2, 3, 5), [[4, 4], [0, 1]]), ((4, 6), [2])])
def test_array_feature_extractor_shapes_as_onnx_runtime_gives_them(shape, indices):
    """A 1-D X gives a row ([1, n]); indices of any rank are flattened; the indices are a run-time
    input."""
    idx = np.array(indices, np.int64)
    out_shape = [1, idx.size] if len(shape) == 1 else [*shape[:-1], idx.size]
    node = helper.make_node("ArrayFeatureExtractor", ["x", "i"], ["y"], domain="ai.onnx.ml")
    model = _ml_model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape)),
                             helper.make_tensor_value_info("i", TensorProto.INT64, list(idx.shape))],
                      helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    (want,) = ReferenceEvaluator(model).run(None, {"x": x, "i": idx})
    (got,) = run_on_cpu(model, x, idx)
    np.testing.assert_array_equal(got, want)


def test_binarizer_threshold_nan_and_integers():
    node = helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=-0.5)
    model = _ml_model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
                      helper.make_tensor_value_info("y", TensorProto.FLOAT, [6]))
    x = np.array([-1, -0.5, -0.4, 0, np.nan, np.inf], np.float32)
    (got,) = run_on_cpu(model, x)
    np.testing.assert_array_equal(got, np.array([0, 0, 1, 1, 0, 1], np.float32))


@pytest.mark.parametrize("prefix", ["test_adagrad", "test_adam", "test_momentum", "test_nesterov_momentum"])
def test_optimizer_node_tests_reproduce_and_build(prefix):
    """The ai.onnx.preview.training optimizers (training.py): one and several parameter tensors,
    every output (new parameters, then new states)."""
    cases = node_tests(prefix)
    assert cases
    for tc in cases:
        inputs, want = node_test_data(tc)
        got = run_on_cpu(tc.model, *inputs.values())
        assert len(got) == len(want), tc.name
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.astype(g.dtype), rtol=1e-5, atol=1e-6, err_msg=tc.name)
    assert compile_model(cases[-1].model, "sm_90", []).device_funcs
