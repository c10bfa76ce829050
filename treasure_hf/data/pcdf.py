"""PCDF: flat Parquet tables linked by indices.

A PCDF data set is a directory::

    pcdf.json                      manifest: metadata, tables, parts (written last)
    events/part-00000.parquet      eventIndex, event fields, MET, n_<type> (objects before truncation)
    electrons/part-00000.parquet   index, eventIndex, fields of every layer (atlas_LHTight, ...)
    jets/part-00000.parquet        ... plus n_constituents
    constituents/part-00000.parquet  index, jetIndex, eventIndex, fields
    tracks/part-00000.parquet      ... plus the derived theta and q_p

Part ``k`` of every table holds the objects of the events of part ``k`` of ``events``, so a reader
streams part by part. Column names come from :func:`schema.pcdf_column`. Files are zstd
compressed with statistics, and carry the format version and provenance as key-value metadata.
Rows of an object table may come in any order; readers group them by event and sort by pT.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..errors import FormatError, InputError
from . import metadata as md
from . import schema
from .atomic import AtomicWriter, commit, remove, temporary_sibling
from .events import EventBatch, Layout, RaggedEvents

logger = logging.getLogger(__name__)

MANIFEST = "pcdf.json"
PROGRESS = "_parts.json"
KV_VERSION, KV_METADATA, KV_PART = b"format_version", b"treasure_hf", b"treasure_hf.part"


def part_name(i: int) -> str:
    return f"part-{i:05d}"


def tables(layout: Layout) -> tuple[str, ...]:
    """Tables of a data set with this layout: ``events`` then one per object/sub-object group."""
    return ("events", *(g for g in layout.groups if schema.GROUPS[g].kind != "event"))


def table_columns(layout: Layout, table: str) -> dict[str, tuple[str | None, np.dtype]]:
    """``column -> (key, dtype)`` of a table, in order; ``key`` is the ``layer/group/field`` the
    column stores, or None for index, count and derived columns."""
    cols: dict[str, tuple[str | None, np.dtype]] = {}
    i64, i32 = np.dtype(np.int64), np.dtype(np.int32)
    layers = ("common", *layout.layers)
    if table == "events":
        cols[schema.PCDF_EVENT_INDEX] = (None, i64)
        for layer in layers:
            for g in schema.EVENT_GROUPS:
                for f in schema.fields(layer, g):
                    cols[schema.pcdf_column(layer, g, f.name)] = (schema.key(layer, g, f.name), f.np_dtype)
        for g in schema.OBJECT_TYPES:
            cols[schema.pcdf_count_column(g)] = (None, i32)
        return cols
    spec = schema.group(table)
    cols[schema.PCDF_INDEX] = (None, i64)
    if spec.kind == "sub":
        cols[spec.index_column] = (None, i64)
    cols[schema.PCDF_EVENT_INDEX] = (None, i64)
    for layer in layers:
        for f in schema.fields(layer, table):
            cols[schema.pcdf_column(layer, table, f.name)] = (schema.key(layer, table, f.name), f.np_dtype)
    for sub in schema.sub_groups_of(table):
        if sub in layout.sub_groups:
            cols[schema.pcdf_count_column(sub)] = (None, i32)
    for derived in schema.PCDF_DERIVED.get(table, ()):
        cols[derived.name] = (None, np.dtype(np.float32))
    return cols


def arrow_schema(layout: Layout, table: str) -> pa.Schema:
    return pa.schema([(c, pa.from_numpy_dtype(dt)) for c, (_, dt) in table_columns(layout, table).items()])


def _ragged_tables(ev: RaggedEvents, layout: Layout, first_event: int,
                   first_index: Mapping[str, int]) -> dict[str, dict[str, np.ndarray]]:
    """Column arrays of every table for one part."""
    out: dict[str, dict[str, np.ndarray]] = {}
    event_index = np.arange(first_event, first_event + ev.n_events, dtype=np.int64)
    index: dict[str, np.ndarray] = {}
    event_of: dict[str, np.ndarray] = {}
    for table in tables(layout):
        cols: dict[str, np.ndarray] = {}
        if table != "events":
            spec = schema.group(table)
            counts = np.asarray(ev.counts[table], np.int64)
            index[table] = first_index[table] + np.arange(int(counts.sum()), dtype=np.int64)
            if spec.kind == "object":
                event_of[table] = np.repeat(event_index, counts)
            else:
                parent_rows = np.repeat(np.arange(len(counts)), counts)
                event_of[table] = event_of[spec.parent][parent_rows]
        for c, (k, dtype) in table_columns(layout, table).items():
            if c == schema.PCDF_EVENT_INDEX:
                cols[c] = event_index if table == "events" else event_of[table]
            elif c == schema.PCDF_INDEX:
                cols[c] = index[table]
            elif table != "events" and c == schema.group(table).index_column:
                parent = schema.group(table).parent
                cols[c] = index[parent][np.repeat(np.arange(len(ev.counts[table])), ev.counts[table])]
            elif k is not None:
                source = ev.event if table == "events" else ev.objects
                if k not in source:
                    raise InputError(None, k, "is declared by the layout but missing from the events to write")
                cols[c] = np.asarray(source[k]).astype(dtype, copy=False)
            elif c.startswith("n_") and c[2:] in schema.GROUPS:
                cols[c] = np.asarray(ev.original_counts(c[2:])).astype(np.int32, copy=False)
        for derived in schema.PCDF_DERIVED.get(table, ()):
            cols[derived.name] = derived.compute(cols)
        out[table] = cols
    return out


class PCDFWriter(AtomicWriter):
    """Write a PCDF data set part by part (one part per :meth:`write`, split at ``events_per_part``).

    Output goes to a temporary directory renamed to ``directory`` by :meth:`close`. With
    ``resume=True`` the temporary directory has a fixed name (``.NAME.partial``) and keeps the
    parts of an interrupted run: :attr:`n_events` tells the producer where to continue.
    """

    def __init__(self, directory: str | os.PathLike, metadata: Mapping[str, Any], layout: Layout | None = None,
                 *, events_per_part: int = 100_000, row_group_size: int = 1 << 17, resume: bool = False,
                 compression: str = "zstd"):
        self.directory = Path(directory)
        self.metadata = dict(metadata)
        self.layout = layout or Layout(tuple(self.metadata.get("layers", ())),
                                       max_objects=self.metadata.get("max_objects", schema.default_max_objects()))
        self.metadata["layers"] = list(self.layout.layers)
        self.metadata["max_objects"] = self.layout.metadata_max_objects()
        self.events_per_part = int(events_per_part)
        self.row_group_size = row_group_size
        self.compression = compression
        self.resume = resume
        self.parts: list[dict[str, Any]] = []
        self.n_events = 0
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            self._tmp = self.directory.with_name(f".{self.directory.name}.partial")
            progress = self._tmp / PROGRESS
            if progress.exists():
                state = json.loads(progress.read_text())
                if state.get("layout") == self._layout_json():
                    self.parts = state["parts"]
                    self.n_events = sum(p["n_events"] for p in self.parts)
                    logger.info("resuming %s after %d parts (%d events)", self.directory, len(self.parts), self.n_events)
                else:
                    logger.warning("discarding partial output %s: it was written with another layout", self._tmp)
                    remove(self._tmp)
        else:
            self._tmp = temporary_sibling(self.directory)
        for table in tables(self.layout):
            (self._tmp / table).mkdir(parents=True, exist_ok=True)
        self._next_index = {t: sum(p["rows"].get(t, 0) for p in self.parts) for t in tables(self.layout)}

    def _layout_json(self) -> dict[str, Any]:
        return {"layers": list(self.layout.layers), "sub_groups": list(self.layout.sub_groups),
                "max_objects": self.layout.metadata_max_objects()}

    def write(self, events: EventBatch | RaggedEvents) -> None:
        if isinstance(events, EventBatch):
            events = events.to_ragged()
        self._check(events)
        if events.n_events == 0 and self.parts:
            return
        start = 0
        while True:
            stop = min(start + self.events_per_part, events.n_events)
            self._write_part(_slice_ragged(events, start, stop) if (start, stop) != (0, events.n_events) else events)
            start = stop
            if start >= events.n_events:
                break

    def _check(self, ev: RaggedEvents) -> None:
        expected = {k for k in self.layout.keys() if k.rsplit("/", 1)[1] not in (schema.MASK, schema.COUNT)}
        present = set(ev.event) | set(ev.objects)
        missing, extra = sorted(expected - present), sorted(present - expected)
        if missing or extra:
            raise InputError(self.directory, (missing or extra)[0],
                             f"events do not match the layout (missing {missing[:5]}, not expected {extra[:5]})")
        ev.check(str(self.directory))

    def _write_part(self, ev: RaggedEvents) -> None:
        name = part_name(len(self.parts))
        cols = _ragged_tables(ev, self.layout, self.n_events, self._next_index)
        kv_meta = {KV_VERSION: schema.FORMAT_VERSION.encode(),
                   KV_METADATA: md.to_json({k: v for k, v in self.metadata.items() if k != "n_events"}).encode(),
                   KV_PART: json.dumps({"part": name, "first_event": self.n_events, "n_events": ev.n_events}).encode()}
        rows = {}
        for table, columns in cols.items():
            arrow = pa.table(columns, schema=arrow_schema(self.layout, table).with_metadata(kv_meta))
            final = self._tmp / table / f"{name}.parquet"
            tmp = temporary_sibling(final)
            try:
                pq.write_table(arrow, tmp, compression=self.compression, write_statistics=True,
                               row_group_size=self.row_group_size)
            except BaseException:
                remove(tmp)
                raise
            os.replace(tmp, final)
            rows[table] = arrow.num_rows
            self._next_index[table] += arrow.num_rows
        self.parts.append({"name": name, "first_event": self.n_events, "n_events": ev.n_events, "rows": rows})
        self.n_events += ev.n_events
        if self.resume:
            _write_json(self._tmp / PROGRESS, {"layout": self._layout_json(), "parts": self.parts})

    def close(self) -> Path:
        try:
            if not self.parts:  # an empty data set still has every table, with its schema
                self._write_part(RaggedEvents(0, {k: np.zeros(0, d) for k, d in self._event_keys()},
                                              {k: np.zeros(0, d) for k, d in self._object_keys()},
                                              {g: np.zeros(0, np.int64) for g in self.layout.groups
                                               if schema.GROUPS[g].kind != "event"}))
            self.metadata["n_events"] = self.n_events
            manifest = {"format": "PCDF", "format_version": schema.FORMAT_VERSION, "metadata": self.metadata,
                        "layout": self._layout_json(), "tables": list(tables(self.layout)), "parts": self.parts}
            remove(self._tmp / PROGRESS)
            _write_json(self._tmp / MANIFEST, manifest)
        except BaseException:
            self.abort()
            raise
        commit(self._tmp, self.directory)
        logger.info("wrote %d events in %d parts to %s", self.n_events, len(self.parts), self.directory)
        return self.directory

    def _event_keys(self):
        return [(k, d) for k, d in self.layout.keys().items() if schema.GROUPS[k.split("/")[1]].kind == "event"]

    def _object_keys(self):
        return [(k, d) for k, d in self.layout.keys().items()
                if schema.GROUPS[k.split("/")[1]].kind != "event" and k.rsplit("/", 1)[1] not in (schema.MASK, schema.COUNT)]

    def abort(self) -> None:
        """Give up: remove the temporary directory (kept with ``resume=True``, to continue later)."""
        if not self.resume:
            remove(self._tmp)



def _write_json(path: Path, obj: Any) -> None:
    tmp = temporary_sibling(path)
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _slice_ragged(ev: RaggedEvents, start: int, stop: int) -> RaggedEvents:
    """Events ``[start, stop)`` of a ragged batch, with their objects and sub-objects."""
    row_range: dict[str, tuple[int, int]] = {}
    counts: dict[str, np.ndarray] = {}
    n: dict[str, np.ndarray] = {}
    for g in ev.groups:
        spec = schema.GROUPS[g]
        if spec.kind == "event":
            continue
        c = np.asarray(ev.counts[g], np.int64)
        offsets = np.concatenate([[0], np.cumsum(c)])
        lo, hi = (start, stop) if spec.kind == "object" else row_range[spec.parent]
        row_range[g] = (int(offsets[lo]), int(offsets[hi]))
        counts[g] = c[lo:hi]
        n[g] = np.asarray(ev.original_counts(g))[lo:hi]
    objects = {k: v[slice(*row_range[k.split("/")[1]])] for k, v in ev.objects.items()}
    return RaggedEvents(stop - start, {k: v[start:stop] for k, v in ev.event.items()}, objects, counts, n,
                        ev.metadata)


def write_pcdf(directory: str | os.PathLike, events: EventBatch | RaggedEvents,
               metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> Path:
    """Write one batch as a complete PCDF data set."""
    meta = dict(events.metadata if metadata is None else metadata)
    layout = events.layout if isinstance(events, EventBatch) else Layout(
        events.layers, tuple(g for g in events.groups if schema.GROUPS[g].kind == "sub"),
        {**schema.default_max_objects(), **meta.get("max_objects", {})})
    with PCDFWriter(directory, meta, layout, **kwargs) as w:
        w.write(events)
    return Path(directory)


class PCDFSource:
    """Read a PCDF data set in slices of events, part by part."""

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory)
        if not self.path.is_dir():
            raise FormatError(self.path, None, "is not a PCDF directory")
        manifest_path = self.path / MANIFEST
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text())
            except json.JSONDecodeError as exc:
                raise FormatError(self.path, MANIFEST, f"is not valid JSON: {exc}") from None
            self.metadata = manifest.get("metadata", {})
            self.parts = manifest.get("parts", [])
            layout = manifest.get("layout", {})
            self.aligned = True
        else:  # a PCDF written by another tool: discover tables and metadata from the files
            self.metadata, self.parts, layout = self._discover()
            self.aligned = False
        version = self.metadata.get("format_version")
        if version != schema.FORMAT_VERSION:
            raise FormatError(self.path, "metadata/format_version",
                              f"is {version!r}; this version of treasure_hf reads {schema.FORMAT_VERSION!r}")
        try:
            self.layout = Layout(tuple(layout.get("layers", self.metadata.get("layers", ()))),
                                 tuple(layout.get("sub_groups", ())),
                                 {**schema.default_max_objects(), **layout.get("max_objects", {}),
                                  **self.metadata.get("max_objects", {})})
        except Exception as exc:  # noqa: BLE001 - re-raised naming the data set
            raise FormatError(self.path, MANIFEST, str(exc)) from None
        self.n_events = int(sum(p["n_events"] for p in self.parts))
        self._starts = np.cumsum([0] + [p["n_events"] for p in self.parts])

    def _discover(self) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        files = sorted((self.path / "events").glob("*.parquet"))
        if not files:
            raise FormatError(self.path, "events", "the events table is missing")
        kv = pq.read_schema(files[0]).metadata or {}
        meta = json.loads(kv[KV_METADATA]) if KV_METADATA in kv else {}
        if KV_VERSION in kv:
            meta.setdefault("format_version", kv[KV_VERSION].decode())
        parts = [{"name": f.stem, "n_events": pq.ParquetFile(f).metadata.num_rows} for f in files]
        subs = [g for g in schema.SUB_OBJECT_TYPES if (self.path / g).is_dir()]
        return meta, parts, {"layers": meta.get("layers", []), "sub_groups": subs}

    @property
    def tables(self) -> tuple[str, ...]:
        return tables(self.layout)

    def files(self, table: str) -> list[Path]:
        return sorted((self.path / table).glob("*.parquet"))

    def _read_table(self, table: str, parts: list[dict[str, Any]], lo: int | None, hi: int | None,
                    whole_parts: bool) -> dict[str, np.ndarray]:
        """Columns of ``table`` for events ``lo..hi`` (eventIndex values, inclusive)."""
        columns = table_columns(self.layout, table)
        if self.aligned or table == "events":
            paths = [self.path / table / f"{p['name']}.parquet" for p in parts]
        else:  # object tables of a foreign PCDF need not follow the events' parts: filter them all
            paths, whole_parts = self.files(table), False
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise FormatError(missing[0], table, "part file is missing")
        derived = {d.name for d in schema.PCDF_DERIVED.get(table, ())}
        wanted = [c for c in columns if c not in derived]
        try:
            dataset = pads.dataset([str(p) for p in paths], format="parquet")
            present = set(dataset.schema.names)
            absent = [c for c in wanted if c not in present and not c.startswith("n_")]
            if absent:
                raise FormatError(self.path / table, absent[0], "column is missing from the table")
            flt = None
            if not whole_parts and lo is not None:
                ev = pads.field(schema.PCDF_EVENT_INDEX)
                flt = (ev >= lo) & (ev <= hi)
            arrow = dataset.to_table(columns=[c for c in wanted if c in present], filter=flt)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FormatError(self.path / table, None, f"cannot be read: {exc}") from None
        return {c: _to_numpy(arrow.column(c), self.path / table, c) for c in arrow.column_names}

    def read_ragged(self, start: int | None = None, stop: int | None = None) -> RaggedEvents:
        start, stop, _ = slice(start, stop).indices(self.n_events)
        stop = max(start, stop)
        first = min(int(np.searchsorted(self._starts, start, side="right") - 1), len(self.parts) - 1)
        first = max(first, 0)
        last = int(np.searchsorted(self._starts, stop, side="left")) if self.parts else 0
        parts = self.parts[first:max(last, first + 1)]
        whole = bool(self.parts) and self._starts[first] == start and self._starts[min(last, len(self.parts))] == stop
        events = self._read_table("events", parts, None, None, True)
        if not whole:
            offset = start - int(self._starts[first]) if self.parts else 0
            events = {c: v[offset:offset + stop - start] for c, v in events.items()}
        event_index = events[schema.PCDF_EVENT_INDEX]
        if np.any(np.diff(event_index) <= 0):
            raise FormatError(self.path / "events", schema.PCDF_EVENT_INDEX, "must be unique and increasing")
        n_events = len(event_index)
        lo, hi = (int(event_index[0]), int(event_index[-1])) if n_events else (0, -1)
        cols = table_columns(self.layout, "events")
        ev_fields = {cols[c][0]: v for c, v in events.items() if c in cols and cols[c][0] is not None}
        counts: dict[str, np.ndarray] = {}
        n: dict[str, np.ndarray] = {}
        objects: dict[str, np.ndarray] = {}
        positions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for table in self.tables[1:]:
            spec = schema.group(table)
            data = self._read_table(table, parts, lo, hi, whole)
            if spec.kind == "object":
                owner = _lookup(event_index, data[schema.PCDF_EVENT_INDEX], self.path / table, schema.PCDF_EVENT_INDEX)
                n_owners = n_events
                count_col = events.get(schema.pcdf_count_column(table))
            else:
                p_index, p_counts_col = positions[spec.parent]
                owner = _lookup(p_index, data[spec.index_column], self.path / table, spec.index_column)
                n_owners = len(p_index)
                count_col = p_counts_col.get(table)
            order = np.argsort(owner, kind="stable") if np.any(np.diff(owner) < 0) else None
            counts[table] = np.bincount(owner, minlength=n_owners).astype(np.int64)
            if count_col is not None:
                n[table] = count_col.astype(np.int64)
            tcols = table_columns(self.layout, table)
            for c, v in data.items():
                k = tcols.get(c, (None, None))[0]
                if k is not None:
                    objects[k] = v if order is None else v[order]
            idx = data[schema.PCDF_INDEX] if order is None else data[schema.PCDF_INDEX][order]
            sub_counts = {s: (data[schema.pcdf_count_column(s)] if order is None else
                              data[schema.pcdf_count_column(s)][order])
                          for s in schema.sub_groups_of(table) if schema.pcdf_count_column(s) in data}
            positions[table] = (idx, sub_counts)
        meta = {**self.metadata, "n_events": n_events}
        return RaggedEvents(n_events, ev_fields, objects, counts, n, meta)

    def read(self, start: int | None = None, stop: int | None = None,
             max_objects: Mapping[str, int] | None = None) -> EventBatch:
        ragged = self.read_ragged(start, stop)
        return ragged.to_padded({**self.layout.max_objects, **(max_objects or {})})

    def ranges(self, step: int | None = None) -> Iterator[tuple[int, int]]:
        """Event ranges that follow part boundaries, split further to at most ``step`` events."""
        for i, p in enumerate(self.parts):
            lo, hi = int(self._starts[i]), int(self._starts[i + 1])
            size = step or max(1, hi - lo)
            for s in range(lo, hi, size):
                yield s, min(s + size, hi)

    def iter_ragged(self, step: int | None = None) -> Iterator[RaggedEvents]:
        for lo, hi in self.ranges(step):
            yield self.read_ragged(lo, hi)

    def iter_batches(self, step: int | None = None, max_objects: Mapping[str, int] | None = None
                     ) -> Iterator[EventBatch]:
        for lo, hi in self.ranges(step):
            yield self.read(lo, hi, max_objects)

    def close(self) -> None:
        pass

    def __enter__(self) -> "PCDFSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _to_numpy(column: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    if column.null_count:
        raise FormatError(path, name, f"has {column.null_count} null values; PCDF columns hold no nulls")
    return column.to_numpy()


def _lookup(keys: np.ndarray, values: np.ndarray, path: Path, column: str) -> np.ndarray:
    """Positions of ``values`` in the increasing array ``keys``; every value must be present."""
    if len(keys) and np.any(np.diff(keys) <= 0):
        sorter = np.argsort(keys, kind="stable")
        pos = np.searchsorted(keys, values, sorter=sorter)
        pos = sorter[np.clip(pos, 0, len(keys) - 1)]
    else:
        pos = np.clip(np.searchsorted(keys, values), 0, max(len(keys) - 1, 0))
    if len(values) and (len(keys) == 0 or np.any(keys[pos] != values)):
        raise FormatError(path, column, "refers to rows that do not exist")
    return pos.astype(np.int64)
