"""The typed arguments of pretraining and fine-tuning, one definition for every entry point:
``treasure pretrain``/``finetune``, ``scripts/pretrain.py``/``finetune.py`` and the H -> ZZ* -> 4l
benchmark all build a :class:`PretrainArguments` or :class:`FinetuneArguments`.

The command-line options are generated from the dataclass fields (``--hidden-size`` from
``hidden_size``; the type, the default and the ``help`` of each field's metadata), and
:func:`from_namespace` turns parsed options back into the dataclass, so the two cannot drift.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

from ..commands.options import fraction, nonnegative_float, nonnegative_int, positive_float, positive_int

T = TypeVar("T")

INPUTS = ("ids", "ids+decoded", "continuous", "hybrid")
MASKED_OBJECTIVES = ("codes", "continuous", "codes+continuous")
"""Pretraining objectives (``--objective``): the masked-modeling head's targets, the model config's
``masked_objective`` (``configuration_event_transformer.MASKED_OBJECTIVES``, which imports nothing
from here: it travels with saved models)."""
"""What a model reads: token ids alone (token + type + position embeddings); token ids plus the
kinematics (and features) decoded from them; the original continuous kinematics and features;
token ids with continuous jet constituents."""
STAGE_POOLINGS = ("none", "sum")
"""How an object's tokens enter the encoder (``--stage-pooling``): the model config's
``stage_pooling`` (``configuration_event_transformer.STAGE_POOLINGS``)."""


def _opt(
    help: str,
    *,
    cli_type: Any = None,
    choices: tuple | None = None,
    flag: str | None = None,
    required: bool = False,
    default: Any = dataclasses.MISSING,
) -> Any:
    meta = {"help": help, "type": cli_type, "choices": choices, "flag": flag, "required": required}
    return field(default=default, metadata=meta) if default is not dataclasses.MISSING else field(metadata=meta)


@dataclass
class ModelShape:
    """A new model's sizes and inputs (ignored when training starts from a saved model)."""

    hidden_size: int = _opt("width of the transformer", cli_type=positive_int, default=128)
    layers: int = _opt("transformer layers", cli_type=positive_int, default=4)
    heads: int = _opt("attention heads", cli_type=positive_int, default=4)
    intermediate_size: int | None = _opt("MLP width (default 4 x hidden size)", cli_type=positive_int, default=None)
    dropout: float = _opt("dropout of every layer", cli_type=fraction, default=0.1)
    pair_features: str = _opt(
        "ParT-style attention bias from each pair of objects' kinematics (decoded from the "
        "tokens, or the original ones with --inputs continuous)",
        choices=("none", "kinematic"),
        default="none",
    )
    combinations: int = _opt(
        "learned four-vector combinations (plus type sums) in the pooler (0: none)", cli_type=nonnegative_int, default=0
    )
    inputs: str = _opt(
        "what the model reads: ids (token + type + position embeddings, nothing decoded), "
        "ids+decoded (and the kinematics decoded from them, for pair features and combinations), "
        "continuous (the original kinematics and features, columns of the data set), hybrid",
        choices=INPUTS,
        default="ids+decoded",
    )
    input_mode: str = _opt(
        "embedding of the inputs: tokens, flat (one projection of the kinematics) or per_type",
        choices=("tokens", "flat", "per_type"),
        default="tokens",
    )
    variant: str = _opt(
        "flat, hierarchical (feature-group sub-tokens per object) or constituent",
        choices=("flat", "hierarchical", "constituent"),
        default="flat",
    )
    stage_pooling: str = _opt(
        "none, or sum: an object's tokens (RVQ stages, PQ groups, FSQ codebooks) enter as the sum "
        "of their embeddings at one position, so that attention costs objects^2 whatever the "
        "tokens per object (not with --variant hierarchical)",
        choices=STAGE_POOLINGS,
        default="none",
    )
    event_features: int = _opt(
        "per-event values the model also reads (the data set's event_features column, e.g. an "
        "analysis's engineered observables), embedded at [CLS] and in the pooler; 0: none; with "
        "--model too, as a new input of the loaded encoder. Not for --inputs ids",
        cli_type=nonnegative_int,
        default=0,
    )
    experiment_token: bool = _opt(
        "embed the event's experiment context token ([ATLAS], [CMS]) by experiment; "
        "--no-experiment-token embeds every experiment's alike, so the model cannot tell "
        "the detectors apart",
        flag="--no-experiment-token",
        default=True,
    )


@dataclass
class TrainingRun:
    """What pretraining and fine-tuning share."""

    data: str = _opt("tokenized data set (treasure tokenize) or its hub repo id", required=True, default="")
    out: str = _opt("output directory: the model, its tokenizer and checkpoints", required=True, default="")
    tokenizer: str | None = _opt("EventTokenizer directory (default: DATA/tokenizer)", default=None)
    model: str | None = _opt("a saved model to start from (directory or hub repo id)", default=None)
    batch_size: int = _opt("events per device and step", cli_type=positive_int, default=64)
    lr: float = _opt("learning rate", cli_type=positive_float, default=5e-4)
    weight_decay: float = _opt("AdamW weight decay", cli_type=nonnegative_float, default=0.01)
    warmup_steps: int = _opt("linear warm-up steps", cli_type=nonnegative_int, default=0)
    max_steps: int = _opt("optimizer steps (the most)", cli_type=positive_int, default=1000)
    gradient_accumulation_steps: int = _opt("batches per optimizer step", cli_type=positive_int, default=1)
    mixed_precision: str = _opt("bf16 or fp16 autocast", choices=("no", "fp16", "bf16"), default="no")
    max_length: int | None = _opt("cut longer events to this many tokens", cli_type=positive_int, default=None)
    seed: int = _opt("seed of the model initialisation, batch order and masks", cli_type=nonnegative_int, default=0)
    report_to: str = _opt("tensorboard, trackio, none, or auto (whichever is installed)", default="auto")
    cpu: bool = _opt("train on the CPU even where a GPU is available", default=False)
    num_workers: int = _opt("data loader worker processes", cli_type=nonnegative_int, default=0)
    logging_steps: int = _opt("log every N steps", cli_type=positive_int, default=50)
    save_total_limit: int = _opt("checkpoints kept (0: all)", cli_type=nonnegative_int, default=2)
    overwrite: bool = _opt("replace an --out that this command did not write", default=False)
    progress: bool = field(default=True, metadata={"cli": False, "help": "progress bars (the CLI's -q turns them off)"})
    shape: ModelShape = field(default_factory=ModelShape)


@dataclass
class PretrainArguments(TrainingRun):
    """Masked event modeling with Accelerate (``treasure pretrain``)."""

    mask_rate: float = _opt("fraction of objects selected", cli_type=fraction, default=0.15)
    mask_fraction: float = _opt("selected objects set to [MASK]", cli_type=fraction, default=0.8)
    random_fraction: float = _opt("selected objects set to random ids", cli_type=fraction, default=0.1)
    save_steps: int = _opt(
        "write a checkpoint (safetensors + JSON) every N steps", cli_type=nonnegative_int, default=500
    )
    resume: bool = _opt("continue from the latest checkpoint in OUT/checkpoints", default=False)
    stop_at_step: int | None = _opt(
        "stop (after a checkpoint) at this step although --max-steps is larger: for jobs "
        "with a time limit, continued later with --resume",
        cli_type=positive_int,
        default=None,
    )
    split: str = _opt("split to train on", default="train")
    objective: str = _opt(
        "what is predicted of each masked object: codes (its token ids, cross-entropy), "
        "continuous (its kinematics log(1+pT), eta, phi, log(1+E), log(1+m), q before masking, "
        "MSE: masked particle modelling with continuous targets, MPMv2; the data set's "
        "kinematics column where it has one, treasure tokenize --with-continuous, else decoded "
        "from the unmasked ids) or codes+continuous (both losses summed)",
        choices=MASKED_OBJECTIVES,
        default="codes",
    )


@dataclass
class FinetuneArguments(TrainingRun):
    """Event classification with the transformers Trainer (``treasure finetune``)."""

    encoder_lr: float | None = _opt(
        "learning rate of the weights loaded from --model (default: --lr); the new "
        "classification head always trains at --lr",
        cli_type=positive_float,
        default=None,
    )
    epochs: float | None = _opt(
        "train for this many epochs instead of --max-steps", cli_type=positive_float, default=None
    )
    eval_steps: int | None = _opt(
        "evaluate and checkpoint every N steps (default: every epoch)", cli_type=positive_int, default=None
    )
    early_stopping_patience: int = _opt(
        "evaluations without a better validation metric before stopping (0: never)", cli_type=nonnegative_int, default=3
    )
    metric: str = _opt(
        "validation metric that picks the best model", choices=("roc_auc", "accuracy", "loss"), default="roc_auc"
    )
    train_split: str = _opt("split to train on", default="train")
    eval_split: str = _opt("split that picks the best model and stops training", default="validation")
    test_split: str = _opt("split of the reported test metrics ('' for none)", default="test")
    save_model: bool = _opt("save the best model to OUT", flag="--no-save-model", default=True)
    freeze_encoder: bool = _opt(
        "train the classification layer alone on the frozen loaded model (a linear probe "
        "of the --model encoder; its pooler keeps its initial weights)",
        default=False,
    )
    event_feature_names: str | None = _opt(
        "comma-separated names of the --event-features values, recorded in the model's config", default=None
    )


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> argparse.ArgumentParser:
    """One option per field of ``cls`` (and of its nested :class:`ModelShape`, grouped)."""
    groups = {cls: parser}
    for f, hint in _fields(cls):
        if f.name == "shape":
            g = parser.add_argument_group("a new model (ignored with --model)")
            for sf, shint in _fields(ModelShape):
                _add(g, sf, shint)
            continue
        _add(groups[cls], f, hint)
    return parser


def _add(parser: Any, f: dataclasses.Field, hint: Any) -> None:
    meta = f.metadata
    if meta.get("cli") is False:
        return
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if hint is bool or hint == "bool":
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        action = "store_false" if default else "store_true"
        parser.add_argument(flag, dest=f.name, action=action, help=meta["help"])
        return
    kwargs: dict[str, Any] = {
        "dest": f.name,
        "help": meta["help"] + ("" if default in (None, "") else " (default %(default)s)"),
    }
    if meta.get("choices"):
        kwargs["choices"] = meta["choices"]
    if meta.get("type") is not None:
        kwargs["type"] = meta["type"]
    if meta.get("required"):
        kwargs["required"] = True
    else:
        kwargs["default"] = default
    parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def from_namespace(cls: type[T], namespace: argparse.Namespace) -> T:
    """The dataclass of the parsed options (those the parser does not have keep their defaults)."""
    values = vars(namespace)
    shape = ModelShape(**{f.name: values[f.name] for f in dataclasses.fields(ModelShape) if f.name in values})
    kwargs = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values and f.name != "shape"}
    return cls(**kwargs, shape=shape)


def add_pretrain_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    return add_arguments(p, PretrainArguments)


def add_finetune_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    return add_arguments(p, FinetuneArguments)


def script_main(cls: type[T], train: Any, description: str, argv: list[str] | None = None) -> int:
    """The body of ``scripts/pretrain.py`` and ``scripts/finetune.py`` (also under ``accelerate
    launch``): the options of ``cls``, plus ``-q``; runs ``train(arguments)`` and prints its output
    directory; bad input gets the CLI's one-line error."""
    import logging

    parser = add_arguments(
        argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter), cls
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.progress = not args.quiet
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from ..cli import run_reported

    return run_reported(lambda: print(train(from_namespace(cls, args)).out))
