"""What pretraining and fine-tuning share: the tokenized data set, its tokenizer, a fresh model
config sized from the tokenizer, and the available experiment trackers."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CompatibilityError, FormatError

if TYPE_CHECKING:
    from .arguments import TrainingRun

logger = logging.getLogger(__name__)

TRACKERS = ("tensorboard", "trackio")
EVENT_FEATURES = "event_features"
"""The data set's column of per-event values (a list of ``--event-features`` floats per event)."""


def available_trackers(report_to: str) -> list[str]:
    """``auto``: every installed tracker of :data:`TRACKERS`; ``none``: nothing; else the named ones."""
    if report_to == "none":
        return []
    if report_to == "auto":
        return [t for t in TRACKERS if importlib.util.find_spec(t) is not None]
    names = [t.strip() for t in report_to.split(",") if t.strip()]
    missing = [t for t in names if importlib.util.find_spec(t) is None]
    if missing:
        raise ValueError(f"--report-to {missing[0]}: it is not installed")
    return names


def load_tokenized(data: str, cache_dir: str | None = None):
    """The tokenized data set (a folder written by ``treasure tokenize`` or a hub repo) through
    stock ``datasets.load_dataset``: a ``DatasetDict``."""
    import datasets

    return datasets.load_dataset(os.fspath(data), cache_dir=cache_dir)


def load_tokenizer(data: str, tokenizer: str | None):
    """The tokenizer of a tokenized data set (``DATA/tokenizer``, or ``tokenizer`` where given)."""
    from ..tokenization import EventTokenizer

    path = tokenizer or os.path.join(os.fspath(data), "tokenizer")
    if not os.path.exists(path):
        if tokenizer is None:
            raise FormatError(data, "tokenizer", "the data set holds no tokenizer/ folder: pass --tokenizer")
        raise FormatError(path, None, "no such tokenizer directory (--tokenizer)")
    return EventTokenizer.from_pretrained(path), path


def check_output(out: Path, producer: str, args: TrainingRun) -> None:
    """Refuse an ``--out`` that is the data, holds it, or was not written by ``producer`` (unless
    ``--overwrite``), before any work."""
    from ..data.outputs import check_destination

    inputs = [p for p in (args.data, args.tokenizer, args.model) if p and os.path.exists(p)]
    check_destination(out, producer, inputs=inputs, overwrite=args.overwrite)


def claim_output(out: Path, producer: str) -> None:
    """Create ``--out`` marked as ``producer``'s, once the run is about to write into it: its
    checkpoints are written there as training goes, and a rerun of the same command may continue."""
    from ..data.outputs import write_marker

    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, producer)


def check_compatible(model: Any, tokenizer: Any, model_path: str, tokenizer_path: str) -> None:
    """Refuse a model made for other token ids than ``tokenizer``'s, showing both ranges."""
    problem = model.config.tokenizer_mismatch(tokenizer.layout())
    if problem:
        raise CompatibilityError(
            model_path, None, f"does not read the ids of the tokenizer {tokenizer_path}: {problem}"
        )


def new_config(tokenizer: Any, args: TrainingRun, **kwargs: Any):
    """An :class:`EventTransformerConfig` sized from the tokenizer and ``args.shape``
    (:class:`~.arguments.ModelShape`); a model of token ids alone gets no pair features and no
    combinations (it reads nothing decoded)."""
    from ..errors import ArgumentError
    from ..modeling import EventTransformerConfig, config_kwargs_from_tokenizer

    shape = args.shape
    if shape.inputs == "ids" and (shape.pair_features != "none" or shape.combinations):
        raise ArgumentError(
            "--inputs",
            "a model of token ids alone reads no kinematics: it takes neither "
            "--pair-features nor --combinations (use --inputs ids+decoded)",
        )
    if shape.stage_pooling != "none" and shape.variant == "hierarchical":
        raise ArgumentError("--stage-pooling", "the hierarchical variant pools an object's tokens itself")
    if shape.inputs == "ids" and shape.event_features:
        raise ArgumentError("--event-features", "a model of token ids alone reads nothing but ids: no event features")
    if (
        shape.inputs == "continuous"
        and shape.input_mode == "tokens"
        and not (shape.pair_features != "none" or shape.combinations)
    ):
        raise ArgumentError("--inputs", "continuous inputs need --input-mode flat or per_type (or pair features)")
    length = max(int(tokenizer.model_max_length), int(args.max_length or 0))
    return EventTransformerConfig(
        **config_kwargs_from_tokenizer(tokenizer),
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate_size or 4 * shape.hidden_size,
        hidden_dropout_prob=shape.dropout,
        attention_probs_dropout_prob=shape.dropout,
        max_position_embeddings=length,
        pair_features=shape.pair_features,
        kinematic_combinations=shape.combinations,
        input_mode=shape.input_mode,
        variant=shape.variant,
        stage_pooling=shape.stage_pooling,
        input_kind=shape.inputs,
        experiment_conditioning=shape.experiment_token,
        event_feature_size=shape.event_features,
        **kwargs,
    )


def event_feature_scaling(split: Any, size: int, names: list[str] | None = None) -> dict[str, Any]:
    """The config's ``event_feature_*`` entries for a model reading ``size`` values per event:
    the mean and standard deviation of the split's ``event_features`` column (its training
    events), non-finite values left out."""
    from ..errors import InputError

    if EVENT_FEATURES not in split.column_names:
        raise InputError(None, EVENT_FEATURES, f"is not a column of the data set, and the model reads {size} per event")
    col = split.select_columns([EVENT_FEATURES]).with_format("arrow")[:].column(EVENT_FEATURES)  # its rows only
    col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    values = np.asarray(col.flatten().to_numpy(zero_copy_only=False), np.float64)
    if values.size != len(split) * size:
        raise InputError(None, EVENT_FEATURES, f"holds {values.size} values for {len(split)} events, not {size} each")
    values = values.reshape(len(split), size)
    finite = np.where(np.isfinite(values), values, np.nan)
    mean = np.nan_to_num(np.nanmean(finite, 0))
    scale = np.nan_to_num(np.nanstd(finite, 0), nan=1.0)
    scale = np.where(scale > 0, scale, 1.0)
    return {
        "event_feature_mean": mean.tolist(),
        "event_feature_scale": scale.tolist(),
        **({"event_feature_names": list(names)} if names else {}),
    }


def model_collator(
    tokenizer: Any, config: Any, inputs: str, *, max_length: int | None = None, keep: tuple[str, ...] = ("labels",)
):
    """The collator of a model reading ``inputs`` (:data:`~.arguments.INPUTS`): token ids; plus
    kinematics (and, for a hierarchical model, features) decoded from them; or the data set's
    own continuous columns; for a constituent/hit model, the data set's sub-object columns
    (``treasure tokenize --with-sub-objects``)."""
    from ..hf.collators import EventPaddingCollator

    decoded = inputs == "ids+decoded"
    continuous = {}
    if inputs in ("continuous", "hybrid"):
        continuous = {"kinematics": len(config.kinematics_names) or 6}
        if config.input_mode == "per_type" or config.variant == "hierarchical":
            continuous["features"] = config.feature_size
    subs = {}
    if config.variant == "constituent":
        subs = {
            name: size
            for name, size in (("constituents", config.constituent_feature_size), ("hits", config.hit_feature_size))
            if size
        }
    return EventPaddingCollator(
        config.token_id_ranges,
        max_length=max_length,
        keep=keep,
        sequence_columns=continuous,
        sub_object_columns=subs,
        event_columns={EVENT_FEATURES: config.event_feature_size} if config.event_feature_size else {},
        kinematics_decoder=tokenizer.decode_kinematics if decoded and config.uses_kinematics else None,
        features_decoder=tokenizer.decode_features if decoded and config.variant == "hierarchical" else None,
    )


def data_columns(split: Any, collator: Any, data: str) -> list[str]:
    """The columns of a tokenized split that ``collator`` reads; an error naming the option that
    writes a missing one (``--with-continuous``, ``--with-sub-objects``)."""
    from ..errors import InputError

    wanted = {
        "input_ids": None,
        "token_type_ids": None,
        "labels": None,
        **{name: ": tokenize with --with-continuous" for name in collator.sequence_columns},
        **{
            c: ": tokenize with --with-sub-objects"
            for name in collator.sub_object_columns
            for c in (name, f"{name}_mask")
        },
        **{
            name: ": add a list column of each event's values (--event-features says how many)"
            for name in collator.event_columns
        },
    }
    for column, how in wanted.items():
        if column not in split.column_names:
            raise InputError(data, column, f"is not a column of the data set, and the model reads it{how or ''}")
    return list(wanted)


def dataset_description(data: str, ds: Any) -> dict[str, Any]:
    """What the model was trained on, for its card: path or repo, splits and sizes, classes, and
    what the data set's inputs lacked (its ``inputs.json``: missing collections, collision data)."""
    first = next(iter(ds.values()))
    labels, sources = first.features.get("labels"), first.features.get("source")
    return {
        "path": os.fspath(data),
        "repo_id": None if os.path.exists(data) else data,
        "splits": {k: len(v) for k, v in ds.items()},
        "label_names": list(getattr(labels, "names", []) or []),
        "sources": list(getattr(sources, "names", []) or []),
        "inputs": _dataset_inputs(data),
    }


def _dataset_inputs(data: str) -> dict[str, Any] | None:
    """The data set's ``inputs.json`` (local folder or hub repo); None for a data set written
    before it existed."""
    from ..hf.export import INPUTS_FILE

    local = Path(data) / INPUTS_FILE
    if local.exists():
        return json.loads(local.read_text())
    if os.path.exists(data):
        logger.info("%s has no %s: the model card cannot say which collections its inputs lacked", data, INPUTS_FILE)
        return None
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(data, INPUTS_FILE, repo_type="dataset")).read_text())
    except Exception as exc:
        logger.info(
            "%s: %s not read (%s): the model card cannot say which collections its inputs lacked",
            data,
            INPUTS_FILE,
            exc,
        )
        return None
