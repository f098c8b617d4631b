"""TPAT's Resize (relax.image.resize2d) lowering: ONNX Runtime's coordinate arithmetic, checked
numerically on the CPU (the same TIR arithmetic in serial loops, built by TVM for LLVM) against
ONNX Runtime and the ONNX backend tests; on CUDA, the kernel TPAT emits and the fallbacks."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

COORDS = ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel", "tf_half_pixel_for_nn"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
# (input NCHW, output HW): integer and non-integer up/down ratios, single rows/columns.
SHAPES = [((2, 3, 11, 12), (17, 20)), ((1, 2, 20, 15), (6, 10)), ((1, 2, 4, 4), (8, 8)),
          ((1, 1, 5, 7), (1, 3)), ((3, 1, 1, 6), (4, 1)), ((1, 4, 6, 6), (3, 3)), ((1, 2, 15, 9), (10, 27))]


def resize_model(mode: str, coord: str, nearest: str, shape, size, *, scales=None, opset: int = 13,
                 extra: dict | None = None) -> onnx.ModelProto:
    inits = [helper.make_tensor("roi", TensorProto.FLOAT, [0], [])]
    if scales is not None:
        inits.append(helper.make_tensor("scales", TensorProto.FLOAT, [4], scales))
        inputs = ["x", "roi", "scales"]
    else:
        inits.append(helper.make_tensor("sizes", TensorProto.INT64, [4], list(shape[:2]) + list(size)))
        inputs = ["x", "roi", "", "sizes"]
    attrs = dict(mode=mode, coordinate_transformation_mode=coord, nearest_mode=nearest, **(extra or {}))
    g = helper.make_graph([helper.make_node("Resize", inputs, ["y"], **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape[:2]) + list(size))],
                          initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def run_cpu(model: onnx.ModelProto, inputs: list[np.ndarray]) -> np.ndarray:
    """TVM on the CPU with TPAT's resize2d lowering (serial loops), everything else TVM's."""
    import tvm
    from tvm import relax

    from tpat_bridge.compiler import import_model
    from tpat_bridge.resize import resize2d_legalizer

    mod, _, _ = import_model(model, [])
    target = tvm.target.Target("llvm")
    with target:
        mod = relax.transform.LegalizeOps(customize_legalize_map={"relax.image.resize2d": resize2d_legalizer(False)})(mod)
    assert "resize2d_tpat" in [gv.name_hint for gv in mod.functions], "TPAT's lowering did not apply"
    ex = tvm.compile(mod, target=target)
    vm = relax.VirtualMachine(ex, tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(a) for a in inputs])
    return out.numpy()


def run_ort(model: onnx.ModelProto, inputs: list[np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, inputs)))[0]


def _check(model, shape, exact: bool) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    got, want = run_cpu(model, [x]), run_ort(model, [x])
    assert got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("nearest", NEAREST)
def test_nearest_matches_onnxruntime(coord, nearest):
    for shape, size in SHAPES:
        _check(resize_model("nearest", coord, nearest, shape, size), shape, exact=True)


@pytest.mark.parametrize("coord", [c for c in COORDS if c != "tf_half_pixel_for_nn"])
def test_linear_matches_onnxruntime(coord):
    for shape, size in SHAPES:
        _check(resize_model("linear", coord, "round_prefer_floor", shape, size), shape, exact=False)


@pytest.mark.parametrize("opset", [11, 13, 18, 19])
def test_opsets_and_integral_scales(opset):
    shape = (2, 3, 6, 5)
    for mode in ("nearest", "linear"):
        _check(resize_model(mode, "half_pixel", "round_prefer_floor", shape, (12, 15),
                            scales=[1.0, 1.0, 2.0, 3.0], opset=opset), shape, exact=mode == "nearest")


def _cuda(model):
    from tpat_bridge.compiler import compile_model
    from tpat_bridge.plan import build_plan

    compiled = compile_model(model, "sm_90", [])
    return compiled, build_plan(compiled)


def test_cuda_kernel_int32_rows_and_planes():
    compiled, plan = _cuda(resize_model("linear", "half_pixel", "round_prefer_floor", (4, 8, 44, 50), (176, 200)))
    src = compiled.cuda_source
    assert "resize2d_tpat_kernel" in src and "int64_t)blockIdx" not in src
    grids = [[str(g) for g in st.grid] for st in plan.steps if hasattr(st, "grid")]
    # 176*200 positions / 256 threads, 32 planes / 8 planes per thread.
    assert grids == [["Int(value=138)", "Int(value=4)", "Int(value=1)"]], grids


@pytest.mark.parametrize("mode,coord,extra", [("cubic", "half_pixel", {}),
                                              ("linear", "tf_crop_and_resize", {"extrapolation_value": 1.0})])
def test_uncovered_modes_keep_tvm_lowering(mode, coord, extra):
    compiled, _ = _cuda(resize_model(mode, coord, "round_prefer_floor", (1, 2, 6, 6), (9, 9), extra=extra))
    assert "resize2d_tpat" not in compiled.cuda_source


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_symbolic_batch_matches_onnxruntime_at_two_sizes(mode):
    """A dynamic batch keeps TPAT's lowering (the plane groups are a run-time count): the same
    arithmetic on the CPU matches ONNX Runtime at two batch sizes, and the CUDA kernel's grid follows N."""
    model = resize_model(mode, "half_pixel", "round_prefer_floor", ("N", 3, 6, 5), (12, 15), scales=[1.0, 1.0, 2.0, 3.0])
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 3, 6, 5)).astype(np.float32)
        got, want = run_cpu(model, [x]), run_ort(model, [x])
        assert got.shape == want.shape == (n, 3, 12, 15)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    compiled, plan = _cuda(model)
    assert list(compiled.device_funcs) == ["resize2d_tpat_kernel"]
    grids = [[str(g) for g in st.grid] for st in plan.steps if hasattr(st, "grid")]
    assert len(grids) == 1 and "N" in grids[0][1], grids
