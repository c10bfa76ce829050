"""What a run of ``treasure benchmark hzz4l`` depends on: the samples and their seeds, the bit
budgets of the tokenizations, the models' sizes and training, and the three configurations
(``quick``, ``medium``, ``full``).

**Equal information.** Every tokenization method runs at the same bits per object
(:data:`BIT_BUDGETS`): VQ with one codebook of ``2^bits`` codes; RVQ and PQ with ``bits / 8``
stages (groups) of 256 codes; FSQ with ``bits / 8`` codebooks of levels (8, 8, 4) = 256 codes. A
budget that needs more codes in one codebook than the run's ``max_codebook`` (at most
:data:`MAX_CODEBOOK`: VQ above 16 bits) is not run, and the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from .selection import SELECTIONS, Selection4l

BIT_BUDGETS: tuple[int, ...] = (8, 16, 32, 64)
METHODS: tuple[str, ...] = ("vq", "fsq", "rvq", "pq")
STAGE_BITS = 8
"""Bits of one stage (RVQ), group (PQ) or codebook (FSQ): 256 codes."""
FSQ_LEVELS: tuple[int, ...] = (8, 8, 4)
"""FSQ levels of one 8-bit codebook (8 x 8 x 4 = 256 codes exactly)."""
MAX_CODEBOOK = 1 << 16
"""The largest single codebook any configuration trains (VQ at 16 bits)."""
ENCODERS: dict[str, tuple[str, ...]] = {
    "vq": ("mlp", "identity"),
    "rvq": ("mlp", "identity"),
    "pq": ("mlp", "identity"),
    "fsq": ("mlp",),
}
"""Encoders each method may use, chosen per method on the validation events (the decoded m4l
width of the validation signal, at :data:`ENCODER_CHOICE_BITS`); FSQ's rounding grid needs a
learned encoder that maps into its bounded levels."""
ENCODER_CHOICE_BITS = 32


@dataclass(frozen=True)
class Budget:
    """One tokenization at one bit budget."""

    method: str
    bits: int
    codebook_size: int
    stages: int
    fsq_levels: tuple[int, ...] | None = None

    @property
    def key(self) -> str:
        return f"{self.method}{self.bits}"

    @property
    def bits_per_object(self) -> float:
        """log2 of the distinct codes an object can get: what the report quotes."""
        per_stage = math.prod(self.fsq_levels) if self.fsq_levels else self.codebook_size
        return self.stages * math.log2(per_stage)


def budget(method: str, bits: int, max_codebook: int = MAX_CODEBOOK) -> Budget | None:
    """The configuration of ``method`` at ``bits`` per object, or None where it needs a codebook of
    more than ``max_codebook`` codes."""
    if method == "vq":
        return Budget(method, bits, 1 << bits, 1) if (1 << bits) <= min(max_codebook, MAX_CODEBOOK) else None
    if bits % STAGE_BITS:
        raise ValueError(f"bit budgets are multiples of {STAGE_BITS}, not {bits}")
    stages = bits // STAGE_BITS
    if method == "fsq":
        return Budget(method, bits, math.prod(FSQ_LEVELS), stages, FSQ_LEVELS)
    if method in ("rvq", "pq"):
        return Budget(method, bits, 1 << STAGE_BITS, stages)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


@dataclass(frozen=True)
class TokenizerSettings:
    """How every tokenizer of a run is trained (one set for all methods and budgets)."""

    steps: int = 3000
    batch_size: int = 2048
    pt_weight: float = 3.0
    latent_dim: int = 12
    hidden_size: int = 128
    max_objects_per_type: int = 500_000


@dataclass(frozen=True)
class ModelSettings:
    """Sizes and training of every learned row (one set for all)."""

    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 512
    dropout: float = 0.1
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    patience: int = 6
    pair_features: str = "kinematic"
    combinations: int = 8
    pretrain_steps: int = 20_000
    pretrain_batch_size: int = 512
    pretrain_lr: float = 1e-3
    mask_rate: float = 0.3
    finetune_lrs: tuple[float, ...] = (1e-3, 3e-4, 1e-4)
    """Learning rates of the pretrained encoder tried at each label count; the validation AUC picks one."""


@dataclass(frozen=True)
class BenchmarkArguments:
    """Everything a run depends on (written into ``results.json``)."""

    configuration: str = "full"
    events: int = 100_000
    background_events: int = 400_000
    test_events: int = 40_000
    """Generated signal events of the test sample (background four times as many): >= 10,000
    selected events, >= 4,000 per class, in every configuration but quick."""
    unlabelled_events: int = 200_000
    labels: tuple[int, ...] = (100, 300, 1000, 3000, 10_000)
    seeds: int = 3
    bits: tuple[int, ...] = BIT_BUDGETS
    methods: tuple[str, ...] = METHODS
    max_codebook: int = MAX_CODEBOOK
    """Budgets needing a larger single codebook are skipped (VQ: ``2^bits`` codes)."""
    rows: tuple[str, ...] = ("bdt", "continuous", "tokens", "hierarchical", "foundation")
    seed: int = 0
    """Seed of the development samples (train and validation) and of the split between them."""
    test_seed: int = 1000
    """Seed of the test samples: generated separately and used for nothing but the test scores."""
    validation_fraction: float = 0.25
    detector: str = "atlas"
    workers: int = 1
    threads: int = 0
    bootstrap: int = 1000
    event_observables: bool = True
    """The learned rows that read kinematics also read the BDT's observables (m4l, mZ1, mZ2, pT4l,
    y4l, five angles) of the selected quadruplet, computed from the kinematics they read: the
    original ones (``continuous``) or those decoded from the token ids (``ids+decoded``). Rows of
    ids alone read none."""
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    selection: Selection4l | None = None

    @property
    def cuts(self) -> Selection4l:
        return self.selection or SELECTIONS.get(self.detector, SELECTIONS["atlas"])

    def budgets(self) -> list[Budget]:
        return [b for m in self.methods for bits in self.bits if (b := budget(m, bits, self.max_codebook)) is not None]

    def skipped_budgets(self) -> list[dict[str, Any]]:
        return [
            {
                "method": m,
                "bits": bits,
                "why": f"one codebook of 2^{bits} codes (more than {min(self.max_codebook, MAX_CODEBOOK)})",
            }
            for m in self.methods
            for bits in self.bits
            if budget(m, bits, self.max_codebook) is None
        ]


def quick_arguments(**overrides: Any) -> BenchmarkArguments:
    """``--quick`` (``make demo``): a few thousand selected events, two budgets, two seeds, small
    models, no codebook above 256 codes (VQ's encoder is chosen at 8 bits, as in ``--medium``);
    about a quarter of an hour on 2 cores. Its test sample is smaller than the protocol's."""
    base = BenchmarkArguments(
        configuration="quick",
        events=3000,
        background_events=12_000,
        test_events=2000,
        unlabelled_events=3000,
        labels=(100, 1000),
        seeds=2,
        bits=(8, 32),
        max_codebook=1 << STAGE_BITS,
        workers=2,
        threads=1,
        bootstrap=300,
        tokenizer=TokenizerSettings(steps=400, batch_size=1024, hidden_size=64),
        model=ModelSettings(
            hidden_size=32,
            layers=2,
            heads=4,
            intermediate_size=64,
            epochs=15,
            batch_size=128,
            patience=4,
            pretrain_steps=200,
            pretrain_batch_size=128,
            finetune_lrs=(3e-4,),
        ),
    )
    return replace(base, **overrides)


def medium_arguments(**overrides: Any) -> BenchmarkArguments:
    """``--medium``: the README's numbers; every budget but VQ at 16 bits, three seeds, a test
    sample of more than 10,000 selected events; resumable (a rerun with the same ``--out`` skips
    what is done; ``--rows``, ``--methods`` and ``--bits`` take pieces). On 2 cores (two worker
    processes): 1 h 30 min from nothing (samples and selection 13 minutes, the 42 tokenizers and
    78 token fine-tunings 58, the continuous and hierarchical rows 17, the report 2). No codebook
    holds more than 256 codes, as in every other method: VQ's one codebook of 65,536 codes at 16
    bits (the library's EMA update builds a batch x 65,536 one-hot each step) had not finished its
    first tokenizer after 47 minutes (34 CPU minutes on a shared core)."""
    base = BenchmarkArguments(
        configuration="medium",
        rows=("bdt", "continuous", "tokens", "hierarchical"),
        events=12_000,
        background_events=48_000,
        test_events=20_000,
        unlabelled_events=20_000,
        labels=(100, 300, 1000, 3000),
        seeds=3,
        max_codebook=1 << STAGE_BITS,
        workers=2,
        threads=1,
        bootstrap=1000,
        tokenizer=TokenizerSettings(steps=800, batch_size=1024, hidden_size=64),
        model=ModelSettings(
            hidden_size=64,
            layers=2,
            heads=4,
            intermediate_size=128,
            epochs=12,
            batch_size=128,
            patience=3,
            pretrain_steps=1500,
            pretrain_batch_size=128,
            finetune_lrs=(1e-3, 1e-4),
        ),
    )
    return replace(base, **overrides)


CONFIGURATIONS = {
    "quick": quick_arguments,
    "medium": medium_arguments,
    "full": lambda **kw: replace(BenchmarkArguments(), **kw),
}
