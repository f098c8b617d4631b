"""Failure reasons in the user's terms, TVM's words kept after them."""

from __future__ import annotations

import pytest

from tpat_bridge.errors import BridgeError, explain


@pytest.mark.parametrize(("tvm", "expected"), [
    ("Resize: TVM's ONNX frontend refused Resize: ValueError: Type <class 'tvm.ir.expr.Var'> for size is currently unsupported.",
     "its 'size' input is computed at run time"),
    ("NonZero: the plan uses the Relax op relax.tensor_to_shape", "a data-dependent shape"),
    ("TopK: size 'n' is not defined by any input dim (data-dependent shape)", "a data-dependent shape"),
    ("CumSum: cumsum: host allocation in scope local", "per-thread scratch array"),
    ("Slice: TVM could not compile Slice: ValueError: Check failed: ... Literal value 9223372036854775807 exceeds range of int32",
     "INT64's extreme value"),
    ("Tile: TVM's ONNX frontend refused Tile: AssertionError", "internal check without a message"),
])
def test_known_tvm_messages_are_explained(tvm: str, expected: str) -> None:
    text = explain(tvm)
    assert expected in text
    assert text.endswith(f"(TVM: {tvm})")
    assert "leave the node native" in text


def test_other_messages_stay_as_they_are() -> None:
    assert explain("Gather: index out of range in the plan") == "Gather: index out of range in the plan"
    error = BridgeError("unsupported", "two\nlines")
    assert error.message == "two lines"
