"""The benchmark's samples: signal ``hzz4l``, background ``zz4l`` and unlabelled ``mix`` events
generated with Pythia 8 and the parametric detector, or labelled events read from files.

The background is the irreducible q qbar -> ZZ* -> 4l with its generated m(4l) (Pythia's mHat)
narrowed to 110-135 GeV around the selection window 115 < m4l < 130 GeV
(:data:`BACKGROUND_SETTINGS`), so that a generated event is more often selected; Z + jets and
t tbar reach the four-lepton selection only through non-prompt leptons, too rarely to populate a
sample of this size (not measured here), and are left out, as is gg -> ZZ*, which Pythia 8 does
not generate: the background is q qbar -> ZZ* alone (README, "What the background leaves out").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.events import EventBatch
from ..data.generate import processes
from ..errors import InputError

logger = logging.getLogger(__name__)

SIGNAL, BACKGROUND, UNLABELLED = "hzz4l", "zz4l", "mix"
SIGNAL_PROCESS_ID = processes.PROCESSES[SIGNAL].process_id
BACKGROUND_SETTINGS: tuple[str, ...] = ("PhaseSpace:mHatMin = 110.", "PhaseSpace:mHatMax = 135.")
"""Pythia settings added to the ``zz4l`` preset (applied after it, so they win)."""
PROCESS_KEY = "truth/event/process_id"


@dataclass(frozen=True)
class SampleRequest:
    """One generated sample: ``process`` preset, events, seed, extra Pythia settings."""

    process: str
    n_events: int
    seed: int
    extra: tuple[str, ...] = ()
    tag: str = ""
    """``test`` for the test samples (another file name: ``PROCESS-test.pcdf``)."""

    @property
    def name(self) -> str:
        return f"{self.process}-{self.tag}" if self.tag else self.process

    def describe(self) -> dict:
        return {
            "process": self.process,
            "events": self.n_events,
            "seed": self.seed,
            "role": self.tag or "development",
            "doc": processes.PROCESSES[self.process].doc
            if self.process in processes.PROCESSES
            else "weighted blend: " + ", ".join(f"{k} {v:g}" for k, v in processes.MIX_WEIGHTS.items()),
            "pythia_settings": [
                *(processes.PROCESSES[self.process].settings if self.process in processes.PROCESSES else ()),
                *self.extra,
            ],
        }


def sample_requests(n_signal: int, n_background: int, n_unlabelled: int, seed: int) -> list[SampleRequest]:
    """The three generated samples, each seeded from ``seed`` (signal seed, +1, +2)."""
    out = [
        SampleRequest(SIGNAL, n_signal, seed),
        SampleRequest(BACKGROUND, n_background, seed + 1, BACKGROUND_SETTINGS),
    ]
    if n_unlabelled > 0:
        out.append(SampleRequest(UNLABELLED, n_unlabelled, seed + 2))
    return out


def test_requests(n_signal: int, n_background: int, seed: int) -> list[SampleRequest]:
    """The test samples: signal and background generated from their own ``seed`` (and +1),
    written apart from the development samples and read for the test scores alone."""
    return [
        SampleRequest(SIGNAL, n_signal, seed, tag="test"),
        SampleRequest(BACKGROUND, n_background, seed + 1, BACKGROUND_SETTINGS, tag="test"),
    ]


def generate_samples(
    requests: Sequence[SampleRequest],
    out_dir: str | os.PathLike,
    *,
    detector: str = "atlas",
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Path]:
    """Generate each request into ``out_dir/PROCESS.pcdf`` (resumed where a run stopped; a complete
    sample with the same settings is reused)."""
    from ..data.generate.generator import generate

    paths = {}
    for r in requests:
        path = Path(out_dir) / f"{r.name}.pcdf"
        if not is_complete(path, r, detector):
            generate(
                r.process,
                r.n_events,
                r.seed,
                path,
                detector=detector,
                extra=r.extra,
                workers=workers,
                progress=progress,
            )
        else:
            logger.info("reusing %s (generated before with the same settings)", path)
        paths[r.name] = path
    return paths


def is_complete(path: Path, r: SampleRequest, detector: str) -> bool:
    """True if ``path`` is a finished PCDF generated with exactly these settings."""
    import json

    from ..data.generate.generator import DEFAULT_SHARD_SIZE, sample_metadata

    manifest = path / "pcdf.json"
    if not manifest.exists():
        return False
    try:
        old = json.loads(manifest.read_text())["metadata"]["generator"]
    except (KeyError, json.JSONDecodeError, TypeError):
        return False
    want = sample_metadata(r.process, r.n_events, r.seed, detector, 0.0, r.extra, DEFAULT_SHARD_SIZE)["generator"]
    return json.loads(json.dumps(old)) == json.loads(json.dumps(want))


def read_selected(
    paths: Sequence[str | os.PathLike],
    select: Callable[[EventBatch], np.ndarray],
    *,
    step: int = 20_000,
    progress: bool = True,
    signal_process_id: int = SIGNAL_PROCESS_ID,
) -> tuple[EventBatch, np.ndarray, dict[str, dict[str, int]]]:
    """Stream every file (HDF5 or PCDF) in chunks of ``step`` events and keep the events where
    ``select(batch)`` (a bool array, or an object with ``passed`` and ``cutflow``) is true: memory
    grows with the selected events only. Returns them, their labels (1 where
    ``truth/event/process_id`` is ``signal_process_id``, by default that of ``hzz4l``) and the
    cutflow summed per class."""
    from tqdm.auto import tqdm

    from ..data.io import open_events

    kept, labels = [], []
    cutflow: dict[str, dict[str, int]] = {"signal": {}, "background": {}}
    for p in paths:
        source = open_events(p)
        try:
            bar = tqdm(
                total=source.n_events, desc=f"select {Path(p).name}", unit="ev", disable=not progress, leave=False
            )
            for batch in source.iter_batches(step):
                if PROCESS_KEY not in batch:
                    raise InputError(p, PROCESS_KEY, "labelled benchmark input needs the generator's process id")
                y = (np.asarray(batch[PROCESS_KEY]) == signal_process_id).astype(np.int64)
                for name, lab in (("signal", 1), ("background", 0)):
                    if (y == lab).any():
                        for k, v in select(batch.select(y == lab)).cutflow.items():
                            cutflow[name][k] = cutflow[name].get(k, 0) + int(v)
                passed = select(batch).passed
                kept.append(batch.select(passed))
                labels.append(y[passed])
                bar.update(batch.n_events)
            bar.close()
        finally:
            source.close()
    batch = concat_common(kept)
    y = np.concatenate(labels)
    if y.all() or not y.any():
        raise InputError(
            paths[0],
            PROCESS_KEY,
            f"the benchmark needs selected signal (process id {signal_process_id}) and background events",
        )
    return batch, y, cutflow


def concat_common(batches: Sequence[EventBatch]) -> EventBatch:
    """The events of every batch, with the keys all of them hold (samples of two detectors share
    the common layer, not their experiment layers)."""
    common = set.intersection(*(set(b.keys()) for b in batches))
    kept = [EventBatch({k: b[k] for k in b.keys() if k in common}, b.metadata) for b in batches]
    return EventBatch.concat(kept) if len(kept) > 1 else kept[0]
