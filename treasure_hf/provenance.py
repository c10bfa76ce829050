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
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", str(here)],
                           cwd=here, capture_output=True, text=True, timeout=5)
    return sha + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def creator() -> str:
    return f"treasure_hf {__version__}"
