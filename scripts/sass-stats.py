#!/usr/bin/env python3
"""What nvcc makes of generated kernels, without a GPU: per kernel, ptxas's registers and spilled
bytes, and from the SASS the instructions, branches, calls, global loads and stores, and the
instructions of its innermost loops. It measures code, not time, and counts every path: a call is a
slow path that runs only where its case arises (a float division by a denormal, a 64-bit integer
division past 2^32: below that nvcc branches to an inline 32-bit one), and a loop's count holds
all its branches. It is for comparing a run-time-size kernel with its static twin while no GPU is
at hand (what a GPU measured is in docs/benchmarks.md).

    scripts/sass-stats.py [--arch sm_90] LABEL=PATH [LABEL=PATH ...]

PATH is a kernel source (.cu), a plugin folder (its *_kernels.cu) or a `tpat generate` output folder
(every plugin's). nvcc and nvdisasm come from .venv (scripts/requirements.txt) unless NVCC or
NVDISASM name others. Prints a markdown table; exit code 1 if a source does not compile.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(env: str, name: str) -> str:
    """The tool named by ``env``, else the CUDA wheel's in .venv, else ``name`` from PATH."""
    if os.environ.get(env):
        return os.environ[env]
    found = sorted(glob.glob(os.path.join(ROOT, ".venv/lib/python3*/site-packages/nvidia/cu13/bin", name)))
    return found[-1] if found else name


@dataclass
class KernelStats:
    """One kernel's figures (see the module docstring)."""

    name: str
    registers: int
    spilled_bytes: int
    instructions: int
    branches: int
    calls: int
    global_loads: int
    global_stores: int
    loops: list[int]


_PTXAS = re.compile(r"Function properties for (\S+)\n\s*\d+ bytes stack frame, (\d+) bytes spill stores, "
                    r"(\d+) bytes spill loads\n[^\n]*Used (\d+) registers")
_INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_BRANCH_TARGET = re.compile(r"\bBRA\b[^`]*`\((\.L_x_\d+)\)")


@dataclass
class SassFunction:
    """One kernel's SASS: (address, instruction, the label a branch goes to or None), and each
    label's address (that of the instruction after it)."""

    code: list[tuple[int, str, str | None]]
    labels: dict[str, int]


def parse_listing(listing: str) -> dict[str, SassFunction]:
    """``nvdisasm -c``'s listing, per kernel (NOPs left out)."""
    functions: dict[str, SassFunction] = {}
    current, pending = None, []
    for line in listing.splitlines():
        section = re.match(r"^\.text\.(\S+):", line.strip())
        if section:
            current, pending = functions.setdefault(section.group(1), SassFunction([], {})), []
            continue
        if current is None:
            continue
        label = re.match(r"^(\.L_x_\d+):", line.strip())
        if label:
            pending.append(label.group(1))
            continue
        m = _INSTRUCTION.search(line)
        if m and not m.group(2).startswith("NOP"):
            address = int(m.group(1), 16)
            current.labels.update((name, address) for name in pending)
            pending = []
            target = _BRANCH_TARGET.search(m.group(2))
            current.code.append((address, m.group(2), target.group(1) if target else None))
    return functions


def innermost_loops(function: SassFunction) -> list[int]:
    """Instructions of each innermost loop: a backward branch's range holding no other one (a
    branch to itself, the trap at a kernel's end, is no loop)."""
    ranges = [(function.labels[t], a) for a, _, t in function.code if t in function.labels and function.labels[t] < a]
    inner = [r for r in ranges if not any(o != r and r[0] <= o[0] and o[1] <= r[1] for o in ranges)]
    return sorted(sum(1 for a, _, _ in function.code if lo <= a <= hi) for lo, hi in inner)


def kernel_stats(source: str, arch: str) -> list[KernelStats]:
    """The figures of every kernel in ``source`` (compiled with -O3 for ``arch``)."""
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        done = subprocess.run([_tool("NVCC", "nvcc"), "-cubin", f"-arch={arch}", "-O3", "-w", "-Xptxas", "-v",
                               "-I", os.path.dirname(os.path.abspath(source)), source, "-o", cubin],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nvcc failed on {source}:\n{done.stderr[-2000:]}")
        listing = subprocess.run([_tool("NVDISASM", "nvdisasm"), "-c", cubin], capture_output=True, text=True,
                                 check=True).stdout
    ptxas = {m.group(1): (int(m.group(4)), int(m.group(2)) + int(m.group(3))) for m in _PTXAS.finditer(done.stderr)}
    out = []
    for name, function in parse_listing(listing).items():
        ops = [text.split()[1] if text.startswith("@") else text.split()[0] for _, text, _ in function.code]
        registers, spilled = ptxas.get(name, (-1, -1))
        out.append(KernelStats(name, registers, spilled, len(function.code),
                               sum(op.startswith("BRA") for op in ops), sum(op.startswith("CALL") for op in ops),
                               sum(op.startswith("LDG") for op in ops), sum(op.startswith("STG") for op in ops),
                               innermost_loops(function)))
    return sorted(out, key=lambda k: k.name)


def sources(path: str) -> list[str]:
    """The kernel sources PATH names (see the module docstring)."""
    if os.path.isfile(path):
        return [path]
    found = sorted(glob.glob(os.path.join(path, "*_kernels.cu")) or glob.glob(os.path.join(path, "plugins", "*", "*_kernels.cu")))
    if not found:
        raise RuntimeError(f"{path}: no *_kernels.cu here or under plugins/*/")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="sm_90")
    parser.add_argument("inputs", nargs="+", metavar="LABEL=PATH")
    args = parser.parse_args()
    print("| label | source | kernel | registers | spilled B | instructions | branches | calls | LDG | STG | innermost loops |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    try:
        for item in args.inputs:
            label, _, path = item.partition("=")
            if not path:
                parser.error(f"{item}: give LABEL=PATH")
            for source in sources(path):
                for k in kernel_stats(source, args.arch):
                    loops = " + ".join(str(n) for n in k.loops) or "-"
                    print(f"| {label} | {os.path.basename(source)} | {k.name} | {k.registers} | {k.spilled_bytes} | "
                          f"{k.instructions} | {k.branches} | {k.calls} | {k.global_loads} | {k.global_stores} | {loops} |")
    except (RuntimeError, subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"sass-stats: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
