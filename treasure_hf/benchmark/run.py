"""``treasure benchmark hzz4l``: samples -> four-lepton selection -> every row, over ``seeds``
trainings -> paired comparisons -> report.

**Protocol.** The development samples (``seed``) give the training and validation events; the
test samples are generated apart (``test_seed``, ``test_seed + 1``) and read for the test scores
alone. Every choice is made on the validation events: each method's tokenizer encoder, which
tokenizer feeds the hierarchical and foundation rows, the fine-tuning rate of the pretrained
encoder, early stopping. Each seed s trains everything a row has (the tokenizer, the model
initialisation, the batch order) with seed s; the comparisons are paired bootstrap intervals over
seeds and test events (:func:`treasure_hf.metrics.paired_bootstrap`).

**Rows.** ``bdt`` (engineered observables, continuous); ``flat`` and ``per_type`` (the original
kinematics and features: continuous); per tokenization method and bit budget, ``METHODBITS_ids``
(token ids alone) and ``METHODBITS_decoded`` (ids plus the kinematics decoded from them);
``hierarchical`` (ids plus decoded kinematics and features); ``foundation`` (pretrained against
scratch at each label count, ids plus decoded kinematics). Every learned row is trained by the
shipped :func:`~treasure_hf.training.finetune.finetune` and
:func:`~treasure_hf.training.pretrain.pretrain` (:mod:`.rows`). A rerun with the same ``--out``
skips every (row, seed) already done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import metrics
from ..data.atomic import write_json
from ..data.events import EventBatch
from ..errors import InputError
from . import samples as sample_mod
from .bdt import bdt_scores, train_bdt
from .config import BIT_BUDGETS, ENCODER_CHOICE_BITS, ENCODERS, BenchmarkArguments, Budget, budget
from .observables import FEATURES, feature_matrix, four_lepton_observables, peak_width
from .rows import (
    SeedResult,
    cached,
    finetune_pretrained,
    finetune_row,
    pretrain_encoder,
    shape_for,
    splits,
    train_budget_tokenizer,
)
from .selection import FourLeptons, chosen_p4, select_4l

logger = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("bdt", "continuous", "tokens", "hierarchical", "foundation")
"""Groups of rows ``--rows`` takes."""
TOKEN_TYPES: tuple[str, ...] = ("electrons", "muons", "jets", "met")
"""Object types in the sequences (taus, photons and tracks are left out: none is selected on)."""
PRODUCER = "benchmark"


@dataclass
class Split:
    """Selected events with their labels and the four leptons the selection chose."""

    events: EventBatch
    labels: np.ndarray
    chosen: FourLeptons
    features: np.ndarray
    """(n, len(FEATURES)) engineered observables of the BDT."""

    def take(self, index: np.ndarray) -> Split:
        c = self.chosen
        return Split(
            self.events.select(index),
            self.labels[index],
            FourLeptons(np.ones(len(index), bool), c.flavour[index], c.slot[index], c.channel[index]),
            self.features[index],
        )


@dataclass
class Prepared:
    train: Split
    validation: Split
    test: Split
    unlabelled: list[Path]
    samples: dict
    cutflow: dict


@dataclass
class Row:
    """One row of the table: what it reads, and its seeds."""

    key: str
    name: str
    method: str
    inputs: str
    bits_per_object: float | None = None
    seeds: list[SeedResult] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def val_auc(self) -> float:
        return float(np.mean([s.val_auc for s in self.seeds]))


# --- samples, selection, split --------------------------------------------------------------------
def _selected(paths: Sequence[Path], args: BenchmarkArguments, progress: bool) -> tuple[Split, dict]:
    events, y, cutflow = sample_mod.read_selected(paths, lambda b: select_4l(b, args.cuts), progress=progress)
    chosen = select_4l(events, args.cuts)
    assert chosen.passed.all()
    everything = FourLeptons(np.ones(len(y), bool), chosen.flavour, chosen.slot, chosen.channel, chosen.cutflow)
    obs = four_lepton_observables(chosen_p4(events, everything))
    return Split(events, y, everything, feature_matrix(obs)), cutflow


def prepare(args: BenchmarkArguments, work: Path, progress: bool) -> Prepared:
    """Generate (or reuse, by their settings and seeds) the development and test samples, select,
    and split the development events into training and validation."""
    t0 = time.perf_counter()
    dev = sample_mod.sample_requests(
        args.events, args.background_events, args.unlabelled_events if "foundation" in args.rows else 0, args.seed
    )
    test = sample_mod.test_requests(args.test_events, 4 * args.test_events, args.test_seed)
    paths = sample_mod.generate_samples(
        [*dev, *test], work / "samples", detector=args.detector, workers=args.workers, progress=progress
    )
    development, dev_cutflow = _selected([paths[sample_mod.SIGNAL], paths[sample_mod.BACKGROUND]], args, progress)
    tested, test_cutflow = _selected([paths[r.name] for r in test], args, progress)
    for what, split in (("development", development), ("test", tested)):
        if split.labels.sum() < 10 or (1 - split.labels).sum() < 10:
            raise InputError(
                None,
                "events",
                f"only {int(split.labels.sum())} signal and "
                f"{int((1 - split.labels).sum())} background {what} events pass the "
                "selection: generate more (--events)",
            )
    perm = np.random.default_rng(args.seed).permutation(len(development.labels))
    n_val = int(args.validation_fraction * len(perm))
    return Prepared(
        development.take(np.sort(perm[n_val:])),
        development.take(np.sort(perm[:n_val])),
        tested,
        [paths[sample_mod.UNLABELLED]] if sample_mod.UNLABELLED in paths else [],
        {
            "requests": [r.describe() for r in (*dev, *test)],
            "detector": args.detector,
            "generation_seconds": round(time.perf_counter() - t0, 1),
        },
        {"development": dev_cutflow, "test": test_cutflow},
    )


# --- tokenizers -------------------------------------------------------------------------------------
def m4l_from_tokens(tokenizer: Any, split: Split) -> np.ndarray:
    """m4l [GeV] of the split's signal events recomputed from their decoded tokens, with the four
    leptons the selection chose on the original events."""
    sig = np.nonzero(split.labels == 1)[0]
    part = split.take(sig)
    ids = tokenizer(part.events, padding="longest")["input_ids"]
    return four_lepton_observables(chosen_p4(tokenizer.decode_events(np.asarray(ids)), part.chosen))["m4l"]


class Tokenizers:
    """Every tokenizer of a run: one per (budget, encoder, seed), trained on the events of the
    training split (without their labels), kept under ``WORK/tokenizers``. The same events
    whichever rows a run (or a piece of it) asks for: the unlabelled sample, generated only for
    the foundation rows, feeds their pretraining alone."""

    def __init__(self, p: Prepared, args: BenchmarkArguments, work: Path, progress: bool):
        self.p, self.args, self.work, self.progress = p, args, work, progress
        self.train_file = work / "tokenizer_data" / "train_split.h5"
        if not self.train_file.exists():
            from ..data.h5 import write_h5

            write_h5(self.train_file, p.train.events, producer=PRODUCER)
        self.encoders: dict[str, str] = {}
        self.choices: dict[str, dict[str, float]] = {}

    def get(self, b: Budget, seed: int, encoder: str | None = None) -> Any:
        encoder = encoder or self.encoder(b.method)
        out = self.work / "tokenizers" / f"{b.key}-{encoder}" / f"seed-{seed}"
        return train_budget_tokenizer(b, encoder, seed, [self.train_file], out, self.args, TOKEN_TYPES, self.progress)

    def encoder(self, method: str) -> str:
        """The method's encoder, chosen on the validation events: the candidate whose decoded m4l
        width of the validation signal is closest to the original's (seed 0, at the method's largest
        budget of :data:`BIT_BUDGETS` up to :data:`ENCODER_CHOICE_BITS` bits, whatever ``--bits``
        this piece of the run was given)."""
        if method in self.encoders:
            return self.encoders[method]
        candidates = ENCODERS[method]
        if len(candidates) == 1:
            self.encoders[method] = candidates[0]
            return candidates[0]
        b = self.choice_budget(method)
        bits = b.bits
        original = peak_width(four_lepton_observables(chosen_p4(*self._signal(self.p.validation)))["m4l"])["sigma_core"]
        widths = {
            e: peak_width(m4l_from_tokens(self.get(b, 0, e), self.p.validation))["sigma_core"] for e in candidates
        }
        best = min(candidates, key=lambda e: abs(widths[e] / original - 1))
        self.encoders[method] = best
        self.choices[method] = {
            "bits": bits,
            "validation_m4l_sigma_original": original,
            "validation_m4l_sigma": widths,
            "chosen": best,
        }
        logger.info("%s: encoder %s chosen on the validation events (%s)", method, best, widths)
        return best

    def choice_budget(self, method: str) -> Budget:
        """The budget the method's encoder is chosen at: its largest of :data:`BIT_BUDGETS` up to
        :data:`ENCODER_CHOICE_BITS` bits that fits ``max_codebook`` (not ``--bits``: pieces of a run
        choose once)."""
        cap = self.args.max_codebook
        runs = [b for b in BIT_BUDGETS if budget(method, b, cap) is not None]
        if not runs:
            raise InputError(None, "max_codebook", f"no budget of {method} fits a codebook of {cap} codes")
        return budget(method, max((b for b in runs if b <= ENCODER_CHOICE_BITS), default=min(runs)), cap)

    @staticmethod
    def _signal(split: Split) -> tuple[EventBatch, FourLeptons]:
        part = split.take(np.nonzero(split.labels == 1)[0])
        return part.events, part.chosen


# --- rows -------------------------------------------------------------------------------------------
def _seeds(
    row: Row,
    args: BenchmarkArguments,
    rows_dir: Path,
    train: Callable[[int], SeedResult],
    on: Budget | None = None,
    seeds: Sequence[int] | None = None,
) -> Row:
    """Train (or read back) every seed of ``row`` (or those of ``seeds``); a row ``on`` a tokenizer
    the validation events chose is kept under that budget's key too, so that a later choice is
    never read from another's."""
    for s in _seed_list(args, seeds):
        row.seeds.append(cached(_row_dir(rows_dir, row, on) / f"seed-{s}", lambda s=s: train(s)))
        logger.info("%s seed %d: validation AUC %.4f", row.key, s, row.seeds[-1].val_auc)
    return row


def _seed_list(args: BenchmarkArguments, seeds: Sequence[int] | None) -> Sequence[int]:
    return range(args.seeds) if seeds is None else seeds


def _row_dir(rows_dir: Path, row: Row, on: Budget | None = None) -> Path:
    return rows_dir / row.key / on.key if on is not None else rows_dir / row.key


def observables_read(split: Split, tokenizer: Any = None) -> np.ndarray:
    """(n, len(FEATURES)) engineered observables of the selected quadruplet, computed from the
    original kinematics, or with ``tokenizer`` from the kinematics decoded from its token ids
    (the leptons the selection chose on the event)."""
    if tokenizer is None:
        return split.features
    ids = np.asarray(tokenizer(split.events, padding="longest")["input_ids"])
    return feature_matrix(four_lepton_observables(chosen_p4(tokenizer.decode_events(ids), split.chosen)))


def _parts(p: Prepared, args: BenchmarkArguments, tokenizer: Any = None) -> dict[str, tuple]:
    """``{split: (events, labels[, observables])}``: the observables (original, or decoded with
    ``tokenizer``) when the run's rows read them."""
    return {
        name: (s.events, s.labels, *((observables_read(s, tokenizer),) if args.event_observables else ()))
        for name, s in (("train", p.train), ("validation", p.validation), ("test", p.test))
    }


def _shape(args: BenchmarkArguments, inputs: str, **kwargs: Any):
    """The model of a row reading ``inputs`` (:func:`~.rows.shape_for`), with the observables
    when the run's rows read them (never for ids alone)."""
    return shape_for(args.model, inputs, event_features=len(FEATURES) if args.event_observables else 0, **kwargs)


def bdt_row(p: Prepared, args: BenchmarkArguments, rows_dir: Path) -> Row:
    def train(s: int) -> SeedResult:
        clf = train_bdt(p.train.features, p.train.labels, p.validation.features, p.validation.labels, seed=s)
        val = metrics.roc_auc(p.validation.labels, bdt_scores(clf, p.validation.features))
        return SeedResult(bdt_scores(clf, p.test.features), val, {"iterations": int(clf.n_iter_)})

    return _seeds(
        Row("bdt", "BDT on engineered observables (m4l, mZ1, mZ2, pT4l, y4l, 5 angles)", "bdt", "continuous"),
        args,
        rows_dir,
        train,
    )


def continuous_rows(
    p: Prepared,
    tok: Tokenizers,
    first: Budget,
    args: BenchmarkArguments,
    rows_dir: Path,
    progress: bool,
    seeds: Sequence[int] | None = None,
) -> list[Row]:
    """``flat`` and ``per_type``: transformers of the original kinematics and features (the
    tokenizer of ``first`` only lays out the sequence; nothing of its codes is read)."""
    rows = []
    for key, mode, name in (
        ("flat", "flat", "flat continuous (one projection of the kinematics + one-hot type)"),
        ("per_type", "per_type", "per-type continuous projection of the features"),
    ):

        def train(s: int, mode: str = mode) -> SeedResult:
            tokenizer = tok.get(first, s)
            data = splits(tokenizer, _parts(p, args), continuous=True)
            return finetune_row(
                data,
                tokenizer,
                _shape(args, "continuous", input_mode=mode),
                args.model,
                s,
                rows_dir / "work",
                progress=progress,
                event_feature_names=FEATURES,
            )

        rows.append(_seeds(Row(key, name, "continuous", "continuous"), args, rows_dir, train, seeds=seeds))
    return rows


def token_rows(
    p: Prepared,
    tok: Tokenizers,
    b: Budget,
    args: BenchmarkArguments,
    rows_dir: Path,
    progress: bool,
    seeds: Sequence[int] | None = None,
) -> tuple[list[Row], dict]:
    """Both token families of budget ``b`` (and the decoded m4l width of the test signal, per seed)."""
    widths, val_widths = [], []
    rows = {
        inputs: Row(
            f"{b.key}_{'ids' if inputs == 'ids' else 'decoded'}",
            f"{b.method.upper()} {b.bits} bits, {inputs}",
            b.method,
            inputs,
            b.bits_per_object,
        )
        for inputs in ("ids", "ids+decoded")
    }
    for s in _seed_list(args, seeds):
        tokenizer = tok.get(b, s)
        widths.append(peak_width(m4l_from_tokens(tokenizer, p.test))["sigma_core"])
        val_widths.append(peak_width(m4l_from_tokens(tokenizer, p.validation))["sigma_core"])
        data = None
        for inputs, row in rows.items():

            def train(s: int = s, inputs: str = inputs) -> SeedResult:
                nonlocal data
                data = data if data is not None else splits(tokenizer, _parts(p, args, tokenizer))
                return finetune_row(
                    data,
                    tokenizer,
                    _shape(args, inputs),
                    args.model,
                    s,
                    rows_dir / "work",
                    progress=progress,
                    event_feature_names=FEATURES,
                )

            row.seeds.append(cached(rows_dir / row.key / f"seed-{s}", train))
    return list(rows.values()), {
        "key": b.key,
        "method": b.method,
        "bits_per_object": b.bits_per_object,
        "encoder": tok.encoder(b.method),
        "m4l_sigma_core_per_seed": widths,
        "validation_m4l_sigma_core_per_seed": val_widths,
    }


def hierarchical_row(
    p: Prepared,
    tok: Tokenizers,
    b: Budget,
    args: BenchmarkArguments,
    rows_dir: Path,
    progress: bool,
    seeds: Sequence[int] | None = None,
) -> Row:
    def train(s: int) -> SeedResult:
        tokenizer = tok.get(b, s)
        return finetune_row(
            splits(tokenizer, _parts(p, args, tokenizer)),
            tokenizer,
            _shape(args, "ids+decoded", variant="hierarchical"),
            args.model,
            s,
            rows_dir / "work",
            progress=progress,
            event_feature_names=FEATURES,
        )

    return _seeds(
        Row(
            "hierarchical",
            f"hierarchical feature groups on {b.method.upper()} {b.bits} bits, ids+decoded",
            b.method,
            "ids+decoded",
            b.bits_per_object,
        ),
        args,
        rows_dir,
        train,
        on=b,
        seeds=seeds,
    )


def foundation_rows(
    p: Prepared,
    tok: Tokenizers,
    b: Budget,
    args: BenchmarkArguments,
    rows_dir: Path,
    work: Path,
    progress: bool,
    seeds: Sequence[int] | None = None,
) -> tuple[list[Row], dict]:
    """Pretraining on the unlabelled sample, then at each label count the pretrained encoder
    fine-tuned (at the rate the validation events pick among ``finetune_lrs``) against the same
    architecture from scratch. The validation events of a label count are capped at a third of
    it (at least 100): a user with few labels has few validation events too."""
    from ..data.io import read_events

    if not p.unlabelled:
        raise InputError(None, "unlabelled", "the foundation rows need the unlabelled sample (mix)")
    shape = _shape(args, "ids+decoded")
    pretrain_shape = replace(shape, event_features=0)  # the unlabelled events get no observables
    unlabelled = EventBatch.concat([read_events(u) for u in p.unlabelled])
    pretrained, rows, chosen_lrs = {}, [], {}
    rng = np.random.default_rng(args.seed + 17)
    train_perm, val_perm = rng.permutation(len(p.train.labels)), rng.permutation(len(p.validation.labels))
    for n in args.labels:
        if n > len(train_perm):
            logger.warning("skipping %d labels: only %d training events", n, len(train_perm))
            continue
        tr, va = np.sort(train_perm[:n]), np.sort(val_perm[: max(100, n // 3)])
        fewer = Prepared(p.train.take(tr), p.validation.take(va), p.test, p.unlabelled, p.samples, p.cutflow)
        for mode in ("fine-tuned", "scratch"):
            row = Row(
                f"foundation_{'ft' if mode == 'fine-tuned' else 'scratch'}_{n}",
                f"{'foundation fine-tuned' if mode == 'fine-tuned' else 'scratch'} ({b.method.upper()} {b.bits} "
                f"bits), {n} labels",
                b.method,
                "ids+decoded",
                b.bits_per_object,
                extra={"labels": n, "mode": mode, "validation_events": int(len(va))},
            )
            for s in _seed_list(args, seeds):

                def train(s: int = s, mode: str = mode) -> SeedResult:
                    tokenizer = tok.get(b, s)
                    data = splits(tokenizer, _parts(fewer, args, tokenizer))
                    if mode == "scratch":
                        return finetune_row(
                            data,
                            tokenizer,
                            shape,
                            args.model,
                            s,
                            rows_dir / "work",
                            progress=progress,
                            event_feature_names=FEATURES,
                        )
                    if s not in pretrained:
                        mix = splits(tokenizer, {"train": (unlabelled, np.zeros(unlabelled.n_events, np.int64))})
                        pretrained[s] = pretrain_encoder(
                            mix,
                            tokenizer,
                            pretrain_shape,
                            args.model,
                            s,
                            work / "pretrained" / b.key / f"seed-{s}",
                            progress,
                        )
                    return finetune_pretrained(
                        data,
                        tokenizer,
                        shape,
                        args.model,
                        s,
                        rows_dir / "work",
                        str(pretrained[s]),
                        progress,
                        event_feature_names=FEATURES,
                    )

                row.seeds.append(cached(_row_dir(rows_dir, row, b) / f"seed-{s}", train))
            if mode == "fine-tuned":
                chosen_lrs[n] = [s.info.get("encoder_lr") for s in row.seeds]
            rows.append(row)
    return rows, {
        "budget": b.key,
        "unlabelled_events": int(unlabelled.n_events),
        "pretrain_steps": args.model.pretrain_steps,
        "encoder_lr_chosen_on_validation": chosen_lrs,
    }


# --- rows on several processes ----------------------------------------------------------------------
@dataclass(frozen=True)
class RowJob:
    """One piece of a run that a worker process trains into the run's caches (``OUT/rows``,
    ``OUT/work/tokenizers``, ``OUT/work/pretrained``), from which the main process reads every row
    back: ``kind`` ``encoder`` (``key`` METHOD:ENCODER, the seed-0 tokenizer the encoder choice
    reads), ``tokens`` (``key`` a budget: its tokenizer and both token families), ``continuous``,
    ``hierarchical`` or ``foundation`` (``key`` the budget they read), for one ``seed``."""

    args: BenchmarkArguments
    out: str
    kind: str
    key: str
    seed: int = 0


_PREPARED: dict[str, tuple[Prepared, Tokenizers]] = {}
"""A worker process's samples and tokenizers, prepared once per run (``OUT``)."""


def budget_of(key: str, args: BenchmarkArguments) -> Budget:
    """The budget of a key such as ``rvq32``."""
    method = key.rstrip("0123456789")
    b = budget(method, int(key[len(method) :]), args.max_codebook)
    if b is None:
        raise InputError(None, "bits", f"{key} needs a codebook above max_codebook={args.max_codebook}")
    return b


def run_row_job(job: RowJob) -> str:
    """Train one :class:`RowJob` (a rerun finds it done and returns at once)."""
    args, out = job.args, Path(job.out)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if job.out not in _PREPARED:
        p = prepare(args, out / "work", False)
        _PREPARED[job.out] = (p, Tokenizers(p, args, out / "work", False))
    p, tok = _PREPARED[job.out]
    rows_dir, seeds = out / "rows", [job.seed]
    if job.kind == "encoder":
        method, encoder = job.key.split(":")
        tok.get(tok.choice_budget(method), 0, encoder)
    elif job.kind == "tokens":
        token_rows(p, tok, budget_of(job.key, args), args, rows_dir, False, seeds)
    elif job.kind == "continuous":
        continuous_rows(p, tok, budget_of(job.key, args), args, rows_dir, False, seeds)
    elif job.kind == "hierarchical":
        hierarchical_row(p, tok, budget_of(job.key, args), args, rows_dir, False, seeds)
    elif job.kind == "foundation":
        foundation_rows(p, tok, budget_of(job.key, args), args, rows_dir, out / "work", False, seeds)
    else:
        raise ValueError(f"unknown row job {job.kind!r}")
    return f"{job.kind} {job.key} seed {job.seed}"


class RowWorkers:
    """With ``args.workers`` > 1, a Dask LocalCluster of that many processes (one torch thread
    each, ``args.threads``) that trains the run's rows side by side, phase by phase (each phase's
    jobs need the last one's caches); with 1, nothing: the rows train in the main process."""

    def __init__(self, args: BenchmarkArguments, out: Path, progress: bool):
        self.args, self.out, self.progress = args, out, progress
        self._stack = contextlib.ExitStack()
        self.address = None
        if args.workers > 1:
            from ..parallel import dask_client

            self.address = self._stack.enter_context(dask_client(args.workers, None)).scheduler.address

    def run(self, kind: str, keys: Sequence[str], seeds: Sequence[int] = (0,)) -> None:
        if self.address is None or not keys:
            return
        from ..parallel import map_tasks

        jobs = [RowJob(self.args, str(self.out), kind, k, s) for k in keys for s in seeds]
        map_tasks(run_row_job, jobs, scheduler=self.address, progress=self.progress, desc=f"{kind} rows")

    def close(self) -> None:
        self._stack.close()


# --- the whole benchmark ------------------------------------------------------------------------
def run_benchmark(
    args: BenchmarkArguments, out: str | os.PathLike, progress: bool = True, overwrite: bool = False
) -> dict:
    """Run every requested row (skipping those a previous run of the same ``out`` finished) and
    write the report to ``out``; returns the report dict."""
    from ..data.outputs import check_destination, write_marker

    unknown = [r for r in args.rows if r not in FAMILIES]
    if unknown:
        raise InputError(None, "rows", f"unknown row(s) {unknown}; choose from {list(FAMILIES)}")
    out = Path(out)
    check_destination(out, PRODUCER, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, PRODUCER)
    work, rows_dir = out / "work", out / "rows"
    _claim_settings(out, args, overwrite, (work, rows_dir))
    if args.threads > 0:  # small models train faster on one thread than on cores shared with others
        torch.set_num_threads(args.threads)
    timings: dict[str, float] = {}
    t_start = t0 = time.perf_counter()
    p = prepare(args, work, progress)
    timings["samples_and_selection"] = round(time.perf_counter() - t0, 1)
    tok = Tokenizers(p, args, work, progress)
    workers = RowWorkers(args, out, progress)
    try:
        return _run_rows(args, out, p, tok, workers, timings, t_start, progress)
    finally:
        workers.close()


def _run_rows(
    args: BenchmarkArguments,
    out: Path,
    p: Prepared,
    tok: Tokenizers,
    workers: RowWorkers,
    timings: dict[str, float],
    t_start: float,
    progress: bool,
) -> dict:
    """The rows (trained by ``workers`` phase by phase, then read back here; or trained here) and
    the report."""
    from .report import write_report

    work, rows_dir = out / "work", out / "rows"
    seeds = range(args.seeds)
    rows: list[Row] = []
    budgets = args.budgets()
    if "bdt" in args.rows:
        rows.append(bdt_row(p, args, rows_dir))
    t0 = time.perf_counter()
    decoded_widths = []
    if "tokens" in args.rows:
        methods = sorted({b.method for b in budgets})
        workers.run("encoder", [f"{m}:{e}" for m in methods if len(ENCODERS[m]) > 1 for e in ENCODERS[m]])
        workers.run("tokens", [b.key for b in budgets], seeds)
        for b in budgets:
            made, width = token_rows(p, tok, b, args, rows_dir, progress)
            rows += made
            decoded_widths.append(width)
    timings["token_rows"] = round(time.perf_counter() - t0, 1)
    if "continuous" in args.rows:
        layout = min(budgets, key=lambda b: (b.stages, b.bits))  # one token per object: the shortest sequences
        workers.run("continuous", [layout.key], seeds)
        rows += continuous_rows(p, tok, layout, args, rows_dir, progress)
    decoded = [r for r in rows if r.inputs == "ids+decoded" and r.key.endswith("_decoded")]
    best_budget = None
    if decoded:  # chosen on the validation events: the best token row with decoded kinematics
        best = max(decoded, key=lambda r: r.val_auc)
        best_budget = budget_of(best.key.split("_")[0], args)
    elif any(r in args.rows for r in ("hierarchical", "foundation")):
        best_budget = budget("rvq", 32)
    if "hierarchical" in args.rows:
        workers.run("hierarchical", [best_budget.key], seeds)
        rows.append(hierarchical_row(p, tok, best_budget, args, rows_dir, progress))
    pretraining = None
    if "foundation" in args.rows:
        t0 = time.perf_counter()
        workers.run("foundation", [best_budget.key], seeds)
        found, pretraining = foundation_rows(p, tok, best_budget, args, rows_dir, work, progress)
        rows += found
        timings["foundation"] = round(time.perf_counter() - t0, 1)
    timings["total"] = round(time.perf_counter() - t_start, 1)
    original = four_lepton_observables(chosen_p4(*Tokenizers._signal(p.test)))["m4l"]
    val_original = four_lepton_observables(chosen_p4(*Tokenizers._signal(p.validation)))["m4l"]
    report = {
        "configuration": args.configuration,
        "arguments": _jsonable(asdict(args)),
        "test_seeds": [args.test_seed, args.test_seed + 1],
        "development_seeds": [args.seed, args.seed + 1, *([args.seed + 2] if p.unlabelled else [])],
        "selection": args.cuts.describe(),
        "features": list(FEATURES),
        "samples": p.samples,
        "cutflow": p.cutflow,
        "selected": {
            "train": int(len(p.train.labels)),
            "validation": int(len(p.validation.labels)),
            "test": int(len(p.test.labels)),
            "test_signal": int(p.test.labels.sum()),
            "test_background": int((1 - p.test.labels).sum()),
        },
        "choices_on_validation": {
            "encoders": tok.choices,
            "tokenizer_of_later_rows": best_budget.key if best_budget else None,
        },
        "skipped_budgets": args.skipped_budgets(),
        "m4l_peak": {
            "original": peak_width(original),
            "validation_original": peak_width(val_original),
            "decoded": decoded_widths,
        },
        "pretraining": pretraining,
        "timings_seconds": timings,
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    write_report(report, rows, p.test.labels, original, out, args.bootstrap)
    return report


RESUMABLE_CHANGES = ("rows", "methods", "bits", "max_codebook", "labels", "workers", "threads", "bootstrap")
"""Settings a later run with the same ``--out`` may change: it adds rows, budgets or label counts,
or runs faster; everything else a finished row depends on."""


def _claim_settings(
    out: Path, args: Any, overwrite: bool, derived: Sequence[Path], resumable: Sequence[str] = RESUMABLE_CHANGES
) -> None:
    """Record the run's settings in ``OUT/settings.json``; a rerun with other settings would mix
    rows of two runs, so it is refused (or, with ``overwrite``, starts afresh)."""
    from ..data.atomic import remove
    from ..errors import ArgumentError

    settings = {k: v for k, v in _jsonable(asdict(args)).items() if k not in resumable}
    path = out / "settings.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(settings, default=str)):
            changed = sorted(
                k
                for k in set(old) | set(settings)
                if old.get(k) != json.loads(json.dumps(settings.get(k), default=str))
            )
            if not overwrite:
                raise ArgumentError(
                    "--out",
                    f"{out} holds a run with other settings ({', '.join(changed)}): give "
                    "another --out, or --overwrite to start afresh",
                )
            logger.warning("%s: settings changed (%s): starting afresh", out, ", ".join(changed))
            for d in derived:
                remove(d)
    write_json(path, settings, sort_keys=False, default=str)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x
