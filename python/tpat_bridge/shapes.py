"""``infer-shapes``: ONNX shape inference that keeps external data external.

The model is loaded without its external data (so the protobuf stays small, also for models over
2 GB), shapes are inferred, and the result is written next to OUT. Where OUT is in the same folder
as IN, the external data references stay as they are; elsewhere the tensors are loaded from IN's
folder and written as external data beside OUT (``<OUT name>.data``).
"""

from __future__ import annotations

import os

import onnx
from onnx import external_data_helper


def _has_external(model: onnx.ModelProto) -> bool:
    return any(external_data_helper.uses_external_data(t)
               for t in external_data_helper._get_all_tensors(model))  # noqa: SLF001 - public in practice


def infer_shapes(in_path: str, out_path: str) -> None:
    """Infer shapes of IN and write OUT."""
    model = onnx.load(in_path, load_external_data=False)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    in_dir = os.path.dirname(os.path.abspath(in_path))
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not _has_external(inferred) or in_dir == out_dir:
        onnx.save(inferred, out_path)
        return
    external_data_helper.load_external_data_for_model(inferred, in_dir)
    onnx.save(inferred, out_path, save_as_external_data=True, all_tensors_to_one_file=True,
              location=os.path.basename(out_path) + ".data", size_threshold=1024)
