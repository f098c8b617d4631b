"""A tiny C++ launcher generated from a manifest alone (proof that the manifest is complete).

``launcher_source(manifest)`` is the manifest's CUDA source followed by two C functions:

    int64_t <prefix>workspace_size(const int64_t* const* input_dims);
    int <prefix>enqueue(const void* const* inputs, void* const* outputs,
                        const void* const* constants, void* workspace,
                        const int64_t* const* input_dims, cudaStream_t stream);

``check_main(manifest, reference)`` adds a ``main`` that loads reference inputs and constants,
runs enqueue on the GPU and compares with the reference outputs (for a GPU machine).
"""

from __future__ import annotations

import os
from typing import Any

PRELUDE = """
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
static inline int64_t tpat_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b; return (q * b != a && ((a < 0) != (b < 0))) ? q - 1 : q; }
static inline int64_t tpat_floormod(int64_t a, int64_t b) { return a - tpat_floordiv(a, b) * b; }
static inline int64_t tpat_ceildiv(int64_t a, int64_t b) { return -tpat_floordiv(-a, b); }
static inline int64_t tpat_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t tpat_max(int64_t a, int64_t b) { return a > b ? a : b; }
"""


def _buffer(b: dict[str, Any], regions: list[dict[str, Any]]) -> str:
    off = b.get("byteOffset", {"cxx": "0"})["cxx"]
    kind, i = b["kind"], b["index"]
    if kind == "workspace":
        base = f"(ws + {regions[i]['offset']['cxx']})"
    else:
        base = f"((char*){kind}s[{i}])"
    return f"({base} + {off})"


def _symbols(m: dict[str, Any]) -> str:
    return "".join(f"  const int64_t {s['name']} = input_dims[{s['input']}][{s['dim']}]; (void){s['name']};\n"
                   for s in m["symbols"])


def launcher_source(m: dict[str, Any]) -> str:
    """CUDA source + host launcher for a manifest."""
    p = m["kernelPrefix"]
    kernels = {k["name"]: k for k in m["kernels"]}
    regions = m["workspace"]["regions"]
    body = []
    for st in m["launches"]:
        if st["kind"] == "copy":
            body.append(f"  if (cudaMemcpyAsync({_buffer(st['dst'], regions)}, {_buffer(st['src'], regions)}, "
                        f"(size_t)({st['bytes']['cxx']}), cudaMemcpyDeviceToDevice, stream) != cudaSuccess) return 1;")
            continue
        if st["kind"] == "memset":
            body.append(f"  cudaMemsetAsync({_buffer(st['dst'], regions)}, {st['value']}, (size_t)({st['bytes']['cxx']}), stream);")
            continue
        k = kernels[st["kernel"]]
        args = []
        for a, prm in zip(st["args"], k["params"]):
            if a["kind"] == "buffer":
                ctype = prm["ctype"].replace("__restrict__", "").strip()
                args.append(f"({ctype}){_buffer(a['buffer'], regions)}")
            else:
                args.append(f"({prm['ctype']})({a['value']['cxx']})")
        g = ", ".join(f"(unsigned)({e['cxx']})" for e in st["grid"])
        b = ", ".join(f"(unsigned)({e['cxx']})" for e in st["block"])
        body.append(f"  {{ dim3 g({g}), b({b});\n    {st['kernel']}<<<g, b, (size_t)({st['sharedMemBytes']['cxx']}), stream>>>"
                    f"({', '.join(args)}); }}")
    return (m["cudaSource"] + PRELUDE
            + f'extern "C" int64_t {p}workspace_size(const int64_t* const* input_dims) {{\n'
            + _symbols(m) + f"  return {m['workspace']['totalBytes']['cxx']};\n}}\n"
            + f'extern "C" int {p}enqueue(const void* const* inputs, void* const* outputs, '
              f"const void* const* constants, void* workspace, const int64_t* const* input_dims, cudaStream_t stream) {{\n"
            + _symbols(m) + "  char* ws = (char*)workspace; (void)ws; (void)inputs; (void)constants;\n"
            + "\n".join(body) + "\n  return (int)cudaGetLastError();\n}\n")


_CTYPES = {"float32": "float", "float64": "double", "int64": "int64_t", "int32": "int32_t", "int8": "int8_t",
           "uint8": "uint8_t", "bool": "bool", "int16": "int16_t", "float16": "uint16_t"}


def check_main(m: dict[str, Any], ref: dict[str, Any], manifest_dir: str, ref_dir: str) -> str:
    """A ``main`` that runs the manifest's launches on reference data and compares outputs; file
    paths are relative to ``argv[1]`` (default ".")."""
    p = m["kernelPrefix"]
    lines = ["int main(int argc, char** argv) {", "  std::vector<void*> in, out, cst; std::vector<std::vector<int64_t>> dims;",
             "  const char* base = argc > 1 ? argv[1] : \".\";",
             "  auto load = [base](const char* rel, size_t n) { char path[4096]; snprintf(path, sizeof path, \"%s/%s\", base, rel);",
             "    void* h = malloc(n ? n : 1); FILE* f = fopen(path, \"rb\");",
             "    if (n && (!f || fread(h, 1, n, f) != n)) { printf(\"cannot read %s\\n\", path); exit(2); } if (f) fclose(f); return h; };"]
    for t in ref["inputs"]:
        path = os.path.join(ref_dir, t["file"])
        lines += [f"  {{ void* h = load(\"{path}\", {t['bytes']}); void* d; cudaMalloc(&d, {max(t['bytes'], 1)});",
                  f"    cudaMemcpy(d, h, {t['bytes']}, cudaMemcpyHostToDevice); in.push_back(d);",
                  f"    dims.push_back({{{', '.join(str(x) for x in t['shape'])}}}); }}"]
    for c in m["constants"]:
        path = os.path.join(manifest_dir, c["file"])
        lines += [f"  {{ void* h = load(\"{path}\", {c['bytes']}); void* d; cudaMalloc(&d, {max(c['bytes'], 1)});",
                  f"    cudaMemcpy(d, h, {c['bytes']}, cudaMemcpyHostToDevice); cst.push_back(d); }}"]
    for t in ref["outputs"]:
        lines += [f"  {{ void* d; cudaMalloc(&d, {max(t['bytes'], 1)}); cudaMemset(d, 0xff, {t['bytes']}); out.push_back(d); }}"]
    lines += ["  std::vector<const int64_t*> dp; for (auto& v : dims) dp.push_back(v.data());",
              f"  int64_t wsb = {p}workspace_size(dp.data()); void* ws = nullptr; cudaMalloc(&ws, wsb > 0 ? wsb : 1);",
              "  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);",
              f"  int rc = {p}enqueue((const void* const*)in.data(), out.data(), (const void* const*)cst.data(), ws, dp.data(), 0);",
              "  cudaError_t err = cudaDeviceSynchronize();",
              "  if (rc || err != cudaSuccess) { printf(\"FAIL launch rc=%d %s\\n\", rc, cudaGetErrorString(err)); return 1; }",
              "  cudaEventRecord(e0); for (int r = 0; r < 10; ++r)",
              f"    {p}enqueue((const void* const*)in.data(), out.data(), (const void* const*)cst.data(), ws, dp.data(), 0);",
              "  cudaEventRecord(e1); cudaEventSynchronize(e1); float ms = 0; cudaEventElapsedTime(&ms, e0, e1);",
              "  int bad = 0;"]
    for j, t in enumerate(ref["outputs"]):
        ct = _CTYPES[t["dtype"]]
        n = 1
        for d in t["shape"]:
            n *= d
        path = os.path.join(ref_dir, t["file"])
        exact = t["dtype"] not in ("float32", "float64")
        lines += [f"  {{ {ct}* want = ({ct}*)load(\"{path}\", {t['bytes']}); {ct}* got = ({ct}*)malloc({max(t['bytes'], 1)});",
                  f"    cudaMemcpy(got, out[{j}], {t['bytes']}, cudaMemcpyDeviceToHost); long long wrong = 0; double maxerr = 0;",
                  f"    for (long long i = 0; i < {n}LL; ++i) {{"]
        if exact:
            lines += ["      if (got[i] != want[i]) ++wrong; }"]
        else:
            lines += ["      double w = want[i], g = got[i]; if (std::isnan(w) && std::isnan(g)) continue;",
                      "      double e = fabs(w - g); if (e > maxerr) maxerr = e; if (!(e <= 1e-3 + 1e-3 * fabs(w))) ++wrong; }"]
        lines += [f"    printf(\"output {j}: %lld of {n} wrong, max abs err %g\\n\", wrong, maxerr); bad += wrong != 0; }}"]
    lines += ["  printf(\"%s %.4f ms/run\\n\", bad ? \"FAIL\" : \"PASS\", ms / 10); return bad ? 1 : 0;", "}"]
    return "\n".join(lines) + "\n"
