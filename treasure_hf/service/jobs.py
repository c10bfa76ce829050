"""Jobs: a request becomes a content-addressed job (its id is the hash of what determines its
result), run once on Dask however many identical requests arrive, and answered from the cache
afterwards. A restarted server queues its unfinished jobs again (a run that was interrupted
left no result: the writers swap outputs in whole), or marks them failed with the reason: their
input changed, or restarts interrupted them :attr:`ServiceSettings.max_attempts` times."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..parallel import dask_client
from .catalog import Catalog, Entry
from .problems import Conflict, NotFound, TooManyJobs, Unprocessable
from .registry import UNFINISHED, Registry
from .results import result_path
from .settings import ServiceSettings
from .transformations import TRANSFORMATIONS, Transformation
from .versions import VersionCache, job_key
from .worker import CANCEL_FILE, PROGRESS_FILE, run_job

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A request checked and resolved: what the job runs, and its id."""

    transformation: Transformation
    entry: Entry
    params: dict[str, Any]
    resources: dict[str, str]
    input_version: str
    key: str


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e["loc"]) or "params"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


class JobManager:
    def __init__(self, settings: ServiceSettings, registry: Registry, catalog: Catalog):
        self.settings = settings
        self.registry = registry
        self.catalog = catalog
        self.versions = VersionCache()
        self.client: Any = None
        self._futures: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._stopping = False

    # --- life ------------------------------------------------------------------------------------
    def start(self) -> None:
        self.settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.client = self._stack.enter_context(dask_client(self.settings.workers, self.settings.scheduler))
        self.resume()

    def stop(self) -> None:
        """Leave unfinished jobs as they are (the next start resumes them) and close Dask."""
        self._stopping = True
        self._stack.close()

    # --- requests --------------------------------------------------------------------------------
    def prepare(self, dataset: str, transformation: str, params: dict[str, Any]) -> Prepared:
        t = TRANSFORMATIONS.get(transformation)
        if t is None:
            raise NotFound(f"unknown transformation {transformation!r}; the service offers {sorted(TRANSFORMATIONS)}")
        entry = self.catalog.dataset(dataset)
        if entry.kind not in t.inputs:
            raise Unprocessable(f"{t.name} takes {' or '.join(t.inputs)} data sets; {dataset!r} is {entry.kind}")
        if not isinstance(params, dict):
            raise Unprocessable("params must be a JSON object")
        try:
            p = t.params.model_validate(params)
        except ValidationError as exc:
            raise Unprocessable(
                f"bad parameters for {t.name}: {_validation_message(exc)}",
                errors=json.loads(exc.json(include_url=False, include_input=False)),
            ) from None
        resources = {
            param: str(getattr(self.catalog, folder)(getattr(p, param))) for param, folder in t.resources.items()
        }
        normalized = p.model_dump(mode="json")
        input_version = self.versions.version(entry.path)
        determined = {
            "src": str(entry.path),
            "kind": entry.kind,
            **{f"resource:{k}": [v, self.versions.version(Path(v))] for k, v in resources.items()},
        }
        key = job_key(t.name, input_version, normalized, determined)
        return Prepared(t, entry, normalized, resources, input_version, key)

    def request(self, dataset: str, transformation: str, params: dict[str, Any], owner: str) -> tuple[dict, bool]:
        """The job for this request and whether it was started now (False: it exists, running or done)."""
        prep = self.prepare(dataset, transformation, params)
        with self._lock:
            row = self.registry.job(prep.key)
            if row is not None and (row["state"] in UNFINISHED or (row["state"] == "done" and self.intact(row))):
                return self.view(row), False
            if self.registry.active_jobs_of(owner) >= self.settings.max_jobs_per_token:
                raise TooManyJobs(
                    f"this token has {self.settings.max_jobs_per_token} unfinished jobs already: "
                    "wait for one to finish or cancel one"
                )
            if row is None and not self.registry.create(
                prep.key,
                dataset=dataset,
                transformation=prep.transformation.name,
                params=prep.params,
                input_version=prep.input_version,
                owner=owner,
            ):
                return self.view(self.registry.job(prep.key)), False
            attempts = 0 if row is None else row["attempts"]
            if not self.registry.start_attempt(prep.key, attempts, owner=owner):
                return self.view(self.registry.job(prep.key)), False
            row = self.registry.job(prep.key)
            self._submit(row, prep)
        return self.view(row), True

    def work_dir(self, job_id: str) -> Path:
        return self.settings.jobs_dir / job_id

    def _submit(self, row: dict[str, Any], prep: Prepared) -> None:
        work = self.work_dir(row["id"])
        work.mkdir(parents=True, exist_ok=True)
        for name in (CANCEL_FILE, PROGRESS_FILE):
            (work / name).unlink(missing_ok=True)
        attempt = row["attempts"]
        spec = {
            "id": row["id"],
            "transformation": prep.transformation.name,
            "src": str(prep.entry.path),
            "work": str(work),
            "result": prep.transformation.result(prep.entry.kind),
            "params": prep.params,
            "resources": prep.resources,
            "attempt": attempt,
        }
        future = self.client.submit(run_job, spec, key=f"treasure-job-{row['id']}-{attempt}", pure=False)
        self._futures[row["id"]] = future
        future.add_done_callback(lambda f: self._finished(row["id"], attempt, f))
        logger.info("job %s: %s of %s, run %d", row["id"], prep.transformation.name, prep.entry.name, attempt)

    def _finished(self, job_id: str, attempt: int, future: Any) -> None:
        if self._stopping or future.cancelled():
            return  # a stopping server leaves the job to be resumed; a cancel has recorded itself
        try:
            outcome = future.result()
        except Exception as exc:
            outcome = {
                "state": "failed",
                "message": f"the Dask worker running it was lost: {type(exc).__name__}: {exc}",
            }
        if self._stopping:
            return
        values: dict[str, Any] = {"state": outcome["state"], "message": outcome.get("message"), "finished": time.time()}
        if outcome["state"] == "done":
            values.update(result=outcome["result"], progress=1.0)
        self.registry.update(job_id, expect_states=UNFINISHED, expect_attempts=attempt, **values)
        if self._futures.get(job_id) is future:
            self._futures.pop(job_id, None)
        logger.info("job %s: %s %s", job_id, outcome["state"], outcome.get("message") or "")

    def cancel(self, job_id: str) -> dict[str, Any]:
        row = self.job(job_id)
        if row["state"] not in UNFINISHED:
            raise Conflict(f"job {job_id} is {row['state']}: only queued or running jobs can be cancelled")
        work = self.work_dir(job_id)
        work.mkdir(parents=True, exist_ok=True)
        (work / CANCEL_FILE).touch()
        self.registry.update(
            job_id, expect_states=UNFINISHED, state="cancelled", message="cancelled by request", finished=time.time()
        )
        future = self._futures.pop(job_id, None)
        if future is not None:
            future.cancel()
        return self.view(self.job(job_id))

    # --- restarts --------------------------------------------------------------------------------
    def resume(self) -> None:
        """Queue again, or fail with the reason, every job a stopped server left unfinished."""
        for row in self.registry.jobs(limit=1_000_000, states=UNFINISHED):
            restarts = row["restarts"] + 1
            reason = None
            prep = None
            if restarts >= self.settings.max_attempts:
                reason = f"interrupted by {restarts} restarts of the server in a row: request it again"
            else:
                try:
                    prep = self.prepare(row["dataset"], row["transformation"], row["params"])
                except Exception as exc:
                    reason = f"cannot resume after a restart of the server: {getattr(exc, 'detail', exc)}"
                else:
                    if prep.key != row["id"]:
                        reason = (
                            "its input, a tokenizer or the code changed while it was unfinished: request it "
                            "again for the new version"
                        )
            if reason is not None:
                self.registry.update(
                    row["id"], expect_states=UNFINISHED, state="failed", message=reason, finished=time.time()
                )
                logger.warning("job %s failed: %s", row["id"], reason)
                continue
            if self.registry.start_attempt(
                row["id"],
                row["attempts"],
                restarts=restarts,
                message=f"resumed after a restart of the server (run {row['attempts'] + 1})",
            ):
                self._submit(self.registry.job(row["id"]), prep)

    # --- views -----------------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        row = self.registry.job(job_id) if isinstance(job_id, str) and job_id.isalnum() else None
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return row

    def intact(self, row: dict[str, Any]) -> bool:
        """A done job's result is still in the cache as its manifest recorded it."""
        man = row.get("result")
        if not man:
            return False
        base = result_path(self.work_dir(row["id"]), man)
        try:
            if man["kind"] == "file":
                return base.stat().st_size == man["bytes"]
            return all((base / e["path"]).stat().st_size == e["bytes"] for e in man["files"])
        except OSError:
            return False

    def live_progress(self, row: dict[str, Any]) -> dict[str, Any] | None:
        try:
            live = json.loads((self.work_dir(row["id"]) / PROGRESS_FILE).read_text())
        except (OSError, ValueError):
            return None
        return live if live.get("attempt") == row["attempts"] else None

    def view(self, row: dict[str, Any]) -> dict[str, Any]:
        """The job as the API shows it, with its live progress while it runs."""
        out = {
            k: row[k]
            for k in (
                "id",
                "dataset",
                "transformation",
                "params",
                "state",
                "progress",
                "message",
                "attempts",
                "created",
                "updated",
                "finished",
            )
        }
        if row["state"] in UNFINISHED:
            live = self.live_progress(row)
            if live is not None:
                out["progress"] = float(live.get("fraction", 0.0))
                out["step"] = live.get("step")
                if row["state"] == "queued":
                    self.registry.update(
                        row["id"], expect_states=("queued",), expect_attempts=row["attempts"], state="running"
                    )
                    out["state"] = "running"
        out["links"] = {"self": f"/jobs/{row['id']}"}
        if row["state"] == "done" and row["result"]:
            man = row["result"]
            out["result"] = {
                "kind": man["kind"],
                "name": man["name"],
                "bytes": man["bytes"],
                "files": len(man["files"]),
            }
            if man["kind"] == "file":
                out["result"]["sha256"] = man["files"][0]["sha256"]
            out["links"]["result"] = f"/jobs/{row['id']}/result"
        return out

    def views(self, limit: int = 100) -> list[dict[str, Any]]:
        return [self.view(r) for r in self.registry.jobs(limit=limit)]
