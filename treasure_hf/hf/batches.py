"""Fast batches from a tokenized ``datasets.Dataset``: the ``DataLoader``'s batch fetch
(``__getitems__``) returns one compact Arrow table, handed whole to the collator's Arrow path
instead of one Python dict per event.

The rows are gathered with numpy index arithmetic on each list column's flat values and offsets
(held once per data set), not with ``pyarrow.Table.take``: a random order costs what the stored
order costs. :func:`stream_batches` does the same for ``streaming=True`` data sets, shuffling
within a buffer as ``IterableDataset.shuffle`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader

logger = logging.getLogger(__name__)

COLUMNS = ("input_ids", "token_type_ids", "labels")


def _is_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and (
        pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)
    )


def _flat_list(column: pa.ChunkedArray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column -> (values (n_tokens,), offsets (n_rows + 1,) int64). Zero copy for a single
    chunk (the memory-mapped Arrow file), one concatenation otherwise."""
    values, offsets, base = [], [np.zeros(1, np.int64)], 0
    for chunk in column.chunks:
        if chunk.null_count:
            raise ValueError(f"column {name!r} has {chunk.null_count} missing rows: cannot batch it")
        o = chunk.offsets.to_numpy().astype(np.int64)
        values.append(chunk.values.to_numpy(zero_copy_only=False)[o[0] : o[-1]])
        offsets.append(o[1:] - o[0] + base)
        base += int(o[-1] - o[0])
    flat = (
        values[0]
        if len(values) == 1
        else (np.concatenate(values) if values else np.zeros(0, column.type.value_type.to_pandas_dtype()))
    )
    return flat, np.concatenate(offsets)


def gather_positions(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of a list column with ``offsets`` -> (positions of their values in the flat
    values, in row order; offsets of the gathered rows (len(idx) + 1,) int64)."""
    starts = offsets[idx]
    lengths = offsets[idx + 1] - starts
    out = np.zeros(len(idx) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return np.arange(out[-1], dtype=np.int64) + np.repeat(starts - out[:-1], lengths), out


class ArrowBatches(torch.utils.data.Dataset):
    """``batches[indices]`` (``dataset``: a ``datasets.Dataset`` or a ``pyarrow.Table``) -> a ``pyarrow.Table`` of those rows (``columns`` only), in the order
    of ``indices``, with the data set's column types.

    List columns of numbers are held as flat numpy values + offsets (memory-mapped for a
    single-chunk column, else one copy of that column's values: n_tokens x itemsize bytes), so any
    permutation is one vectorised gather; other columns fall back to ``pyarrow`` ``take``. An
    indices mapping (``dataset.shuffle()``/``select()``) is applied at fetch time, nothing is
    rewritten."""

    def __init__(self, dataset: Any, columns: Sequence[str] = COLUMNS):
        names = [c for c in columns if c in dataset.column_names]
        table = dataset if isinstance(dataset, pa.Table) else dataset.data.table
        self.table: pa.Table = table.select(names)
        mapping = getattr(dataset, "_indices", None)
        self.indices = None if mapping is None else mapping.column(0).to_numpy().astype(np.int64)
        self.n = len(dataset)
        self.schema = self.table.schema
        self.lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.scalars: dict[str, np.ndarray] = {}
        for f in self.schema:
            col = self.table.column(f.name)
            if _is_list(f.type):
                values, offsets = _flat_list(col, f.name)
                same = next((o for _, o in self.lists.values() if o is offsets or np.array_equal(o, offsets)), None)
                self.lists[f.name] = (values, offsets if same is None else same)  # shared: one gather
            elif (
                pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type)
            ) and col.null_count == 0:
                self.scalars[f.name] = col.to_numpy()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> pa.Table:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> pa.Table:
        """The batch fetch of ``torch.utils.data.DataLoader``: one table for all ``indices``."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        if len(idx) and (idx.min() < -self.n or idx.max() >= self.n):
            raise IndexError(f"index out of range for {self.n} rows")
        idx = idx % self.n if len(idx) else idx
        if self.indices is not None:
            idx = self.indices[idx]
        contiguous = len(idx) > 0 and bool(np.all(np.diff(idx) == 1))
        arrays, gathered = [], {}
        for f in self.schema:
            if f.name in self.lists:
                values, offsets = self.lists[f.name]
                if contiguous:
                    a, b = int(idx[0]), int(idx[-1]) + 1
                    vals, offs = values[offsets[a] : offsets[b]], offsets[a : b + 1] - offsets[a]
                else:
                    key = id(offsets)
                    if key not in gathered:
                        gathered[key] = gather_positions(offsets, idx)
                    pos, offs = gathered[key]
                    vals = values[pos]
                cls = pa.LargeListArray if pa.types.is_large_list(f.type) else pa.ListArray
                otype = pa.int64() if cls is pa.LargeListArray else pa.int32()
                arrays.append(cls.from_arrays(pa.array(offs, otype), pa.array(vals, f.type.value_type), type=f.type))
            elif f.name in self.scalars:
                v = self.scalars[f.name]
                arrays.append(pa.array(v[idx[0] : idx[-1] + 1] if contiguous else v[idx], f.type))
            else:
                arrays.append(self.table.column(f.name).take(pa.array(idx)).combine_chunks())
        return pa.Table.from_arrays(arrays, schema=self.schema)


class IndexBatches(torch.utils.data.Sampler):
    """The ``batch_sampler`` of :func:`arrow_loader`: lists of ``batch_size`` row numbers of
    ``range(n)``, in a random order drawn once per epoch with ``torch.randperm`` (one call, not one
    Python step per row as ``RandomSampler`` + ``BatchSampler``). Epoch ``e`` uses a generator
    seeded with ``seed + e`` (as ``accelerate``'s ``SeedableRandomSampler``); the epoch advances
    after each full pass, or is set with :meth:`set_epoch`."""

    def __init__(self, n: int, batch_size: int, *, shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).numpy()
        else:
            order = np.arange(self.n, dtype=np.int64)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield order[start : start + self.batch_size].tolist()
        self.epoch += 1


def arrow_loader(
    dataset: Any,
    batch_size: int,
    collate_fn: Callable,
    *,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
    columns: Sequence[str] = COLUMNS,
) -> DataLoader:
    """A ``DataLoader`` of padded batches through :class:`ArrowBatches` and :class:`IndexBatches`
    (``collate_fn`` is an :class:`~treasure_hf.hf.collators.EventPaddingCollator` or one of its
    subclasses). A plain ``DataLoader`` with a ``batch_sampler``: ``accelerate.prepare`` shards it
    like any other, and its ``set_epoch`` reseeds the order."""
    batches = ArrowBatches(dataset, columns)
    return DataLoader(
        batches,
        batch_sampler=IndexBatches(len(batches), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last),
        collate_fn=collate_fn,
        num_workers=num_workers,
    )


def _tables(stream: Any, batch_size: int) -> Iterable[pa.Table]:
    """Arrow tables of a ``streaming=True`` data set (``IterableDataset.iter`` in Arrow format),
    or of any iterable of tables."""
    if hasattr(stream, "with_format"):
        return stream.with_format("arrow").iter(batch_size)
    return stream


def stream_batches(
    stream: Any,
    batch_size: int,
    collate_fn: Callable,
    *,
    shuffle_buffer: int = 0,
    seed: int = 0,
    drop_last: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """Padded batches from a ``streaming=True`` data set (or an iterable of Arrow tables).

    ``shuffle_buffer`` > 0: a block shuffle: the stream is read in windows of ``shuffle_buffer``
    events, each window is permuted (``numpy`` generator seeded with ``seed``, one gather as in
    :class:`ArrowBatches`) and cut into batches; the rows left over from a window (fewer than
    ``batch_size``) join the next one. An event moves at most about ``shuffle_buffer`` places, as
    with ``IterableDataset.shuffle(buffer_size=...)``; list the shards in a random order too (a
    different ``seed`` per epoch) for a better mix. ``shuffle_buffer`` = 0: the stored order.
    """
    if shuffle_buffer <= 0:
        for table in _tables(stream, batch_size):
            if table.num_rows == batch_size or not drop_last:
                yield collate_fn(table)
        return
    rng = np.random.default_rng(seed)
    window = max(int(shuffle_buffer), batch_size)
    pending: list[pa.Table] = []

    def emit(block: pa.Table, final: bool) -> Iterator[dict[str, torch.Tensor]]:
        rows = ArrowBatches(block, block.column_names)
        order = rng.permutation(block.num_rows)
        cut = block.num_rows if final else block.num_rows - block.num_rows % batch_size
        for start in range(0, cut, batch_size):
            part = order[start : start + batch_size]
            if len(part) == batch_size or not drop_last:
                yield collate_fn(rows.__getitems__(part))
        if cut < block.num_rows:
            pending.append(rows.__getitems__(order[cut:]))

    for table in _tables(stream, min(window, 8192)):
        pending.append(table)
        if sum(t.num_rows for t in pending) >= window:
            block = pa.concat_tables(pending)
            pending.clear()
            yield from emit(block, final=False)
    if pending:
        block = pa.concat_tables(pending)
        pending.clear()
        yield from emit(block, final=True)
