"""``treasure convert {atlas,cms,edm4hep} INPUT... --out OUT``: experiments' ROOT files to the common format."""

from __future__ import annotations

import argparse
import sys

from ..data import schema
from ..data.sources.convert import CONVERTERS, FORMATS, convert_files
from ..data.sources.reader import DEFAULT_STEP
from ..errors import ArgumentError
from .options import add_overwrite, object_types, object_width, positive_float, positive_int, pt_cut


def _options(args: argparse.Namespace):
    """The EDM4hep converter's options (--bfield, --sqrt-s); an error for the other converters."""
    given = {k: v for k, v in (("--bfield", args.bfield), ("--sqrt-s", args.sqrt_s)) if v is not None}
    if args.experiment != "edm4hep":
        if given:
            raise ArgumentError(next(iter(given)), f"applies to edm4hep inputs only, not {args.experiment}")
        return None
    from ..data.sources.edm4hep import Edm4hepOptions

    return Edm4hepOptions(bfield_tesla=args.bfield, sqrt_s_gev=args.sqrt_s)


def _convert(args: argparse.Namespace) -> int:
    results = convert_files(
        args.experiment,
        args.inputs,
        args.out,
        fmt=args.format,
        pt_cuts=dict(args.pt_cut or ()),
        max_objects=dict(args.max_objects or ()),
        step_size=args.step_size,
        workers=args.workers,
        scheduler=args.scheduler,
        keep_going=args.keep_going,
        progress=args.progress,
        overwrite=args.overwrite,
        drop_invalid=args.drop_invalid,
        require=args.require or (),
        options=_options(args),
    )
    failed = [r for r in results if not r.ok]
    done = [r for r in results if r.ok and not r.value.get("skipped")]
    skipped = [r for r in results if r.ok and r.value.get("skipped")]
    print(f"converted {len(done)}, skipped {len(skipped)} (already complete), failed {len(failed)}")
    for r in done:
        print(f"  {r.value['input']} -> {r.value['output']} ({r.value['n_events']} events)")
    for r in failed:
        print(f"  FAILED {r.task.input_file}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert ATLAS PHYSLITE, CMS NanoAOD (TTree or RNTuple) or EDM4hep files to the common format",
        description="Convert the experiments' ROOT files to the common format, one output per input "
        "(OUT/NAME.h5, or the PCDF directory OUT/NAME; with one input, --out FILE.h5 writes that file), "
        "streaming in steps of events. Collision data and simulation are told apart from the file; a "
        "collection the file lacks entirely (a skim) gives an empty group named in the metadata "
        "missing_collections (--require makes it an error). Outputs are written atomically; a rerun "
        "skips outputs whose metadata says they are complete, for this very input (its size, "
        "modification time and a hash of its ends), and redoes the others. The only "
        "selection is a pT cut per object type (recorded in the metadata pt_cuts) and the truncation "
        "to max_objects. Exit 0 when every file converted, 1 when some failed (with --keep-going), "
        "2 on the first failure otherwise.",
    )
    p.add_argument(
        "experiment",
        choices=sorted(CONVERTERS),
        help="which experiment or format wrote the inputs (edm4hep: key4hep files of future e+e- colliders)",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="PHYSLITE, NanoAOD or EDM4hep .root files")
    p.add_argument("--out", required=True, help="output directory, or with one input an .h5 file to write")
    p.add_argument("--format", choices=FORMATS, default="h5", help="output format (default %(default)s)")
    p.add_argument(
        "--require",
        type=object_types,
        metavar="TYPE,...",
        help="object types whose collection every input must hold (e.g. photons,taus): a file "
        "lacking one is an error instead of an empty group",
    )
    p.add_argument("--max-objects", nargs="+", type=object_width, metavar="TYPE=N", help="padding size per object type")
    p.add_argument(
        "--pt-cut",
        nargs="+",
        type=pt_cut,
        metavar="TYPE=GEV",
        help=f"minimum pT per object type in GeV (defaults {schema.default_pt_cuts()})",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="files converted in parallel on a Dask LocalCluster of this many processes (default 1: serial)",
    )
    where.add_argument("--scheduler", help="address of a running Dask scheduler to run the conversions on")
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="convert the other files when one fails (the summary lists the failures)",
    )
    p.add_argument(
        "--step-size",
        type=positive_int,
        default=DEFAULT_STEP,
        help="events read per step (bounds memory, never changes the output; default %(default)s)",
    )
    p.add_argument(
        "--drop-invalid",
        action="store_true",
        help="drop objects with a NaN, infinite or negative pT (or a non-finite eta or phi) and count "
        "them in the metadata dropped_invalid; without it such an object is an error naming the "
        "file, branch and entry",
    )
    p.add_argument(
        "--bfield",
        type=positive_float,
        metavar="TESLA",
        help="edm4hep: the solenoid field for the tracks' pT where a file records none (the file's "
        "magFieldBz wins; the conversion checks the tracks' pT against their linked particles)",
    )
    p.add_argument(
        "--sqrt-s",
        type=positive_float,
        metavar="GEV",
        help="edm4hep: the centre-of-mass energy of head-on collisions where a file records neither beam "
        "particles nor GeneratorEventParameters.sqrts (for the missing four-momentum)",
    )
    add_overwrite(p)
    p.set_defaults(func=_convert)
