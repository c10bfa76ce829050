"""A loopback Hugging Face Hub for the tests: a threaded ``http.server`` that speaks the
endpoints the real ``huggingface_hub`` client calls to push and pull (no client is mocked).

Implemented: ``POST /api/repos/create``, ``POST /api/validate-yaml``,
``POST /api/{type}s/{id}/preupload/{rev}`` (every file "regular": committed inline, no LFS or Xet
server needed, so clients run with ``HF_HUB_DISABLE_XET=1``), ``POST /api/{type}s/{id}/commit/{rev}``
(ndjson: header, file, deletedFile, deletedFolder), ``GET /api/{type}s/{id}[/revision/{rev}]``
(repo info with siblings), ``GET /api/{type}s/{id}/tree/{rev}[/{path}]``, ``POST
/api/{type}s/{id}/paths-info/{rev}`` and ``HEAD``/``GET /[{type}s/]{id}/resolve/{rev}/{path}``
with the headers ``hf_hub_download`` reads (``ETag``, ``X-Repo-Commit``, ``Content-Length``).
Anything else answers 404 and is recorded in ``unhandled``, so a test sees what it missed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

PREFIX = {"models": "", "datasets": "datasets/", "spaces": "spaces/"}
API = re.compile(
    r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(preupload|commit|tree|revision|paths-info)"
    r"(?:/([^/]+))?(/.*)?)?$"
)
RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> files at that commit
    history: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)

    @property
    def head(self) -> str:
        return self.history[-1]

    def files(self, revision: str) -> dict[str, bytes] | None:
        sha = self.head if revision in ("main", "HEAD") else revision
        return self.commits.get(sha)


class HubState:
    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []

    def create(self, repo_type: str, repo_id: str) -> tuple[Repo, bool]:
        with self.lock:
            key = (repo_type, repo_id)
            if key in self.repos:
                return self.repos[key], False
            repo = Repo(repo_type, repo_id)
            sha = hashlib.sha1(f"init {repo_type} {repo_id}".encode()).hexdigest()
            repo.commits[sha], repo.messages[sha] = {}, "initial commit"
            repo.history.append(sha)
            self.repos[key] = repo
            return repo, True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackHub

    def log_message(self, format: str, *args) -> None:
        pass

    # --- plumbing ---------------------------------------------------------------------------------
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(
        self,
        status: int,
        payload=None,
        headers: dict[str, str] | None = None,
        head: bool = False,
        raw: bytes | None = None,
    ) -> None:
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message}, {"X-Error-Message": message})

    def _unhandled(self) -> None:
        self.server.state.unhandled.append((self.command, self.path))
        self._error(404, f"loopback hub: {self.command} {self.path} is not implemented")

    def _repo(self, kind: str, repo_id: str) -> Repo | None:
        repo = self.server.state.repos.get((kind[:-1], repo_id))
        if repo is None:
            self.send_response(404)
            body = json.dumps({"error": "Repository not found"}).encode()
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        return repo

    def url(self, repo: Repo) -> str:
        return f"{self.server.endpoint}/{PREFIX[repo.repo_type + 's']}{repo.repo_id}"

    # --- verbs -------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        self.server.state.requests.append(("POST", path))
        body = self._body()
        if path == "/api/repos/create":
            data = json.loads(body)
            repo_type = data.get("type") or "model"
            repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
            repo, new = self.server.state.create(repo_type, repo_id)
            if not new:
                return self._send(409, {"error": "You already created this repo", "url": self.url(repo)})
            return self._send(200, {"url": self.url(repo), "name": repo_id, "id": repo_id})
        if path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            m = re.match(r"^---\n(.*?)\n---", content, re.S)
            try:
                meta = yaml.safe_load(m.group(1)) if m else {}
            except yaml.YAMLError as exc:
                return self._send(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
            if m and not isinstance(meta, dict):
                return self._send(400, {"errors": [{"message": "metadata must be a mapping"}]})
            return self._send(200, {"warnings": [] if meta else [{"message": "empty metadata"}]})
        m = API.match(path)
        if not m or m.group(3) not in ("preupload", "commit", "paths-info"):
            return self._unhandled()
        kind, repo_id, action, revision = m.group(1), m.group(2), m.group(3), unquote(m.group(4) or "main")
        repo = self._repo(kind, repo_id)
        if repo is None:
            return
        if action == "preupload":
            files = json.loads(body)["files"]
            return self._send(
                200,
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files
                    ]
                },
            )
        if action == "paths-info":
            form = parse_qs(body.decode()) if body and not body.startswith(b"{") else {}
            wanted = form.get("paths") or (json.loads(body).get("paths", []) if body.startswith(b"{") else [])
            files = repo.files(revision) or {}
            return self._send(200, [self._entry(p, files[p]) for p in wanted if p in files])
        return self._commit(repo, revision, body)

    def _commit(self, repo: Repo, revision: str, body: bytes) -> None:
        with self.server.state.lock:
            if revision not in ("main", repo.head):
                return self._error(409, f"can only commit on main (at {repo.head}), not {revision}")
            files = dict(repo.files("main"))
            summary = ""
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    summary = value.get("summary", "")
                    parent = value.get("parentCommit")
                    if parent and parent != repo.head:
                        return self._error(412, f"parent commit {parent} is not the head {repo.head}")
                elif key == "file":
                    if value.get("encoding") != "base64":
                        return self._error(400, f"unsupported encoding {value.get('encoding')}")
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: c for p, c in files.items() if not p.startswith(prefix)}
                else:  # lfsFile: this hub never asked for LFS, so it has no such blob
                    return self._error(422, f"loopback hub: operation {key!r} needs an LFS server")
            h = hashlib.sha1(repo.head.encode())
            for p in sorted(files):
                h.update(p.encode() + b"\0" + git_blob_sha(files[p]).encode())
            sha = h.hexdigest()
            repo.commits[sha], repo.messages[sha] = files, summary
            repo.history.append(sha)
        self._send(200, {"commitUrl": f"{self.url(repo)}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None})

    @staticmethod
    def _entry(path: str, content: bytes) -> dict:
        return {"type": "file", "path": path, "size": len(content), "oid": git_blob_sha(content)}

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _get(self, head: bool) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        self.server.state.requests.append((self.command, path))
        m = RESOLVE.match(path)
        if m:
            kind = m.group(1) or "models"
            repo = self._repo(kind, m.group(2))
            if repo is None:
                return
            revision = m.group(3)
            files = repo.files(revision)
            if files is None:
                return self._error(404, f"revision {revision} not found")
            if m.group(4) not in files:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            content = files[m.group(4)]
            sha = repo.head if revision in ("main", "HEAD") else revision
            return self._send(
                200,
                raw=content,
                head=head,
                headers={
                    "ETag": f'"{git_blob_sha(content)}"',
                    "X-Repo-Commit": sha,
                    "Content-Type": "application/octet-stream",
                    "Accept-Ranges": "bytes",
                },
            )
        m = API.match(path)
        if not m or m.group(3) not in (None, "revision", "tree"):
            return self._unhandled()
        kind, repo_id, action = m.group(1), m.group(2), m.group(3)
        repo = self._repo(kind, repo_id)
        if repo is None:
            return
        revision = unquote(m.group(4) or "main")
        files = repo.files(revision)
        if files is None:
            return self._error(404, f"revision {revision} not found")
        sha = repo.head if revision in ("main", "HEAD") else revision
        if action == "tree":
            sub = (m.group(5) or "").strip("/")
            recursive = parse_qs(split.query).get("recursive", ["false"])[0].lower() in ("true", "1")
            entries, dirs = [], set()
            for p in sorted(files):
                if sub and not p.startswith(sub + "/"):
                    continue
                rest = p[len(sub) + 1 :] if sub else p
                parts = rest.split("/")
                for i in range(1, len(parts)):
                    d = "/".join(([sub] if sub else []) + parts[:i])
                    if d not in dirs and (recursive or i == 1):
                        dirs.add(d)
                        entries.append(
                            {"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0}
                        )
                if recursive or len(parts) == 1:
                    entries.append(self._entry(p, files[p]))
            return self._send(200, entries, head=head)
        info = {
            "id": repo.repo_id,
            "_id": repo.repo_id,
            "sha": sha,
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p, "size": len(c), "blobId": git_blob_sha(c)} for p, c in sorted(files.items())],
        }
        self._send(200, info, head=head)


class LoopbackHub(ThreadingHTTPServer):
    """``with LoopbackHub() as hub:`` serves on ``hub.endpoint`` (127.0.0.1, a free port)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = HubState()
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

    def client_env(self, base: dict[str, str]) -> dict[str, str]:
        """Environment for a client process that talks to this hub and nowhere else."""
        env = {
            k: v for k, v in base.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
        }
        env.update(
            {
                "HF_ENDPOINT": self.endpoint,
                "HF_HUB_DISABLE_XET": "1",
                "HF_TOKEN": "hf_loopback_token",
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_ETAG_TIMEOUT": "30",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        return env
