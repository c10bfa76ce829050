"""Argument types and options shared by every ``treasure`` command: numbers checked for their
range when the command line is read (an error names the option), ``TYPE=VALUE`` items of the
schema registry, and ``--overwrite``."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..data import schema


def _number(cast: type, minimum: float, strict: bool, what: str) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, 0, True, "a positive integer")
nonnegative_int = _number(int, 0, False, "an integer >= 0")
positive_float = _number(float, 0.0, True, "a positive number")
nonnegative_float = _number(float, 0.0, False, "a number >= 0")


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = nonnegative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text!r}")
    return value


def typed_item(kinds: tuple[str, ...], cast: type, minimum: float) -> Callable[[str], tuple[str, int | float]]:
    """The type of ``TYPE=VALUE`` items: TYPE a registry group of ``kinds``, VALUE >= ``minimum``."""
    groups = [g for g, spec in schema.GROUPS.items() if spec.kind in kinds]

    def parse(item: str) -> tuple[str, int | float]:
        name, sep, value = item.partition("=")
        try:
            number = cast(value)
        except ValueError:
            number = None
        if not sep or name not in groups or number is None or not number >= minimum:
            raise argparse.ArgumentTypeError(
                f"takes TYPE=VALUE with TYPE in {groups} and VALUE {cast.__name__} >= {minimum:g}, got {item!r}"
            )
        return name, number

    parse.__name__ = "TYPE=VALUE"
    return parse


object_width = typed_item(("object", "sub"), int, 1)
"""``--max-objects jets=10``: padding size per type."""
pt_cut = typed_item(("object",), float, 0.0)
"""``--pt-cut jets=25``: minimum pT in GeV per type."""


def object_types(text: str) -> tuple[str, ...]:
    """``TYPE,TYPE,...``: object types of the registry."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in schema.OBJECT_TYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"takes TYPE,... with TYPE in {list(schema.OBJECT_TYPES)}, got {text!r}")
    return names


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output that this command did not write (without it, such an output "
        "is refused and left untouched; this command's own earlier outputs are always replaced)",
    )
