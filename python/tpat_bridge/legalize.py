"""TPAT's own legalizations, where TVM's stock CUDA lowering is far from the memory-bandwidth limit:
the map handed to ``LegalizeOps`` and the Relax rewrites that run before it. Each op's lowering
lives in its own module (scatter_nd.py, gather_nd.py, one_hot.py, resize.py, rowwise.py, gemm.py) and
applies only where it is covered (static shapes, the dtypes a GPU run checked); everything else
keeps TVM's legalization.
"""

from __future__ import annotations

from typing import Any, Callable

from .gemm import legalize_matmul
from .gather_nd import fold_gather_nd_index_normalization, legalize_gather_nd
from .one_hot import fold_one_hot_normalization_and_cast, one_hot_legalizer
from .resize import resize2d_legalizer
from .scatter_nd import legalize_scatter_nd


def fold_frontend_normalization_pass() -> Any:
    """The frontend rewrites TPAT's kernels rely on (``fold_gather_nd_index_normalization``,
    ``fold_one_hot_normalization_and_cast``) as one module pass, run before LegalizeOps."""
    import tvm

    return tvm.transform.module_pass(
        lambda mod, _ctx: fold_one_hot_normalization_and_cast(fold_gather_nd_index_normalization(mod)),
        opt_level=0, name="tpat.FoldFrontendIndexNormalization")


def legalize_map() -> dict[str, Callable[[Any, Any], Any]]:
    """The ``customize_legalize_map`` TPAT passes to ``LegalizeOps``."""
    from .rowwise import legalize_map as rowwise_map

    return {"relax.scatter_nd": legalize_scatter_nd, "relax.image.resize2d": resize2d_legalizer(),
            "relax.gather_nd": legalize_gather_nd, "relax.one_hot": one_hot_legalizer(), "relax.matmul": legalize_matmul, **rowwise_map()}
