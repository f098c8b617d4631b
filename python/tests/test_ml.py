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


@pytest.fixture
def trees_on_cpu(monkeypatch):
    from tpat_bridge import tree_ensemble

    monkeypatch.setattr(tree_ensemble, "ON_GPU", False)


def test_tree_ensemble_node_tests_reproduce(trees_on_cpu):
    cases = node_tests("test_ai_onnx_ml_tree_ensemble")
    assert len(cases) == 2
    for tc in cases:
        inputs, (want,) = node_test_data(tc)
        (got,) = run_on_cpu(tc.model, *inputs.values())
        assert got.dtype == want.dtype, tc.name
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=tc.name)


@pytest.mark.parametrize("aggregate", [0, 1, 2, 3])
def test_tree_ensemble_a_random_forest_against_the_reference(trees_on_cpu, aggregate):
    """Three random trees of depth 3 over 5 features, every comparison mode, NaN features (missing
    values tracking true on some nodes), 3 targets, each aggregate function."""
    rng = np.random.default_rng(aggregate)
    modes, feats, splits, tid, fid, tleaf, fleaf, missing, roots = [], [], [], [], [], [], [], [], []
    leaf_targets, leaf_weights = [], []

    def leaf() -> int:
        leaf_targets.append(int(rng.integers(0, 3)))
        leaf_weights.append(float(rng.standard_normal()))
        return len(leaf_targets) - 1

    def grow(depth: int) -> int:
        k = len(modes)
        for lst in (modes, feats, splits, tid, fid, tleaf, fleaf, missing):
            lst.append(0)
        modes[k], feats[k], splits[k] = int(rng.integers(0, 6)), int(rng.integers(0, 5)), float(rng.standard_normal())
        missing[k] = int(rng.integers(0, 2))
        for ids, leafs in ((tid, tleaf), (fid, fleaf)):
            if depth == 0:
                ids[k], leafs[k] = leaf(), 1
            else:
                ids[k], leafs[k] = grow(depth - 1), 0
        return k

    for _ in range(3):
        roots.append(grow(2))
    f = TensorProto.FLOAT
    node = helper.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=3, aggregate_function=aggregate, post_transform=0,
        nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [len(modes)], modes), nodes_featureids=feats,
        nodes_splits=helper.make_tensor("s", f, [len(splits)], splits), nodes_truenodeids=tid, nodes_falsenodeids=fid,
        nodes_trueleafs=tleaf, nodes_falseleafs=fleaf, nodes_missing_value_tracks_true=missing, tree_roots=roots,
        leaf_targetids=leaf_targets, leaf_weights=helper.make_tensor("w", f, [len(leaf_weights)], leaf_weights))
    model = helper.make_model(helper.make_graph([node], "g", [helper.make_tensor_value_info("X", f, [16, 5])],
                                                [helper.make_tensor_value_info("Y", f, [16, 3])]),
                              opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])
    model.ir_version = 10
    x = rng.standard_normal((16, 5)).astype(np.float32)
    x[rng.random((16, 5)) < 0.15] = np.nan
    (want,) = ReferenceEvaluator(model).run(None, {"X": x})
    (got,) = run_on_cpu(model, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_tree_ensemble_builds_for_cuda():
    (tc, *_) = node_tests("test_ai_onnx_ml_tree_ensemble_set_membership")
    assert compile_model(tc.model, "sm_90", []).device_funcs
