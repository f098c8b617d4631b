"""The kernel cache: a node generated before (same sub-model, original node, kernel prefix, arch,
TVM version and bridge sources) gets its manifest and constants back without importing TVM.

Layout: ``<cache>/<key[:2]>/<key>/{manifest.json, constants/, tuning.json, digest.json}``, written
to a temporary folder and renamed into place, so a reader never sees half an entry. A tuned
build's key also holds the state of the tuning database (``tuning.database_state``): the entry
serves while no record has been added since, and keeps the tuning figures of the build it came
from (tuning.json).

``digest.json`` holds the size and SHA-256 of every other file of the entry, written last at store
time. A restore checks the files it hands over against it: an entry whose files were changed,
truncated, removed or added since (or one without a digest, written by an older TPAT) is a
``BrokenEntry``: the caller regenerates the node and ``store`` replaces the entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import onnx

OUTPUTS = ("manifest.json", "constants")
MANIFEST = "manifest.json"
TUNING = "tuning.json"
DIGEST = "digest.json"
DIGEST_VERSION = 1
CHUNK = 1 << 20


class BrokenEntry(Exception):
    """A cache entry that cannot be trusted: ``path`` is the entry's folder, ``reason`` what is
    wrong with it, in the user's terms."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class Restored:
    """A sound entry copied into a node's folder: the manifest path there, and the tuning figures
    the entry was stored with (None for an untuned build)."""

    manifest: str
    tuning: dict[str, Any] | None


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


def _entry_files(entry: str) -> list[str]:
    """Every file of an entry but its digest, as paths relative to the entry with ``/``; raises
    BrokenEntry for anything that is not a regular file or folder (a link could point anywhere)."""
    found = []
    for folder, dirs, files in os.walk(entry):
        for name in dirs + files:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, entry).replace(os.sep, "/")
            if os.path.islink(path) or not (os.path.isdir(path) or os.path.isfile(path)):
                raise BrokenEntry(entry, f"{relative} is not a regular file")
            if name in files and relative != DIGEST:
                found.append(relative)
    return sorted(found)


def _file_digest(path: str, copy_to: str | None = None) -> dict[str, Any]:
    """Size and SHA-256 of a file, read once; with ``copy_to`` the bytes read are also written
    there, so what is checked is exactly what is handed over."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as src:
        sink = open(copy_to, "wb") if copy_to else None
        try:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                if sink is not None:
                    sink.write(chunk)
        finally:
            if sink is not None:
                sink.close()
    return {"bytes": size, "sha256": h.hexdigest()}


def _write_digest(entry: str) -> None:
    """Writes ``digest.json`` over every other file of ``entry`` (the last file a store writes)."""
    files = {name: _file_digest(os.path.join(entry, name)) for name in _entry_files(entry)}
    with open(os.path.join(entry, DIGEST), "w") as f:
        json.dump({"version": DIGEST_VERSION, "files": files}, f, indent=1, sort_keys=True)


def _read_digest(entry: str) -> dict[str, dict[str, Any]]:
    """The files an entry's digest lists, or BrokenEntry saying why there is no usable digest."""
    path = os.path.join(entry, DIGEST)
    if not os.path.lexists(path):
        raise BrokenEntry(entry, f"it has no {DIGEST} (an entry written by an older TPAT, or one cut short)")
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise BrokenEntry(entry, f"its digest {DIGEST} is unreadable ({exc})") from exc
    files = doc.get("files") if isinstance(doc, dict) and doc.get("version") == DIGEST_VERSION else None
    if not isinstance(files, dict) or MANIFEST not in files or not all(
            isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str)
            for v in files.values()):
        raise BrokenEntry(entry, f"its digest {DIGEST} is not one this TPAT wrote")
    return files


def _clear_outputs(out_dir: str) -> None:
    """Removes what a failed restore may have copied into a node's folder."""
    shutil.rmtree(os.path.join(out_dir, "constants"), ignore_errors=True)
    try:
        os.remove(os.path.join(out_dir, MANIFEST))
    except FileNotFoundError:
        pass


def verify(entry: str) -> None:
    """Raises BrokenEntry unless every file of ``entry`` matches its digest (nothing missing,
    nothing added)."""
    expected = _read_digest(entry)
    _compare_sets(entry, expected)
    for name, want in expected.items():
        _check(entry, name, want, _file_digest(os.path.join(entry, name)))


def _compare_sets(entry: str, expected: dict[str, dict[str, Any]]) -> None:
    present = set(_entry_files(entry))
    missing = sorted(set(expected) - present)
    if missing:
        raise BrokenEntry(entry, f"{missing[0]} is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = sorted(present - set(expected))
    if extra:
        raise BrokenEntry(entry, f"{extra[0]} was not there when the entry was stored")


def _check(entry: str, name: str, want: dict[str, Any], got: dict[str, Any]) -> None:
    if got["bytes"] != want["bytes"]:
        raise BrokenEntry(entry, f"{name} holds {got['bytes']} bytes, {want['bytes']} when stored"
                          + (" (truncated)" if got["bytes"] < want["bytes"] else ""))
    if got["sha256"] != want["sha256"]:
        raise BrokenEntry(entry, f"{name} was changed since it was stored (its SHA-256 differs)")


def restore(cache_dir: str, k: str, out_dir: str) -> Restored | None:
    """Copies the entry of ``k`` into ``out_dir`` (manifest and constants), checking every byte
    copied against the entry's digest. None when there is no entry; BrokenEntry (with
    ``out_dir`` left without a manifest or constants) when there is one that cannot be trusted."""
    src = entry_dir(cache_dir, k)
    if not os.path.lexists(src):
        return None
    if os.path.islink(src) or not os.path.isdir(src):
        raise BrokenEntry(src, "it is not a folder")
    os.makedirs(out_dir, exist_ok=True)
    try:
        expected = _read_digest(src)
        _compare_sets(src, expected)
        tuning_bytes = None
        for name, want in sorted(expected.items()):
            path = os.path.join(src, name)
            if name == TUNING:
                with open(path, "rb") as f:
                    tuning_bytes = f.read()
                got = {"bytes": len(tuning_bytes), "sha256": hashlib.sha256(tuning_bytes).hexdigest()}
            else:
                target = os.path.join(out_dir, *name.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                got = _file_digest(path, copy_to=target)
            _check(src, name, want, got)
        manifest = os.path.join(out_dir, MANIFEST)
        with open(manifest, "rb") as f:
            if not isinstance(json.loads(f.read()), dict):
                raise BrokenEntry(src, f"{MANIFEST} is not a kernel manifest")
        tuning = json.loads(tuning_bytes) if tuning_bytes is not None else None
    except BrokenEntry:
        _clear_outputs(out_dir)
        raise
    except (OSError, ValueError) as exc:
        _clear_outputs(out_dir)
        raise BrokenEntry(src, f"it cannot be read ({type(exc).__name__}: {exc})") from exc
    return Restored(manifest, tuning if isinstance(tuning, dict) else None)


def store(cache_dir: str, k: str, out_dir: str, tuning: dict | None = None) -> str | None:
    """Saves ``out_dir``'s manifest and constants under ``k``, with a tuned build's figures and the
    digest of them all. A sound entry already there is kept; a broken one is replaced atomically
    (renamed away, the new one renamed in, the old one removed). Returns None, or why nothing was
    stored (never raises: a cache is optional)."""
    dst = entry_dir(cache_dir, k)
    if os.path.lexists(dst):
        try:
            verify(dst)
            return None
        except (BrokenEntry, OSError):
            pass
    parent = os.path.dirname(dst)
    tmp = trash = None
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
        for name in OUTPUTS:
            path = os.path.join(out_dir, name)
            if os.path.isdir(path):
                shutil.copytree(path, os.path.join(tmp, name))
            elif os.path.isfile(path):
                shutil.copyfile(path, os.path.join(tmp, name))
        if tuning is not None:
            with open(os.path.join(tmp, TUNING), "w") as f:
                json.dump(tuning, f)
        _write_digest(tmp)
        if os.path.lexists(dst):
            trash = tempfile.mkdtemp(prefix=".old-", dir=parent)
            os.rename(dst, os.path.join(trash, "entry"))
        try:
            os.rename(tmp, dst)
            tmp = None
        except OSError:  # another run stored it in the meantime: theirs serves as well
            pass
        return None
    except (OSError, BrokenEntry) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        for leftover in (tmp, trash):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
