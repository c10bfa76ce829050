"""Event transformers: encoders of tokenized collider events, as ``PreTrainedModel``.

Reading order: where the objects are (``object_index`` -> :class:`ObjectLayout`, positions), the
objects' four-momenta and the ParT-style pair features, the encoder layer (pre-LN,
``scaled_dot_product_attention`` with the padding mask and the pair bias, gradient
checkpointing; also used by the small inner encoders), the input embeddings (token / flat
continuous / per-type continuous), the hierarchical feature-group object encoder, the
constituent/hit encoder with its gated residual, the encoder, the pooler (with its optional
four-vector combinations and pair readout), and the heads
(sequence classification, masked event modeling).

Inputs (all (batch, length) unless stated; see the team's model-input contract):
``input_ids``, ``token_type_ids``, ``attention_mask`` (1 real, 0 padding); ``features``
(B, L, feature_size) standardised per-type columns; ``kinematics`` (B, L, 6) pT [GeV], eta,
phi [rad], E [GeV], mass [GeV], charge; ``object_index`` (object number, -1 for specials and
padding, shared by the stage tokens of one object); ``constituents`` (B, L, Nc, Fc) +
``constituents_mask`` (B, L, Nc) for jet tokens; ``hits`` (B, L, Nh, Fh) + ``hits_mask``;
``event_features`` (B, event_feature_size) per-event values (engineered observables).

This file imports nothing from treasure_hf outside its folder: ``register_for_auto_class``
copies it with the configuration into a saved folder that loads with ``trust_remote_code``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput, SequenceClassifierOutput

from .configuration_event_transformer import EventTransformerConfig
from .masking import IGNORE_INDEX
from .token_ranges import stage_table, type_ids

TOKENIZER_LAYOUT_FILE = "event_tokenizer.json"
"""The saved tokenizer's description (``EventTokenizer.layout()``), read to check a folder's model
and tokenizer belong together."""


# ---------------------------------------------------------------------------------------------
# Sequence bookkeeping
# ---------------------------------------------------------------------------------------------


def running_max(values: torch.Tensor) -> torch.Tensor:
    """``values.cummax(1).values`` of (B, L) integers; exported to ONNX (which has no cummax) as
    the maximum over the lower triangle, (B, L, L) in memory."""
    if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
        length = values.shape[1]
        below = torch.ones(length, length, dtype=torch.bool, device=values.device).tril()
        return torch.where(below, values.unsqueeze(1), torch.zeros_like(values).unsqueeze(1)).amax(-1)
    return values.cummax(1).values


@dataclass
class ObjectLayout:
    """Where the objects of a batch are, from ``object_index`` (all (B, L)).

    ``in_object``: the token belongs to an object; ``is_start``: it is its object's first token;
    ``start``: position of the first token of the token's object (its own position outside
    objects); ``stage``: position within the object (0 outside objects); ``length``: tokens of
    the object, at its first token (0 elsewhere)."""

    in_object: torch.Tensor
    is_start: torch.Tensor
    start: torch.Tensor
    stage: torch.Tensor
    length: torch.Tensor

    @classmethod
    def from_object_index(cls, object_index: torch.Tensor) -> ObjectLayout:
        b, length_ = object_index.shape
        pos = torch.arange(length_, device=object_index.device).expand(b, length_)
        prev = F.pad(object_index[:, :-1], (1, 0), value=-2)
        in_object = object_index >= 0
        is_start = in_object & (object_index != prev)
        start = running_max(torch.where(is_start | ~in_object, pos, torch.zeros_like(pos)))
        stage = pos - start
        length = torch.zeros_like(pos).scatter_add_(1, start, in_object.long()) * is_start
        return cls(in_object, is_start, start, stage, length)

    @classmethod
    def no_objects(cls, shape: torch.Size, device: torch.device) -> ObjectLayout:
        """Every token its own object (used when ``object_index`` is not given)."""
        pos = torch.arange(shape[1], device=device).expand(shape)
        ones = torch.ones(shape, dtype=torch.bool, device=device)
        return cls(ones, ones, pos, torch.zeros_like(pos), torch.ones_like(pos))

    def broadcast(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, ...) values at each object's first token -> the same at every token of the object."""
        index = self.start.view(*self.start.shape, *([1] * (x.dim() - 2))).expand_as(x)
        return x.gather(1, index)


def sum_over_objects(x: torch.Tensor, layout: ObjectLayout) -> torch.Tensor:
    """(B, L, H) -> the same with each object's first token holding the sum of the vectors of all
    the object's tokens (its stages); every other token unchanged."""
    summed = torch.zeros_like(x).scatter_add(
        1, layout.start[..., None].expand_as(x), x * layout.in_object[..., None].to(x.dtype)
    )
    return torch.where((layout.in_object & layout.is_start)[..., None], summed, x)


@dataclass
class Compaction:
    """The positions an encoder attends over, moved to the front: ``index`` (B, L') their
    positions in the full sequence, ``kept`` (B, L') which entries are real (a row with fewer
    kept positions is padded). Attention then costs L'^2 instead of L^2; the result is that of
    masking the other positions out as keys (their own states are discarded)."""

    index: torch.Tensor
    kept: torch.Tensor

    @classmethod
    def of(cls, keep: torch.Tensor) -> Compaction:
        """``keep`` (B, L) bool -> the kept positions in order, without sorting: position
        ``cumsum - 1`` of each kept token, the others sent to a spare column that is dropped."""
        b, length = keep.shape
        counts = keep.sum(1)
        n = max(int(counts.max()), 1) if b else 1
        pos = torch.arange(length, device=keep.device).expand(b, length)
        dest = torch.where(keep, keep.long().cumsum(1) - 1, torch.full_like(pos, n))
        index = torch.zeros(b, n + 1, dtype=torch.long, device=keep.device).scatter(1, dest, pos)[:, :n]
        kept = torch.arange(n, device=keep.device)[None, :] < counts[:, None]
        return cls(index, kept)

    @staticmethod
    def _expand(index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return index.view(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, ...) -> (B, L', ...) (a padded entry holds position 0's values)."""
        return x.gather(1, self._expand(self.index, x))

    def scatter(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """(B, L', ...) -> (B, length, ...), zeros at the positions not kept (padded entries go to
        a spare position that is dropped)."""
        index = torch.where(self.kept, self.index, torch.full_like(self.index, length))
        out = x.new_zeros(x.shape[0], length + 1, *x.shape[2:]).scatter(1, self._expand(index, x), x)
        return out[:, :length]

    def layout(self, in_object: torch.Tensor) -> ObjectLayout:
        """The layout of the compacted sequence: each kept object token is a whole object."""
        obj = self.gather(in_object) & self.kept
        pos = torch.arange(obj.shape[1], device=obj.device).expand_as(obj)
        return ObjectLayout(obj, obj, pos, torch.zeros_like(pos), obj.long())


def position_ids_for(token_type_ids: torch.Tensor, layout: ObjectLayout, unordered_types: list[int]) -> torch.Tensor:
    """Sequence positions; tokens of an unordered type group get the group's first position plus
    their stage within the object, so the order of objects within the group does not matter."""
    b, length = token_type_ids.shape
    pos = torch.arange(length, device=token_type_ids.device).expand(b, length)
    if not unordered_types:
        return pos
    unordered = torch.isin(token_type_ids, torch.tensor(unordered_types, device=token_type_ids.device))
    prev = F.pad(token_type_ids[:, :-1], (1, 0), value=-1)
    group_start = running_max(torch.where(token_type_ids != prev, pos, torch.zeros_like(pos)))
    return torch.where(unordered, group_start + layout.stage, pos)


def flat_kinematics(kinematics: torch.Tensor, log_columns: list[int]) -> torch.Tensor:
    """(B, L, 6) pT, eta, phi, E, mass [GeV, rad], charge -> the flat mode's input columns:
    log(1 + x) for the GeV scales (``log_columns``), the others as they are."""
    if not log_columns:
        return kinematics
    is_log = torch.zeros(kinematics.shape[-1], dtype=torch.bool, device=kinematics.device)
    is_log[log_columns] = True
    return torch.where(is_log, torch.log1p(kinematics.clamp_min(0)), kinematics)


# ---------------------------------------------------------------------------------------------
# Four-momenta and pair features (from ``kinematics``)
# ---------------------------------------------------------------------------------------------

_LOG_EPS = 1e-4
"""Floor of the quantities whose logarithm the pair features take (dR, kT [GeV], z, m^2 [GeV^2])."""
PAIR_MASS_OCTAVES = 6
"""Fourier octaves of ln m_ij in the pair features."""
NUM_PAIR_FEATURES = 6 + 2 * PAIR_MASS_OCTAVES
"""Width of :func:`pair_kinematic_features`."""


def kinematic_columns(config: EventTransformerConfig) -> dict[str, int]:
    """Column of ``kinematics`` holding pt, eta, phi, mass and charge (from ``kinematics_names``)."""
    names = list(config.kinematics_names)
    missing = [n for n in ("pt", "eta", "phi", "mass", "charge") if n not in names]
    if missing:
        raise ValueError(
            f"config.kinematics_names {names} lacks {missing}: pair features and four-vector "
            "combinations need pt, eta, phi, mass and charge"
        )
    return {n: names.index(n) for n in ("pt", "eta", "phi", "mass", "charge")}


def four_momenta(kinematics: torch.Tensor, columns: dict[str, int]) -> torch.Tensor:
    """(..., 6) kinematics -> (..., 4) four-momenta (E, px, py, pz) [GeV], float32, with
    E = sqrt((pT cosh eta)^2 + m^2) (0 where pT is 0: specials, padding, hidden objects)."""
    k = kinematics.float()
    pt, eta, phi, m = (k[..., columns[n]] for n in ("pt", "eta", "phi", "mass"))
    pz = pt * torch.sinh(eta)
    energy = torch.sqrt((pt * torch.cosh(eta)) ** 2 + m**2)
    return torch.stack([energy, pt * torch.cos(phi), pt * torch.sin(phi), pz], -1)


def invariants(p: torch.Tensor) -> dict[str, torch.Tensor]:
    """(..., 4) four-momenta (E, px, py, pz) [GeV] -> mass^2 [GeV^2] (may be slightly negative
    from rounding), pT [GeV] and rapidity y (0 where the system has no transverse mass)."""
    e, px, py, pz = p.unbind(-1)
    m2 = e**2 - px**2 - py**2 - pz**2
    pt2 = px**2 + py**2
    mt = torch.sqrt((pt2 + m2.clamp_min(0)).clamp_min(1e-12))
    return {"m2": m2, "pt": torch.sqrt(pt2 + 1e-12), "rapidity": torch.asinh(pz / mt)}


def fourier_features(x: torch.Tensor, octaves: int) -> torch.Tensor:
    """(...,) -> (..., 2 * octaves): sin and cos of pi 2^k x, k = 0 .. octaves - 1, so that an MLP
    can draw narrow peaks (a period of 2^(1-k) in x): for x = ln(m / GeV) the finest period at
    eight octaves is 0.8% of m, about 1 GeV at 125 GeV."""
    scaled = x[..., None] * (math.pi * 2.0 ** torch.arange(octaves, device=x.device, dtype=x.dtype))
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], -1)


def pair_kinematic_features(
    ki: torch.Tensor, kj: torch.Tensor, ti: torch.Tensor, tj: torch.Tensor, columns: dict[str, int]
) -> torch.Tensor:
    """(..., NUM_PAIR_FEATURES) features of pairs of objects with kinematics ``ki``, ``kj``
    (..., 6) and token types ``ti``, ``tj``: ln dR (rapidity-azimuth), ln kT, ln z, ln m^2,
    q_i q_j, 1[same type], Fourier features of ln m (PAIR_MASS_OCTAVES)."""
    c = columns
    ki, kj = ki.float(), kj.float()
    pi, pj = four_momenta(ki, c), four_momenta(kj, c)
    pt_i, pt_j = ki[..., c["pt"]], kj[..., c["pt"]]
    dy = invariants(pi)["rapidity"] - invariants(pj)["rapidity"]
    dphi = torch.remainder(ki[..., c["phi"]] - kj[..., c["phi"]] + math.pi, 2 * math.pi) - math.pi
    dr = torch.sqrt(dy**2 + dphi**2)
    pt_min = torch.minimum(pt_i, pt_j)
    log_m2 = torch.log(invariants(pi + pj)["m2"].clamp_min(_LOG_EPS))
    feats = torch.stack(
        [
            torch.log(dr.clamp_min(_LOG_EPS)),
            torch.log((pt_min * dr).clamp_min(_LOG_EPS)),
            torch.log((pt_min / (pt_i + pt_j).clamp_min(_LOG_EPS)).clamp_min(_LOG_EPS)),
            log_m2,
            ki[..., c["charge"]] * kj[..., c["charge"]],
            (ti == tj).float(),
        ],
        -1,
    )
    return torch.cat([feats, fourier_features(0.5 * log_m2, PAIR_MASS_OCTAVES)], -1)


class PairFeatureBias(nn.Module):
    """ParT's interaction matrix (Qu, Li, Qian 2022): for every ordered pair of objects (i, j),
    ln dR_ij (rapidity-azimuth), ln kT = ln(min(pT) dR), ln z = ln(min(pT) / (pT_i + pT_j)),
    ln m_ij^2, q_i q_j and 1[same type], plus Fourier features of ln m_ij (6 octaves, so that a
    narrow resonance such as the Z can be told apart: ParT's smooth inputs cannot draw a 2%
    wide peak) -> a learned affine -> an MLP -> one attention bias per head, (B, heads, L, L).

    A token's object is that of its ``object_index``; pairs within one object, and pairs with
    a token whose pT is 0 (specials, padding, masked objects) get bias 0."""

    NUM_FEATURES = NUM_PAIR_FEATURES

    def __init__(self, config: EventTransformerConfig):
        super().__init__()
        d = config.pair_embedding_size
        self.columns = kinematic_columns(config)
        self.input_scale = nn.Parameter(torch.ones(self.NUM_FEATURES))  # learned affine of the inputs
        self.input_shift = nn.Parameter(torch.zeros(self.NUM_FEATURES))
        self.mlp = nn.Sequential(
            nn.Linear(self.NUM_FEATURES, d),
            ACT2FN[config.hidden_act],
            nn.Linear(d, d),
            ACT2FN[config.hidden_act],
            nn.Linear(d, config.num_attention_heads),
        )

    def features(self, ki: torch.Tensor, kj: torch.Tensor, ti: torch.Tensor, tj: torch.Tensor) -> torch.Tensor:
        """Pair features (..., NUM_FEATURES) of objects with kinematics ``ki``, ``kj`` (..., 6)
        and token types ``ti``, ``tj`` (...): :func:`pair_kinematic_features`."""
        return pair_kinematic_features(ki, kj, ti, tj, self.columns)

    def pair_features(
        self, kinematics: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, L, NUM_FEATURES) features of every pair of tokens and (B, L, L) pT of both > 0."""
        length = kinematics.shape[1]
        k, t = kinematics, token_type_ids
        feats = self.features(
            k[:, :, None].expand(-1, -1, length, -1),
            k[:, None].expand(-1, length, -1, -1),
            t[:, :, None].expand(-1, -1, length),
            t[:, None].expand(-1, length, -1),
        )
        pt = kinematics[..., self.columns["pt"]]
        return feats, (pt[:, :, None] > 0) & (pt[:, None, :] > 0)

    def forward(self, kinematics: torch.Tensor, token_type_ids: torch.Tensor, layout: ObjectLayout) -> torch.Tensor:
        """The MLP runs once per pair of objects (at their first tokens), and its output is
        copied to every pair of their tokens: (B, heads, L, L)."""
        pt = kinematics[..., self.columns["pt"]]
        first = layout.is_start & layout.in_object & (pt > 0)
        pairs = first[:, :, None] & first[:, None, :]
        index = torch.arange(pairs.shape[1], device=pairs.device)
        pairs = pairs & (index.unsqueeze(0) != index.unsqueeze(1))  # not an object with itself
        b, i, j = pairs.nonzero(as_tuple=True)
        dtype = self.mlp[0].weight.dtype
        feats = self.features(kinematics[b, i], kinematics[b, j], token_type_ids[b, i], token_type_ids[b, j])
        feats = feats.to(dtype) * self.input_scale.to(dtype) + self.input_shift.to(dtype)
        n, length = kinematics.shape[:2]
        at_first = torch.zeros(n, length, length, self.mlp[-1].out_features, dtype=dtype, device=kinematics.device)
        at_first = at_first.index_put((b, i, j), self.mlp(feats))
        rows = torch.arange(n, device=kinematics.device)[:, None, None]
        bias = at_first[rows, layout.start[:, :, None], layout.start[:, None, :]]  # (B, L, L, heads)
        return bias.permute(0, 3, 1, 2)


# ---------------------------------------------------------------------------------------------
# Encoder layer (used by the event encoder and the inner object / constituent encoders)
# ---------------------------------------------------------------------------------------------


class EventTransformerLayer(GradientCheckpointingLayer):
    """Pre-LN transformer layer: x + Attn(LN(x)), then x + MLP(LN(x)); attention through
    ``scaled_dot_product_attention`` with ``key_mask`` (B, L) bool, True for keys to attend to,
    and an optional additive ``attention_bias`` (B, heads, L, L) (the pair features)."""

    def __init__(self, config: EventTransformerConfig):
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.attention_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.qkv = nn.Linear(h, 3 * h)
        self.attention_output = nn.Linear(h, h)
        self.mlp_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(h, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.output = nn.Linear(config.intermediate_size, h)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.attention_dropout = config.attention_probs_dropout_prob

    def forward(
        self, hidden_states: torch.Tensor, key_mask: torch.Tensor, attention_bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, length, h = hidden_states.shape
        q, k, v = (
            self.qkv(self.attention_norm(hidden_states))
            .view(b, length, 3, self.num_heads, h // self.num_heads)
            .permute(2, 0, 3, 1, 4)
        )
        mask = key_mask[:, None, None, :]
        if attention_bias is not None:
            mask = attention_bias.to(q.dtype).masked_fill(~mask, float("-inf"))
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attention_dropout if self.training else 0.0
        )
        hidden_states = hidden_states + self.dropout(self.attention_output(a.transpose(1, 2).reshape(b, length, h)))
        mlp = self.output(self.activation(self.intermediate(self.mlp_norm(hidden_states))))
        return hidden_states + self.dropout(mlp)


def _safe_key_mask(mask: torch.Tensor) -> torch.Tensor:
    """Rows with no key at all (an empty event) attend to everything rather than produce NaN."""
    return mask | ~mask.any(-1, keepdim=True)


class SmallEncoder(nn.Module):
    """``num_layers`` :class:`EventTransformerLayer` + a final LayerNorm, over short sequences
    (an object's sub-tokens, a jet's constituents)."""

    def __init__(self, config: EventTransformerConfig, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(EventTransformerLayer(config) for _ in range(num_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        key_mask = _safe_key_mask(mask)
        for layer in self.layers:
            x = layer(x, key_mask)
        return self.norm(x)


# ---------------------------------------------------------------------------------------------
# Input embeddings
# ---------------------------------------------------------------------------------------------


class TokenContent(nn.Module):
    """Per-token content vectors (B, L, H) of the input mode, before positions:

    - ``tokens``: token_embedding(input_ids) + type_embedding(token_type_ids);
    - ``flat``: Linear([log(1+pT), eta, phi, log(1+E), log(1+m), q, one-hot type]) (the seeds');
    - ``per_type``: Linear_type(features) + type_embedding(token_type_ids).

    In the continuous modes, specials and context tokens ([CLS], [SEP], [ATLAS|CMS]) add an
    embedding of their id, and ``masked_positions`` (whose inputs the caller has zeroed) add a
    learned mask vector."""

    def __init__(self, config: EventTransformerConfig):
        super().__init__()
        h, mode = config.hidden_size, config.input_mode
        self.mode = mode
        self.config = config
        if mode == "tokens":
            self.token_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        else:
            self.context_embeddings = nn.Embedding(config.num_context_tokens, h)
            self.mask_embedding = nn.Parameter(torch.zeros(h))
        if mode != "flat":
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        if mode == "flat":
            if not config.kinematics_names:
                raise ValueError("input_mode='flat' needs config.kinematics_names (the registry's FLAT_KINEMATICS)")
            self.flat_projection = nn.Linear(len(config.kinematics_names) + config.type_vocab_size, h)
        elif mode == "per_type":
            if config.feature_size <= 0:
                raise ValueError("input_mode='per_type' needs config.feature_size > 0 (width of `features`)")
            self.type_projections = nn.ModuleList(
                nn.Linear(config.feature_size, h) for _ in range(config.type_vocab_size)
            )

    def _ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.experiment_conditioning or c.num_experiments == 0:
            return input_ids
        is_context = (input_ids >= c.num_special_tokens) & (input_ids < c.num_context_tokens)
        return torch.where(is_context, torch.full_like(input_ids, c.num_special_tokens), input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor,
        features: torch.Tensor | None,
        kinematics: torch.Tensor | None,
        is_object: torch.Tensor,
        masked_positions: torch.Tensor | None,
    ) -> torch.Tensor:
        c = self.config
        if self.mode == "tokens":
            return self.token_embeddings(self._ids(input_ids)) + self.token_type_embeddings(token_type_ids)
        if self.mode == "flat":
            kin = flat_kinematics(kinematics, c.kinematics_log_columns)
            onehot = F.one_hot(token_type_ids, c.type_vocab_size).to(kin.dtype)
            x = self.flat_projection(torch.cat([kin, onehot], -1))
        else:
            x = self.token_type_embeddings(token_type_ids)
            sel = is_object.nonzero(as_tuple=True)  # every object token through its type's layer at once
            weight = torch.stack([p.weight for p in self.type_projections])  # (T, H, F)
            bias = torch.stack([p.bias for p in self.type_projections])  # (T, H)
            t = token_type_ids[sel]
            projected = torch.einsum("nf,nhf->nh", features[sel].to(weight.dtype), weight[t]) + bias[t]
            x = x + torch.zeros_like(x).index_put(sel, projected.to(x.dtype))
        if masked_positions is not None:  # their inputs are zeroed by the caller; the type stays known
            x = x + self.mask_embedding.to(x.dtype) * masked_positions[..., None].to(x.dtype)
        if input_ids is not None:
            ctx = input_ids < c.num_context_tokens
            ids = self._ids(input_ids).clamp(0, c.num_context_tokens - 1)
            x = x + self.context_embeddings(ids) * ctx[..., None].to(x.dtype)
        return x


class HierarchicalObjectEncoder(nn.Module):
    """Each object -> one vector: one sub-token per feature group of its type (a linear
    projection of that group's columns of ``features``, ``config.feature_groups``) plus the
    content vectors of the object's own tokens, a slot embedding each, through a small
    transformer, mean pooled over the valid sub-tokens. The vector replaces the content at the
    object's first token; the caller masks the object's other tokens out of the attention."""

    def __init__(self, config: EventTransformerConfig):
        super().__init__()
        h = config.hidden_size
        self.group_names = list(config.feature_group_names)
        self.max_stages = config.max_stages
        self.columns: dict[str, tuple[int, int, list[int]]] = {}  # key -> (type id, group slot, columns)
        projections = {}
        for t, groups in config.feature_groups.items():
            if t not in config.token_type_names:
                continue
            for g, cols in groups.items():
                if cols:
                    key = f"{t}__{g}"
                    self.columns[key] = (config.token_type_names[t], self.group_names.index(g), list(cols))
                    projections[key] = nn.Linear(len(cols), h)
        self.projections = nn.ModuleDict(projections)
        self.slot_embeddings = nn.Embedding(len(self.group_names) + config.max_stages, h)
        self.encoder = SmallEncoder(config, config.inner_num_hidden_layers)

    def forward(
        self, content: torch.Tensor, features: torch.Tensor | None, token_type_ids: torch.Tensor, layout: ObjectLayout
    ) -> torch.Tensor:
        b, pos = layout.is_start.nonzero(as_tuple=True)
        n_obj, length, h = b.numel(), content.shape[1], content.shape[2]
        if n_obj == 0:
            return content
        n_groups = len(self.group_names)
        lengths = layout.length[b, pos]
        stages = min(int(lengths.max()), self.max_stages)
        k = torch.arange(stages, device=content.device)
        tokens = content[b[:, None], (pos[:, None] + k).clamp(max=length - 1)]  # (N, S, H)
        token_valid = k[None, :] < lengths[:, None]
        groups = content.new_zeros(n_obj, n_groups, h)
        group_valid = torch.zeros(n_obj, n_groups, dtype=torch.bool, device=content.device)
        if features is not None and self.columns:
            feats, types = features[b, pos], token_type_ids[b, pos]
            for key, (type_id, slot, cols) in self.columns.items():
                sel = (types == type_id).nonzero(as_tuple=True)[0]
                if sel.numel() == 0:
                    continue
                slot_index = torch.full_like(sel, slot)
                projected = self.projections[key](feats[sel][:, cols]).to(groups.dtype)
                groups = groups.index_put((sel, slot_index), projected)
                group_valid = group_valid.index_put((sel, slot_index), torch.ones_like(sel, dtype=torch.bool))
        x = torch.cat([groups, tokens], 1) + self.slot_embeddings.weight[: n_groups + stages].to(content.dtype)
        valid = torch.cat([group_valid, token_valid], 1)
        x = self.encoder(x, valid)
        w = valid[..., None].to(x.dtype)
        pooled = (x * w).sum(1) / w.sum(1)
        return content.index_put((b, pos), pooled.to(content.dtype))


class SubObjectEncoder(nn.Module):
    """Jet constituents (or track hits) -> one vector per parent, and the gated residual
    ``parent + sigmoid(W [parent ; sub]) * sub``: a linear embedding, a small transformer over
    the sub-objects (padding masked), attention pooling with a learned query."""

    def __init__(self, config: EventTransformerConfig, n_features: int):
        super().__init__()
        h = config.hidden_size
        self.n_features = n_features
        self.projection = nn.Linear(n_features, h)
        self.encoder = SmallEncoder(config, config.inner_num_hidden_layers)
        self.query = nn.Parameter(torch.zeros(h))
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.gate = nn.Linear(2 * h, h)

    def forward(self, parent: torch.Tensor, sub: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``parent`` (N, H), ``sub`` (N, n_sub, n_features), ``mask`` (N, n_sub) -> enriched (N, H)."""
        x = self.encoder(self.projection(sub), mask)
        k, v = self.key(x)[:, None], self.value(x)[:, None]
        q = self.query.to(k.dtype).expand(x.shape[0], 1, 1, -1)
        pooled = F.scaled_dot_product_attention(q, k, v.to(k.dtype), attn_mask=mask[:, None, None, :])[:, 0, 0]
        pooled = pooled.to(parent.dtype)
        gate = torch.sigmoid(self.gate(torch.cat([parent, pooled], -1))).to(parent.dtype)
        return parent + gate * pooled


class EventEmbeddings(nn.Module):
    """Content (:class:`TokenContent`), the variant's object encoders, positions, LayerNorm, dropout."""

    def __init__(self, config: EventTransformerConfig):
        super().__init__()
        self.config = config
        self.content = TokenContent(config)
        self.hierarchical = HierarchicalObjectEncoder(config) if config.variant == "hierarchical" else None
        if config.variant == "constituent":
            if config.constituent_feature_size <= 0 or config.hit_feature_size <= 0:
                raise ValueError("variant='constituent' needs config.constituent_feature_size and hit_feature_size")
            self.constituent_encoder = SubObjectEncoder(config, config.constituent_feature_size)
            self.hit_encoder = SubObjectEncoder(config, config.hit_feature_size)
        self.position_embeddings = (
            nn.Embedding(config.max_position_embeddings, config.hidden_size)
            if config.position_embedding_type == "absolute"
            else None
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def _enrich(
        self,
        encoder: SubObjectEncoder,
        content: torch.Tensor,
        sub: torch.Tensor | None,
        mask: torch.Tensor | None,
        parent_type: int,
        token_type_ids: torch.Tensor,
        layout: ObjectLayout,
        name: str,
    ) -> torch.Tensor:
        """Gated residual on the tokens of parents that carry sub-objects; computed once per
        object (at its first token) and added to each of its tokens."""
        if sub is None:
            return content
        if sub.shape[-1] != encoder.n_features:
            field = "constituent_feature_size" if name == "constituents" else "hit_feature_size"
            raise ValueError(
                f"`{name}` has {sub.shape[-1]} features per sub-object; the config says {encoder.n_features} ({field})"
            )
        mask = torch.ones(sub.shape[:-1], dtype=torch.bool, device=sub.device) if mask is None else mask.bool()
        has = mask.any(-1) & (token_type_ids == parent_type)
        b, pos = (has & layout.is_start).nonzero(as_tuple=True)
        if b.numel() == 0:
            return content  # no constituents/hits in this batch: the object-only model
        parent = content[b, pos]
        delta = content.new_zeros(content.shape).index_put(
            (b, pos), encoder(parent, sub[b, pos], mask[b, pos]) - parent
        )
        return content + layout.broadcast(delta) * has[..., None].to(content.dtype)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor,
        features: torch.Tensor | None,
        kinematics: torch.Tensor | None,
        constituents: torch.Tensor | None,
        constituents_mask: torch.Tensor | None,
        hits: torch.Tensor | None,
        hits_mask: torch.Tensor | None,
        layout: ObjectLayout,
        masked_positions: torch.Tensor | None,
        position_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        """(B, L, H) input vectors of the event encoder."""
        c = self.config
        if masked_positions is not None:  # hide what a masked object carries besides its ids
            keep = ~masked_positions  # (its kinematics: hidden by the model before this call)
            features = None if features is None else features * keep[..., None].to(features.dtype)
            if constituents_mask is not None:
                constituents_mask = constituents_mask.bool() & keep[..., None]
            if hits_mask is not None:
                hits_mask = hits_mask.bool() & keep[..., None]
        x = self.content(
            input_ids,
            token_type_ids,
            features,
            kinematics,
            layout.in_object,
            None if c.input_mode == "tokens" else masked_positions,
        )
        if c.stage_pooling == "sum":
            x = sum_over_objects(x, layout)
        if self.hierarchical is not None:
            x = self.hierarchical(x, features, token_type_ids, layout)
        if c.variant == "constituent":
            x = self._enrich(
                self.constituent_encoder,
                x,
                constituents,
                constituents_mask,
                c.constituent_parent_type,
                token_type_ids,
                layout,
                "constituents",
            )
            x = self._enrich(self.hit_encoder, x, hits, hits_mask, c.hit_parent_type, token_type_ids, layout, "hits")
        if self.position_embeddings is not None:
            if position_ids is None:
                position_ids = position_ids_for(token_type_ids, layout, c.unordered_token_types)
            if int(position_ids.max()) >= c.max_position_embeddings:
                raise ValueError(
                    f"sequence positions reach {int(position_ids.max())}, beyond "
                    f"max_position_embeddings={c.max_position_embeddings}"
                )
            x = x + self.position_embeddings(position_ids)
        return self.dropout(self.norm(x))


class EventFeatureEmbedding(nn.Module):
    """``event_features`` (B, F) -> (B, H): standardised by the config's mean and scale (fitted on
    the training events; buffers rebuilt from the config, not saved), then Linear -> GELU ->
    Linear. Added to the [CLS] token's input vector and to the pooled vector."""

    def __init__(self, config: EventTransformerConfig):
        super().__init__()
        self.register_buffer("mean", torch.tensor(config.event_feature_mean), persistent=False)
        self.register_buffer("scale", torch.tensor(config.event_feature_scale), persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(config.event_feature_size, config.hidden_size),
            nn.GELU(),
            nn.Linear(config.hidden_size, config.hidden_size),
        )

    def forward(self, event_features: torch.Tensor) -> torch.Tensor:
        x = (event_features.float() - self.mean) / self.scale
        return self.mlp(torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).to(self.mlp[0].weight.dtype))


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class EventTransformerPreTrainedModel(PreTrainedModel):
    config_class = EventTransformerConfig
    config: EventTransformerConfig
    base_model_prefix = "transformer"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["EventTransformerLayer"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``, refusing a folder whose saved tokenizer
        (``event_tokenizer.json`` beside ``config.json``) has other token ids than the model reads."""
        folder = (
            os.fspath(pretrained_model_name_or_path)
            if isinstance(pretrained_model_name_or_path, (str, os.PathLike))
            else None
        )
        try:
            model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except Exception as exc:
            if type(exc).__name__ != "SafetensorError":
                raise
            raise ValueError(
                f"{folder}: its weights cannot be read as safetensors (damaged or truncated): {exc}"
            ) from None
        layout_file = os.path.join(folder, TOKENIZER_LAYOUT_FILE) if folder and os.path.isdir(folder) else None
        if layout_file and os.path.isfile(layout_file):
            try:
                with open(layout_file) as f:
                    layout = json.load(f)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{layout_file}: cannot be read: {exc}") from None
            loaded = model[0] if isinstance(model, tuple) else model  # (model, info) with output_loading_info
            problem = loaded.config.tokenizer_mismatch(layout)
            if problem:
                raise ValueError(f"{folder}: {problem}")
        return model

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, TokenContent) and hasattr(module, "mask_embedding"):
            init.normal_(module.mask_embedding, mean=0.0, std=std)
        elif isinstance(module, SubObjectEncoder):
            init.normal_(module.query, mean=0.0, std=std)
            init.zeros_(module.gate.bias)  # sigmoid(0): the sub-objects start at half weight
        elif isinstance(module, EventFeatureEmbedding):  # buffers not saved: rebuilt from the config
            init.copy_(module.mean, torch.tensor(self.config.event_feature_mean))
            init.copy_(module.scale, torch.tensor(self.config.event_feature_scale))
        elif isinstance(module, FourVectorCombinations):  # a buffer not saved: rebuilt on loading
            init.copy_(module.type_sets, type_set_membership(self.config))
        elif isinstance(module, PairFeatureBias):  # PyTorch's own init, as ParT: std 0.02 in three
            init.ones_(module.input_scale)  # layers in a row would leave the bias ~1e-4
            init.zeros_(module.input_shift)
            for layer in module.mlp:
                if isinstance(layer, nn.Linear):
                    init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
                    bound = 1 / math.sqrt(layer.in_features)
                    init.uniform_(layer.bias, -bound, bound)


def object_type_sets(config: EventTransformerConfig) -> list[tuple[int, ...]]:
    """Token type ids of every object type in the sequence (those of ``token_id_ranges`` when
    given, else every registry type but specials and context), alone and in pairs."""
    if config.token_id_ranges:
        types = type_ids(config.token_id_ranges)
    else:
        types = sorted(v for k, v in config.token_type_names.items() if k not in ("special", "event"))
    return [(t,) for t in types] + [(a, b) for i, a in enumerate(types) for b in types[i + 1 :]]


def type_set_membership(config: EventTransformerConfig) -> torch.Tensor:
    """(type_vocab_size, n_sets) 1 where a token type belongs to a set of :func:`object_type_sets`."""
    sets = object_type_sets(config)
    membership = torch.zeros(config.type_vocab_size, len(sets))
    for j, types in enumerate(sets):
        membership[[t for t in types if t < config.type_vocab_size], j] = 1.0
    return membership


class FourVectorCombinations(nn.Module):
    """A Lorentz-boost-network-style readout (Erdmann, Geiser, Rath, Rieger 2019): K learned
    combinations P_k = sum_i w_ki p_i of the objects' four-momenta, and the fixed sums of all
    objects of each type and of each pair of types (:func:`object_type_sets`: all leptons, all
    jets, electrons + muons ...), with their mass, pT and rapidity, through an MLP to (B, H).

    w_ki = clamp(1.1 sigmoid(a_ki) - 0.05, 0, 1) with a_ki a linear map of object i's final state
    (each object counted once, at its first token): a weight reaches exactly 0 or 1 at a finite
    a_ki, so that a combination can be exactly the sum of, say, four leptons. Features per
    combination: ln(1 + m/GeV), ln(1 + pT/GeV), y, and Fourier features of ln m (8 octaves) and
    ln pT (4 octaves); the masses are exact four-vector algebra on ``kinematics``."""

    MASS_OCTAVES = 8
    PT_OCTAVES = 4
    NUM_FEATURES = 3 + 2 * (MASS_OCTAVES + PT_OCTAVES)

    def __init__(self, config: EventTransformerConfig):
        super().__init__()
        h, k = config.hidden_size, config.kinematic_combinations
        self.columns = kinematic_columns(config)
        self.weights = nn.Linear(h, k)
        membership = type_set_membership(config)
        self.register_buffer("type_sets", membership, persistent=False)  # derived from the config
        self.projection = nn.Sequential(
            nn.Linear((k + membership.shape[1]) * self.NUM_FEATURES, h), ACT2FN[config.hidden_act], nn.Linear(h, h)
        )

    def combination_weights(
        self, hidden_states: torch.Tensor, token_type_ids: torch.Tensor, counted: torch.Tensor
    ) -> torch.Tensor:
        """(B, L, K + n_type_sets) weight of each token's object in each combination, learned
        then fixed (0 for tokens not counted)."""
        learned = (1.1 * torch.sigmoid(self.weights(hidden_states).float()) - 0.05).clamp(0.0, 1.0)
        fixed = self.type_sets[token_type_ids.clamp(max=self.type_sets.shape[0] - 1)]
        return torch.cat([learned, fixed], -1) * counted[..., None].float()

    def combination_features(
        self, hidden_states: torch.Tensor, kinematics: torch.Tensor, token_type_ids: torch.Tensor, counted: torch.Tensor
    ) -> torch.Tensor:
        """(B, K + n_type_sets, NUM_FEATURES) features of the combinations; ``counted`` (B, L)
        bool: tokens whose four-momentum enters (one per object)."""
        p = four_momenta(kinematics, self.columns)  # (B, L, 4) float32
        w = self.combination_weights(hidden_states, token_type_ids, counted)
        inv = invariants(torch.einsum("blk,blc->bkc", w, p))
        m = torch.sqrt(inv["m2"].clamp_min(1e-6))
        log_m, log_pt = torch.log(m.clamp_min(1e-3)), torch.log(inv["pt"].clamp_min(1e-3))
        return torch.cat(
            [
                torch.stack([torch.log1p(m), torch.log1p(inv["pt"]), inv["rapidity"]], -1),
                fourier_features(log_m, self.MASS_OCTAVES),
                fourier_features(log_pt, self.PT_OCTAVES),
            ],
            -1,
        )

    def forward(
        self, hidden_states: torch.Tensor, kinematics: torch.Tensor, token_type_ids: torch.Tensor, counted: torch.Tensor
    ) -> torch.Tensor:
        feats = self.combination_features(hidden_states, kinematics, token_type_ids, counted)
        return self.projection(feats.flatten(1).to(self.projection[0].weight.dtype))


class EventTransformerPooler(nn.Module):
    """[CLS] state -> dense, plus the four-vector combinations (``config.kinematic_combinations``
    > 0) and the embedded event features -> tanh: (B, H)."""

    def __init__(self, config: EventTransformerConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.combinations = FourVectorCombinations(config) if config.kinematic_combinations > 0 else None

    def forward(
        self,
        hidden_states: torch.Tensor,
        kinematics: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        counted: torch.Tensor | None = None,
        event_vector: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``hidden_states`` (B, L, H); ``kinematics`` (B, L, 6), ``token_type_ids`` and ``counted``
        (B, L) bool (one token per real object) for the combinations; ``event_vector`` (B, H), the
        embedded event features, added straight to the pooled vector (a wide path beside the
        encoder's)."""
        x = self.dense(hidden_states[:, 0])
        if event_vector is not None:
            x = x + event_vector
        if self.combinations is not None:
            x = x + self.combinations(hidden_states, kinematics, token_type_ids, counted).to(x.dtype)
        return torch.tanh(x)


class EventTransformerModel(EventTransformerPreTrainedModel):
    """The encoder: ``last_hidden_state`` (B, L, H) (in the hierarchical variant and with stage
    pooling, every token of an object carries its object's state: the encoder runs over one
    position per object, :class:`Compaction`) and ``pooler_output`` (B, H)."""

    def __init__(self, config: EventTransformerConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = EventEmbeddings(config)
        self.event_embedding = EventFeatureEmbedding(config) if config.event_feature_size > 0 else None
        self.pair_bias = PairFeatureBias(config) if config.pair_features != "none" else None
        self.layers = nn.ModuleList(EventTransformerLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pooler = EventTransformerPooler(config) if add_pooling_layer else None
        self.gradient_checkpointing = False
        self.post_init()

    def _check_inputs(
        self,
        input_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        features: torch.Tensor | None,
        kinematics: torch.Tensor | None,
        object_index: torch.Tensor | None,
        event_features: torch.Tensor | None = None,
    ) -> tuple[int, int]:
        """(batch, length), after checking that the inputs the config needs are there."""
        c = self.config
        need = {
            "tokens": ("input_ids", input_ids),
            "flat": ("kinematics", kinematics),
            "per_type": ("features", features),
        }[c.input_mode]
        if need[1] is None:
            raise ValueError(f"input_mode={c.input_mode!r} needs `{need[0]}`")
        if c.input_mode != "tokens" and token_type_ids is None:
            raise ValueError(f"input_mode={c.input_mode!r} needs `token_type_ids`")
        if c.uses_kinematics:
            why = (
                "pair_features"
                if c.pair_features != "none"
                else "kinematic_combinations"
                if c.kinematic_combinations > 0
                else "input_mode='flat'"
            )
            if kinematics is None:
                raise ValueError(
                    f"{why} needs `kinematics` (B, L, {len(c.kinematics_names)}): "
                    "the tokenizer's return_features=True, or decode_kinematics(input_ids)"
                )
            if kinematics.shape[-1] != len(c.kinematics_names):
                raise ValueError(
                    f"`kinematics` has {kinematics.shape[-1]} columns; config.kinematics_names has "
                    f"{len(c.kinematics_names)}"
                )
        if c.variant == "hierarchical" and object_index is None:
            raise ValueError("variant='hierarchical' needs `object_index` to find the objects")
        if c.stage_pooling != "none" and object_index is None:
            raise ValueError(f"stage_pooling={c.stage_pooling!r} needs `object_index` to find the objects")
        if c.input_kind == "ids":
            given = [
                n
                for n, v in (("kinematics", kinematics), ("features", features), ("event_features", event_features))
                if v is not None
            ]
            if given:
                raise ValueError(
                    f"this model reads token ids alone (config.input_kind='ids'): it takes no "
                    f"`{given[0]}`, decoded or continuous"
                )
        if c.event_feature_size and event_features is None:
            raise ValueError(f"this model reads `event_features` (B, {c.event_feature_size}): {c.event_feature_names}")
        if event_features is not None:
            if not c.event_feature_size:
                raise ValueError("this model reads no `event_features` (config.event_feature_size=0)")
            if tuple(event_features.shape[1:]) != (c.event_feature_size,):
                raise ValueError(
                    f"`event_features` has shape {tuple(event_features.shape)}; the model reads (B, {c.event_feature_size})"
                )
        uses_features = c.input_mode == "per_type" or c.variant == "hierarchical"
        if uses_features and features is not None and features.shape[-1] != c.feature_size:
            raise ValueError(f"`features` has {features.shape[-1]} columns; config.feature_size is {c.feature_size}")
        return tuple(need[1].shape[:2])

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        kinematics: torch.Tensor | None = None,
        object_index: torch.Tensor | None = None,
        constituents: torch.Tensor | None = None,
        constituents_mask: torch.Tensor | None = None,
        hits: torch.Tensor | None = None,
        hits_mask: torch.Tensor | None = None,
        masked_positions: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        event_features: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        """See the module docstring for the inputs; ``masked_positions`` (B, L) bool hides the
        features, kinematics, constituents and hits of masked objects (and, in the continuous
        modes, adds a learned mask vector to their content); hidden kinematics enter no pair
        feature and no four-vector combination."""
        b, length = self._check_inputs(input_ids, token_type_ids, features, kinematics, object_index, event_features)
        device = self.embeddings.norm.weight.device
        if token_type_ids is None:
            token_type_ids = torch.zeros((b, length), dtype=torch.long, device=device)
        if attention_mask is None:
            attention_mask = torch.ones((b, length), dtype=torch.long, device=device)
        layout = (
            ObjectLayout.from_object_index(object_index)
            if object_index is not None
            else ObjectLayout.no_objects(token_type_ids.shape, token_type_ids.device)
        )
        if masked_positions is not None and kinematics is not None:
            kinematics = kinematics * (~masked_positions.bool())[..., None].to(kinematics.dtype)
        x = self.embeddings(
            input_ids,
            token_type_ids,
            features,
            kinematics,
            constituents,
            constituents_mask,
            hits,
            hits_mask,
            layout,
            masked_positions,
            position_ids,
        )
        event_vector = None
        if self.event_embedding is not None:  # the event's own values enter at [CLS] and the pooler
            event_vector = self.event_embedding(event_features).to(x.dtype)
            x = torch.cat([x[:, :1] + event_vector[:, None], x[:, 1:]], 1)
        real = attention_mask.bool()
        compaction = None
        if self.config.one_position_per_object:  # one vector per object, at its first token
            real = real & ~(layout.in_object & ~layout.is_start)
            if not (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()):  # shapes fixed there: mask
                compaction = Compaction.of(real)
        bias = None
        if compaction is not None:  # the encoder runs over the kept positions alone
            x, key_mask = compaction.gather(x), _safe_key_mask(compaction.kept)
            if self.pair_bias is not None:
                bias = self.pair_bias(
                    compaction.gather(kinematics),
                    compaction.gather(token_type_ids),
                    compaction.layout(layout.in_object),
                )
        else:
            key_mask = _safe_key_mask(real)
            if self.pair_bias is not None:
                bias = self.pair_bias(kinematics, token_type_ids, layout)
        all_hidden = [x] if output_hidden_states else None
        for layer in self.layers:
            x = layer(x, key_mask, bias)
            if all_hidden is not None:
                all_hidden.append(x)
        x = self.norm(x)
        if compaction is not None:
            x = compaction.scatter(x, length)
            all_hidden = None if all_hidden is None else [compaction.scatter(h, length) for h in all_hidden]
        if self.config.one_position_per_object:
            x = layout.broadcast(x)
        pooled = None
        if self.pooler is not None:
            counted = None
            if self.config.kinematic_combinations > 0:  # one token per real object
                pt = kinematics[..., kinematic_columns(self.config)["pt"]]
                counted = attention_mask.bool() & layout.is_start & layout.in_object & (pt > 0)
            pooled = self.pooler(x, kinematics, token_type_ids, counted, event_vector)
        out = BaseModelOutputWithPooling(
            last_hidden_state=x,
            pooler_output=pooled,
            hidden_states=tuple(all_hidden) if all_hidden is not None else None,
        )
        return out.to_tuple() if return_dict is False else out


class EventTransformerForSequenceClassification(EventTransformerPreTrainedModel):
    """Pooled state -> dropout -> linear -> ``logits`` (B, num_labels).

    Loss with ``labels`` (B,): ``config.problem_type`` when set; otherwise one label is a binary
    classification (BCE on the single logit, labels 0/1), several labels with integer labels a
    single-label one (cross-entropy), with float (B, num_labels) labels a multi-label one."""

    def __init__(self, config: EventTransformerConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = EventTransformerModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        kinematics: torch.Tensor | None = None,
        object_index: torch.Tensor | None = None,
        constituents: torch.Tensor | None = None,
        constituents_mask: torch.Tensor | None = None,
        hits: torch.Tensor | None = None,
        hits_mask: torch.Tensor | None = None,
        event_features: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput:
        out = self.transformer(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            attention_mask=attention_mask,
            features=features,
            kinematics=kinematics,
            object_index=object_index,
            constituents=constituents,
            constituents_mask=constituents_mask,
            hits=hits,
            hits_mask=hits_mask,
            event_features=event_features,
            output_hidden_states=output_hidden_states,
        )
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None if labels is None else self._loss(logits, labels)
        result = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
        return result.to_tuple() if return_dict is False else result

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        problem = self.config.problem_type
        if problem is None:
            if self.num_labels == 1:
                problem = "binary"
            elif labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        logits = logits.float()
        if problem == "binary":
            return F.binary_cross_entropy_with_logits(logits.view(-1), labels.float().view(-1))
        if problem == "regression":
            return F.mse_loss(logits.squeeze(-1) if self.num_labels == 1 else logits, labels.float())
        if problem == "single_label_classification":
            return F.cross_entropy(logits.view(-1, self.num_labels), labels.long().view(-1))
        return F.binary_cross_entropy_with_logits(logits, labels.float())


@dataclass
class MaskedEventModelingOutput(MaskedLMOutput):
    """:class:`MaskedLMOutput` plus, per objective, its parts: ``code_loss`` (cross-entropy over
    the ids), ``continuous_loss`` (MSE over the masked objects' kinematics) and
    ``kinematics`` (predicted flat kinematics of the scored positions: (B, L, K), or
    (n_labelled, K) with ``only_labelled_logits``)."""

    code_loss: torch.FloatTensor | None = None
    continuous_loss: torch.FloatTensor | None = None
    kinematics: torch.FloatTensor | None = None


class EventTransformerForMaskedEventModeling(EventTransformerPreTrainedModel):
    """The foundation model's pretraining head (BERT-style masking of whole objects).

    Token mode: ``logits`` (B, L, vocab_size) over the token ids, loss = cross-entropy on the
    positions where ``labels`` (B, L) is not -100 (every stage token of a masked object has its own
    label, so RVQ/PQ stages are each predicted); with ``config.token_id_ranges``, a position's
    scores outside its own type and stage's id range are set to the dtype's minimum. The objects
    in ``masked_positions`` (default: where ``input_ids`` is [MASK]; the collators and
    ``mask_objects`` give the randomly replaced ones too) also have their features, kinematics,
    constituents and hits hidden.

    Continuous modes: ``masked_positions`` (B, L) bool say which tokens are hidden (inputs
    zeroed, a learned mask vector added); ``logits`` (B, L, T) regress their inputs, T =
    ``feature_size`` (``per_type``) or 6 flat kinematics columns (``flat``, as the model reads
    them: log(1+pT), eta, phi, log(1+E), log(1+m), q); loss = MSE over masked positions against
    ``labels`` (B, L, T) float when given, else against the unmasked inputs themselves.

    A stage embedding (position of the token within its object) is added before the head, so
    the hierarchical variant, where an object's tokens share one state, scores each stage.

    ``config.masked_objective`` (token mode) says what is predicted: ``codes`` (the ids, above),
    ``continuous`` (a second decoder regresses the flat kinematics of every selected position,
    log(1+pT), eta, phi, log(1+E), log(1+m), q, against ``target_kinematics`` (B, L, 6), the
    objects' kinematics before masking: MSE over the positions whose ``labels`` is not -100) or
    ``codes+continuous`` (both losses summed)."""

    def __init__(self, config: EventTransformerConfig):
        super().__init__(config)
        h = config.hidden_size
        self.transformer = EventTransformerModel(config, add_pooling_layer=False)
        self.stage_embeddings = nn.Embedding(config.max_stages, h)
        self.dense = nn.Linear(h, h)
        self.activation = ACT2FN[config.hidden_act]
        self.head_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        if config.input_mode == "tokens":
            n_out = config.vocab_size
        elif config.input_mode == "flat":
            n_out = len(config.kinematics_names)
        else:
            n_out = config.feature_size
        self.decoder = nn.Linear(h, n_out)
        self.kinematics_decoder = None
        if config.input_mode == "tokens" and config.masked_objective != "codes":
            if not config.kinematics_names:
                raise ValueError("masked_objective with continuous targets needs config.kinematics_names")
            self.kinematics_decoder = nn.Linear(h, len(config.kinematics_names))
        self.register_buffer("id_ranges", self._id_range_table(), persistent=False)
        self.post_init()

    def _id_range_table(self) -> torch.Tensor:
        """(type_vocab_size, max_stages, 2) ``[start, stop)`` of every (token type, stage); -1 where none."""
        c = self.config
        return torch.from_numpy(stage_table(c.token_id_ranges, c.type_vocab_size, c.max_stages))

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is self:
            init.copy_(self.id_ranges, self._id_range_table())

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        kinematics: torch.Tensor | None = None,
        object_index: torch.Tensor | None = None,
        constituents: torch.Tensor | None = None,
        constituents_mask: torch.Tensor | None = None,
        hits: torch.Tensor | None = None,
        hits_mask: torch.Tensor | None = None,
        masked_positions: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        target_kinematics: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        only_labelled_logits: bool = False,
    ) -> MaskedEventModelingOutput:
        """``only_labelled_logits`` (token mode, with ``labels``): score only the positions whose
        label is not -100, so ``logits`` is (n_labelled, vocab_size) in row-major order; the loss
        is the same, and pretraining skips the (B, L, vocab_size) scores it does not use.
        ``target_kinematics`` (B, L, 6): the continuous objectives' targets (pT [GeV], eta, phi
        [rad], E [GeV], mass [GeV], charge of each token's object before masking)."""
        c = self.config
        tokens = c.input_mode == "tokens"
        if tokens and masked_positions is None and input_ids is not None:
            masked_positions = input_ids == c.mask_token_id
        if masked_positions is not None:
            masked_positions = masked_positions.bool()
        out = self.transformer(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            attention_mask=attention_mask,
            features=features,
            kinematics=kinematics,
            object_index=object_index,
            constituents=constituents,
            constituents_mask=constituents_mask,
            hits=hits,
            hits_mask=hits_mask,
            masked_positions=masked_positions,
            output_hidden_states=output_hidden_states,
        )
        x = out.last_hidden_state
        if object_index is not None:
            stage = ObjectLayout.from_object_index(object_index).stage.clamp(max=c.max_stages - 1)
            x = x + self.stage_embeddings(stage)
        else:
            stage = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
        if only_labelled_logits and tokens and labels is not None:
            where = labels != IGNORE_INDEX
            x, stage, labels = x[where][None], stage[where][None], labels[where][None]
            token_type_ids = None if token_type_ids is None else token_type_ids[where][None]
            target_kinematics = None if target_kinematics is None else target_kinematics[where][None]
        head = self.head_norm(self.activation(self.dense(x)))
        logits = self.decoder(head)
        if tokens:
            logits = self._restrict(logits, token_type_ids, stage)
        predicted = self.kinematics_decoder(head) if self.kinematics_decoder is not None else None
        loss = code_loss = continuous_loss = None
        if only_labelled_logits and tokens and labels is not None:
            logits, labels = logits[0], labels[0]
            predicted = None if predicted is None else predicted[0]
            target_kinematics = None if target_kinematics is None else target_kinematics[0]
        if tokens and labels is not None and c.masked_objective != "continuous":
            code_loss = F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
            )
        if tokens and labels is not None and predicted is not None:
            if target_kinematics is None:
                raise ValueError(
                    f"masked_objective={c.masked_objective!r} needs `target_kinematics` (B, L, "
                    f"{len(c.kinematics_names)}): the objects' kinematics before masking"
                )
            m = (labels != IGNORE_INDEX)[..., None].to(torch.float32)
            target = flat_kinematics(target_kinematics.float(), c.kinematics_log_columns)
            err = (predicted.float() - target) ** 2 * m
            continuous_loss = err.sum() / (m.sum() * predicted.shape[-1]).clamp_min(1)
        if code_loss is not None or continuous_loss is not None:
            loss = sum(v for v in (code_loss, continuous_loss) if v is not None)
        elif not tokens and masked_positions is not None:
            target = labels
            if target is None:
                target = (
                    features if c.input_mode == "per_type" else flat_kinematics(kinematics, c.kinematics_log_columns)
                )
            m = masked_positions[..., None].to(torch.float32)
            err = (logits.float() - target.float()) ** 2 * m
            loss = err.sum() / (m.sum() * logits.shape[-1]).clamp_min(1)
        result = MaskedEventModelingOutput(
            loss=loss,
            logits=logits,
            hidden_states=out.hidden_states,
            code_loss=code_loss,
            continuous_loss=continuous_loss,
            kinematics=predicted,
        )
        return result.to_tuple() if return_dict is False else result

    def _restrict(self, logits: torch.Tensor, token_type_ids: torch.Tensor | None, stage: torch.Tensor) -> torch.Tensor:
        if not self.config.token_id_ranges or token_type_ids is None:
            return logits
        lo_hi = self.id_ranges[token_type_ids.clamp(max=self.id_ranges.shape[0] - 1), stage]  # (B, L, 2)
        ids = torch.arange(logits.shape[-1], device=logits.device)
        lo, hi = lo_hi[..., :1], lo_hi[..., 1:]
        outside = (lo >= 0) & ((ids < lo) | (ids >= hi))
        return logits.masked_fill(outside, torch.finfo(logits.dtype).min)
