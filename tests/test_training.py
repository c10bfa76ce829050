"""Collators, metrics, and the whole path a user takes: generate, tokenize, load_dataset,
pretrain with `accelerate launch` (interrupted and resumed), fine-tune with the Trainer, push to a
(loopback) hub, load back with AutoModel, same logits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
PICKLE_SUFFIXES = {".bin", ".pkl", ".pt", ".pth", ".pickle", ".ckpt"}


def pickled_files(root: Path) -> list[str]:
    """Files under ``root`` that are pickles or torch zip archives, by name or by their first bytes:
    a pickle (protocol 2+) opens with 0x80 and its protocol byte, ``torch.save`` writes a zip ("PK").
    A safetensors file may open with the same two bytes by chance (its header length, little-endian),
    but then its JSON header starts at byte 8."""
    bad = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        head = path.read_bytes()[:9]
        pickle = (
            head[:1] == b"\x80"
            and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
            and not (path.suffix == ".safetensors" and head[8:9] == b"{")
        )
        if path.suffix in PICKLE_SUFFIXES or pickle or head[:2] == b"PK":
            bad.append(str(path.relative_to(root)))
    return bad


@pytest.fixture(scope="module", autouse=True)
def _hf_cache(tmp_path_factory):
    from hf_samples import isolated_hf_cache

    with isolated_hf_cache(tmp_path_factory.mktemp("hf_cache")) as path:
        yield path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two 120-event samples generated with Pythia 8 and the ATLAS-like detector (signal
    H -> ZZ* -> 4l, background Z -> ll: the number of leptons tells them apart), a tiny
    tokenizer and the tokenized data set."""
    from hf_samples import tiny_tokenizer

    from treasure_hf.cli import main

    root = tmp_path_factory.mktemp("e2e")
    samples = {}
    for name, process, seed in (("signal", "hzz4l", 1), ("background", "zjets", 2)):
        samples[name] = root / "samples" / f"{name}.pcdf"
        assert (
            main(["-q", "generate", process, "--events", "120", "--seed", str(seed), "--out", str(samples[name])]) == 0
        )
    tiny_tokenizer(list(samples.values()), root / "tok", steps=10)
    data = root / "data"
    assert (
        main(
            [
                "-q",
                "tokenize",
                "--tokenizer",
                str(root / "tok"),
                "--data",
                str(samples["signal"]),
                str(samples["background"]),
                "--out",
                str(data),
                "--split",
                "train=0.6,validation=0.2,test=0.2",
                "--label",
                f"{samples['signal']}=signal",
                "--label",
                f"{samples['background']}=background",
            ]
        )
        == 0
    )
    return root, samples, data


def test_padding_collator_builds_the_tokenizer_batch(tiny):
    import datasets

    from treasure_hf import read_events
    from treasure_hf.hf.collators import EventPaddingCollator
    from treasure_hf.tokenization import EventTokenizer

    root, samples, data = tiny
    tok = EventTokenizer.from_pretrained(root / "tok")
    rows = datasets.load_dataset(str(data), split="train").filter(lambda r: r["source"] == 0).select(range(8))
    batch = EventPaddingCollator(tok.token_id_ranges())(list(rows))
    first = rows["event_index"]
    events = read_events(samples["signal"])
    enc = tok(events.select(np.asarray(first)), return_features=True, return_tensors="pt")
    width = enc["input_ids"].shape[1]
    assert batch["input_ids"].shape == (8, width)  # padded to the longest of the batch
    for k in ("input_ids", "token_type_ids", "attention_mask", "object_index"):
        assert torch.equal(batch[k], enc[k].long()), k
    assert batch["labels"].tolist() == [0] * 8 and batch["weight"].dtype == torch.float32
    # for models with pair features: the kinematics the tokens encode, on the row and Arrow paths
    decoded = EventPaddingCollator(tok.token_id_ranges(), kinematics_decoder=tok.decode_kinematics)
    kin = decoded(list(rows))["kinematics"]
    assert kin.dtype == torch.float32 and torch.equal(kin, torch.from_numpy(tok.decode_kinematics(enc["input_ids"])))
    assert torch.equal(decoded(rows.with_format("arrow")[:])["kinematics"], kin)
    assert torch.all(kin[batch["object_index"] < 0] == 0) and (kin[batch["object_index"] >= 0][:, 0] > 0).any()


def test_masked_collator_decodes_kinematics_after_masking(tiny):
    import datasets

    from treasure_hf.hf.collators import MaskedEventCollator
    from treasure_hf.tokenization import EventTokenizer

    root, _, data = tiny
    tok = EventTokenizer.from_pretrained(root / "tok")
    rows = list(datasets.load_dataset(str(data), split="train"))[:32]
    collate = MaskedEventCollator(
        tok.token_id_ranges(), mask_rate=0.3, seed=2, keep=(), kinematics_decoder=tok.decode_kinematics
    )
    b = collate(rows)
    masked = b["input_ids"] == tok.mask_token_id
    assert masked.any() and torch.all(b["kinematics"][masked] == 0)  # a masked object shows nothing
    hidden, selected = b["masked_positions"], b["labels"] != -100
    assert hidden[masked].all() and not hidden[~selected].any()  # [MASK]ed and replaced objects only
    replaced = selected & ~masked & (b["input_ids"] != b["labels"])
    assert replaced.any() and hidden[replaced].all()  # a random id never shows the original's kinematics
    assert torch.equal(b["kinematics"], torch.from_numpy(tok.decode_kinematics(b["input_ids"])))


def test_masking_selects_whole_objects_in_bert_proportions(tiny):
    import datasets

    from treasure_hf.hf.collators import MaskedEventCollator
    from treasure_hf.tokenization import EventTokenizer

    root, _, data = tiny
    tok = EventTokenizer.from_pretrained(root / "tok")
    ranges = tok.token_id_ranges()
    rows = list(datasets.load_dataset(str(data), split="train"))
    collate = MaskedEventCollator(ranges, mask_rate=0.3, seed=1, keep=())
    n_sel = n_obj = 0
    expected = 0.0  # each object drawn with p = 0.3, and one forced where an event drew none
    actions = {"mask": 0, "random_or_kept": 0}
    for _ in range(5):
        b = collate(rows)
        clean = collate.pad(rows)
        sel = b["labels"] != -100
        obj = clean["object_index"]
        assert torch.equal(b["labels"][sel], clean["input_ids"][sel])
        assert not sel[obj < 0].any()  # specials, context and padding are never selected
        for i in range(len(rows)):
            objs = obj[i][obj[i] >= 0].unique()
            n_obj += len(objs)
            expected += 0.3 * len(objs) + (0.7 ** len(objs) if len(objs) else 0.0)
            for o in objs:
                tokens = obj[i] == o
                s = sel[i][tokens]
                assert s.all() or not s.any()  # an object is selected whole
                if s.all():
                    n_sel += 1
                    masked = b["input_ids"][i][tokens] == tok.mask_token_id
                    assert masked.all() or not masked.any()
                    actions["mask" if masked.all() else "random_or_kept"] += 1
                    for t_id, t_orig, t_type in zip(
                        b["input_ids"][i][tokens], clean["input_ids"][i][tokens], clean["token_type_ids"][i][tokens]
                    ):
                        if t_id != tok.mask_token_id:  # a random id stays in its own type's id range
                            t = next(k for k, v in ranges.items() if v[0] <= t_orig < v[1])
                            assert ranges[t][0] <= t_id < ranges[t][1] and int(t.split(":")[0]) == t_type
    assert abs(n_sel - expected) / n_obj < 0.04
    assert abs(actions["mask"] / n_sel - 0.8) < 0.05


def test_compute_metrics_gives_auc_and_accuracy():
    from transformers import EvalPrediction

    from treasure_hf.training.finetune import compute_metrics

    labels = np.array([0, 0, 1, 1, 1])
    logits = np.array([[2.0, 0.0], [0.5, 0.0], [0.0, 0.4], [0.0, 3.0], [1.0, 0.0]])  # last signal event wrong
    m = compute_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["roc_auc"] == pytest.approx(5 / 6)  # 5 of 6 signal-background pairs ordered correctly
    three = compute_metrics(EvalPrediction(predictions=np.eye(3)[[0, 1, 2, 2]] * 5, label_ids=np.array([0, 1, 2, 2])))
    assert three == {"roc_auc": 1.0, "accuracy": 1.0}


PULL = """
import json, sys
import treasure_hf, torch, datasets
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
from treasure_hf.hf.collators import EventPaddingCollator
repo, data = sys.argv[1], sys.argv[2]
clf = AutoModelForSequenceClassification.from_pretrained(repo).eval()
enc = AutoModel.from_pretrained(repo).eval()
tok = AutoTokenizer.from_pretrained(repo)
rows = list(datasets.load_dataset(data, split="test").select(range(16)))
batch = EventPaddingCollator(clf.config.token_id_ranges, keep=())(rows)
with torch.no_grad():
    logits = clf(**batch).logits
    pooled = enc(**batch).pooler_output
print(json.dumps({"classes": [type(clf).__name__, type(enc).__name__, type(tok).__name__],
                  "logits": logits.tolist(), "pooled": pooled.tolist()}))
"""


def test_generate_tokenize_pretrain_resume_finetune_push_and_load_back(tiny, tmp_path):
    import datasets
    from hub_server import LoopbackHub
    from safetensors.torch import load_file

    from treasure_hf.cli import main
    from treasure_hf.hf.collators import EventPaddingCollator
    from treasure_hf.modeling import EventTransformerForSequenceClassification

    root, samples, data = tiny
    ds = datasets.load_dataset(str(data))  # stock datasets, the README's configs
    assert sum(len(v) for v in ds.values()) == 240

    # pretrain 4 steps under `accelerate launch` on CPU, stopped after 2 and resumed
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--num_cpu_threads_per_process",
        "1",
        str(REPO / "scripts" / "pretrain.py"),
        "-q",
    ]
    common = [
        "--data",
        str(data),
        "--max-steps",
        "4",
        "--save-steps",
        "2",
        "--batch-size",
        "16",
        "--gradient-accumulation-steps",
        "2",
        "--hidden-size",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--logging-steps",
        "1",
        "--report-to",
        "none",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for extra in (["--stop-at-step", "2"], ["--resume"]):
        out = subprocess.run(
            launch + common + ["--out", str(tmp_path / "mem")] + extra,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-4000:]
        if extra[0] == "--stop-at-step":
            assert not (tmp_path / "mem" / "model.safetensors").exists()  # stopped, not finished
            assert (tmp_path / "mem" / "checkpoints" / "step-2" / "complete").exists()
    step2 = tmp_path / "mem" / "checkpoints" / "step-2"
    assert {p.name for p in step2.iterdir()} == {
        "model.safetensors",
        "optimizer.safetensors",
        "optimizer.json",
        "scheduler.json",
        "rng-0.safetensors",
        "rng-0.json",
        "state.json",
        "complete",
    }
    assert json.loads((step2 / "state.json").read_text())["micro_batches"] == 4  # 2 steps x 2 accumulated batches
    summary = json.loads((tmp_path / "mem" / "training_summary.json").read_text())
    assert [h["step"] for h in summary["history"]] == [3, 4]  # the resumed run logged steps 3 and 4
    # the same 4 steps without interruption, in this process: identical weights
    assert main(["-q", "pretrain", *common, "--out", str(tmp_path / "mem_straight")]) == 0
    resumed, straight = (
        load_file(tmp_path / "mem" / "model.safetensors"),
        load_file(tmp_path / "mem_straight" / "model.safetensors"),
    )
    assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in resumed)

    # fine-tune from the pretrained encoder with the Trainer
    assert (
        main(
            [
                "-q",
                "finetune",
                "--data",
                str(data),
                "--model",
                str(tmp_path / "mem"),
                "--out",
                str(tmp_path / "clf"),
                "--max-steps",
                "24",
                "--eval-steps",
                "6",
                "--batch-size",
                "16",
                "--lr",
                "3e-3",
                "--logging-steps",
                "6",
                "--early-stopping-patience",
                "2",
                "--report-to",
                "none",
            ]
        )
        == 0
    )
    clf_summary = json.loads((tmp_path / "clf" / "training_summary.json").read_text())
    assert {r["metric_name"] for r in clf_summary["eval_results"]} == {"ROC AUC", "accuracy"}
    assert clf_summary["metrics"]["test"]["test_roc_auc"] > 0.7  # the lepton count separates the classes
    assert not (tmp_path / "clf" / "training_args.bin").exists()
    saved = sorted((tmp_path / "clf").glob("checkpoint-*"))
    expected = {"model.safetensors", "trainer_state.json", "training_args.json"}
    assert saved and all(expected <= {p.name for p in c.iterdir()} for c in saved)
    # the best checkpoint (by validation ROC AUC) is the model that was kept
    best = load_file(Path(clf_summary["best_checkpoint"]) / "model.safetensors")
    final = load_file(tmp_path / "clf" / "model.safetensors")
    assert best.keys() == final.keys() and all(torch.equal(best[k], final[k]) for k in best)
    for tree in ("mem", "mem_straight", "clf"):  # no pickle anywhere, checkpoints included
        assert pickled_files(tmp_path / tree) == [], tree

    with LoopbackHub() as hub:
        client = hub.client_env(dict(os.environ))
        push = subprocess.run(
            [
                sys.executable,
                "-m",
                "treasure_hf.cli",
                "push",
                str(tmp_path / "clf"),
                "--repo-id",
                "physicist/tiny-classifier",
            ],
            capture_output=True,
            text=True,
            env=client,
            timeout=300,
        )
        assert push.returncode == 0, push.stderr[-4000:]
        files = hub.state.repos[("model", "physicist/tiny-classifier")].files("main")
        assert not any(p.startswith("checkpoint-") or p.endswith((".bin", ".pt", ".pkl")) for p in files)
        card = files["README.md"].decode()
        auc = clf_summary["metrics"]["test"]["test_roc_auc"]
        assert "ROC AUC" in card and f"{auc:.4f}" in card and "model-index" in card
        assert (
            "signal.pcdf" in card
            and 'AutoModelForSequenceClassification.from_pretrained("physicist/tiny-classifier")' in card
        )
        pulled = subprocess.run(
            [sys.executable, "-c", PULL, "physicist/tiny-classifier", str(data)],
            capture_output=True,
            text=True,
            env=client,
            timeout=300,
        )
        assert pulled.returncode == 0, pulled.stderr[-4000:]
        assert not hub.state.unhandled, hub.state.unhandled
    got = json.loads(pulled.stdout.strip().splitlines()[-1])
    assert got["classes"] == ["EventTransformerForSequenceClassification", "EventTransformerModel", "EventTokenizer"]
    local = EventTransformerForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    rows = list(ds["test"].select(range(16)))
    with torch.no_grad():
        logits = local(**EventPaddingCollator(local.config.token_id_ranges, keep=())(rows)).logits
    assert torch.equal(torch.tensor(got["logits"]), logits)


def test_pretrain_and_finetune_a_model_with_pair_features_and_combinations(tiny, tmp_path):
    from treasure_hf.cli import main

    _, _, data = tiny
    small = [
        "--hidden-size",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--batch-size",
        "16",
        "--report-to",
        "none",
        "--pair-features",
        "kinematic",
        "--combinations",
        "2",
        "--logging-steps",
        "2",
    ]
    assert (
        main(
            [
                "-q",
                "pretrain",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "mem"),
                "--max-steps",
                "4",
                "--save-steps",
                "4",
                *small,
            ]
        )
        == 0
    )
    config = json.loads((tmp_path / "mem" / "config.json").read_text())
    assert config["pair_features"] == "kinematic" and config["kinematic_combinations"] == 2
    assert (
        main(
            [
                "-q",
                "finetune",
                "--data",
                str(data),
                "--model",
                str(tmp_path / "mem"),
                "--out",
                str(tmp_path / "clf"),
                "--max-steps",
                "12",
                "--eval-steps",
                "6",
                "--lr",
                "3e-3",
                *small,
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "clf" / "training_summary.json").read_text())
    assert 0.0 <= summary["metrics"]["test"]["test_roc_auc"] <= 1.0
    assert json.loads((tmp_path / "clf" / "config.json").read_text())["pair_features"] == "kinematic"


def test_optimizer_and_generators_round_trip_through_safetensors_and_json(tmp_path):
    """A saved and reloaded AdamW continues exactly like the original; the generators repeat."""
    import random

    from treasure_hf.checkpoint import load_optimizer, load_rng, save_optimizer, save_rng

    def run(opt, params, steps):
        for _ in range(steps):
            opt.zero_grad()
            sum(((p - 1) ** 3).sum() for p in params).backward()
            opt.step()

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
    opt = torch.optim.AdamW(
        [{"params": params[:1]}, {"params": params[1:], "lr": 0.01}], lr=0.05, betas=(0.8, 0.95), amsgrad=True
    )
    run(opt, params, 3)
    save_optimizer(opt, tmp_path)
    assert pickled_files(tmp_path) == []
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    again = torch.optim.AdamW([{"params": copies[:1]}, {"params": copies[1:]}], lr=1.0)
    load_optimizer(again, tmp_path)
    assert again.param_groups[1]["lr"] == 0.01 and again.param_groups[0]["betas"] == (0.8, 0.95)
    run(opt, params, 2)
    run(again, copies, 2)
    assert all(torch.equal(a, b) for a, b in zip(params, copies))

    save_rng(tmp_path, "rng-0")
    drawn = (torch.rand(4), random.random(), np.random.rand(3))
    torch.manual_seed(7), random.seed(7), np.random.seed(7)
    load_rng(tmp_path, "rng-0")
    assert torch.equal(torch.rand(4), drawn[0]) and random.random() == drawn[1]
    assert np.array_equal(np.random.rand(3), drawn[2])
    assert json.loads((tmp_path / "rng-0.json").read_text())["numpy"]["kind"] == "MT19937"


def test_arrow_batches_collate_like_rows(tiny):
    import datasets

    from treasure_hf.hf.collators import EventPaddingCollator
    from treasure_hf.tokenization import EventTokenizer

    root, _, data = tiny
    ranges = EventTokenizer.from_pretrained(root / "tok").token_id_ranges()
    ds = datasets.load_dataset(str(data), split="train")
    idx = [5, 0, 17, 3, 40, 41]
    for max_length in (None, 12):
        collate = EventPaddingCollator(ranges, max_length=max_length)
        rows, table = collate([ds[i] for i in idx]), collate(ds.with_format("arrow")[idx])
        assert rows.keys() == table.keys()
        for k in rows:
            assert torch.equal(rows[k], table[k]), (k, max_length)


def test_arrow_loader_gives_the_batches_of_the_row_loader(tiny):
    import datasets
    from torch.utils.data import DataLoader

    from treasure_hf.hf.batches import arrow_loader
    from treasure_hf.hf.collators import EventPaddingCollator
    from treasure_hf.tokenization import EventTokenizer

    root, _, data = tiny
    collate = EventPaddingCollator(EventTokenizer.from_pretrained(root / "tok").token_id_ranges(), keep=("labels",))
    ds = datasets.load_dataset(str(data), split="train").shuffle(seed=3)  # an indices mapping, flattened once
    fast = list(arrow_loader(ds, 32, collate, shuffle=False))
    slow = list(
        DataLoader(ds.select_columns(["input_ids", "token_type_ids", "labels"]), batch_size=32, collate_fn=collate)
    )
    assert len(fast) == len(slow) == -(-len(ds) // 32)
    for a, b in zip(fast, slow):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
