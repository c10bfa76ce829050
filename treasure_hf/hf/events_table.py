"""Events as Arrow rows: one row per event, one list of structs per object type.

A row holds ``event_index``, the event fields and MET under their PCDF column names (``pvz``,
``met_pt``, ``truth_process_id``), and for each object type a list of its objects in descending
pT, each a struct of the PCDF columns of every layer (``pt`` [GeV], ``eta``, ``phi`` [rad],
``atlas_LHTight``, ...). Sub-objects (jet constituents, track hits), when asked for, nest inside
their parent as a list of structs. Column names and dtypes all come from the schema registry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ..data import schema
from ..data.events import RaggedEvents
from ..errors import InputError

EVENT_INDEX = "event_index"


def _layers(layers: Sequence[str]) -> tuple[str, ...]:
    return ("common", *[layer for layer in schema.LAYERS if layer in layers and layer != "common"])


def _group_fields(group: str, layers: Sequence[str]) -> list[tuple[str, str, np.dtype]]:
    """``(column, key, dtype)`` of one group's fields across layers, registry order."""
    return [
        (schema.pcdf_column(layer, group, f.name), schema.key(layer, group, f.name), f.np_dtype)
        for layer in _layers(layers)
        for f in schema.fields(layer, group)
    ]


def struct_type(group: str, layers: Sequence[str], sub_groups: Sequence[str] = ()) -> pa.StructType:
    fields = [pa.field(c, pa.from_numpy_dtype(dt)) for c, _, dt in _group_fields(group, layers)]
    for sub in schema.sub_groups_of(group):
        if sub in sub_groups:
            fields.append(pa.field(sub, pa.list_(struct_type(sub, layers))))
    return pa.struct(fields)


def arrow_schema(types: Sequence[str], layers: Sequence[str], sub_groups: Sequence[str] = ()) -> pa.Schema:
    """Schema of the rows for these object types, layers and sub-object groups."""
    fields = [pa.field(EVENT_INDEX, pa.int64())]
    for g in schema.EVENT_GROUPS:
        fields += [pa.field(c, pa.from_numpy_dtype(dt)) for c, _, dt in _group_fields(g, layers)]
    for t in types:
        fields.append(pa.field(t, pa.list_(struct_type(t, layers, sub_groups))))
    return pa.schema(fields)


def _sorted_order(counts: np.ndarray, sort_values: np.ndarray | None) -> np.ndarray | None:
    """Permutation putting rows (grouped by owner) in descending ``sort_values`` within each owner,
    or None when they already are."""
    if sort_values is None or len(sort_values) < 2:
        return None
    owner = np.repeat(np.arange(len(counts)), counts)
    same = owner[1:] == owner[:-1]
    if np.all(~same | (sort_values[1:] <= sort_values[:-1])):
        return None
    return np.lexsort((-sort_values, owner))


def _offsets(counts: np.ndarray) -> pa.Array:
    return pa.array(np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int32), pa.int32())


def _struct_rows(ev: RaggedEvents, group: str, layers: Sequence[str], sub_groups: Sequence[str]) -> pa.StructArray:
    """One struct per row of ``group`` (in the ragged order), sub-object lists nested."""
    arrays, names = [], []
    for c, k, dt in _group_fields(group, layers):
        if k not in ev.objects:
            raise InputError(None, k, f"is needed for the {group} column and the events lack it")
        arrays.append(pa.array(np.asarray(ev.objects[k]).astype(dt, copy=False)))
        names.append(c)
    for sub in schema.sub_groups_of(group):
        if sub not in sub_groups:
            continue
        if sub not in ev.counts:
            raise InputError(None, f"common/{sub}/n", f"{sub} were asked for and the events hold none")
        arrays.append(_list_of(ev, sub, layers, ()))
        names.append(sub)
    n_rows = int(np.asarray(ev.counts[group]).sum())
    if not arrays:
        return pa.StructArray.from_arrays([pa.nulls(n_rows, pa.null())], ["_"])
    return pa.StructArray.from_arrays(arrays, names)


def _list_of(ev: RaggedEvents, group: str, layers: Sequence[str], sub_groups: Sequence[str]) -> pa.ListArray:
    """The rows of ``group`` as one list per owner (event, or parent row), descending pT."""
    counts = np.asarray(ev.counts[group], np.int64)
    rows = _struct_rows(ev, group, layers, sub_groups)
    spec = schema.GROUPS[group]
    sort_key = schema.key("common", group, spec.sort_field) if spec.sort_field else None
    order = _sorted_order(counts, ev.objects.get(sort_key) if sort_key else None)
    if order is not None:
        rows = rows.take(pa.array(order))
    return pa.ListArray.from_arrays(_offsets(counts), rows)


def events_to_arrow(
    ev: RaggedEvents, types: Sequence[str], layers: Sequence[str], sub_groups: Sequence[str] = (), first_event: int = 0
) -> pa.Table:
    """Ragged events -> an Arrow table of :func:`arrow_schema`, one row per event.

    ``first_event`` is the ``event_index`` of the first row (its position in the data set)."""
    ev.check()
    target = arrow_schema(types, layers, sub_groups)
    columns = {EVENT_INDEX: pa.array(np.arange(first_event, first_event + ev.n_events, dtype=np.int64))}
    for g in schema.EVENT_GROUPS:
        for c, k, dt in _group_fields(g, layers):
            if k not in ev.event:
                raise InputError(None, k, "is needed for the event columns and the events lack it")
            columns[c] = pa.array(np.asarray(ev.event[k]).astype(dt, copy=False))
    for t in types:
        if t not in ev.counts:
            raise InputError(None, f"common/{t}/n", f"{t} were asked for and the events hold none")
        columns[t] = _list_of(ev, t, layers, sub_groups)
    return pa.Table.from_pydict(columns).cast(target)
