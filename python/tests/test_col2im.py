"""TPAT's Col2Im (col2im.py) on the CPU through TVM's llvm target: the ONNX node tests (2-D and
3-D images, strides, pads, dilations), their image and block shapes constants as models hold them."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def test_node_tests_reproduce_their_outputs():
    from on_cpu import node_tests, run_on_cpu

    def array(a):
        return numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a)

    cases = node_tests("test_col2im")
    assert len(cases) >= 5
    for case in cases:
        (data, image, block), (want,) = [array(a) for a in case.data_sets[0][0]], [array(a) for a in case.data_sets[0][1]]
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        for name, value in (("image_shape", image), ("block_shape", block)):
            model.graph.initializer.append(numpy_helper.from_array(value, name))
        kept = [i for i in model.graph.input if i.name not in ("image_shape", "block_shape")]
        del model.graph.input[:]
        model.graph.input.extend(kept)
        (got,) = run_on_cpu(model, data)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=case.name)
