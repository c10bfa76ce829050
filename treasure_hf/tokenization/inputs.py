"""Normalise what users hand a tokenizer into padded per-type arrays.

Accepted: an :class:`~treasure_hf.EventBatch` (what ``treasure_hf.read_events`` returns); a
mapping of ``layer/group/field`` keys to padded arrays or to ragged lists (rows of the tokenized
or PCDF data sets); nested mappings as stock ``datasets.load_dataset("hdf5")`` yields them
(``row["common"]["jets"]["pt"]``), one row or a batch (mapping of lists, or a list of rows).
Sub-objects may come ragged twice (per event a list of jets, per jet a list of constituents).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data import schema
from ..data.events import EventBatch
from ..errors import InputError


def _flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in nested.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + "/"))
        else:
            out[name] = v
    return out


def _stack_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    flat_rows = [_flatten(r) for r in rows]
    keys = list(flat_rows[0]) if flat_rows else []
    return {k: [r[k] for r in flat_rows] for k in keys}


def _pad(values: Any, key: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A padded array and, for ragged input, the mask of real entries."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values, None
    try:
        arr = np.asarray(values)
        if arr.dtype != object:
            return arr, None
    except ValueError:
        pass
    try:
        rows = [np.asarray(r) for r in values]
    except ValueError:  # ragged within a row: sub-objects (constituents of each jet)
        return _pad_nested(values)
    if any(r.dtype == object or r.ndim > 1 for r in rows):
        return _pad_nested(values)
    width = max((len(r) for r in rows), default=0)
    dtype = np.result_type(*[r.dtype for r in rows]) if rows else np.float32
    out = np.zeros((len(rows), width), dtype)
    mask = np.zeros((len(rows), width), bool)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = True
    return out, mask


def _pad_nested(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows of lists of lists (n_events, parents, sub-objects) -> padded array and mask."""
    rows = [[np.asarray(sub) for sub in row] for row in values]
    parents = max((len(r) for r in rows), default=0)
    width = max((len(sub) for r in rows for sub in r), default=0)
    dtype = np.result_type(*[sub.dtype for r in rows for sub in r]) if parents else np.float32
    out = np.zeros((len(rows), parents, width), dtype)
    mask = np.zeros((len(rows), parents, width), bool)
    for i, r in enumerate(rows):
        for j, sub in enumerate(r):
            out[i, j, : len(sub)] = sub
            mask[i, j, : len(sub)] = True
    return out, mask


def as_event_arrays(events: Any) -> dict[str, np.ndarray]:
    """Flat ``layer/group/field -> array`` with a ``common/GROUP/mask`` for every object group
    present. Unknown keys raise :class:`InputError` naming the key."""
    if isinstance(events, EventBatch):
        return dict(events.arrays)
    if isinstance(events, Sequence) and not isinstance(events, (str, bytes)):
        data = _stack_rows(events)
    elif isinstance(events, Mapping):
        data = _flatten(events)
        event_level = [
            v
            for k, v in data.items()
            if len(k.split("/")) == 3
            and k.split("/")[1] in schema.GROUPS
            and schema.GROUPS[k.split("/")[1]].kind == "event"
        ]
        if event_level and np.ndim(event_level[0]) == 0:  # one event, not a batch
            data = {k: [v] for k, v in data.items()}
    else:
        raise InputError(
            None,
            None,
            f"cannot tokenize a {type(events).__name__}: pass an EventBatch, a mapping "
            "of 'layer/group/field' arrays, or dataset rows",
        )
    out: dict[str, np.ndarray] = {}
    ragged_masks: dict[str, np.ndarray] = {}
    for k, v in data.items():
        parts = k.split("/")
        if len(parts) != 3 or parts[0] not in schema.LAYERS or parts[1] not in schema.GROUPS:
            raise InputError(None, k, "is not a 'layer/group/field' key of the schema registry")
        arr, mask = _pad(v, k)
        out[k] = arr
        if mask is not None and schema.GROUPS[parts[1]].kind in ("object", "sub") and mask.ndim == arr.ndim:
            ragged_masks.setdefault(parts[1], mask)
    for g, mask in ragged_masks.items():
        out.setdefault(schema.key("common", g, schema.MASK), mask)
    return out
