"""What ``GET /datasets/{name}`` shows, read without a full read of the data: metadata, schema,
event counts and the statistics every Parquet footer stores (min, max, nulls per column); and
the multiplicity histograms, from the one count column per object type (PCDF ``n_TYPE``, HDF5
``common/TYPE/n``, or the ``length`` of tokenized events)."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from ..data import schema
from ..data.pcdf import PCDFSource, table_columns
from ..hf.export import DATA_DIR
from ..hf.tokenize import TOKENIZER_SUBDIR
from .catalog import Entry
from .versions import stat_signature

MAX_BINS = 50
RECHECK_S = 2.0
"""How long a description is served before the files' sizes and times are looked at again."""
_SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}\.parquet$")


def _json_safe(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def parquet_statistics(files: list[Path]) -> dict[str, dict[str, Any]]:
    """Per column (its path in the schema): rows, nulls, min, max and bytes, from the footers."""
    stats: dict[str, dict[str, Any]] = {}
    for f in files:
        meta = pq.read_metadata(f)
        for r in range(meta.num_row_groups):
            group = meta.row_group(r)
            for j in range(group.num_columns):
                col = group.column(j)
                s = stats.setdefault(
                    col.path_in_schema,
                    {"values": 0, "nulls": 0, "min": None, "max": None, "compressed_bytes": 0, "bytes": 0},
                )
                s["compressed_bytes"] += col.total_compressed_size
                s["bytes"] += col.total_uncompressed_size
                st = col.statistics
                if st is None:
                    continue
                s["values"] += st.num_values
                if st.has_null_count:
                    s["nulls"] += st.null_count
                if st.has_min_max:
                    lo, hi = st.min, st.max
                    s["min"] = lo if s["min"] is None else min(s["min"], lo)
                    s["max"] = hi if s["max"] is None else max(s["max"], hi)
    return _json_safe(stats)


def _arrow_columns(files: list[Path]) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in pq.read_schema(files[0])] if files else []


def _bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _pcdf(entry: Entry) -> dict[str, Any]:
    with PCDFSource(entry.path) as source:
        tables = {}
        for t in source.tables:
            files = source.files(t)
            known = table_columns(source.layout, t)
            columns = []
            for c in _arrow_columns(files):
                key = known.get(c["name"], (None, None))[0]
                if key is not None:
                    f = schema.field_of(key)
                    c.update(key=key, unit=f.unit, doc=f.doc)
                columns.append(c)
            tables[t] = {
                "files": len(files),
                "rows": sum(p.get("rows", {}).get(t, 0) for p in source.parts),
                "columns": columns,
                "statistics": parquet_statistics(files),
            }
        return {
            "n_events": source.n_events,
            "metadata": source.metadata,
            "parts": len(source.parts),
            "layout": {
                "layers": list(source.layout.layers),
                "sub_groups": list(source.layout.sub_groups),
                "max_objects": source.layout.metadata_max_objects(),
            },
            "tables": tables,
        }


def _h5(entry: Entry) -> dict[str, Any]:
    import h5py

    from ..data.h5 import H5Source

    with H5Source(entry.path) as source:
        metadata, n_events, keys = source.metadata, source.n_events, source.keys
    datasets = {}
    with h5py.File(entry.path, "r") as f:
        for k in keys:
            ds = f[k]
            info = {
                "shape": list(ds.shape),
                "dtype": str(ds.dtype),
                "chunks": list(ds.chunks or ()),
                "compression": ds.compression,
                "stored_bytes": int(ds.id.get_storage_size()),
            }
            if not k.endswith(("/mask", "/n")):
                field = schema.field_of(k)
                info.update(unit=field.unit, doc=field.doc)
            datasets[k] = info
    return {"n_events": n_events, "metadata": metadata, "datasets": datasets}


def shards(entry: Entry) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in sorted((entry.path / DATA_DIR).glob("*.parquet")):
        m = _SHARD.match(f.name)
        out.setdefault(m["split"] if m else f.stem, []).append(f)
    return out


def _parquet(entry: Entry) -> dict[str, Any]:
    by_split = shards(entry)
    splits = {
        s: {"files": len(fs), "rows": sum(pq.read_metadata(f).num_rows for f in fs)} for s, fs in by_split.items()
    }
    files = [f for fs in by_split.values() for f in fs]
    out = {
        "n_events": sum(s["rows"] for s in splits.values()),
        "splits": splits,
        "columns": _arrow_columns(files),
        "statistics": parquet_statistics(files),
    }
    if (entry.path / TOKENIZER_SUBDIR).is_dir():
        out["tokenizer"] = sorted(p.name for p in (entry.path / TOKENIZER_SUBDIR).iterdir())
    return out


def _histogram(values: np.ndarray) -> dict[str, Any]:
    values = np.asarray(values, np.int64)
    if values.size == 0:
        return {"width": 1, "counts": [], "mean": 0.0, "events": 0}
    top = int(values.max())
    width = max(1, math.ceil((top + 1) / MAX_BINS))
    counts = np.bincount(values // width)
    return {"width": width, "counts": counts.tolist(), "mean": float(values.mean()), "events": int(values.size)}


def multiplicity(entry: Entry) -> dict[str, Any]:
    """``{"what": ..., "histograms": {type: {"width", "counts", "mean", "events"}}}``: bin ``i``
    counts the events with ``i * width`` to ``(i + 1) * width - 1`` objects (or tokens)."""
    if entry.kind == "pcdf":
        with PCDFSource(entry.path) as source:
            files = source.files("events")
        names = [c.name for c in pq.read_schema(files[0])]
        columns = [schema.pcdf_count_column(g) for g in schema.OBJECT_TYPES if schema.pcdf_count_column(g) in names]
        table = pq.ParquetDataset(files).read(columns=columns)
        hists = {c[2:]: _histogram(table.column(c).to_numpy()) for c in columns}
        return {"what": "objects per event (before truncation)", "histograms": hists}
    if entry.kind == "h5":
        import h5py

        with h5py.File(entry.path, "r") as f:
            hists = {g: _histogram(f[f"common/{g}/n"][:]) for g in schema.OBJECT_TYPES if f"common/{g}/n" in f}
        return {"what": "objects per event (before truncation)", "histograms": hists}
    if entry.kind == "tokenized":
        files = [f for fs in shards(entry).values() for f in fs]
        lengths = pq.ParquetDataset(files).read(columns=["length"]).column("length").to_numpy()
        return {"what": "tokens per event", "histograms": {"tokens": _histogram(lengths)}}
    return {"what": "not stored per event in this kind of data set", "histograms": {}}


_DESCRIBE: dict[str, Callable[[Entry], dict[str, Any]]] = {
    "pcdf": _pcdf,
    "h5": _h5,
    "tokenized": _parquet,
    "parquet": _parquet,
}


def describe(entry: Entry) -> dict[str, Any]:
    """The full description of a data set (no full read)."""
    out = {
        "name": entry.name,
        "kind": entry.kind,
        "path": entry.relative,
        "registered": entry.registered,
        "bytes": _bytes(entry.path),
    }
    out.update(_DESCRIBE[entry.kind](entry))
    return _json_safe(out)


def summary(description: dict[str, Any]) -> dict[str, Any]:
    """The line of a data set in ``GET /datasets``."""
    meta = description.get("metadata") or {}
    keys = ("name", "kind", "path", "registered", "bytes", "n_events")
    return {
        **{k: description.get(k) for k in keys},
        "experiment": meta.get("experiment"),
        "layers": meta.get("layers"),
        "input_file": meta.get("input_file"),
        "splits": description.get("splits"),
    }


class DescriptionCache:
    """Descriptions (and multiplicities) computed again only when the data set's files change,
    looked at no more often than every :data:`RECHECK_S`."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str, Path], tuple[float, tuple, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, what: str, entry: Entry, compute: Callable[[Entry], dict[str, Any]]) -> dict[str, Any]:
        key = (what, entry.name, entry.path)
        now = time.monotonic()
        with self._lock:
            known = self._known.get(key)
        if known is not None and now - known[0] < RECHECK_S:
            return known[2]
        signature = stat_signature(entry.path)
        if known is not None and known[1] == signature:
            value = known[2]
        else:
            value = compute(entry)
        with self._lock:
            self._known[key] = (now, signature, value)
        return value
