"""``treasure generate``: labelled Pythia 8 samples with a parametric detector, as PCDF."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.generate import processes
from ..data.generate.detector import DETECTORS
from ..data.generate.generator import DEFAULT_SHARD_SIZE, generate
from ..errors import InputError
from .options import add_overwrite, nonnegative_float, nonnegative_int, positive_int


def read_cmnd(path: str | Path) -> list[str]:
    """Settings lines of a Pythia ``.cmnd`` file (blank lines and ``!``/``#`` comments dropped)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(path, None, f"cannot read the Pythia settings file: {exc}") from None
    out = []
    for line in text.splitlines():
        line = line.split("!", 1)[0].split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def _generate(args: argparse.Namespace) -> int:
    extra = [*(read_cmnd(args.cmnd) if args.cmnd else []), *(args.pythia or [])]
    out = generate(
        args.process,
        args.events,
        args.seed,
        args.out,
        detector=args.detector,
        pileup=args.pileup,
        extra=extra,
        workers=args.workers,
        scheduler=args.scheduler,
        shard_size=args.shard_size,
        h5=args.h5,
        progress=args.progress,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        print(f"{out}: {args.events} {args.process} events ({args.detector}, pile-up mu = {args.pileup})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    presets = "; ".join(f"{n}: {p.doc}" for n, p in processes.PROCESSES.items())
    p = sub.add_parser(
        "generate",
        help="generate labelled Pythia 8 events with an ATLAS-, CMS- or IDEA-like (FCC-ee) detector, as PCDF",
        description="Generate PROCESS with Pythia 8, cluster anti-kt R = 0.4 jets with FastJet, apply a "
        "parametric ATLAS-like or CMS-like detector response (LHC presets) or the IDEA-like FCC-ee one "
        "(--detector idea, the ee_* presets at 240 GeV: particle-flow jets, track hits, the missing "
        "four-momentum) and write PCDF (and, with --h5, the common HDF5). Shards are seeded from (seed, shard): the same seed gives the same files "
        f"whatever --workers or --scheduler. Presets: {presets}; mix: a weighted blend of all. "
        "An interrupted run continues where it stopped when started again with the same arguments.",
    )
    p.add_argument("process", choices=processes.NAMES, help="named preset")
    p.add_argument("--events", type=positive_int, required=True, help="number of events")
    p.add_argument("--seed", type=nonnegative_int, required=True, help="master seed")
    p.add_argument("--out", required=True, help="PCDF directory to write")
    p.add_argument(
        "--detector",
        choices=list(DETECTORS),
        default="atlas",
        help="detector response (default atlas; idea for the ee_* presets)",
    )
    p.add_argument(
        "--pileup",
        type=nonnegative_float,
        default=0.0,
        metavar="MU",
        help="overlay Poisson(MU) soft-QCD vertices spread in z (default 0)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=1, help="local processes (a Dask LocalCluster when > 1)")
    where.add_argument("--scheduler", help="address of a running Dask scheduler")
    p.add_argument(
        "--pythia",
        action="append",
        metavar='"Key = value"',
        help="extra Pythia setting, applied after the preset (repeatable)",
    )
    p.add_argument("--cmnd", help="file of extra Pythia settings, applied before --pythia ones")
    p.add_argument("--h5", help="also write the common HDF5 file here")
    p.add_argument(
        "--shard-size",
        type=positive_int,
        default=DEFAULT_SHARD_SIZE,
        help="events per shard, task and PCDF part (default %(default)s); part of the seeding",
    )
    add_overwrite(p)
    p.set_defaults(func=_generate)
