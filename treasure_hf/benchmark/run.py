"""Orchestration of ``treasure benchmark hzz4l``: samples -> four-lepton selection -> one split by
event -> every row (BDT, continuous, four tokenizers, hierarchical, constituent, foundation model
against scratch) over ``seeds`` trainings -> report.

Every row sees the same selected events and the same train / validation / test split (60/20/20,
drawn once from ``seed``); each row is trained ``seeds`` times (seeds 0, 1, ...: model
initialisation and batch order) and evaluated on the test events.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .. import metrics
from ..data.events import EventBatch
from ..errors import InputError
from . import samples as sample_mod
from .bdt import bdt_scores, train_bdt
from .learned import ModelArguments, predict, pretrain_masked, take, train_classifier
from .observables import FEATURES, feature_matrix, four_lepton_observables, peak_width
from .selection import SELECTIONS, FourLeptons, Selection4l, chosen_p4, select_4l

logger = logging.getLogger(__name__)

ROW_KEYS: tuple[str, ...] = ("bdt", "flat", "per_type", "vq", "fsq", "rvq", "pq", "hierarchical", "constituent",
                             "foundation")
TOKENIZER_ROWS: tuple[str, ...] = ("vq", "fsq", "rvq", "pq")
TOKENIZER_TYPES: tuple[str, ...] = ("electrons", "muons", "jets", "met")
"""Object types in the sequences (taus, photons and tracks are left out: none is selected on)."""
ROW_TITLES = {
    "bdt": "BDT on engineered features (m4l, mZ1, mZ2, pT4l, y4l, 5 angles)",
    "flat": "flat continuous (one shared projection + one-hot type)",
    "per_type": "per-type continuous projection + type embedding",
    "vq": "VQ-VAE tokens", "fsq": "FSQ tokens", "rvq": "RVQ tokens", "pq": "PQ tokens",
    "hierarchical": "hierarchical feature groups on {best} tokens",
    "constituent": "constituent gated residual on {best} tokens",
}


@dataclass
class TokenizerSettings:
    """Tokenizer training of the benchmark; ``per_method`` overrides fields for one method.

    RVQ quantizes the standardised features themselves (``encoder_type="identity"``: residual
    k-means, pT weighted 3): on the quick samples its decoded m4l peak is 1.57 GeV wide at
    4 x 256 codes and 1.21 GeV at 8 x 256 (original 1.15 GeV), against 1.71-1.91 and 1.28 GeV
    for the MLP autoencoder, whose decoder's precision (lepton eta to about 0.01) is a floor that
    more stages cannot pass. VQ-VAE, PQ and FSQ keep the MLP autoencoder (identity: PQ 4.6 GeV
    against 3.5, VQ and FSQ alike)."""

    codebook_size: int = 1024
    stages: int = 8
    steps: int = 3000
    batch_size: int = 2048
    pt_weight: float = 30.0
    encoder_type: str = "mlp"
    max_objects_per_type: int = 500_000
    per_method: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"rvq": {"encoder_type": "identity", "pt_weight": 3.0}})

    def for_method(self, method: str) -> "TokenizerSettings":
        """These settings with ``per_method[method]`` applied."""
        return replace(self, **self.per_method.get(method, {}))


@dataclass
class BenchmarkArguments:
    """Everything a run depends on (written into the report)."""

    events: int = 100_000
    background_events: int = 400_000
    unlabelled_events: int = 200_000
    labels: tuple[int, ...] = (1000, 10_000)
    seeds: int = 3
    rows: tuple[str, ...] = ROW_KEYS
    seed: int = 0
    detector: str = "atlas"
    workers: int = 1
    threads: int = 0
    data: tuple[str, ...] = ()
    unlabelled_data: tuple[str, ...] = ()
    quick: bool = False
    pretrain_on_selected: bool = False
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    bootstrap: int = 200
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)
    model: ModelArguments = field(default_factory=lambda: ModelArguments(
        hidden_size=128, num_hidden_layers=4, intermediate_size=512, epochs=40, batch_size=256, patience=6,
        pretrain_steps=20_000, pretrain_batch_size=512))
    selection: Selection4l | None = None
    """None: the four-lepton selection of the detector's experiment (``selection.SELECTIONS``)."""

    @property
    def cuts(self) -> Selection4l:
        return self.selection or SELECTIONS.get(self.detector, SELECTIONS["atlas"])


def quick_arguments(**overrides: Any) -> BenchmarkArguments:
    """``--quick``: a few thousand selected events, small tokenizers and models, two seeds."""
    base = BenchmarkArguments(
        events=6000, background_events=24_000, unlabelled_events=6000, labels=(100, 300, 1000), seeds=2,
        workers=2, threads=1, tokenizer=TokenizerSettings(codebook_size=256, stages=4, steps=800, batch_size=1024),
        model=ModelArguments(hidden_size=64, num_hidden_layers=2, intermediate_size=128, epochs=40, batch_size=128,
                             patience=8, pretrain_steps=400, pretrain_batch_size=128), quick=True)
    return replace(base, **overrides)


@dataclass
class RowResult:
    """One row of the table: test AUC and background rejection at 50% signal efficiency per seed,
    the bootstrap interval of the first seed's AUC, and that seed's ROC curve."""

    key: str
    name: str
    aucs: list[float]
    rejections: list[float]
    ci68: tuple[float, float]
    n_train: int
    seconds: float
    roc: tuple[np.ndarray, np.ndarray] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def auc(self) -> float:
        return float(np.mean(self.aucs))

    @property
    def auc_std(self) -> float:
        return float(np.std(self.aucs, ddof=1)) if len(self.aucs) > 1 else 0.0

    def record(self) -> dict:
        return {"name": self.name, "key": self.key, "auc": self.auc, "auc_std": self.auc_std,
                "auc_seeds": self.aucs, "auc_bootstrap_ci68": list(self.ci68),
                "rejection_at_50pct": float(np.mean(self.rejections)),
                "rejection_at_50pct_std": _std(self.rejections),
                "n_train": self.n_train, "seconds": round(self.seconds, 1), **self.extra}


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation; NaN where a value is infinite (no background left at 50%)."""
    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return 0.0
    return float(np.std(v, ddof=1)) if np.all(np.isfinite(v)) else float("nan")


@dataclass
class Prepared:
    """The selected events, labels, observables and the split (indices into the selected events)."""

    events: EventBatch
    labels: np.ndarray
    chosen: FourLeptons
    features: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    cutflow: dict
    samples: dict
    unlabelled: list[Path]


# --- samples and selection -----------------------------------------------------------------------
def prepare(args: BenchmarkArguments, work: Path, progress: bool) -> Prepared:
    """Generate (or read) the samples, select, compute the observables and split."""
    select = lambda b: select_4l(b, args.cuts)  # noqa: E731
    if args.data:
        events, y, cutflow = sample_mod.read_selected(args.data, select, progress=progress)
        described = {"files": list(args.data)}
        unlabelled = [Path(p) for p in args.unlabelled_data]
    else:
        requests = sample_mod.sample_requests(args.events, args.background_events,
                                              args.unlabelled_events if "foundation" in args.rows else 0, args.seed)
        t0 = time.perf_counter()
        reused = [r.process for r in requests
                  if sample_mod.is_complete(work / "samples" / f"{r.process}.pcdf", r, args.detector)]
        paths = sample_mod.generate_samples(requests, work / "samples", detector=args.detector, workers=args.workers,
                                            progress=progress)
        described = {"generated": [r.describe() for r in requests], "detector": args.detector, "pileup_mu": 0.0,
                     "generation_seconds": round(time.perf_counter() - t0, 1), "reused_from_an_earlier_run": reused}
        events, y, cutflow = sample_mod.read_selected([paths[sample_mod.SIGNAL], paths[sample_mod.BACKGROUND]], select,
                                                      progress=progress)
        unlabelled = [paths[sample_mod.UNLABELLED]] if sample_mod.UNLABELLED in paths else []
        unlabelled += [Path(p) for p in args.unlabelled_data]
    chosen = select_4l(events, args.cuts)
    assert chosen.passed.all()
    if y.sum() < 10 or (1 - y).sum() < 10:
        raise InputError(None, "events", f"only {int(y.sum())} signal and {int((1 - y).sum())} background events pass "
                                         "the selection: generate more (--events)")
    obs = four_lepton_observables(chosen_p4(events, _all_passed(chosen)))
    perm = np.random.default_rng(args.seed).permutation(len(y))
    n_train, n_val = int(args.split[0] * len(y)), int(args.split[1] * len(y))
    return Prepared(events, y, _all_passed(chosen), feature_matrix(obs), np.sort(perm[:n_train]),
                    np.sort(perm[n_train:n_train + n_val]), np.sort(perm[n_train + n_val:]), cutflow, described,
                    unlabelled)


def _all_passed(chosen: FourLeptons) -> FourLeptons:
    """The same choice, indexed over the selected events only."""
    return FourLeptons(np.ones(len(chosen.flavour), bool), chosen.flavour, chosen.slot, chosen.channel, chosen.cutflow)


def _subset(chosen: FourLeptons, index: np.ndarray) -> FourLeptons:
    return FourLeptons(np.ones(len(index), bool), chosen.flavour[index], chosen.slot[index], chosen.channel[index])


# --- rows ----------------------------------------------------------------------------------------
def _row(key: str, name: str, y_test: np.ndarray, scores: list[np.ndarray], n_train: int, seconds: float,
         n_bootstrap: int, extra: dict | None = None) -> RowResult:
    aucs = [metrics.roc_auc(y_test, s) for s in scores]
    rej = [metrics.rejection_at_efficiency(y_test, s, 0.5) for s in scores]
    _, *ci = metrics.bootstrap_ci(metrics.roc_auc, y_test, scores[0], n_bootstrap=n_bootstrap)
    fpr, tpr, _ = metrics.roc_curve(y_test, scores[0])
    logger.info("%s: AUC %.4f +- %.4f", name, np.mean(aucs), np.std(aucs))
    return RowResult(key, name, aucs, rej, tuple(ci), n_train, seconds, (fpr, tpr), extra or {})


def run_bdt(p: Prepared, args: BenchmarkArguments) -> RowResult:
    t0 = time.perf_counter()
    scores = []
    for s in range(args.seeds):
        clf = train_bdt(p.features[p.train], p.labels[p.train], p.features[p.val], p.labels[p.val], seed=s)
        scores.append(bdt_scores(clf, p.features[p.test]))
    return _row("bdt", ROW_TITLES["bdt"], p.labels[p.test], scores, len(p.train), time.perf_counter() - t0,
                args.bootstrap)


def _write_h5(batch: EventBatch, path: Path) -> Path:
    from ..data.h5 import H5Writer

    with H5Writer(path, batch.metadata, batch.layout) as w:
        w.write(batch)
    return path


def train_tokenizers(methods: Sequence[str], p: Prepared, args: BenchmarkArguments, work: Path,
                     progress: bool) -> tuple[dict[str, Any], dict[str, float]]:
    """One tokenizer per method, trained on the training split's selected events plus the
    unlabelled sample (no labels are used)."""
    from ..tokenization.training import TokenizerTrainingArguments, train_tokenizer

    train_h5 = _write_h5(p.events.select(p.train), work / "tokenizer_data" / "train_split.h5")
    paths = [train_h5, *p.unlabelled]
    out, seconds = {}, {}
    for m in methods:
        t0 = time.perf_counter()
        ts = args.tokenizer.for_method(m)
        targs = TokenizerTrainingArguments(
            method=m, codebook_size=ts.codebook_size if m != "fsq" else _fsq_size(ts.codebook_size),
            num_stages=1 if m == "vq" else ts.stages, types=TOKENIZER_TYPES, steps=ts.steps,
            batch_size=ts.batch_size, pt_loss_weight=ts.pt_weight, encoder_type=ts.encoder_type,
            max_objects_per_type=ts.max_objects_per_type,
            checkpoint_every=0, seed=args.seed)
        out[m] = train_tokenizer(paths, work / "tokenizers" / m, targs, progress=progress)
        if "constituents" not in out[m].sub_scalers and "common/constituents/mask" in p.events:
            out[m].fit_sub_scalers(p.events.select(p.train))
        seconds[m] = round(time.perf_counter() - t0, 1)
    return out, seconds


def _fsq_size(codebook_size: int) -> int:
    """FSQ needs a product of levels: the nearest size the quantizer's own rule accepts."""
    from ..tokenization.configuration_quantizer import fsq_levels_for

    return int(np.prod(fsq_levels_for(codebook_size)))


def encode(tokenizer: Any, events: EventBatch, constituents: bool = False) -> dict[str, torch.Tensor]:
    """The tokenizer's model inputs with ``return_features``, plus ``token_kinematics``: the
    kinematics decoded from the tokens alone (what the token rows may know of the objects)."""
    enc = dict(tokenizer(events, return_tensors="pt", return_features=True, return_constituents=constituents))
    enc["token_kinematics"] = torch.from_numpy(tokenizer.decode_kinematics(enc["input_ids"]))
    return enc



def encode_stream(tokenizer: Any, paths: Sequence[str | os.PathLike], keys: Sequence[str], step: int = 20_000,
                  progress: bool = True) -> dict[str, torch.Tensor]:
    """Tokenize every event of the files chunk by chunk, keeping only ``keys``, padded to the
    tokenizer's longest sequence (memory: the kept tensors only, whatever the files hold)."""
    from tqdm.auto import tqdm

    from ..data.io import open_events

    parts: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    for path in paths:
        source = open_events(path)
        try:
            for batch in tqdm(source.iter_batches(step), desc=f"tokenize {Path(path).name}", disable=not progress,
                              leave=False):
                enc = tokenizer(batch, return_tensors="pt", return_features=True, padding="max_length",
                                max_length=tokenizer.max_sequence_length)
                for k in keys:
                    parts[k].append(enc[k])
        finally:
            source.close()
    return {k: torch.cat(v) for k, v in parts.items()}


INPUT_KEYS = {
    "tokens": ("input_ids", "token_type_ids", "attention_mask", "object_index", "token_kinematics"),
    "flat": ("input_ids", "token_type_ids", "attention_mask", "object_index", "kinematics"),
    "per_type": ("input_ids", "token_type_ids", "attention_mask", "object_index", "features", "kinematics"),
    "hierarchical": ("input_ids", "token_type_ids", "attention_mask", "features", "object_index", "token_kinematics"),
    "constituent": ("input_ids", "token_type_ids", "attention_mask", "object_index", "constituents",
                    "constituents_mask", "token_kinematics"),
}
"""What each kind of row reads. Token rows get ``token_kinematics`` (decoded from their tokens)
as ``kinematics``; the continuous rows the original kinematics."""


def row_inputs(enc: Mapping[str, torch.Tensor], inputs: str) -> dict[str, torch.Tensor]:
    """The model inputs of a row from :func:`encode`'s output (``token_kinematics`` renamed)."""
    return {("kinematics" if k == "token_kinematics" else k): enc[k] for k in INPUT_KEYS[inputs]}


def model_config(tokenizer: Any, args: BenchmarkArguments, input_mode: str = "tokens", variant: str = "flat",
                 num_labels: int = 1):
    from ..modeling import EventTransformerConfig, config_kwargs_from_tokenizer

    kw = config_kwargs_from_tokenizer(tokenizer)
    return EventTransformerConfig(**kw, **args.model.config_kwargs(), input_mode=input_mode, variant=variant,
                                  num_labels=num_labels,
                                  max_position_embeddings=max(64, int(tokenizer.max_sequence_length)))


def run_transformer_row(key: str, name: str, p: Prepared, enc: dict[str, torch.Tensor], config_fn: Callable[[], Any],
                        inputs: str, args: BenchmarkArguments, progress: bool, extra: dict | None = None) -> RowResult:
    from ..modeling import EventTransformerForSequenceClassification

    t0 = time.perf_counter()
    data = row_inputs(enc, inputs)
    train, val, test = take(data, p.train), take(data, p.val), take(data, p.test)
    scores, info = [], []
    for s in range(args.seeds):
        torch.manual_seed(s)
        model = EventTransformerForSequenceClassification(config_fn())
        model, log = train_classifier(model, train, p.labels[p.train], val, p.labels[p.val], args.model, seed=s,
                                      desc=f"{key} seed {s}", progress=progress)
        scores.append(predict(model, test))
        info.append({"epochs": log["epochs"], "best_val_auc": log["best_val_auc"]})
    n_params = sum(x.numel() for x in model.parameters())
    return _row(key, name, p.labels[p.test], scores, len(p.train), time.perf_counter() - t0, args.bootstrap,
                {"parameters": int(n_params), "trainings": info, **(extra or {})})


def m4l_from_tokens(tokenizer: Any, enc: dict[str, torch.Tensor], p: Prepared) -> np.ndarray:
    """m4l [GeV] of the selected signal events recomputed from the decoded tokens of the same four
    leptons the selection chose on the original events."""
    sig = np.nonzero(p.labels == 1)[0]
    decoded = tokenizer.decode_events(enc["input_ids"][torch.as_tensor(sig)])
    return four_lepton_observables(chosen_p4(decoded, _subset(p.chosen, sig)))["m4l"]


def run_foundation(p: Prepared, tokenizer: Any, method: str, enc: dict[str, torch.Tensor],
                   args: BenchmarkArguments, progress: bool) -> tuple[list[RowResult], dict]:
    """Pretrain on the unlabelled events, then fine-tune at each labelled-set size against the same
    architecture from scratch. The validation events for early stopping are capped at a third
    of the labelled-set size (at least 100), so that small label counts stay honest."""
    from ..modeling import EventTransformerForMaskedEventModeling, EventTransformerForSequenceClassification

    if not p.unlabelled:
        raise InputError(None, "unlabelled", "the foundation row needs an unlabelled sample (mix)")
    t0 = time.perf_counter()
    keys = ("input_ids", "token_type_ids", "attention_mask", "object_index")  # kinematics: from the masked ids
    pre_inputs = encode_stream(tokenizer, p.unlabelled, keys, progress=progress)
    if args.pretrain_on_selected:  # the training split's selected events too, without their labels
        width = pre_inputs["input_ids"].shape[1]
        own = tokenizer(p.events.select(p.train), return_tensors="pt", return_features=True, padding="max_length",
                        max_length=width)
        pre_inputs = {k: torch.cat([pre_inputs[k], own[k]]) for k in keys}
    cfg = model_config(tokenizer, args)
    torch.manual_seed(args.seed)
    pretrained = EventTransformerForMaskedEventModeling(cfg)
    pre_log = pretrain_masked(pretrained, pre_inputs, args.model, seed=args.seed,
                              token_id_ranges=cfg.token_id_ranges, kinematics_fn=tokenizer.decode_kinematics,
                              progress=progress, desc="pretrain (mix)")
    pre_log.update({"events": int(len(pre_inputs["input_ids"])),
                    "with_selected_training_events": args.pretrain_on_selected, "seconds": round(time.perf_counter() - t0, 1)})
    data = row_inputs(enc, "tokens")
    test = take(data, p.test)
    rows = []
    rng = np.random.default_rng(args.seed + 17)
    train_perm, val_perm = rng.permutation(p.train), rng.permutation(p.val)
    for n_labels in args.labels:
        if n_labels > len(p.train):
            logger.warning("skipping %d labels: only %d training events", n_labels, len(p.train))
            continue
        tr = np.sort(train_perm[:n_labels])
        va = np.sort(val_perm[:max(100, n_labels // 3)])
        for mode in ("fine-tuned", "scratch"):
            t1 = time.perf_counter()
            scores = []
            for s in range(args.seeds):
                torch.manual_seed(s)
                model = EventTransformerForSequenceClassification(model_config(tokenizer, args))
                loaded: set[str] = set()
                if mode == "fine-tuned":
                    weights = pretrained.transformer.state_dict()
                    missing, _ = model.transformer.load_state_dict(weights, strict=False)
                    assert all(k.startswith("pooler") for k in missing), missing
                    loaded = {f"transformer.{k}" for k in weights}
                model, _ = train_classifier(
                    model, take(data, tr), p.labels[tr], take(data, va), p.labels[va], args.model, seed=s,
                    learning_rate=args.model.finetune_learning_rate if mode == "fine-tuned" else None,
                    pretrained=loaded,
                    desc=f"{mode} {n_labels} seed {s}", progress=progress)
                scores.append(predict(model, test))
            name = f"foundation {mode} ({method} tokens), {n_labels} labels" if mode == "fine-tuned" \
                else f"scratch ({method} tokens), {n_labels} labels"
            rows.append(_row(f"foundation_{'ft' if mode == 'fine-tuned' else 'scratch'}_{n_labels}", name,
                             p.labels[p.test], scores, n_labels, time.perf_counter() - t1, args.bootstrap,
                             {"labels": n_labels, "mode": mode, "validation_events": int(len(va))}))
    return rows, pre_log


# --- the whole benchmark -------------------------------------------------------------------------
def run_benchmark(args: BenchmarkArguments, out: str | os.PathLike, progress: bool = True) -> dict:
    """Run every requested row and write the report to ``out``; returns the report dict."""
    from .report import write_report

    unknown = [r for r in args.rows if r not in ROW_KEYS]
    if unknown:
        raise InputError(None, "rows", f"unknown row(s) {unknown}; choose from {list(ROW_KEYS)}")
    out = Path(out)
    work = out / "work"
    if args.threads > 0:  # small models train faster on one thread than on cores shared with others
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    p = prepare(args, work, progress)
    timings["samples_and_selection"] = round(time.perf_counter() - t0, 1)
    rows: list[RowResult] = []
    if "bdt" in args.rows:
        rows.append(run_bdt(p, args))
    token_rows = [m for m in TOKENIZER_ROWS if m in args.rows]
    needs_best = any(r in args.rows for r in ("hierarchical", "constituent", "foundation"))
    methods = list(token_rows)
    if any(r in args.rows for r in ("flat", "per_type")) and "vq" not in methods:
        methods.insert(0, "vq")
    if needs_best and not token_rows:
        methods.append("rvq")
    t0 = time.perf_counter()
    tokenizers, tok_seconds = train_tokenizers(methods, p, args, work, progress) if methods else ({}, {})
    timings["tokenizers"] = round(time.perf_counter() - t0, 1)
    encoded = {m: encode(tok, p.events) for m, tok in tokenizers.items()}
    m4l = {"original": four_lepton_observables(chosen_p4(p.events, p.chosen))["m4l"][p.labels == 1]}
    for m, tok in tokenizers.items():
        m4l[m] = m4l_from_tokens(tok, encoded[m], p)
    widths = {k: peak_width(v) for k, v in m4l.items()}
    if "vq" in tokenizers:
        for key, mode in (("flat", "flat"), ("per_type", "per_type")):
            if key in args.rows:
                rows.append(run_transformer_row(
                    key, ROW_TITLES[key], p, encoded["vq"],
                    lambda mode=mode: model_config(tokenizers["vq"], args, mode), mode, args, progress,
                    {"features_from": "the VQ tokenizer's standardised inputs (1 token an object)"}))
    for m in token_rows:
        rows.append(run_transformer_row(m, ROW_TITLES[m], p, encoded[m], lambda m=m: model_config(tokenizers[m], args),
                                        "tokens", args, progress, {"tokenizer_seconds": tok_seconds.get(m)}))
    token_results = {r.key: r.auc for r in rows if r.key in TOKENIZER_ROWS}
    best = max(token_results, key=token_results.get) if token_results else methods[-1] if methods else None
    if "hierarchical" in args.rows:
        rows.append(run_transformer_row(
            "hierarchical", ROW_TITLES["hierarchical"].format(best=best.upper()), p, encoded[best],
            lambda: model_config(tokenizers[best], args, "tokens", "hierarchical"), "hierarchical", args, progress))
    if "constituent" in args.rows:
        if "common/constituents/mask" not in p.events:
            raise InputError(None, "common/constituents/mask", "the constituent row needs events with jet constituents")
        enc_c = encode(tokenizers[best], p.events, constituents=True)
        n_jets = int((enc_c["constituents_mask"].any(-1) & (enc_c["token_type_ids"] == 4)).sum())
        rows.append(run_transformer_row(
            "constituent", ROW_TITLES["constituent"].format(best=best.upper()), p, enc_c,
            lambda: model_config(tokenizers[best], args, "tokens", "constituent"), "constituent", args, progress,
            {"jet_tokens_with_constituents_per_event": n_jets / len(p.labels)}))
        del enc_c
    pretraining = None
    if "foundation" in args.rows:
        t0 = time.perf_counter()
        found, pretraining = run_foundation(p, tokenizers[best], best.upper(), encoded[best], args, progress)
        rows += found
        timings["foundation"] = round(time.perf_counter() - t0, 1)
    timings["total"] = round(time.perf_counter() - t_start, 1)
    report = {
        "arguments": _jsonable(asdict(args)),
        "selection": args.cuts.describe(),
        "features": list(FEATURES),
        "samples": p.samples,
        "cutflow": p.cutflow,
        "selected": {"signal": int(p.labels.sum()), "background": int((1 - p.labels).sum()),
                     "train": int(len(p.train)), "validation": int(len(p.val)), "test": int(len(p.test))},
        "channels": {c: int((p.chosen.channel == i).sum()) for i, c in enumerate(("4e", "4mu", "2e2mu"))},
        "best_tokenizer": best,
        "tokenizer_seconds": tok_seconds,
        "m4l_peak": widths,
        "pretraining": pretraining,
        "timings_seconds": timings,
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    write_report(report, rows, m4l, out)
    return report


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x
