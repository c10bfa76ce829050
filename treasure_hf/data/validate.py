"""Check a common HDF5 file or a PCDF directory against the schema registry.

Every problem is reported as ``KEY: message`` (one line each). Content is checked in chunks of
events, so validating a large file takes flat memory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import FormatError
from . import metadata as md
from . import schema
from .events import EventBatch, Layout
from .h5 import METADATA_GROUP
from .pcdf import MANIFEST, PCDFSource, arrow_schema, table_columns

CHUNK = 20_000
MEV_SUSPICION_GEV = 2_000.0
"""A median pT above this (jets, leptons, photons) means MeV slipped through as GeV."""
PT_SANITY_GROUPS = ("electrons", "muons", "photons", "jets")
PT_SAMPLE = 200_000


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class _Report:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._seen: set[tuple[str, str]] = set()
        self.pt_samples: dict[str, list[np.ndarray]] = {g: [] for g in PT_SANITY_GROUPS}

    def add(self, key: str, message: str, kind: str | None = None) -> None:
        tag = (key, kind or message)
        if tag not in self._seen:
            self._seen.add(tag)
            self.problems.append(Problem(key, message))


def validate(path: str | os.PathLike) -> list[Problem]:
    """All problems found in the file or directory at ``path`` (empty when it is valid)."""
    path = Path(path)
    if path.is_dir():
        return _validate_pcdf(path)
    if not path.exists():
        return [Problem(str(path), "no such file or directory")]
    return _validate_h5(path)


# --- content checks shared by both formats --------------------------------------------------


def _check_content(batch: EventBatch, first_event: int, meta: dict, report: _Report) -> None:
    for g in batch.groups:
        spec = schema.GROUPS[g]
        if spec.kind == "event":
            continue
        mask_key, n_key = schema.key("common", g, schema.MASK), schema.key("common", g, schema.COUNT)
        if mask_key not in batch or n_key not in batch:
            continue
        mask, n = batch[mask_key], batch[n_key]
        width = mask.shape[-1]
        if np.any(n < 0):
            report.add(n_key, f"negative count at event {first_event + int(np.argwhere(n < 0)[0][0])}", "neg")
        expected = np.arange(width) < np.minimum(n, width)[..., None]
        if spec.kind == "sub":
            parent_mask = batch.mask(spec.parent) if schema.key("common", spec.parent, schema.MASK) in batch else None
            if parent_mask is not None and np.any(n[~parent_mask] != 0):
                report.add(n_key, "sub-objects counted for a padding parent", "orphan")
        bad = np.any((mask != expected).reshape(len(mask), -1), axis=1)
        if np.any(bad):
            report.add(
                mask_key,
                f"mask and n disagree (mask must be the first min(n, {width}) slots), "
                f"first at event {first_event + int(np.argmax(bad))}",
                "mask",
            )
        for k in batch.keys():
            layer, grp, name = schema.split_key(k)
            if grp != g or name in (schema.MASK, schema.COUNT):
                continue
            arr = batch[k]
            pad = arr[~mask]
            if pad.size and np.any(pad != 0):
                report.add(k, "non-zero padding (padding must be 0)", "pad")
            real = arr[mask]
            if layer == "common" and real.dtype.kind == "f" and real.size and not np.all(np.isfinite(real)):
                report.add(k, "non-finite value in a real object", "finite")
            if name == "eta" and real.size and np.nanmax(np.abs(real)) > 10:
                report.add(k, f"|eta| up to {np.nanmax(np.abs(real)):.3g}: not a pseudorapidity", "range")
            if name == "phi" and real.size and np.nanmax(np.abs(real)) > np.pi + 1e-3:
                report.add(k, f"|phi| up to {np.nanmax(np.abs(real)):.3g}: not radians in [-pi, pi]", "range")
            if layer == "common" and name == "pt" and spec.kind == "object":
                if real.size and np.nanmin(real) < 0:
                    report.add(k, "negative pT", "neg")
                masked = np.where(mask, arr, -np.inf)
                if width > 1 and np.any(masked[:, 1:] > masked[:, :-1]):
                    report.add(k, "objects are not sorted by descending pT", "sort")
                if g in report.pt_samples and sum(map(len, report.pt_samples[g])) < PT_SAMPLE:
                    report.pt_samples[g].append(real)
    _check_event_fields(batch, first_event, meta, report)
    exp_key = "common/event/experiment_id"
    if exp_key in batch and meta.get("experiment") in schema.EXPERIMENTS:
        expected_id = schema.EXPERIMENTS[meta["experiment"]]
        if np.any(batch[exp_key] != expected_id):
            report.add(exp_key, f"disagrees with metadata experiment {meta['experiment']} (id {expected_id})", "exp")
    sim_key = "common/event/is_simulation"
    if sim_key in batch and np.any((batch[sim_key] != 0) & (batch[sim_key] != 1)):
        report.add(sim_key, "must be 0 (data) or 1 (simulation)", "sim")
    _check_absent_in_data(batch, meta, report)


def _missing(values: np.ndarray) -> np.ndarray:
    """Where values hold the registry's missing value (NaN for floats, -1 for integers)."""
    return np.isnan(values) if values.dtype.kind == "f" else values == -1


def _check_absent_in_data(batch: EventBatch, meta: dict, report: _Report) -> None:
    """The fields the registry marks ``absent_in_data`` (and only those) may be missing in
    collision-data events: a common one missing in a simulated event, or missing without being
    listed in ``missing_fields``, is a problem; one listed holds nothing but missing values. The
    metadata ``is_simulation``, where given, agrees with every event."""
    sim_key = "common/event/is_simulation"
    if sim_key not in batch:
        return
    simulated = batch[sim_key] == 1
    declared = meta.get("is_simulation")
    if declared in (0, 1) and np.any(batch[sim_key] != declared):
        report.add(sim_key, f"disagrees with metadata is_simulation = {declared}", "sim-meta")
    listed = set(meta.get("missing_fields", [])) if isinstance(meta.get("missing_fields"), list) else set()
    for k in batch.keys():
        layer, g, name = schema.split_key(k)
        if name in (schema.MASK, schema.COUNT) or not schema.absent_in_data(k):
            continue
        values = batch[k]
        if schema.GROUPS[g].kind == "event":
            real, event_simulated = np.ones(len(values), bool), simulated
        elif schema.key("common", g, schema.MASK) not in batch:
            continue
        else:
            real = batch.mask(g)
            event_simulated = np.broadcast_to(simulated.reshape((-1,) + (1,) * (values.ndim - 1)), values.shape)
        missing = _missing(values) & real
        if k in listed:
            if np.any(real & ~_missing(values)):
                report.add(k, "is listed in metadata missing_fields but holds values", "absent-listed")
        elif np.any(missing & ~event_simulated) and layer == "common":
            report.add(
                k, "is missing in collision-data events but not listed in metadata missing_fields", "absent-data"
            )
        if layer == "common" and np.any(missing & event_simulated):
            report.add(k, "is missing in simulated events (only collision data may lack it)", "absent-sim")


SUMET_TOLERANCE = 1e-4
"""Relative slack of sumET >= MET (float32 rounding of two sums of the same objects)."""


def _first(bad: np.ndarray, first_event: int) -> int:
    return first_event + int(np.argmax(bad))


def _check_event_fields(batch: EventBatch, first_event: int, meta: dict, report: _Report) -> None:
    """Event-level fields of ``common``: finite (MET, vertex, ...; unless listed in
    ``missing_fields``), MET >= 0, sumET >= MET."""
    missing = set(meta.get("missing_fields", []) if isinstance(meta.get("missing_fields"), list) else [])
    for g in schema.EVENT_GROUPS:
        for f in schema.fields("common", g):
            k = schema.key("common", g, f.name)
            if k not in batch or k in missing or f.np_dtype.kind != "f" or f.absent_in_data:
                continue  # a field collision data may lack is checked by _check_absent_in_data
            bad = ~np.isfinite(batch[k])
            if np.any(bad):
                report.add(k, f"non-finite value at event {_first(bad, first_event)}", "finite")
    met, sumet = batch.arrays.get("common/met/pt"), batch.arrays.get("common/met/sumet")
    if met is not None:
        negative = met < 0
        if np.any(negative):
            report.add("common/met/pt", f"negative MET at event {_first(negative, first_event)}", "neg")
        if sumet is not None and "common/met/sumet" not in missing:
            short = sumet < met * (1 - SUMET_TOLERANCE)
            if np.any(short):
                i = int(np.argmax(short))
                report.add(
                    "common/met/sumet",
                    f"sumET {float(sumet[i]):.6g} GeV below MET {float(met[i]):.6g} GeV at event {first_event + i}",
                    "sumet",
                )


def _check_units(report: _Report) -> None:
    for g, samples in report.pt_samples.items():
        values = np.concatenate(samples) if samples else np.zeros(0)
        if values.size:
            median = float(np.median(values))
            if median > MEV_SUSPICION_GEV:
                report.add(
                    schema.key("common", g, "pt"),
                    f"median pT is {median:.4g} GeV: MeV units slipped through (GeV expected)",
                    "units",
                )


def _check_metadata(meta: dict, report: _Report, n_events: int | None) -> None:
    for key, message in md.problems(meta):
        report.add(key, message)
    if n_events is not None and "n_events" in meta and int(meta["n_events"]) != n_events:
        report.add("metadata/n_events", f"says {meta['n_events']} but the data hold {n_events} events")


def _layout_from(meta: dict, sub_groups: tuple[str, ...], report: _Report) -> Layout | None:
    layers = tuple(
        x
        for x in meta.get("layers", [])
        if isinstance(meta.get("layers"), list) and x in schema.LAYERS and x != "common"
    )
    max_objects = meta.get("max_objects") if isinstance(meta.get("max_objects"), dict) else {}
    merged = {**schema.default_max_objects(), **max_objects}
    missing = [g for g in (*schema.OBJECT_TYPES, *sub_groups) if g not in max_objects]
    if "max_objects" in meta and missing:
        report.add("metadata/max_objects", f"lacks {missing}")
    return Layout(layers, sub_groups, merged)


# --- HDF5 -----------------------------------------------------------------------------------


def _validate_h5(path: Path) -> list[Problem]:
    report = _Report()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        return [Problem(str(path), f"cannot open as HDF5 (truncated or not HDF5): {exc}")]
    with f:
        if METADATA_GROUP not in f:
            report.add("metadata", "the /metadata group is missing")
            meta: dict = {}
        else:
            try:
                meta = md.decode(dict(f[METADATA_GROUP].attrs))
            except ValueError as exc:
                report.add("metadata", str(exc))
                meta = {}
        found: dict[str, h5py.Dataset] = {}
        f.visititems(lambda name, obj: found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
        subs = tuple(g for g in schema.SUB_OBJECT_TYPES if f"common/{g}" in f)
        layout = _layout_from(meta, subs, report)
        expected = layout.keys()
        n_events = None
        for k in expected:
            if k in found:
                n_events = int(found[k].shape[0]) if found[k].shape else 0
                break
        _check_metadata(meta, report, n_events)
        n_events = n_events or 0
        good: list[str] = []
        for k, dtype in expected.items():
            if k not in found:
                report.add(k, "required dataset is missing")
                continue
            ds = found[k]
            if ds.dtype != dtype:
                report.add(k, f"has dtype {ds.dtype}, the registry declares {dtype}")
                continue
            shape = layout.shape(k, n_events)
            if ds.shape != shape:
                report.add(k, f"has shape {ds.shape}, expected {shape}")
                continue
            good.append(k)
        for k in found:
            if k.split("/", 1)[0] == schema.SCORES:
                if found[k].shape != (n_events,) or found[k].dtype.kind != "f":
                    report.add(k, f"model scores must be ({n_events},) floats, found {found[k].shape} {found[k].dtype}")
            elif k not in expected:
                report.add(k, "is not declared in the schema registry for this layout")
        for lo in range(0, n_events, CHUNK):
            hi = min(lo + CHUNK, n_events)
            arrays = {}
            for k in good:
                try:
                    arrays[k] = found[k][lo:hi]
                except OSError as exc:
                    report.add(k, f"cannot be read (corrupt or truncated): {exc}", "read")
            _check_content(EventBatch(arrays), lo, meta, report)
    _check_units(report)
    return report.problems


# --- PCDF -----------------------------------------------------------------------------------


def _where(exc: FormatError, root: Path) -> str:
    """``table/part-00000.parquet: column`` of an error, relative to the data set."""
    if exc.path is None:
        return str(exc.key)
    try:
        rel = Path(exc.path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = exc.path
    return ": ".join(x for x in (rel if rel != "." else "", exc.key or "") if x) or str(root)


def _validate_pcdf(path: Path) -> list[Problem]:
    report = _Report()
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        report.add(MANIFEST, "manifest is missing: the data set is incomplete or not PCDF")
        if not (path / "events").is_dir():
            report.add("events", "the events table is missing")
            return report.problems
    else:
        try:
            json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            report.add(MANIFEST, f"is not valid JSON: {exc}")
            return report.problems
    try:
        source = PCDFSource(path)
    except FormatError as exc:
        report.add(_where(exc, path), exc.message)
        return report.problems
    meta = source.metadata
    _layout_from(meta, source.layout.sub_groups, report)
    _check_metadata(meta, report, None)
    layout = source.layout
    for table in source.tables:
        files = source.files(table)
        if not files:
            report.add(table, "table has no part files")
            continue
        expected = arrow_schema(layout, table)
        for file in files:
            try:
                got = pq.read_schema(file)
            except (pa.ArrowInvalid, OSError) as exc:
                report.add(f"{table}/{file.name}", f"cannot be read as Parquet: {exc}")
                continue
            kv = got.metadata or {}
            if kv.get(b"format_version", b"").decode() != schema.FORMAT_VERSION:
                report.add(f"{table}/{file.name}", "key-value metadata lacks the right format_version")
            for fld in expected:
                if fld.name not in got.names:
                    report.add(f"{table}/{fld.name}", "column is missing")
                elif got.field(fld.name).type != fld.type:
                    report.add(
                        f"{table}/{fld.name}", f"has type {got.field(fld.name).type}, the registry declares {fld.type}"
                    )
            known = set(table_columns(layout, table))
            for name in got.names:
                if name not in known:
                    report.add(f"{table}/{name}", "column is not declared in the schema registry")
    if any(p.key.split("/")[0] in source.tables for p in report.problems):
        return report.problems
    try:
        for first_event, ragged in source.iter_parts():  # an empty part is checked by the reader alone
            if ragged.n_events:
                _check_content(ragged.to_padded(layout.max_objects), first_event, meta, report)
    except FormatError as exc:
        report.add(_where(exc, path), exc.message, "read")
    _check_units(report)
    return report.problems
