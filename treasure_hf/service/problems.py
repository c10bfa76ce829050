"""The errors the API answers with, each an HTTP status and one clear sentence."""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    status = 500

    def __init__(self, detail: str, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(Problem):
    status = 400


class Unauthorized(Problem):
    status = 401


class Forbidden(Problem):
    status = 403


class NotFound(Problem):
    status = 404


class Conflict(Problem):
    status = 409


class TooLarge(Problem):
    status = 413


class Unprocessable(Problem):
    status = 422


class TooManyJobs(Problem):
    status = 429
