"""Ops of the ai.onnx.ml domain (TVM's frontend has none of them) that TPAT converts itself:
Binarizer and ArrayFeatureExtractor, the elementwise and gather steps of classic ML pipelines
exported to ONNX (skl2onnx) in front of or after a network."""

from __future__ import annotations

from typing import Any


def convert_binarizer(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ai.onnx.ml Binarizer: 1 where ``x > threshold``, else 0 (NaN included), in x's type."""
    from tvm import relax

    x = inputs[0]
    dtype = str(x.ty.dtype)
    above = relax.op.greater(x, relax.const(float(attr.get("threshold", 0.0)), dtype))
    return bb.emit(relax.op.astype(above, dtype))


def convert_array_feature_extractor(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """ai.onnx.ml ArrayFeatureExtractor: the last axis of X at the (flattened) indices Y, shaped
    ``X.shape[:-1] + [len(Y)]``, and ``[1, len(Y)]`` for a 1-D X, as ONNX Runtime (and onnx's
    reference) give it."""
    from tvm import relax

    x, indices = inputs
    flat = relax.op.reshape(indices, [-1])
    picked = bb.emit(relax.op.take(x, flat, axis=len(x.ty.shape.values) - 1))
    if len(x.ty.shape.values) == 1:
        picked = bb.emit(relax.op.expand_dims(picked, 0))
    return picked
