"""``Client(url, token)``: the PCDF transformation service (``treasure serve``) from Python.

    from treasure_hf.client import Client

    with Client("http://127.0.0.1:8000", token) as c:
        job = c.submit("signal.pcdf", "tokenize", tokenizer="rvq")
        c.wait(job["id"])
        ds = c.load_dataset(job["id"])          # datasets.load_dataset on the job's shards

Downloads are checked against the SHA-256 of the result's manifest, continue an interrupted
transfer with an HTTP range request, and appear whole (a temporary sibling renamed when
complete). Needs the ``service`` extra (httpx).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from .data.atomic import commit, remove, temporary_directory
from .errors import OutputError, TreasureError
from .provenance import file_sha256 as _sha256

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ServiceError(TreasureError):
    """The service refused a request (``status``: its HTTP status) or a job ended without a result."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Client:
    """The API of a ``treasure serve`` at ``url`` with a bearer ``token``."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ServiceError(
                f"{method} {self.url}{path}: HTTP {response.status_code}: {detail}", response.status_code
            )
        return response.json()

    # --- data sets and transformations -----------------------------------------------------------
    def datasets(self) -> list[dict[str, Any]]:
        return self._call("GET", "/datasets")

    def dataset(self, name: str) -> dict[str, Any]:
        """Metadata, schema, event counts and Parquet statistics of a data set."""
        return self._call("GET", f"/datasets/{name}")

    def multiplicity(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{name}/multiplicity")

    def register(self, name: str, path: str) -> dict[str, Any]:
        """Register the data set at ``path`` (relative to the served root) as ``name`` (write scope)."""
        return self._call("POST", "/datasets", json={"name": name, "path": path})

    def transformations(self) -> list[dict[str, Any]]:
        return self._call("GET", "/transformations")

    def tokenizers(self) -> list[str]:
        return self._call("GET", "/tokenizers")

    # --- jobs ------------------------------------------------------------------------------------
    def submit(self, dataset: str, transformation: str, **params: Any) -> dict[str, Any]:
        """Start ``transformation`` on ``dataset`` (or get the job that already ran or runs it)."""
        return self._call(
            "POST", "/jobs", json={"dataset": dataset, "transformation": transformation, "params": params}
        )

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._call("GET", "/jobs", params={"limit": limit})

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/jobs/{job_id}")

    def wait(self, job_id: str, timeout: float = 3600.0, poll: float = 0.5) -> dict[str, Any]:
        """The job once done; :class:`ServiceError` when it failed, was cancelled or ``timeout`` [s] passed."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] == "done":
                return job
            if job["state"] in ("failed", "cancelled"):
                raise ServiceError(f"job {job_id} {job['state']}: {job.get('message')}")
            if time.monotonic() > deadline:
                raise ServiceError(f"job {job_id} is still {job['state']} after {timeout:g} s")
            time.sleep(poll)

    def manifest(self, job_id: str) -> dict[str, Any]:
        """The files of a done job's result: ``{"kind", "name", "bytes", "files": [{"path", "bytes", "sha256"}]}``."""
        job = self.job(job_id)
        if job["state"] != "done":
            raise ServiceError(f"job {job_id} is {job['state']}: no result yet", 409)
        if job["result"]["kind"] == "directory":
            return self._call("GET", f"/jobs/{job_id}/result")
        r = job["result"]
        return {
            "kind": "file",
            "name": r["name"],
            "bytes": r["bytes"],
            "files": [{"path": r["name"], "bytes": r["bytes"], "sha256": r["sha256"], "url": f"/jobs/{job_id}/result"}],
        }

    def _fetch(self, url: str, dst: Path, size: int, sha256: str | None) -> None:
        """Download ``url`` to ``dst``, continuing a partial ``dst`` with a range request."""
        have = dst.stat().st_size if dst.exists() else 0
        if have > size:
            dst.unlink()
            have = 0
        if have < size or size == 0:
            headers = {"Range": f"bytes={have}-"} if have else {}
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code >= 400:
                    raise ServiceError(f"GET {self.url}{url}: HTTP {response.status_code}", response.status_code)
                mode = "ab" if have and response.status_code == 206 else "wb"
                with open(dst, mode) as f:
                    for block in response.iter_bytes(_CHUNK):
                        f.write(block)
        if dst.stat().st_size != size or (sha256 and _sha256(dst) != sha256):
            dst.unlink()
            raise ServiceError(f"{self.url}{url}: the download does not match the result's size and SHA-256")

    def download(self, job_id: str, dst: str | os.PathLike) -> Path:
        """Write a done job's result to ``dst`` (the file, or the directory of a manifest). An
        existing ``dst`` is kept when it already holds exactly the result, refused otherwise."""
        dst = Path(dst)
        man = self.manifest(job_id)
        if os.path.lexists(dst):
            if self._matches(dst, man):
                return dst
            raise OutputError(dst, None, f"exists and is not the result of job {job_id}: it is left untouched")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if man["kind"] == "file":
            entry = man["files"][0]
            part = dst.with_name(f".{dst.name}.part-{job_id[:8]}")
            self._fetch(entry["url"], part, entry["bytes"], entry["sha256"])
            os.replace(part, dst)
            return dst
        tmp = temporary_directory(dst)
        try:
            for entry in man["files"]:
                target = tmp / entry["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                self._fetch(entry["url"], target, entry["bytes"], entry["sha256"])
        except BaseException:
            remove(tmp)
            raise
        commit(tmp, dst)
        return dst

    @staticmethod
    def _matches(dst: Path, man: dict[str, Any]) -> bool:
        if man["kind"] == "file":
            entry = man["files"][0]
            return dst.is_file() and dst.stat().st_size == entry["bytes"] and _sha256(dst) == entry["sha256"]
        try:
            return all(
                (dst / e["path"]).stat().st_size == e["bytes"] and _sha256(dst / e["path"]) == e["sha256"]
                for e in man["files"]
            )
        except OSError:
            return False

    def load_dataset(self, job_id: str, cache_dir: str | os.PathLike | None = None, **kwargs: Any):
        """``datasets.load_dataset`` on the shards of a done tokenize (or export) job, downloaded
        once into ``cache_dir/JOB_ID`` (default: ``~/.cache/treasure_hf/service``)."""
        import datasets

        base = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "treasure_hf" / "service"
        local = self.download(job_id, base / job_id)
        return datasets.load_dataset(str(local), **kwargs)
