"""Models in downstream analyses: `treasure predict` on the experiments' files, the
event-classification pipeline, folders that load without treasure_hf, ONNX, awkward input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import numpy as np
import pytest

from treasure_hf import read_events
from treasure_hf.cli import main

ROOT_FILES = (
    "cms_nanoaod_dy_40ev.root",
    "cms_nanoaod_2015_ttbar_10ev.rntuple.root",
    "nano_dimuon.root",
    "atlas_physlite_mc_100ev.rntuple.root",
    "atlas_physlite_mc_100ev.ttree.root",
)
"""Simulation and collision data (nano_dimuon), TTree and RNTuple, of both experiments."""
EVENT_NUMBER = {"cms": "event", "atlas": "EventInfoAuxDyn.eventNumber"}


@pytest.fixture(scope="module")
def trained(testdata, tmp_path_factory):
    """A classifier of Drell-Yan against ttbar NanoAOD events, trained in the test (a few steps,
    through `treasure finetune`), with its tokenizer; and every ROOT file converted to HDF5."""
    from hf_samples import isolated_hf_cache

    from treasure_hf.data.sources.convert import convert_files

    root = tmp_path_factory.mktemp("inference")
    with isolated_hf_cache(root / "cache"):
        conv = root / "converted"
        for experiment in ("cms", "atlas"):
            files = [
                testdata / f
                for f in (*ROOT_FILES, "cms_nanoaod_v15_tt_200ev.root")
                if f.startswith("atlas") == (experiment == "atlas")
            ]
            convert_files(experiment, files, conv, progress=False)
        dy, tt = conv / "cms_nanoaod_dy_40ev.h5", conv / "cms_nanoaod_v15_tt_200ev.h5"
        assert (
            main(
                [
                    "-q",
                    "train-tokenizer",
                    "--data",
                    str(dy),
                    str(tt),
                    "--types",
                    "electrons,muons,jets,met",
                    "--codebook-size",
                    "16",
                    "--stages",
                    "2",
                    "--latent-dim",
                    "4",
                    "--hidden-size",
                    "16",
                    "--steps",
                    "20",
                    "--out",
                    str(root / "tok"),
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "-q",
                    "tokenize",
                    "--tokenizer",
                    str(root / "tok"),
                    "--data",
                    str(dy),
                    str(tt),
                    "--label",
                    f"{dy}=dy",
                    "--label",
                    f"{tt}=tt",
                    "--out",
                    str(root / "data"),
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "-q",
                    "finetune",
                    "--data",
                    str(root / "data"),
                    "--out",
                    str(root / "clf"),
                    "--max-steps",
                    "6",
                    "--eval-steps",
                    "3",
                    "--hidden-size",
                    "16",
                    "--layers",
                    "1",
                    "--heads",
                    "2",
                    "--batch-size",
                    "16",
                    "--pair-features",
                    "kinematic",
                    "--report-to",
                    "none",
                ]
            )
            == 0
        )
        yield root, conv


def _reference(trained, name, batch_size=32):
    from treasure_hf.inference.predict import load_classifier, score_events

    root, conv = trained
    model, tok = load_classifier(root / "clf")
    return score_events(model, tok, read_events(conv / f"{Path(name).stem}.h5"), batch_size=batch_size)


@pytest.mark.parametrize("fmt", ["parquet", "root", "h5", "pcdf"])
def test_predict_scores_every_event_of_the_experiments_files(fmt, trained, testdata, tmp_path):
    import uproot

    from treasure_hf.inference.scores import read_scores

    root, conv = trained
    inputs = [str(testdata / f) for f in ROOT_FILES]
    assert (
        main(
            [
                "-q",
                "predict",
                *inputs,
                "--model",
                str(root / "clf"),
                "--out",
                str(tmp_path / "out"),
                "--format",
                fmt,
                "--batch-size",
                "32",
                "--step",
                "64",
            ]
        )
        == 0
    )
    for name in ROOT_FILES:
        stem = name[: -len(".root")]
        out = tmp_path / "out" / (stem + {"parquet": ".parquet", "root": ".root", "h5": ".h5", "pcdf": ""}[fmt])
        tree = uproot.open(testdata / name)
        experiment = "atlas" if name.startswith("atlas") else "cms"
        events = tree[
            "EventData"
            if "rntuple" in name and experiment == "atlas"
            else "CollectionTree"
            if experiment == "atlas"
            else "Events"
        ]
        branch = EVENT_NUMBER[experiment].replace(".", ":") if "rntuple" in name else EVENT_NUMBER[experiment]
        expected = _reference(trained, name)
        if fmt in ("parquet", "root"):
            columns = read_scores(out)
            assert len(columns["eventIndex"]) == events.num_entries
            assert np.array_equal(columns["eventIndex"], np.arange(events.num_entries))
            assert np.array_equal(columns["event_number"], np.asarray(events[branch].array(library="np"), np.int64))
            got = np.stack([columns["score_dy"], columns["score_tt"]], 1)
            if fmt == "root":  # a friend tree: one entry per entry of the input
                assert uproot.open(out)["scores"].num_entries == events.num_entries
        else:
            scores = read_scores(out)
            got = np.stack([scores["scores/clf/dy"], scores["scores/clf/tt"]], 1)
            assert read_events(out).equals(read_events(conv / f"{stem}.h5"))
        assert np.array_equal(got, expected.astype(np.float32)), name  # bit for bit, on the CPU


def test_the_pipeline_returns_the_scores_of_predict(trained, testdata):
    from transformers import pipeline

    root, conv = trained
    pipe = pipeline("event-classification", model=str(root / "clf"), tokenizer=str(root / "clf"))
    expected = _reference(trained, "cms_nanoaod_dy_40ev.root")
    answers = pipe(str(testdata / "cms_nanoaod_dy_40ev.root"), top_k=None, batch_events=32)
    assert len(answers) == 40 and all(len(a) == 2 and a[0]["score"] >= a[1]["score"] for a in answers)
    got = np.array([[{d["label"]: d["score"] for d in a}[c] for c in ("dy", "tt")] for a in answers])
    assert np.array_equal(got, expected)
    best = pipe(read_events(conv / "cms_nanoaod_dy_40ev.h5"), batch_events=32)
    assert [b["label"] for b in best] == [["dy", "tt"][i] for i in expected.argmax(1)]
    both = pipe([str(testdata / "cms_nanoaod_dy_40ev.root"), str(conv / "cms_nanoaod_dy_40ev.h5")], batch_events=32)
    assert both[0] == both[1] == best


REMOTE = textwrap.dedent("""
    import sys
    import numpy as np, torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    try:
        AutoTokenizer.from_pretrained("clf")
    except ValueError as exc:
        assert "trust_remote_code" in str(exc), exc
    else:
        raise AssertionError("loaded without trust_remote_code")
    tok = AutoTokenizer.from_pretrained("clf", trust_remote_code=True)
    model = AutoModelForSequenceClassification.from_pretrained("clf", trust_remote_code=True).eval()
    events = dict(np.load("events.npz"))
    enc = tok({k.replace("|", "/"): v for k, v in events.items()}, return_tensors="pt")
    inputs = {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        logits = model(**inputs, kinematics=torch.as_tensor(tok.decode_kinematics(enc["input_ids"]),
                       dtype=torch.float32)).logits
    np.save("logits.npy", logits.numpy())
    assert not any(m.split(".")[0] == "treasure_hf" for m in sys.modules)
    print(type(tok).__module__, type(model).__module__)
""")


def test_model_and_tokenizer_load_without_the_package(trained, tmp_path):
    """In a virtual environment with the same libraries but no treasure_hf (its site-packages are
    reached through a plain path, so the editable install of treasure_hf is not): identical logits."""
    import sysconfig

    import torch

    from treasure_hf.inference.predict import load_classifier

    root, conv = trained
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip()
    Path(site, "libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "work"
    work.mkdir()
    os.symlink(root / "clf", work / "clf")
    batch = read_events(conv / "cms_nanoaod_dy_40ev.h5")
    np.savez(work / "events.npz", **{k.replace("/", "|"): v for k, v in batch.arrays.items()})
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", PYTHONNOUSERSITE="1")
    result = subprocess.run([python, "-c", REMOTE], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transformers_modules" in result.stdout
    model, tok = load_classifier(root / "clf")
    enc = tok(batch, return_tensors="pt")
    with torch.no_grad():
        expected = model(
            input_ids=enc["input_ids"],
            token_type_ids=enc["token_type_ids"],
            attention_mask=enc["attention_mask"],
            kinematics=torch.as_tensor(tok.decode_kinematics(enc["input_ids"]), dtype=torch.float32),
        ).logits
    assert np.array_equal(np.load(work / "logits.npy"), expected.numpy())
    # where treasure_hf is imported, the same folder loads the package's classes, no trust_remote_code asked
    from transformers import AutoTokenizer

    assert type(AutoTokenizer.from_pretrained(root / "clf")).__module__ == "treasure_hf.tokenization.tokenization_event"


def test_onnx_reproduces_the_logits_and_the_codes(trained, tmp_path):
    import onnxruntime
    import torch

    from treasure_hf.inference.events import model_inputs
    from treasure_hf.inference.predict import load_classifier

    root, conv = trained
    assert main(["-q", "export-onnx", "--model", str(root / "clf"), "--out", str(tmp_path / "onnx")]) == 0
    described = json.loads((tmp_path / "onnx" / "onnx_export.json").read_text())
    model, tok = load_classifier(root / "clf")
    batch = read_events(conv / "cms_nanoaod_v15_tt_200ev.h5")
    inputs = model_inputs(tok, model.config, batch)
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    names = [i.name for i in session.get_inputs()]
    assert set(names) == set(described["model_graph"]["inputs"]) and "kinematics" in names
    with torch.no_grad():
        expected = model(**inputs).logits.numpy()
    for rows in (slice(0, 200), slice(3, 4)):  # dynamic batch and sequence length
        got = session.run(None, {n: inputs[n][rows].numpy() for n in names})[0]
        assert np.abs(got - expected[rows]).max() < 1e-5
    for t, q in tok.quantizers.items():
        spec = described["quantizers"][t]
        values, mask = tok._object_arrays(batch.arrays, t, tok.max_objects.get(t))
        feed = {n: np.asarray(values[v["field"]][mask], np.float64) for n, v in spec["inputs"].items()}
        codes = onnxruntime.InferenceSession(str(tmp_path / "onnx" / spec["file"])).run(None, feed)[0]
        flat = {k: v[mask] for k, v in values.items()}
        reference = q.tokenize(torch.from_numpy(q.scaler.transform(flat))[:, None, :]).reshape(len(codes), -1)
        assert codes.shape[0] > 0 and np.array_equal(codes, reference.numpy()), t


def test_events_from_awkward_are_the_converters_events(testdata, trained):
    from root_copies import nanoaod_branches, nanoaod_collections

    from treasure_hf import events_from_awkward

    _, conv = trained
    collections = nanoaod_collections(nanoaod_branches(testdata / "cms_nanoaod_dy_40ev.root"))  # events.Electron, ...
    batch = events_from_awkward(collections, experiment="cms")
    assert batch.equals(read_events(conv / "cms_nanoaod_dy_40ev.h5"))


def test_the_top_level_api_is_there_and_lazy():
    code = (
        "import sys, treasure_hf; assert 'torch' not in sys.modules and 'transformers' not in sys.modules; "
        "from treasure_hf import EventTokenizer, EventTransformerConfig, EventTransformerModel, "
        "EventTransformerForSequenceClassification, EventTransformerForMaskedEventModeling, ObjectQuantizer, "
        "ObjectQuantizerConfig, events_from_awkward, predict; print(EventTokenizer.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "treasure_hf.tokenization.tokenization_event"
