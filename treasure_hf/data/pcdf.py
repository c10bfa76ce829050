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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..errors import FormatError, InputError, positive
from . import metadata as md
from . import schema
from .atomic import AtomicWriter, commit, remove, temporary_directory, temporary_sibling, unwritable, write_json
from .events import EventBatch, Layout, RaggedEvents
from .outputs import check_destination, partial_dir, write_marker

logger = logging.getLogger(__name__)

MANIFEST = "pcdf.json"
EVENTS_PER_PART = 100_000
ROWS_PER_PART = 1 << 22
"""A part ends at whichever limit comes first: its events, or its object rows (4M rows, a few
hundred MB in memory, whatever the multiplicity of PF candidates or constituents)."""
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


def _ragged_tables(
    ev: RaggedEvents, layout: Layout, first_event: int, first_index: Mapping[str, int]
) -> dict[str, dict[str, np.ndarray]]:
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

    Output goes to a temporary directory swapped in as ``directory`` by :meth:`close`. An existing
    ``directory`` is replaced only when ``producer`` wrote it or with ``overwrite``; one that is,
    holds or lies inside one of ``inputs`` never (:func:`~.outputs.check_destination`). With
    ``resume=True`` the temporary directory has a fixed name (``.NAME.partial``) and keeps the
    parts of an interrupted run: :attr:`n_events` tells the producer where to continue. Pages are
    written with CRC checksums, which :class:`PCDFSource` verifies.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        metadata: Mapping[str, Any],
        layout: Layout | None = None,
        *,
        events_per_part: int = EVENTS_PER_PART,
        rows_per_part: int | None = ROWS_PER_PART,
        row_group_size: int = 1 << 17,
        resume: bool = False,
        compression: str = "zstd",
        producer: str = "write_pcdf",
        inputs: Sequence[str | os.PathLike] = (),
        overwrite: bool = False,
        scores: Sequence[str] = (),
    ):
        self.directory = Path(directory)
        self.scores = tuple(scores)
        self.producer, self.inputs, self.overwrite = producer, tuple(inputs), overwrite
        check_destination(self.directory, producer, inputs=self.inputs, overwrite=overwrite)
        self.metadata = dict(metadata)
        self.layout = layout or Layout(
            tuple(self.metadata.get("layers", ())),
            max_objects=self.metadata.get("max_objects", schema.default_max_objects()),
        )
        self.metadata["layers"] = list(self.layout.layers)
        self.metadata["max_objects"] = self.layout.metadata_max_objects()
        self.events_per_part = int(positive("events_per_part", events_per_part))
        self.rows_per_part = None if rows_per_part is None else int(positive("rows_per_part", rows_per_part))
        self._pending: list[RaggedEvents] = []
        self.row_group_size = row_group_size
        self.compression = compression
        self.resume = resume
        self.parts: list[dict[str, Any]] = []
        self.n_events = 0
        if resume:
            self._tmp = partial_dir(self.directory)
            progress = self._tmp / PROGRESS
            if progress.exists():
                state = json.loads(progress.read_text())
                if state.get("layout") == self._layout_json():
                    self.parts = state["parts"]
                    self.n_events = sum(p["n_events"] for p in self.parts)
                    logger.info(
                        "resuming %s after %d parts (%d events)", self.directory, len(self.parts), self.n_events
                    )
                else:
                    logger.warning("discarding partial output %s: it was written with another layout", self._tmp)
                    remove(self._tmp)
        else:
            self._tmp = temporary_directory(self.directory)
        for table in (*tables(self.layout), *((schema.SCORES,) if self.scores else ())):
            try:
                (self._tmp / table).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise unwritable(self.directory, exc) from None
            if resume:  # parts a killed run was writing, and parts written after the last recorded one
                for f in (self._tmp / table).iterdir():
                    if f.name.startswith(".") or f.stem not in {p["name"] for p in self.parts}:
                        remove(f)
        self._next_index = {t: sum(p["rows"].get(t, 0) for p in self.parts) for t in tables(self.layout)}

    def _layout_json(self) -> dict[str, Any]:
        return {
            "layers": list(self.layout.layers),
            "sub_groups": list(self.layout.sub_groups),
            "max_objects": self.layout.metadata_max_objects(),
        }

    def write(self, events: EventBatch | RaggedEvents, scores: Mapping[str, np.ndarray] | None = None) -> None:
        """Add events. Parts are cut at the first event that reaches ``events_per_part`` events or
        ``rows_per_part`` object rows, counted from the start of the part: where a part ends
        depends on the events alone, never on how they were handed over. A resumable writer
        (``resume=True``) also ends a part with every call: its producer's unit of work (a
        generator shard) is what a resumed run continues after."""
        if isinstance(events, EventBatch):
            events = events.to_ragged()
        self._check(events)
        if set(scores or {}) != set(self.scores):
            raise InputError(
                self.directory, schema.SCORES, f"expected scores {sorted(self.scores)}, got {sorted(scores or {})}"
            )
        if self.scores:  # carried as event fields, so that parts are cut through them alike
            values = {k: np.asarray(v, np.float32) for k, v in scores.items()}
            bad = [k for k, v in values.items() if v.shape != (events.n_events,)]
            if bad:
                raise InputError(self.directory, bad[0], f"needs one value per event ({events.n_events})")
            events = RaggedEvents(
                events.n_events, {**events.event, **values}, events.objects, events.counts, events.n, events.metadata
            )
        if events.n_events:
            self._pending.append(events)
        while self._pending:
            pending = _concat_ragged(self._pending, {}) if len(self._pending) > 1 else self._pending[0]
            cut = self._cut(pending)
            if cut is None and self.resume:
                cut = pending.n_events
            if cut is None:
                self._pending = [pending]
                return
            self._write_part(_slice_ragged(pending, 0, cut))
            self._pending = [_slice_ragged(pending, cut, pending.n_events)] if cut < pending.n_events else []

    def _cut(self, ev: RaggedEvents) -> int | None:
        """Events of the next full part of ``ev``, or None when ``ev`` does not fill one."""
        if ev.n_events >= self.events_per_part:
            cut = self.events_per_part
        else:
            cut = None
        if self.rows_per_part is not None:
            rows = _rows_per_event(ev)
            over = np.nonzero(np.cumsum(rows) >= self.rows_per_part)[0]
            if len(over):
                at_rows = max(int(over[0]) + 1, 1)
                cut = at_rows if cut is None else min(cut, at_rows)
        return cut

    def _check(self, ev: RaggedEvents) -> None:
        expected = {k for k in self.layout.keys() if k.rsplit("/", 1)[1] not in (schema.MASK, schema.COUNT)}
        present = {k for k in ev.event if k not in self.scores} | set(ev.objects)
        missing, extra = sorted(expected - present), sorted(present - expected)
        if missing or extra:
            raise InputError(
                self.directory,
                (missing or extra)[0],
                f"events do not match the layout (missing {missing[:5]}, not expected {extra[:5]})",
            )
        ev.check(str(self.directory))

    def _write_part(self, ev: RaggedEvents) -> None:
        name = part_name(len(self.parts))
        scores = {k: ev.event[k] for k in self.scores}
        if scores:
            ev = RaggedEvents(
                ev.n_events,
                {k: v for k, v in ev.event.items() if k not in scores},
                ev.objects,
                ev.counts,
                ev.n,
                ev.metadata,
            )
        cols = _ragged_tables(ev, self.layout, self.n_events, self._next_index)
        if scores:
            cols[schema.SCORES] = {
                schema.PCDF_EVENT_INDEX: cols["events"][schema.PCDF_EVENT_INDEX],
                **{score_column(k): v for k, v in scores.items()},
            }
        kv_meta = {
            KV_VERSION: schema.FORMAT_VERSION.encode(),
            KV_METADATA: md.to_json({k: v for k, v in self.metadata.items() if k != "n_events"}).encode(),
            KV_PART: json.dumps({"part": name, "first_event": self.n_events, "n_events": ev.n_events}).encode(),
        }
        rows = {}
        for table, columns in cols.items():
            table_schema = (
                arrow_schema(self.layout, table)
                if table != schema.SCORES
                else pa.schema([(c, pa.from_numpy_dtype(np.asarray(v).dtype)) for c, v in columns.items()])
            )
            arrow = pa.table(columns, schema=table_schema.with_metadata(kv_meta))
            final = self._tmp / table / f"{name}.parquet"
            tmp = temporary_sibling(final)
            try:
                pq.write_table(
                    arrow,
                    tmp,
                    compression=self.compression,
                    write_statistics=True,
                    row_group_size=self.row_group_size,
                    write_page_checksum=True,
                )
            except BaseException:
                remove(tmp)
                raise
            os.replace(tmp, final)
            rows[table] = arrow.num_rows
            if table in self._next_index:
                self._next_index[table] += arrow.num_rows
        self.parts.append({"name": name, "first_event": self.n_events, "n_events": ev.n_events, "rows": rows})
        self.n_events += ev.n_events
        if self.resume:
            write_json(self._tmp / PROGRESS, {"layout": self._layout_json(), "parts": self.parts})

    def close(self) -> Path:
        try:
            if self._pending:
                rest = _concat_ragged(self._pending, {})
                self._pending = []
                self._write_part(rest)
            if not self.parts:  # an empty data set still has every table, with its schema
                self._write_part(empty_ragged(self.layout))
            self.metadata["n_events"] = self.n_events
            manifest = {
                "format": "PCDF",
                "format_version": schema.FORMAT_VERSION,
                "metadata": self.metadata,
                "layout": self._layout_json(),
                "tables": list(tables(self.layout)),
                "parts": self.parts,
            }
            if self.scores:
                manifest["tables"].append(schema.SCORES)
                manifest["scores"] = list(self.scores)
            remove(self._tmp / PROGRESS)
            write_marker(self._tmp, self.producer)
            write_json(self._tmp / MANIFEST, manifest)
            check_destination(self.directory, self.producer, inputs=self.inputs, overwrite=self.overwrite)
        except BaseException:
            self.abort()
            raise
        commit(self._tmp, self.directory)
        logger.info("wrote %d events in %d parts to %s", self.n_events, len(self.parts), self.directory)
        return self.directory

    def abort(self) -> None:
        """Give up: remove the temporary directory (kept with ``resume=True``, to continue later)."""
        if not self.resume:
            remove(self._tmp)


def _rows_per_event(ev: RaggedEvents) -> np.ndarray:
    """Object and sub-object rows of each event, (n_events,)."""
    rows = np.zeros(ev.n_events, np.int64)
    per_parent: dict[str, np.ndarray] = {}
    for g in ev.groups:
        spec = schema.GROUPS[g]
        if spec.kind == "object":
            counts = np.asarray(ev.counts[g], np.int64)
            rows += counts
            per_parent[g] = np.repeat(np.arange(ev.n_events), counts)
        elif spec.kind == "sub" and spec.parent in per_parent:
            rows += np.bincount(per_parent[spec.parent], weights=ev.counts[g], minlength=ev.n_events).astype(np.int64)
    return rows


def score_column(key: str) -> str:
    """``scores/MODEL/CLASS`` -> the column ``MODEL/CLASS`` of the ``scores`` table."""
    return key.split("/", 1)[1]


def empty_ragged(layout: Layout) -> RaggedEvents:
    """No events, with every key of ``layout`` (and its dtype)."""
    event, objects = {}, {}
    for k, dtype in layout.keys().items():
        g, name = k.split("/")[1], k.rsplit("/", 1)[1]
        if schema.GROUPS[g].kind == "event":
            event[k] = np.zeros(0, dtype)
        elif name not in (schema.MASK, schema.COUNT):
            objects[k] = np.zeros(0, dtype)
    counts = {g: np.zeros(0, np.int64) for g in layout.groups if schema.GROUPS[g].kind != "event"}
    return RaggedEvents(0, event, objects, counts)


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
    return RaggedEvents(stop - start, {k: v[start:stop] for k, v in ev.event.items()}, objects, counts, n, ev.metadata)


def write_pcdf(
    directory: str | os.PathLike,
    events: EventBatch | RaggedEvents,
    metadata: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Path:
    """Write one batch as a complete PCDF data set."""
    meta = dict(events.metadata if metadata is None else metadata)
    layout = (
        events.layout
        if isinstance(events, EventBatch)
        else Layout(
            events.layers,
            tuple(g for g in events.groups if schema.GROUPS[g].kind == "sub"),
            {**schema.default_max_objects(), **meta.get("max_objects", {})},
        )
    )
    with PCDFWriter(directory, meta, layout, **kwargs) as w:
        w.write(events)
    return Path(directory)


class PCDFSource:
    """Read a PCDF data set in slices of events, part by part.

    Opening checks the manifest against the Parquet footers (rows of every part of every table),
    without reading data. A part is then read and checked whole the first time a slice touches it
    (``eventIndex``, ``index`` and parent links, null values, page checksums) and kept until the
    next part is needed: a slice is a view of its parts, so the answer, an error included, is
    the same whatever slices a reader asks for, and memory is one part.
    """

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory)
        if not self.path.is_dir():
            raise FormatError(self.path, None, "is not a PCDF directory")
        manifest_path = self.path / MANIFEST
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise FormatError(self.path, MANIFEST, f"is not valid JSON: {exc}") from None
            if not isinstance(manifest, dict):
                raise FormatError(self.path, MANIFEST, "must hold a JSON object")
            self.metadata = manifest.get("metadata", {})
            self.parts = manifest.get("parts", [])
            layout = manifest.get("layout", {})
            self.score_keys = list(manifest.get("scores", []))
            self.aligned = True
        else:  # a PCDF written by another tool: discover tables and metadata from the files
            self.metadata, self.parts, layout = self._discover()
            self.score_keys = []
            self.aligned = False
        version = self.metadata.get("format_version")
        if version != schema.FORMAT_VERSION:
            raise FormatError(
                self.path,
                "metadata/format_version",
                f"is {version!r}; this version of treasure_hf reads {schema.FORMAT_VERSION!r}",
            )
        try:
            self.layout = Layout(
                tuple(layout.get("layers", self.metadata.get("layers", ()))),
                tuple(layout.get("sub_groups", ())),
                {
                    **schema.default_max_objects(),
                    **layout.get("max_objects", {}),
                    **self.metadata.get("max_objects", {}),
                },
            )
        except Exception as exc:
            raise FormatError(self.path, MANIFEST, str(exc)) from None
        self._check_manifest()
        self.n_events = int(sum(p["n_events"] for p in self.parts))
        self._starts = np.cumsum([0] + [p["n_events"] for p in self.parts])
        self._first_row = {t: np.cumsum([0] + [p.get("rows", {}).get(t, 0) for p in self.parts]) for t in self.tables}
        self._cached: tuple[int, RaggedEvents] | None = None

    # --- opening ---------------------------------------------------------------------------
    def _discover(self) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        files = sorted((self.path / "events").glob("*.parquet"))
        if not files:
            raise FormatError(self.path, "events", "the events table is missing")
        kv = _footer(files[0], "events").schema_arrow.metadata or {}
        try:
            meta = json.loads(kv[KV_METADATA]) if KV_METADATA in kv else {}
        except json.JSONDecodeError as exc:
            raise FormatError(files[0], KV_METADATA.decode(), f"is not valid JSON: {exc}") from None
        if KV_VERSION in kv:
            meta.setdefault("format_version", kv[KV_VERSION].decode())
        parts = []
        for f in files:
            index = _read_file(f, "events", [schema.PCDF_EVENT_INDEX])[schema.PCDF_EVENT_INDEX]
            parts.append({"name": f.stem, "n_events": len(index), "first_index": int(index[0]) if len(index) else None})
        subs = [g for g in schema.SUB_OBJECT_TYPES if (self.path / g).is_dir()]
        return meta, parts, {"layers": meta.get("layers", []), "sub_groups": subs}

    def _check_manifest(self) -> None:
        """Every part file exists and holds the rows the manifest says (read from the footers)."""
        if not self.aligned:
            return
        first = 0
        for part in self.parts:
            if not isinstance(part, dict) or not {"name", "n_events"} <= set(part):
                raise FormatError(self.path, MANIFEST, f"part entry {part!r} lacks its name or n_events")
            if int(part.get("first_event", first)) != first:
                raise FormatError(
                    self.path, MANIFEST, f"part {part['name']} starts at event {part['first_event']}, expected {first}"
                )
            for table in (*self.tables, *((schema.SCORES,) if self.score_keys else ())):
                path = self.path / table / f"{part['name']}.parquet"
                if not path.exists():
                    raise FormatError(path, table, "part file is missing")
                rows = _footer(path, table).metadata.num_rows
                expected = part["n_events"] if table in ("events", schema.SCORES) else part.get("rows", {}).get(table)
                if expected is not None and rows != int(expected):
                    raise FormatError(path, table, f"holds {rows} rows; the manifest {MANIFEST} says {expected}")
            first += int(part["n_events"])
        stated = self.metadata.get("n_events")
        if stated is not None and int(stated) != first:
            raise FormatError(
                self.path, f"{MANIFEST}: metadata/n_events", f"says {stated} but the parts hold {first} events"
            )

    @property
    def tables(self) -> tuple[str, ...]:
        return tables(self.layout)

    def files(self, table: str) -> list[Path]:
        return sorted((self.path / table).glob("*.parquet"))

    # --- one part, read and checked whole --------------------------------------------------
    def _table_of_part(self, table: str, i: int) -> dict[str, np.ndarray]:
        columns = table_columns(self.layout, table)
        derived = {d.name for d in schema.PCDF_DERIVED.get(table, ())}
        wanted = [c for c in columns if c not in derived]
        optional = {c for c in wanted if c.startswith("n_")}
        if self.aligned or table == "events":
            return _read_file(self.path / table / f"{self.parts[i]['name']}.parquet", table, wanted, optional)
        # object tables of a foreign PCDF need not follow the events' parts: each part takes the
        # rows from its first event index up to the next part's, so every row belongs to one part
        lo = self.parts[i]["first_index"] if i > 0 else None
        hi = next((p["first_index"] for p in self.parts[i + 1 :] if p["first_index"] is not None), None)
        return _read_filtered(self.files(table), self.path / table, wanted, optional, lo, hi)

    def _decode_part(self, i: int) -> RaggedEvents:
        part = self.parts[i]
        events = self._table_of_part("events", i)
        where = self.path / "events" / f"{part['name']}.parquet"
        event_index = events[schema.PCDF_EVENT_INDEX]
        if self.aligned:
            first = int(self._starts[i])
            if not np.array_equal(event_index, np.arange(first, first + len(event_index))):
                raise FormatError(
                    where, schema.PCDF_EVENT_INDEX, f"must count the events of the part from {first} without gaps"
                )
        elif np.any(np.diff(event_index) <= 0):
            raise FormatError(where, schema.PCDF_EVENT_INDEX, "must be unique and increasing")
        n_events = len(event_index)
        cols = table_columns(self.layout, "events")
        ev_fields = {cols[c][0]: v for c, v in events.items() if c in cols and cols[c][0] is not None}
        counts: dict[str, np.ndarray] = {}
        n: dict[str, np.ndarray] = {}
        objects: dict[str, np.ndarray] = {}
        rows_of: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = {}
        for table in self.tables[1:]:
            spec = schema.group(table)
            data = self._table_of_part(table, i)
            where = self.path / table / f"{part['name']}.parquet" if self.aligned else self.path / table
            index = data[schema.PCDF_INDEX]
            self._check_index(index, table, i, where)
            row_event = data[schema.PCDF_EVENT_INDEX]
            if spec.kind == "object":
                owner = _lookup(event_index, row_event, where, schema.PCDF_EVENT_INDEX, "events of its part")
                n_owners, count_col = n_events, events.get(schema.pcdf_count_column(table))
            else:
                p_index, p_event, p_counts = rows_of[spec.parent]
                owner = _lookup(
                    p_index, data[spec.index_column], where, spec.index_column, f"{spec.parent} of its part"
                )
                moved = p_event[owner] != row_event
                if np.any(moved):
                    k = int(np.argmax(moved))
                    raise FormatError(
                        where,
                        spec.index_column,
                        f"row with {schema.PCDF_INDEX} {int(index[k])} belongs to event "
                        f"{int(row_event[k])} but its {spec.parent[:-1]} to event {int(p_event[owner[k]])}",
                    )
                n_owners, count_col = len(p_index), p_counts.get(table)
            order = np.argsort(owner, kind="stable") if np.any(np.diff(owner) < 0) else None
            counts[table] = np.bincount(owner, minlength=n_owners).astype(np.int64)
            if count_col is not None:
                n[table] = count_col.astype(np.int64)
                short = n[table] < counts[table]
                if np.any(short):
                    raise FormatError(
                        where,
                        schema.pcdf_count_column(table),
                        f"counts {int(n[table][short][0])} {table} where "
                        f"{int(counts[table][short][0])} rows are present",
                    )
            tcols = table_columns(self.layout, table)
            for c, v in data.items():
                k = tcols.get(c, (None, None))[0]
                if k is not None:
                    objects[k] = v if order is None else v[order]
            reorder = (lambda a: a) if order is None else (lambda a: a[order])
            rows_of[table] = (
                reorder(index),
                reorder(row_event),
                {
                    s: reorder(data[schema.pcdf_count_column(s)])
                    for s in schema.sub_groups_of(table)
                    if schema.pcdf_count_column(s) in data
                },
            )
        return RaggedEvents(n_events, ev_fields, objects, counts, n, {**self.metadata, "n_events": n_events})

    def _check_index(self, index: np.ndarray, table: str, i: int, where: Path) -> None:
        """Row numbers of a part: unique, and in our own PCDF exactly the part's share of the table."""
        ordered = np.sort(index)
        if len(ordered) > 1 and np.any(ordered[1:] == ordered[:-1]):
            k = int(np.argmax(ordered[1:] == ordered[:-1]))
            raise FormatError(where, schema.PCDF_INDEX, f"row {int(ordered[k])} appears twice")
        if self.aligned and "rows" in self.parts[i]:
            first = int(self._first_row[table][i])
            if len(ordered) and (ordered[0] != first or ordered[-1] != first + len(ordered) - 1):
                raise FormatError(
                    where,
                    schema.PCDF_INDEX,
                    f"must number the rows of the part {first} to "
                    f"{first + len(ordered) - 1}, found {int(ordered[0])} to "
                    f"{int(ordered[-1])}",
                )

    def _part(self, i: int) -> RaggedEvents:
        if self._cached is None or self._cached[0] != i:
            self._cached = None
            self._cached = (i, self._decode_part(i))
        return self._cached[1]

    def iter_parts(self) -> Iterator[tuple[int, RaggedEvents]]:
        """``(first event, events)`` of every part, empty ones too, each read and checked whole."""
        for i in range(len(self.parts)):
            yield int(self._starts[i]), self._part(i)

    # --- slices ----------------------------------------------------------------------------
    def read_ragged(self, start: int | None = None, stop: int | None = None) -> RaggedEvents:
        """Events ``[start, stop)`` with every object (the PCDF view)."""
        start, stop, _ = slice(start, stop).indices(self.n_events)
        stop = max(start, stop)
        pieces = []
        for i in range(len(self.parts)):
            lo, hi = int(self._starts[i]), int(self._starts[i + 1])
            if hi <= start or lo == hi:
                continue
            if lo >= stop:
                break
            part = self._part(i)
            a, b = max(start, lo) - lo, min(stop, hi) - lo
            pieces.append(part if (a, b) == (0, hi - lo) else _slice_ragged(part, a, b))
        meta = {**self.metadata, "n_events": stop - start}
        if not pieces:
            empty = empty_ragged(self.layout)
            empty.metadata = meta
            return empty
        return _concat_ragged(pieces, meta)

    def read_scores(self, start: int | None = None, stop: int | None = None) -> dict[str, np.ndarray]:
        """``scores/MODEL/CLASS`` -> ``(n_events,)`` of events ``[start, stop)`` (those the data set holds)."""
        start, stop, _ = slice(start, stop).indices(self.n_events)
        stop = max(start, stop)
        out: dict[str, list[np.ndarray]] = {k: [] for k in self.score_keys}
        for i, part in enumerate(self.parts if self.score_keys else ()):
            lo, hi = int(self._starts[i]), int(self._starts[i + 1])
            if hi <= start or lo >= stop:
                continue
            path = self.path / schema.SCORES / f"{part['name']}.parquet"
            data = _read_file(path, schema.SCORES, [schema.PCDF_EVENT_INDEX, *map(score_column, self.score_keys)])
            if not np.array_equal(data[schema.PCDF_EVENT_INDEX], np.arange(lo, hi)):
                raise FormatError(path, schema.PCDF_EVENT_INDEX, f"must count the events of the part from {lo}")
            for k in self.score_keys:
                out[k].append(data[score_column(k)][max(start, lo) - lo : min(stop, hi) - lo])
        return {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in out.items()}

    def read(
        self, start: int | None = None, stop: int | None = None, max_objects: Mapping[str, int] | None = None
    ) -> EventBatch:
        ragged = self.read_ragged(start, stop)
        return ragged.to_padded({**self.layout.max_objects, **(max_objects or {})})

    def ranges(self, step: int | None = None) -> Iterator[tuple[int, int]]:
        """Event ranges that follow part boundaries, split further to at most ``step`` events."""
        positive("step", step, allow_none=True)
        for i, p in enumerate(self.parts):
            lo, hi = int(self._starts[i]), int(self._starts[i + 1])
            size = step or max(1, hi - lo)
            for s in range(lo, hi, size):
                yield s, min(s + size, hi)

    def iter_batches(
        self, step: int | None = None, max_objects: Mapping[str, int] | None = None
    ) -> Iterator[EventBatch]:
        for lo, hi in self.ranges(step):
            yield self.read(lo, hi, max_objects)

    def close(self) -> None:
        self._cached = None

    def __enter__(self) -> PCDFSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _concat_ragged(pieces: Sequence[RaggedEvents], metadata: dict[str, Any]) -> RaggedEvents:
    """Consecutive slices of events as one (rows stay grouped by event and by parent)."""
    first = pieces[0]
    if len(pieces) == 1:
        return RaggedEvents(
            first.n_events, dict(first.event), dict(first.objects), dict(first.counts), dict(first.n), metadata
        )

    def cat(name: str) -> dict[str, np.ndarray]:
        return {k: np.concatenate([getattr(p, name)[k] for p in pieces]) for k in getattr(first, name)}

    return RaggedEvents(
        sum(p.n_events for p in pieces), cat("event"), cat("objects"), cat("counts"), cat("n"), metadata
    )


def _footer(path: Path, table: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FormatError(path, table, f"cannot be read as Parquet (truncated or corrupt): {exc}") from None


def _read_file(
    path: Path, table: str, columns: Sequence[str], optional: set[str] = frozenset()
) -> dict[str, np.ndarray]:
    """Columns of one Parquet file, every page's checksum verified."""
    try:
        f = pq.ParquetFile(path, page_checksum_verification=True)
        present = set(f.schema_arrow.names)
        absent = [c for c in columns if c not in present and c not in optional]
        if absent:
            raise FormatError(path, absent[0], "column is missing from the table")
        wanted = [c for c in columns if c in present]
        arrow = f.read(columns=wanted)
    except FormatError:
        raise
    except (pa.ArrowInvalid, OSError) as exc:
        raise _damage(
            path, table, exc, lambda c: pq.ParquetFile(path, page_checksum_verification=True).read(columns=[c]), columns
        ) from None
    return {c: _to_numpy(arrow.column(c), path, c) for c in arrow.column_names}


_VERIFY = pads.ParquetFileFormat(
    default_fragment_scan_options=pads.ParquetFragmentScanOptions(page_checksum_verification=True)
)


def _read_filtered(
    paths: Sequence[Path], where: Path, columns: Sequence[str], optional: set[str], lo: int | None, hi: int | None
) -> dict[str, np.ndarray]:
    """Rows of all ``paths`` whose eventIndex lies in ``[lo, hi)`` (None: unbounded)."""
    if not paths:
        raise FormatError(where, None, "table has no part files")
    try:
        dataset = pads.dataset([str(p) for p in paths], format=_VERIFY)
        present = set(dataset.schema.names)
        absent = [c for c in columns if c not in present and c not in optional]
        if absent:
            raise FormatError(where, absent[0], "column is missing from the table")
        ev = pads.field(schema.PCDF_EVENT_INDEX)
        flt = None
        if lo is not None:
            flt = ev >= lo
        if hi is not None:
            flt = (ev < hi) if flt is None else flt & (ev < hi)
        arrow = dataset.to_table(columns=[c for c in columns if c in present], filter=flt)
    except FormatError:
        raise
    except (pa.ArrowInvalid, OSError) as exc:
        raise FormatError(where, None, f"cannot be read (corrupt or truncated): {exc}") from None
    return {c: _to_numpy(arrow.column(c), where, c) for c in arrow.column_names}


def _damage(path: Path, table: str, exc: BaseException, read_column, columns: Sequence[str]) -> FormatError:
    """A read error as a :class:`FormatError` naming the damaged column where one can be found."""
    text = " ".join(str(exc).split())
    if "checksum" in text.lower() or "crc" in text.lower():
        for c in columns:
            try:
                read_column(c)
            except (pa.ArrowInvalid, OSError, KeyError):
                return FormatError(path, c, "page checksum mismatch: the file is corrupt (a changed byte)")
        return FormatError(path, table, f"page checksum mismatch: the file is corrupt ({text})")
    return FormatError(path, table, f"cannot be read (corrupt or truncated): {text}")


def _to_numpy(column: pa.ChunkedArray, path: Path, name: str) -> np.ndarray:
    if column.null_count:
        raise FormatError(path, name, f"has {column.null_count} null values; PCDF columns hold no nulls")
    return column.to_numpy()


def _lookup(keys: np.ndarray, values: np.ndarray, path: Path, column: str, what: str) -> np.ndarray:
    """Positions of ``values`` in ``keys`` (unique); every value must be present."""
    if len(keys) and np.any(np.diff(keys) <= 0):
        sorter = np.argsort(keys, kind="stable")
        pos = np.searchsorted(keys, values, sorter=sorter)
        pos = sorter[np.clip(pos, 0, len(keys) - 1)]
    else:
        pos = np.clip(np.searchsorted(keys, values), 0, max(len(keys) - 1, 0))
    if len(values):
        bad = np.ones(len(values), bool) if len(keys) == 0 else keys[pos] != values
        if np.any(bad):
            raise FormatError(path, column, f"value {int(values[np.argmax(bad)])} refers to none of the {what}")
    return pos.astype(np.int64)
