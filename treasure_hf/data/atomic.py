"""Write to a temporary sibling, swap it in whole when complete: a failure never leaves a partial
output, and a reader never sees a mix of an old and a new one.

Temporary names carry the host and process that made them (``.NAME.tmp-HOST-PID-XXXXXXXX``), so
the next run that writes ``NAME`` removes those a killed run left behind (their process is gone)
and says so in the log. Directories are swapped in one ``renameat2(RENAME_EXCHANGE)`` on Linux;
elsewhere the old output is first moved aside (``.NAME.old-...``), and a run killed in between
is repaired by the next one.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import errno
import json
import logging
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputError

logger = logging.getLogger(__name__)

_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?:(?P<host>.+)-)?(?P<pid>\d+)-[0-9a-f]{8}$")


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A fresh name beside ``path`` (same directory, so the final rename is atomic). Temporaries of
    ``path`` left by killed runs are removed first."""
    path = Path(path)
    remove_leftovers(path)
    return _sibling(path, "tmp")


def temporary_directory(path: str | os.PathLike) -> Path:
    """:func:`temporary_sibling` of ``path``, created as a directory; an :class:`OutputError`
    naming ``path`` where its folder cannot be written (read-only, or a file)."""
    tmp = temporary_sibling(path)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise unwritable(path, exc) from None
    return tmp


def unwritable(path: str | os.PathLike, exc: OSError) -> OutputError:
    """The error of an output that cannot be written, naming the output (not its temporary)."""
    return OutputError(path, None, f"cannot be written: {exc.strerror or exc}")


def _alive(host: str | None, pid: int) -> bool:
    if host is not None and host != _HOST:
        return True  # another machine's process (a shared file system): not ours to judge
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``path`` whose process is gone, and put back an old output that a
    run killed in the middle of a swap had moved aside; returns what was removed."""
    path = Path(path)
    parent = path.parent
    removed: list[Path] = []
    try:
        entries = [e.name for e in os.scandir(parent) if e.name.startswith(f".{path.name}.")]
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for name in entries:
        m = _LEFTOVER.match(name)
        if m is None or m["name"] != path.name or _alive(m["host"], int(m["pid"])):
            continue
        leftover = parent / name
        if m["kind"] == "old" and not os.path.lexists(path):
            os.replace(leftover, path)
            logger.warning("put back %s: a run killed while replacing it had moved it to %s", path, leftover)
            continue
        remove(leftover)
        removed.append(leftover)
        logger.warning("removed %s, left by a killed run (process %s)", leftover, m["pid"])
    return removed


def remove(path: str | os.PathLike) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def follow_umask(path: str | os.PathLike) -> None:
    """Give the files under ``path`` (or the file) the mode the umask gives new files: some
    writers (safetensors) create theirs readable by their owner alone."""
    path = Path(path)
    mode = 0o666 & ~_UMASK
    files = [path] if path.is_file() else [Path(d) / f for d, _, fs in os.walk(path) for f in fs]
    for f in files:
        if not f.is_symlink() and (f.stat().st_mode & 0o777) != mode:
            os.chmod(f, mode)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def commit(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move a finished temporary output to its final name in one step, replacing an older output
    (callers check first that the older output may be replaced: :mod:`.outputs`)."""
    tmp, final = Path(tmp), Path(final)
    follow_umask(tmp)
    final_is_dir = final.is_dir() and not final.is_symlink()
    if not os.path.lexists(final) or (not final_is_dir and not tmp.is_dir()):
        os.replace(tmp, final)  # nothing there yet, or a file over a file: rename(2) is atomic
        return
    if _exchange(tmp, final):
        remove(tmp)  # now the old output
        return
    old = _sibling(final, "old")
    os.replace(final, old)
    os.replace(tmp, final)
    remove(old)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes ``path``, on error it is deleted."""
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(final, exc) from None
    tmp = temporary_sibling(final)
    try:
        yield tmp
    except BaseException:
        remove(tmp)
        raise
    commit(tmp, final)


def write_json(
    path: str | os.PathLike, obj: Any, *, sort_keys: bool = True, default: Any = None, allow_nan: bool = True
) -> Path:
    """``obj`` as indented JSON at ``path``, through a temporary sibling swapped in whole (the one
    JSON writer of the package); ``default`` converts what json cannot (e.g. ``str``)."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=sort_keys, default=default, allow_nan=allow_nan))
    return Path(path)


class AtomicWriter(abc.ABC):
    """Context-manager protocol of the writers: :meth:`close` (finish and rename) on success,
    :meth:`abort` (leave nothing behind) on error."""

    @abc.abstractmethod
    def close(self) -> Path:
        """Finish the output and move it to its final name."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Remove the temporary output."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
