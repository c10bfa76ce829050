"""The service's web page in headless Chromium (Debian's package): a screenshot of the data sets
page with a job in progress, then done, and the job's row checked in the page's DOM."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed (pip install '.[service]')")

from service_server import READ_TOKEN, WRITE_TOKEN, Server, write_tokens

from treasure_hf.client import Client
from treasure_hf.data.pcdf import write_pcdf
from treasure_hf.data.synthetic import random_events

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless Chromium installed (Debian: apt-get install chromium; `make test` installs it where it can)",
)


def render(url: str, shot, profile) -> str:
    """The page's DOM after its scripts ran, and its screenshot in ``shot``."""
    out = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "--virtual-time-budget=4000",
            f"--screenshot={shot}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    return out.stdout


def row(dom: str, job_id: str) -> str:
    found = re.search(rf'<tr id="job-{job_id}" data-state="(\w+)">(.*?)</tr>', dom, re.S)
    assert found, dom[:3000]
    return found[1]


def test_the_page_shows_a_job_in_progress_then_done(tmp_path):
    root = tmp_path / "root"
    write_pcdf(root / "datasets" / "events.pcdf", random_events(10_000, 3), events_per_part=5_000)
    with Server(root, write_tokens(tmp_path / "tokens.json")) as server, Client(server.url, WRITE_TOKEN) as c:
        job = c.submit("events.pcdf", "pcdf-to-h5", step=50, max_objects={"jets": 6})
        deadline = time.monotonic() + 120
        while not (c.job(job["id"])["state"] == "running" and c.job(job["id"])["progress"] < 0.3):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        url = f"{server.url}/#token={READ_TOKEN}"
        dom = render(url, tmp_path / "running.png", tmp_path / "profile")
        assert row(dom, job["id"]) == "running"
        assert 'id="ds-events.pcdf"' in dom and "10000" in dom  # the data set with its events
        assert "<svg" in dom and "jets" in dom  # its multiplicity plots
        c.wait(job["id"], timeout=300)
        dom = render(url, tmp_path / "done.png", tmp_path / "profile")
        assert row(dom, job["id"]) == "done"
        assert "100%" in re.search(rf'<tr id="job-{job["id"]}".*?</tr>', dom, re.S)[0]
