"""The rows of the benchmark, trained through the shipped training functions: every learned row
is fine-tuned by :func:`treasure_hf.training.finetune.finetune` (the ``Trainer``), the foundation
model pretrained by :func:`treasure_hf.training.pretrain.pretrain` (Accelerate), on tokenized data
sets held in memory in the layout ``treasure tokenize`` writes (:func:`splits`). Each (row, seed)
result is kept on disk (``OUT/rows/KEY/seed-S``): a rerun with the same ``--out`` skips it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.atomic import write_json
from ..data.events import EventBatch
from ..training.arguments import FinetuneArguments, ModelShape, PretrainArguments
from ..training.common import EVENT_FEATURES
from .config import BenchmarkArguments, Budget, ModelSettings

logger = logging.getLogger(__name__)

CLASSES = ("background", "signal")
ENCODE_STEP = 10_000


@dataclass
class SeedResult:
    """One trained seed of a row: its test scores (signal probability per test event) and its
    validation AUC (what picks between rows and settings; never the test)."""

    test_scores: np.ndarray
    val_auc: float
    info: dict[str, Any]


def cached(directory: Path, train: Callable[[], SeedResult]) -> SeedResult:
    """``train()``'s result, kept in ``directory`` (``scores.npy`` + ``result.json``) and read back
    by a rerun instead of training again."""
    scores, result = directory / "scores.npy", directory / "result.json"
    if scores.exists() and result.exists():
        meta = json.loads(result.read_text())
        return SeedResult(np.load(scores, allow_pickle=False), meta["val_auc"], meta["info"])
    out = train()
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / ".scores.npy", np.asarray(out.test_scores, np.float64), allow_pickle=False)
    (directory / ".scores.npy").replace(scores)
    write_json(result, {"val_auc": out.val_auc, "info": out.info}, default=float)  # last: the mark of a finished seed
    return out


def encode_dataset(
    tokenizer: Any,
    events: EventBatch,
    labels: np.ndarray,
    *,
    continuous: bool = False,
    sub_objects: bool = False,
    event_features: np.ndarray | None = None,
):
    """A ``datasets.Dataset`` of the events in the layout of ``treasure tokenize`` (plus the
    original kinematics and features with ``continuous``, the jets' constituents and the tracks'
    hits with ``sub_objects``, and ``event_features`` (n_events, F) as its list column of that
    name), tokenized ``ENCODE_STEP`` at a time."""
    import datasets
    import pyarrow as pa

    from ..hf.tokenize import encoded_rows, sub_object_columns

    subs = sub_object_columns(tokenizer) if sub_objects else ()
    tables = []
    for lo in range(0, events.n_events, ENCODE_STEP):
        batch = events.slice(lo, min(lo + ENCODE_STEP, events.n_events))
        enc = tokenizer(batch, padding="longest", return_features=continuous, return_constituents=bool(subs))
        tables.append(
            encoded_rows(batch, enc, labels[lo : lo + ENCODE_STEP], 0, lo, continuous=continuous, sub_objects=subs)
        )
    table = pa.concat_tables(tables)
    if event_features is not None:
        values = np.asarray(event_features, np.float32)
        if values.shape[0] != events.n_events:
            raise ValueError(f"event_features has {values.shape[0]} rows for {events.n_events} events")
        offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32) * values.shape[1])
        table = table.append_column(EVENT_FEATURES, pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1))))
    features = datasets.Features.from_arrow_schema(table.schema)
    features["labels"] = datasets.ClassLabel(names=list(CLASSES))
    return datasets.Dataset(
        datasets.table.InMemoryTable(table.cast(features.arrow_schema)), info=datasets.DatasetInfo(features=features)
    )


def splits(
    tokenizer: Any,
    parts: Mapping[str, tuple[EventBatch, np.ndarray] | tuple[EventBatch, np.ndarray, np.ndarray]],
    *,
    continuous: bool = False,
    sub_objects: bool = False,
):
    """``DatasetDict`` of ``{split: (events, labels)}`` or ``{split: (events, labels,
    event_features)}``."""
    import datasets

    return datasets.DatasetDict(
        {
            name: encode_dataset(
                tokenizer,
                part[0],
                part[1],
                continuous=continuous,
                sub_objects=sub_objects,
                event_features=part[2] if len(part) > 2 else None,
            )
            for name, part in parts.items()
        }
    )


def shape_for(
    settings: ModelSettings, inputs: str, *, input_mode: str = "tokens", variant: str = "flat", event_features: int = 0
) -> ModelShape:
    """The model of a row reading ``inputs`` (and ``event_features`` values per event): a model
    of ids alone has neither pair features, nor combinations, nor event features, since it reads
    nothing decoded."""
    reads_kinematics = inputs != "ids"
    return ModelShape(
        hidden_size=settings.hidden_size,
        layers=settings.layers,
        heads=settings.heads,
        intermediate_size=settings.intermediate_size,
        dropout=settings.dropout,
        pair_features=settings.pair_features if reads_kinematics else "none",
        combinations=settings.combinations if reads_kinematics else 0,
        inputs=inputs,
        input_mode=input_mode,
        variant=variant,
        event_features=event_features if reads_kinematics else 0,
    )


def finetune_row(
    data: Any,
    tokenizer: Any,
    shape: ModelShape,
    settings: ModelSettings,
    seed: int,
    work: Path,
    *,
    model: str | None = None,
    encoder_lr: float | None = None,
    freeze: bool = False,
    progress: bool = False,
    event_feature_names: Sequence[str] = (),
) -> SeedResult:
    """Train one seed of a row with the shipped fine-tuning (model initialisation and batch order
    from ``seed``; the best epoch by validation AUC; early stopping on it); ``freeze``: a linear
    probe of the frozen ``model``."""
    from ..training.finetune import finetune

    work.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="trainer-", dir=work))  # one per call: runs of other rows may share ``work``
    args = FinetuneArguments(
        data="",
        out=str(out),
        model=model,
        batch_size=settings.batch_size,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        epochs=settings.epochs,
        early_stopping_patience=settings.patience,
        encoder_lr=encoder_lr,
        freeze_encoder=freeze,
        seed=seed,
        report_to="none",
        save_model=False,
        save_total_limit=1,
        logging_steps=10_000,
        overwrite=True,
        progress=progress,
        event_feature_names=",".join(event_feature_names) or None,
        shape=shape,
    )
    try:
        result = finetune(args, data=data, tokenizer=tokenizer)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # the Trainer's checkpoints: the scores are what is kept
    val = result.metrics["validation"]
    return SeedResult(
        result.test_scores[:, 1],
        float(val["eval_roc_auc"]),
        {
            "steps": result.steps,
            "val_loss": float(val["eval_loss"]),
            "parameters": int(sum(p.numel() for p in result.model.parameters())),
        },
    )


def finetune_pretrained(
    data: Any,
    tokenizer: Any,
    shape: ModelShape,
    settings: ModelSettings,
    seed: int,
    work: Path,
    model: str,
    progress: bool = False,
    event_feature_names: Sequence[str] = (),
) -> SeedResult:
    """The pretrained ``model`` fine-tuned at each encoder rate of ``settings.finetune_lrs``; the
    one with the best validation AUC is kept (its rate and every rate's validation AUC in ``info``)."""
    tries = {
        lr: finetune_row(
            data,
            tokenizer,
            shape,
            settings,
            seed,
            work,
            model=model,
            encoder_lr=lr,
            progress=progress,
            event_feature_names=event_feature_names,
        )
        for lr in settings.finetune_lrs
    }
    lr = max(tries, key=lambda k: tries[k].val_auc)
    best = tries[lr]
    best.info.update({"encoder_lr": lr, "validation_auc_per_lr": {str(k): v.val_auc for k, v in tries.items()}})
    return best


def pretrain_encoder(
    data: Any,
    tokenizer: Any,
    shape: ModelShape,
    settings: ModelSettings,
    seed: int,
    out: Path,
    progress: bool = False,
    objective: str = "codes",
    stop_at_step: int | None = None,
) -> Path:
    """Masked event modeling (``objective``, :data:`~treasure_hf.training.arguments.MASKED_OBJECTIVES`)
    with the shipped pretraining, on the ``train`` split of ``data`` (unlabelled events); returns
    the saved model (reused by a rerun; an interrupted one resumes from its last checkpoint)."""
    from ..training.checkpoint import CHECKPOINTS
    from ..training.pretrain import pretrain

    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    args = PretrainArguments(
        data="",
        out=str(out),
        batch_size=settings.pretrain_batch_size,
        lr=settings.pretrain_lr,
        weight_decay=settings.weight_decay,
        max_steps=settings.pretrain_steps,
        warmup_steps=settings.pretrain_steps // 20,
        mask_rate=settings.mask_rate,
        save_steps=max(1, settings.pretrain_steps // 5),
        seed=seed,
        report_to="none",
        cpu=True,
        overwrite=True,
        resume=(out / CHECKPOINTS).is_dir(),
        stop_at_step=stop_at_step,
        objective=objective,
        progress=progress,
        logging_steps=max(1, settings.pretrain_steps // 10),
        shape=shape,
    )
    pretrain(args, data=data, tokenizer=tokenizer)
    return out


def tokenizer_budget(tokenizer: Any) -> float:
    """Bits per object of a tokenizer (the same for each of its sequence types, by construction)."""
    bits = {
        t: q.config.num_stages
        * float(np.log2(np.prod(q.config.fsq_levels) if q.config.fsq_levels else q.config.codebook_size))
        for t, q in tokenizer.quantizers.items()
    }
    values = set(round(v, 6) for v in bits.values())
    if len(values) != 1:
        raise ValueError(f"the tokenizer's types spend different budgets: {bits}")
    return values.pop()


def train_budget_tokenizer(
    b: Budget,
    encoder: str,
    seed: int,
    paths: list[Path],
    out: Path,
    args: BenchmarkArguments,
    types: tuple[str, ...],
    progress: bool,
) -> Any:
    """The tokenizer of budget ``b`` and ``encoder`` for ``seed`` (trained once, then read back)."""
    from ..tokenization import EventTokenizer
    from ..tokenization.training import TokenizerTrainingArguments, train_tokenizer

    if (out / "event_tokenizer.json").exists() and (out / "training_log.json").exists():
        return EventTokenizer.from_pretrained(out)
    ts = args.tokenizer
    targs = TokenizerTrainingArguments(
        method=b.method,
        codebook_size=b.codebook_size,
        objects_per_code=0,  # the budget's codebook, whatever the data
        num_stages=b.stages,
        fsq_levels=b.fsq_levels,
        types=types,
        steps=ts.steps,
        batch_size=ts.batch_size,
        pt_loss_weight=ts.pt_weight,
        encoder_type=encoder,
        latent_dim=ts.latent_dim,
        hidden_size=ts.hidden_size,
        max_objects_per_type=ts.max_objects_per_type,
        checkpoint_every=0,
        seed=seed,
    )
    return train_tokenizer(paths, out, targs, progress=progress, overwrite=True)
