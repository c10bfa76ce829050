"""The PCDF transformation service against a real ``treasure serve`` on a loopback port, spoken
to over HTTP with httpx and with the package's own client: its results are the CLI's outputs
bit for bit, identical requests run once, and every bad request gets a clear 4xx."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed (pip install '.[service]')")

import httpx
from service_server import READ_TOKEN, WRITE_TOKEN, Server, write_tokens

from treasure_hf import read_events
from treasure_hf.client import Client, ServiceError

pytestmark = pytest.mark.xdist_group("service")
TREASURE = [sys.executable, "-m", "treasure_hf.cli"]
N_EVENTS = 600


def _cli(*args: str) -> None:
    out = subprocess.run([*TREASURE, "-q", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


def _classifier(tokenizer, folder: Path) -> None:
    """An (untrained) event classifier for the tokenizer, saved with it as `treasure finetune` does."""
    import torch

    from treasure_hf.modeling import EventTransformerConfig, EventTransformerForSequenceClassification
    from treasure_hf.modeling.defaults import config_kwargs_from_tokenizer

    torch.manual_seed(0)
    config = EventTransformerConfig(
        **config_kwargs_from_tokenizer(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
        id2label={0: "background", 1: "signal"},
    )
    EventTransformerForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from hf_samples import tiny_tokenizer, write_samples

    base = tmp_path_factory.mktemp("service")
    root = base / "root"
    samples = write_samples(root / "datasets", n_events=N_EVENTS)
    tokenizer = tiny_tokenizer([samples["signal"]], root / "tokenizers" / "tiny", steps=5)
    _classifier(tokenizer, root / "models" / "clf")
    (base / "outside.pcdf").mkdir()
    (root / "datasets" / "escape").symlink_to(base / "outside.pcdf")  # a symlink out of the root
    (root / "elsewhere").mkdir()
    _cli("pcdf-to-h5", str(samples["background"]), str(root / "elsewhere" / "background.h5"))
    return root


@pytest.fixture(scope="module")
def server(root):
    with Server(root, write_tokens(root.parent / "tokens.json")) as s:
        yield s


@pytest.fixture()
def client(server):
    with Client(server.url, WRITE_TOKEN, timeout=120) as c:
        yield c


def test_conversion_job_equals_the_cli_output_bit_for_bit(client, server, root, tmp_path):
    job = client.submit("signal.pcdf", "pcdf-to-h5", max_objects={"jets": 4}, pt_cuts={"jets": 30})
    assert job["state"] in ("queued", "running") and job["new"]
    client.wait(job["id"], timeout=120)
    got = client.download(job["id"], tmp_path / "job.h5")
    _cli(
        "pcdf-to-h5",
        str(root / "datasets" / "signal.pcdf"),
        str(tmp_path / "cli.h5"),
        "--max-objects",
        "jets=4",
        "--pt-cut",
        "jets=30",
    )
    data = (tmp_path / "cli.h5").read_bytes()
    assert got.read_bytes() == data
    batch = read_events(got)
    assert batch["common/jets/pt"].shape == (N_EVENTS, 4) and np.all(batch["common/jets/pt"][batch.mask("jets")] >= 30)
    # a range request returns those bytes only
    r = httpx.get(
        f"{server.url}/jobs/{job['id']}/result",
        headers={"Authorization": f"Bearer {READ_TOKEN}", "Range": "bytes=1000-1999"},
    )
    assert r.status_code == 206 and r.content == data[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"


def test_tokenize_job_equals_the_cli_output_and_loads_with_datasets(client, root, tmp_path):
    from hf_samples import isolated_hf_cache

    job = client.submit("signal.pcdf", "tokenize", tokenizer="tiny", seed=3)
    done = client.wait(job["id"], timeout=300)
    assert done["result"]["kind"] == "directory"
    src, tok = root / "datasets" / "signal.pcdf", root / "tokenizers" / "tiny"
    _cli("tokenize", "--tokenizer", str(tok), "--data", str(src), "--out", str(tmp_path / "cli"), "--seed", "3")
    with isolated_hf_cache(tmp_path / "hf"):
        ds = client.load_dataset(job["id"], cache_dir=tmp_path / "downloads")
    assert {s: len(ds[s]) for s in ds} == {
        "train": pytest.approx(480, abs=40),
        "validation": pytest.approx(60, abs=25),
        "test": pytest.approx(60, abs=25),
    }
    assert sum(len(ds[s]) for s in ds) == N_EVENTS
    assert ds["train"].features["source"].names == [str(src)]
    local = tmp_path / "downloads" / job["id"]
    cli_files = sorted(p.relative_to(tmp_path / "cli").as_posix() for p in (tmp_path / "cli").rglob("*") if p.is_file())
    job_files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert job_files == cli_files and "data/train-00000-of-00001.parquet" in job_files
    for name in cli_files:
        a, b = (tmp_path / "cli" / name).read_bytes(), (local / name).read_bytes()
        if name == "README.md":  # the card names the directory it was written to, and that alone differs
            server_dir = str(root.resolve() / ".treasure-service" / "jobs" / job["id"] / "result")
            b = b.replace(server_dir.encode(), str(tmp_path / "cli").encode())
        assert a == b, name


def test_predict_job_equals_the_cli_output_bit_for_bit(client, root, tmp_path):
    job = client.submit("signal.pcdf", "predict", model="clf", batch_size=64)
    client.wait(job["id"], timeout=300)
    got = client.download(job["id"], tmp_path / "job.parquet")
    _cli(
        "predict",
        str(root / "datasets" / "signal.pcdf"),
        "--model",
        str(root / "models" / "clf"),
        "--out",
        str(tmp_path / "cli.parquet"),
        "--batch-size",
        "64",
    )
    assert got.read_bytes() == (tmp_path / "cli.parquet").read_bytes()


def test_identical_concurrent_requests_give_one_job(server, client):
    body = {"dataset": "background.pcdf", "transformation": "export", "params": {"types": ["muons", "jets"]}}
    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}

    def post(_):
        return httpx.post(f"{server.url}/jobs", json=body, headers=headers, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]  # one started it, the others joined it
    job_id = ids.pop()
    done = client.wait(job_id, timeout=120)
    assert done["attempts"] == 1  # it ran once
    assert [j["id"] for j in client.jobs()].count(job_id) == 1
    again = httpx.post(f"{server.url}/jobs", json=body, headers=headers, timeout=60)
    assert again.status_code == 200 and again.json()["state"] == "done"  # from the cache
    other = client.submit("background.pcdf", "export", types=["jets", "muons"])  # another order: another result
    assert other["id"] != job_id


def test_data_sets_are_described_without_a_full_read(client):
    names = {d["name"]: d for d in client.datasets()}
    assert set(names) == {"background.pcdf", "signal.pcdf"}  # the symlink out of the root is left out
    d = client.dataset("signal.pcdf")
    assert d["n_events"] == N_EVENTS and d["kind"] == "pcdf" and d["metadata"]["experiment"] == "ATLAS"
    jets = d["tables"]["jets"]
    stats = jets["statistics"]["pt"]
    assert jets["rows"] == stats["values"] and stats["nulls"] == 0 and 0 < stats["min"] <= stats["max"]
    assert {"name": "pt", "type": "float", "key": "common/jets/pt", "unit": "GeV"}.items() <= next(
        c for c in jets["columns"] if c["name"] == "pt"
    ).items()
    mult = client.multiplicity("signal.pcdf")["histograms"]
    assert sum(mult["muons"]["counts"]) == N_EVENTS
    assert mult["muons"]["mean"] == pytest.approx(2.5, abs=0.3)  # the signal sample's Poisson mean
    registered = client.register("background-h5", "elsewhere/background.h5")
    assert registered["kind"] == "h5" and registered["n_events"] == N_EVENTS
    h5 = client.dataset("background-h5")
    assert h5["datasets"]["common/jets/pt"]["shape"][0] == N_EVENTS
    pcdf = client.submit("background-h5", "h5-to-pcdf", events_per_part=250)
    assert client.wait(pcdf["id"], timeout=120)["result"]["kind"] == "directory"
    tr = {t["name"]: t for t in client.transformations()}
    assert {"pcdf-to-h5", "h5-to-pcdf", "tokenize", "export", "select", "predict"} <= set(tr)
    assert tr["predict"]["params"]["properties"]["model"]["enum"] == ["clf"]
    assert tr["tokenize"]["params"]["properties"]["tokenizer"]["enum"] == ["tiny"]
    assert "max_objects" in tr["pcdf-to-h5"]["params"]["properties"]
    spec = httpx.get(f"{client.url}/openapi.json").json()
    assert "/jobs/{job_id}/result" in spec["paths"] and "HTTPBearer" in spec["components"]["securitySchemes"]


def test_bad_requests_get_a_clear_4xx(server, root):
    write, read = {"Authorization": f"Bearer {WRITE_TOKEN}"}, {"Authorization": f"Bearer {READ_TOKEN}"}
    url = server.url

    def post_job(body, headers=write):
        return httpx.post(f"{url}/jobs", json=body, headers=headers, timeout=30)

    def refused(r, status, *words):
        assert r.status_code == status, (r.status_code, r.text)
        detail = r.json()["detail"]
        assert all(w in detail for w in words), detail

    refused(
        post_job({"dataset": "signal.pcdf", "transformation": "tokenise"}),
        404,
        "unknown transformation",
        "tokenise",
        "tokenize",
    )
    refused(post_job({"dataset": "nothing", "transformation": "export"}), 404, "nothing")
    refused(
        post_job({"dataset": "signal.pcdf", "transformation": "pcdf-to-h5", "params": {"max_objects": {"jets": 0}}}),
        422,
        "max_objects",
    )
    refused(
        post_job({"dataset": "signal.pcdf", "transformation": "pcdf-to-h5", "params": {"pt_cuts": {"jets": -5}}}),
        422,
        "pt_cuts",
    )
    refused(post_job({"dataset": "signal.pcdf", "transformation": "pcdf-to-h5", "params": {"bogus": 1}}), 422, "bogus")
    refused(post_job({"dataset": "signal.pcdf", "transformation": "h5-to-pcdf"}), 422, "h5-to-pcdf takes h5")
    refused(
        post_job({"dataset": "signal.pcdf", "transformation": "tokenize", "params": {"tokenizer": "absent"}}),
        422,
        "absent",
    )
    refused(
        post_job({"dataset": "signal.pcdf", "transformation": "export", "params": {"split": "../../x"}}), 422, "split"
    )
    # paths that leave the root
    refused(
        post_job({"dataset": "signal.pcdf", "transformation": "tokenize", "params": {"tokenizer": "../../etc"}}),
        400,
        "not a valid name",
    )
    refused(httpx.post(f"{url}/datasets", json={"name": "up", "path": "../outside.pcdf"}, headers=write), 400, "'..'")
    refused(httpx.post(f"{url}/datasets", json={"name": "abs", "path": "/etc"}, headers=write), 400, "absolute")
    refused(
        httpx.post(f"{url}/datasets", json={"name": "link", "path": "datasets/escape"}, headers=write),
        400,
        "leads out of the served root",
    )
    refused(httpx.get(f"{url}/datasets/escape", headers=read), 400, "leads out of the served root")
    refused(post_job({"dataset": "escape", "transformation": "export"}), 400, "leads out")
    refused(
        httpx.post(f"{url}/datasets", json={"name": "state", "path": ".treasure-service/jobs"}, headers=write),
        400,
        "own folder",
    )
    # tokens
    refused(post_job({"dataset": "signal.pcdf", "transformation": "export"}, headers={}), 401, "bearer token")
    refused(
        post_job(
            {"dataset": "signal.pcdf", "transformation": "export"}, headers={"Authorization": "Bearer not-a-token"}
        ),
        401,
        "unknown token",
    )
    refused(post_job({"dataset": "signal.pcdf", "transformation": "export"}, headers=read), 403, "read scope")
    refused(
        httpx.post(f"{url}/datasets", json={"name": "x", "path": "elsewhere/background.h5"}, headers=read), 403, "read"
    )
    refused(httpx.get(f"{url}/datasets"), 401, "bearer token")
    # sizes and states
    big = {"dataset": "signal.pcdf", "transformation": "export", "params": {"split": "x" * 100_000}}
    refused(post_job(big), 413, "exceeds the limit")
    refused(httpx.get(f"{url}/jobs/0123456789abcdef0123456789abcdef", headers=read), 404, "no job")
    assert httpx.get(f"{url}/jobs/..%2F..%2Fetc/result", headers=read).status_code == 404
    assert httpx.get(f"{url}/health").status_code == 200


def test_a_running_job_is_cancelled_and_a_token_has_a_job_limit(server, client):
    # four slow exports fill the token's quota of unfinished jobs; a fifth is refused
    jobs = [client.submit("signal.pcdf", "export", step=1, rows_per_shard=1 + k) for k in range(4)]
    with pytest.raises(ServiceError) as refused:
        client.submit("signal.pcdf", "export", step=1, rows_per_shard=99)
    assert refused.value.status == 429 and "unfinished" in str(refused.value)
    for job in jobs:
        cancelled = client.cancel(job["id"])
        assert cancelled["state"] == "cancelled"
    with pytest.raises(ServiceError) as again:
        client.cancel(jobs[0]["id"])
    assert again.value.status == 409
    r = httpx.get(f"{server.url}/jobs/{jobs[0]['id']}/result", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    restarted = client.submit("signal.pcdf", "export", step=1, rows_per_shard=1)  # a cancelled job runs again
    assert restarted["id"] == jobs[0]["id"] and restarted["new"] and restarted["attempts"] == 2
    client.cancel(restarted["id"])
    assert client.job(restarted["id"])["state"] == "cancelled"


def test_importing_the_package_and_its_cli_leaves_the_service_out():
    code = (
        "import sys, treasure_hf, treasure_hf.cli; treasure_hf.cli.build_parser(); "
        "print([m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', 'sqlalchemy', 'httpx') "
        "or m.startswith('treasure_hf.service')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_job_registry_gives_one_row_and_one_run_per_request(backend, tmp_path):
    import os

    from treasure_hf.service.registry import Registry

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    else:
        url = os.environ.get("TREASURE_TEST_DATABASE", "")
        if not url.startswith("postgresql"):
            pytest.skip(
                "set TREASURE_TEST_DATABASE=postgresql://USER@HOST:PORT/DB (a scratch database) to test PostgreSQL"
            )
    registry = Registry(url)
    job_id = f"test{os.getpid()}{abs(hash(str(tmp_path))) % 10**9}"

    def create(_):
        return registry.create(
            job_id, dataset="d", transformation="export", params={"step": 1}, input_version="v", owner="o"
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        created = list(pool.map(create, range(8)))
    assert created.count(True) == 1
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = list(pool.map(lambda _: registry.start_attempt(job_id, 0), range(4)))
    assert started.count(True) == 1 and registry.job(job_id)["attempts"] == 1
    assert registry.update(job_id, expect_states=("queued",), state="running")
    assert not registry.update(job_id, expect_states=("queued",), state="done")  # a transition happens once
    assert registry.job(job_id)["params"] == {"step": 1} and registry.active_jobs_of("o") >= 1
    registry.update(job_id, state="cancelled")
    registry.close()
