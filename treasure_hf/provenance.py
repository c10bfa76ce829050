"""Provenance recorded in every file: creator version and the git commit of the code."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from . import __version__


@functools.lru_cache(maxsize=1)
def git_hash() -> str:
    """The commit of the treasure_hf checkout in use, or 'unknown' for an installed copy."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    sha = out.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", str(here)],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
    )
    return sha + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def creator() -> str:
    return f"treasure_hf {__version__}"


FINGERPRINT_BYTES = 1 << 20
"""Bytes hashed at each end of a file by :func:`file_fingerprint`."""


def file_fingerprint(path: str | Path) -> dict[str, int | str]:
    """What identifies an input file's version without reading it whole: its size in bytes, its
    modification time (ns) and the SHA-256 of its first and last MiB."""
    import hashlib

    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(FINGERPRINT_BYTES))
        if stat.st_size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, stat.st_size - FINGERPRINT_BYTES))
            digest.update(f.read(FINGERPRINT_BYTES))
    return {"size": int(stat.st_size), "mtime_ns": int(stat.st_mtime_ns), "sha256_ends": digest.hexdigest()}


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a whole file (hex), read ``chunk`` bytes at a time."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_change(old: dict | None, new: dict) -> str | None:
    """Why a file with fingerprint ``new`` is not the one recorded as ``old`` (None: the same)."""
    if not isinstance(old, dict):
        return "the output records no fingerprint of its input"
    changed = [k for k in ("size", "mtime_ns", "sha256_ends") if old.get(k) != new.get(k)]
    if not changed:
        return None
    what = {"size": "size", "mtime_ns": "modification time", "sha256_ends": "content"}
    return "its " + ", ".join(what[k] for k in changed) + " changed"
