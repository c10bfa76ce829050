"""The HTTP API (FastAPI): data sets, transformations and jobs, the page at ``/``, and the
OpenAPI schema at ``/openapi.json`` (``/docs`` shows it). Every route but ``/``, ``/static``,
``/health`` and the schema needs a bearer token; registering data and starting or cancelling
jobs need its ``write`` scope."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..errors import AccessError, TreasureError
from .catalog import Catalog
from .describe import DescriptionCache, describe, multiplicity, summary
from .jobs import JobManager
from .limits import BodyLimit
from .problems import Conflict, Forbidden, Problem, Unauthorized
from .registry import Registry
from .results import served_file
from .settings import MODELS_DIR, TOKENIZERS_DIR, ServiceSettings
from .tokens import allows, scope_of, token_id
from .transformations import TRANSFORMATIONS

logger = logging.getLogger(__name__)

PAGE = Path(__file__).resolve().parent / "page"
MEDIA_TYPES = {
    ".h5": "application/x-hdf5",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".md": "text/markdown",
}


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(max_length=128, description="name of a registered data set")
    transformation: str = Field(max_length=64, description="one of GET /transformations")
    params: dict[str, Any] = Field(default_factory=dict, description="its parameters (see their JSON schema)")


class DatasetRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=128)
    path: str = Field(max_length=4096, description="relative to the served root")


def create_app(settings: ServiceSettings) -> FastAPI:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    registry = Registry(settings.database_url)
    catalog = Catalog(settings.root, registry)
    manager = JobManager(settings, registry, catalog)
    descriptions = DescriptionCache()
    bearer = HTTPBearer(auto_error=False, description="a token of the service's --tokens file")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await anyio.to_thread.run_sync(manager.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(manager.stop)
            registry.close()

    app = FastAPI(
        title="treasure-hf PCDF transformation service",
        version=__version__,
        lifespan=lifespan,
        description="Pre-determined transformations of registered collider data sets, run on Dask, "
        "cached by content, resumable, behind bearer tokens.",
    )
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.state.manager = manager

    def needs(scope: str):
        def check(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
            if credentials is None:
                raise Unauthorized("a bearer token is needed: Authorization: Bearer TOKEN")
            found = scope_of(settings.tokens, credentials.credentials)
            if found is None:
                raise Unauthorized("unknown token")
            if not allows(found, scope):
                raise Forbidden(f"this token has the {found} scope; this request needs {scope}")
            return token_id(credentials.credentials)

        return check

    reader, writer = Depends(needs("read")), Depends(needs("write"))

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status, headers=headers)

    @app.exception_handler(TreasureError)
    async def _treasure(request: Request, exc: TreasureError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400 if isinstance(exc, AccessError) else 422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        text = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(
            {"detail": f"bad request: {text}", "errors": [{k: e[k] for k in ("loc", "msg", "type")} for e in errors]},
            status_code=422,
        )

    # --- page and health -------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((PAGE / "index.html").read_text())

    app.mount("/static", StaticFiles(directory=PAGE), name="static")

    @app.get("/health", tags=["service"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "transformations": sorted(TRANSFORMATIONS)}

    # --- data sets -------------------------------------------------------------------------------
    def described(entry) -> dict[str, Any]:
        return descriptions.get("describe", entry, describe)

    @app.get("/datasets", tags=["datasets"])
    def list_datasets(_: str = reader) -> list[dict[str, Any]]:
        out = []
        for entry in catalog.datasets():
            try:
                out.append(summary(described(entry)))
            except TreasureError as exc:  # a damaged data set is listed with its error
                out.append({"name": entry.name, "kind": entry.kind, "path": entry.relative, "error": str(exc)})
        return out

    @app.get("/datasets/{name}", tags=["datasets"])
    def get_dataset(name: str, _: str = reader) -> dict[str, Any]:
        return described(catalog.dataset(name))

    @app.get("/datasets/{name}/multiplicity", tags=["datasets"])
    def get_multiplicity(name: str, _: str = reader) -> dict[str, Any]:
        return descriptions.get("multiplicity", catalog.dataset(name), multiplicity)

    @app.post("/datasets", status_code=201, tags=["datasets"])
    def register_dataset(body: DatasetRegistration, owner: str = writer) -> dict[str, Any]:
        return summary(described(catalog.register(body.name, body.path, owner)))

    @app.get("/tokenizers", tags=["datasets"])
    def list_tokenizers(_: str = reader) -> list[str]:
        return catalog.names(TOKENIZERS_DIR)

    @app.get("/models", tags=["datasets"])
    def list_models(_: str = reader) -> list[str]:
        return catalog.names(MODELS_DIR)

    # --- transformations and jobs ----------------------------------------------------------------
    @app.get("/transformations", tags=["jobs"])
    def list_transformations(_: str = reader) -> list[dict[str, Any]]:
        out = []
        for t in TRANSFORMATIONS.values():
            d = t.describe()
            for param, folder in t.resources.items():  # the names a parameter may take now
                d["params"]["properties"][param]["enum"] = catalog.names(f"{folder}s")
            out.append(d)
        return out

    @app.post(
        "/jobs",
        tags=["jobs"],
        status_code=201,
        responses={200: {"description": "the same request exists already (running, or done and cached)"}},
    )
    def post_job(body: JobRequest, owner: str = writer) -> JSONResponse:
        view, created = manager.request(body.dataset, body.transformation, body.params, owner)
        return JSONResponse({**view, "new": created}, status_code=201 if created else 200)

    @app.get("/jobs", tags=["jobs"])
    def list_jobs(limit: int = 100, _: str = reader) -> list[dict[str, Any]]:
        return manager.views(max(1, min(limit, 1000)))

    @app.get("/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str, _: str = reader) -> dict[str, Any]:
        return manager.view(manager.job(job_id))

    def finished(job_id: str) -> dict[str, Any]:
        row = manager.job(job_id)
        if row["state"] != "done":
            why = f": {row['message']}" if row["state"] in ("failed", "cancelled") and row["message"] else ""
            raise Conflict(f"job {job_id} is {row['state']}{why}; a result is served only once it is done")
        if not manager.intact(row):
            raise Conflict(f"the result of job {job_id} is no longer complete in the cache: request the job again")
        return row

    def file_response(row: dict[str, Any], path: str) -> FileResponse:
        man = row["result"]
        target = served_file(manager.work_dir(row["id"]), man, path)
        entry = next(e for e in man["files"] if e["path"] == path)
        name = (
            f"{row['dataset']}.{row['transformation']}.{row['id'][:8]}{target.suffix}"
            if man["kind"] == "file"
            else Path(path).name
        )
        return FileResponse(
            target,
            media_type=MEDIA_TYPES.get(target.suffix, "application/octet-stream"),
            filename=name,
            headers={"X-Content-SHA256": entry["sha256"]},
        )

    @app.get(
        "/jobs/{job_id}/result",
        tags=["jobs"],
        responses={
            200: {
                "description": "the file itself (HTTP ranges supported), or the manifest of a "
                "directory result: its files with sizes, SHA-256 and URLs"
            }
        },
    )
    def get_result(job_id: str, _: str = reader):
        row = finished(job_id)
        man = row["result"]
        if man["kind"] == "file":
            return file_response(row, man["files"][0]["path"])
        files = [{**e, "url": f"/jobs/{job_id}/files/{e['path']}"} for e in man["files"]]
        return {"job": job_id, "kind": "directory", "name": man["name"], "bytes": man["bytes"], "files": files}

    @app.get("/jobs/{job_id}/files/{path:path}", tags=["jobs"])
    def get_result_file(job_id: str, path: str, _: str = reader) -> FileResponse:
        row = finished(job_id)
        return file_response(row, path)

    @app.delete("/jobs/{job_id}", tags=["jobs"])
    def cancel_job(job_id: str, _: str = writer) -> dict[str, Any]:
        return manager.cancel(job_id)

    return app
