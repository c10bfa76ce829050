"""Tiny samples and a tiny tokenizer shared by the datasets, hub and training tests.

``signal`` events carry more muons than ``background`` ones (Poisson means 2.5 and 0.3): a
classifier that reads the muon tokens separates them."""

from __future__ import annotations

from pathlib import Path

from treasure_hf.data.pcdf import write_pcdf
from treasure_hf.data.synthetic import random_events
from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

TYPES = ("electrons", "muons", "jets", "met")
NO_EXTRA = {"taus": 0.0, "photons": 0.0, "tracks": 0.0}


def write_samples(directory: Path, n_events: int = 200, seed: int = 0) -> dict[str, Path]:
    """Two PCDF samples, ``signal.pcdf`` and ``background.pcdf``, of ``n_events`` each."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, (name, muons) in enumerate((("signal", 2.5), ("background", 0.3))):
        ev = random_events(
            n_events, seed + k, layers=("atlas", "truth"), multiplicity={**NO_EXTRA, "muons": muons, "jets": 3.0}
        )
        ev.event["truth/event/process_id"][:] = 1 - k
        out[name] = write_pcdf(directory / f"{name}.pcdf", ev, events_per_part=max(1, n_events // 2))
    return out


def tiny_tokenizer(data: list[Path], out: Path, steps: int = 30):
    """An RVQ tokenizer with 2 stages of 16 codes per type, trained for a few steps."""
    args = TokenizerTrainingArguments(
        method="rvq",
        codebook_size=16,
        num_stages=2,
        latent_dim=4,
        hidden_size=16,
        num_hidden_layers=1,
        types=TYPES,
        steps=steps,
        batch_size=128,
        learning_rate=3e-3,
        checkpoint_every=0,
        log_every=1000,
    )
    return train_tokenizer(data, out, args, progress=False)


def tokenized_pair(root: Path) -> tuple[Path, dict[str, Path]]:
    """:func:`write_samples` (120 events each) and a :func:`tiny_tokenizer` under ``root``, and the
    samples tokenized twice: ``plain`` and ``continuous`` (``--with-continuous``, the original
    kinematics as columns). Returns ``root`` (the tokenizer is ``root/tok``) and the two data sets."""
    from treasure_hf.cli import main

    samples = write_samples(root / "samples", n_events=120)
    tiny_tokenizer(list(samples.values()), root / "tok", steps=5)
    out = {}
    for name, extra in (("plain", []), ("continuous", ["--with-continuous"])):
        out[name] = root / name
        assert (
            main(
                [
                    "-q",
                    "tokenize",
                    "--tokenizer",
                    str(root / "tok"),
                    "--data",
                    str(samples["signal"]),
                    str(samples["background"]),
                    "--out",
                    str(out[name]),
                    "--split",
                    "train=0.6,validation=0.2,test=0.2",
                    "--label",
                    f"{samples['signal']}=signal",
                    "--label",
                    f"{samples['background']}=background",
                    *extra,
                ]
            )
            == 0
        )
    return root, out


def isolated_hf_cache(directory: Path):
    """A context in which ``datasets`` (here and in child processes) caches under ``directory``,
    not in the user's shared cache where other runs' folders of the same name would collide."""
    import contextlib

    import datasets
    import pytest

    @contextlib.contextmanager
    def ctx():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HF_DATASETS_CACHE", str(directory))
            mp.setenv("HF_HOME", str(directory / "home"))
            mp.setattr(datasets.config, "HF_DATASETS_CACHE", directory)
            yield directory

    return ctx()
