"""``treasure select``: the events that pass a registered selection preset."""

from __future__ import annotations

import argparse
import json
import sys

from ..data.io import DEFAULT_STEP
from .options import add_overwrite, positive_int


def _select(args: argparse.Namespace) -> int:
    from ..benchmark.select import select_events

    result = select_events(
        args.src, args.dst, preset=args.preset, step=args.step, progress=args.progress, overwrite=args.overwrite
    )
    json.dump({"output": str(result.path), "n_events": result.n_events, "n_selected": result.n_selected}, sys.stdout)
    print()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..benchmark.select import PRESETS

    p = sub.add_parser(
        "select",
        help="keep the events that pass a selection preset (e.g. the 4l selection)",
        description="Write the events of a PCDF directory or HDF5 file that pass a registered selection preset "
        "to DST, in the same format, with every object and field they had; the metadata notes "
        "record the preset. Presets: " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()),
    )
    p.add_argument("src", help="PCDF directory or HDF5 file")
    p.add_argument("dst", help="output of the same format")
    p.add_argument("--preset", choices=sorted(PRESETS), default="4l", help="selection (default %(default)s)")
    p.add_argument(
        "--step", type=positive_int, default=DEFAULT_STEP, help="events per chunk in memory (default %(default)s)"
    )
    add_overwrite(p)
    p.set_defaults(func=_select)
