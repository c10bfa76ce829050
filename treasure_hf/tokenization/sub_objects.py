"""Sub-objects (jet constituents, track hits) of an :class:`~.tokenization_event.EventTokenizer`:
the side outputs aligned with their parent's tokens, and their decoding back onto the decoded
parents. They never enter the sequence (see the tokenizer's module docstring).

Shapes: ``token_types``/``token_object`` (n, L); sub-object outputs (n, L, N, F) features,
(n, L, N) masks, (n, L, N, stages) ids; ``sub_ids`` (n, L, N, stages).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data import schema
from ..errors import InputError
from .features import from_relative, parent_field_names, sub_object_values

if TYPE_CHECKING:
    from .tokenization_event import EventTokenizer


def sub_object_outputs(
    tokenizer: EventTokenizer,
    arrays: Mapping[str, np.ndarray],
    per_type: Mapping[str, tuple],
    token_types: np.ndarray,
    token_object: np.ndarray,
    *,
    continuous: bool,
    ids: bool,
    longest: bool,
) -> dict[str, np.ndarray]:
    """``constituents``/``hits`` (n, L, N, F), their masks (n, L, N) and ``constituent_ids``/
    ``hit_ids`` (n, L, N, stages), gathered for each token from its parent object's sub-objects."""
    if ids and not tokenizer.sub_quantizers:
        raise ValueError(
            "return_sub_ids=True needs a tokenizer with a constituents or hits quantizer "
            "(treasure train-tokenizer --types ...,jets,constituents)"
        )
    wanted = [
        t
        for t in schema.SUB_OBJECT_TYPES
        if schema.GROUPS[t].parent in tokenizer.object_types and (continuous or t in tokenizer.sub_quantizers)
    ]
    if not wanted:
        parents = sorted({schema.GROUPS[t].parent for t in schema.SUB_OBJECT_TYPES})
        raise ValueError(
            f"this tokenizer has none of {parents} in its sequence: there are no sub-objects to align with its tokens"
        )
    present = [t for t in wanted if schema.key("common", t, schema.MASK) in arrays]
    if not present:
        k = schema.key("common", wanted[0], schema.MASK)
        raise InputError(
            None,
            k,
            f"sub-objects were requested (return_constituents/return_sub_ids) but the "
            f"events carry no {wanted[0]} (common/{wanted[0]}/*)",
        )
    out: dict[str, np.ndarray] = {}
    n, length = token_types.shape
    for t in present:
        parent = schema.GROUPS[t].parent
        parent_mask = per_type[parent][1]
        values, mask = sub_object_values(arrays, t, parent_mask.shape[1], tokenizer.max_objects.get(t))
        mask = np.pad(mask, [(0, 0), (0, parent_mask.shape[1] - mask.shape[1]), (0, 0)])
        if longest:  # cut to the last sub-object slot any kept parent uses
            used = np.nonzero(mask.any((0, 1)))[0]
            mask = mask[..., : int(used[-1]) + 1 if len(used) else 1]
        n_sub = mask.shape[2]
        is_parent = (token_types == schema.TOKEN_TYPE_IDS[parent]) & (token_object >= 0)
        rows = np.arange(n)[:, None]
        index = np.where(is_parent, token_object, 0)
        token_mask = mask[rows, index] & is_parent[..., None]  # (n, L, n_sub)
        out[f"{t}_mask"] = token_mask
        flat = dict(values)
        if continuous:
            scaler = tokenizer.sub_scalers.get(t)
            if scaler is None:
                raise ValueError(
                    f"this tokenizer has no fitted {t} scaler for return_constituents=True: train it "
                    f"with `treasure train-tokenizer` on data carrying common/{t}/*, or call "
                    f"tokenizer.fit_sub_scalers(events) and save it"
                )
            try:
                x = scaler.transform(flat)
            except InputError as exc:
                raise InputError(None, exc.key, exc.message) from None
            feats = np.zeros((*mask.shape, scaler.n_columns), np.float32)
            feats[mask] = x
            out[t] = feats[rows, index] * token_mask[..., None]
        if ids and t in tokenizer.sub_quantizers:
            q = tokenizer.sub_quantizers[t]
            x = q.scaler.transform(flat)
            feats = np.zeros((*mask.shape, x.shape[-1]), np.float32)
            feats[mask] = x
            with torch.no_grad():
                codes = (
                    q.tokenize(
                        torch.from_numpy(feats.reshape(-1, n_sub, x.shape[-1])),
                        torch.from_numpy(mask.reshape(-1, n_sub)),
                    )
                    .numpy()
                    .reshape(*mask.shape, -1)
                )
            tok = tokenizer._offsets[t] + np.arange(codes.shape[-1]) * q.config.codebook_size + codes
            tok = np.where(mask[..., None], tok, tokenizer.pad_token_id)
            out[f"{schema.GROUPS[t].singular}_ids"] = tok[rows, index] * token_mask[..., None]
    return out


def decode_sub_objects(
    tokenizer: EventTokenizer, t: str, ids: np.ndarray, sub_ids: np.ndarray, decoded: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Sub-objects of type ``t`` from their ids (n, L, N, stages) at the parent's stage-0 tokens."""
    if t not in tokenizer.sub_quantizers:
        raise ValueError(f"this tokenizer has no {t} quantizer to decode {schema.GROUPS[t].singular}_ids with")
    q = tokenizer.sub_quantizers[t]
    cfg = q.config
    if sub_ids.ndim == 3:
        sub_ids = sub_ids[None]
    if sub_ids.shape[:2] != ids.shape or sub_ids.shape[-1] != cfg.num_stages:
        raise ValueError(
            f"{schema.GROUPS[t].singular}_ids must have shape (n_events, L, N, {cfg.num_stages}) aligned with "
            f"input_ids {ids.shape}, not {sub_ids.shape}"
        )
    parent = schema.GROUPS[t].parent
    parent_mask = decoded[schema.key("common", parent, schema.MASK)]
    first = tokenizer.id_range(parent, 0)
    starts = (ids >= first.start) & (ids < first.stop)
    obj = np.cumsum(starts, 1) - 1
    r, c = np.nonzero(starts & (obj < parent_mask.shape[1]))
    n_sub = sub_ids.shape[2]
    codes = np.zeros((*parent_mask.shape, n_sub, cfg.num_stages), np.int64)
    mask = np.zeros((*parent_mask.shape, n_sub), bool)
    rel = sub_ids[r, c] - tokenizer._offsets[t] - np.arange(cfg.num_stages) * cfg.codebook_size  # (k, N, stages)
    real = np.all((rel >= 0) & (rel < cfg.codebook_size), -1)
    codes[r, obj[r, c]] = np.where(real[..., None], rel, 0)
    mask[r, obj[r, c]] = real
    with torch.no_grad():
        x = q.decode_codes(torch.from_numpy(codes[mask])).numpy()
    parents = {
        f: np.broadcast_to(decoded[schema.key("common", parent, f)][..., None], mask.shape)[mask]
        for f in parent_field_names(t)
    }
    phys = from_relative(t, q.scaler.inverse(x), parents)
    out = {}
    for name, v in phys.items():
        full = np.zeros(mask.shape, v.dtype)
        full[mask] = v
        out[schema.key("common", t, name.split("/")[1])] = full
    out[schema.key("common", t, schema.MASK)] = mask
    out[schema.key("common", t, schema.COUNT)] = mask.sum(-1).astype(np.int32)
    return out
