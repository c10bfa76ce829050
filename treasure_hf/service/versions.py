"""Content hashes: the version of an input (every file's size, modification time and a hash of
its ends: :func:`treasure_hf.provenance.file_fingerprint`), and the key of a job, the hash of
the inputs' versions, the transformation, its parameters and the code that runs it."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..provenance import file_fingerprint, git_hash


def _files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    return sorted(Path(d) / f for d, _, fs in os.walk(path) for f in fs)


def stat_signature(path: Path) -> tuple:
    """Cheap to compute: the names, sizes and modification times of the files."""
    out = []
    for f in _files(path):
        st = f.stat()
        out.append((str(f.relative_to(path)) if f != path else "", st.st_size, st.st_mtime_ns))
    return tuple(out)


class VersionCache:
    """:func:`version_of` of paths, computed again only when a file's size or time changes."""

    def __init__(self) -> None:
        self._known: dict[Path, tuple[tuple, str]] = {}
        self._lock = threading.Lock()

    def version(self, path: Path) -> str:
        path = Path(path)
        signature = stat_signature(path)
        with self._lock:
            known = self._known.get(path)
        if known is not None and known[0] == signature:
            return known[1]
        value = version_of(path)
        with self._lock:
            self._known[path] = (signature, value)
        return value


def version_of(path: str | os.PathLike) -> str:
    """SHA-256 of the fingerprints of every file of ``path`` (a file or a directory)."""
    path = Path(path)
    prints = {(str(f.relative_to(path)) if f != path else ""): file_fingerprint(f) for f in _files(path)}
    return hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()


def job_key(transformation: str, input_version: str, params: Mapping[str, Any], resources: Mapping[str, str]) -> str:
    """The id of a job: 32 hex digits of the SHA-256 of what determines its result."""
    what = {
        "transformation": transformation,
        "input": input_version,
        "params": params,
        "resources": resources,
        "treasure_hf": __version__,
        "code": git_hash(),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]
