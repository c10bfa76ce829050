"""Training the per-type quantizers of an :class:`EventTokenizer` with Accelerate.

Objects are gathered from common-format files (HDF5 or PCDF, streamed in chunks, capped per
type), standardised by a :class:`FeatureScaler` fitted on them, and each type's quantizer is
trained on random minibatches (never larger than its training objects). Every ``eval_every``
steps the reconstruction loss on a held-out split is measured; training stops when it has not
improved by ``min_delta`` (relative) for ``patience`` evaluations and ``patience_fraction`` of
the steps taken, after a learning-rate cooldown
(linear to zero over ``cooldown`` of the steps taken; the weights of the best evaluation are
kept), or, for the ``identity`` encoder (k-means,
no optimizer), as soon as the held-out objects' codes no longer change (``kmeans_tolerance``).
``steps`` is a maximum. Checkpoints (model, optimizer, step, random state, stopping state) are
written as safetensors + JSON every ``checkpoint_every`` steps and when training stops, and picked
up again by ``resume=True``. Reconstruction loss, codebook utilisation, perplexity and why and
when each type stopped are logged and kept in ``training_log.json``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..data import schema
from ..data.atomic import atomic_output, remove, write_json
from ..data.io import open_events
from ..data.outputs import check_destination, output_directory, partial_dir
from .configuration_quantizer import ObjectQuantizerConfig
from .features import FeatureScaler, field_names, sub_object_values
from .modeling_quantizer import ObjectQuantizer
from .tokenization_event import EventTokenizer

logger = logging.getLogger(__name__)

PRODUCER = "train-tokenizer"

TOKENIZED_TYPES = ("electrons", "muons", "jets", "taus", "photons", "met")
"""Types tokenized by default (tracks only on request: many per event, long sequences). Sub-object
types (``constituents``, ``hits``) get a quantizer when listed next to their parent; without one,
their feature scaler is still fitted and saved whenever the data carry them and the parent is listed."""


@dataclass
class TokenizerTrainingArguments:
    """Hyperparameters of ``treasure train-tokenizer`` (one set for every type)."""

    method: str = "rvq"
    codebook_size: int = 1024
    num_stages: int = 3
    latent_dim: int = 12
    hidden_size: int = 128
    num_hidden_layers: int = 2
    encoder_type: str = "mlp"
    pt_loss_weight: float = 1.0
    types: tuple[str, ...] = TOKENIZED_TYPES
    steps: int = 2000
    """Most optimisation steps per type; training usually stops earlier (see ``patience``)."""
    batch_size: int = 2048
    """Objects (or events) per step, capped at the type's training objects."""
    learning_rate: float = 2e-3
    max_objects_per_type: int = 500_000
    eval_fraction: float = 0.1
    eval_every: int = 25
    """Steps between two held-out evaluations (at most ``EVAL_OBJECTS`` objects). The weights of
    the best one are those kept."""
    patience: int = 3
    """Evaluations without a ``min_delta`` improvement of the held-out loss before stopping; 0: run
    all ``steps``."""
    patience_fraction: float = 0.5
    """... and at least this fraction of the steps taken (0.5: the second half of the run brought no
    improvement): VQ training has long flat stretches
    before codebook reorganisations (15,900 synthetic jets, RVQ 2x32: flat from step 300 to 575,
    then 20% lower), which a fixed window mistakes for convergence."""
    min_delta: float = 0.01
    """Relative improvement of the best held-out reconstruction loss that counts (0.01: 1%)."""
    cooldown: float = 0.1
    """Length of the final linear learning-rate decay, as a fraction of the steps taken when the
    held-out loss stopped improving (of ``steps`` when it never did)."""
    kmeans_tolerance: float = 0.02
    """``identity`` encoder: stop when at most this fraction of held-out objects changed codes
    between two evaluations (the codebooks no longer move; EMA updates and dead-code restarts keep
    1-2% of the objects near a boundary flipping: 4,700 muons, RVQ 2x32)."""
    checkpoint_every: int = 500
    log_every: int = 100
    seed: int = 0
    max_objects: dict[str, int] = field(default_factory=lambda: dict(schema.SEQUENCE_CAPS))
    mixed_precision: str = "no"
    cpu_threads: int = 1
    """Intra-op threads while training on the CPU (0: torch's default, one per core). A step is
    small (a few thousand objects against the codebooks): on a shared 2-core machine two threads
    ran one 51-object RVQ 3x1024 step 80x and a 2,150-object step 4x slower than one thread."""
    fsq_levels: tuple[int, ...] | None = None
    """FSQ levels of each codebook (default: the FSQ paper's levels for ``codebook_size``)."""
    objects_per_code: float = 4.0
    """VQ, RVQ, PQ: a type with fewer than ``objects_per_code * codebook_size`` training objects gets
    the largest power-of-two codebook that gives each code this many (at least
    ``MIN_CODEBOOK_SIZE``), and the log says so. With as many codes as objects a stage memorises
    the training objects and leaves nothing for the next stages to learn (1,000 ``mix`` events,
    RVQ 3x1024: training loss 1e-4, held-out 0.08, electron pT 24%). 0: ``codebook_size`` for
    every type, whatever the data (a fixed vocabulary or bit budget)."""


@dataclass
class TypeData:
    """Training objects of one type: ``features`` (n, objects, columns) standardised, ``mask``
    (n, objects); objects is 1 for the per-object MLP encoder, the event's objects otherwise."""

    scaler: FeatureScaler
    features: torch.Tensor
    mask: torch.Tensor

    def split(self, eval_fraction: float, seed: int) -> tuple[TypeData, TypeData]:
        n = len(self.features)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_eval = max(1, int(n * eval_fraction)) if n > 1 else 0
        ev, tr = perm[:n_eval], perm[n_eval:]
        return (
            TypeData(self.scaler, self.features[tr], self.mask[tr]),
            TypeData(self.scaler, self.features[ev], self.mask[ev]),
        )


def collect_objects(
    paths: Sequence[str | os.PathLike],
    types: Sequence[str],
    *,
    per_event: bool,
    max_objects: dict[str, int],
    cap: int,
    step: int = 50_000,
    scalers: dict[str, FeatureScaler] | None = None,
    progress: bool = True,
) -> dict[str, TypeData]:
    """Gather up to ``cap`` objects (or events, with ``per_event``) of each type from the files.

    With ``scalers`` given (evaluation), they are used as they are; otherwise each is fitted."""
    names = {t: field_names(t) for t in types}
    sub = {t for t in types if schema.GROUPS[t].kind == "sub"}
    seen = set()
    raw: dict[str, dict[str, list[np.ndarray]]] = {t: {n: [] for n in names[t]} for t in types}
    masks: dict[str, list[np.ndarray]] = {t: [] for t in types}
    count = {t: 0 for t in types}
    for path in paths:
        source = open_events(path)
        try:
            bar = tqdm(total=source.n_events, desc=f"reading {Path(path).name}", unit="ev", disable=not progress)
            for batch in source.iter_batches(step):
                bar.update(batch.n_events)
                for t in types:
                    if count[t] >= cap:
                        continue
                    kind = schema.GROUPS[t].kind
                    if kind == "sub":
                        if schema.key("common", t, schema.MASK) not in batch:
                            continue
                        seen.add(t)
                        parent = schema.GROUPS[t].parent
                        values, mask = sub_object_values(
                            batch.arrays, t, max_objects.get(parent), max_objects.get(t, schema.GROUPS[t].max_objects)
                        )
                        for n in names[t]:
                            raw[t][n].append(values[n][: cap - count[t]])
                        count[t] += min(int(mask.sum()), cap - count[t])
                        continue
                    if kind == "event":
                        mask = np.ones((batch.n_events, 1), bool)
                    else:
                        mask = batch.mask(t)[:, : max_objects.get(t, batch.mask(t).shape[1])]
                    if per_event and kind != "event":
                        keep = mask.any(1)
                        mask = mask[keep][: cap - count[t]]
                        for n in names[t]:
                            layer, fname = n.split("/")
                            raw[t][n].append(batch[schema.key(layer, t, fname)][:, : mask.shape[1]][keep][: len(mask)])
                        masks[t].append(mask)
                        count[t] += len(mask)
                    else:
                        for n in names[t]:
                            layer, fname = n.split("/")
                            v = batch[schema.key(layer, t, fname)]
                            v = v[:, None] if kind == "event" else v[:, : mask.shape[1]]
                            raw[t][n].append(v[mask][: cap - count[t]])
                        count[t] += min(int(mask.sum()), cap - count[t])
            bar.close()
        finally:
            source.close()
    out = {}
    for t in types:
        if t in sub and t not in seen:
            logger.info("the data carry no %s", t)
            continue
        if per_event and schema.GROUPS[t].kind == "object":
            mask = np.concatenate(masks[t]) if masks[t] else np.zeros((0, 1), bool)
            values = {n: np.concatenate(v) if v else np.zeros((0, mask.shape[1])) for n, v in raw[t].items()}
            flat = {n: v[mask] for n, v in values.items()}
        else:
            flat = {n: np.concatenate(v) if v else np.zeros(0) for n, v in raw[t].items()}
            mask = np.ones((len(next(iter(flat.values()))), 1), bool)
        if len(mask) == 0 or not mask.any():
            logger.warning("no %s found in the training data: the tokenizer will not know them", t)
            continue
        scaler = scalers[t] if scalers else FeatureScaler(t, names[t]).fit(flat)
        x = scaler.transform(flat)
        feats = np.zeros((*mask.shape, x.shape[-1]), np.float32)
        feats[mask] = x
        out[t] = TypeData(scaler, torch.from_numpy(feats), torch.from_numpy(mask))
        logger.info("%s: %d objects for training", t, int(mask.sum()))
    return out


EVAL_OBJECTS = 16_384
"""Held-out objects (or events) used by the evaluations that decide when to stop."""


@torch.no_grad()
def heldout_evaluation(
    model: ObjectQuantizer, data: TypeData, batch: int = 16384
) -> tuple[dict[str, float], torch.Tensor]:
    """:func:`codebook_metrics` and the codes of the real objects, (n_real, num_stages) int64."""
    model.eval()
    cfg = model.config
    hist = torch.zeros(cfg.num_stages, cfg.codebook_size, dtype=torch.float64)
    device = model.device
    weights = torch.tensor(model.column_weights, dtype=torch.float64)
    se, wse, count = 0.0, 0.0, 0
    all_codes = []
    for i in range(0, len(data.features), batch):
        f, m = data.features[i : i + batch].to(device), data.mask[i : i + batch].to(device)
        codes = model.tokenize(f, m)
        err = ((model.decode_codes(codes).float() - f) ** 2)[m].double().cpu()  # (n_real, n_columns)
        se += float(err.sum())
        wse += float((err * weights).sum())
        count += int(m.sum())
        real = codes[m].cpu()
        all_codes.append(real)
        for s in range(cfg.num_stages):
            hist[s] += torch.bincount(real[:, s], minlength=cfg.codebook_size).double()
    p = hist / hist.sum(-1, keepdim=True).clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
    metrics = {
        "reconstruction_mse": se / max(count * data.features.shape[-1], 1),
        "reconstruction_loss": wse / max(count * float(weights.sum()), 1e-12),
        "utilisation": float((hist > 0).double().mean(-1).mean()),
        "perplexity": float(torch.exp(entropy).mean()),
    }
    codes = torch.cat(all_codes) if all_codes else torch.zeros((0, cfg.num_stages), dtype=torch.long)
    return metrics, codes


def codebook_metrics(model: ObjectQuantizer, data: TypeData, batch: int = 16384) -> dict[str, float]:
    """Reconstruction MSE (standardised units), the training objective's weighted reconstruction
    loss (``reconstruction_loss``: pT columns weighted by ``pt_loss_weight``), and per-stage
    utilisation (fraction of codes used) and perplexity (exp of the entropy of code usage),
    averaged over stages."""
    return heldout_evaluation(model, data, batch)[0]


@dataclass
class EarlyStopping:
    """When one type's training ends: the held-out loss's best value and the evaluations since,
    the learning-rate cooldown and the reason (``plateau``, ``kmeans_converged``, ``max_steps``).
    Kept in the checkpoints' ``state.json``."""

    steps: int
    eval_every: int
    patience: int
    min_delta: float
    cooldown: float
    kmeans_tolerance: float
    patience_fraction: float
    kmeans: bool
    best: float = math.inf
    best_step: int = 0
    bad_evaluations: int = 0
    decay_start: int | None = None
    stop_step: int | None = None
    reason: str | None = None
    code_change: float | None = None

    @classmethod
    def from_arguments(cls, args: TokenizerTrainingArguments, kmeans: bool) -> EarlyStopping:
        return cls(
            args.steps,
            max(1, args.eval_every),
            args.patience,
            args.min_delta,
            args.cooldown,
            args.kmeans_tolerance,
            args.patience_fraction,
            kmeans,
        )

    def state(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in asdict(self).items()
            if k
            not in (
                "steps",
                "eval_every",
                "patience",
                "min_delta",
                "cooldown",
                "kmeans_tolerance",
                "patience_fraction",
                "kmeans",
            )
        }

    def load(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    @property
    def final_decay_start(self) -> int:
        """First step of the cooldown when the loss keeps improving to the end."""
        return self.steps - math.ceil(self.cooldown * self.steps)

    def lr_factor(self, step: int) -> float:
        """Learning-rate factor of (0-based) ``step`` after warm-up: 1, then the linear cooldown."""
        start = self.decay_start if self.decay_start is not None else self.final_decay_start
        end = self.stop_step if self.stop_step is not None else self.steps
        if step < start or end <= start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / (end - start))

    def update(self, step: int, loss: float, code_change: float | None) -> None:
        """An evaluation after ``step`` steps: held-out ``loss``, and the fraction of held-out
        objects whose codes changed since the last evaluation (None for the first)."""
        self.code_change = code_change
        if loss < self.best * (1 - self.min_delta):
            self.best, self.best_step, self.bad_evaluations = loss, step, 0
        else:
            self.bad_evaluations += 1
        if self.reason is not None:
            return
        if self.kmeans and code_change is not None and code_change <= self.kmeans_tolerance:
            self.reason, self.stop_step = "kmeans_converged", step
        elif (
            self.patience
            and self.bad_evaluations >= self.patience
            and step - self.best_step >= self.patience_fraction * step
        ):
            if self.kmeans:  # no learning rate to cool down
                self.reason, self.stop_step = "plateau", step
            elif step < self.final_decay_start:  # later, the final cooldown is already under way
                self.reason, self.decay_start = "plateau", step
                self.stop_step = min(self.steps, step + max(self.eval_every, math.ceil(self.cooldown * step)))

    def summary(self, steps_taken: int) -> dict[str, Any]:
        """What ``training_log.json`` records of the stop (``best_step``: the weights kept)."""
        return {
            "reason": self.reason or "max_steps",
            "steps": steps_taken,
            "max_steps": self.steps,
            "best_eval_reconstruction_loss": self.best,
            "best_step": self.best_step,
            "cooldown_start": self.decay_start,
            "last_code_change": self.code_change,
        }


def _save_checkpoint(
    directory: Path,
    model: ObjectQuantizer,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    history: list[dict[str, Any]],
    generator: torch.Generator,
    stopping: EarlyStopping,
    last_codes: torch.Tensor | None,
    best_state: dict[str, torch.Tensor] | None,
) -> None:
    """Model, best-evaluation model and optimizer tensors in safetensors, the rest in JSON;
    written atomically."""
    from ..checkpoint import optimizer_state

    with atomic_output(directory) as tmp:
        tmp.mkdir(parents=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
        if best_state is not None:
            save_file(best_state, tmp / "best.safetensors")
        tensors, opt = optimizer_state(optimizer) if optimizer is not None else ({}, None)
        tensors["rng"] = torch.get_rng_state()
        tensors["batch_rng"] = generator.get_state()
        if last_codes is not None:
            tensors["eval_codes"] = last_codes.contiguous()
        save_file(tensors, tmp / "optimizer.safetensors")
        (tmp / "state.json").write_text(
            json.dumps(
                {"step": step, "optimizer": opt, "history": history, "stopping": stopping.state()}, default=float
            )
        )


def _load_checkpoint(
    directory: Path,
    model: ObjectQuantizer,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator,
    stopping: EarlyStopping,
) -> tuple[int, list[dict[str, Any]], torch.Tensor | None, dict[str, torch.Tensor] | None]:
    from ..checkpoint import load_optimizer_state

    model.load_state_dict(load_file(directory / "model.safetensors"))
    meta = json.loads((directory / "state.json").read_text())
    tensors = load_file(directory / "optimizer.safetensors")
    torch.set_rng_state(tensors.pop("rng"))
    generator.set_state(tensors.pop("batch_rng"))
    last_codes = tensors.pop("eval_codes", None)
    if optimizer is not None:
        load_optimizer_state(optimizer, tensors, meta["optimizer"])
    stopping.load(meta.get("stopping", {}))
    best = load_file(directory / "best.safetensors") if (directory / "best.safetensors").exists() else None
    return int(meta["step"]), meta["history"], last_codes, best


MIN_CODEBOOK_SIZE = 16
"""The smallest codebook ``objects_per_code`` shrinks a stage to."""


def fitted_codebook_size(args: TokenizerTrainingArguments, n_objects: int) -> int:
    """Codes per stage for a type with ``n_objects`` training objects (see ``objects_per_code``)."""
    if args.method == "fsq" or args.objects_per_code <= 0:
        return args.codebook_size
    fits = 1 << max(0, int(math.floor(math.log2(max(n_objects / args.objects_per_code, 1)))))
    return min(args.codebook_size, max(fits, MIN_CODEBOOK_SIZE))


def train_quantizer(
    object_type: str,
    train: TypeData,
    evaluation: TypeData,
    args: TokenizerTrainingArguments,
    accelerator: Accelerator,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> tuple[ObjectQuantizer, list[dict[str, Any]]]:
    """Train one type's quantizer until its held-out loss stops improving (or its k-means codes
    stop changing, or ``args.steps``); returns it (on CPU, in eval mode) and its logged history,
    whose last record holds ``stopping``: why and when it stopped (:meth:`EarlyStopping.summary`)."""
    torch.manual_seed(args.seed + schema.GROUPS[object_type].type_id)
    codebook_size = fitted_codebook_size(args, int(train.mask.sum()))
    if codebook_size != args.codebook_size:
        logger.info(
            "%s: %d training objects: a codebook of %d codes per stage instead of %d (objects_per_code %g)",
            object_type,
            int(train.mask.sum()),
            codebook_size,
            args.codebook_size,
            args.objects_per_code,
        )
    cfg = ObjectQuantizerConfig(
        object_type=object_type,
        fields=train.scaler.fields,
        feature_mean=train.scaler.mean,
        feature_std=train.scaler.std,
        method=args.method,
        codebook_size=codebook_size,
        num_stages=args.num_stages,
        latent_dim=args.latent_dim,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        pt_loss_weight=args.pt_loss_weight,
        fsq_levels=list(args.fsq_levels) if args.fsq_levels else None,
        encoder_type=args.encoder_type
        if schema.GROUPS[object_type].kind == "object" or args.encoder_type == "identity"
        else "mlp",
    )
    model = ObjectQuantizer(cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]  # none: identity encoder, EMA codebooks
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, weight_decay=0.0) if trainable else None
    stopping = EarlyStopping.from_arguments(args, kmeans=optimizer is None)
    start, history, last_codes, best_state = 0, [], None, None
    generator = torch.Generator().manual_seed(args.seed * 1000 + accelerator.process_index)
    latest = _latest_checkpoint(checkpoint_dir) if (checkpoint_dir and resume) else None
    if latest is not None:
        start, history, last_codes, best_state = _load_checkpoint(latest, model, optimizer, generator, stopping)
        logger.info("%s: resuming from %s at step %d", object_type, latest, start)
    else:  # k-means initialisation of the codebooks on a large first batch
        model.train()
        n_init = min(len(train.features), max(4 * codebook_size, 20_000))
        idx = torch.randperm(len(train.features))[:n_init]
        with torch.no_grad():
            model(train.features[idx], train.mask[idx])
    if start == 0 and checkpoint_dir is not None and checkpoint_dir.exists():
        logger.warning("%s: ignoring old checkpoints in %s (pass resume=True to continue)", object_type, checkpoint_dir)
    if optimizer is not None:
        model, optimizer = accelerator.prepare(model, optimizer)
    else:
        model = accelerator.prepare(model)
    device = accelerator.device
    warmup = max(1, min(100, args.steps // 10))
    batch_size = min(args.batch_size, len(train.features))
    monitor = TypeData(evaluation.scaler, evaluation.features[:EVAL_OBJECTS], evaluation.mask[:EVAL_OBJECTS])
    end = stopping.stop_step if stopping.stop_step is not None else args.steps
    bar = tqdm(
        total=args.steps,
        desc=f"train {object_type}",
        disable=not progress or not accelerator.is_local_main_process,
        initial=start,
    )
    unwrapped = accelerator.unwrap_model(model)
    step, began = start, time.perf_counter()
    while step < end:
        model.train()
        if batch_size == len(train.features):  # all of them: full-batch steps
            f, m = train.features, train.mask
        else:
            idx = torch.randint(0, len(train.features), (batch_size,), generator=generator)
            f, m = train.features[idx], train.mask[idx]
        with accelerator.autocast():
            out = model(f.to(device), m.to(device))  # EMA codebook updates
        if optimizer is not None:
            for group in optimizer.param_groups:
                group["lr"] = args.learning_rate * min(1.0, (step + 1) / warmup) * stopping.lr_factor(step)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(out.loss)
            optimizer.step()
        step += 1
        bar.update(1)
        record: dict[str, Any] = {}
        if step % args.log_every == 0 or step == args.steps:
            record = {
                "step": step,
                "loss": float(out.loss.detach()),
                "reconstruction_loss": float(out.reconstruction_loss),
            }
        if step % stopping.eval_every == 0 or step == end:
            metrics, codes = heldout_evaluation(unwrapped, monitor)
            change = (
                float((codes != last_codes).any(-1).double().mean())
                if last_codes is not None and len(codes) and codes.shape == last_codes.shape
                else None
            )
            last_codes = codes
            stopping.update(step, metrics["reconstruction_loss"], change)
            if stopping.best_step == step:
                best_state = {k: v.detach().cpu().clone().contiguous() for k, v in unwrapped.state_dict().items()}
            end = stopping.stop_step if stopping.stop_step is not None else args.steps
            record.update({"step": step, **{f"eval_{k}": v for k, v in metrics.items()}})
            if change is not None:
                record["eval_code_change"] = change
        if step == end:
            record.setdefault("step", step)
            record["stopping"] = stopping.summary(step) | {"seconds": round(time.perf_counter() - began, 2)}
            logger.info(
                "%s: stopped after %d of at most %d steps (%s): held-out reconstruction loss %.4g, best "
                "%.4g at step %d",
                object_type,
                step,
                args.steps,
                record["stopping"]["reason"],
                record.get("eval_reconstruction_loss", math.nan),
                stopping.best,
                stopping.best_step,
            )
        if record:
            history.append(record)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if isinstance(v, float)})
            logger.info("%s %s", object_type, record)
        if (
            checkpoint_dir
            and args.checkpoint_every
            and (step % args.checkpoint_every == 0 or step == end)
            and accelerator.is_main_process
        ):
            _save_checkpoint(
                checkpoint_dir / f"step-{step:07d}",
                unwrapped,
                optimizer,
                step,
                history,
                generator,
                stopping,
                last_codes,
                best_state,
            )
    bar.close()
    model = accelerator.unwrap_model(model).to("cpu").eval()
    if best_state is not None and stopping.best_step != step:
        model.load_state_dict(best_state)
        logger.info("%s: keeping the weights of step %d, the best held-out evaluation", object_type, stopping.best_step)
    return model, history


def _latest_checkpoint(directory: Path | None) -> Path | None:
    if directory is None or not directory.is_dir():
        return None
    done = sorted(p for p in directory.glob("step-*") if (p / "state.json").exists())
    return done[-1] if done else None


def _train_type(
    t: str,
    data: TypeData,
    args: TokenizerTrainingArguments,
    accelerator: Accelerator,
    work: Path,
    resume: bool,
    progress: bool,
) -> tuple[ObjectQuantizer, TypeData, TypeData, list[dict[str, Any]]]:
    """Split one type's objects and train its quantizer (checkpoints under ``work``)."""
    train, evaluation = data.split(args.eval_fraction, args.seed)
    model, history = train_quantizer(
        t,
        train,
        evaluation,
        args,
        accelerator,
        checkpoint_dir=work / "checkpoints" / t,
        resume=resume,
        progress=progress,
    )
    return model, train, evaluation, history


def train_tokenizer(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    args: TokenizerTrainingArguments | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> EventTokenizer:
    """Train a quantizer per type on the events in ``paths`` and save the tokenizer to ``out_dir``.

    Checkpoints are written to ``.OUT.partial/checkpoints/TYPE`` while training runs (``resume``
    continues from there, or from the ``checkpoints`` a finished ``out_dir`` keeps); the finished
    tokenizer, its ``training_log.json`` and the checkpoints are swapped in as ``out_dir`` whole.
    An existing ``out_dir`` is replaced only if ``train-tokenizer`` wrote it, or with ``overwrite``."""
    args = args or TokenizerTrainingArguments()
    out_dir = Path(out_dir)
    check_destination(out_dir, PRODUCER, inputs=paths, overwrite=overwrite)
    work = partial_dir(out_dir)
    if not resume and work.exists():
        logger.warning("removing %s, the checkpoints of an earlier run (pass resume=True to continue it)", work)
        remove(work)
    if resume and not work.exists() and (out_dir / "checkpoints").is_dir():
        shutil.copytree(out_dir / "checkpoints", work / "checkpoints")
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=not torch.cuda.is_available())
    for t in args.types:
        if schema.GROUPS[t].kind == "sub" and schema.GROUPS[t].parent not in args.types:
            raise ValueError(f"a {t} quantizer needs their parent {schema.GROUPS[t].parent} in the types too")
    scaled_only = tuple(
        t for t in schema.SUB_OBJECT_TYPES if t not in args.types and schema.GROUPS[t].parent in args.types
    )
    data = collect_objects(
        paths,
        (*args.types, *scaled_only),
        per_event=args.encoder_type == "transformer",
        max_objects=args.max_objects,
        cap=args.max_objects_per_type,
        progress=progress,
    )
    sub_scalers = {t: data.pop(t).scaler for t in scaled_only if t in data}
    quantizers, log = {}, {"arguments": asdict(args), "types": {}}
    threads = torch.get_num_threads()
    if accelerator.device.type == "cpu" and args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    try:
        trained = {t: _train_type(t, d, args, accelerator, work, resume, progress) for t, d in data.items()}
    finally:
        torch.set_num_threads(threads)
    for t, (model, train, evaluation, history) in trained.items():
        quantizers[t] = model
        log["types"][t] = {
            "history": history,
            "final": codebook_metrics(model, evaluation),
            "stopping": next((h["stopping"] for h in reversed(history) if "stopping" in h), None),
            "n_train": int(train.mask.sum()),
            "n_eval": int(evaluation.mask.sum()),
        }
    ignored = [g for g in schema.OBJECT_TYPES if g not in args.types]  # left out by choice, not by lack of data
    tokenizer = EventTokenizer.from_quantizers(
        quantizers, args.max_objects, ignored_types=ignored, sub_scalers=sub_scalers
    )
    if accelerator.is_main_process:
        with output_directory(out_dir, PRODUCER, inputs=paths, overwrite=overwrite) as tmp:
            tokenizer.save_pretrained(tmp)
            write_json(tmp / "training_log.json", log, sort_keys=False, default=float)
            if (work / "checkpoints").is_dir():
                os.replace(work / "checkpoints", tmp / "checkpoints")
        remove(work)
    return tokenizer
