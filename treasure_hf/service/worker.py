"""What runs on a Dask worker: one job, from a plain dict (its spec) to a plain dict (its
outcome). The job publishes its progress in ``progress.json`` of its folder and stops at the
next step once a ``cancel`` file appears there; the transformation's writer swaps its output in
whole when complete, so a job stopped or killed midway leaves no result, only a temporary that
the next run of the same job removes."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import TreasureError
from ..progress import reporting

logger = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"
CANCEL_FILE = "cancel"
PUBLISH_EVERY_S = 0.2


class Cancelled(TreasureError):
    """The job was cancelled (``DELETE /jobs/{id}``)."""


class ProgressFile:
    """A :func:`treasure_hf.progress.reporting` listener that writes the fraction done to
    ``progress.json`` (at most every :data:`PUBLISH_EVERY_S`) and raises :class:`Cancelled`
    once the job's ``cancel`` file exists."""

    def __init__(self, work: Path, attempt: int):
        self.work = Path(work)
        self.attempt = attempt
        self._last = 0.0
        self.publish({"attempt": attempt, "started": time.time(), "fraction": 0.0, "step": "starting"})

    def publish(self, state: dict[str, Any]) -> None:
        tmp = self.work / f".{PROGRESS_FILE}.{os.getpid()}-{threading.get_ident()}"
        tmp.write_text(json.dumps({**state, "updated": time.time()}))
        os.replace(tmp, self.work / PROGRESS_FILE)

    def __call__(self, desc: str, done: int, total: int | None) -> None:
        if (self.work / CANCEL_FILE).exists():
            raise Cancelled(f"cancelled during {desc or 'the job'}")
        now = time.monotonic()
        if now - self._last >= PUBLISH_EVERY_S or (total and done >= total):
            self._last = now
            fraction = min(done / total, 1.0) if total else 0.0
            self.publish({"attempt": self.attempt, "fraction": fraction, "step": desc, "done": done, "total": total})


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the job ``spec`` (keys: transformation, src, work, result, params, resources,
    attempt); return ``{"state": "done", "result": manifest}``, or ``{"state": "failed" |
    "cancelled", "message": one line}``: nothing raised crosses back to the scheduler."""
    from ..cli import error_line
    from .results import manifest
    from .transformations import TRANSFORMATIONS

    work = Path(spec["work"])
    out = work / spec["result"]
    try:
        t = TRANSFORMATIONS[spec["transformation"]]
        params = t.params.model_validate(spec["params"])
        listener = ProgressFile(work, spec["attempt"])
        if (work / CANCEL_FILE).exists():
            raise Cancelled("cancelled before it started")
        with reporting(listener):
            t.run(Path(spec["src"]), out, params, {k: Path(v) for k, v in spec["resources"].items()})
        listener.publish({"attempt": spec["attempt"], "fraction": 1.0, "step": "checksums"})
        return {"state": "done", "result": manifest(out)}
    except Cancelled as exc:
        return {"state": "cancelled", "message": str(exc)}
    except Exception as exc:
        line = error_line(exc)
        if line is None:
            logger.error("job %s failed:\n%s", work.name, traceback.format_exc())
            line = f"internal error: {type(exc).__name__}: {exc}"
        return {"state": "failed", "message": line}
