"""Event classification with the transformers ``Trainer``: ``treasure finetune``,
``scripts/finetune.py`` and every learned row of the H -> ZZ* -> 4l benchmark.

:func:`finetune` takes a :class:`~.arguments.FinetuneArguments` and a tokenized data set (a
folder written by ``treasure tokenize``, a hub repo, or a ``DatasetDict`` in memory: the
benchmark's). ``TrainingArguments`` with transformers 5 names (``eval_strategy``,
``processing_class``): evaluation and checkpoints every epoch (or ``eval_steps``), ROC AUC and
accuracy on the validation split (:func:`compute_metrics`), early stopping on it, the best model
reloaded at the end, then the test-split metrics and per-event scores. A model started from
``--model`` trains its loaded weights at ``encoder_lr`` and its new head at ``lr``.

Checkpoints hold no pickle: ``save_only_model=True`` keeps the Trainer's ``optimizer.pt``,
``scheduler.pt`` and ``rng_state.pth`` out (a fine-tuning run is short and restarts rather than
resumes), and :class:`JsonTrainingArguments` replaces its ``training_args.bin`` with
``training_args.json``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.atomic import write_json
from ..errors import ArgumentError
from .arguments import FinetuneArguments
from .common import (
    available_trackers,
    check_compatible,
    check_output,
    claim_output,
    data_columns,
    dataset_description,
    event_feature_scaling,
    load_tokenized,
    load_tokenizer,
    model_collator,
    new_config,
)

logger = logging.getLogger(__name__)


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """``roc_auc`` (binary: class 1 against class 0; several classes: the mean of one-vs-rest
    AUCs of the classes present) and ``accuracy`` (arg max) from the Trainer's predictions."""
    from ..metrics import class_scores, roc_auc

    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    probs = class_scores(logits)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    accuracy = float((probs.argmax(-1) == labels).mean())
    present = [c for c in range(probs.shape[1]) if 0 < (labels == c).sum() < len(labels)]
    if probs.shape[1] == 2:
        auc = roc_auc(labels == 1, probs[:, 1]) if len(present) == 2 else float("nan")
    else:
        auc = float(np.mean([roc_auc(labels == c, probs[:, c]) for c in present])) if present else float("nan")
    return {"roc_auc": auc, "accuracy": accuracy}


def json_training_arguments(directory: str | Path, args: Any) -> None:
    """Replace the pickled ``training_args.bin`` the Trainer writes beside a model with
    ``training_args.json`` (``TrainingArguments.to_json_string()``)."""
    directory = Path(directory)
    (directory / "training_args.bin").unlink(missing_ok=True)
    (directory / "training_args.json").write_text(args.to_json_string())


def _json_arguments_callback():
    from transformers import TrainerCallback

    class JsonTrainingArguments(TrainerCallback):
        """After each checkpoint: ``training_args.json`` instead of the pickled ``training_args.bin``."""

        def on_save(self, args, state, control, **kwargs):
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                json_training_arguments(folder, args)
            return control

    return JsonTrainingArguments()


def _log_callback():
    from transformers import TrainerCallback

    class LogMetrics(TrainerCallback):
        """The Trainer's logs to the ``logging`` module (instead of stdout)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                logger.info(
                    "step %d: %s",
                    state.global_step,
                    {k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()},
                )
            return control

    return LogMetrics()


@dataclass
class FinetuneResult:
    """What a fine-tuning run gives back (and writes to ``out`` when ``save_model``)."""

    out: Path
    model: Any
    """The best model by the validation metric, in eval mode."""
    metrics: dict[str, dict[str, float]]
    """``{"validation": ..., "test": ...}`` metrics of the best model."""
    test_scores: np.ndarray | None
    """(n_test, n_classes) class probabilities of the test split's events, in its order."""
    test_labels: np.ndarray | None
    steps: int
    best_checkpoint: str | None


def freeze_encoder(model: Any) -> list[str]:
    """Leave the classification layer alone trainable (a linear probe of the frozen encoder and
    pooler); returns the names of the parameters that still train."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier."))
    return [n for n, p in model.named_parameters() if p.requires_grad]


def _optimizer(model: Any, args: FinetuneArguments, loaded: set[str], total_steps: int):
    """AdamW with the loaded weights at ``encoder_lr`` and the rest at ``lr``, linear warm-up and decay."""
    from transformers import get_scheduler

    encoder_lr = args.encoder_lr or args.lr
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if n in loaded], "lr": encoder_lr},
        {"params": [p for n, p in named if n not in loaded], "lr": args.lr},
    ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=args.weight_decay)
    return opt, get_scheduler("linear", opt, num_warmup_steps=args.warmup_steps, num_training_steps=total_steps)


def finetune(args: FinetuneArguments, *, data: Any = None, tokenizer: Any = None) -> FinetuneResult:
    """Train, pick the best model on ``eval_split``, evaluate on ``test_split``; with
    ``save_model`` write model, tokenizer, ``training_summary.json`` and ``README.md`` to
    ``args.out``. ``data``: a ``DatasetDict`` in memory instead of ``args.data``; ``tokenizer``:
    the EventTokenizer instead of loading it."""
    from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments

    from ..data.atomic import follow_umask
    from ..hf.hub import model_card_for
    from ..hf.remote_code import add_remote_code
    from ..modeling import EventTransformerForSequenceClassification

    out = Path(args.out)
    check_output(out, "finetune", args)
    tokenizer_path = args.tokenizer or "(given)"
    if tokenizer is None:
        tokenizer, tokenizer_path = load_tokenizer(args.data, args.tokenizer)
    ds = data if data is not None else load_tokenized(args.data)
    for split in (args.train_split, args.eval_split, args.test_split):
        if split and split not in ds:
            raise ValueError(f"{args.data} has no split {split!r} (it has {sorted(ds)})")
    label_feature = ds[args.train_split].features["labels"]
    names = list(getattr(label_feature, "names", None) or [str(c) for c in sorted(set(ds[args.train_split]["labels"]))])
    id2label, label2id = dict(enumerate(names)), {n: i for i, n in enumerate(names)}
    loaded: set[str] = set()
    k = args.shape.event_features
    scaling = (
        event_feature_scaling(
            ds[args.train_split], k, (args.event_feature_names or "").split(",") if args.event_feature_names else None
        )
        if k
        else {}
    )
    if args.model:
        extra = {"event_feature_size": k, **scaling} if k else {}  # a new input of the loaded encoder
        model, info = EventTransformerForSequenceClassification.from_pretrained(
            args.model, num_labels=len(names), id2label=id2label, label2id=label2id, output_loading_info=True, **extra
        )
        check_compatible(model, tokenizer, args.model, tokenizer_path)
        fresh = set(info["missing_keys"]) | set(info.get("mismatched_keys", []))
        loaded = {n for n, _ in model.named_parameters() if n not in fresh}
        if args.freeze_encoder:
            freeze_encoder(model)
    elif args.freeze_encoder:
        raise ArgumentError("--freeze-encoder", "a linear probe needs a pretrained encoder: give --model")
    else:
        torch.manual_seed(args.seed)
        model = EventTransformerForSequenceClassification(
            new_config(tokenizer, args, num_labels=len(names), id2label=id2label, label2id=label2id, **scaling)
        )
    inputs = model.config.input_kind
    collator = model_collator(tokenizer, model.config, inputs, max_length=args.max_length)
    columns = data_columns(ds[args.train_split], collator, args.data or "the data set")
    train = ds[args.train_split].select_columns(columns)
    steps_per_epoch = max(1, -(-len(train) // (args.batch_size * args.gradient_accumulation_steps)))
    total = int(np.ceil(args.epochs * steps_per_epoch)) if args.epochs else args.max_steps
    by_epoch = args.eval_steps is None
    greater = args.metric != "loss"
    targs = TrainingArguments(
        output_dir=str(out),
        max_steps=total,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=max(args.batch_size, 256),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        eval_strategy="epoch" if by_epoch else "steps",
        eval_steps=None if by_epoch else args.eval_steps,
        save_strategy="epoch" if by_epoch else "steps",
        save_steps=None if by_epoch else args.eval_steps,
        save_total_limit=max(args.save_total_limit, 1),
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model=args.metric,
        greater_is_better=greater,
        logging_steps=args.logging_steps,
        seed=args.seed,
        data_seed=args.seed,
        bf16=args.mixed_precision == "bf16",
        fp16=args.mixed_precision == "fp16",
        use_cpu=args.cpu,
        report_to=available_trackers(args.report_to) or "none",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=args.num_workers,
        dataloader_pin_memory=torch.cuda.is_available() and not args.cpu,
        disable_tqdm=not args.progress,
    )
    callbacks = [EarlyStoppingCallback(args.early_stopping_patience)] if args.early_stopping_patience else []
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=train,
        eval_dataset=ds[args.eval_split].select_columns(columns),
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        optimizers=_optimizer(model, args, loaded, total),
        callbacks=callbacks + [_json_arguments_callback(), _log_callback()],
    )
    trainer.remove_callback(PrinterCallback)  # metrics go to the log, not to stdout
    if trainer.is_world_process_zero():
        claim_output(out, "finetune")
    trainer.train()
    for callback in callbacks:  # the evaluations below are no training evaluations
        trainer.remove_callback(callback)
    summary_metrics = {"validation": trainer.evaluate()}
    results, test_scores, test_labels = [], None, None
    if args.test_split:
        from ..metrics import class_scores

        prediction = trainer.predict(ds[args.test_split].select_columns(columns), metric_key_prefix="test")
        test = prediction.metrics
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        test_scores, test_labels = class_scores(logits), np.asarray(prediction.label_ids)
        summary_metrics["test"] = test
        data_name = Path(args.data).name if args.data and Path(args.data).exists() else (args.data or "in memory")
        results = [
            {
                "dataset_name": data_name,
                "dataset_type": data_name,
                "dataset_split": args.test_split,
                "metric_name": name,
                "metric_value": test[f"test_{key}"],
            }
            for key, name in (("roc_auc", "ROC AUC"), ("accuracy", "accuracy"))
            if f"test_{key}" in test
        ]
    if args.save_model and trainer.is_world_process_zero():
        trainer.save_model(str(out))  # the best model (load_best_model_at_end) and the tokenizer
        add_remote_code(out)  # loads with trust_remote_code where treasure_hf is not installed
        json_training_arguments(out, targs)
        write_json(
            out / "training_summary.json",
            default=str,
            obj={
                "task": "event classification",
                "data": dataset_description(args.data, ds),
                "tokenizer": tokenizer_path,
                "classes": names,
                "metrics": summary_metrics,
                "eval_results": results,
                "base_model": args.model,
                "best_checkpoint": trainer.state.best_model_checkpoint,
                "steps": trainer.state.global_step,
                "args": {k: v for k, v in dataclasses.asdict(args).items() if not isinstance(v, dict)},
                "model_shape": dataclasses.asdict(args.shape),
                "procedure_text": (
                    f"Fine-tuned with the transformers Trainer for up to {total} steps of "
                    f"{args.batch_size} events (stopped at step {trainer.state.global_step}), AdamW lr "
                    f"{args.lr}"
                    + (f" (loaded weights {args.encoder_lr})" if args.encoder_lr else "")
                    + (
                        ", the loaded encoder frozen (linear probe: the classification layer alone trained)"
                        if args.freeze_encoder
                        else ""
                    )
                    + f", best of the evaluations by validation {args.metric}"
                    + (f" from `{args.model}`." if args.model else " from scratch.")
                ),
            },
        )
        (out / "README.md").write_text(str(model_card_for(out, str(out))))
        follow_umask(out)  # safetensors writes its files readable by their owner alone
    model = trainer.model.eval()
    return FinetuneResult(
        out,
        model,
        summary_metrics,
        test_scores,
        test_labels,
        trainer.state.global_step,
        trainer.state.best_model_checkpoint,
    )
