"""TPAT's RoiAlign (roialign.py) against ONNX Runtime on the CPU through TVM's llvm target: boxes
inside, across and outside the map, both modes, both coordinate conventions."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper


@pytest.mark.parametrize("opset,mode,transform,ratio,scale", [
    (13, "avg", None, 2, 0.25),              # Faster R-CNN's box head (opset 10 semantics)
    (16, "avg", "half_pixel", 2, 0.5),
    (16, "avg", "output_half_pixel", 3, 1.0),
    (16, "max", "half_pixel", 2, 0.25),
])
def test_roialign_is_onnx_runtimes(opset, mode, transform, ratio, scale):
    from on_cpu import run_on_cpu

    attrs = dict(output_height=3, output_width=4, sampling_ratio=ratio, spatial_scale=scale, mode=mode)
    if transform:
        attrs["coordinate_transformation_mode"] = transform
    node = helper.make_node("RoiAlign", ["x", "rois", "batch"], ["y"], **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, "H", "W"]),
                                        helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["boxes", 4]),
                                        helper.make_tensor_value_info("batch", TensorProto.INT64, ["boxes"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["boxes", 3, 3, 4])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    rng = np.random.default_rng(opset + ratio)
    x = rng.standard_normal((2, 3, 10, 13)).astype(np.float32)
    side = np.array([13, 10, 13, 10], np.float32) / scale
    rois = np.sort(rng.uniform(-0.2, 1.2, (7, 2, 2)), axis=1).reshape(7, 4)[:, [0, 2, 1, 3]].astype(np.float32) * side
    rois[0] = [0, 0, 0.5, 0.5]  # smaller than a cell
    batch = rng.integers(0, 2, 7).astype(np.int64)
    (got,) = run_on_cpu(model, x, rois, batch)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "rois": rois, "batch": batch})[0]
    assert np.count_nonzero(want) > want.size // 2  # the boxes sample the map, not only the outside
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_an_adaptive_grid_is_refused_with_its_reason():
    from tpat_bridge.compiler import import_model
    from tpat_bridge.errors import BridgeError

    node = helper.make_node("RoiAlign", ["x", "rois", "batch"], ["y"], sampling_ratio=0)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
                                        helper.make_tensor_value_info("rois", TensorProto.FLOAT, [5, 4]),
                                        helper.make_tensor_value_info("batch", TensorProto.INT64, [5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 3, 1, 1])])
    with pytest.raises(BridgeError, match="sampling_ratio=0"):
        import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)], ir_version=8), [])
