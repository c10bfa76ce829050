"""The common HDF5 format: a streaming writer (temporary name, renamed when complete) and a
reader that returns slices of events.

Datasets are chunked along the event axis and compressed with gzip + shuffle, filters built
into every HDF5 library: plain h5py, ROOT, Julia and ``datasets.load_dataset("hdf5")`` read them
without plugins.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

from ..errors import FormatError, InputError
from . import metadata as md
from . import schema
from .atomic import commit, remove, temporary_sibling
from .events import EventBatch, Layout, RaggedEvents, registry_order

logger = logging.getLogger(__name__)

METADATA_GROUP = "metadata"
CHUNK_BYTES = 1 << 20
"""Target size of one HDF5 chunk (before compression)."""


class H5Writer:
    """Append batches of events to a new common-format HDF5 file.

    ``layout`` fixes the datasets (every key of the common layer, plus the layers and sub-object
    groups it names); each batch written must hold exactly those keys. The file is written to a
    temporary name and renamed to ``path`` by :meth:`close` (or on leaving a ``with`` block
    without error); on error nothing is left behind.
    """

    def __init__(self, path: str | os.PathLike, metadata: Mapping[str, Any], layout: Layout | None = None,
                 *, compression: str | None = "gzip", compression_opts: int | None = 1):
        self.path = Path(path)
        self.metadata = dict(metadata)
        self.layout = layout or Layout(tuple(self.metadata.get("layers", ())),
                                       max_objects=self.metadata.get("max_objects", schema.default_max_objects()))
        self.metadata["layers"] = list(self.layout.layers)
        self.metadata["max_objects"] = self.layout.metadata_max_objects()
        self.n_events = 0
        self._keys = self.layout.keys()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_sibling(self.path)
        self._file = h5py.File(self._tmp, "w")
        try:
            for k, dtype in self._keys.items():
                shape = self.layout.shape(k, 0)
                row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
                chunk_rows = int(max(1, min(65536, CHUNK_BYTES // row_bytes)))
                self._file.create_dataset(k, shape=shape, maxshape=(None, *shape[1:]), dtype=dtype,
                                          chunks=(chunk_rows, *shape[1:]), compression=compression,
                                          compression_opts=compression_opts if compression == "gzip" else None,
                                          shuffle=compression is not None and dtype.itemsize > 1)
            self._file.create_group(METADATA_GROUP)
        except BaseException:
            self.abort()
            raise

    def write(self, batch: EventBatch | RaggedEvents) -> None:
        if isinstance(batch, RaggedEvents):
            batch = batch.to_padded(self.layout.max_objects)
        missing = [k for k in self._keys if k not in batch]
        extra = [k for k in batch.keys() if k not in self._keys]
        if missing or extra:
            key = (missing or extra)[0]
            raise InputError(self.path, key, f"batch does not match the file layout "
                             f"(missing {missing[:5]}, not expected {extra[:5]})")
        n = batch.n_events
        if n == 0:
            return
        for k, dtype in self._keys.items():
            arr = batch[k]
            expected = self.layout.shape(k, n)
            if arr.shape != expected:
                raise InputError(self.path, k, f"has shape {arr.shape}, expected {expected}")
            ds = self._file[k]
            ds.resize(self.n_events + n, axis=0)
            ds[self.n_events:] = arr.astype(dtype, copy=False)
        self.n_events += n

    def close(self) -> Path:
        """Write the metadata and move the finished file to its final name."""
        try:
            self.metadata["n_events"] = self.n_events
            attrs = self._file[METADATA_GROUP].attrs
            for name, value in md.encode(self.metadata).items():
                attrs[name] = value
            self._file.close()
        except BaseException:
            self.abort()
            raise
        commit(self._tmp, self.path)
        logger.info("wrote %d events to %s", self.n_events, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - closing a broken file may fail too; the file is removed
            pass
        remove(self._tmp)

    def __enter__(self) -> "H5Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_h5(path: str | os.PathLike, batch: EventBatch | RaggedEvents, metadata: Mapping[str, Any] | None = None,
             **kwargs: Any) -> Path:
    """Write one batch as a complete file."""
    meta = dict(batch.metadata if metadata is None else metadata)
    if isinstance(batch, RaggedEvents):
        batch = batch.to_padded(meta.get("max_objects"))
    layout = batch.layout
    with H5Writer(path, meta, layout, **kwargs) as w:
        w.write(batch)
    return Path(path)


class H5Source:
    """Read a common-format HDF5 file in slices of events (never the whole file at once)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise FormatError(self.path, None, f"cannot open as HDF5 (truncated or not HDF5): {exc}") from None
        if METADATA_GROUP not in self._file:
            raise FormatError(self.path, METADATA_GROUP, "the /metadata group is missing")
        try:
            self.metadata = md.decode(dict(self._file[METADATA_GROUP].attrs))
        except ValueError as exc:
            raise FormatError(self.path, METADATA_GROUP, str(exc)) from None
        version = self.metadata.get("format_version")
        if version != schema.FORMAT_VERSION:
            raise FormatError(self.path, "metadata/format_version",
                              f"is {version!r}; this version of treasure_hf reads {schema.FORMAT_VERSION!r}")
        found: list[str] = []
        self._file.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
        try:
            self.keys = registry_order(found)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file's name
            raise FormatError(self.path, None, str(exc)) from None
        first = self.keys[0] if self.keys else None
        self.n_events = int(self._file[first].shape[0]) if first else 0

    def read(self, start: int | None = None, stop: int | None = None) -> EventBatch:
        start, stop, _ = slice(start, stop).indices(self.n_events)
        arrays: dict[str, np.ndarray] = {}
        for k in self.keys:
            try:
                arrays[k] = self._file[k][start:stop]
            except OSError as exc:
                raise FormatError(self.path, k, f"cannot be read (corrupt or truncated): {exc}") from None
        return EventBatch(arrays, {**self.metadata, "n_events": max(0, stop - start)})

    def iter_batches(self, step: int) -> Iterator[EventBatch]:
        for start in range(0, self.n_events, step):
            yield self.read(start, min(start + step, self.n_events))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "H5Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
