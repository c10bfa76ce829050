"""Options and limits of one ``treasure serve`` instance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = ".treasure-service"
"""Under the root: the job database (SQLite by default) and one folder per job (its result)."""
DATASETS_DIR, TOKENIZERS_DIR, MODELS_DIR = "datasets", "tokenizers", "models"
"""Entries of these folders of the root are registered under their own name."""


@dataclass(frozen=True)
class ServiceSettings:
    """``root``: the directory served; ``tokens``: token -> ``read`` or ``write``; ``database``:
    a SQLAlchemy URL (default: SQLite in the state folder); ``scheduler``: a Dask scheduler's
    address (default: a LocalCluster of ``workers`` processes)."""

    root: Path
    tokens: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    scheduler: str | None = None
    workers: int = 1
    database: str | None = None
    max_request_bytes: int = 64 * 1024
    """Largest request body accepted (HTTP 413 beyond)."""
    max_jobs_per_token: int = 4
    """Unfinished jobs one token may have started (HTTP 429 beyond)."""
    max_attempts: int = 3
    """Runs of a job interrupted by restarts before it is marked failed."""

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.state_dir / 'jobs.sqlite'}"
