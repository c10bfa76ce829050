"""A ``treasure serve`` killed in the middle of a job (SIGKILL to the server and its Dask
workers, as a crash would) and started again: the job resumes and ends with the CLI's output
bit for bit, a job whose input changed meanwhile fails with that reason, and no partial result
is ever served or left in the result's place."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed (pip install '.[service]')")

from service_server import READ_TOKEN, WRITE_TOKEN, Server, write_tokens

from treasure_hf.client import Client
from treasure_hf.data.pcdf import write_pcdf
from treasure_hf.data.synthetic import random_events


def test_a_restart_mid_job_resumes_it_or_fails_it_cleanly(tmp_path):
    root = tmp_path / "root"
    write_pcdf(root / "datasets" / "big.pcdf", random_events(10_000, 7), events_per_part=5_000)
    write_pcdf(root / "datasets" / "small.pcdf", random_events(200, 8))
    tokens = write_tokens(tmp_path / "tokens.json")
    server = Server(root, tokens).start()
    try:
        with Client(server.url, WRITE_TOKEN) as c:
            slow = c.submit("big.pcdf", "pcdf-to-h5", step=100)
            waiting = c.submit("small.pcdf", "export")  # queued behind it: one worker
            deadline = time.monotonic() + 120
            while True:
                job = c.job(slow["id"])
                if job["state"] == "running" and 0.05 < job["progress"] < 0.8:
                    break
                assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
                time.sleep(0.05)
            with Client(server.url, READ_TOKEN) as reader:
                with pytest.raises(Exception) as early:
                    reader.download(slow["id"], tmp_path / "early.h5")
            assert getattr(early.value, "status", None) == 409 and not (tmp_path / "early.h5").exists()
            server.kill()
    finally:
        server.kill()
    work = root / ".treasure-service" / "jobs" / slow["id"]
    assert not (work / "result.h5").exists()  # the killed run's output is a temporary only
    assert [p for p in work.iterdir() if p.name.startswith(".result.h5.tmp-")]
    write_pcdf(root / "datasets" / "small.pcdf", random_events(200, 9))  # changed while the server was down

    with Server(root, tokens, log=server.log) as again, Client(again.url, WRITE_TOKEN) as c:
        resumed = c.job(slow["id"])
        assert resumed["state"] in ("queued", "running") and resumed["attempts"] == 2
        assert "resumed after a restart" in resumed["message"]
        failed = c.job(waiting["id"])
        assert failed["state"] == "failed" and "changed" in failed["message"]
        c.wait(slow["id"], timeout=300)
        got = c.download(slow["id"], tmp_path / "job.h5")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "treasure_hf.cli",
            "-q",
            "pcdf-to-h5",
            "--step",
            "100",
            str(root / "datasets" / "big.pcdf"),
            str(tmp_path / "cli.h5"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert got.read_bytes() == (tmp_path / "cli.h5").read_bytes()
    assert sorted(p.name for p in work.iterdir()) == [
        "progress.json",
        "result.h5",
    ]  # the killed run's temporary is gone
