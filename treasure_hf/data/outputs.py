"""Which destinations a writer may replace.

Every output treasure_hf writes records its producer, the command that wrote it (``convert``,
``h5-to-pcdf``, ``tokenize``, ...): a directory holds :data:`MARKER`, a JSON file; an HDF5 file
carries the root attribute :data:`H5_PRODUCER_ATTR`. A writer replaces an existing destination
only when the same producer wrote it (a rerun), or when the user says ``overwrite``; anything
else, a user's own files above all, is refused before anything is touched. A destination that is
an input, lies inside one or holds one is refused always.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .. import __version__
from ..errors import OutputError
from .atomic import commit, remove, temporary_directory, write_json

logger = logging.getLogger(__name__)

MARKER = ".treasure-output.json"
"""Written into every output directory: ``{"producer": ..., "treasure_hf": version}``."""
H5_PRODUCER_ATTR = "treasure_hf_producer"
"""Root attribute of every HDF5 file treasure_hf writes: its producer."""


def write_marker(directory: str | os.PathLike, producer: str) -> None:
    """Mark ``directory`` (a temporary output, before it is swapped in) as written by ``producer``."""
    write_json(Path(directory) / MARKER, {"producer": producer, "treasure_hf": __version__})


def producer_of(path: str | os.PathLike) -> str | None:
    """The producer recorded in an output, or None (not written by treasure_hf, or unreadable)."""
    path = Path(path)
    if path.is_dir():
        try:
            return str(json.loads((path / MARKER).read_text())["producer"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    try:
        import h5py

        with h5py.File(path, "r") as f:
            value = f.attrs.get(H5_PRODUCER_ATTR)
    except (OSError, ValueError):
        return None
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_destination(
    dst: str | os.PathLike, producer: str, *, inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False
) -> None:
    """Raise :class:`OutputError` unless ``producer`` may write ``dst``: never an input, inside
    one or around one; an existing ``dst`` only if ``producer`` wrote it, it is an empty
    directory, or ``overwrite`` is given."""
    dst = Path(dst)
    where = dst.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if where == source:
            raise OutputError(dst, None, f"is the input {os.fspath(given)}: the output must be another path")
        if _within(where, source):
            raise OutputError(dst, None, f"lies inside the input {os.fspath(given)}: write the output elsewhere")
        if _within(source, where):
            raise OutputError(dst, None, f"holds the input {os.fspath(given)}: replacing it would delete the input")
    if not os.path.lexists(dst):
        if dst.parent.exists() and not dst.parent.is_dir():
            raise OutputError(dst, None, f"cannot be written: {dst.parent} is a file, not a directory")
        return
    owner = producer_of(dst)
    if owner == producer:
        logger.info("replacing %s, written by an earlier run of %s", dst, producer)
        return
    if dst.is_dir() and not dst.is_symlink() and not any(dst.iterdir()):
        return
    if overwrite:
        logger.warning("replacing %s (overwrite requested)", dst)
        return
    what = (
        f"was written by `treasure {owner}`, not by `treasure {producer}`"
        if owner
        else "exists and was not written by treasure_hf"
    )
    raise OutputError(dst, None, f"{what}: it is left untouched (pass --overwrite to replace it)")


@contextlib.contextmanager
def output_directory(
    dst: str | os.PathLike, producer: str, *, inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False
) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``dst`` to fill; when the block ends without an
    error it is marked as ``producer``'s and swapped in as ``dst`` whole, after
    :func:`check_destination` (before and again at the end); on an error it is removed."""
    dst = Path(dst)
    inputs = tuple(inputs)
    check_destination(dst, producer, inputs=inputs, overwrite=overwrite)
    tmp = temporary_directory(dst)
    try:
        yield tmp
        write_marker(tmp, producer)
        check_destination(dst, producer, inputs=inputs, overwrite=overwrite)
    except BaseException:
        remove(tmp)
        raise
    commit(tmp, dst)


def partial_dir(dst: str | os.PathLike) -> Path:
    """Where a resumable job keeps the work of an interrupted run of ``dst`` (``.NAME.partial``,
    beside it): kept when the run fails, removed once ``dst`` is complete."""
    dst = Path(dst)
    return dst.with_name(f".{dst.name}.partial")
