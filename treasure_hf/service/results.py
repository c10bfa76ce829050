"""A job's result: a manifest of its files (path, bytes, SHA-256), made once the result is
complete, and the checks that what is served is still exactly that."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..provenance import file_sha256 as sha256_of
from .problems import Conflict, NotFound


def manifest(result: Path) -> dict[str, Any]:
    """``{"kind": "file" | "directory", "name", "bytes", "files": [{"path", "bytes", "sha256"}]}``;
    paths are relative to the result directory (a file result has one entry, its own name)."""
    result = Path(result)
    if result.is_dir():
        files = sorted(Path(d, f).relative_to(result).as_posix() for d, _, fs in os.walk(result) for f in fs)
        entries = [{"path": p, "bytes": (result / p).stat().st_size, "sha256": sha256_of(result / p)} for p in files]
        kind = "directory"
    else:
        entries = [{"path": result.name, "bytes": result.stat().st_size, "sha256": sha256_of(result)}]
        kind = "file"
    return {"kind": kind, "name": result.name, "bytes": sum(e["bytes"] for e in entries), "files": entries}


def result_path(work: Path, man: dict[str, Any]) -> Path:
    return Path(work) / man["name"]


def served_file(work: Path, man: dict[str, Any], path: str) -> Path:
    """The file ``path`` of a result: only names its manifest lists, and only while their size
    is the one recorded (a result changed or damaged since is refused, never served)."""
    entry = next((e for e in man["files"] if e["path"] == path), None)
    if entry is None:
        raise NotFound(f"the result has no file {path!r}")
    base = result_path(work, man)
    target = base if man["kind"] == "file" else base / entry["path"]
    try:
        size = target.stat().st_size
    except FileNotFoundError:
        raise Conflict(f"{path} of the result is missing from the cache: request the job again") from None
    if size != entry["bytes"]:
        raise Conflict(f"{path} of the result changed since it was written: request the job again")
    return target
