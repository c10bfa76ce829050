"""Load test of the PCDF transformation service, against loopback only.

Starts ``treasure serve`` on a free port of 127.0.0.1 over a fresh root (two synthetic PCDF data
sets), starts three jobs (pcdf-to-h5, export, select) so that some run while the clients poll,
then ``--clients`` concurrent clients (default 50, one connection each) loop for ``--seconds``
(default 30): ``GET /datasets``, ``GET /jobs/{id}`` of a job, ``GET /jobs``. Every request is
bounded by its timeout and the loop by the duration; nothing is sent anywhere but 127.0.0.1.

Prints one JSON document: requests, errors, requests per second, latency percentiles per route
and over all (ms). Goal: no error, and a p99 below ``--target-p99-ms`` (default 1000 ms, so that
the page, which polls every second, stays live under that load).
Usage: ``python benchmarks/service_load.py [--clients 50] [--seconds 30] [--events 2000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from service_server import READ_TOKEN, WRITE_TOKEN, Server, write_tokens


async def _client(
    url: str, job_ids: list[str], stop_at: float, seed: int, out: dict[str, list[float]], errors: list[str]
) -> None:
    import httpx

    rng = random.Random(seed)
    routes = [
        ("datasets", lambda: "/datasets"),
        ("job", lambda: f"/jobs/{rng.choice(job_ids)}"),
        ("jobs", lambda: "/jobs"),
    ]
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
        timeout=30.0,
        limits=httpx.Limits(max_connections=1),
    ) as http:
        i = seed
        while time.monotonic() < stop_at:
            name, path = routes[i % len(routes)]
            i += 1
            t0 = time.perf_counter()
            try:
                r = await http.get(path())
                ok = r.status_code == 200
                if not ok:
                    errors.append(f"{name}: HTTP {r.status_code} {r.text[:200]}")
            except Exception as exc:
                ok = False
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
            if ok:
                out.setdefault(name, []).append(1000 * (time.perf_counter() - t0))


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms) if ms else np.zeros(1)
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p90_ms": round(float(np.percentile(a, 90)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--events", type=int, default=2000, help="events per data set")
    p.add_argument("--target-p99-ms", type=float, default=1000.0)
    args = p.parse_args()

    from treasure_hf.client import Client
    from treasure_hf.data.pcdf import write_pcdf
    from treasure_hf.data.synthetic import random_events

    with tempfile.TemporaryDirectory(prefix="treasure-load-") as tmp:
        root = Path(tmp) / "root"
        for k, name in enumerate(("a.pcdf", "b.pcdf")):
            write_pcdf(root / "datasets" / name, random_events(args.events, k), events_per_part=args.events // 2)
        with Server(root, write_tokens(Path(tmp) / "tokens.json"), log=Path(tmp) / "serve.log") as server:
            with Client(server.url, WRITE_TOKEN) as c:
                jobs = [
                    c.submit("a.pcdf", "pcdf-to-h5", step=100),
                    c.submit("b.pcdf", "export", step=100),
                    c.submit("a.pcdf", "select", step=100),
                ]
            latencies: dict[str, list[float]] = {}
            errors: list[str] = []
            stop_at = time.monotonic() + args.seconds
            t0 = time.monotonic()

            async def run() -> None:
                await asyncio.gather(
                    *(
                        _client(server.url, [j["id"] for j in jobs], stop_at, k, latencies, errors)
                        for k in range(args.clients)
                    )
                )

            asyncio.run(run())
            elapsed = time.monotonic() - t0
            with Client(server.url, READ_TOKEN) as c:
                states = [c.job(j["id"])["state"] for j in jobs]
    everything = [x for v in latencies.values() for x in v]
    total = _percentiles(everything)
    report = {
        "benchmark": "service_load",
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": len(everything) + len(errors),
        "errors": len(errors),
        "first_errors": errors[:5],
        "requests_per_s": round((len(everything) + len(errors)) / elapsed, 1),
        "latency": total,
        "routes": {k: _percentiles(v) for k, v in sorted(latencies.items())},
        "jobs_at_end": states,
        "target_p99_ms": args.target_p99_ms,
        "ok": not errors and total["p99_ms"] < args.target_p99_ms,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
