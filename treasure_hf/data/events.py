"""In-memory events: padded (:class:`EventBatch`, the HDF5 layout) and ragged (:class:`RaggedEvents`,
the PCDF layout), and the vectorised scatter between them.

Keys are ``layer/group/field`` as declared in :mod:`treasure_hf.data.schema`. In an
:class:`EventBatch`, object groups are ``(n_events, max_objects)`` arrays sorted by descending pT
and zero-padded, with ``common/GROUP/mask`` (bool) and ``common/GROUP/n`` (objects before
truncation); sub-object groups are ``(n_events, max_parent, max_sub)`` with a mask of that shape
and ``n`` of shape ``(n_events, max_parent)``; event groups are ``(n_events,)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, SchemaError
from . import schema
from .schema import COUNT, MASK


def _mask_key(group: str) -> str:
    return schema.key("common", group, MASK)


def _count_key(group: str) -> str:
    return schema.key("common", group, COUNT)


@dataclass(frozen=True)
class Layout:
    """Which datasets a file holds: the layers besides ``common``, the sub-object groups present,
    and the padding sizes. ``keys()`` lists every dataset with its dtype, in registry order."""

    layers: tuple[str, ...] = ()
    sub_groups: tuple[str, ...] = ()
    max_objects: Mapping[str, int] = field(default_factory=schema.default_max_objects)

    def __post_init__(self) -> None:
        for layer in self.layers:
            if layer not in schema.LAYERS or layer == "common":
                raise SchemaError(f"unknown layer {layer!r}; the registry has {sorted(schema.LAYERS)}")
        for g in self.sub_groups:
            if g not in schema.SUB_OBJECT_TYPES:
                raise SchemaError(f"unknown sub-object group {g!r}; the registry has {schema.SUB_OBJECT_TYPES}")
        missing = [g for g in (*schema.OBJECT_TYPES, *self.sub_groups) if g not in self.max_objects]
        if missing:
            raise SchemaError(f"max_objects lacks {missing}")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(g for g in schema.GROUPS if schema.GROUPS[g].kind != "sub" or g in self.sub_groups)

    def keys(self) -> dict[str, np.dtype]:
        out: dict[str, np.dtype] = {}
        for layer in ("common", *self.layers):
            for g in self.groups:
                for f in schema.fields(layer, g):
                    out[schema.key(layer, g, f.name)] = f.np_dtype
                if layer == "common" and schema.GROUPS[g].kind != "event":
                    out[_mask_key(g)] = np.dtype(bool)
                    out[_count_key(g)] = np.dtype(np.int32)
        return out

    def shape(self, k: str, n_events: int) -> tuple[int, ...]:
        layer, g, name = schema.split_key(k)
        shape = schema.shape_of(g, n_events, self.max_objects)
        return shape[:-1] if name == COUNT else shape

    def metadata_max_objects(self) -> dict[str, int]:
        return {g: int(self.max_objects[g]) for g in (*schema.OBJECT_TYPES, *self.sub_groups)}


class EventBatch:
    """A batch of padded events: ``arrays`` maps ``layer/group/field`` to numpy arrays whose first
    axis is the event. ``metadata`` holds the file's attributes (see ``schema.METADATA``)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any] | None = None):
        self.arrays: dict[str, np.ndarray] = dict(arrays)
        self.metadata: dict[str, Any] = dict(metadata or {})
        lengths = {len(a) for a in self.arrays.values()}
        if len(lengths) > 1:
            raise InputError(None, None, f"arrays disagree on the number of events: {sorted(lengths)}")

    # --- mapping behaviour -------------------------------------------------------------------
    def __getitem__(self, k: str) -> np.ndarray:
        try:
            return self.arrays[k]
        except KeyError:
            raise KeyError(f"{k!r} is not in this batch (it has layers {self.layers})") from None

    def __contains__(self, k: object) -> bool:
        return k in self.arrays

    def keys(self):
        return self.arrays.keys()

    def __len__(self) -> int:
        return self.n_events

    def __repr__(self) -> str:
        return f"EventBatch(n_events={self.n_events}, groups={list(self.groups)}, layers={list(self.layers)})"

    @property
    def n_events(self) -> int:
        for a in self.arrays.values():
            return len(a)
        return 0

    @property
    def layers(self) -> tuple[str, ...]:
        present = {k.split("/", 1)[0] for k in self.arrays}
        return tuple(layer for layer in schema.LAYERS if layer in present and layer != "common")

    @property
    def groups(self) -> tuple[str, ...]:
        present = {k.split("/")[1] for k in self.arrays}
        return tuple(g for g in schema.GROUPS if g in present)

    @property
    def layout(self) -> Layout:
        max_objects = schema.default_max_objects()
        for g in self.groups:
            if schema.GROUPS[g].kind != "event":
                max_objects[g] = self.arrays[_mask_key(g)].shape[-1]
        subs = tuple(g for g in self.groups if schema.GROUPS[g].kind == "sub")
        return Layout(self.layers, subs, max_objects)

    def group(self, g: str, layer: str = "common") -> dict[str, np.ndarray]:
        """``{field: array}`` of one group of one layer (with ``mask`` and ``n`` for common)."""
        prefix = f"{layer}/{g}/"
        return {k[len(prefix) :]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    def mask(self, g: str) -> np.ndarray:
        return self.arrays[_mask_key(g)]

    def counts(self, g: str) -> np.ndarray:
        """Objects before truncation (``common/GROUP/n``)."""
        return self.arrays[_count_key(g)]

    # --- slicing and joining -----------------------------------------------------------------
    def slice(self, start: int, stop: int) -> EventBatch:
        return EventBatch({k: v[start:stop] for k, v in self.arrays.items()}, self.metadata)

    def select(self, index: np.ndarray) -> EventBatch:
        """The events at ``index`` (integer positions or a boolean mask over events)."""
        return EventBatch({k: v[index] for k, v in self.arrays.items()}, self.metadata)

    @staticmethod
    def concat(batches: Iterable[EventBatch]) -> EventBatch:
        batches = list(batches)
        if not batches:
            raise ValueError("concat needs at least one batch")
        keys = list(batches[0].arrays)
        for b in batches[1:]:
            if list(b.arrays) != keys:
                raise InputError(None, None, "batches to concatenate hold different keys")
        out = EventBatch({k: np.concatenate([b.arrays[k] for b in batches]) for k in keys}, batches[0].metadata)
        out.metadata["n_events"] = out.n_events
        return out

    def equals(self, other: EventBatch) -> bool:
        """Bit-for-bit equality of every array (NaN equal to NaN)."""
        if set(self.arrays) != set(other.arrays):
            return False
        return all(
            a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
            for a, b in ((self.arrays[k], other.arrays[k]) for k in self.arrays)
        )

    # --- conversion --------------------------------------------------------------------------
    def to_ragged(self) -> RaggedEvents:
        """Keep only real objects: the PCDF view of this batch (``n`` is carried along)."""
        event: dict[str, np.ndarray] = {}
        objects: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        n: dict[str, np.ndarray] = {}
        for g in self.groups:
            kind = schema.GROUPS[g].kind
            keys = [k for k in self.arrays if k.split("/")[1] == g and k.rsplit("/", 1)[1] not in (MASK, COUNT)]
            if kind == "event":
                event.update({k: self.arrays[k] for k in keys})
                continue
            mask = self.mask(g)
            if kind == "object":
                counts[g] = mask.sum(axis=1, dtype=np.int64)
                n[g] = self.counts(g).astype(np.int64)
            else:
                parent_mask = self.mask(schema.GROUPS[g].parent)
                counts[g] = mask[parent_mask].sum(axis=-1, dtype=np.int64)
                n[g] = self.counts(g)[parent_mask].astype(np.int64)
            for k in keys:
                objects[k] = self.arrays[k][mask]
        return RaggedEvents(self.n_events, event, objects, counts, n, self.metadata)


@dataclass
class RaggedEvents:
    """Events with every object, unpadded: the PCDF view.

    - ``event``: ``layer/group/field`` of event groups -> ``(n_events,)``.
    - ``objects``: ``layer/group/field`` of object and sub-object groups -> flat rows. Rows of an
      object group are grouped by event (all of event 0, then event 1, ...), in any order within
      the event; rows of a sub-object group are grouped by parent row the same way.
    - ``counts[group]``: rows per event ``(n_events,)``, or per parent row for sub-objects.
    - ``n[group]``: objects before any earlier truncation, same shape as ``counts`` (defaults to it).
    """

    n_events: int
    event: dict[str, np.ndarray]
    objects: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    n: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def groups(self) -> tuple[str, ...]:
        present = {k.split("/")[1] for k in (*self.event, *self.objects)} | set(self.counts)
        return tuple(g for g in schema.GROUPS if g in present)

    @property
    def layers(self) -> tuple[str, ...]:
        present = {k.split("/", 1)[0] for k in (*self.event, *self.objects)}
        return tuple(layer for layer in schema.LAYERS if layer in present and layer != "common")

    def original_counts(self, g: str) -> np.ndarray:
        return self.n.get(g, self.counts[g])

    def check(self, path: str | None = None) -> None:
        """Raise :class:`InputError` naming the key if an array's length disagrees with the counts."""
        for k, v in self.event.items():
            if len(v) != self.n_events:
                raise InputError(path, k, f"has {len(v)} values for {self.n_events} events")
        for g, c in self.counts.items():
            kind = schema.GROUPS[g].kind
            expected = self.n_events if kind == "object" else int(self.counts[schema.GROUPS[g].parent].sum())
            if len(c) != expected:
                raise InputError(path, f"common/{g}/n", f"has {len(c)} counts, expected {expected}")
        for k, v in self.objects.items():
            g = k.split("/")[1]
            if g not in self.counts:
                raise InputError(path, k, f"group {g!r} has no counts")
            if len(v) != int(self.counts[g].sum()):
                raise InputError(path, k, f"has {len(v)} rows but the counts add up to {int(self.counts[g].sum())}")

    def select(self, keep: np.ndarray) -> RaggedEvents:
        """The events where the boolean ``keep`` (n_events,) is true, in order, with their objects."""
        keep = np.asarray(keep, bool)
        if keep.shape != (self.n_events,):
            raise InputError(None, None, f"event mask has shape {keep.shape}, expected ({self.n_events},)")
        rows = {g: np.repeat(keep, self.counts[g]) for g in self.groups if schema.GROUPS[g].kind == "object"}
        return self._filtered(keep, rows)

    def apply_pt_cuts(self, cuts: Mapping[str, float]) -> RaggedEvents:
        """Drop the objects of each type in ``cuts`` with pT [GeV] below its cut (and their
        sub-objects), as the converters' ``pt_cuts`` do; events are all kept."""
        rows = {}
        for g in self.groups:
            if schema.GROUPS[g].kind != "object":
                continue
            total = int(np.sum(self.counts[g]))
            rows[g] = (self.objects[schema.key("common", g, "pt")] >= cuts[g]) if g in cuts else np.ones(total, bool)
        return self._filtered(np.ones(self.n_events, bool), rows)

    def _filtered(self, keep_event: np.ndarray, keep_rows: Mapping[str, np.ndarray]) -> RaggedEvents:
        """Events where ``keep_event``, object rows where ``keep_rows[group]`` (object groups; the
        rows of sub-objects follow their parents). An owner that loses rows to ``keep_rows`` has
        ``n`` = the rows it keeps: objects are truncated lowest pT first, so a cut that removes
        one of its rows removes every truncated one too."""
        rows = dict(keep_rows)
        counts: dict[str, np.ndarray] = {}
        n: dict[str, np.ndarray] = {}
        for g in self.groups:
            spec = schema.GROUPS[g]
            if spec.kind == "event":
                continue
            c = np.asarray(self.counts[g], np.int64)
            owner = np.repeat(np.arange(len(c)), c)
            owner_keep = keep_event if spec.kind == "object" else rows[spec.parent]
            if spec.kind == "sub":
                rows[g] = owner_keep[owner]
            kept = np.bincount(owner[rows[g]], minlength=len(c))
            before = np.asarray(self.original_counts(g), np.int64)
            counts[g] = kept[owner_keep]
            n[g] = np.where(kept < c, kept, before)[owner_keep]
        event = {k: v[keep_event] for k, v in self.event.items()}
        objects = {k: v[rows[k.split("/")[1]]] for k, v in self.objects.items()}
        metadata = {**self.metadata, "n_events": int(keep_event.sum())}
        return RaggedEvents(int(keep_event.sum()), event, objects, counts, n, metadata)

    def to_padded(self, max_objects: Mapping[str, int] | None = None) -> EventBatch:
        """Sort by descending pT, truncate to ``max_objects`` and zero-pad (the numpy scatter)."""
        self.check()
        max_objects = {**schema.default_max_objects(), **(max_objects or {})}
        out: dict[str, np.ndarray] = dict(self.event)
        parent_slots: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for g in self.groups:
            spec = schema.GROUPS[g]
            if spec.kind == "event":
                continue
            keys = [k for k in self.objects if k.split("/")[1] == g]
            counts = np.asarray(self.counts[g], dtype=np.int64)
            sort_values = self.objects.get(schema.key("common", g, spec.sort_field)) if spec.sort_field else None
            owner, slot, order = _slots(counts, sort_values)
            if spec.kind == "object":
                width = max_objects[g]
                keep = slot < width
                flat = owner * width + slot
                shape = (self.n_events, width)
                out[_count_key(g)] = np.asarray(self.original_counts(g), dtype=np.int32)
                row_slot = np.where(keep, slot, -1)
                if order is not None:
                    row_slot[order] = row_slot.copy()
                parent_slots[g] = (owner, row_slot)
            else:
                p_event, p_slot = parent_slots[spec.parent]
                p_width, width = max_objects[spec.parent], max_objects[g]
                ps = p_slot[owner]
                keep = (ps >= 0) & (slot < width)
                flat = (p_event[owner] * p_width + ps) * width + slot
                shape = (self.n_events, p_width, width)
                n_sub = np.zeros(self.n_events * p_width, np.int32)
                kept_parent = p_slot >= 0
                n_sub[p_event[kept_parent] * p_width + p_slot[kept_parent]] = self.original_counts(g)[kept_parent]
                out[_count_key(g)] = n_sub.reshape(self.n_events, p_width)
            everything_kept = bool(keep.all())
            if not everything_kept:
                flat = flat[keep]
            rows = None if order is None and everything_kept else (order if order is not None else np.arange(len(keep)))
            if rows is not None and not everything_kept:
                rows = rows[keep]
            size = int(np.prod(shape))
            mask = np.zeros(size, bool)
            mask[flat] = True
            out[_mask_key(g)] = mask.reshape(shape)
            for k in keys:
                values = self.objects[k]
                arr = np.zeros(size, values.dtype)
                arr[flat] = values if rows is None else values[rows]
                out[k] = arr.reshape(shape)
        ordered = {k: out[k] for k in registry_order(out)}
        metadata = dict(self.metadata)
        metadata["n_events"] = self.n_events
        return EventBatch(ordered, metadata)


def _slots(counts: np.ndarray, sort_values: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """For rows grouped by owner (``counts`` rows each): the owner of each row, and, after sorting
    by owner then descending ``sort_values`` (stable), each sorted row's slot within its owner and
    the sorting permutation (None when the rows already are in that order, the common case)."""
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(counts)), counts)
    slot = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    order = None
    if sort_values is not None and total > 1:
        same_owner = owner[1:] == owner[:-1]
        if not np.all(~same_owner | (sort_values[1:] <= sort_values[:-1])):
            order = np.lexsort((-sort_values, owner))
    return owner, slot, order


def registry_order(keys: Iterable[str]) -> list[str]:
    """Keys sorted as the registry declares them (layer, group, field; mask and n last)."""
    rank: dict[str, int] = {}
    i = 0
    for layer in schema.LAYERS:
        for g in schema.GROUPS:
            for f in schema.fields(layer, g):
                rank[schema.key(layer, g, f.name)] = i
                i += 1
            if layer == "common":
                rank[_mask_key(g)] = i
                rank[_count_key(g)] = i + 1
                i += 2
    unknown = [k for k in keys if k not in rank]
    if unknown:
        raise SchemaError(f"keys not declared in the schema registry: {unknown}")
    return sorted(keys, key=rank.__getitem__)
