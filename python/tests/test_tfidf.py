"""TfIdfVectorizer, TPAT's converter (TVM's frontend lacks it): the node tests, and the IDF and
TFIDF modes with weights, trigrams and skips against onnx's reference on random tokens."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from on_cpu import node_test_data, node_tests, run_on_cpu
from tpat_bridge.compiler import compile_model


def test_node_tests():
    cases = node_tests("test_tfidfvectorizer")
    assert len(cases) == 7
    for tc in cases:
        inputs, expected = node_test_data(tc)
        (got,) = run_on_cpu(tc.model, *inputs.values())
        assert np.array_equal(got, expected[0]), tc.name
        assert compile_model(tc.model, "sm_90", []).device_funcs, tc.name


def test_modes_weights_trigrams_and_skips_match_the_reference():
    rng = np.random.default_rng(5)
    pool = [1, 2, 3,  1, 2, 2, 3, 4, 1,  1, 2, 3, 4, 4, 2]   # 3 unigrams, 3 bigrams, 2 trigrams
    for mode in ("TF", "IDF", "TFIDF"):
        for lo, hi, skip in ((1, 3, 2), (2, 3, 0), (1, 1, 3)):
            node = helper.make_node(
                "TfIdfVectorizer", ["x"], ["y"], mode=mode, min_gram_length=lo, max_gram_length=hi,
                max_skip_count=skip, ngram_counts=[0, 3, 9], ngram_indexes=[0, 1, 2, 3, 4, 5, 6, 2],
                pool_int64s=pool, weights=[0.5, 1.5, 2.0, 1.0, 3.0, 0.25, 4.0])
            g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT64, [3, 20])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 7])])
            model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)])
            x = rng.integers(1, 5, (3, 20)).astype(np.int64)
            (want,) = ReferenceEvaluator(model).run(None, {"x": x})
            (got,) = run_on_cpu(model, x)
            assert np.allclose(got, want), (mode, lo, hi, skip)
