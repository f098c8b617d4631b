"""TPAT's bridge to Apache TVM: ONNX sub-model -> TVM (Relax + dlight, CUDA) -> kernel manifest.

Subcommands (``python -m tpat_bridge ...``): ``manifests``, ``reference``, ``infer-shapes``.
"""

MANIFEST_VERSION = 1
