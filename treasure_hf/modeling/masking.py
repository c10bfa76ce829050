"""BERT-style masking of whole objects for masked event modeling (the collator builds on it).

An object is every token that shares an ``object_index`` (its quantizer stages). A fraction
``mask_rate`` of the objects of each event is selected; each selected object, as a whole, is
replaced by [MASK] (``mask_fraction``, 80 %), by random ids (``random_fraction``, 10 %) or kept
(the rest), and every one of its tokens gets its original id as label.

Kept out of ``modeling_event_transformer.py`` so that the saved remote-code folder stays small.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .token_ranges import range_key

IGNORE_INDEX = -100


def mask_objects(
    input_ids: torch.Tensor,
    object_index: torch.Tensor,
    mask_rate: float = 0.15,
    *,
    mask_token_id: int = 3,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
    random_token_range: tuple[int, int] | None = None,
    token_type_ids: torch.Tensor | None = None,
    token_id_ranges: Mapping[str, list[int]] | None = None,
    at_least_one: bool = True,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Mask whole objects of a batch.

    Args:
        input_ids: (B, L) long token ids; object_index: (B, L) long, -1 outside objects.
        mask_rate: probability that an object is selected.
        mask_fraction / random_fraction: of the selected objects, the share replaced by [MASK] /
            by random ids (the rest is kept as is).
        random_token_range: [start, stop) of the random ids, e.g. (first object id, vocab_size);
            or ``token_type_ids`` + ``token_id_ranges`` ({"TYPE_ID:STAGE": [start, stop)}, as in
            ``EventTransformerConfig.token_id_ranges``) to draw each token from its own type and
            stage's range. One of the two is needed when ``random_fraction`` > 0.
        at_least_one: in an event with objects where none was drawn, select one at random (so
            every event contributes to the loss).
        generator: a ``torch.Generator`` for reproducible masks (on the tensors' device).

    Returns:
        ``{"input_ids": (B, L) masked ids, "labels": (B, L) original ids of the selected objects'
        tokens and -100 elsewhere, "masked_positions": (B, L) bool, the tokens replaced by [MASK],
        "hidden_positions": (B, L) bool, the tokens replaced by [MASK] or by random ids}``.
        Pass ``hidden_positions`` to the model as ``masked_positions``: it hides the features,
        kinematics, constituents and hits of every object whose ids no longer are its own (a
        randomly replaced jet would otherwise show its original constituents). For continuous
        inputs, call with ``mask_fraction=1, random_fraction=0`` (the two are then equal).
    """
    if input_ids.shape != object_index.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and object_index {tuple(object_index.shape)} differ")
    if not 0 <= mask_fraction + random_fraction <= 1:
        raise ValueError("mask_fraction + random_fraction must lie in [0, 1]")
    if random_fraction > 0 and random_token_range is None and not (token_id_ranges and token_type_ids is not None):
        raise ValueError("random replacement needs random_token_range, or token_type_ids and token_id_ranges")
    device = input_ids.device
    b = input_ids.shape[0]
    in_object = object_index >= 0
    n_objects = int(object_index.max()) + 1 if in_object.any() else 0
    if n_objects == 0:
        return {
            "input_ids": input_ids.clone(),
            "labels": torch.full_like(input_ids, IGNORE_INDEX),
            "masked_positions": torch.zeros_like(in_object),
            "hidden_positions": torch.zeros_like(in_object),
        }
    real = torch.zeros(b, n_objects, dtype=torch.bool, device=device)
    real[torch.nonzero(in_object, as_tuple=True)[0], object_index[in_object]] = True
    selected = (torch.rand(b, n_objects, generator=generator, device=device) < mask_rate) & real
    if at_least_one:
        none = real.any(1) & ~selected.any(1)
        if none.any():  # one object drawn uniformly among the event's real ones
            score = torch.rand(b, n_objects, generator=generator, device=device).masked_fill(~real, -1.0)
            pick = torch.zeros_like(selected).scatter_(1, score.argmax(1, keepdim=True), True)
            selected |= pick & none[:, None]
    action = torch.rand(b, n_objects, generator=generator, device=device)
    to_mask = selected & (action < mask_fraction)
    to_random = selected & (action >= mask_fraction) & (action < mask_fraction + random_fraction)
    index = object_index.clamp_min(0)
    token_selected = in_object & selected.gather(1, index)
    token_masked = in_object & to_mask.gather(1, index)
    token_random = in_object & to_random.gather(1, index)
    out = input_ids.clone()
    out[token_masked] = mask_token_id
    if token_random.any():
        out[token_random] = _random_ids(
            input_ids, object_index, token_random, random_token_range, token_type_ids, token_id_ranges, generator
        )
    labels = torch.where(token_selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return {
        "input_ids": out,
        "labels": labels,
        "masked_positions": token_masked,
        "hidden_positions": token_masked | token_random,
    }


def _random_ids(
    input_ids: torch.Tensor,
    object_index: torch.Tensor,
    where: torch.Tensor,
    random_token_range: tuple[int, int] | None,
    token_type_ids: torch.Tensor | None,
    token_id_ranges: Mapping[str, list[int]] | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    n = int(where.sum())
    u = torch.rand(n, generator=generator, device=input_ids.device)
    if token_id_ranges and token_type_ids is not None:
        prev = torch.nn.functional.pad(object_index[:, :-1], (1, 0), value=-2)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        start = torch.where((object_index != prev) | (object_index < 0), pos, 0).cummax(1).values
        stage = (pos - start)[where].tolist()
        types = token_type_ids[where].tolist()
        lo_hi = []
        for t, s, original in zip(types, stage, input_ids[where].tolist()):
            r = token_id_ranges.get(range_key(t, s))
            lo_hi.append(r if r is not None else [original, original + 1])
        lo, hi = torch.tensor(lo_hi, device=input_ids.device).unbind(1)
    else:
        lo = torch.full((n,), int(random_token_range[0]), device=input_ids.device)
        hi = torch.full((n,), int(random_token_range[1]), device=input_ids.device)
    return (lo + (u * (hi - lo)).long().clamp(max=(hi - lo - 1).clamp_min(0))).to(input_ids.dtype)
