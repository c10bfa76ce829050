"""``treasure benchmark foundation``: does pretraining pay? Label efficiency on two tasks and
transfer between the ATLAS-like and CMS-like detectors.

**Corpus.** Unlabelled ``mix`` events (t tbar, Z + jets, W + jets, dijets, WW, WZ, ZZ* -> 4l,
H -> ZZ* -> 4l; :data:`~treasure_hf.data.generate.processes.MIX_WEIGHTS`) from each detector,
generated once per (settings, seed) under ``OUT/work/samples/DETECTOR`` and resumed where a run
stopped, with seeds of their own: never a labelled event. Nothing of the generator's truth
(process ids included) reaches pretraining. The tokenizer (:attr:`FoundationArguments.method`,
``bits``) is trained on the corpus of both detectors and read by every model of its seed.

**Seeds.** Each seed s trains every part anew (:attr:`FoundationArguments.seeded`): its tokenizer,
its pretrained encoders (their initialisation, masking and batch order) and its fine-tunings; seed
s's fine-tuned models read seed s's tokenizer and encoders, so the paired intervals over seeds
cover every trained part.

**Objectives.** Each of :attr:`FoundationArguments.objectives` pretrains the same architecture on
the same corpus for the same steps and batch (the same compute): ``codes`` (masked-code
prediction) and ``continuous`` (the masked objects' kinematics regressed: MPMv2's continuous
targets). The objective whose fine-tuned models have the best mean validation AUC (over tasks,
label counts and seeds) is the one the transfer study and the published encoder use.

**Tasks.** ``hzz4l`` (H -> ZZ* -> 4l against ZZ*, the detector's own four-lepton selection,
:mod:`.selection`) and ``ljets`` (t tbar against W + jets in the lepton + jets selection,
:mod:`.ljets`). Development samples (``seed``) give training and validation events; test samples
are generated apart (``test_seed``) and read for the test scores alone. At each label count n of
the ladder, per seed s: n training events drawn with s (nested across n), validation events
capped at max(100, n / 3); the pretrained encoder fine-tuned (its rate picked on the validation
events), the same architecture from scratch, and a linear probe of the frozen encoder. Every
training goes through :func:`~treasure_hf.training.pretrain.pretrain` and
:func:`~treasure_hf.training.finetune.finetune`.

**Transfer.** At ``transfer_labels`` labels, a model fine-tuned on one detector's labels is scored
on the other detector's test events; the transfer gap is that AUC minus the AUC of the same
encoder fine-tuned on the other detector's own labels (paired over seeds and test events). Three
settings: the experiment token and pretraining on both detectors; no experiment token (every
context token embedded alike, in pretraining and fine-tuning), both detectors; the token and
pretraining on the source detector alone.

Each (row, seed) is cached (:func:`.rows.cached`), each encoder kept with its checkpoints: a rerun
with the same ``--out`` continues where the last one stopped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import metrics
from ..data.atomic import atomic_output, write_json
from ..data.events import EventBatch
from ..data.generate import processes
from ..errors import InputError
from . import ljets
from . import samples as sample_mod
from .config import ModelSettings, TokenizerSettings, budget
from .rows import (
    SeedResult,
    cached,
    encode_dataset,
    finetune_pretrained,
    finetune_row,
    pretrain_encoder,
    shape_for,
    train_budget_tokenizer,
)
from .selection import SELECTIONS, select_4l

logger = logging.getLogger(__name__)

PRODUCER = "benchmark-foundation"
TOKEN_TYPES: tuple[str, ...] = ("electrons", "muons", "jets", "met")
DETECTOR_SEED_OFFSET = {"atlas": 0, "cms": 100}
"""Added to every sample seed of a detector: the two detectors see different generated events."""
GOAL_AT_1000, GOAL_AT_100, GOAL_GAP = 0.02, 0.05, 0.005
TRANSFER_SETTINGS: dict[str, str] = {
    "token_both": "experiment token, pretrained on both detectors",
    "no_token_both": "no experiment token, pretrained on both detectors",
    "token_one": "experiment token, pretrained on the source detector alone",
    "scratch": "no pretraining (experiment token)",
}


@dataclass(frozen=True)
class Task:
    """A downstream classification: ``signal`` against ``background`` (presets), each with extra
    Pythia settings, and a selection of a batch from a detector (an object with ``passed`` and
    ``cutflow``)."""

    name: str
    signal: str
    background: str
    background_extra: tuple[str, ...]
    select: Callable[[EventBatch, str], Any]
    describe: Callable[[str], str]
    seed_offset: int


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "hzz4l",
            sample_mod.SIGNAL,
            sample_mod.BACKGROUND,
            sample_mod.BACKGROUND_SETTINGS,
            lambda b, det: select_4l(b, SELECTIONS[det]),
            lambda det: SELECTIONS[det].describe(),
            0,
        ),
        Task(
            "ljets",
            "ttbar",
            "wjets",
            ljets.WJETS_SETTINGS,
            lambda b, det: ljets.select_ljets(b),
            lambda det: ljets.describe(),
            3,
        ),
    )
}
"""The two tasks: H -> ZZ* -> 4l against ZZ*, and t tbar -> l + jets against W + jets."""


@dataclass(frozen=True)
class TaskSizes:
    """Generated events of one task per detector: development signal and background, test ditto."""

    signal: int
    background: int
    test_signal: int
    test_background: int


SEEDED_PARTS = ("tokenizer", "pretraining", "fine-tuning")
"""The trained parts of a row: the tokenizer, the pretrained encoder, the fine-tuning."""


@dataclass(frozen=True)
class FoundationArguments:
    """Everything a run depends on (written into ``results.json``)."""

    configuration: str = "full"
    corpus_events: int = 500_000
    """Unlabelled corpus events per detector."""
    sizes: dict[str, TaskSizes] = field(
        default_factory=lambda: {
            "hzz4l": TaskSizes(40_000, 160_000, 20_000, 80_000),
            "ljets": TaskSizes(60_000, 300_000, 20_000, 100_000),
        }
    )
    tasks: tuple[str, ...] = ("hzz4l", "ljets")
    detectors: tuple[str, ...] = ("atlas", "cms")
    home: str = "atlas"
    """Detector of the label ladder."""
    labels: tuple[int, ...] = (100, 300, 1000, 3000, 10_000)
    transfer_labels: int = 1000
    seeds: int = 3
    objectives: tuple[str, ...] = ("codes", "continuous")
    seed: int = 0
    """Seed of the development samples (and +1, +3, +4) and of their train/validation split."""
    test_seed: int = 1000
    corpus_seed: int = 2000
    validation_fraction: float = 0.25
    method: str = "rvq"
    bits: int = 32
    encoder: str = "mlp"
    workers: int = 1
    threads: int = 0
    bootstrap: int = 1000
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)
    model: ModelSettings = field(default_factory=lambda: ModelSettings(pretrain_steps=50_000))
    seeded: tuple[str, ...] = SEEDED_PARTS
    """What each seed trains anew (a subset of :data:`SEEDED_PARTS`, ``fine-tuning`` always): parts
    left out are seed 0's, shared by every seed (cheaper, and the intervals no longer cover them)."""


def quick_arguments(**overrides: Any) -> FoundationArguments:
    """``--quick``: a few thousand events per sample, labels 100 and 1000, two seeds, a small
    model; roughly an hour on one free core."""
    base = FoundationArguments(
        configuration="quick",
        corpus_events=6000,
        sizes={"hzz4l": TaskSizes(2500, 10_000, 1500, 6000), "ljets": TaskSizes(4000, 14_000, 1500, 6000)},
        labels=(100, 1000),
        transfer_labels=1000,
        seeds=2,
        workers=1,
        threads=1,
        bootstrap=300,
        tokenizer=TokenizerSettings(steps=300, batch_size=1024, hidden_size=64),
        model=ModelSettings(
            hidden_size=32,
            layers=2,
            heads=4,
            intermediate_size=64,
            epochs=12,
            batch_size=64,
            patience=3,
            pretrain_steps=400,
            pretrain_batch_size=128,
            finetune_lrs=(3e-4,),
        ),
    )
    return replace(base, **overrides)


def medium_arguments(**overrides: Any) -> FoundationArguments:
    """``--medium``: 100,000 corpus events per detector (200,000 in all), the whole label ladder,
    three seeds; for 2 cores, in pieces (every piece is cached). About 860,000 generated events and
    five encoders of 1,500 steps x 128 events per seed: several hours on 2 free cores (docs/benchmark.md)."""
    base = FoundationArguments(
        configuration="medium",
        corpus_events=100_000,
        sizes={"hzz4l": TaskSizes(14_000, 56_000, 6000, 24_000), "ljets": TaskSizes(36_000, 160_000, 6000, 27_000)},
        labels=(100, 300, 1000, 3000, 10_000),
        seeds=3,
        workers=2,
        threads=1,
        bootstrap=1000,
        tokenizer=TokenizerSettings(steps=800, batch_size=1024, hidden_size=64),
        model=ModelSettings(
            hidden_size=64,
            layers=2,
            heads=4,
            intermediate_size=128,
            epochs=30,
            batch_size=128,
            patience=5,
            pretrain_steps=1500,
            pretrain_batch_size=128,
            finetune_lrs=(1e-3, 1e-4),
        ),
    )
    return replace(base, **overrides)


RESUMABLE_CHANGES = ("labels", "transfer_labels", "seeds", "tasks", "objectives", "workers", "threads", "bootstrap")
"""Settings a later run with the same ``--out`` may change: every (row, seed) and encoder is kept
under a name of what it depends on (task, detector, labels, model, objective, corpus detectors,
token, seed number), so these add or drop rows without changing any."""

CONFIGURATIONS = {
    "quick": quick_arguments,
    "medium": medium_arguments,
    "full": lambda **kw: replace(FoundationArguments(), **kw),
}


# --- samples ----------------------------------------------------------------------------------------
def corpus_request(args: FoundationArguments, detector: str) -> sample_mod.SampleRequest:
    return sample_mod.SampleRequest(
        processes.MIX, args.corpus_events, args.corpus_seed + DETECTOR_SEED_OFFSET[detector], tag="corpus"
    )


def task_requests(args: FoundationArguments, task: Task, detector: str) -> dict[str, list[sample_mod.SampleRequest]]:
    """``{"development": [signal, background], "test": [...]}`` of ``task`` on ``detector``."""
    n = args.sizes[task.name]
    off = DETECTOR_SEED_OFFSET[detector] + task.seed_offset
    return {
        "development": [
            sample_mod.SampleRequest(task.signal, n.signal, args.seed + off),
            sample_mod.SampleRequest(task.background, n.background, args.seed + off + 1, task.background_extra),
        ],
        "test": [
            sample_mod.SampleRequest(task.signal, n.test_signal, args.test_seed + off, tag="test"),
            sample_mod.SampleRequest(
                task.background, n.test_background, args.test_seed + off + 1, task.background_extra, tag="test"
            ),
        ],
    }


def generate_all(args: FoundationArguments, work: Path, progress: bool) -> tuple[dict[str, Path], dict]:
    """Generate (or reuse) every sample; returns the corpus path per detector and the requests."""
    corpus, described = {}, []
    for det in args.detectors:
        reqs = [corpus_request(args, det)]
        for name in args.tasks:
            for group in task_requests(args, TASKS[name], det).values():
                reqs += group
        paths = sample_mod.generate_samples(
            reqs, work / "samples" / det, detector=det, workers=args.workers, progress=progress
        )
        corpus[det] = paths[reqs[0].name]
        described += [{**r.describe(), "detector": det} for r in reqs]
    return corpus, {"requests": described}


@dataclass
class TaskData:
    """Selected events of one task on one detector: train, validation and test (events, labels)."""

    train: tuple[EventBatch, np.ndarray]
    validation: tuple[EventBatch, np.ndarray]
    test: tuple[EventBatch, np.ndarray]
    cutflow: dict


def select_task(args: FoundationArguments, task: Task, detector: str, work: Path, progress: bool) -> TaskData:
    """Select the task's development and test events and split the development ones."""
    reqs = task_requests(args, task, detector)
    folder = work / "samples" / detector
    pid = processes.PROCESSES[task.signal].process_id
    select = lambda b: task.select(b, detector)  # noqa: E731
    dev, y, dev_flow = sample_mod.read_selected(
        [folder / f"{r.name}.pcdf" for r in reqs["development"]], select, progress=progress, signal_process_id=pid
    )
    test, y_test, test_flow = sample_mod.read_selected(
        [folder / f"{r.name}.pcdf" for r in reqs["test"]], select, progress=progress, signal_process_id=pid
    )
    perm = np.random.default_rng([args.seed, task.seed_offset, DETECTOR_SEED_OFFSET[detector]]).permutation(len(y))
    n_val = int(args.validation_fraction * len(perm))
    tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    return TaskData(
        (dev.select(tr), y[tr]), (dev.select(va), y[va]), (test, y_test), {"development": dev_flow, "test": test_flow}
    )


# --- models -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder is pretrained with: its objective, corpus detectors and experiment token
    (each seed pretrains its own, :meth:`Study.encoder`)."""

    objective: str
    detectors: tuple[str, ...]
    experiment_token: bool = True

    @property
    def key(self) -> str:
        return f"{self.objective}-{'+'.join(self.detectors)}-{'token' if self.experiment_token else 'no_token'}"


@dataclass
class Encoder:
    """One pretrained encoder: its spec, the seed it was pretrained with, its folder and wall time."""

    spec: EncoderSpec
    seed: int
    path: Path
    seconds: float


class Study:
    """The run's shared state: tokenizers, tokenized corpus and task splits, encoders, rows."""

    def __init__(self, args: FoundationArguments, out: Path, progress: bool):
        self.args, self.out, self.progress = args, out, progress
        self.work, self.rows_dir = out / "work", out / "rows"
        self.shape = shape_for(args.model, "ids+decoded")
        self.encoders: dict[tuple[str, int], Encoder] = {}
        self.tokenizers: dict[int, Any] = {}
        self.timings: dict[str, float] = {}
        self._corpus = None
        self._encoded: dict[tuple, Any] = {}

    def prepare(self) -> None:
        t0 = time.perf_counter()
        self.corpus_paths, self.samples = generate_all(self.args, self.work, self.progress)
        self.timings["samples"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        self.tokenizer(0)
        self.timings["tokenizer"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        self.data = {
            (t, d): select_task(self.args, TASKS[t], d, self.work, self.progress)
            for t in self.args.tasks
            for d in self.args.detectors
        }
        self.timings["selection"] = round(time.perf_counter() - t0, 1)

    def _seed_of(self, part: str, seed: int) -> int:
        """The seed ``part`` is trained with for the rows of ``seed``: its own, or seed 0's when
        :attr:`FoundationArguments.seeded` shares it."""
        return seed if part in self.args.seeded else 0

    def tokenizer(self, seed: int) -> Any:
        """The tokenizer of ``seed``'s rows, trained on the corpus of both detectors (kept under
        ``WORK/tokenizer/seed-S``)."""
        s = self._seed_of("tokenizer", seed)
        if s not in self.tokenizers:
            self.tokenizers[s] = train_budget_tokenizer(
                budget(self.args.method, self.args.bits),
                self.args.encoder,
                s,
                [self.corpus_paths[d] for d in self.args.detectors],
                self.work / "tokenizer" / f"seed-{s}",
                self.args,
                TOKEN_TYPES,
                self.progress,
            )
        return self.tokenizers[s]

    # tokenized data sets, encoded once per tokenizer and then selected from
    def _dataset(self, key: tuple, seed: int, events: EventBatch, labels: np.ndarray, continuous: bool = False) -> Any:
        s = self._seed_of("tokenizer", seed)
        if (s, *key) not in self._encoded:
            self._encoded[(s, *key)] = encode_dataset(self.tokenizer(s), events, labels, continuous=continuous)
        return self._encoded[(s, *key)]

    def test_split(self, task: str, seed: int = 0) -> tuple[Any, dict[str, slice], np.ndarray]:
        """Every detector's test events of ``task`` in one split (detector order) tokenized by
        ``seed``'s tokenizer, where each detector's events lie in it, and their labels."""
        parts = [self.data[(task, d)].test for d in self.args.detectors]
        where, lo = {}, 0
        for d, (ev, _) in zip(self.args.detectors, parts):
            where[d] = slice(lo, lo + ev.n_events)
            lo += ev.n_events
        y = np.concatenate([p[1] for p in parts])
        ds = self._dataset(("test", task), seed, sample_mod.concat_common([p[0] for p in parts]), y)
        return ds, where, y

    def labelled(self, task: str, detector: str, n: int, seed: int) -> Any:
        """The ``DatasetDict`` of ``n`` training labels of ``detector`` drawn with ``seed`` (nested in n),
        validation events capped at max(100, n / 3), and every detector's test events, tokenized by
        ``seed``'s tokenizer."""
        import datasets

        td = self.data[(task, detector)]
        train = self._dataset(("train", task, detector), seed, *td.train)
        val = self._dataset(("validation", task, detector), seed, *td.validation)
        rng = np.random.default_rng([self.args.seed, 17, seed, TASKS[task].seed_offset, DETECTOR_SEED_OFFSET[detector]])
        tr = np.sort(rng.permutation(len(train))[:n])
        va = np.sort(rng.permutation(len(val))[: max(100, n // 3)])
        return datasets.DatasetDict(
            {"train": train.select(tr), "validation": val.select(va), "test": self.test_split(task, seed)[0]}
        )

    def corpus(self, detectors: tuple[str, ...], continuous: bool, seed: int) -> Any:
        """The corpus of ``detectors`` tokenized by ``seed``'s tokenizer (``train`` split; with
        ``continuous``, the original kinematics as the continuous objectives' targets)."""
        import datasets

        from ..data.io import read_events

        if self._corpus is None:
            self._corpus = {d: read_events(self.corpus_paths[d]) for d in self.args.detectors}
        events = sample_mod.concat_common([self._corpus[d] for d in detectors])
        ds = self._dataset(
            ("corpus", detectors, continuous), seed, events, np.zeros(events.n_events, np.int64), continuous
        )
        return datasets.DatasetDict({"train": ds})

    def encoder(self, spec: EncoderSpec, seed: int) -> Encoder:
        """The encoder of ``spec`` for ``seed``'s rows: pretrained with its seed on the corpus tokenized
        by its tokenizer (once, kept under ``WORK/encoders/KEY/seed-S``, resumed if interrupted)."""
        s = self._seed_of("pretraining", seed)
        if (spec.key, s) in self.encoders:
            return self.encoders[(spec.key, s)]
        out = self.work / "encoders" / spec.key / f"seed-{s}"
        clock = out.parent / f"seed-{s}.seconds.json"  # the wall time of the pretraining that made it
        t0 = time.perf_counter()
        path = pretrain_encoder(
            self.corpus(spec.detectors, spec.objective != "codes", seed),
            self.tokenizer(seed),
            replace(self.shape, experiment_token=spec.experiment_token),
            self.args.model,
            s,
            out,
            self.progress,
            objective=spec.objective,
        )
        if not clock.exists():
            write_json(clock, {"seconds": round(time.perf_counter() - t0, 1)})
        enc = Encoder(spec, s, path, float(json.loads(clock.read_text())["seconds"]))
        self.encoders[(spec.key, s)] = enc
        return enc

    def row(self, key: str, train: Callable[[int], SeedResult]) -> list[SeedResult]:
        results = []
        for s in range(self.args.seeds):
            results.append(cached(self.rows_dir / key / f"seed-{s}", lambda s=s: train(s)))
            logger.info("%s seed %d: validation AUC %.4f", key, s, results[-1].val_auc)
        return results

    def finetuned(
        self, task: str, detector: str, n: int, mode: str, spec: EncoderSpec | None, token: bool = True
    ) -> list[SeedResult]:
        """Seeds of one fine-tuning: ``mode`` ``scratch``, ``fine-tuned`` or ``probe`` (of the
        encoder of ``spec`` of each seed)."""
        key = f"{task}/{detector}-{n}/{mode}" + (f"-{spec.key}" if spec else ("" if token else "-no_token"))
        shape = replace(self.shape, experiment_token=token if spec is None else spec.experiment_token)

        def train(s: int) -> SeedResult:
            data, tokenizer = self.labelled(task, detector, n, s), self.tokenizer(s)
            work = self.rows_dir / "work"
            if mode == "scratch":
                return finetune_row(data, tokenizer, shape, self.args.model, s, work, progress=self.progress)
            enc = self.encoder(spec, s)
            if mode == "probe":
                return finetune_row(
                    data,
                    tokenizer,
                    shape,
                    self.args.model,
                    s,
                    work,
                    model=str(enc.path),
                    freeze=True,
                    progress=self.progress,
                )
            return finetune_pretrained(data, tokenizer, shape, self.args.model, s, work, str(enc.path), self.progress)

        return self.row(key, train)


# --- the study --------------------------------------------------------------------------------------
def _auc(y: np.ndarray, results: Sequence[SeedResult], where: slice) -> list[float]:
    return [metrics.roc_auc(y[where], r.test_scores[where]) for r in results]


def _pair(
    y: np.ndarray, a: Sequence[SeedResult], b: Sequence[SeedResult], where: slice, n_bootstrap: int, seed: int
) -> dict[str, float]:
    return metrics.paired_bootstrap(
        y[where],
        [r.test_scores[where] for r in a],
        [r.test_scores[where] for r in b],
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


def ladder(study: Study, task: str) -> tuple[list[dict], dict[str, list[float]]]:
    """Scratch, fine-tuned (each objective) and probe (each objective) at every label count on the
    home detector; returns the records and, per objective, the fine-tuned validation AUCs."""
    args = study.args
    _, where, y = study.test_split(task)
    home = where[args.home]
    recs, val = [], {o: [] for o in args.objectives}
    n_train = len(study.data[(task, args.home)].train[1])
    for n in args.labels:
        if n > n_train:
            logger.warning("%s: skipping %d labels: only %d training events", task, n, n_train)
            continue
        scratch = study.finetuned(task, args.home, n, "scratch", None)
        rows = {"scratch": scratch}
        for o in args.objectives:
            spec = EncoderSpec(o, tuple(args.detectors))
            rows[f"fine-tuned ({o})"] = study.finetuned(task, args.home, n, "fine-tuned", spec)
            rows[f"probe ({o})"] = study.finetuned(task, args.home, n, "probe", spec)
            val[o] += [r.val_auc for r in rows[f"fine-tuned ({o})"]]
        for name, res in rows.items():
            aucs = _auc(y, res, home)
            rec = {
                "task": task,
                "labels": n,
                "detector": args.home,
                "model": name,
                "auc": float(np.mean(aucs)),
                "auc_seeds": aucs,
                "auc_std": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
                "validation_auc": float(np.mean([r.val_auc for r in res])),
                "seeds": [r.info for r in res],
            }
            if name != "scratch":
                rec["paired_vs_scratch"] = _pair(y, res, scratch, home, args.bootstrap, n)
            recs.append(rec)
    return recs, val


def transfer(study: Study, task: str, best: str) -> list[dict]:
    """The transfer gap of every setting and direction at ``transfer_labels`` labels."""
    args = study.args
    n = args.transfer_labels
    _, where, y = study.test_split(task)
    both = tuple(args.detectors)
    out = []
    for setting in TRANSFER_SETTINGS:
        for src in args.detectors:
            for dst in args.detectors:
                if dst == src:
                    continue
                if setting == "scratch":
                    spec, mode = None, "scratch"
                else:
                    spec = EncoderSpec(best, (src,) if setting == "token_one" else both, setting != "no_token_both")
                    mode = "fine-tuned"
                moved = study.finetuned(task, src, n, mode, spec)
                own = study.finetuned(task, dst, n, mode, spec)
                gap = _pair(y, moved, own, where[dst], args.bootstrap, len(out))
                out.append(
                    {
                        "task": task,
                        "setting": setting,
                        "description": TRANSFER_SETTINGS[setting],
                        "source": src,
                        "target": dst,
                        "labels": n,
                        "encoder": spec.key if spec else None,
                        "auc_transferred": float(np.mean(_auc(y, moved, where[dst]))),
                        "auc_own": float(np.mean(_auc(y, own, where[dst]))),
                        "auc_source_on_source": float(np.mean(_auc(y, moved, where[src]))),
                        "gap": gap,
                    }
                )
    return out


def goals(ladder_recs: Sequence[dict], transfer_recs: Sequence[dict], best: str, tasks: Sequence[str]) -> list[dict]:
    """The issue's lines, each met only when its paired 95% interval says so (with its margin)."""
    out = []
    for task in tasks:
        for n, line in ((1000, GOAL_AT_1000), (100, GOAL_AT_100)):
            rec = next(
                (
                    r
                    for r in ladder_recs
                    if r["task"] == task and r["labels"] == n and r["model"] == f"fine-tuned ({best})"
                ),
                None,
            )
            if rec is None:
                out.append(
                    {
                        "goal": f"{task}: fine-tuned beats scratch by >= {line} AUC at {n} labels",
                        "met": None,
                        "why": f"{n} labels not run",
                    }
                )
                continue
            p = rec["paired_vs_scratch"]
            out.append(
                {
                    "goal": f"{task}: fine-tuned ({best}) beats scratch by >= {line} AUC at {n} labels, the 95% "
                    "interval excluding 0",
                    **p,
                    "met": bool(p["difference"] >= line and p["low"] > 0),
                    "short_by": max(0.0, line - p["difference"]),
                }
            )
        for r in transfer_recs:
            if r["task"] == task and r["setting"] == "token_both":
                g = r["gap"]
                out.append(
                    {
                        "goal": f"{task}: transfer gap {r['source']} -> {r['target']} >= -{GOAL_GAP} AUC with "
                        "the experiment token and two-detector pretraining (the whole 95% interval)",
                        **g,
                        "met": bool(g["low"] >= -GOAL_GAP),
                        "short_by": max(0.0, -GOAL_GAP - g["low"]),
                        "beside": {
                            x["setting"]: x["gap"]
                            for x in transfer_recs
                            if x["task"] == task and x["source"] == r["source"] and x["setting"] != "token_both"
                        },
                    }
                )
    return out


def run_foundation(
    args: FoundationArguments, out: str | os.PathLike, progress: bool = True, overwrite: bool = False
) -> dict:
    """Run the study (skipping what a previous run of the same ``out`` finished), write the report
    and the publishable encoder ``OUT/encoder``; returns the report dict."""
    from ..data.outputs import check_destination, write_marker
    from .run import _claim_settings, _jsonable

    bad = [t for t in args.tasks if t not in TASKS] + [d for d in args.detectors if d not in DETECTOR_SEED_OFFSET]
    if bad or args.home not in args.detectors or len(args.detectors) != 2:
        raise InputError(
            None,
            "tasks",
            f"tasks from {list(TASKS)}, two detectors from {list(DETECTOR_SEED_OFFSET)} "
            f"with the home detector among them; got {bad or list(args.detectors)}",
        )
    if not set(args.seeded) <= set(SEEDED_PARTS) or "fine-tuning" not in args.seeded:
        raise InputError(
            None, "seeded", f"a subset of {list(SEEDED_PARTS)} holding 'fine-tuning'; got {list(args.seeded)}"
        )
    out = Path(out)
    check_destination(out, PRODUCER, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, PRODUCER)
    # the samples are kept by their own settings and seeds (samples.is_complete): a change keeps them
    _claim_settings(
        out, args, overwrite, (out / "work" / "tokenizer", out / "work" / "encoders", out / "rows"), RESUMABLE_CHANGES
    )
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    study = Study(args, out, progress)
    study.prepare()
    ladder_recs, val = [], {o: [] for o in args.objectives}
    t0 = time.perf_counter()
    for task in args.tasks:
        recs, v = ladder(study, task)
        ladder_recs += recs
        for o in args.objectives:
            val[o] += v[o]
    study.timings["ladder"] = round(time.perf_counter() - t0, 1)
    best = max(args.objectives, key=lambda o: float(np.mean(val[o])) if val[o] else -1.0)
    t0 = time.perf_counter()
    transfer_recs = [r for task in args.tasks for r in transfer(study, task, best)]
    study.timings["transfer"] = round(time.perf_counter() - t0, 1)
    study.timings["total"] = round(time.perf_counter() - t_start, 1)
    report = {
        "configuration": args.configuration,
        "arguments": _jsonable(asdict(args)),
        "samples": study.samples,
        "selections": {t: {d: TASKS[t].describe(d) for d in args.detectors} for t in args.tasks},
        "selected": {
            f"{t}/{d}": {k: int(len(getattr(td, k)[1])) for k in ("train", "validation", "test")}
            for (t, d), td in study.data.items()
        },
        "cutflow": {f"{t}/{d}": td.cutflow for (t, d), td in study.data.items()},
        "tokenizer": {
            "method": args.method,
            "bits": args.bits,
            "encoder": args.encoder,
            "trained_on": "the unlabelled corpus of both detectors",
            "seeds": sorted(study.tokenizers),
        },
        "seeded": list(args.seeded),
        "objective_choice_on_validation": {
            "mean_validation_auc": {o: float(np.mean(v)) if v else None for o, v in val.items()},
            "chosen": best,
        },
        "encoders": {
            f"{k}/seed-{s}": {
                "objective": e.spec.objective,
                "detectors": list(e.spec.detectors),
                "experiment_token": e.spec.experiment_token,
                "seed": s,
                "pretrain_seconds": e.seconds,
                "steps": args.model.pretrain_steps,
                "batch_size": args.model.pretrain_batch_size,
            }
            for (k, s), e in sorted(study.encoders.items())
        },
        "ladder": ladder_recs,
        "transfer": transfer_recs,
        "goals": goals(ladder_recs, transfer_recs, best, args.tasks),
        "timings_seconds": study.timings,
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    write_report(report, out)
    publishable(study, best, report, out / "encoder")
    return report


# --- report and the published encoder -----------------------------------------------------------------
def write_report(report: dict, out: Path) -> None:
    """``results.json``, ``report.md``, ``label_efficiency.png`` and ``transfer_gap.png`` (and the
    figures' data, ``label_efficiency.json`` and ``transfer_gap.json``)."""
    from .plots import plot_label_efficiency_panels, plot_transfer_gap
    from .report import _default, _finite

    def dump(name: str, obj: Any) -> None:
        write_json(out / name, _finite(obj), sort_keys=False, default=_default, allow_nan=False)

    dump("results.json", report)
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    for r in report["ladder"]:
        c = curves.setdefault(r["task"], {}).setdefault(r["model"], {"labels": [], "auc": [], "auc_std": []})
        c["labels"].append(r["labels"])
        c["auc"].append(r["auc"])
        c["auc_std"].append(r["auc_std"])
    dump("label_efficiency.json", curves)
    gaps = [
        {k: r[k] for k in ("task", "setting", "source", "target", "gap", "auc_transferred", "auc_own")}
        for r in report["transfer"]
    ]
    dump("transfer_gap.json", gaps)
    if curves:
        plot_label_efficiency_panels(curves, out / "label_efficiency.png")
    if gaps:
        plot_transfer_gap(gaps, TRANSFER_SETTINGS, out / "transfer_gap.png")
    with atomic_output(out / "report.md") as tmp:
        tmp.write_text(markdown(report))


def _iv(p: Mapping[str, float]) -> str:
    return f"{p['difference']:+.4f} [{p['low']:+.4f}, {p['high']:+.4f}]"


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = [
        f"# Foundation model study ({report['configuration']})",
        "",
        f"Objective chosen on the validation events: **{report['objective_choice_on_validation']['chosen']}** "
        f"(mean validation AUC {json.dumps(report['objective_choice_on_validation']['mean_validation_auc'])}).",
        "",
        "## Label efficiency (test AUC on the home detector)",
        "",
        "| task | labels | model | AUC | std | minus scratch [95% interval] |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["ladder"]:
        lines.append(
            f"| {r['task']} | {r['labels']} | {r['model']} | {r['auc']:.4f} | {r['auc_std']:.4f} | "
            f"{_iv(r['paired_vs_scratch']) if 'paired_vs_scratch' in r else ''} |"
        )
    lines += [
        "",
        "## Transfer gap (AUC on the target detector: transferred minus fine-tuned on its own labels)",
        "",
        "| task | setting | source -> target | transferred | own | gap [95% interval] |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["transfer"]:
        lines.append(
            f"| {r['task']} | {r['description']} | {r['source']} -> {r['target']} | "
            f"{r['auc_transferred']:.4f} | {r['auc_own']:.4f} | {_iv(r['gap'])} |"
        )
    lines += ["", "## Goals", "", "| goal | difference [95% interval] | met |", "|---|---|---|"]
    for g in report["goals"]:
        lines.append(f"| {g['goal']} | {_iv(g) if 'difference' in g else g.get('why', '')} | {g['met']} |")
    lines += [
        "",
        f"**Timings** [s]: {json.dumps(report['timings_seconds'])}; {report['torch_threads']} torch "
        f"threads on {report['device']}.",
        "",
    ]
    return "\n".join(lines)


def card_summary(
    summary: dict, args: FoundationArguments, best: str, report: Mapping[str, Any], seconds: float
) -> dict:
    """The encoder's ``training_summary.json`` for its card: the corpus, the objective, steps and
    compute (``seconds`` of pretraining) and, as ``eval_results`` (the card's model-index), the
    test AUC of the encoder fine-tuned at each label count of the ladder."""
    from ..training.pretrain import OBJECTIVE_TEXT

    corpus = ", ".join(f"{k} {v:g}" for k, v in processes.MIX_WEIGHTS.items())
    m = args.model
    return {
        **summary,
        "tokenizer": f"{args.method.upper()} {args.bits} bits per object, trained on the corpus "
        "(`work/tokenizer/seed-0` of the run)",
        "training_data_text": (
            f"Unlabelled simulated pp events at 13 TeV (Pythia 8 + the parametric detectors), {args.corpus_events:,} "
            f"per detector from the ATLAS-like and the CMS-like response ({', '.join(args.detectors)}; "
            f"{args.corpus_events * len(args.detectors):,} in all), process mix {corpus}, seeds {args.corpus_seed} + "
            f"{DETECTOR_SEED_OFFSET}; no labelled or test event of the downstream tasks."
        ),
        "procedure_text": (
            f"{summary.get('procedure_text', '')} Objective `{best}` ({OBJECTIVE_TEXT[best]}), chosen on validation "
            f"events among {list(args.objectives)}; {m.pretrain_steps} steps of {m.pretrain_batch_size} events "
            f"({m.pretrain_steps * m.pretrain_batch_size:,} events seen), {seconds:.0f} s on "
            f"{report['torch_threads']} CPU thread(s) ({report['device']}). Tokenizer {args.method.upper()} "
            f"{args.bits} bits per object trained on the corpus. This is seed 0's encoder; results below: test ROC "
            f"AUC of the encoders of {args.seeds} seeds (each with its own tokenizer and pretraining), fine-tuned on "
            f"{args.home}-like labels, their mean (`treasure benchmark foundation`)."
        ),
        "eval_results": [
            {
                "dataset_name": f"{r['task']} test ({r['detector']}-like), {r['labels']} labels",
                "dataset_type": f"treasure-benchmark-foundation/{r['task']}-{r['labels']}-labels",
                "dataset_split": "test",
                "metric_name": "ROC AUC",
                "metric_value": r["auc"],
            }
            for r in report["ladder"]
            if r["model"] == f"fine-tuned ({best})"
        ],
    }


def publishable(study: Study, best: str, report: Mapping[str, Any], folder: Path) -> Path:
    """``folder``: the best encoder (``best`` objective, both detectors, experiment token) with the
    :func:`card_summary`; push it with ``treasure push FOLDER --repo-id ...``."""
    from ..data.atomic import commit, temporary_directory

    enc = study.encoder(EncoderSpec(best, tuple(study.args.detectors)), 0)
    summary = json.loads((enc.path / "training_summary.json").read_text())
    tmp = temporary_directory(folder)
    shutil.copytree(enc.path, tmp, ignore=shutil.ignore_patterns("checkpoints", ".*"), dirs_exist_ok=True)
    (tmp / "training_summary.json").write_text(
        json.dumps(card_summary(summary, study.args, best, report, enc.seconds), indent=1, default=str)
    )
    commit(tmp, folder)
    return folder
