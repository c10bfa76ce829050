"""Bearer tokens: each maps to the scope ``read`` (list, describe, download) or ``write``
(also register data and start or cancel jobs)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import ArgumentError, FormatError

SCOPES = ("read", "write")
ENV = "TREASURE_SERVICE_TOKENS"
"""Environment variable holding the tokens (the JSON object of a tokens file) when --tokens is not given."""


def load_tokens(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The tokens of ``path`` (a JSON object: token -> ``read`` or ``write``), else of :data:`ENV`."""
    if path is not None:
        where: str = os.fspath(path)
        text = Path(path).read_text()
    elif os.environ.get(ENV):
        where, text = f"${ENV}", os.environ[ENV]
    else:
        raise ArgumentError(
            "--tokens",
            f"no tokens: give --tokens FILE or set {ENV} (a JSON object mapping each token to 'read' or 'write')",
        )
    try:
        tokens = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(where, None, f"is not valid JSON: {exc}") from None
    if not isinstance(tokens, dict) or not tokens:
        raise FormatError(where, None, "must be a non-empty JSON object mapping each token to 'read' or 'write'")
    for token, scope in tokens.items():
        if scope not in SCOPES:
            raise FormatError(where, token_id(token), f"scope must be one of {list(SCOPES)}, got {scope!r}")
        if len(token) < 8 or any(c.isspace() for c in token):
            raise FormatError(where, token_id(token), "a token needs 8 characters or more, without spaces")
    return dict(tokens)


def token_id(token: str) -> str:
    """What the job registry stores of a token: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def scope_of(tokens: Mapping[str, str], token: str) -> str | None:
    """The scope of ``token``, or None when unknown (compared in constant time)."""
    found = None
    for known, scope in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = scope
    return found


def allows(scope: str, needed: str) -> bool:
    return SCOPES.index(scope) >= SCOPES.index(needed)
