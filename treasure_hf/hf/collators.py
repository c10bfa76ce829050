"""Collators: rows of a tokenized data set (unpadded ``input_ids`` lists) -> padded tensors.

``EventPaddingCollator`` pads to the longest event of the batch and adds ``attention_mask`` and
``object_index``; ``MaskedEventCollator`` then masks whole objects for pretraining (BERT's
80 % [MASK] / 10 % random / 10 % kept, through :func:`treasure_hf.modeling.mask_objects`).
Objects are found from the token ids alone: a token opens an object when its id lies in a
stage-0 range of ``token_id_ranges`` (``{"TYPE_ID:STAGE": [start, stop)}``, the tokenizer's, as
stored in ``EventTransformerConfig.token_id_ranges``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import CompatibilityError
from ..modeling.token_ranges import lookup_tables, type_spans

PAD_ID = 0  # the tokenizer's [PAD]; token_type_ids pad with 0 too
PASS_THROUGH = ("labels", "weight", "process_id")


def check_token_types(
    ids: np.ndarray,
    types: np.ndarray,
    ranges: Mapping[str, Sequence[int]],
    tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> None:
    """Refuse tokens whose id lies outside the range ``ranges`` gives their token type (or inside
    another type's): the data were tokenized with another tokenizer than the model was made for.
    ``ids``, ``types``: real tokens (any shape, the same)."""
    if not ranges:
        return
    type_of = (tables or lookup_tables(ranges))[2]
    ids = np.asarray(ids, np.int64)
    types = np.asarray(types, np.int64)
    expected = np.where((ids >= 0) & (ids < len(type_of)), type_of[np.clip(ids, 0, len(type_of) - 1)], -1)
    object_types = np.unique(type_of[type_of >= 0])
    bad = (expected != types) & ((expected >= 0) | np.isin(types, object_types))
    if np.any(bad):
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        spans = type_spans(ranges)
        token, kind = int(ids.reshape(-1)[i]), int(types.reshape(-1)[i])
        where = f"a token of type {int(expected.reshape(-1)[i])}" if expected.reshape(-1)[i] >= 0 else "no token"
        raise CompatibilityError(
            None,
            "input_ids",
            f"token id {token} comes with token type {kind}, but the model's "
            f"token ranges make it {where}: model ranges by token type {spans}; the data were "
            "tokenized with another tokenizer than the model was made for",
        )


def object_index_numpy(
    input_ids: np.ndarray, ranges: Mapping[str, Sequence[int]], tables: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """:func:`object_index` on numpy arrays (two table lookups and a cumulative sum)."""
    inside, start = (tables or lookup_tables(ranges))[:2]
    ids = np.clip(input_ids, 0, len(inside) - 1)
    in_object = inside[ids]
    return np.where(in_object, np.cumsum(start[ids], 1) - 1, -1)


def object_index(input_ids: torch.Tensor, ranges: Mapping[str, Sequence[int]]) -> torch.Tensor:
    """(B, L) long: number of each token's object in sequence order from 0, -1 for specials,
    context and padding. ``ranges``: ``{"TYPE_ID:STAGE": [start, stop)}``."""
    inside, start = (torch.from_numpy(t).to(input_ids.device) for t in lookup_tables(ranges)[:2])
    ids = input_ids.clamp(0, len(inside) - 1)
    return torch.where(inside[ids], start[ids].long().cumsum(1) - 1, torch.full_like(input_ids, -1))


def _row_arrays(chunked: Any) -> list[np.ndarray]:
    """A list column of an Arrow table -> one numpy array per row."""
    col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
    o = col.offsets.to_numpy()
    values = col.values.to_numpy(zero_copy_only=False)
    return [values[a:b] for a, b in zip(o[:-1], o[1:])]


@dataclass
class EventPaddingCollator:
    """Rows ``{"input_ids": [...], "token_type_ids": [...], "labels": int, "weight": float, ...}``
    -> ``input_ids``, ``token_type_ids``, ``attention_mask``, ``object_index`` (B, L) long padded to
    the longest row (``max_length`` cuts longer rows), plus ``labels`` (B,) and ``weight`` (B,)
    when the rows have them (``label_dtype`` float for one-logit binary classification).

    ``kinematics_decoder`` (e.g. ``tokenizer.decode_kinematics``: (B, L) ids -> (B, L, 6)) adds
    ``kinematics`` decoded from the padded ids, for models with pair features or four-vector
    combinations (:attr:`EventTransformerConfig.uses_kinematics`); ``features_decoder``
    (``tokenizer.decode_features``) adds ``features`` decoded likewise (hierarchical models).

    ``sequence_columns`` ``{name: width}``: per-token float vectors the rows carry themselves
    (``kinematics``, ``features``, ``constituents``: the original continuous values, flattened to
    ``length x width``), padded to ``(B, L, width)`` float32 alongside the ids.

    ``event_columns`` ``{name: width}``: per-event float vectors (``event_features``: an
    analysis's observables), stacked to ``(B, width)`` float32.

    ``sub_object_columns`` ``{name: F}``: sub-objects the rows carry (``constituents``, ``hits``:
    ``length x N x F`` values and ``NAME_mask`` ``length x N``, ``N`` per row), padded to
    ``(B, L, N_max, F)`` float32 and ``(B, L, N_max)`` bool; skipped where the rows lack them."""

    token_id_ranges: Mapping[str, Sequence[int]] = field(default_factory=dict)
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_dtype: torch.dtype = torch.long
    keep: Sequence[str] = PASS_THROUGH
    kinematics_decoder: Callable[[Any], np.ndarray] | None = None
    features_decoder: Callable[[Any], np.ndarray] | None = None
    sequence_columns: Mapping[str, int] = field(default_factory=dict)
    sub_object_columns: Mapping[str, int] = field(default_factory=dict)
    event_columns: Mapping[str, int] = field(default_factory=dict)

    def _event_values(self, name: str, values: np.ndarray, n: int) -> torch.Tensor:
        """One ``event_columns`` entry: ``n`` rows' values -> (n, width) float32."""
        width = self.event_columns[name]
        values = np.asarray(values, np.float32)
        if values.size != n * width:
            raise ValueError(f"`{name}` holds {values.size} values for {n} events; the model reads {width} per event")
        return torch.from_numpy(values.reshape(n, width).copy())

    def _add_kinematics(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ids = batch["input_ids"]
        for name, decode in (("kinematics", self.kinematics_decoder), ("features", self.features_decoder)):
            if decode is not None:
                batch[name] = torch.as_tensor(decode(ids.cpu()), dtype=torch.float32).to(ids.device)
        return batch

    def _sequence_values(
        self, name: str, flat: np.ndarray, lengths: np.ndarray, full: np.ndarray, width: int
    ) -> torch.Tensor:
        """One ``sequence_columns`` entry: flat per-token values of every row (``full`` tokens
        each) -> (B, width, dim), the first ``lengths`` tokens of each row kept."""
        dim = self.sequence_columns[name]
        per_token = flat.reshape(-1, dim)
        token = np.arange(len(per_token)) - np.repeat(np.cumsum(full) - full, full)
        row = np.repeat(np.arange(len(full)), full)
        kept = token < np.repeat(lengths, full)
        out = np.zeros((len(full), width, dim), np.float32)
        out[row[kept], token[kept]] = per_token[kept]
        return torch.from_numpy(out)

    def _sub_objects(
        self,
        name: str,
        values: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        lengths: np.ndarray,
        full: np.ndarray,
        width: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``sub_object_columns`` entry: per row, ``full`` tokens x N slots x F values and the
        slots' mask -> (B, width, N_max, F), (B, width, N_max), the first ``lengths`` tokens kept."""
        dim = self.sub_object_columns[name]
        slots = [len(m) // f if f else 0 for m, f in zip(masks, full)]
        n_max = max(slots, default=0)
        out = np.zeros((len(full), width, n_max, dim), np.float32)
        out_mask = np.zeros((len(full), width, n_max), bool)
        for r, (v, m, n, k) in enumerate(zip(values, masks, slots, lengths)):
            if n:
                out[r, :k, :n] = np.asarray(v, np.float32).reshape(-1, n, dim)[:k]
                out_mask[r, :k, :n] = np.asarray(m).reshape(-1, n)[:k] != 0
        return torch.from_numpy(out), torch.from_numpy(out_mask)

    def _lookup(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if getattr(self, "_tables", None) is None:
            self._tables = lookup_tables(self.token_id_ranges)
        return self._tables

    def _object_index(self, ids: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(object_index_numpy(ids, self.token_id_ranges, self._lookup()))

    def pad(self, rows: Sequence[Mapping[str, Any]] | Any) -> dict[str, torch.Tensor]:
        """Rows (a list of dicts, as a ``DataLoader`` over a ``Dataset`` hands them), or a whole
        batch as an Arrow table (``dataset.with_format("arrow")[indices]``: the fast path)."""
        if hasattr(rows, "column_names"):
            return self._pad_arrow(rows)
        lengths = np.fromiter((len(r["input_ids"]) for r in rows), np.int64, len(rows))
        width = int(lengths.max()) if len(rows) else 0
        if self.max_length is not None:
            width = min(width, self.max_length)
            lengths = np.minimum(lengths, width)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = np.full((len(rows), width), PAD_ID, np.int64)
        types = np.zeros((len(rows), width), np.int64)
        mask = np.arange(width)[None, :] < lengths[:, None]
        # one flat copy per column: faster than a Python loop over rows for long batches
        ids[mask] = np.concatenate([np.asarray(r["input_ids"][:w]) for r, w in zip(rows, lengths)])
        types[mask] = np.concatenate([np.asarray(r["token_type_ids"][:w]) for r, w in zip(rows, lengths)])
        if self.token_id_ranges:
            check_token_types(ids[mask], types[mask], self.token_id_ranges, self._lookup())
        batch = {
            "input_ids": torch.from_numpy(ids),
            "token_type_ids": torch.from_numpy(types),
            "attention_mask": torch.from_numpy(mask.astype(np.int64)),
        }
        if self.token_id_ranges:
            batch["object_index"] = self._object_index(ids)
        for k in self.keep:
            if rows and k in rows[0]:
                v = np.asarray([r[k] for r in rows])
                batch[k] = torch.from_numpy(v).to(
                    self.label_dtype if k == "labels" else (torch.float32 if k == "weight" else torch.long)
                )
        full = np.fromiter((len(r["input_ids"]) for r in rows), np.int64, len(rows))
        for name in self.sequence_columns:
            flat = np.concatenate([np.asarray(r[name], np.float32).reshape(-1) for r in rows]) if rows else np.zeros(0)
            batch[name] = self._sequence_values(name, flat, lengths, full, width)
        for name in self.event_columns:
            flat = np.concatenate([np.asarray(r[name], np.float32).reshape(-1) for r in rows]) if rows else np.zeros(0)
            batch[name] = self._event_values(name, flat, len(rows))
        for name in self.sub_object_columns:
            if rows and name in rows[0]:
                batch[name], batch[f"{name}_mask"] = self._sub_objects(
                    name, [r[name] for r in rows], [r[f"{name}_mask"] for r in rows], lengths, full, width
                )
        return self._add_kinematics(batch)

    def _pad_arrow(self, table: Any) -> dict[str, torch.Tensor]:
        """The Arrow path: one vectorised scatter per column, no Python object per event; the
        object index is computed on the flat tokens before padding."""
        flat: dict[str, np.ndarray] = {}
        offsets = None
        for name in ("input_ids", "token_type_ids"):
            chunked = table.column(name)
            col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
            o = col.offsets.to_numpy()
            if offsets is None:
                offsets = o.astype(np.int64)
            flat[name] = col.values.to_numpy(zero_copy_only=False)[o[0] : o[-1]]
        full = np.diff(offsets)
        n = len(full)
        lengths = full if self.max_length is None else np.minimum(full, self.max_length)
        width = int(lengths.max()) if n else 0
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        mask = np.arange(width)[None, :] < lengths[:, None]
        keep = (
            None
            if self.max_length is None
            else (np.arange(offsets[-1] - offsets[0]) - np.repeat(offsets[:-1] - offsets[0], full))
            < np.repeat(lengths, full)
        )
        if self.token_id_ranges:
            check_token_types(flat["input_ids"], flat["token_type_ids"], self.token_id_ranges, self._lookup())
            inside, start, _ = self._lookup()
            ids = flat["input_ids"]
            opened = np.cumsum(start[ids], dtype=np.int64)
            first = offsets[:-1] - offsets[0]  # objects opened in earlier rows:
            before = np.where(first > 0, opened[np.maximum(first - 1, 0)], 0) if len(opened) else first
            flat["object_index"] = np.where(inside[ids], opened - np.repeat(before, full) - 1, -1)
        batch: dict[str, torch.Tensor] = {}
        for name, values in flat.items():
            out = np.full((n, width), -1 if name == "object_index" else 0, np.int64)
            out[mask] = values if keep is None else values[keep]
            batch[name] = torch.from_numpy(out)
        batch["attention_mask"] = torch.from_numpy(mask.astype(np.int64))
        names = table.column_names
        for k in self.keep:
            if k in names:
                v = np.array(table.column(k).to_numpy())  # a writable copy
                batch[k] = torch.from_numpy(v).to(
                    self.label_dtype if k == "labels" else (torch.float32 if k == "weight" else torch.long)
                )
        for name in self.sequence_columns:
            chunked = table.column(name)
            col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
            o = col.offsets.to_numpy()
            values = col.values.to_numpy(zero_copy_only=False)[o[0] : o[-1]].astype(np.float32)
            batch[name] = self._sequence_values(name, values, lengths, full, width)
        for name in self.event_columns:
            chunked = table.column(name)
            col = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
            o = col.offsets.to_numpy()
            batch[name] = self._event_values(name, col.values.to_numpy(zero_copy_only=False)[o[0] : o[-1]], n)
        subs = [name for name in self.sub_object_columns if name in names]
        for name in subs:
            per_row = [_row_arrays(table.column(column)) for column in (name, f"{name}_mask")]
            batch[name], batch[f"{name}_mask"] = self._sub_objects(name, *per_row, lengths, full, width)
        return self._add_kinematics(
            {
                k: batch[k]
                for k in (
                    "input_ids",
                    "token_type_ids",
                    "attention_mask",
                    "object_index",
                    *self.keep,
                    *self.sequence_columns,
                    *self.event_columns,
                    *subs,
                    *(f"{n}_mask" for n in subs),
                )
                if k in batch
            }
        )

    def __call__(self, rows: Sequence[Mapping[str, Any]] | Any) -> dict[str, torch.Tensor]:
        return self.pad(rows)


@dataclass
class MaskedEventCollator(EventPaddingCollator):
    """Padding, then masking of whole objects: ``labels`` (B, L) hold the original ids of the
    selected objects' tokens and -100 elsewhere. A selected object is replaced by [MASK] with
    probability ``mask_fraction``, by random ids of its own type and stage with ``random_fraction``,
    and kept otherwise. ``seed`` makes the masks reproducible (one generator per collator). With
    a ``kinematics_decoder`` the kinematics are decoded from the masked ids. ``masked_positions``
    (B, L) marks the tokens of every [MASK]ed or replaced object: the model hides their features,
    kinematics, constituents and hits, which would otherwise show the original."""

    mask_rate: float = 0.15
    mask_token_id: int = 3
    mask_fraction: float = 0.8
    random_fraction: float = 0.1
    seed: int | None = None
    keep: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not self.token_id_ranges:
            raise ValueError("MaskedEventCollator needs token_id_ranges to find the objects")
        self.generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> MaskedEventCollator:
        return cls(token_id_ranges=config.token_id_ranges, mask_token_id=config.mask_token_id, **kwargs)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        return self.mask(self.pad(rows))

    def mask(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Mask an already padded batch (on any device); ``generator`` overrides the collator's."""
        from ..modeling.masking import mask_objects

        batch = dict(batch)
        if "object_index" not in batch:
            batch["object_index"] = object_index(batch["input_ids"], self.token_id_ranges)
        masked = mask_objects(
            batch["input_ids"],
            batch["object_index"],
            self.mask_rate,
            mask_token_id=self.mask_token_id,
            mask_fraction=self.mask_fraction,
            random_fraction=self.random_fraction,
            token_type_ids=batch["token_type_ids"],
            token_id_ranges=self.token_id_ranges,
            generator=generator or self.generator,
        )
        batch["input_ids"] = masked["input_ids"]
        batch["labels"] = masked["labels"]
        batch["masked_positions"] = masked["hidden_positions"]
        return self._add_kinematics(batch)
