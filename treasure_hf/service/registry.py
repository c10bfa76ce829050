"""The job registry and the registered data sets, in SQL through SQLAlchemy Core: SQLite by
default (one file in the state folder, nothing to start), PostgreSQL (``postgresql://...``)
for a shared deployment. A job's id is its content hash, the table's primary key: two servers
on one database, or two threads of one, never hold two rows for the same request."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

STATES = ("queued", "running", "done", "failed", "cancelled")
UNFINISHED = ("queued", "running")
RETRYABLE = ("failed", "cancelled")

_meta = sa.MetaData()
JOBS = sa.Table(
    "jobs",
    _meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("dataset", sa.String(128), nullable=False),
    sa.Column("transformation", sa.String(64), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("input_version", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("message", sa.Text),
    sa.Column("owner", sa.String(32), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("restarts", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
    sa.Column("finished", sa.Float),
    sa.Column("result", sa.Text),
)
DATASETS = sa.Table(
    "datasets",
    _meta,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("owner", sa.String(32), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)


def _job(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["params"] = json.loads(d["params"])
    d["result"] = json.loads(d["result"]) if d["result"] else None
    return d


class Registry:
    def __init__(self, url: str):
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(conn, _):  # readers never wait for the writer; commits survive a crash
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

        _meta.create_all(self.engine)

    # --- jobs ------------------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(JOBS).where(JOBS.c.id == job_id)).first()
        return None if row is None else _job(row)

    def jobs(self, limit: int = 100, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        q = sa.select(JOBS).order_by(JOBS.c.created.desc()).limit(limit)
        if states is not None:
            q = q.where(JOBS.c.state.in_(list(states)))
        with self.engine.connect() as c:
            return [_job(r) for r in c.execute(q)]

    def create(
        self, job_id: str, *, dataset: str, transformation: str, params: dict, input_version: str, owner: str
    ) -> bool:
        """Insert a queued job; False when a job with this id exists already."""
        now = time.time()
        try:
            with self.engine.begin() as c:
                c.execute(
                    JOBS.insert().values(
                        id=job_id,
                        dataset=dataset,
                        transformation=transformation,
                        params=json.dumps(params),
                        input_version=input_version,
                        state="queued",
                        progress=0.0,
                        owner=owner,
                        attempts=0,
                        restarts=0,
                        created=now,
                        updated=now,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def update(
        self,
        job_id: str,
        *,
        expect_states: Iterable[str] | None = None,
        expect_attempts: int | None = None,
        **values: Any,
    ) -> bool:
        """Set ``values`` of a job, only if it is in one of ``expect_states`` (and at run
        ``expect_attempts``); True when the row changed. The condition makes each transition
        happen once, whoever else tries it at the same moment."""
        if "result" in values and values["result"] is not None:
            values["result"] = json.dumps(values["result"])
        values["updated"] = time.time()
        q = JOBS.update().where(JOBS.c.id == job_id).values(**values)
        if expect_states is not None:
            q = q.where(JOBS.c.state.in_(list(expect_states)))
        if expect_attempts is not None:
            q = q.where(JOBS.c.attempts == expect_attempts)
        with self.engine.begin() as c:
            return c.execute(q).rowcount == 1

    def start_attempt(
        self, job_id: str, attempts: int, *, restarts: int = 0, owner: str | None = None, message: str | None = None
    ) -> bool:
        """Queue run ``attempts + 1`` of a job now at ``attempts`` runs (conditional: once);
        ``restarts`` counts the runs in a row that a restart of the server interrupted."""
        values: dict[str, Any] = {
            "state": "queued",
            "attempts": attempts + 1,
            "restarts": restarts,
            "progress": 0.0,
            "message": message,
            "finished": None,
            "result": None,
        }
        if owner is not None:
            values["owner"] = owner
        return self.update(job_id, expect_attempts=attempts, **values)

    def active_jobs_of(self, owner: str) -> int:
        q = sa.select(sa.func.count()).select_from(JOBS).where(JOBS.c.owner == owner, JOBS.c.state.in_(UNFINISHED))
        with self.engine.connect() as c:
            return int(c.execute(q).scalar_one())

    # --- data sets -------------------------------------------------------------------------------
    def datasets(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(sa.select(DATASETS).order_by(DATASETS.c.name))]

    def dataset(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(DATASETS).where(DATASETS.c.name == name)).first()
        return None if row is None else dict(row._mapping)

    def add_dataset(self, name: str, path: str, owner: str) -> None:
        from .problems import Conflict

        try:
            with self.engine.begin() as c:
                c.execute(DATASETS.insert().values(name=name, path=path, owner=owner, created=time.time()))
        except sa.exc.IntegrityError:
            raise Conflict(f"a data set named {name!r} is already registered") from None

    def close(self) -> None:
        self.engine.dispose()
