"""Generate a labelled sample: seeded shards, run serially or on Dask, written as PCDF.

The sample is cut into shards of ``shard_size`` events. Shard ``k`` seeds everything it draws
(Pythia's hard-scatter and pile-up seeds, the detector's numpy generator, the mix of processes)
from ``(seed, k)`` alone, and shards are written in order, one PCDF part each; so the output is
bit-identical whatever the number of workers or the scheduler. An interrupted run is resumed:
finished parts are kept and generation continues with the next shard.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ...errors import ArgumentError, InputError, positive
from ...parallel import iter_tasks
from .. import schema
from ..events import Layout, RaggedEvents
from ..metadata import make_metadata
from ..outputs import check_destination, partial_dir
from ..pcdf import KV_METADATA, PCDFWriter, part_name
from . import processes
from .detector import DETECTORS, EE_SIMPLE_MODELS, SIMPLE_MODELS
from .pythia import PYTHIA_MAX_SEED, PythiaRun, concat_records, take_events
from .reco import EventInfo, final_state, missing_fields, reconstruct

logger = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 1000
"""Events per shard (one PCDF part, one task). A shard holds the full Pythia records of its events
in memory (about 0.25 MB an event without pile-up); ``mix`` initialises one Pythia instance per
preset in every shard (about 0.5 s each)."""

_PILEUP_STREAM = 1_000
"""Seed-sequence stream of the pile-up instance (component streams are 0, 1, ...)."""
_DETECTOR_STREAM = 2_000
_MIX_STREAM = 3_000


@dataclass(frozen=True)
class ShardTask:
    """Everything one shard needs; ``extra`` are user Pythia settings applied after the preset."""

    process: str
    shard: int
    n_events: int
    first_event: int
    seed: int
    detector: str = "atlas"
    pileup: float = 0.0
    extra: tuple[str, ...] = ()


def _seed(seed: int, shard: int, stream: int) -> int:
    state = np.random.SeedSequence([int(seed), int(shard), int(stream)]).generate_state(1, np.uint64)[0]
    return int(state % (PYTHIA_MAX_SEED + 1))


def _rng(seed: int, shard: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(shard), int(stream)]))


def generate_shard(task: ShardTask, timings: dict[str, float] | None = None) -> RaggedEvents:
    """Generate and reconstruct the events of one shard (module level, so Dask can ship it).

    ``timings``, when given, receives the seconds spent in ``init`` (Pythia initialisation),
    ``pythia`` (event generation and reading the records) and ``detector`` (the response, jet
    clustering, isolation and MET)."""
    clock = _Clock(timings)
    det = DETECTORS[task.detector]
    comps = processes.components(task.process)
    names = list(comps)
    mix_rng = _rng(task.seed, task.shard, _MIX_STREAM)
    if len(names) == 1:
        n_per = {names[0]: task.n_events}
    else:
        weights = np.array([comps[n] for n in names])
        n_per = {n: int(k) for n, k in zip(names, mix_rng.multinomial(task.n_events, weights / weights.sum()))}
    records, pids = [], []
    for name in names:
        if n_per[name] == 0:
            continue
        stream = list(processes.PROCESSES).index(name)
        with clock("init"):
            run = PythiaRun(processes.settings_for(name, task.extra), _seed(task.seed, task.shard, stream))
        with clock("pythia"):
            records.append(run.generate(n_per[name]))
        pids.append(np.full(records[-1].n_events, processes.PROCESSES[name].process_id, np.int16))
    hard = concat_records(records) if len(records) > 1 else records[0]
    process_id = np.concatenate(pids)
    if len(records) > 1:  # blend: the processes of a mix are interleaved in a seeded random order
        order = mix_rng.permutation(hard.n_events)
        hard, process_id = take_events(hard, order), process_id[order]
    rng = _rng(task.seed, task.shard, _DETECTOR_STREAM)
    n = hard.n_events
    pv = rng.normal(size=(n, 3)) * beam_spot(det)
    pileup = pileup_event = pileup_vertex = None
    if task.pileup > 0:
        n_pu = rng.poisson(task.pileup, n)
        total = int(n_pu.sum())
        if total:
            with clock("init"):
                pu_run = PythiaRun(
                    [*processes.COMMON_SETTINGS, *processes.PILEUP_SETTINGS],
                    _seed(task.seed, task.shard, _PILEUP_STREAM),
                )
            with clock("pythia"):
                pileup = pu_run.generate(total, final_only=True)
            pileup_event = np.repeat(np.arange(n), n_pu)
            pileup_vertex = rng.normal(size=(total, 3)) * beam_spot(det)
    with clock("detector"):
        fs = final_state(hard, pileup, pileup_event, pv, pileup_vertex)
        info = EventInfo(
            process_id=process_id,
            event_number=task.first_event + np.arange(n, dtype=np.int64),
            luminosity_block=task.shard + 1,
            mu=float(task.pileup),
        )
        return reconstruct(hard, fs, pv, det, rng, info)


class _Clock:
    """Accumulate wall-clock seconds per stage into a dict (or do nothing without one)."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.timings is not None:
                self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


def beam_spot(det) -> np.ndarray:
    """(3,) Gaussian widths in mm of the luminous region (x, y, z)."""
    y = det.beam_spot_xy_mm if det.beam_spot_y_mm is None else det.beam_spot_y_mm
    return np.array([det.beam_spot_xy_mm, y, det.beam_spot_z_mm])


def layout_for(detector: str) -> Layout:
    det = DETECTORS[detector]
    subs = ("constituents", "hits") if det.hit_layers else ("constituents",)
    return Layout((det.layer, "truth"), subs, schema.default_max_objects())


def generator_settings(process: str, extra: Sequence[str] = ()) -> dict:
    """The ``generator`` metadata: Pythia version, settings of every component, process ids."""
    comps = processes.components(process)
    return {
        "generator": "pythia8mc",
        "version": importlib.metadata.version("pythia8mc"),
        "fastjet": importlib.metadata.version("fastjet"),
        "process": process,
        "components": {
            n: {
                "weight": w,
                "process_id": processes.PROCESSES[n].process_id,
                "doc": processes.PROCESSES[n].doc,
                "settings": processes.settings_for(n, tuple(extra)),
            }
            for n, w in comps.items()
        },
        "pileup_settings": [*processes.COMMON_SETTINGS, *processes.PILEUP_SETTINGS],
        "process_ids": {n: p.process_id for n, p in processes.PROCESSES.items()},
    }


def sample_metadata(
    process: str, n_events: int, seed: int, detector: str, pileup: float, extra: Sequence[str], shard_size: int
) -> dict:
    det = DETECTORS[detector]
    iso = (
        f"generator tracks: dR < {schema.ISOLATION.cone}, pT > {schema.ISOLATION.pt_floor_gev} GeV, "
        f"|z0 sin(theta)| < {schema.ISOLATION.z0sintheta_cut_mm} mm w.r.t. the PV, own track excluded"
    )
    gen = generator_settings(process, extra)
    gen.update(
        {
            "seed": int(seed),
            "n_events_requested": int(n_events),
            "shard_size": int(shard_size),
            "detector": detector,
            "pileup_mu": float(pileup),
        }
    )
    extra_meta: dict = {}
    met = (
        "minus the vector sum of reconstructed electrons, muons, photons and jets (pT > 20 GeV) and of "
        "primary-vertex tracks not in those objects; sumet is the scalar sum of the same"
    )
    models = SIMPLE_MODELS
    if det.hcal_res is not None:
        met = "minus the vector sum of every particle-flow candidate (tracks, ECAL photons, HCAL neutral hadrons)"
        models = EE_SIMPLE_MODELS
    if det.collider == "fcc-ee":
        sqrt_s = next(
            float(x.split("=")[1]) for x in processes.COLLIDER_SETTINGS["fcc-ee"] if x.startswith("Beams:eCM")
        )
        extra_meta["initial_state"] = {
            "beams": "e+ e-",
            "sqrt_s_gev": sqrt_s,
            "p4_gev": [0.0, 0.0, 0.0, sqrt_s],
            "of": "the nominal collision",
            "source": "the generator settings (Beams:eCM); each event's own, with the beam energy spread Pythia "
            "drew, is edm4hep/event/sqrt_s, and the missing four-momentum is taken against it",
        }
        extra_meta["magnetic_field"] = {"tesla": det.bfield_t, "source": f"the {det.name} detector (detector.py)"}
    return make_metadata(
        det.experiment,
        f"pythia8mc {gen['version']}: {process} (seed {seed})",
        layers=(det.layer, "truth"),
        met_definition=met,
        common_iso_source={g: iso for g in ("electrons", "muons", "photons")},
        missing_fields=missing_fields(det),
        tracks_source=f"charged final-state particles with pT > 0.5 GeV, |eta| < {det.tracker_eta}, "
        f"{det.experiment}-like efficiency and resolution; pile-up tracks flagged in truth/tracks/is_pileup",
        generator=gen,
        notes={
            "detector": f"parametric {det.experiment}-like response, sources cited in "
            f"treasure_hf/data/generate/detector.py",
            **models,
            "missing_fields": "listed fields need a full simulation; they are NaN",
        },
        **extra_meta,
    )


def _check_resume(out: Path, meta: dict) -> None:
    """Discard a partial output written with other settings (seed, process, detector...)."""
    first = partial_dir(out) / "events" / f"{part_name(0)}.parquet"
    if not first.exists():
        return
    kv = pq.read_schema(first).metadata or {}
    try:
        old = json.loads(kv.get(KV_METADATA, b"{}"))
    except json.JSONDecodeError:
        old = {}
    if old.get("generator") != meta["generator"]:
        import shutil

        logger.warning("discarding partial output %s: it was generated with other settings", partial_dir(out))
        shutil.rmtree(partial_dir(out))


def generate(
    process: str,
    n_events: int,
    seed: int,
    out: str | os.PathLike,
    *,
    detector: str = "atlas",
    pileup: float = 0.0,
    extra: Sequence[str] = (),
    workers: int = 1,
    scheduler: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    h5: str | os.PathLike | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Generate ``n_events`` events of ``process`` into the PCDF directory ``out`` (and ``h5``).
    An existing ``out`` (or ``h5``) is replaced only if ``treasure generate`` wrote it, or with
    ``overwrite``."""
    if process not in processes.NAMES:
        raise InputError(None, "process", f"unknown process {process!r}; known: {list(processes.NAMES)}")
    if detector not in DETECTORS:
        raise InputError(None, "detector", f"unknown detector {detector!r}; known: {list(DETECTORS)}")
    if processes.collider_of(process) != DETECTORS[detector].collider:
        fitting = [d for d, det in DETECTORS.items() if det.collider == processes.collider_of(process)]
        raise InputError(
            None,
            "detector",
            f"{process} is a {processes.collider_of(process)} process and the "
            f"{detector} detector sits at the {DETECTORS[detector].collider}: use "
            f"{' or '.join(fitting)}",
        )
    positive("events", n_events)
    positive("shard_size", shard_size)
    if pileup < 0 or not np.isfinite(pileup):
        raise ArgumentError("pileup", f"the pile-up mu must be finite and >= 0, got {pileup!r}")
    out = Path(out)
    if h5 is not None:
        check_destination(h5, "generate", inputs=(out,), overwrite=overwrite)
    meta = sample_metadata(process, n_events, seed, detector, pileup, extra, shard_size)
    _check_resume(out, meta)
    tasks = [
        ShardTask(
            process,
            k,
            min(shard_size, n_events - k * shard_size),
            k * shard_size,
            int(seed),
            detector,
            float(pileup),
            tuple(extra),
        )
        for k in range((n_events + shard_size - 1) // shard_size)
    ]
    writer = PCDFWriter(
        out,
        meta,
        layout_for(detector),
        events_per_part=shard_size,
        rows_per_part=None,
        resume=True,
        producer="generate",
        overwrite=overwrite,
    )
    try:
        done = len(writer.parts)
        if done:
            logger.info("resuming %s: %d of %d shards already written", out, done, len(tasks))
        # Shards come back in order, at most a few in memory at a time, and are written as they come.
        for result in iter_tasks(
            generate_shard,
            tasks[done:],
            workers=workers,
            scheduler=scheduler,
            max_in_flight=2 * max(1, workers) if scheduler is None else 16,
            desc=f"generate {process}",
            progress=progress,
        ):
            writer.write(result.value)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    if h5 is not None:
        from ..io import pcdf_to_h5

        pcdf_to_h5(out, h5, progress=progress, producer="generate", overwrite=overwrite)
    return out
