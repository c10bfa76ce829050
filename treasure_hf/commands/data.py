"""``treasure validate``, ``pcdf-to-h5``, ``h5-to-pcdf``, ``schema`` and ``info``."""

from __future__ import annotations

import argparse
import json
import sys

from ..data import schema
from ..data.io import DEFAULT_STEP, h5_to_pcdf, open_events, pcdf_to_h5
from ..data.pcdf import EVENTS_PER_PART, ROWS_PER_PART
from .options import add_overwrite, object_width, positive_int, pt_cut


def _validate(args: argparse.Namespace) -> int:
    from ..data.validate import validate

    problems = validate(args.path)
    for p in problems:
        print(f"{args.path}: {p}")
    if not problems and not args.quiet:
        print(f"{args.path}: valid")
    return 1 if problems else 0


def _pcdf_to_h5(args: argparse.Namespace) -> int:
    pcdf_to_h5(
        args.src,
        args.dst,
        step=args.step,
        max_objects=dict(args.max_objects or ()),
        pt_cuts=dict(args.pt_cut or ()),
        progress=args.progress,
        overwrite=args.overwrite,
    )
    return 0


def _h5_to_pcdf(args: argparse.Namespace) -> int:
    h5_to_pcdf(
        args.src,
        args.dst,
        step=args.step,
        progress=args.progress,
        overwrite=args.overwrite,
        events_per_part=args.events_per_part,
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(schema.describe())
    return 0


def _info(args: argparse.Namespace) -> int:
    source = open_events(args.path)
    try:
        batch = source.read(0, min(source.n_events, args.events))
        summary = {
            "path": str(args.path),
            "n_events": source.n_events,
            "layers": list(batch.layers),
            "groups": {
                g: {
                    "max_objects": int(batch.mask(g).shape[-1]),
                    "mean_objects": float(batch.counts(g).mean()) if batch.n_events else 0.0,
                }
                for g in batch.groups
                if schema.GROUPS[g].kind != "event"
            },
            "metadata": source.metadata,
        }
    finally:
        source.close()
    json.dump(summary, sys.stdout, indent=1, sort_keys=True, default=str)
    print()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a file or PCDF directory against the schema registry",
        description="Check an HDF5 file or a PCDF directory against the schema registry: keys, "
        "dtypes, shapes, mask consistency, zero padding, units, metadata. Exit 0 when "
        "valid, 1 with one line per problem otherwise.",
    )
    p.add_argument("path", help="common-format .h5 file or PCDF directory")
    p.set_defaults(func=_validate)

    for name, func, src, dst in (
        ("pcdf-to-h5", _pcdf_to_h5, "PCDF directory", "HDF5 file to write"),
        ("h5-to-pcdf", _h5_to_pcdf, "HDF5 file", "PCDF directory to write"),
    ):
        p = sub.add_parser(
            name,
            help=f"convert a {src} to {dst.split(' ')[0]} (streaming)",
            description=f"Convert a {src} into a {dst}, streaming in chunks of events; the output "
            "is written under a temporary name and swapped in whole when complete. DST "
            "must not be SRC, lie inside it or hold it. Every input is checked whole "
            "whatever --step: the step sets the memory, never the result.",
        )
        p.add_argument("src", help=src)
        p.add_argument("dst", help=dst)
        p.add_argument(
            "--step", type=positive_int, default=DEFAULT_STEP, help="events per chunk in memory (default %(default)s)"
        )
        if name == "pcdf-to-h5":
            p.add_argument(
                "--max-objects", nargs="+", type=object_width, metavar="TYPE=N", help="padding size per object type"
            )
            p.add_argument(
                "--pt-cut",
                nargs="+",
                type=pt_cut,
                metavar="TYPE=GEV",
                help="drop the objects of a type below this pT in GeV (the metadata pt_cuts records it)",
            )
        else:
            p.add_argument(
                "--events-per-part",
                type=positive_int,
                default=EVENTS_PER_PART,
                help=f"events per PCDF part (default %(default)s; a part also ends at {ROWS_PER_PART:,} object rows)",
            )
        add_overwrite(p)
        p.set_defaults(func=func)

    p = sub.add_parser(
        "schema",
        help="print the schema registry",
        description="Print every layer, group, field and unit of the common format.",
    )
    p.set_defaults(func=_schema)

    p = sub.add_parser(
        "info",
        help="summarise a file or PCDF directory as JSON",
        description="Print events, layers, multiplicities and metadata of a file as JSON.",
    )
    p.add_argument("path")
    p.add_argument("--events", type=positive_int, default=10_000, help="events read for the multiplicities")
    p.set_defaults(func=_info)
