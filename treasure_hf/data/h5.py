"""The common HDF5 format: a streaming writer (temporary name, renamed when complete) and a
reader that returns slices of events.

Datasets are chunked along the event axis and compressed with gzip + shuffle, filters built
into every HDF5 library: plain h5py, ROOT, Julia and ``datasets.load_dataset("hdf5")`` read them
without plugins.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import FormatError, InputError, positive
from . import metadata as md
from . import schema
from .atomic import AtomicWriter, commit, remove, temporary_sibling, unwritable
from .events import EventBatch, Layout, RaggedEvents, registry_order
from .outputs import H5_PRODUCER_ATTR, check_destination

logger = logging.getLogger(__name__)

METADATA_GROUP = "metadata"
CHUNK_BYTES = 1 << 20
"""Target size of one HDF5 chunk (before compression)."""


class H5Writer(AtomicWriter):
    """Append batches of events to a new common-format HDF5 file.

    ``layout`` fixes the datasets (every key of the common layer, plus the layers and sub-object
    groups it names); each batch written must hold exactly those keys. The file is written to a
    temporary name and renamed to ``path`` by :meth:`close` (or on leaving a ``with`` block
    without error); on error nothing is left behind.

    With gzip (the default), whole chunks are shuffled and deflated in a pool of ``threads``
    threads and stored with ``write_direct_chunk``: the bytes are exactly what HDF5's own shuffle
    and deflate filters produce, so every HDF5 reader decodes them, and compression, the slow
    part of writing, runs on every core.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        metadata: Mapping[str, Any],
        layout: Layout | None = None,
        *,
        compression: str | None = "gzip",
        compression_opts: int | None = 1,
        threads: int | None = None,
        producer: str = "write_h5",
        inputs: Sequence[str | os.PathLike] = (),
        overwrite: bool = False,
        scores: Sequence[str] = (),
    ):
        self.path = Path(path)
        self.scores = tuple(scores)
        self.producer, self.inputs, self.overwrite = producer, tuple(inputs), overwrite
        check_destination(self.path, producer, inputs=self.inputs, overwrite=overwrite)
        self.metadata = dict(metadata)
        self.layout = layout or Layout(
            tuple(self.metadata.get("layers", ())),
            max_objects=self.metadata.get("max_objects", schema.default_max_objects()),
        )
        self.metadata["layers"] = list(self.layout.layers)
        self.metadata["max_objects"] = self.layout.metadata_max_objects()
        self.n_events = 0
        self._keys = self.layout.keys()
        self._tmp = temporary_sibling(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(self._tmp, "w")
        except OSError as exc:
            raise unwritable(self.path, exc) from None
        self._gzip_level = compression_opts if compression == "gzip" else None
        self._pool = ThreadPoolExecutor(threads or os.cpu_count() or 1) if self._gzip_level is not None else None
        self._pending: dict[str, list[np.ndarray]] = {k: [] for k in self._keys}
        try:
            for k, dtype in self._keys.items():
                shape = self.layout.shape(k, 0)
                row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
                chunk_rows = int(max(1, min(65536, CHUNK_BYTES // row_bytes)))
                self._file.create_dataset(
                    k,
                    shape=shape,
                    maxshape=(None, *shape[1:]),
                    dtype=dtype,
                    chunks=(chunk_rows, *shape[1:]),
                    compression=compression,
                    compression_opts=compression_opts if compression == "gzip" else None,
                    shuffle=compression is not None and dtype.itemsize > 1,
                )
            for k in self.scores:
                self._file.create_dataset(
                    k,
                    shape=(0,),
                    maxshape=(None,),
                    dtype=np.float32,
                    chunks=(65536,),
                    compression=compression,
                    shuffle=compression is not None,
                )
            self._file.create_group(METADATA_GROUP)
            self._file.attrs[H5_PRODUCER_ATTR] = producer
        except BaseException:
            self.abort()
            raise

    def write(self, batch: EventBatch | RaggedEvents, scores: Mapping[str, np.ndarray] | None = None) -> None:
        """Append events (and, for a writer made with ``scores``, their ``scores/MODEL/CLASS``
        values, one per event)."""
        if isinstance(batch, RaggedEvents):
            batch = batch.to_padded(self.layout.max_objects)
        missing = [k for k in self._keys if k not in batch]
        extra = [k for k in batch.keys() if k not in self._keys]
        if missing or extra:
            key = (missing or extra)[0]
            raise InputError(
                self.path,
                key,
                f"batch does not match the file layout (missing {missing[:5]}, not expected {extra[:5]})",
            )
        n = batch.n_events
        given = set(scores or {})
        if given != set(self.scores):
            raise InputError(self.path, schema.SCORES, f"expected scores {sorted(self.scores)}, got {sorted(given)}")
        if n == 0:
            return
        for k in self.scores:
            values = np.asarray(scores[k], np.float32)
            if values.shape != (n,):
                raise InputError(self.path, k, f"has shape {values.shape}, expected ({n},)")
            ds = self._file[k]
            ds.resize(self.n_events + n, axis=0)
            ds[self.n_events :] = values
        jobs: list[tuple[h5py.Dataset, int, Future]] = []
        for k, dtype in self._keys.items():
            arr = batch[k]
            expected = self.layout.shape(k, n)
            if arr.shape != expected:
                raise InputError(self.path, k, f"has shape {arr.shape}, expected {expected}")
            ds = self._file[k]
            ds.resize(self.n_events + n, axis=0)
            arr = np.ascontiguousarray(arr, dtype=dtype)
            if self._pool is None:
                ds[self.n_events :] = arr
            else:
                jobs += self._compress_chunks(k, arr, final=False)
        self.n_events += n
        self._store(jobs)

    def _compress_chunks(self, k: str, arr: np.ndarray | None, final: bool) -> list[tuple[h5py.Dataset, int, Future]]:
        """Queue the complete chunks of key ``k`` (all of them, padded with zeros, when ``final``)."""
        ds = self._file[k]
        rows = ds.chunks[0]
        pending = self._pending[k]
        if arr is not None:
            pending.append(arr)
        n_pending = sum(len(a) for a in pending)
        if not pending or (n_pending < rows and not final):
            return []
        data = np.concatenate(pending) if len(pending) > 1 else pending[0]
        first = self.n_events + (len(arr) if arr is not None else 0) - n_pending  # row of pending[0]
        n_full = len(data) // rows * rows
        blocks = [data[i : i + rows] for i in range(0, n_full, rows)]
        rest = data[n_full:]
        if final and len(rest):
            padded = np.zeros((rows, *data.shape[1:]), data.dtype)
            padded[: len(rest)] = rest
            blocks.append(padded)
            rest = rest[:0]
        self._pending[k] = [rest.copy()] if len(rest) else []
        shuffle = data.dtype.itemsize > 1
        return [
            (ds, first + i * rows, self._pool.submit(_deflate, b, self._gzip_level, shuffle))
            for i, b in enumerate(blocks)
        ]

    def _store(self, jobs: list[tuple[h5py.Dataset, int, Future]]) -> None:
        for ds, offset, future in jobs:
            ds.id.write_direct_chunk((offset, *([0] * (ds.ndim - 1))), future.result(), filter_mask=0)

    def close(self) -> Path:
        """Write the metadata and move the finished file to its final name."""
        try:
            if self._pool is not None:
                jobs = [j for k in self._keys for j in self._compress_chunks(k, None, final=True)]
                self._store(jobs)
                self._pool.shutdown()
            self.metadata["n_events"] = self.n_events
            attrs = self._file[METADATA_GROUP].attrs
            for name, value in md.encode(self.metadata).items():
                attrs[name] = value
            self._file.close()
            check_destination(self.path, self.producer, inputs=self.inputs, overwrite=self.overwrite)
        except BaseException:
            self.abort()
            raise
        commit(self._tmp, self.path)
        logger.info("wrote %d events to %s", self.n_events, self.path)
        return self.path

    def abort(self) -> None:
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(cancel_futures=True)
        try:
            self._file.close()
        except Exception:
            pass
        remove(self._tmp)


def _deflate(block: np.ndarray, level: int, shuffle: bool) -> bytes:
    """HDF5's shuffle then deflate filters applied to one chunk (zlib releases the GIL)."""
    raw = block.view(np.uint8).reshape(-1, block.dtype.itemsize).T.tobytes() if shuffle else block.tobytes()
    return zlib.compress(raw, level)


def write_h5(
    path: str | os.PathLike, batch: EventBatch | RaggedEvents, metadata: Mapping[str, Any] | None = None, **kwargs: Any
) -> Path:
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
            raise FormatError(
                self.path,
                "metadata/format_version",
                f"is {version!r}; this version of treasure_hf reads {schema.FORMAT_VERSION!r}",
            )
        found: list[str] = []
        self._file.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
        self.score_keys = [k for k in found if k.split("/", 1)[0] == schema.SCORES]
        found = [k for k in found if k not in self.score_keys]
        try:
            self.keys = registry_order(found)
        except Exception as exc:
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

    def read_ragged(self, start: int | None = None, stop: int | None = None) -> RaggedEvents:
        return self.read(start, stop).to_ragged()

    def read_scores(self, start: int | None = None, stop: int | None = None) -> dict[str, np.ndarray]:
        """``scores/MODEL/CLASS`` -> ``(n_events,)`` of events ``[start, stop)`` (those the file holds)."""
        start, stop, _ = slice(start, stop).indices(self.n_events)
        return {k: self._file[k][start : max(start, stop)] for k in self.score_keys}

    def ranges(self, step: int) -> Iterator[tuple[int, int]]:
        """Event ranges ``[lo, hi)`` of at most ``step`` events."""
        positive("step", step)
        for start in range(0, self.n_events, step):
            yield start, min(start + step, self.n_events)

    def iter_batches(self, step: int) -> Iterator[EventBatch]:
        for lo, hi in self.ranges(step):
            yield self.read(lo, hi)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> H5Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
