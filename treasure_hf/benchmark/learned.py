"""Training the benchmark's transformers: a plain, seeded AdamW loop for the classifiers (early
stopping on the validation AUC, the best epoch's weights kept), masked-object pretraining of the
foundation model, and batched prediction. Inputs are dicts of tensors whose first axis is the event
(what ``EventTokenizer(..., return_tensors="pt")`` returns)."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Callable, Collection, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics

logger = logging.getLogger(__name__)

Inputs = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ModelArguments:
    """Sizes of the transformers and of their training (one set for every learned row)."""

    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 128
    dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    patience: int = 5
    finetune_learning_rate: float = 1e-4  # quick run, 1,000 labels: 1e-3 0.740, 3e-4 0.786, 1e-4 0.798 (scratch 0.791)
    pretrain_steps: int = 600
    pretrain_batch_size: int = 256
    pretrain_learning_rate: float = 1e-3
    mask_rate: float = 0.3
    pair_features: str = "kinematic"
    kinematic_combinations: int = 8
    pair_readout: bool = False

    def config_kwargs(self) -> dict:
        return {"hidden_size": self.hidden_size, "num_hidden_layers": self.num_hidden_layers,
                "num_attention_heads": self.num_attention_heads, "intermediate_size": self.intermediate_size,
                "hidden_dropout_prob": self.dropout, "attention_probs_dropout_prob": self.dropout,
                "pair_features": self.pair_features, "kinematic_combinations": self.kinematic_combinations,
                "pair_readout": self.pair_readout}


def device() -> torch.device:
    """The GPU when one is visible, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _to(batch: Mapping[str, torch.Tensor], dev: torch.device) -> dict[str, torch.Tensor]:
    """Move a minibatch to ``dev``, cut to its longest real sequence (padding is on the right,
    so every tensor with the sequence axis loses only padding)."""
    if "attention_mask" in batch:
        full = batch["attention_mask"].shape[1]
        length = max(1, int(batch["attention_mask"].sum(1).max()))
        batch = {k: v[:, :length] if v.dim() >= 2 and v.shape[1] == full else v for k, v in batch.items()}
    return {k: v.to(dev, non_blocking=True) for k, v in batch.items()}


def take(inputs: Inputs, index: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
    """The events at ``index`` of every tensor."""
    idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
    return {k: v[idx] for k, v in inputs.items()}


def _n(inputs: Inputs) -> int:
    return len(next(iter(inputs.values())))


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: Inputs, batch_size: int = 1024) -> np.ndarray:
    """Classifier score (the single logit) of each event, (n,) float64."""
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for lo in range(0, _n(inputs), batch_size):
        batch = _to({k: v[lo:lo + batch_size] for k, v in inputs.items()}, dev)
        out.append(model(**batch).logits[:, 0].double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return f


def train_classifier(model: torch.nn.Module, train: Inputs, y_train: np.ndarray, val: Inputs, y_val: np.ndarray,
                     args: ModelArguments, seed: int, *, learning_rate: float | None = None,
                     pretrained: Collection[str] = (), desc: str = "train",
                     progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Train a one-logit classifier (BCE) with AdamW and a warmup + cosine schedule; after every
    epoch the validation AUC is measured and the best epoch's weights are restored at the end;
    training stops after ``patience`` epochs without improvement.

    Fine-tuning: the parameters named in ``pretrained`` (those loaded from the pretrained encoder)
    train at ``learning_rate``, the others (the new pooler and classifier) at
    ``args.learning_rate``, as in a freshly initialised model."""
    gen = torch.Generator().manual_seed(seed)
    dev = device()
    model.to(dev)
    lr = learning_rate or args.learning_rate
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if n in pretrained], "lr": lr},
              {"params": [p for n, p in named if n not in pretrained], "lr": lr if not pretrained else args.learning_rate}]
    opt = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    n = _n(train)
    steps_per_epoch = max(1, math.ceil(n / args.batch_size))
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, max(1, steps_per_epoch // 2)))
    labels = torch.as_tensor(y_train, dtype=torch.float32)
    best, best_state, history, stale = -1.0, None, [], 0
    bar = tqdm(total=args.epochs, desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        losses = []
        for lo in range(0, n, args.batch_size):
            idx = perm[lo:lo + args.batch_size]
            batch = _to({k: v[idx] for k, v in train.items()}, dev)
            losses.append(_optimise(model, opt, sched, model(**batch, labels=labels[idx].to(dev)).loss))
        auc = metrics.roc_auc(y_val, predict(model, val))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_auc": auc})
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_auc=f"{auc:.4f}")
        if auc > best:
            best, best_state, stale = auc, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= args.patience:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, {"history": history, "best_val_auc": best, "epochs": len(history)}


def pretrain_masked(model: torch.nn.Module, inputs: Inputs, args: ModelArguments, seed: int, *,
                    token_id_ranges: Mapping[str, list[int]] | None = None,
                    kinematics_fn: Callable[[torch.Tensor], np.ndarray] | None = None, desc: str = "pretrain",
                    progress: bool = True) -> dict:
    """Masked-object pretraining (:func:`treasure_hf.modeling.mask_objects`: a fraction
    ``mask_rate`` of each event's objects, every stage token of an object at once, 80% [MASK], 10%
    random ids of the token's own type and stage, 10% kept) for ``pretrain_steps`` minibatches.
    ``inputs`` need ``input_ids``, ``token_type_ids``, ``attention_mask``, ``object_index``.
    ``kinematics_fn`` (masked ``input_ids`` -> (B, L, 6) ``kinematics``, e.g. the tokenizer's
    ``decode_kinematics``) gives the model the kinematics of what it sees; the model hides those
    of [MASK]ed and randomly replaced objects alike (``masked_positions``)."""
    from ..modeling import mask_objects

    gen = torch.Generator().manual_seed(seed)
    dev = device()
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.pretrain_learning_rate, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(args.pretrain_steps, max(1, args.pretrain_steps // 20)))
    n = _n(inputs)
    losses = []
    model.train()
    for step in tqdm(range(args.pretrain_steps), desc=desc, unit="step", disable=not progress, leave=False):
        idx = torch.randint(0, n, (min(args.pretrain_batch_size, n),), generator=gen)
        batch = {k: v[idx] for k, v in inputs.items()}  # masked on the CPU (seeded), then moved
        masked = mask_objects(batch["input_ids"], batch["object_index"], args.mask_rate,
                              token_type_ids=batch["token_type_ids"], token_id_ranges=token_id_ranges, generator=gen)
        batch = {**batch, "input_ids": masked["input_ids"], "labels": masked["labels"],
                 "masked_positions": masked["hidden_positions"]}
        if kinematics_fn is not None:
            batch["kinematics"] = torch.as_tensor(kinematics_fn(masked["input_ids"]), dtype=torch.float32)
        batch = _to(batch, dev)
        losses.append(_optimise(model, opt, sched, model(**batch, only_labelled_logits=True).loss))
    k = max(1, len(losses) // 10)
    return {"steps": len(losses), "loss_first": float(np.mean(losses[:k])) if losses else None,
            "loss_last": float(np.mean(losses[-k:])) if losses else None}


def _optimise(model: torch.nn.Module, opt: torch.optim.Optimizer, sched, loss: torch.Tensor) -> float:
    """One optimiser step on ``loss`` (gradients clipped at norm 1); returns the loss value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return loss.item()
