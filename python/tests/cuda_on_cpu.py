"""Running a plugin's CUDA kernels on the CPU, to check the numbers of kernels TPAT writes by hand
(gemm.py) without a GPU.

g++ compiles TVM's CUDA source against a small emulation of CUDA's execution model: the threads of
a block are std::threads that meet at ``__syncthreads()`` on a std::barrier, ``__shared__`` arrays
are static (blocks run one after another, so one copy serves them all), and a generated driver runs
the plan's launches in order with the sizes evaluated here from the inputs' shapes, reading and
writing its files by bare names in the work folder (no path is ever part of the C++ text). It covers
kernels built from plain loads, stores, shared memory and barriers, and warp shuffles
(``__shfl_xor_sync``, ``__shfl_down_sync``, ``__shfl_sync``): the lanes of a warp meet on the
warp's own barrier, exchange values through a slot each, and meet again, which is what a converged
warp does (a kernel that shuffles in divergent code would deadlock here, as it is undefined on a
GPU). Other warp intrinsics (votes, matches) are refused."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import numpy as np

PRELUDE = r"""
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>
struct tpat_dim3 { unsigned x, y, z; };
thread_local tpat_dim3 threadIdx, blockIdx;
tpat_dim3 blockDim, gridDim;
static std::barrier<>* tpat_block_barrier;
#define __syncthreads() tpat_block_barrier->arrive_and_wait()
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__ __restrict
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
using std::max;
using std::min;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __fdividef(float x, float y) { return x / y; }
// Warp shuffles: the 32 lanes of a warp (fewer in a block's last, partial warp) meet on its
// barrier around an exchange through one 8-byte slot per thread.
static std::vector<std::barrier<>*> tpat_warp_barriers;
static unsigned long long tpat_shuffle_slots[1024];
inline unsigned tpat_thread_index() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
template <class T> T tpat_exchange(T value, int source_lane) {
    static_assert(sizeof(T) <= 8, "a shuffled value fits a slot");
    unsigned t = tpat_thread_index(), warp = t / 32;
    std::memcpy(&tpat_shuffle_slots[t], &value, sizeof(T));
    tpat_warp_barriers[warp]->arrive_and_wait();
    T other;
    std::memcpy(&other, &tpat_shuffle_slots[warp * 32 + source_lane], sizeof(T));
    tpat_warp_barriers[warp]->arrive_and_wait();
    return other;
}
template <class T> T __shfl_xor_sync(unsigned, T value, int mask, int width = 32) {
    int lane = tpat_thread_index() % 32, base = lane / width * width, src = lane ^ mask;
    return tpat_exchange(value, src >= base + width ? lane : src);
}
template <class T> T __shfl_down_sync(unsigned, T value, unsigned delta, int width = 32) {
    int lane = tpat_thread_index() % 32, base = lane / width * width, src = lane + (int)delta;
    return tpat_exchange(value, src >= base + width ? lane : src);
}
template <class T> T __shfl_sync(unsigned, T value, int src_lane, int width = 32) {
    int lane = tpat_thread_index() % 32, base = lane / width * width;
    return tpat_exchange(value, base + src_lane % width);
}
// A kernel's pointer argument, whatever its element type.
struct tpat_any_ptr { void* p; template <class T> operator T*() const { return static_cast<T*>(p); } };
"""


def compiler() -> str | None:
    """A C++20 compiler (std::barrier), or None."""
    return shutil.which("g++") or shutil.which("clang++")


def _literal(value: int, dtype: str) -> str:
    return f"(int64_t){value}LL" if dtype == "int64" else f"(int32_t){value}"


def unemulated(source: str) -> list[str]:
    """The warp intrinsics of ``source`` this emulation does not run (shuffles it does)."""
    return sorted(set(re.findall(r"__(?:ballot|any|all|match\w*|activemask|reduce\w*)_sync", source)))


def run_plan_on_cpu(compiled: Any, plan: Any, arrays: list[np.ndarray], workdir: str) -> list[np.ndarray]:
    """The plan's outputs for ``arrays`` (its inputs), computed by its CUDA kernels on the CPU."""
    from tpat_bridge.expr import evaluate
    from tpat_bridge.plan import BufferRef, LaunchStep, ScalarArg

    source = compiled.cuda_source
    refused = unemulated(source)
    if refused:
        raise ValueError(f"warp intrinsics {refused} are not emulated")
    values = {s.name: int(arrays[s.input].shape[s.dim]) for s in plan.symbols}
    os.makedirs(os.path.join(workdir, "include"), exist_ok=True)
    with open(os.path.join(workdir, "include", "cuda.h"), "w") as f:
        f.write("// the driver API is not used by the kernels\n")
    with open(os.path.join(workdir, "kernels.cu"), "w") as f:
        # `static alignas(64) float` puts an attribute amid the specifiers, which g++ refuses
        f.write(re.sub(r"__shared__\s+(alignas\(\d+\))\s+", r"\1 static ", source))
    out_shapes = [[evaluate(d, values) for d in spec.shape] for spec in plan.outputs]
    out_dtypes = [np.dtype(spec.dtype) for spec in plan.outputs]
    lines = [PRELUDE, '#include "kernels.cu"', "static std::vector<char> tpat_read(const char* path, size_t n) {",
             "    std::vector<char> data(n); FILE* f = std::fopen(path, \"rb\");",
             "    if (n && std::fread(data.data(), 1, n, f) != n) std::abort(); std::fclose(f); return data; }",
             "int main() {"]
    for k, a in enumerate(arrays):
        np.ascontiguousarray(a).tofile(os.path.join(workdir, f"in{k}.bin"))
        lines.append(f'    auto in{k} = tpat_read("in{k}.bin", {a.nbytes});')
    for k, c in enumerate(plan.constants):
        np.ascontiguousarray(c.data).tofile(os.path.join(workdir, f"c{k}.bin"))
        lines.append(f'    auto constant{k} = tpat_read("c{k}.bin", {c.data.nbytes});')
    for k, (shape, dtype) in enumerate(zip(out_shapes, out_dtypes)):
        lines.append(f"    std::vector<char> out{k}({int(np.prod(shape)) * dtype.itemsize}, (char)0xFF);")
    for k, region in enumerate(plan.regions):
        lines.append(f"    std::vector<char> workspace{k}({evaluate(region, values)});")
    for step in plan.steps:
        if not isinstance(step, LaunchStep):
            raise ValueError(f"{type(step).__name__} steps are not emulated")
        grid = [evaluate(d, values) for d in step.grid]
        block = [evaluate(d, values) for d in step.block]
        args = []
        for arg in step.args:
            if isinstance(arg, ScalarArg):
                args.append(_literal(evaluate(arg.value, values), arg.dtype))
            elif isinstance(arg, BufferRef):
                name = {"input": "in", "output": "out", "constant": "constant", "workspace": "workspace"}[arg.kind]
                args.append(f"tpat_any_ptr{{{name}{arg.index}.data() + {evaluate(arg.byte_offset, values)}}}")
            else:
                raise ValueError(f"argument {arg} is not emulated")
        threads = block[0] * block[1] * block[2]
        lines += [
            f"    gridDim = {{{grid[0]}u, {grid[1]}u, {grid[2]}u}}; blockDim = {{{block[0]}u, {block[1]}u, {block[2]}u}};",
            f"    for (unsigned bz = 0; bz < {grid[2]}u; ++bz) for (unsigned by = 0; by < {grid[1]}u; ++by)",
            f"    for (unsigned bx = 0; bx < {grid[0]}u; ++bx) {{",
            f"        std::barrier<> barrier({threads}); tpat_block_barrier = &barrier;",
            "        std::vector<std::unique_ptr<std::barrier<>>> warps;",
            f"        for (unsigned w = 0; w < {(threads + 31) // 32}u; ++w)",
            f"            warps.push_back(std::make_unique<std::barrier<>>(std::min(32u, {threads}u - w * 32)));",
            "        tpat_warp_barriers.clear(); for (auto& w : warps) tpat_warp_barriers.push_back(w.get());",
            "        std::vector<std::thread> threads;",
            f"        for (unsigned t = 0; t < {threads}u; ++t) threads.emplace_back([&, t] {{",
            f"            threadIdx = {{t % {block[0]}u, t / {block[0]}u % {block[1]}u, t / {block[0] * block[1]}u}};",
            "            blockIdx = {bx, by, bz};",
            f"            {step.kernel}({', '.join(args)});",
            "        });",
            "        for (auto& th : threads) th.join();",
            "    }",
        ]
    for k in range(len(out_shapes)):
        lines.append(f'    {{ FILE* f = std::fopen("out{k}.bin", "wb"); std::fwrite(out{k}.data(), 1, out{k}.size(), f); std::fclose(f); }}')
    lines += ["    return 0;", "}"]
    with open(os.path.join(workdir, "main.cpp"), "w") as f:
        f.write("\n".join(lines) + "\n")
    binary = os.path.join(workdir, "run")
    subprocess.run([compiler(), "-std=c++20", "-O1", "-pthread", "-fno-strict-aliasing", "-w",
                    "-I", os.path.join(workdir, "include"), "-I", workdir, os.path.join(workdir, "main.cpp"),
                    "-o", binary], check=True, capture_output=True, text=True)
    subprocess.run([binary], cwd=workdir, check=True, capture_output=True, timeout=600)
    return [np.fromfile(os.path.join(workdir, f"out{k}.bin"), dtype=dt).reshape(shape)
            for k, (shape, dt) in enumerate(zip(out_shapes, out_dtypes))]
