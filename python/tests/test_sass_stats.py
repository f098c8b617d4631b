"""scripts/sass-stats.py, which reads what nvcc makes of a kernel (no GPU needed): its figures for a
small kernel whose code is known (a loop, a float division's slow path, one load and one store in
the loop and after it), and a clear error for a source that does not compile."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sass-stats.py"


def _script():
    spec = importlib.util.spec_from_file_location("sass_stats", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sass_stats():
    module = _script()
    for env, name in (("NVCC", "nvcc"), ("NVDISASM", "nvdisasm")):
        if not Path(module._tool(env, name)).is_file():
            pytest.skip(f"{name} not in .venv (scripts/requirements.txt)")
    return module


KERNEL = r"""
extern "C" __global__ void row_sum(const float* __restrict__ x, float* __restrict__ y, int n) {
    float acc = 0.0f;
    for (int k = 0; k < n; ++k) acc += x[blockIdx.x * n + k];
    y[blockIdx.x] = 1.0f / acc;
}
extern "C" __global__ void copy(const float* __restrict__ x, float* __restrict__ y) {
    y[threadIdx.x] = x[threadIdx.x];
}
"""


def test_the_figures_of_a_known_kernel(tmp_path, sass_stats):
    source = tmp_path / "k_kernels.cu"
    source.write_text(KERNEL)
    stats = {k.name: k for k in sass_stats.kernel_stats(str(source), "sm_90")}
    assert set(stats) == {"row_sum", "copy"}
    row_sum, copy = stats["row_sum"], stats["copy"]
    assert row_sum.loops and all(n > 1 for n in row_sum.loops)   # the k loop (unrolled or not)
    assert row_sum.calls == 1 and row_sum.branches >= 2           # the division's slow path; the loop
    assert row_sum.global_loads >= 1 and row_sum.global_stores == 1
    assert row_sum.registers > 0 and row_sum.spilled_bytes == 0
    assert copy.loops == [] and copy.calls == 0 and copy.global_loads == 1 and copy.global_stores == 1
    assert copy.instructions < row_sum.instructions


def test_a_folder_names_its_kernel_sources_and_a_bad_source_says_so(tmp_path, sass_stats):
    plugin = tmp_path / "plugins" / "p"
    plugin.mkdir(parents=True)
    (plugin / "p_kernels.cu").write_text("this is not CUDA")
    assert sass_stats.sources(str(tmp_path)) == [str(plugin / "p_kernels.cu")]
    assert sass_stats.sources(str(plugin)) == [str(plugin / "p_kernels.cu")]
    with pytest.raises(RuntimeError, match="nvcc failed"):
        sass_stats.kernel_stats(str(plugin / "p_kernels.cu"), "sm_90")
    with pytest.raises(RuntimeError, match="no \\*_kernels.cu"):
        sass_stats.sources(str(tmp_path / "plugins"))
