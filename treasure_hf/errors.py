"""Typed exceptions. Every message names the file and, where there is one, the key or field."""

from __future__ import annotations

import os


class TreasureError(Exception):
    """Base class of every error treasure_hf raises on purpose."""


class FormatError(TreasureError):
    """A file does not follow the common format (or PCDF): names the file and the key."""

    def __init__(self, path: str | os.PathLike | None, key: str | None, message: str):
        self.path = None if path is None else os.fspath(path)
        self.key = key
        self.message = message
        where = ": ".join(str(x) for x in (self.path, key) if x)
        super().__init__(f"{where}: {message}" if where else message)


class InputError(FormatError):
    """An input (an experiment's file, a batch handed to a writer) lacks or mangles a field."""


class SchemaError(TreasureError):
    """Something asked for a group, layer or field that the schema registry does not declare."""
