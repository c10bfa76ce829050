"""Typed exceptions. Every message names the file and, where there is one, the key or field.

The command line prints any of them as one line, ``error: FILE: KEY: what``, and exits non-zero.
"""

from __future__ import annotations

import os


class TreasureError(Exception):
    """Base class of every error treasure_hf raises on purpose."""


class LocatedError(TreasureError):
    """An error about one file (or directory) and, where there is one, one key of it."""

    def __init__(self, path: str | os.PathLike | None, key: str | None, message: str):
        self.path = None if path is None else os.fspath(path)
        self.key = key
        self.message = message
        where = ": ".join(str(x) for x in (self.path, key) if x)
        super().__init__(f"{where}: {message}" if where else message)


class FormatError(LocatedError):
    """A file does not follow the common format (or PCDF): names the file and the key."""


class InputError(FormatError):
    """An input (an experiment's file, a batch handed to a writer) lacks or mangles a field."""


class OutputError(LocatedError):
    """A destination that must not be written: it holds the input, or data this command did not write."""


class ArgumentError(LocatedError):
    """A command-line option or function argument out of its range (``key`` names the option)."""

    def __init__(self, option: str, message: str):
        super().__init__(None, option, message)


class AccessError(LocatedError):
    """A path that leaves the directory it must stay in (``..``, an absolute path, a symlink out of it)."""


class CompatibilityError(LocatedError):
    """Two parts that must belong together do not: a model and a tokenizer with other token ids."""


class SchemaError(TreasureError):
    """Something asked for a group, layer or field that the schema registry does not declare."""


def positive(option: str, value: int | float | None, *, allow_none: bool = False) -> int | float | None:
    """``value`` when it is a positive number; :class:`ArgumentError` naming ``option`` otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ArgumentError(option, f"must be a positive number, got {value!r}")
    return value
