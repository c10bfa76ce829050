"""Configuration of the event transformers (every hyperparameter, transformers' usual names).

This file and ``modeling_event_transformer.py`` are copied into a saved folder by
``register_for_auto_class`` and must load where treasure_hf is not installed: they import
nothing from treasure_hf outside this folder. Registry-derived values (token type ids, feature
groups, the flat kinematics, the number of experiments) are plain JSON data of the config; a
fresh config fills them from the registry through :mod:`treasure_hf.modeling.defaults`, and a
loaded one reads them from ``config.json``.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from .token_ranges import type_spans

INPUT_MODES = ("tokens", "flat", "per_type")
VARIANTS = ("flat", "hierarchical", "constituent")
POSITION_EMBEDDING_TYPES = ("absolute", "none")
STAGE_POOLINGS = ("none", "sum")
REMOVED_OPTIONS = {"pooling": "cls", "pair_readout": False, "gate_bias_init": 0.0}
"""Options of earlier versions and the value that matches today's model."""
PAIR_FEATURES = ("none", "kinematic")
INPUT_KINDS = ("ids", "ids+decoded", "continuous", "hybrid")
MASKED_OBJECTIVES = ("codes", "continuous", "codes+continuous")
"""What the model reads, as the benchmark labels its rows: token ids alone; token ids and what is
decoded from them (kinematics, features); the original continuous values; token ids with
continuous constituents."""


def _registry_defaults() -> dict[str, Any]:
    """Registry-derived defaults when treasure_hf is importable, else empty ones (a saved
    config always carries its own values)."""
    try:
        from treasure_hf.modeling.defaults import registry_defaults
    except ImportError:
        return {}
    return registry_defaults()


class EventTransformerConfig(PretrainedConfig):
    """Every hyperparameter of the event transformers (:mod:`.modeling_event_transformer`).

    Sizes (BERT's names): ``vocab_size`` (token ids, from the tokenizer), ``hidden_size``,
    ``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size`` (MLP width),
    ``hidden_act``, ``hidden_dropout_prob``, ``attention_probs_dropout_prob``,
    ``max_position_embeddings``, ``type_vocab_size`` (token type ids: 0 specials, 1 context, 2
    electrons ... 8 MET, from the registry), ``layer_norm_eps``, ``initializer_range``,
    ``num_labels``, ``pad_token_id``/``cls_token_id``/``sep_token_id``/``mask_token_id``.

    Inputs:
        input_mode: ``tokens`` (token + type + position embeddings of ``input_ids``), ``flat``
            (one linear layer over ``kinematics`` [log(1+pT), eta, phi, log(1+E), log(1+m), q]
            and the one-hot token type: the seeds' input) or ``per_type`` (one linear layer per
            token type over ``features`` + type embedding). In the continuous modes, special
            and context tokens ([CLS], [SEP], [ATLAS|CMS]) keep an embedding of their id.
        variant: ``flat`` (one token per input position), ``hierarchical`` (each object is
            encoded from one sub-token per feature group of its type plus its own token
            embeddings, by an inner transformer of ``inner_num_hidden_layers`` layers, mean
            pooled to one vector per object) or ``constituent`` (jets enriched by their
            constituents, tracks by their hits, through a gated residual).
        stage_pooling: ``none`` (every token is a position of the encoder) or ``sum`` (the tokens of
            one object, its RVQ stages, PQ groups or FSQ codebooks, enter as one vector: the sum
            of their content vectors, at the object's first position, as multi-codebook language
            models embed a frame). The encoder then runs over one position per object, so that
            attention costs (objects)^2 whatever the tokens per object; every token of an object
            gets its object's final state. Needs ``object_index``; not with ``hierarchical``,
            which encodes an object's tokens with its own inner transformer.
        input_kind: what the model reads (:data:`INPUT_KINDS`): ``ids`` (token + type + position
            embeddings; a forward pass given kinematics or features fails), ``ids+decoded``
            (kinematics and features decoded from the ids), ``continuous`` or ``hybrid``.
        position_embedding_type: ``absolute`` (learned, by sequence position) or ``none``.
        unordered_token_types: token type ids whose objects carry no order: every token of such a
            group gets the position of the group's first token plus its stage within the object,
            so that permuting objects within the group leaves the event's output unchanged.
        pair_features: ``none`` or ``kinematic``: a ParT-style attention bias, per head, from
            every pair of objects' ln dR, ln kT, ln z, ln m^2, q_i q_j and same-type flag,
            computed from ``kinematics`` once per forward by an MLP of ``pair_embedding_size``
            and added to the attention scores of every event-encoder layer (pairs within one
            object and with specials or padding get no bias). Needs ``kinematics``.
        pair_embedding_size: width of the pair MLP's hidden layers.
        kinematic_combinations: K > 0 adds a Lorentz-boost-network-style readout to the pooler:
            K learned combinations sum_i w_ki p_i of the objects' four-momenta (w_ki = sigmoid of
            a linear map of object i's final state, objects counted once), whose mass, pT and
            rapidity enter the pooled vector; the exact four-vector algebra lets the classifier
            see e.g. m(4l) without learning it. Needs ``kinematics``. 0 disables it.
        event_feature_size: F > 0: the model also reads ``event_features`` (B, F), per-event values
            such as an analysis's engineered observables (GeV, rad, as the data set holds them),
            standardised with ``event_feature_mean`` / ``event_feature_scale`` (fitted on the
            training events) and embedded by a two-layer MLP added to the [CLS] token's input (every
            layer attends to them) and to the pooled vector. ``event_feature_names`` says what they are. A model
            of ids alone takes none. 0 disables it.

    Registry data (filled from :mod:`treasure_hf.data.schema` when omitted):
        token_type_names: {type name: token type id}.
        feature_groups: {object type: {feature group: [column indices into ``features``]}}.
        feature_group_names: feature groups in registry order (sub-token slots).
        feature_size: width of ``features`` (the widest type's standardised columns).
        kinematics_names / kinematics_log_columns: columns of ``kinematics`` and which of them
            enter the flat mode as log(1 + x) (GeV scales).
        constituent_feature_size / hit_feature_size: widths of ``constituents`` and ``hits``.
        constituent_parent_type / hit_parent_type: token type ids of jets and tracks.
        num_experiments: number of experiment context tokens after the 5 specials.

    Other:
        experiment_conditioning: if False, every experiment's context token is embedded alike.
        max_stages: most tokens an object can have (stage embeddings of the hierarchical and
            masked-modeling heads).
        token_id_ranges: optional {"TYPE_ID:STAGE": [start, stop)} of the tokenizer: masked
            modeling then scores each masked token only over its own type and stage's ids.
        classifier_dropout: dropout before the classification layer (default hidden_dropout_prob).
        masked_objective: what the masked-modeling head predicts of each masked object (token
            mode): ``codes`` (its token ids, cross-entropy), ``continuous`` (its kinematics,
            MSE on log(1+pT), eta, phi, log(1+E), log(1+m), q, as in masked particle modelling
            with continuous targets, MPMv2) or ``codes+continuous`` (the sum of both losses).
    """

    model_type = "treasure_event_transformer"

    def __init__(
        self,
        vocab_size: int = 8192,
        hidden_size: int = 128,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        intermediate_size: int = 512,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int | None = None,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        input_mode: str = "tokens",
        variant: str = "flat",
        stage_pooling: str = "none",
        position_embedding_type: str = "absolute",
        unordered_token_types: list[int] | None = None,
        pair_features: str = "none",
        pair_embedding_size: int = 64,
        kinematic_combinations: int = 0,
        input_kind: str = "ids+decoded",
        event_feature_size: int = 0,
        event_feature_names: list[str] | None = None,
        event_feature_mean: list[float] | None = None,
        event_feature_scale: list[float] | None = None,
        inner_num_hidden_layers: int = 1,
        max_stages: int = 8,
        token_type_names: dict[str, int] | None = None,
        feature_groups: dict[str, dict[str, list[int]]] | None = None,
        feature_group_names: list[str] | None = None,
        feature_size: int | None = None,
        kinematics_names: list[str] | None = None,
        kinematics_log_columns: list[int] | None = None,
        constituent_feature_size: int | None = None,
        hit_feature_size: int | None = None,
        constituent_parent_type: int | None = None,
        hit_parent_type: int | None = None,
        num_special_tokens: int = 5,
        num_experiments: int | None = None,
        experiment_conditioning: bool = True,
        token_id_ranges: dict[str, list[int]] | None = None,
        classifier_dropout: float | None = None,
        masked_objective: str = "codes",
        pad_token_id: int = 0,
        cls_token_id: int = 1,
        sep_token_id: int = 2,
        mask_token_id: int = 3,
        **kwargs: Any,
    ):
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, not {input_mode!r}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        if stage_pooling not in STAGE_POOLINGS:
            raise ValueError(f"stage_pooling must be one of {STAGE_POOLINGS}, not {stage_pooling!r}")
        if stage_pooling != "none" and variant == "hierarchical":
            raise ValueError("stage_pooling: the hierarchical variant pools an object's tokens itself")
        if position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"position_embedding_type must be one of {POSITION_EMBEDDING_TYPES}, not {position_embedding_type!r}"
            )
        for name, default in REMOVED_OPTIONS.items():  # a saved config that used them is refused, not misread
            if kwargs.get(name, default) != default:
                raise ValueError(
                    f"{name}={kwargs[name]!r}: this option was removed (it did nothing measurable); "
                    "the model cannot be rebuilt as it was trained"
                )
            kwargs.pop(name, None)
        if pair_features not in PAIR_FEATURES:
            raise ValueError(f"pair_features must be one of {PAIR_FEATURES}, not {pair_features!r}")
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size={hidden_size} is not a multiple of num_attention_heads={num_attention_heads}"
            )
        need_registry = any(
            v is None
            for v in (
                token_type_names,
                feature_groups,
                feature_group_names,
                feature_size,
                kinematics_names,
                kinematics_log_columns,
                constituent_feature_size,
                hit_feature_size,
                constituent_parent_type,
                hit_parent_type,
                num_experiments,
                type_vocab_size,
            )
        )
        reg = _registry_defaults() if need_registry else {}

        def pick(value: Any, name: str, empty: Any) -> Any:
            return value if value is not None else reg.get(name, empty)

        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_attention_heads = int(num_attention_heads)
        self.intermediate_size = int(intermediate_size)
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = float(hidden_dropout_prob)
        self.attention_probs_dropout_prob = float(attention_probs_dropout_prob)
        self.max_position_embeddings = int(max_position_embeddings)
        self.layer_norm_eps = float(layer_norm_eps)
        self.initializer_range = float(initializer_range)
        self.input_mode = input_mode
        self.variant = variant
        self.stage_pooling = stage_pooling
        self.position_embedding_type = position_embedding_type
        self.unordered_token_types = [int(t) for t in (unordered_token_types or [])]
        self.pair_features = pair_features
        self.pair_embedding_size = int(pair_embedding_size)
        self.kinematic_combinations = int(kinematic_combinations)
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, not {input_kind!r}")
        if input_kind == "ids" and (
            input_mode != "tokens" or pair_features != "none" or kinematic_combinations or variant == "hierarchical"
        ):
            raise ValueError(
                "input_kind='ids' reads token ids alone: input_mode 'tokens', no pair features, "
                "combinations or hierarchical feature groups"
            )
        self.input_kind = input_kind
        self.event_feature_size = int(event_feature_size)
        if self.event_feature_size < 0:
            raise ValueError(f"event_feature_size must be >= 0, not {event_feature_size}")
        if self.event_feature_size and input_kind == "ids":
            raise ValueError(
                "input_kind='ids' reads token ids alone: it takes no event features (event_feature_size=0)"
            )
        k = self.event_feature_size
        self.event_feature_names = [str(n) for n in (event_feature_names or [f"event_feature_{i}" for i in range(k)])]
        self.event_feature_mean = [
            float(v) for v in (event_feature_mean if event_feature_mean is not None else [0.0] * k)
        ]
        self.event_feature_scale = [
            float(v) for v in (event_feature_scale if event_feature_scale is not None else [1.0] * k)
        ]
        for name, values in (
            ("event_feature_names", self.event_feature_names),
            ("event_feature_mean", self.event_feature_mean),
            ("event_feature_scale", self.event_feature_scale),
        ):
            if len(values) != k:
                raise ValueError(f"{name} has {len(values)} entries; event_feature_size is {k}")
        if any(not v > 0 for v in self.event_feature_scale):
            raise ValueError("event_feature_scale must be positive")
        self.inner_num_hidden_layers = int(inner_num_hidden_layers)
        self.max_stages = int(max_stages)
        self.token_type_names = {str(k): int(v) for k, v in pick(token_type_names, "token_type_names", {}).items()}
        self.type_vocab_size = int(
            pick(type_vocab_size, "type_vocab_size", max(self.token_type_names.values(), default=0) + 1)
        )
        self.feature_groups = {
            str(t): {str(g): [int(c) for c in cols] for g, cols in groups.items()}
            for t, groups in pick(feature_groups, "feature_groups", {}).items()
        }
        self.feature_group_names = list(
            pick(
                feature_group_names,
                "feature_group_names",
                sorted({g for gs in self.feature_groups.values() for g in gs}),
            )
        )
        self.feature_size = int(pick(feature_size, "feature_size", 0))
        self.kinematics_names = list(pick(kinematics_names, "kinematics_names", []))
        self.kinematics_log_columns = [int(c) for c in pick(kinematics_log_columns, "kinematics_log_columns", [])]
        self.constituent_feature_size = int(pick(constituent_feature_size, "constituent_feature_size", 0))
        self.hit_feature_size = int(pick(hit_feature_size, "hit_feature_size", 0))
        self.constituent_parent_type = int(pick(constituent_parent_type, "constituent_parent_type", -1))
        self.hit_parent_type = int(pick(hit_parent_type, "hit_parent_type", -1))
        self.num_special_tokens = int(num_special_tokens)
        self.num_experiments = int(pick(num_experiments, "num_experiments", 0))
        self.experiment_conditioning = bool(experiment_conditioning)
        self.token_id_ranges = {str(k): [int(v[0]), int(v[1])] for k, v in (token_id_ranges or {}).items()}
        self.classifier_dropout = classifier_dropout
        if masked_objective not in MASKED_OBJECTIVES:
            raise ValueError(f"masked_objective must be one of {MASKED_OBJECTIVES}, not {masked_objective!r}")
        self.masked_objective = masked_objective
        self.cls_token_id = int(cls_token_id)
        self.sep_token_id = int(sep_token_id)
        self.mask_token_id = int(mask_token_id)
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.pad_token_id = int(pad_token_id)
        bad = [g for groups in self.feature_groups.values() for g in groups if g not in self.feature_group_names]
        if bad:
            raise ValueError(f"feature_groups name {bad[0]!r}, which is not in feature_group_names")

    def tokenizer_mismatch(self, layout: dict[str, Any]) -> str | None:
        """Why a tokenizer (its ``event_tokenizer.json`` content, ``EventTokenizer.layout()``) does
        not fit this model: its sequence types' token id ranges or vocabulary differ. None when it
        fits, or when the model records no ranges (a model of continuous inputs)."""
        if not self.token_id_ranges:
            return None
        theirs = layout.get("token_id_ranges")
        if theirs is None:  # a tokenizer saved before the per-stage ranges were recorded: whole types
            by_name = {t: r for t, r in layout.get("id_ranges", {}).items() if t in layout.get("sequence_types", ())}
            theirs = {str(self.token_type_names.get(t, t)): [int(lo), int(hi)] for t, (lo, hi) in by_name.items()}
            ours = type_spans(self.token_id_ranges)
        else:
            theirs = {str(k): [int(v[0]), int(v[1])] for k, v in theirs.items()}
            ours = dict(self.token_id_ranges)
        vocab = max((int(hi) for _, hi in layout.get("id_ranges", {}).values()), default=self.vocab_size)
        if ours == theirs and vocab == self.vocab_size:
            return None
        return (
            f"the model was made for other token ids than this tokenizer's: model vocab_size {self.vocab_size}, "
            f"ranges {ours}; tokenizer vocab_size {vocab}, ranges {theirs} (keys: TOKEN_TYPE_ID:STAGE or "
            "TOKEN_TYPE_ID, values [first id, last id + 1))"
        )

    @property
    def uses_kinematics(self) -> bool:
        """Whether the model reads ``kinematics`` (flat inputs, pair features or combinations)."""
        return self.input_mode == "flat" or self.pair_features != "none" or self.kinematic_combinations > 0

    @property
    def one_position_per_object(self) -> bool:
        """Whether the encoder runs over one position per object (hierarchical, or stage pooling)."""
        return self.variant == "hierarchical" or self.stage_pooling != "none"

    @property
    def num_context_tokens(self) -> int:
        """Ids below this are specials or experiment context tokens: `[PAD] [CLS] [SEP] [MASK] [UNK] [ATLAS] [CMS]`."""
        return self.num_special_tokens + self.num_experiments
