"""TPAT's own ONNX converters: one registration record per op, used instead of TVM's frontend
converter for that op (like TVM's ``@register_legalize``, one place per op).

An op whose output has a *data-dependent* dim (NonZero's ``[rank, K]``) says so in its record:
each such dim gets one more output in the sub-model TVM compiles, a 0-D int32 *size output*
holding the dim's actual extent, and the converter gives TVM the data output at its upper bound
(every dim an expression of the input sizes). The manifest then says which output dim is given by
which size output (``dataDependent``); the plugin declares it with TensorRT's size tensors.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import onnx
from onnx import helper

from .col2im import convert_col2im
from .cumsum import convert_cumprod, convert_cumsum
from .declared import convert_expand, convert_range, convert_tile
from .det import convert_det
from .dft import convert_dft
from .linear_attention import convert_linear_attention
from .ml import convert_array_feature_extractor, convert_binarizer
from .tree_ensemble import convert_tree_ensemble
from .training import convert_adagrad, convert_adam, convert_momentum
from .elementwise import convert_bit_cast, convert_bit_shift, convert_bitwise_not, convert_elu, convert_eye_like, convert_rms_normalization
from .integer_conv import convert_conv_integer
from .nms import convert_nms
from .nonzero import convert_compress, convert_nonzero
from .qlinear import convert_qlinear_matmul
from .roialign import convert_roialign
from .stft import convert_stft
from .tensor_scatter import convert_tensor_scatter
from .tfidf import convert_tfidf_vectorizer
from .subgraph import graph_constants, graph_output_of
from .topk import convert_topk, runtime_k
from .unique import convert_unique

# The suffix of a size output's name in the sub-model (never a name of the original model: TPAT's
# sub-model names are its own).
SIZE_SUFFIX = "__tpat_size"


@dataclass(frozen=True)
class SizeOutput:
    """Dim ``dim`` of node output ``output`` is data-dependent; its extent is a size output. With
    ``dim_attribute`` the dim is that attribute's value (``dim`` its default; negative counts from
    the end of input 0's rank), as TopK's ``axis``."""

    output: int
    dim: int
    dim_attribute: str | None = None


@dataclass(frozen=True)
class Converter:
    """One op TPAT converts itself."""

    op_type: str
    since_opset: int
    # (block builder, inputs, attributes, params) -> the Relax value of the node's outputs, as the
    # frontend's converters return it; with ``size_outputs``, the size outputs follow the node's own.
    convert: Callable[[Any, list[Any], dict[str, Any], Any], Any]
    size_outputs: tuple[SizeOutput, ...] = ()
    # Which nodes have the data-dependent dims (node, names of the model's constants); None: all.
    data_dependent: Callable[[Any, set[str]], bool] | None = None
    # The outputs the converter always returns before its size outputs (Unique's four, whichever the
    # node lists); 0: as many as the node lists.
    outputs: int = 0
    # The op's domain: the default one, or another whose ops TVM's frontend lacks (ai.onnx.ml).
    # TVM's frontend finds converters by op name alone; TPAT's op table names them `domain:op`.
    domain: str = ""


CONVERTERS: dict[str, Converter] = {c.op_type: c for c in [
    Converter("NonZero", 9, convert_nonzero, (SizeOutput(output=0, dim=1),)),
    # the kept slices along ``axis`` (of the flattened input without one: dim 0)
    Converter("Compress", 9, convert_compress, (SizeOutput(output=0, dim=0, dim_attribute="axis"),)),
    # opset 1's attribute K and a constant K take TVM's path; a K computed at run time, size outputs
    Converter("TopK", 1, convert_topk, (SizeOutput(output=0, dim=-1, dim_attribute="axis"),
                                        SizeOutput(output=1, dim=-1, dim_attribute="axis")), runtime_k),
    # TVM's does not build for CUDA and sizes its output by max_output_boxes_per_class (nms.py)
    Converter("NonMaxSuppression", 10, convert_nms, (SizeOutput(output=0, dim=0),)),
    # a shape, limit or repeats computed at run time: the output at its declared shape (declared.py);
    # constant ones take TVM's path
    Converter("Expand", 1, convert_expand),
    Converter("Range", 1, convert_range),
    Converter("Tile", 1, convert_tile),
    # a symbolic dim: a masked sum per element (cumsum.py); static shapes take TVM's scan
    Converter("CumSum", 11, convert_cumsum),
    Converter("CumProd", 26, convert_cumprod),
    # TVM's frontend stops on exported detectors' RoiAlign: ONNX's definition in TE (roialign.py)
    Converter("RoiAlign", 10, convert_roialign),
    # TVM's frontend lacks it (qlinear.py)
    Converter("QLinearMatMul", 10, convert_qlinear_matmul),
    Converter("DFT", 17, convert_dft),
    Converter("STFT", 17, convert_stft),
    # TVM's calls a host function (unique.py): every output at its upper bound, K for Y, indices, counts
    Converter("Unique", 11, convert_unique, (SizeOutput(output=0, dim=0, dim_attribute="axis"), SizeOutput(output=1, dim=0),
                                            SizeOutput(output=3, dim=0)), outputs=4),
    # TVM's frontend lacks it (col2im.py)
    Converter("Col2Im", 18, convert_col2im),
    # TVM's subtracts a float32 constant from a float16 or bfloat16 input (elementwise.py)
    Converter("Elu", 1, convert_elu),
    # TVM's refuses a dtype attribute other than the input's type (elementwise.py)
    Converter("EyeLike", 9, convert_eye_like),
    # TVM's frontend lacks it (tensor_scatter.py)
    Converter("TensorScatter", 24, convert_tensor_scatter),
    # TVM's rms_norm fails to build over every axis (axis 0) (elementwise.py)
    Converter("RMSNormalization", 23, convert_rms_normalization),
    # TVM's frontend lacks it (elementwise.py)
    Converter("BitCast", 26, convert_bit_cast),
    # TVM's frontend lacks them (integer_conv.py, det.py)
    Converter("ConvInteger", 10, convert_conv_integer),
    Converter("Det", 11, convert_det),
    # TVM's frontend lacks it; integer tokens (tfidf.py)
    Converter("TfIdfVectorizer", 9, convert_tfidf_vectorizer),
    # TVM's CUDA code leaves 8- and 16-bit results widened by C's promotion (elementwise.py)
    Converter("BitShift", 11, convert_bit_shift),
    Converter("BitwiseNot", 18, convert_bitwise_not),
    # TVM's frontend lacks it and the Scan of its function body (linear_attention.py)
    Converter("LinearAttention", 27, convert_linear_attention, outputs=2),
    # the ai.onnx.ml domain, which TVM's frontend lacks (ml.py)
    Converter("Binarizer", 1, convert_binarizer, domain="ai.onnx.ml"),
    Converter("ArrayFeatureExtractor", 1, convert_array_feature_extractor, domain="ai.onnx.ml"),
    Converter("TreeEnsemble", 1, convert_tree_ensemble, domain="ai.onnx.ml"),
    # the optimizers of ai.onnx.preview.training, which TVM's frontend lacks (training.py)
    Converter("Adagrad", 1, convert_adagrad, domain="ai.onnx.preview.training"),
    Converter("Adam", 1, convert_adam, domain="ai.onnx.preview.training"),
    Converter("Momentum", 1, convert_momentum, domain="ai.onnx.preview.training"),
]}


def _rank(graph: onnx.GraphProto, name: str) -> int | None:
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if vi.name == name and vi.type.tensor_type.HasField("shape"):
            return len(vi.type.tensor_type.shape.dim)
    for t in graph.initializer:
        if t.name == name:
            return len(t.dims)
    return None


def _size_dims(node: onnx.NodeProto, converter: Converter, graph: onnx.GraphProto) -> list[tuple[SizeOutput, int]] | None:
    """The size outputs ``node`` takes, each with its dim; None when it takes none."""
    if not converter.size_outputs or (converter.data_dependent is not None and not converter.data_dependent(node, graph_constants(graph))):
        return None
    found = []
    for s in converter.size_outputs:
        dim = s.dim
        if s.dim_attribute is not None:
            dim = next((int(helper.get_attribute_value(a)) for a in node.attribute if a.name == s.dim_attribute), s.dim)
        if dim < 0:
            rank = _rank(graph, node.input[0]) if node.input else None
            if rank is None:
                return None
            dim += rank
        found.append((s, dim))
    return found


@dataclass(frozen=True)
class DataDependentDim:
    """In the sub-model's outputs: output ``output``'s dim ``dim`` is the value of output ``size_output``."""

    output: int
    dim: int
    size_output: int


def with_size_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model``, or a copy whose data-dependent node outputs each got their size outputs (also
    graph outputs, after the original ones; see ``data_dependent_dims``)."""
    def takes(n: onnx.NodeProto) -> bool:
        return n.domain in ("", "ai.onnx") and n.op_type in CONVERTERS and _size_dims(n, CONVERTERS[n.op_type], model.graph) is not None

    if not any(takes(n) for n in model.graph.node):
        return model
    patched = onnx.ModelProto()
    patched.CopyFrom(model)
    graph = patched.graph
    for k, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in CONVERTERS:
            continue
        converter = CONVERTERS[node.op_type]
        sizes = _size_dims(node, converter, graph)
        if sizes is None:
            continue
        # outputs the node leaves out (optional ones) get names no one reads: the converter's
        # outputs and the size outputs after them keep their places
        while len(node.output) < converter.outputs:
            node.output.append("")
        for j, name in enumerate(node.output):
            if not name:
                node.output[j] = f"tpat_unused_{k}_{j}"
        for s, dim in sizes:
            if s.output < len(node.output):
                name = f"{node.output[s.output]}{SIZE_SUFFIX}{dim}"
                node.output.append(name)
                # a size for an output that leaves the sub-model, or that a node inside reads (only
                # at the boundary is the upper bound with its size right: data_dependent_dims refuses
                # it); none for an output nobody reads
                data = node.output[s.output]
                read = any(data in n.input for n in graph.node)
                if graph_output_of(graph, data) is not None or read:
                    graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.INT32, []))
    return patched


def data_dependent_dims(model: onnx.ModelProto) -> list[DataDependentDim]:
    """Where ``with_size_outputs`` put the size outputs of ``model``'s graph outputs. A sub-model is
    one node, its outputs graph outputs, possibly through the Casts TPAT adds at its boundary (a
    Cast keeps the shape, so the graph output has the same data-dependent dim)."""
    from .errors import BridgeError

    names = [o.name for o in model.graph.output]
    dims = []
    for j, name in enumerate(names):
        base, sep, dim = name.rpartition(SIZE_SUFFIX)
        if not (sep and dim.isdigit()):
            continue
        output = graph_output_of(model.graph, base)
        if output is None:
            raise BridgeError("unsupported", f"the data-dependent output '{name[:-len(sep + dim)]}' is not an output of "
                                             "the plugin, so its size cannot be declared")
        dims.append(DataDependentDim(names.index(output.name), int(dim), j))
    return dims


@contextlib.contextmanager
def tpat_converters() -> Iterator[None]:
    """While active, TVM's ONNX frontend uses TPAT's converters for the ops in ``CONVERTERS``."""
    from tvm.relax.frontend.onnx import onnx_frontend

    original = onnx_frontend._get_convert_map

    def frontend_class(c: Converter) -> type:
        def impl(cls: Any, bb: Any, inputs: Any, attr: Any, params: Any) -> Any:
            return c.convert(bb, inputs, attr, params)

        return type(f"TPAT{c.op_type}", (onnx_frontend.OnnxOpConverter,),
                    {f"_impl_v{c.since_opset}": classmethod(impl)})

    def patched() -> dict[str, Any]:
        table = dict(original())
        table.update({op: frontend_class(c) for op, c in CONVERTERS.items()})
        return table

    onnx_frontend._get_convert_map = patched
    try:
        with warnings.catch_warnings():
            # The frontend's checker would say that a node with its size outputs has more outputs
            # than its schema allows; TPAT added them (``with_size_outputs``).
            warnings.filterwarnings("ignore", message=r"Node(\(.*\))? with schema\(::(" + "|".join(CONVERTERS) + r"):\d+\) has output size")
            # Likewise the dim carriers declared.py appends as inputs.
            warnings.filterwarnings("ignore", message=r"Node(\(.*\))? with schema\(::(" + "|".join(CONVERTERS) + r"):\d+\) has input size")
            yield
    finally:
        onnx_frontend._get_convert_map = original
