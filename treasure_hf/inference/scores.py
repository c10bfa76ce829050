"""Where ``treasure predict`` writes its scores: one output per input, written step by step to a
temporary sibling and swapped in whole when complete (:mod:`treasure_hf.data.atomic`).

- ``parquet``: a table, one row per event: ``eventIndex``, the run, luminosity block and event
  numbers where the source has them, and ``score_CLASS`` per class.
- ``root``: the same columns as a ROOT tree ``scores`` (uproot), one entry per entry of the input:
  ``events->AddFriend("scores", "OUT.root")`` in a ROOT analysis.
- ``h5``: the input's events in the common HDF5 format plus ``/scores/MODEL/CLASS``.
- ``pcdf``: the input's events as a PCDF directory plus its ``scores`` table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..data import schema
from ..data.atomic import commit, remove, temporary_sibling
from ..data.events import EventBatch
from ..data.outputs import check_destination
from .events import EventStream

FORMATS = ("parquet", "root", "h5", "pcdf")
SUFFIX = {"parquet": ".parquet", "root": ".root", "h5": ".h5", "pcdf": ""}
PRODUCER = "predict"
ROOT_TREE = "scores"


def output_path(input_path: str | os.PathLike, out: str | os.PathLike, fmt: str, single: bool) -> Path:
    """``OUT/NAME.EXT`` for input ``NAME.root`` (or ``NAME.h5``, ``NAME`` for PCDF); with one input,
    ``OUT`` itself when it ends with the format's extension."""
    out = Path(out)
    if single and SUFFIX[fmt] and out.suffix == SUFFIX[fmt]:
        return out
    name = Path(input_path).name
    for ext in (".root", ".h5", ".pcdf"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return out / f"{name}{SUFFIX[fmt] or ''}"


def score_columns(labels: Sequence[str]) -> list[str]:
    return [f"score_{label}" for label in labels]


class ScoreWriter:
    """Append ``(events, identity, scores)`` step by step; :meth:`close` swaps the output in."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        stream: EventStream,
        model_name: str,
        labels: Sequence[str],
        inputs: Sequence[str | os.PathLike],
        overwrite: bool = False,
    ):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
        self.path, self.fmt, self.labels = Path(path), fmt, list(labels)
        self.keys = [f"{schema.SCORES}/{model_name}/{label}" for label in self.labels]
        where = {"producer": PRODUCER, "inputs": tuple(inputs), "overwrite": overwrite}
        check_destination(self.path, **where)
        self._events = None
        self._table = None
        self._tree = None
        if fmt == "h5":
            from ..data.h5 import H5Writer

            self._events = H5Writer(self.path, stream.metadata, stream.layout, scores=self.keys, **where)
        elif fmt == "pcdf":
            from ..data.pcdf import PCDFWriter

            self._events = PCDFWriter(self.path, stream.metadata, stream.layout, scores=self.keys, **where)
        else:
            self._where = where
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = temporary_sibling(self.path)

    def write(self, events: EventBatch, identity: Mapping[str, np.ndarray], scores: np.ndarray) -> None:
        """``scores``: (n_events, n_classes) probabilities, in the order of the labels."""
        if self._events is not None:
            self._events.write(events, {k: scores[:, i] for i, k in enumerate(self.keys)})
            return
        columns = {**identity, **{c: scores[:, i].astype(np.float32) for i, c in enumerate(score_columns(self.labels))}}
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table(columns)
            if self._table is None:
                self._table = pq.ParquetWriter(self._tmp, table.schema, compression="zstd", write_page_checksum=True)
            self._table.write_table(table)
        else:
            import uproot

            if self._tree is None:
                self._file = uproot.recreate(self._tmp)
                self._file.mktree(
                    ROOT_TREE,
                    {k: v.dtype for k, v in columns.items()},
                    title="treasure predict scores, one entry per entry of the input",
                )
                self._tree = self._file[ROOT_TREE]
            self._tree.extend(columns)

    def close(self) -> Path:
        if self._events is not None:
            return self._events.close()
        try:
            if self._table is not None:
                self._table.close()
            if self._tree is not None:
                self._file.close()
            if self._table is None and self._tree is None:  # no events: an empty output with its columns
                self.write(
                    EventBatch({}),
                    {schema.PCDF_EVENT_INDEX: np.zeros(0, np.int64)},
                    np.zeros((0, len(self.labels)), np.float32),
                )
                return self.close()
            check_destination(self.path, **self._where)
        except BaseException:
            self.abort()
            raise
        commit(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._events is not None:
            self._events.abort()
            return
        for handle in (self._table, getattr(self, "_file", None)):
            if handle is not None:
                try:
                    handle.close()
                except Exception:
                    pass
        remove(self._tmp)


def read_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a ``treasure predict`` output of any format (for h5 and PCDF, the
    ``scores/MODEL/CLASS`` arrays; for Parquet and ROOT, the table's columns)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return {c: table.column(c).to_numpy() for c in table.column_names}
    if path.suffix == ".root":
        import uproot

        return {k: np.asarray(v) for k, v in uproot.open(path)[ROOT_TREE].arrays(library="np").items()}
    from ..data.io import open_events

    source = open_events(path)
    try:
        return source.read_scores()
    finally:
        source.close()
