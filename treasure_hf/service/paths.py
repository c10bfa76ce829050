"""Every path the service touches is checked against its root: no absolute paths, no ``..``,
no symlink that leads out of the root, nothing inside the service's own state folder."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from ..errors import AccessError
from .settings import STATE_DIR

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""A registered name: one path component, no leading dot."""


def check_name(name: str, what: str) -> str:
    """``name`` when it is a valid registered name; :class:`AccessError` otherwise."""
    if not isinstance(name, str) or not NAME.match(name) or ".." in name:
        raise AccessError(None, what, f"{name!r} is not a valid name (letters, digits, . _ -; no leading dot, no ..)")
    return name


def inside_root(root: Path, relative: str, what: str) -> Path:
    """``root / relative`` with symlinks resolved, refused when ``relative`` is absolute, has a
    ``..`` part, or resolves outside ``root`` or into its state folder."""
    root = Path(root).resolve()
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise AccessError(None, what, "must be a non-empty path relative to the root")
    rel = PurePosixPath(relative.replace(os.sep, "/"))
    if rel.is_absolute() or Path(relative).is_absolute():
        raise AccessError(relative, what, "is absolute: give a path relative to the served root")
    if ".." in rel.parts:
        raise AccessError(relative, what, "has a '..' part: paths must stay inside the served root")
    real = (root / rel).resolve()
    if real != root and root not in real.parents:
        raise AccessError(relative, what, "leads out of the served root (a symlink to the outside?)")
    state = root / STATE_DIR
    if real == state or state in real.parents:
        raise AccessError(relative, what, f"lies in the service's own folder {STATE_DIR}")
    return real


def relative_to_root(root: Path, path: Path) -> str:
    """``path`` (inside the root) as the root-relative POSIX path shown to users."""
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
