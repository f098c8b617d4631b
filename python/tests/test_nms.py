"""TPAT's NonMaxSuppression (nms.py): a data-dependent row count through a size output.

Here, without a GPU: the manifest declares the rows as data-dependent with an upper bound of
batches x classes x boxes, the kernels are TPAT's four (TVM's all_class_non_max_suppression does
not build for CUDA), torchvision's export (INT64_MAX as the per-class limit, a run-time number of
boxes) and every ONNX node test of the op go through the bridge, and the thresholds are read at
run time. The kernels' numbers are checked by the self-tests on a GPU (docs/gpu-runs/)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from on_cpu import node_test_data, node_tests, with_constant_inputs


def torchvision_nms(boxes="num_boxes", classes=1, limit=2**63 - 1, score_threshold=None) -> onnx.ModelProto:
    """NonMaxSuppression as torchvision's detection heads export it (batched_nms: one class row,
    INT64_MAX as max_output_boxes_per_class, a run-time number of boxes)."""
    inputs = ["boxes", "scores", "max", "iou"] + (["score"] if score_threshold is not None else [])
    inits = [numpy_helper.from_array(np.array([limit], np.int64), "max"),
             numpy_helper.from_array(np.array([0.7], np.float32), "iou")]
    if score_threshold is not None:
        inits.append(numpy_helper.from_array(np.array([score_threshold], np.float32), "score"))
    g = helper.make_graph([helper.make_node("NonMaxSuppression", inputs, ["selected"], name="nms")], "g",
                          [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, boxes, 4]),
                           helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, classes, boxes])],
                          [helper.make_tensor_value_info("selected", TensorProto.INT64, ["num_selected", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _manifest(tmp_path, model: onnx.ModelProto) -> dict:
    from tpat_bridge.bridge import NodeRequest, generate

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = str(tmp_path / "nms.onnx")
    onnx.save(model, path)
    return json.load(open(generate(NodeRequest("n0", path, str(tmp_path / "out"), "tpat_nms_"), "sm_90", "test", [])))


@pytest.mark.parametrize("boxes,classes", [("num_boxes", 1), (1000, 3)])
def test_the_rows_are_data_dependent_up_to_every_box_of_every_class(tmp_path, boxes, classes):
    manifest = _manifest(tmp_path, torchvision_nms(boxes, classes))
    data, size = manifest["outputs"]
    assert data["dtype"] == "int64" and data["dataDependent"] == [{"dim": 0, "sizeOutput": 1}]
    assert data["shape"][1] == {"cxx": "3", "tree": {"int": 3}}
    if isinstance(boxes, int):
        assert data["shape"][0]["tree"] == {"int": boxes * classes}
    else:
        assert "num_boxes" in data["shape"][0]["cxx"]
    assert size["dtype"] == "int32" and size["shape"] == []
    kernels = [k["name"] for k in manifest["kernels"]]
    assert len(kernels) == 4 and all(k.startswith("tpat_nms_non_max_suppression_tpat_kernel") for k in kernels)
    # INT64_MAX stays a run-time value: no 32-bit literal of it, no buffer sized by it
    assert "9223372036854775807" not in manifest["cudaSource"]


def test_every_node_test_of_the_op_goes_through_the_bridge(tmp_path):
    cases = node_tests("test_nonmaxsuppression")
    assert len(cases) == 10
    for k, case in enumerate(cases):
        inputs, _ = node_test_data(case)
        names = list(inputs)
        model = with_constant_inputs(case.model, {n: inputs[n] for n in names[2:]})
        manifest = _manifest(tmp_path / str(k), model)
        assert manifest["outputs"][0]["dataDependent"] == [{"dim": 0, "sizeOutput": 1}], case.name


def test_a_score_threshold_adds_no_kernel_and_is_read_at_run_time(tmp_path):
    manifest = _manifest(tmp_path, torchvision_nms(64, 2, limit=5, score_threshold=0.25))
    assert len(manifest["kernels"]) == 4
    # the thresholds and the limit are operands of the greedy kernel, not literals in it
    source = manifest["cudaSource"]
    assert "__syncthreads" in source
    assert "0.25" not in source and "0x1p-2" not in source and "(int64_t)5)" not in source
