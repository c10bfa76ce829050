"""Benchmark of ``treasure generate``: events per second per core for each process, next to
Pythia's own ``next()`` loop alone in the same run, and the overhead of everything we add
(reading the record, detector response, jet clustering, isolation, MET, PCDF writing).

    python benchmarks/generate.py [--quick] [--events N] [--pileup MU] [--detector atlas|cms]

Prints one JSON object. Single process (one core); Pythia initialisation is timed separately and
excluded from both rates. Goal: ``overhead`` <= 0.25 (our part adds at most 25% to Pythia).
``overhead`` compares the whole pipeline (nextBatch and reading the record, detector, jets, PCDF)
with the bare next() loop; ``overhead_detector_and_writing`` counts only what runs after Pythia,
which is less sensitive to the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from treasure_hf.data.generate import generator, processes
from treasure_hf.data.generate.pythia import PythiaRun
from treasure_hf.data.pcdf import PCDFWriter

GOAL_OVERHEAD = 0.25
QUICK_PROCESSES = ("zjets", "hzz4l", "ttbar")


def _next_loop(name: str, n_events: int, seed: int, pileup: float) -> tuple[float, float]:
    """Seconds of Pythia's bare next() loop over the same events as shard 0 (and, with pile-up, as
    many soft-QCD events as expected), and the initialisation time."""
    t0 = time.perf_counter()
    run = PythiaRun(processes.settings_for(name), generator._seed(seed, 0, list(processes.PROCESSES).index(name)))
    init = time.perf_counter() - t0
    t0 = time.perf_counter()
    run.next_only(n_events)
    t_next = time.perf_counter() - t0
    if pileup > 0:
        pu = PythiaRun(
            [*processes.COMMON_SETTINGS, *processes.PILEUP_SETTINGS], generator._seed(seed, 0, generator._PILEUP_STREAM)
        )
        t0 = time.perf_counter()
        pu.next_only(int(round(pileup * n_events)))
        t_next += time.perf_counter() - t0
    return t_next, init


def _full(name: str, n_events: int, seed: int, detector: str, pileup: float, workdir: Path) -> dict[str, float]:
    """Seconds per stage of the full pipeline on shard 0, PCDF writing included."""
    timings: dict[str, float] = {}
    task = generator.ShardTask(name, 0, n_events, 0, seed, detector, pileup)
    events = generator.generate_shard(task, timings)
    out = workdir / name
    meta = generator.sample_metadata(name, n_events, seed, detector, pileup, (), n_events)
    t0 = time.perf_counter()
    with PCDFWriter(out, meta, generator.layout_for(detector), events_per_part=n_events) as writer:
        writer.write(events)
    timings["write"] = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return timings


def bench_process(
    name: str, n_events: int, seed: int, detector: str, pileup: float, workdir: Path, repeats: int
) -> dict:
    """Pythia's next() loop alone and the full pipeline on the same events, alternated ``repeats``
    times; the fastest of each is kept (the machine may be shared)."""
    nexts, fulls = [], []
    for _ in range(repeats):
        nexts.append(_next_loop(name, n_events, seed, pileup))
        fulls.append(_full(name, n_events, seed, detector, pileup, workdir))
    t_next, init = min(nexts)
    timings = min(fulls, key=lambda t: t["pythia"] + t["detector"] + t["write"])
    full = timings["pythia"] + timings["detector"] + timings["write"]
    return {
        "events": n_events,
        "repeats": repeats,
        "pythia_next_events_per_s": n_events / t_next,
        "full_events_per_s": n_events / full,
        "overhead": full / t_next - 1.0,
        "overhead_detector_and_writing": (timings["detector"] + timings["write"]) / t_next,
        "seconds": {
            "pythia_init": round(init, 3),
            "pythia_next_loop": round(t_next, 3),
            "pythia_nextBatch_and_read": round(timings["pythia"], 3),
            "detector_jets_isolation_met": round(timings["detector"], 3),
            "write_pcdf": round(timings["write"], 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK_PROCESSES)} with 100 events each")
    parser.add_argument("--events", type=int, default=None, help="events per process (default 500, quick 100)")
    parser.add_argument("--processes", nargs="+", default=None, choices=list(processes.PROCESSES))
    parser.add_argument("--pileup", type=float, default=0.0)
    parser.add_argument("--detector", default="atlas", choices=("atlas", "cms"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None, help="alternated repetitions (default 3, quick 2)")
    args = parser.parse_args(argv)
    names = args.processes or (QUICK_PROCESSES if args.quick else tuple(processes.PROCESSES))
    n = args.events or (100 if args.quick else 500)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            results[name] = bench_process(
                name, n, args.seed, args.detector, args.pileup, Path(tmp), args.repeats or (2 if args.quick else 3)
            )
    report = {
        "benchmark": "treasure generate",
        "detector": args.detector,
        "pileup_mu": args.pileup,
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores_visible": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        },
        "goal_overhead": GOAL_OVERHEAD,
        "processes": results,
        "all_within_goal": all(r["overhead"] <= GOAL_OVERHEAD for r in results.values()),
    }
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
