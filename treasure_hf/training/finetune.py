"""Event classification with the transformers ``Trainer``: ``treasure finetune`` and
``scripts/finetune.py``.

``TrainingArguments`` with transformers 5 names (``eval_strategy``, ``processing_class``):
evaluation and checkpoints every ``--eval-steps``, ROC AUC and accuracy on the validation split
(:func:`compute_metrics`), early stopping on it, the best model reloaded at the end, then the
test-split metrics written to ``training_summary.json`` and the model card.

Checkpoints hold no pickle: ``save_only_model=True`` keeps the Trainer's ``optimizer.pt``,
``scheduler.pt`` and ``rng_state.pth`` out (a fine-tuning run is short and restarts rather than
resumes), and :class:`JsonTrainingArguments` replaces its ``training_args.bin`` with
``training_args.json``. A checkpoint is ``model.safetensors``, ``config.json``, the tokenizer files,
``trainer_state.json`` and ``training_args.json``; the best one is reloaded at the end from its
``model.safetensors``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .common import (available_trackers, check_compatible, check_output, claim_output, dataset_description, kinematics_decoder, load_tokenized,
                     load_tokenizer, new_config, write_json)

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


def finetune(args: argparse.Namespace) -> Path:
    """Train, pick the best model on the validation split, evaluate on the test split and save
    model, tokenizer, ``training_summary.json`` and ``README.md`` to ``args.out``."""
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

    from ..data.atomic import follow_umask
    from ..hf.collators import EventPaddingCollator
    from ..hf.hub import model_card_for
    from ..hf.remote_code import add_remote_code
    from ..modeling import EventTransformerForSequenceClassification

    out = Path(args.out)
    check_output(out, "finetune", args)
    tokenizer, tokenizer_path = load_tokenizer(args.data, args.tokenizer)
    ds = load_tokenized(args.data)
    for split in (args.train_split, args.eval_split, args.test_split):
        if split and split not in ds:
            raise ValueError(f"{args.data} has no split {split!r} (it has {sorted(ds)})")
    label_feature = ds[args.train_split].features["labels"]
    names = list(getattr(label_feature, "names", None) or
                 [str(c) for c in sorted(set(ds[args.train_split]["labels"]))])
    id2label, label2id = dict(enumerate(names)), {n: i for i, n in enumerate(names)}
    if args.model:
        model = EventTransformerForSequenceClassification.from_pretrained(
            args.model, num_labels=len(names), id2label=id2label, label2id=label2id)
        check_compatible(model, tokenizer, args.model, tokenizer_path)
    else:
        model = EventTransformerForSequenceClassification(
            new_config(tokenizer, args, num_labels=len(names), id2label=id2label, label2id=label2id))
    columns = ["input_ids", "token_type_ids", "labels"]
    collator = EventPaddingCollator(model.config.token_id_ranges, max_length=args.max_length, keep=("labels",),
                                    kinematics_decoder=kinematics_decoder(tokenizer, model.config))
    greater = args.metric != "loss"
    targs = TrainingArguments(
        output_dir=str(out), max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        eval_strategy="steps", eval_steps=args.eval_steps, save_strategy="steps", save_steps=args.eval_steps,
        save_total_limit=args.save_total_limit, save_only_model=True, load_best_model_at_end=True,
        metric_for_best_model=args.metric, greater_is_better=greater, logging_steps=args.logging_steps,
        seed=args.seed, data_seed=args.seed,
        bf16=args.mixed_precision == "bf16", fp16=args.mixed_precision == "fp16", use_cpu=args.cpu,
        report_to=available_trackers(args.report_to) or "none", remove_unused_columns=False,
        label_names=["labels"], dataloader_num_workers=args.num_workers,
        dataloader_pin_memory=torch.cuda.is_available() and not args.cpu,
        disable_tqdm=not getattr(args, "progress", True))
    callbacks = [EarlyStoppingCallback(args.early_stopping_patience)] if args.early_stopping_patience else []
    trainer = Trainer(model=model, args=targs, train_dataset=ds[args.train_split].select_columns(columns),
                      eval_dataset=ds[args.eval_split].select_columns(columns), data_collator=collator,
                      processing_class=tokenizer, compute_metrics=compute_metrics,
                      callbacks=callbacks + [_json_arguments_callback()])
    if trainer.is_world_process_zero():
        claim_output(out, "finetune")
    trainer.train()
    for callback in callbacks:  # the evaluations below are no training evaluations
        trainer.remove_callback(callback)
    results = []
    best = trainer.evaluate()
    summary_metrics = {"validation": best}
    if args.test_split:
        test = trainer.evaluate(ds[args.test_split].select_columns(columns), metric_key_prefix="test")
        summary_metrics["test"] = test
        data_name = Path(args.data).name if Path(args.data).exists() else args.data
        results = [{"dataset_name": data_name, "dataset_type": data_name, "dataset_split": args.test_split,
                    "metric_name": name, "metric_value": test[f"test_{key}"]}
                   for key, name in (("roc_auc", "ROC AUC"), ("accuracy", "accuracy")) if f"test_{key}" in test]
    if trainer.is_world_process_zero():
        trainer.save_model(str(out))  # the best model (load_best_model_at_end) and the tokenizer
        add_remote_code(out)  # loads with trust_remote_code where treasure_hf is not installed
        json_training_arguments(out, targs)
        write_json(out / "training_summary.json", {
            "task": "event classification", "data": dataset_description(args.data, ds), "tokenizer": tokenizer_path,
            "classes": names, "metrics": summary_metrics, "eval_results": results, "base_model": args.model,
            "best_checkpoint": trainer.state.best_model_checkpoint, "steps": trainer.state.global_step,
            "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))},
            "procedure_text": (f"Fine-tuned with the transformers Trainer for up to {args.max_steps} steps of "
                               f"{args.batch_size} events (stopped at step {trainer.state.global_step}), AdamW lr "
                               f"{args.lr}, best of the evaluations every {args.eval_steps} steps by validation "
                               f"{args.metric}" + (f" from `{args.model}`." if args.model else " from scratch."))})
        (out / "README.md").write_text(str(model_card_for(out, str(out))))
        follow_umask(out)  # safetensors writes its files readable by their owner alone
    return out


def main(args: argparse.Namespace) -> int:
    finetune(args)
    return 0
