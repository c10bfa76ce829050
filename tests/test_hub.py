"""Push to and pull from a loopback hub with the real huggingface_hub client: tokenizers and data
sets come back byte for byte and tokenize / load the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hub_server import LoopbackHub

PULL_TOKENIZER = """
import json, sys
import numpy as np
import treasure_hf
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], cache_dir=sys.argv[2])
enc = tok(treasure_hf.read_events(sys.argv[3], 0, 20))
print(json.dumps({"cls": type(tok).__name__, "ids": np.asarray(enc["input_ids"]).tolist()}))
"""

PULL_DATASET = """
import json, sys
import datasets
ds = datasets.load_dataset(sys.argv[1], cache_dir=sys.argv[2])           # straight from the hub repo
stream = list(datasets.load_dataset(sys.argv[1], split="test", streaming=True))
print(json.dumps({"splits": {k: len(v) for k, v in ds.items()}, "ids": ds["test"]["input_ids"][:5],
                  "streamed": [r["input_ids"] for r in stream[:5]]}))
"""


def run(args, env, cwd):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out


@pytest.fixture(scope="module", autouse=True)
def _hf_cache(tmp_path_factory):
    from hf_samples import isolated_hf_cache

    with isolated_hf_cache(tmp_path_factory.mktemp("hf_cache")) as path:
        yield path


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    from hf_samples import tiny_tokenizer, write_samples

    from treasure_hf.hf.tokenize import tokenize_to_dataset

    root = tmp_path_factory.mktemp("hub")
    samples = write_samples(root / "samples", n_events=60)
    tiny_tokenizer(list(samples.values()), root / "tok", steps=10)
    data = tokenize_to_dataset(
        root / "tok",
        list(samples.values()),
        root / "data",
        split="train=0.5,test=0.5",
        labels={str(p): k for k, p in samples.items()},
        progress=False,
    )
    return root, samples, data


def test_tokenizer_and_data_set_go_to_the_hub_and_come_back(artefacts, tmp_path):
    root, samples, data = artefacts
    with LoopbackHub() as hub:
        env = hub.client_env(dict(os.environ))
        for folder, repo in ((root / "tok", "physicist/tiny-tokenizer"), (data, "physicist/tiny-events")):
            run(["-m", "treasure_hf.cli", "push", str(folder), "--repo-id", repo], env, tmp_path)
        # pushing again is a new commit on the existing repo
        run(
            ["-m", "treasure_hf.cli", "push", str(root / "tok"), "--repo-id", "physicist/tiny-tokenizer"], env, tmp_path
        )
        assert not hub.state.unhandled, hub.state.unhandled
        tok_repo = hub.state.repos[("model", "physicist/tiny-tokenizer")]
        assert len(tok_repo.history) == 3  # creation + two pushes
        files = tok_repo.files("main")
        for name in ("event_tokenizer.json", "quantizers.safetensors"):
            assert files[name] == (root / "tok" / name).read_bytes()
        # the tokenizer's code travels with it, for trust_remote_code where treasure_hf is absent
        config = json.loads(files["tokenizer_config.json"])
        assert config["auto_map"]["AutoTokenizer"][0] == "tokenization_event.EventTokenizer"
        assert {"tokenization_event.py", "schema.py", "modeling_quantizer.py"} <= set(files)
        card = files["README.md"].decode()
        assert 'AutoTokenizer.from_pretrained("physicist/tiny-tokenizer")' in card and "muons" in card

        got = json.loads(
            run(
                ["-c", PULL_TOKENIZER, "physicist/tiny-tokenizer", str(tmp_path / "hf"), str(samples["signal"])],
                env,
                tmp_path,
            ).stdout.splitlines()[-1]
        )
        from treasure_hf import read_events
        from treasure_hf.tokenization import EventTokenizer

        local = EventTokenizer.from_pretrained(root / "tok")
        assert got["cls"] == "EventTokenizer"
        assert np.array_equal(got["ids"], np.asarray(local(read_events(samples["signal"], 0, 20))["input_ids"]))

        ds_files = hub.state.repos[("dataset", "physicist/tiny-events")].files("main")
        assert 'load_dataset("physicist/tiny-events")' in ds_files["README.md"].decode()
        pulled = json.loads(
            run(["-c", PULL_DATASET, "physicist/tiny-events", str(tmp_path / "hf")], env, tmp_path).stdout.splitlines()[
                -1
            ]
        )
        import datasets

        here = datasets.load_dataset(str(data), cache_dir=str(tmp_path / "c"))
        assert pulled["splits"] == {k: len(v) for k, v in here.items()}
        assert pulled["ids"] == pulled["streamed"] == here["test"]["input_ids"][:5]
        assert not hub.state.unhandled, hub.state.unhandled


def test_the_loopback_hub_refuses_what_a_hub_refuses(tmp_path):
    with LoopbackHub() as hub:
        env = hub.client_env(dict(os.environ))
        script = (
            "from huggingface_hub import hf_hub_download\n"
            "from huggingface_hub.errors import RepositoryNotFoundError\n"
            "try:\n    hf_hub_download('nobody/nothing', 'config.json')\n"
            "except RepositoryNotFoundError:\n    print('not found')\n"
        )
        assert run(["-c", script], env, tmp_path).stdout.strip().endswith("not found")
