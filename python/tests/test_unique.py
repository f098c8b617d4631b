"""TPAT's Unique (unique.py) on the CPU through TVM's llvm target: the ONNX node tests' expected
outputs, sorted and not, with and without an axis, read through the size outputs (K)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper


def test_node_tests_reproduce_their_outputs():
    from on_cpu import node_test_data, node_tests, run_on_cpu

    cases = node_tests("test_unique")
    assert len(cases) >= 7
    for case in cases:
        model = case.model
        values, want = node_test_data(case)
        (x,) = values.values()
        got = run_on_cpu(model, x)
        node = model.graph.node[0]
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), None)
        axis = None if axis is None else axis % x.ndim
        k = int(got[-1])
        assert all(int(s) == k for s in got[len(want):]), case.name
        # Y as TensorRT reads a data-dependent output: packed as its actual shape at the front of
        # the upper-bound buffer (not the first K entries of the axis in the upper bound's layout)
        shape = list(got[0].shape)
        shape[0 if axis is None else axis] = k
        y = got[0].reshape(-1)[:int(np.prod(shape))].reshape(shape)
        np.testing.assert_array_equal(y, want[0], err_msg=case.name)
        np.testing.assert_array_equal(got[1][:k], want[1], err_msg=case.name)
        np.testing.assert_array_equal(got[2], want[2], err_msg=case.name)
        np.testing.assert_array_equal(got[3][:k], want[3], err_msg=case.name)


@pytest.mark.parametrize("sort", [1, 0])
def test_only_y_and_random_values(sort):
    """A node listing only Y (the other outputs optional), over values with many repeats."""
    from on_cpu import run_on_cpu

    x = np.random.default_rng(sort).integers(0, 9, (5, 7)).astype(np.float32)
    node = helper.make_node("Unique", ["x"], ["y"], sorted=sort)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [5, 7])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)], ir_version=8)
    y, k = run_on_cpu(model, x)
    want = np.unique(x) if sort else np.array(list(dict.fromkeys(x.reshape(-1).tolist())), np.float32)
    np.testing.assert_array_equal(y[:int(k)], want)
