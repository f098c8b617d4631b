"""Small helpers of the launch plan (no TVM needed)."""

from __future__ import annotations

import pytest

from tpat_bridge.plan import dtype_bytes


@pytest.mark.parametrize("dtype,size", [
    ("bool", 1), ("int8", 1), ("uint8", 1), ("float16", 2), ("bfloat16", 2), ("float32", 4), ("int64", 8),
    ("float64", 8), ("int8x4", 1),
    # The narrow floats: their bits come before the "_" (a crash of the bridge before).
    ("float8_e4m3fn", 1), ("float8_e5m2", 1), ("float8_e8m0fnu", 1), ("float4_e2m1fn", 1),
])
def test_dtype_bytes(dtype: str, size: int) -> None:
    assert dtype_bytes(dtype) == size


def test_dtype_bytes_rejects_unknown() -> None:
    with pytest.raises(ValueError):
        dtype_bytes("handle")


def test_manifest_dtypes() -> None:
    from tpat_bridge.errors import BridgeError
    from tpat_bridge.plan import check_manifest_dtype

    check_manifest_dtype("input", 0, "float32")
    check_manifest_dtype("output", 1, "bool")
    with pytest.raises(BridgeError) as info:
        check_manifest_dtype("output", 0, "float8_e4m3fn")
    assert info.value.error_class == "dtype" and "float8_e4m3fn" in info.value.message
