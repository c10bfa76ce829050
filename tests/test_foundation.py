"""``treasure benchmark foundation``'s pieces: the lepton + jets selection, the study's seeds,
goals and the card of the published encoder. The study itself runs in ``treasure benchmark
foundation`` (docs/benchmark.md), not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="module", autouse=True)
def _hf_cache(tmp_path_factory):
    from hf_samples import isolated_hf_cache

    with isolated_hf_cache(tmp_path_factory.mktemp("hf_cache")) as path:
        yield path


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    from hf_samples import tokenized_pair

    return tokenized_pair(tmp_path_factory.mktemp("found"))


def _batch(events):
    """Events of (electrons, muons, jets) lists of (pt, eta, iso) / (pt, eta)."""
    from treasure_hf.data.events import EventBatch

    n = len(events)
    arrays = {}
    for g, k in (("electrons", 0), ("muons", 1), ("jets", 2)):
        width = max(1, max(len(e[k]) for e in events))
        pt, eta, iso, mask = (np.zeros((n, width)) for _ in range(4))
        for i, e in enumerate(events):
            for j, obj in enumerate(e[k]):
                pt[i, j], eta[i, j], mask[i, j] = obj[0], obj[1], 1
                iso[i, j] = obj[2] if len(obj) > 2 else 0.0
        arrays.update(
            {
                f"common/{g}/pt": pt,
                f"common/{g}/eta": eta,
                f"common/{g}/mask": mask.astype(bool),
                f"common/{g}/n": mask.sum(1).astype(np.int32),
            }
        )
        if g != "jets":
            arrays[f"common/{g}/trk_iso03"] = iso
    return EventBatch(arrays, {"n_events": n})


def test_lepton_jets_selection_of_hand_built_events():
    from treasure_hf.benchmark.ljets import select_ljets

    jets = [(60.0, 0.5), (40.0, -1.0)]
    events = [
        ([(40.0, 0.1, 0.01)], [], jets),  # e + 2 jets: passes
        ([], [(30.0, 1.0, 0.0)], jets + [(30.0, 2.0)]),  # mu + 3 jets: passes
        ([(40.0, 0.1, 0.01)], [(15.0, 0.3, 0.0)], jets),  # a second lepton above 10 GeV: vetoed
        ([(40.0, 0.1, 0.5)], [], jets),  # not isolated
        ([(40.0, 2.7, 0.0)], [], jets),  # outside |eta| < 2.5
        ([(40.0, 0.1, 0.0)], [], [(60.0, 0.5), (20.0, 0.0)]),
    ]  # one jet above 25 GeV
    sel = select_ljets(_batch(events))
    assert sel.passed.tolist() == [True, True, False, False, False, False]
    assert sel.cutflow == {"all": 6, "one lepton": 4, "no second lepton": 3, ">= 2 jets": 2}


def test_corpus_development_and_test_samples_have_seeds_of_their_own():
    from treasure_hf.benchmark.foundation import TASKS, corpus_request, quick_arguments, task_requests

    args = quick_arguments()
    seen = {}
    for det in args.detectors:
        reqs = [("corpus", corpus_request(args, det))]
        for t in args.tasks:
            for role, group in task_requests(args, TASKS[t], det).items():
                reqs += [(role, r) for r in group]
        for role, r in reqs:
            key = (r.process, r.seed)
            assert key not in seen, (role, det, r, seen[key])  # no two samples share generated events
            seen[key] = (role, det)
    roles = {v[0] for v in seen.values()}
    assert roles == {"corpus", "development", "test"}
    assert all(
        r.tag == "test"
        for det in args.detectors
        for t in args.tasks
        for r in task_requests(args, TASKS[t], det)["test"]
    )


def _ladder_rec(task, n, diff, low, high):
    return {
        "task": task,
        "labels": n,
        "model": "fine-tuned (codes)",
        "paired_vs_scratch": {"difference": diff, "low": low, "high": high},
    }


def test_goals_are_met_only_where_the_interval_says_so():
    from treasure_hf.benchmark.foundation import goals

    ladder = [
        _ladder_rec("hzz4l", 1000, 0.03, 0.01, 0.05),  # met
        _ladder_rec("hzz4l", 100, 0.06, -0.01, 0.12),
    ]  # interval reaches 0: not met

    def gap(setting, d, lo):
        return {
            "task": "hzz4l",
            "setting": setting,
            "source": "atlas",
            "target": "cms",
            "gap": {"difference": d, "low": lo, "high": d + 0.01},
        }

    transfer = [gap("token_both", -0.002, -0.004), gap("no_token_both", -0.03, -0.05)]
    got = goals(ladder, transfer, "codes", ["hzz4l"])
    assert [g["met"] for g in got] == [True, False, True]
    assert got[1]["short_by"] == 0.0 and got[2]["beside"]["no_token_both"]["difference"] == -0.03
    transfer[0] = gap("token_both", -0.002, -0.006)
    assert goals(ladder, transfer, "codes", ["hzz4l"])[2]["met"] is False


def test_the_published_encoder_card_states_corpus_objective_and_ladder(tokenized, tmp_path):
    from hub_server import LoopbackHub

    from treasure_hf.benchmark.foundation import card_summary, quick_arguments
    from treasure_hf.cli import main

    _, sets = tokenized
    enc = tmp_path / "encoder"
    assert (
        main(
            [
                "-q",
                "pretrain",
                "--data",
                str(sets["plain"]),
                "--out",
                str(enc),
                "--max-steps",
                "2",
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
            ]
        )
        == 0
    )
    args = quick_arguments()
    ladder = [
        {"task": "hzz4l", "labels": n, "detector": "atlas", "model": m, "auc": auc}
        for n, m, auc in ((100, "fine-tuned (codes)", 0.81), (1000, "fine-tuned (codes)", 0.87), (100, "scratch", 0.7))
    ]
    summary = json.loads((enc / "training_summary.json").read_text())
    (enc / "training_summary.json").write_text(
        json.dumps(card_summary(summary, args, "codes", {"ladder": ladder, "torch_threads": 1, "device": "cpu"}, 12.0))
    )
    with LoopbackHub() as hub:
        push = subprocess.run(
            [sys.executable, "-m", "treasure_hf.cli", "push", str(enc), "--repo-id", "lab/encoder"],
            capture_output=True,
            text=True,
            env=hub.client_env(dict(os.environ)),
            timeout=300,
        )
        assert push.returncode == 0, push.stderr[-3000:]
        card = hub.state.repos[("model", "lab/encoder")].files("main")["README.md"].decode()
    meta = card.split("---")[1]
    assert "model-index" in meta and meta.count("ROC AUC") == 2 and "0.87" in meta and "0.7\n" not in meta
    assert "hzz4l test (atlas-like), 100 labels" in meta and "hzz4l test (atlas-like), 1000 labels" in meta
    assert f"{args.corpus_events:,} per detector" in card and "Objective `codes`" in card
    assert f"{args.model.pretrain_steps} steps of {args.model.pretrain_batch_size} events" in card


def test_cli_builds_the_configuration_and_rejects_unknown_names(capsys):
    from treasure_hf.cli import main

    assert main(["benchmark", "foundation", "--quick", "--objectives", "codes,flow", "--out", "x"]) != 0
    assert "error: --objectives: unknown ['flow']" in capsys.readouterr().err
    assert main(["benchmark", "foundation", "--medium", "--tasks", "hzz4l,dimuon", "--out", "x"]) != 0
    assert "error: --tasks: unknown ['dimuon']" in capsys.readouterr().err
    import argparse

    from treasure_hf.commands.benchmark import foundation_arguments

    ns = argparse.Namespace(
        quick=False,
        medium=True,
        corpus_events=None,
        labels=(100, 1000),
        transfer_labels=None,
        seeds=None,
        seed=None,
        test_seed=None,
        corpus_seed=None,
        workers=None,
        threads=None,
        tasks=None,
        objectives=None,
        epochs=None,
        pretrain_steps=77,
    )
    args = foundation_arguments(ns)
    assert args.configuration == "medium" and args.labels == (100, 1000) and args.model.pretrain_steps == 77
    assert args.corpus_events * len(args.detectors) >= 200_000 and args.seeds >= 3


def test_a_rerun_may_add_seeds_labels_and_tasks_but_not_change_the_model(tmp_path):
    import dataclasses

    from treasure_hf.benchmark.config import ModelSettings
    from treasure_hf.benchmark.foundation import RESUMABLE_CHANGES, quick_arguments
    from treasure_hf.benchmark.run import _claim_settings
    from treasure_hf.errors import ArgumentError

    args = quick_arguments()
    kept = tmp_path / "work" / "samples"
    kept.mkdir(parents=True)
    derived = (tmp_path / "rows",)
    _claim_settings(tmp_path, args, False, derived, RESUMABLE_CHANGES)
    _claim_settings(
        tmp_path,
        dataclasses.replace(args, seeds=3, labels=(100, 300, 1000), tasks=("hzz4l",)),
        False,
        derived,
        RESUMABLE_CHANGES,
    )
    with pytest.raises(ArgumentError, match="model"):
        _claim_settings(tmp_path, dataclasses.replace(args, model=ModelSettings()), False, derived, RESUMABLE_CHANGES)
    (tmp_path / "rows").mkdir()
    _claim_settings(tmp_path, dataclasses.replace(args, model=ModelSettings()), True, derived, RESUMABLE_CHANGES)
    assert kept.is_dir() and not (tmp_path / "rows").exists()  # afresh, but the samples stay


def test_each_seed_trains_its_own_tokenizer_and_encoders_unless_shared(tmp_path, monkeypatch):
    """Seed s's rows read seed s's tokenizer and seed s's pretrained encoder, so the paired intervals
    over seeds cover every trained part; ``seeded`` without them shares seed 0's."""
    import dataclasses

    from treasure_hf.benchmark import foundation as fd

    calls = {"tokenizer": [], "pretraining": []}

    def fake_tokenizer(b, encoder, seed, paths, out, *rest):
        calls["tokenizer"].append((seed, out.name))
        return f"tokenizer-{seed}"

    def fake_pretrain(corpus, tokenizer, shape, model, seed, out, progress, objective):
        calls["pretraining"].append((seed, tokenizer, corpus, out.parent.name, out.name))
        out.mkdir(parents=True, exist_ok=True)
        return out

    monkeypatch.setattr(fd, "train_budget_tokenizer", fake_tokenizer)
    monkeypatch.setattr(fd, "pretrain_encoder", fake_pretrain)
    monkeypatch.setattr(fd.Study, "corpus", lambda self, detectors, continuous, seed: f"corpus-{self.tokenizer(seed)}")
    spec = fd.EncoderSpec("codes", ("atlas", "cms"))

    study = fd.Study(fd.quick_arguments(seeds=3), tmp_path / "own", progress=False)
    study.corpus_paths = {"atlas": "a.h5", "cms": "c.h5"}
    encoders = [study.encoder(spec, s) for s in range(3)]
    assert [e.seed for e in encoders] == [0, 1, 2] and len({e.path for e in encoders}) == 3
    assert calls["tokenizer"] == [(0, "seed-0"), (1, "seed-1"), (2, "seed-2")]
    assert [c[:3] for c in calls["pretraining"]] == [(s, f"tokenizer-{s}", f"corpus-tokenizer-{s}") for s in range(3)]
    assert study.encoder(spec, 1) is encoders[1] and len(calls["pretraining"]) == 3  # pretrained once

    calls["tokenizer"].clear(), calls["pretraining"].clear()
    shared = fd.Study(
        dataclasses.replace(fd.quick_arguments(seeds=3), seeded=("fine-tuning",)), tmp_path / "shared", progress=False
    )
    shared.corpus_paths = study.corpus_paths
    assert {shared.encoder(spec, s).seed for s in range(3)} == {0}
    assert calls["tokenizer"] == [(0, "seed-0")] and len(calls["pretraining"]) == 1
    with pytest.raises(fd.InputError, match="seeded"):
        fd.run_foundation(dataclasses.replace(fd.quick_arguments(), seeded=("tokenizer",)), tmp_path / "bad")
