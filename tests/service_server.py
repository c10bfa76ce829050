"""A real ``treasure serve`` in a subprocess on a free loopback port, for the service's tests
and benchmark: started in its own process group (so that a test can kill it, Dask workers and
all, as a crash would), waited for on ``/health``, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

WRITE_TOKEN = "write-token-for-tests"
READ_TOKEN = "read-token-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_tokens(path: Path) -> Path:
    path.write_text(json.dumps({WRITE_TOKEN: "write", READ_TOKEN: "read"}))
    return path


class Server:
    def __init__(self, root: Path, tokens: Path, *, workers: int = 1, log: Path | None = None):
        self.root, self.tokens, self.workers = Path(root), Path(tokens), workers
        self.log = log or self.root.parent / f"serve-{os.getpid()}-{time.monotonic_ns()}.log"
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> Server:
        self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "treasure_hf.cli",
            "serve",
            "--root",
            str(self.root),
            "--port",
            str(self.port),
            "--tokens",
            str(self.tokens),
            "--workers",
            str(self.workers),
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"treasure serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"treasure serve did not answer within {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL to the server's process group: the server and its Dask workers die at once."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        try:  # what the server's group left (a worker that outlived it) goes too
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
