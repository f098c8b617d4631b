"""The kernel cache: a node generated before (same sub-model, original node, kernel prefix, arch,
TVM version and bridge sources) gets its manifest and constants back without importing TVM.

Layout: ``<cache>/<key[:2]>/<key>/{manifest.json, constants/, tuning.json}``, written to a
temporary folder and renamed into place, so a reader never sees half an entry. A tuned build's key
also holds the state of the tuning database (``tuning.database_state``): the entry serves while no
record has been added since, and keeps the tuning figures of the build it came from (tuning.json).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
import onnx

OUTPUTS = ("manifest.json", "constants")


@lru_cache(maxsize=1)
def bridge_digest() -> str:
    """Hash of the bridge's own sources: a changed lowering invalidates every entry."""
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            h.update(name.encode())
            with open(os.path.join(here, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def key(model_path: str, node: dict[str, str] | None, kernel_prefix: str, arch: str, tvm_version: str,
        tuning_state: str = "") -> str:
    """The cache key of one node request: its sub-model (and external data), identity and target,
    and for a tuned build the tuning database's state."""
    h = hashlib.sha256()
    for part in (bridge_digest(), arch, tvm_version, kernel_prefix, json.dumps(node or {}, sort_keys=True),
                 tuning_state):
        h.update(part.encode())
        h.update(b"\0")
    with open(model_path, "rb") as f:
        h.update(f.read())
    model = onnx.load(model_path, load_external_data=False)
    base = os.path.dirname(os.path.abspath(model_path))
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                with open(os.path.join(base, entry.value), "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def entry_dir(cache_dir: str, k: str) -> str:
    """Where the entry of key ``k`` lies."""
    return os.path.join(cache_dir, k[:2], k)


def restore(cache_dir: str, k: str, out_dir: str) -> str | None:
    """Copies a cached entry's manifest and constants into ``out_dir``; the manifest path, or None
    on a miss."""
    src = entry_dir(cache_dir, k)
    if not os.path.isfile(os.path.join(src, "manifest.json")):
        return None
    os.makedirs(out_dir, exist_ok=True)
    constants = os.path.join(src, "constants")
    if os.path.isdir(constants):
        shutil.copytree(constants, os.path.join(out_dir, "constants"), dirs_exist_ok=True)
    shutil.copyfile(os.path.join(src, "manifest.json"), os.path.join(out_dir, "manifest.json"))
    return os.path.join(out_dir, "manifest.json")


def tuning_stats(cache_dir: str, k: str) -> dict | None:
    """The tuning figures saved with a tuned entry (None for an untuned one or an unreadable file)."""
    try:
        with open(os.path.join(entry_dir(cache_dir, k), "tuning.json")) as f:
            stats = json.load(f)
        return stats if isinstance(stats, dict) else None
    except (OSError, ValueError):
        return None


def store(cache_dir: str, k: str, out_dir: str, tuning: dict | None = None) -> None:
    """Saves ``out_dir``'s manifest and constants under ``k``, with a tuned build's figures (never
    raises: a cache is optional)."""
    dst = entry_dir(cache_dir, k)
    if os.path.isdir(dst):
        return
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=os.path.dirname(dst))
        for name in OUTPUTS:
            path = os.path.join(out_dir, name)
            if os.path.isdir(path):
                shutil.copytree(path, os.path.join(tmp, name))
            elif os.path.isfile(path):
                shutil.copyfile(path, os.path.join(tmp, name))
        if tuning is not None:
            with open(os.path.join(tmp, "tuning.json"), "w") as f:
                json.dump(tuning, f)
        try:
            os.rename(tmp, dst)
        except OSError:  # another run stored it first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass
