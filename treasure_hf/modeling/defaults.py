"""Registry-derived values of an :class:`EventTransformerConfig`, as plain JSON data.

The configuration file cannot import the registry (it must load where treasure_hf is not
installed), so it asks this module for its defaults; everything here reads
:mod:`treasure_hf.data.schema` and the tokenizer's feature preprocessing, nothing is typed twice.
"""

from __future__ import annotations

from typing import Any

from ..data import schema
from ..tokenization import features as tokenizer_features

_SEQUENCE_TYPES = (*schema.OBJECT_TYPES, "met")
_LOG_KINEMATICS = ("pt", "energy", "mass")
"""Flat-mode kinematics that are GeV scales and enter as log(1 + x)."""


def _columns(object_type: str) -> list[str]:
    return tokenizer_features.columns(object_type, tokenizer_features.field_names(object_type))


def _groups(object_type: str, names: list[str]) -> dict[str, list[int]]:
    return tokenizer_features.feature_group_columns(object_type, names)


def registry_defaults() -> dict[str, Any]:
    """Config values for a tokenizer that encodes the common fields of every type."""
    groups = {t: _groups(t, tokenizer_features.field_names(t)) for t in _SEQUENCE_TYPES}
    return {
        "token_type_names": dict(schema.TOKEN_TYPE_IDS),
        "type_vocab_size": max(schema.TOKEN_TYPE_IDS.values()) + 1,
        "feature_groups": groups,
        "feature_group_names": list(schema.FEATURE_GROUPS),
        "feature_size": max(len(_columns(t)) for t in _SEQUENCE_TYPES),
        "kinematics_names": list(schema.FLAT_KINEMATICS),
        "kinematics_log_columns": [i for i, n in enumerate(schema.FLAT_KINEMATICS) if n in _LOG_KINEMATICS],
        "constituent_feature_size": len(_columns("constituents")),
        "hit_feature_size": len(_columns("hits")),
        "constituent_parent_type": schema.GROUPS[schema.GROUPS["constituents"].parent].type_id,
        "hit_parent_type": schema.GROUPS[schema.GROUPS["hits"].parent].type_id,
        "num_experiments": len(schema.EXPERIMENTS),
    }


def config_kwargs_from_tokenizer(tokenizer: Any) -> dict[str, Any]:
    """Config values of an :class:`~treasure_hf.tokenization.EventTokenizer`: ``vocab_size``,
    ``feature_size``/``feature_groups`` (its quantizers' own columns, which may include
    experiment-layer fields), ``constituent_feature_size``/``hit_feature_size`` (its sub-object
    scalers or quantizers), ``token_id_ranges`` and ``max_stages`` of the sequence types:
    ``EventTransformerConfig(**config_kwargs_from_tokenizer(tok), hidden_size=...)``."""
    sub_types = set(schema.SUB_OBJECT_TYPES)
    sequence = {t: q for t, q in tokenizer.quantizers.items() if t not in sub_types}
    sub_columns = {t: q.scaler.n_columns for t, q in tokenizer.quantizers.items() if t in sub_types}
    sub_columns.update({t: sc.n_columns for t, sc in getattr(tokenizer, "sub_scalers", {}).items()})
    ranges = tokenizer.token_id_ranges()
    out = {
        "vocab_size": int(tokenizer.vocab_size),
        "feature_size": max((q.scaler.n_columns for q in sequence.values()), default=0),
        "feature_groups": {t: _groups(t, list(q.scaler.fields)) for t, q in sequence.items()},
        "token_id_ranges": ranges,
        "num_experiments": len(getattr(tokenizer, "experiment_tokens", schema.EXPERIMENTS)),
        "max_stages": max((q.config.num_stages for q in sequence.values()), default=1),
    }
    if "constituents" in sub_columns:
        out["constituent_feature_size"] = sub_columns["constituents"]
    if "hits" in sub_columns:
        out["hit_feature_size"] = sub_columns["hits"]
    return out
