"""Write to a temporary name, rename when complete: a failure never leaves a partial output."""

from __future__ import annotations

import abc
import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A fresh name beside ``path`` (same directory, so the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove(path: str | os.PathLike) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def commit(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move a finished temporary output to its final name, replacing an older output."""
    tmp, final = Path(tmp), Path(final)
    if final.is_dir() and not final.is_symlink():
        old = temporary_sibling(final)
        os.replace(final, old)
        os.replace(tmp, final)
        remove(old)
    else:
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes ``path``, on error it is deleted."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(final)
    try:
        yield tmp
    except BaseException:
        remove(tmp)
        raise
    commit(tmp, final)


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
