"""LinearAttention, TPAT's converter (linear_attention.py; TVM's frontend lacks the op and the Scan
of its function body): every node test on the CPU (TVM's llvm target), a symbolic batch and
sequence against ONNX's reference, and the CUDA build."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from on_cpu import node_test_data, node_tests, run_on_cpu
from tpat_bridge.compiler import compile_model


@pytest.fixture
def on_cpu(monkeypatch):
    from tpat_bridge import linear_attention

    monkeypatch.setattr(linear_attention, "ON_GPU", False)


def test_every_node_test_reproduces(on_cpu):
    cases = [tc for tc in node_tests("test_linear_attention") if "expanded" not in tc.name]
    assert len(cases) == 14
    for tc in cases:
        inputs, expected = node_test_data(tc)
        got = run_on_cpu(tc.model, *inputs.values())
        assert len(got) == 2, tc.name
        for g, w in zip(got, expected):
            assert g.dtype == w.dtype and g.shape == w.shape, tc.name
            tolerance = 2e-2 if w.dtype == np.float16 else 1e-5
            np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=tolerance, atol=tolerance,
                                       err_msg=tc.name)


def _model(rule: str, batch: str | int, steps: str | int, hq: int, hkv: int, d_k: int, d_v: int,
           decay_last: int | None, beta_last: int | None, past: bool) -> object:
    names = ["query", "key", "value", "past_state" if past else "", "decay" if decay_last else "", "beta" if beta_last else ""]
    while names and not names[-1]:
        names.pop()
    infos = [helper.make_tensor_value_info("query", TensorProto.FLOAT, [batch, steps, hq * d_k]),
             helper.make_tensor_value_info("key", TensorProto.FLOAT, [batch, steps, hkv * d_k]),
             helper.make_tensor_value_info("value", TensorProto.FLOAT, [batch, steps, hkv * d_v])]
    if past:
        infos.append(helper.make_tensor_value_info("past_state", TensorProto.FLOAT, [batch, hkv, d_k, d_v]))
    if decay_last:
        infos.append(helper.make_tensor_value_info("decay", TensorProto.FLOAT, [batch, steps, decay_last]))
    if beta_last:
        infos.append(helper.make_tensor_value_info("beta", TensorProto.FLOAT, [batch, steps, beta_last]))
    node = helper.make_node("LinearAttention", names, ["output", "present_state"], q_num_heads=hq, kv_num_heads=hkv,
                            update_rule=rule)
    graph = helper.make_graph([node], "g", infos, [
        helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, steps, hq * d_v]),
        helper.make_tensor_value_info("present_state", TensorProto.FLOAT, [batch, hkv, d_k, d_v])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 27)])
    model.ir_version = 11
    return model


@pytest.mark.parametrize("rule,decay_last,beta_last", [("gated_delta", 2 * 16, 2), ("delta", None, 1), ("gated", 2, None)])
def test_symbolic_batch_and_sequence_against_the_reference(on_cpu, rule, decay_last, beta_last):
    from onnx.reference import ReferenceEvaluator

    model = _model(rule, "B", "T", 4, 2, 16, 8, decay_last, beta_last, past=True)
    rng = np.random.default_rng(1)
    for b, t in ((1, 1), (3, 5)):
        feeds = {"query": rng.standard_normal((b, t, 64)), "key": rng.standard_normal((b, t, 32)) * 0.3,
                 "value": rng.standard_normal((b, t, 16)), "past_state": rng.standard_normal((b, 2, 16, 8))}
        if decay_last:
            feeds["decay"] = -rng.random((b, t, decay_last))
        if beta_last:
            feeds["beta"] = rng.random((b, t, beta_last))
        feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
        want = ReferenceEvaluator(model).run(None, feeds)
        got = run_on_cpu(model, *feeds.values())
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_builds_for_cuda():
    tc = next(tc for tc in node_tests("test_linear_attention_gated_delta_gqa"))
    assert compile_model(tc.model, "sm_90", []).device_funcs
    assert compile_model(_model("gated_delta", "B", "T", 4, 2, 16, 8, 32, 2, past=True), "sm_90", []).device_funcs
