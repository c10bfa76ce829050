"""The ``treasure`` command. Each subcommand lives in a module of :data:`COMMAND_MODULES` that
defines ``register(subparsers)``; the parser it adds sets ``func`` (called with the parsed args,
returning the exit status)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from . import __version__
from .errors import TreasureError

COMMAND_MODULES: tuple[str, ...] = (
    "treasure_hf.data.commands",
    "treasure_hf.data.generate.commands",
    "treasure_hf.data.sources.commands",
    "treasure_hf.commands.tokenizer",
    "treasure_hf.commands.training",
    "treasure_hf.commands.benchmark",
)

logger = logging.getLogger("treasure_hf")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treasure", description="treasure-hf: collider events made AI-ready on the Hugging Face stack.")
    parser.add_argument("--version", action="version", version=f"treasure-hf {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.INFO if args.verbose < 2 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:  # Dask's scheduler and workers chat at INFO level
        logging.getLogger("distributed").setLevel(logging.WARNING)
    args.progress = not args.quiet
    try:
        return int(args.func(args) or 0)
    except TreasureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
