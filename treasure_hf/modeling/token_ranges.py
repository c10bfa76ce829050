"""The token id ranges of a tokenizer's vocabulary, as the tokenizer writes them and a model and a
collator read them (kept here, beside the model, so that a saved model folder carries it).

A tokenizer gives each (token type, stage) of its sequence types one range of consecutive ids,
stored as ``{"TYPE_ID:STAGE": [start, stop)}`` (:meth:`EventTokenizer.token_id_ranges`, kept in
``EventTransformerConfig.token_id_ranges``). This module owns that key format and every view of
it: the ranges' keys, whole-type spans, the (type, stage) table the model holds and the per-id
lookup tables of the collators. The ranges themselves are built once, by
:func:`treasure_hf.tokenization.tokenization_event.type_id_ranges`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

Ranges = Mapping[str, Sequence[int]]
"""``{"TYPE_ID:STAGE": [start, stop)}``."""


def range_key(type_id: int, stage: int) -> str:
    """The key of (token type id, stage) in :data:`Ranges`."""
    return f"{int(type_id)}:{int(stage)}"


def items(ranges: Ranges) -> Iterator[tuple[int, int, int, int]]:
    """``(type_id, stage, start, stop)`` of every range."""
    for key, (lo, hi) in ranges.items():
        t, _, s = str(key).partition(":")
        yield int(t), int(s or 0), int(lo), int(hi)


def type_ids(ranges: Ranges) -> list[int]:
    """The token type ids the ranges cover, in increasing order."""
    return sorted({t for t, _, _, _ in items(ranges)})


def type_spans(ranges: Ranges) -> dict[str, list[int]]:
    """``{"TYPE_ID": [lowest start, highest stop)}``: each type's ids over all its stages."""
    spans: dict[str, list[int]] = {}
    for t, _, lo, hi in items(ranges):
        key = str(t)
        spans[key] = [min(spans[key][0], lo), max(spans[key][1], hi)] if key in spans else [lo, hi]
    return spans


def stage_table(ranges: Ranges, n_types: int, n_stages: int) -> np.ndarray:
    """(n_types, n_stages, 2) int64 ``[start, stop)`` per (type, stage); -1 where none."""
    table = np.full((n_types, n_stages, 2), -1, np.int64)
    for t, s, lo, hi in items(ranges):
        if t < n_types and s < n_stages:
            table[t, s] = (lo, hi)
    return table


def lookup_tables(ranges: Ranges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per token id (0 to the highest stop): inside an object (bool), opens an object (stage 0,
    bool), its token type (-1 outside every range)."""
    size = max((int(hi) for _, hi in ranges.values()), default=0)
    inside, start = np.zeros(size + 1, bool), np.zeros(size + 1, bool)
    type_of = np.full(size + 1, -1, np.int64)
    for t, s, lo, hi in items(ranges):
        inside[lo:hi] = True
        type_of[lo:hi] = t
        if s == 0:
            start[lo:hi] = True
    return inside, start, type_of
