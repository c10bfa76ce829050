"""The ``treasure`` command. Each subcommand lives in a module of :data:`COMMAND_MODULES` that
defines ``register(subparsers)``; the parser it adds sets ``func`` (called with the parsed args,
returning the exit status).

Every expected failure, a bad option, a missing or damaged file, an unreachable hub, ends the
command with one line, ``error: FILE: KEY: what``, and exit status 2; ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__
from .errors import TreasureError

COMMAND_MODULES: tuple[str, ...] = (
    "treasure_hf.commands.data",
    "treasure_hf.commands.generate",
    "treasure_hf.commands.convert",
    "treasure_hf.commands.tokenizer",
    "treasure_hf.commands.training",
    "treasure_hf.commands.benchmark",
    "treasure_hf.commands.inference",
    "treasure_hf.commands.select",
    "treasure_hf.commands.serve",
)

logger = logging.getLogger("treasure_hf")

_NETWORK_MODULES = ("httpx", "httpx2", "requests", "urllib3")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error as one line naming the command and the option."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="treasure", description="treasure-hf: collider events made AI-ready on the Hugging Face stack."
    )
    parser.add_argument("--version", action="version", version=f"treasure-hf {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging and the traceback of an error (-vv for debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def error_line(exc: BaseException) -> str | None:
    """The one line an expected failure is reported with, or None for a bug (shown in full)."""
    if isinstance(exc, TreasureError):
        return str(exc)
    if isinstance(exc, OSError) and not type(exc).__module__.startswith(_NETWORK_MODULES):
        text = exc.strerror or " ".join(str(exc).split())
        names = [str(f) for f in (exc.filename, getattr(exc, "filename2", None)) if f]
        return ": ".join([*names, text])
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc}"
    module = type(exc).__module__.split(".")[0]
    if module in _NETWORK_MODULES or type(exc).__name__ == "HfHubHTTPError":
        request = getattr(exc, "request", None)
        url = getattr(request, "url", None) if request is not None else None
        text = " ".join(str(exc).split()[:40])
        return f"{url}: {text}" if url else f"cannot reach the hub: {text}"
    if type(exc).__name__ == "SafetensorError":
        return f"not a valid safetensors file: {exc}"
    if isinstance(exc, ValueError):
        return " ".join(str(exc).split())
    return None


def _quiet_libraries() -> None:
    """No progress bars from the Hugging Face libraries either (``-q``)."""
    import os

    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ[name] = "1"
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.INFO if args.verbose < 2 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:  # Dask's scheduler and workers chat at INFO level; distributed reads this when imported
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        logging.getLogger("distributed").setLevel(logging.WARNING)
    args.progress = not args.quiet
    if args.quiet:
        _quiet_libraries()
    return run_reported(lambda: args.func(args), args.verbose)


def run_reported(call: Callable[[], Any], verbose: int = 0) -> int:
    """Run a command's body: its exit status, or 2 and one line ``error: FILE: KEY: what`` on
    stderr for an expected failure (with the traceback too at ``verbose``); a bug propagates."""
    try:
        return int(call() or 0)
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        line = error_line(exc)
        if line is None:
            raise
        if verbose:
            traceback.print_exc()
        print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
