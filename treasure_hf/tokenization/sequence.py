"""Sequence assembly of an :class:`~.tokenization_event.EventTokenizer`: every slot of the layout
(``[CLS] [EXP] group [SEP] ... MET``, see the tokenizer's module docstring) for a batch of events,
and truncation by whole objects. Shapes: (n_events, slots) for ids, token types, validity, the
slot's object number within its type (-1 for specials) and whether it is an object's stage-0 token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..data import schema

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .tokenization_event import EventTokenizer


@dataclass
class Slots:
    """Every possible slot of the layout, real ones marked ``valid``; ``feature_blocks``: per block
    of slots, (type or "" for specials, (n, slots_of_block, n_columns) standardised features)."""

    ids: np.ndarray
    types: np.ndarray
    valid: np.ndarray
    slot_object: np.ndarray
    slot_start: np.ndarray
    feature_blocks: list[tuple[str, np.ndarray]]


def assemble_slots(
    tokenizer: EventTokenizer, per_type: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], experiment: np.ndarray
) -> Slots:
    """The slots of ``n`` events from each type's (codes (n, m, stages), mask (n, m), features)
    and the experiment ids (n,)."""
    n = len(experiment)
    ids, types, valid = [], [], []
    ids.append(np.full((n, 1), tokenizer.cls_token_id))
    ids.append(tokenizer.experiment_token_id(0) + experiment[:, None])
    types += [np.zeros((n, 1), np.int64), np.full((n, 1), schema.TOKEN_TYPE_IDS["event"])]
    valid += [np.ones((n, 2), bool)]
    slot_object = [np.full((n, 2), -1)]  # number of the slot's object within its type, -1 for specials
    slot_start = [np.zeros((n, 2), bool)]  # slot is the first token (stage 0) of an object
    feature_blocks: list[tuple[str, np.ndarray]] = []  # per slot block: (type or "", features)
    for t in [*tokenizer.object_types, *(["met"] if tokenizer.has_met else [])]:
        codes, mask, feats = per_type[t]
        stages = codes.shape[-1]
        size = tokenizer.quantizers[t].config.codebook_size
        tok = tokenizer._offsets[t] + np.arange(stages) * size + codes  # (n, m, stages)
        ids.append(tok.reshape(n, -1))
        types.append(np.full(ids[-1].shape, schema.TOKEN_TYPE_IDS[t]))
        valid.append(np.repeat(mask, stages, axis=1))
        slot_object.append(np.broadcast_to(np.repeat(np.arange(mask.shape[1]), stages), ids[-1].shape))
        slot_start.append(np.broadcast_to(np.tile(np.arange(stages) == 0, mask.shape[1]), ids[-1].shape))
        feature_blocks.append((t, np.repeat(feats, stages, axis=1)))
        if t != "met":
            ids.append(np.full((n, 1), tokenizer.sep_token_id))
            types.append(np.zeros((n, 1), np.int64))
            valid.append(np.ones((n, 1), bool))
            slot_object.append(np.full((n, 1), -1))
            slot_start.append(np.zeros((n, 1), bool))
            feature_blocks.append(("", np.zeros((n, 1, 0), np.float32)))
    return Slots(
        np.concatenate(ids, 1).astype(np.int64),
        np.concatenate(types, 1).astype(np.int64),
        np.concatenate(valid, 1),
        np.concatenate(slot_object, 1),
        np.concatenate(slot_start, 1),
        feature_blocks,
    )


def truncate_objects(
    tokenizer: EventTokenizer, ids: np.ndarray, types: np.ndarray, valid: np.ndarray, max_length: int
) -> np.ndarray:
    """Drop whole objects, lowest pT of the most numerous type first, until rows fit."""
    valid = valid.copy()
    stage0 = np.zeros_like(valid)
    for t in tokenizer.object_types:
        stage0 |= (ids >= tokenizer._offsets[t]) & (
            ids < tokenizer._offsets[t] + tokenizer.quantizers[t].config.codebook_size
        )
    while True:
        over = valid.sum(1) > max_length
        if not over.any():
            return valid
        rows = np.nonzero(over)[0]
        for r in rows:
            counts = {
                tt: int((valid[r] & stage0[r] & (types[r] == schema.TOKEN_TYPE_IDS[tt])).sum())
                for tt in tokenizer.object_types
            }
            tt = max(counts, key=lambda k: (counts[k], schema.GROUPS[k].type_id))
            if counts[tt] == 0:
                raise ValueError(f"max_length={max_length} is shorter than an event with no objects")
            starts = np.nonzero(valid[r] & stage0[r] & (types[r] == schema.TOKEN_TYPE_IDS[tt]))[0]
            last = starts[-1]
            stages = tokenizer.quantizers[tt].config.num_stages
            valid[r, last : last + stages] = False


def fit_width(a: np.ndarray, width: int) -> np.ndarray:
    """Cut or zero-pad axis 1 to ``width``."""
    if a.shape[1] >= width:
        return a[:, :width]
    return np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2))
