"""What the service offers: the data sets (entries of ``ROOT/datasets`` under their own name,
plus those registered with ``POST /datasets`` from elsewhere under the root), the tokenizers of
``ROOT/tokenizers`` and the models of ``ROOT/models``. Every path is checked against the root
each time it is used."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..data.pcdf import MANIFEST
from ..hf.export import DATA_DIR
from ..hf.tokenize import TOKENIZER_SUBDIR
from .paths import check_name, inside_root, relative_to_root
from .problems import NotFound, Unprocessable
from .registry import Registry
from .settings import DATASETS_DIR, MODELS_DIR, TOKENIZERS_DIR

KINDS = ("pcdf", "h5", "tokenized", "parquet")
"""PCDF directory, common HDF5 file, tokenized data set (``treasure tokenize``), Parquet events (``treasure export``)."""
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
logger = logging.getLogger(__name__)


def kind_of(path: Path) -> str | None:
    """Which kind of data set ``path`` holds, or None."""
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return "pcdf"
        if (path / DATA_DIR).is_dir() and any((path / DATA_DIR).glob("*.parquet")):
            return "tokenized" if (path / TOKENIZER_SUBDIR).is_dir() else "parquet"
        return None
    try:
        with open(path, "rb") as f:
            return "h5" if f.read(8) == _HDF5_SIGNATURE else None
    except OSError:
        return None


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    """Resolved, inside the root."""
    relative: str
    """As shown to users: relative to the root."""
    kind: str
    registered: bool
    """True when registered with POST /datasets, False when found in ROOT/datasets."""


class Catalog:
    def __init__(self, root: Path, registry: Registry):
        self.root = Path(root).resolve()
        self.registry = registry

    def _entry(self, name: str, relative: str, registered: bool) -> Entry | None:
        check_name(name, "dataset")
        path = inside_root(self.root, relative, "path")
        kind = kind_of(path)
        return None if kind is None else Entry(name, path, relative_to_root(self.root, path), kind, registered)

    def _found(self, folder: str) -> dict[str, str]:
        base = self.root / folder
        if not base.is_dir():
            return {}
        return {p.name: f"{folder}/{p.name}" for p in sorted(base.iterdir()) if not p.name.startswith(".")}

    def datasets(self) -> list[Entry]:
        """Every data set, found ones first; entries that leave the root or hold no data set are left out."""
        out: dict[str, Entry] = {}
        listed = [(n, rel, False) for n, rel in self._found(DATASETS_DIR).items()]
        listed += [(row["name"], row["path"], True) for row in self.registry.datasets()]
        for name, rel, registered in listed:
            if name in out:
                continue
            try:
                entry = self._entry(name, rel, registered)
            except Exception as exc:
                logger.debug("data set %s (%s) left out of the listing: %s", name, rel, exc)
                continue
            if entry is not None:
                out[name] = entry
        return sorted(out.values(), key=lambda e: e.name)

    def dataset(self, name: str) -> Entry:
        check_name(name, "dataset")
        found = self._found(DATASETS_DIR)
        if name in found:
            rel, registered = found[name], False
        else:
            row = self.registry.dataset(name)
            if row is None:
                raise NotFound(f"no data set {name!r} is registered")
            rel, registered = row["path"], True
        entry = self._entry(name, rel, registered)
        if entry is None:
            raise NotFound(f"data set {name!r} ({rel}) holds no PCDF, HDF5 or Parquet data set any more")
        return entry

    def register(self, name: str, relative: str, owner: str) -> Entry:
        """Register the data set at ``relative`` (under the root) as ``name``."""
        check_name(name, "name")
        if name in self._found(DATASETS_DIR) or self.registry.dataset(name) is not None:
            from .problems import Conflict

            raise Conflict(f"a data set named {name!r} is already registered")
        path = inside_root(self.root, relative, "path")
        if not path.exists():
            raise NotFound(f"{relative} does not exist under the served root")
        if kind_of(path) is None:
            raise Unprocessable(f"{relative} is not a PCDF directory, a common HDF5 file or a Parquet data set")
        self.registry.add_dataset(name, relative_to_root(self.root, path), owner)
        return self.dataset(name)

    def _named(self, folder: str, name: str, what: str) -> Path:
        check_name(name, what)
        path = inside_root(self.root, f"{folder}/{name}", what)
        if not path.is_dir():
            raise Unprocessable(f"no {what} named {name!r} in {folder}/", field=what)
        return path

    def tokenizer(self, name: str) -> Path:
        return self._named(TOKENIZERS_DIR, name, "tokenizer")

    def model(self, name: str) -> Path:
        return self._named(MODELS_DIR, name, "model")

    def names(self, folder: str) -> list[str]:
        return [n for n, rel in self._found(folder).items() if (self.root / rel).is_dir()]
