"""Nothing lost, nothing silent: writers that refuse rather than delete, inputs checked whole
whatever the step, stale outputs redone, and every refusal one line naming the file and the key."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from treasure_hf import read_events
from treasure_hf.cli import main
from treasure_hf.data.events import Layout
from treasure_hf.data.h5 import write_h5
from treasure_hf.data.io import h5_to_pcdf, pcdf_to_h5
from treasure_hf.data.outputs import MARKER, partial_dir
from treasure_hf.data.pcdf import MANIFEST, PCDFWriter, write_pcdf
from treasure_hf.data.synthetic import random_events
from treasure_hf.data.validate import validate
from treasure_hf.errors import ArgumentError, CompatibilityError, FormatError, OutputError

TREASURE = [sys.executable, "-m", "treasure_hf.cli"]


def refused(argv: list[str], capsys) -> str:
    """Run ``treasure -q ARGV``: it must exit 2 with one line on stderr, ``error: ...``, and no traceback."""
    try:
        status = main(["-q", *argv])
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert status == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """A 100-event PCDF (parts of 30 events, with constituents) and the same events as HDF5."""
    root = tmp_path_factory.mktemp("events")
    ev = random_events(100, 3, sub_groups=("constituents",))
    pcdf = write_pcdf(root / "events.pcdf", ev, events_per_part=30)
    h5 = pcdf_to_h5(pcdf, root / "events.h5", progress=False)
    return pcdf, h5


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("\\chapter{Four years of work}")
    return path


# --- 1. writers refuse, never delete ---------------------------------------------------------


def test_h5_to_pcdf_refuses_a_users_folder(events, tmp_path, capsys):
    folder = user_folder(tmp_path / "d")
    line = refused(["h5-to-pcdf", str(events[1]), str(folder)], capsys)
    assert str(folder) in line and "not written by treasure_hf" in line and "--overwrite" in line
    assert (folder / "thesis.tex").read_text().startswith("\\chapter")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary left beside it


@pytest.mark.parametrize("command", ["tokenize", "export", "generate", "train-tokenizer", "pcdf-to-h5"])
def test_every_writer_refuses_what_it_did_not_write(command, events, two_tokenizers, tmp_path, capsys):
    pcdf, _ = events
    target = tmp_path / "out.h5" if command == "pcdf-to-h5" else user_folder(tmp_path / "d")
    if command == "pcdf-to-h5":
        target.write_text("a user's file")
    argv = {
        "tokenize": ["tokenize", "--tokenizer", str(two_tokenizers[0] / "tokA"), "--data", str(pcdf)],
        "export": ["export", "--data", str(pcdf)],
        "generate": ["generate", "zjets", "--events", "10", "--seed", "1"],
        "train-tokenizer": ["train-tokenizer", "--data", str(pcdf)],
        "pcdf-to-h5": ["pcdf-to-h5", str(pcdf), str(target)],
    }[command]
    if command != "pcdf-to-h5":
        argv += ["--out", str(target)]
    line = refused(argv, capsys)
    assert str(target) in line and "left untouched" in line
    assert (target / "thesis.tex").exists() if target.is_dir() else target.read_text() == "a user's file"


def test_convert_refuses_a_foreign_output_of_the_same_name(testdata, tmp_path, capsys):
    user_folder(tmp_path / "out" / "cms_nanoaod_dy_40ev")
    refused(
        [
            "convert",
            "cms",
            str(testdata / "cms_nanoaod_dy_40ev.root"),
            "--out",
            str(tmp_path / "out"),
            "--format",
            "pcdf",
        ],
        capsys,
    )
    assert (tmp_path / "out" / "cms_nanoaod_dy_40ev" / "thesis.tex").exists()


@pytest.mark.parametrize("layout", ["same", "dst inside src", "src inside dst"])
def test_an_output_is_never_its_own_input(layout, events, tmp_path, capsys):
    pcdf = shutil.copytree(events[0], tmp_path / "same.pcdf")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    dst = {"same": pcdf, "dst inside src": pcdf / "inside.h5", "src inside dst": tmp_path}[layout]
    line = refused(["pcdf-to-h5", str(pcdf), str(dst), "--overwrite"], capsys)  # not even with --overwrite
    assert "input" in line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    h5 = pcdf_to_h5(pcdf, tmp_path / "x.h5", progress=False)
    with pytest.raises(OutputError, match="is the input"):
        h5_to_pcdf(h5, h5, progress=False)
    assert read_events(h5).n_events == 100


def test_reruns_replace_their_own_output_and_overwrite_a_foreign_one(events, tmp_path, capsys):
    pcdf, h5 = events
    out = tmp_path / "p.pcdf"
    assert main(["-q", "h5-to-pcdf", str(h5), str(out)]) == 0
    assert json.loads((out / MARKER).read_text())["producer"] == "h5-to-pcdf"
    assert main(["-q", "h5-to-pcdf", str(h5), str(out), "--events-per-part", "50"]) == 0  # its own: replaced
    assert len(json.loads((out / MANIFEST).read_text())["parts"]) == 2
    line = refused(["export", "--data", str(pcdf), "--out", str(out)], capsys)  # another command's output
    assert "written by `treasure h5-to-pcdf`, not by `treasure export`" in line
    folder = user_folder(tmp_path / "d")
    assert main(["-q", "h5-to-pcdf", str(h5), str(folder), "--overwrite"]) == 0
    assert not (folder / "thesis.tex").exists() and read_events(folder).equals(read_events(h5))


# --- 2.-3. results independent of the step; steps that are steps -------------------------------


def _break_manifest_count(p: Path) -> None:
    manifest = json.loads((p / MANIFEST).read_text())
    manifest["parts"][1]["n_events"] -= 5
    manifest["metadata"]["n_events"] -= 5
    (p / MANIFEST).write_text(json.dumps(manifest))


def _rewrite(p: Path, table: str, part: int, change) -> None:
    path = p / table / f"part-{part:05d}.parquet"
    t = pq.read_table(path)
    cols = {c: t.column(c).to_numpy().copy() for c in t.column_names}
    change(cols)
    pq.write_table(pa.table(cols, schema=t.schema), path)


def _set(table: str, column: str, row: int, value: int):
    def change(cols):
        cols[column][row] = value

    return lambda p: _rewrite(p, table, 1, change)


def _constituent_to_another_event(p: Path) -> None:
    jets = pq.read_table(p / "jets" / "part-00001.parquet").to_pydict()

    def change(cols):
        other = next(j for j, e in zip(jets["index"], jets["eventIndex"]) if e != cols["eventIndex"][0])
        cols["jetIndex"][0] = other

    _rewrite(p, "constituents", 1, change)


CORRUPTIONS = {
    "manifest count disagrees with the rows": _break_manifest_count,
    "eventIndex -1": _set("muons", "eventIndex", 0, -1),
    "eventIndex past the end": _set("muons", "eventIndex", 0, 10_000),
    "eventIndex of another part": _set("jets", "eventIndex", 0, 0),
    "an index used twice": lambda p: _rewrite(p, "jets", 1, lambda c: c["index"].__setitem__(1, c["index"][0])),
    "constituent of another event's jet": _constituent_to_another_event,
}


def _answer(src: Path, dst: Path, step: int | None) -> str:
    """The error a conversion ends with, or the SHA-256 of what it wrote."""
    import hashlib

    try:
        pcdf_to_h5(src, dst, progress=False, **({} if step is None else {"step": step}))
    except FormatError as exc:
        return f"error {exc}"
    return "bytes " + hashlib.sha256(dst.read_bytes()).hexdigest()


@pytest.mark.parametrize("corruption", [None, *CORRUPTIONS])
def test_every_step_gives_the_same_answer(corruption, events, tmp_path):
    src = shutil.copytree(events[0], tmp_path / "in.pcdf")
    if corruption is not None:
        CORRUPTIONS[corruption](src)
    answers = {step: _answer(src, tmp_path / f"out-{step}.h5", step) for step in (1, 3, 7, None)}
    assert len(set(answers.values())) == 1, answers
    assert next(iter(answers.values())).startswith("bytes" if corruption is None else "error"), answers
    if corruption is not None:
        problems = validate(src)
        assert problems, corruption
        for step in (3, None):  # readers agree with the validator, and leave nothing behind
            assert not (tmp_path / f"out-{step}.h5").exists()


def test_pcdf_parts_do_not_depend_on_the_step(events, tmp_path):
    digests = set()
    for step in (3, 7, 1000):
        out = h5_to_pcdf(events[1], tmp_path / f"p{step}", step=step, events_per_part=40, progress=False)
        digests.add(tuple((f.relative_to(out).as_posix(), f.read_bytes()) for f in sorted(out.rglob("*.parquet"))))
    assert len(digests) == 1


@pytest.mark.parametrize("value", ["-5", "0", "abc"])
def test_steps_are_positive_integers(value, events, tmp_path, capsys):
    line = refused(["pcdf-to-h5", str(events[0]), str(tmp_path / "x.h5"), "--step", value], capsys)
    assert "--step" in line and "positive integer" in line
    assert not any(tmp_path.iterdir())
    with pytest.raises(ArgumentError, match="step"):
        pcdf_to_h5(events[0], tmp_path / "x.h5", step=int(value) if value != "abc" else 0, progress=False)


# --- 4. stale outputs --------------------------------------------------------------------------


def test_a_changed_input_is_converted_again(testdata, tmp_path, caplog):
    from treasure_hf.data.sources.convert import convert_files

    run = tmp_path / "run.root"
    shutil.copy(testdata / "cms_nanoaod_dy_40ev.root", run)
    assert convert_files("cms", [run], tmp_path / "out", progress=False)[0].value["n_events"] == 40
    assert convert_files("cms", [run], tmp_path / "out", progress=False)[0].value["skipped"]
    shutil.copy(testdata / "cms_nanoaod_v15_tt_200ev.root", run)  # another file of the same name
    with caplog.at_level("INFO", logger="treasure_hf"):
        again = convert_files("cms", [run], tmp_path / "out", progress=False)[0].value
    assert not again["skipped"] and again["n_events"] == 200
    assert "converting again" in caplog.text and "changed" in caplog.text
    os.utime(run, ns=(run.stat().st_atime_ns, run.stat().st_mtime_ns + 10**9))  # touched: redone too
    assert not convert_files("cms", [run], tmp_path / "out", progress=False)[0].value["skipped"]


# --- 5. empty ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize("at", [0, 10, 30, 60, 100])
def test_an_empty_range_is_empty(at, events):
    batch = read_events(events[0], at, at)
    assert batch.n_events == 0 and batch["common/jets/pt"].shape[0] == 0
    assert read_events(events[0], at, at + 1).n_events == (1 if at < 100 else 0)


# --- 6. silent values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("common/met/pt", np.inf, "non-finite"),
        ("common/event/pvz", np.nan, "non-finite"),
        ("common/met/sumet", 0.5, "below MET"),
        ("common/met/pt", -3.0, "negative MET"),
    ],
)
def test_validate_checks_the_event_fields(key, value, message, tmp_path):
    ev = random_events(20, 4)
    ev.event[key] = ev.event[key].copy()
    ev.event[key][7] = value
    if key == "common/met/sumet":
        ev.event["common/met/pt"][7] = 10.0
    problems = validate(write_h5(tmp_path / "x.h5", ev))
    assert any(p.key == key and message in p.message and "event 7" in p.message for p in problems), problems


@pytest.fixture(scope="module")
def broken_nanoaod(testdata, tmp_path_factory):
    """The Drell-Yan NanoAOD file, with one muon's pT NaN and one jet's pT negative."""
    import awkward as ak
    from root_copies import nanoaod_copy

    def edit(arrays):
        for branch, row, value in (("Muon_pt", 3, np.nan), ("Jet_pt", 5, -20.0)):
            flat = ak.to_numpy(ak.flatten(arrays[branch])).copy()
            flat[row] = value
            arrays[branch] = ak.unflatten(flat, ak.num(arrays[branch]))

    return nanoaod_copy(testdata / "cms_nanoaod_dy_40ev.root", tmp_path_factory.mktemp("broken") / "dy.root", edit=edit)


def test_nan_or_negative_pt_in_a_source_is_an_error_or_counted(broken_nanoaod, tmp_path, capsys):
    line = refused(["convert", "cms", str(broken_nanoaod), "--out", str(tmp_path / "out")], capsys)
    assert f"{broken_nanoaod}: Muon_pt: entry 6: a muon with pt = nan" in line
    assert not (tmp_path / "out" / "dy.h5").exists()
    assert main(["-q", "convert", "cms", str(broken_nanoaod), "--out", str(tmp_path / "out"), "--drop-invalid"]) == 0
    batch = read_events(tmp_path / "out" / "dy.h5")
    assert batch.metadata["dropped_invalid"] == {"muons": 1, "jets": 1}
    assert validate(tmp_path / "out" / "dy.h5") == []


def test_a_flipped_bit_in_a_parquet_page_is_refused(events, tmp_path):
    src = shutil.copytree(events[0], tmp_path / "in.pcdf")
    path = src / "jets" / "part-00002.parquet"
    meta = pq.ParquetFile(path).metadata
    names = [meta.row_group(0).column(i).path_in_schema for i in range(meta.num_columns)]
    chunk = meta.row_group(0).column(names.index("eta"))
    data = bytearray(path.read_bytes())
    data[(chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"part-00002\.parquet: eta: page checksum mismatch"):
        read_events(src)
    assert any("checksum" in p.message for p in validate(src))


# --- 7. a model and a tokenizer that do not belong together ------------------------------------


@pytest.fixture(scope="module")
def two_tokenizers(tmp_path_factory):
    """Tokenizers A (electrons, muons, jets, MET) and B (muons, jets, photons, MET): the same
    vocabulary size, other types at the same ids; data tokenized with B; a model made for A."""
    from hf_samples import isolated_hf_cache

    from treasure_hf.hf.tokenize import tokenize_to_dataset
    from treasure_hf.modeling import EventTransformerConfig, EventTransformerForSequenceClassification
    from treasure_hf.modeling.defaults import config_kwargs_from_tokenizer
    from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

    root = tmp_path_factory.mktemp("pair")
    ev = random_events(150, 5, layers=("atlas", "truth"), multiplicity={"taus": 0.0, "tracks": 0.0})
    ev.event["truth/event/process_id"][:] = np.arange(150) % 2
    sample = write_pcdf(root / "s.pcdf", ev)
    tokenizers = {}
    for name, types in (("A", ("electrons", "muons", "jets", "met")), ("B", ("muons", "jets", "photons", "met"))):
        args = TokenizerTrainingArguments(
            codebook_size=16,
            num_stages=2,
            latent_dim=4,
            hidden_size=16,
            num_hidden_layers=1,
            types=types,
            steps=2,
            checkpoint_every=0,
        )
        tokenizers[name] = train_tokenizer([sample], root / f"tok{name}", args, progress=False)
    assert tokenizers["A"].vocab_size == tokenizers["B"].vocab_size
    with isolated_hf_cache(root / "cache"):
        data = tokenize_to_dataset(root / "tokB", [sample], root / "dataB", progress=False)
        config = EventTransformerConfig(
            **config_kwargs_from_tokenizer(tokenizers["A"]),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=2,
        )
        model = EventTransformerForSequenceClassification(config)
        model.save_pretrained(root / "modelA")
        tokenizers["A"].save_pretrained(root / "modelA")
        yield root, tokenizers, data, model


def test_finetune_refuses_a_model_made_for_another_tokenizer(two_tokenizers, tmp_path, capsys):
    root, _, data, _ = two_tokenizers
    line = refused(
        [
            "finetune",
            "--data",
            str(data),
            "--model",
            str(root / "modelA"),
            "--out",
            str(tmp_path / "ft"),
            "--max-steps",
            "2",
            "--report-to",
            "none",
        ],
        capsys,
    )
    assert "other token ids" in line and "ranges" in line and "tokenizer vocab_size" in line


def test_a_folder_whose_model_and_tokenizer_disagree_is_refused(two_tokenizers, tmp_path):
    from treasure_hf.modeling import EventTransformerForSequenceClassification

    root, tokenizers, _, model = two_tokenizers
    model.save_pretrained(tmp_path / "mixed")
    tokenizers["B"].save_pretrained(tmp_path / "mixed")
    with pytest.raises(ValueError, match="other token ids"):
        EventTransformerForSequenceClassification.from_pretrained(tmp_path / "mixed")
    assert EventTransformerForSequenceClassification.from_pretrained(root / "modelA").config.vocab_size > 0


def test_the_collator_refuses_ids_of_another_tokenizer(two_tokenizers):
    import datasets

    from treasure_hf.hf.collators import EventPaddingCollator

    root, tokenizers, data, model = two_tokenizers
    rows = list(datasets.load_dataset(str(data), split="train").select(range(16)))
    EventPaddingCollator(tokenizers["B"].token_id_ranges())(rows)  # its own tokenizer's ranges: fine
    with pytest.raises(CompatibilityError, match="another tokenizer"):
        EventPaddingCollator(model.config.token_id_ranges)(rows)
    smaller = {k: [lo, (lo + hi) // 2] for k, (lo, hi) in tokenizers["B"].token_id_ranges().items()}  # half the codes
    with pytest.raises(CompatibilityError, match="no token"):
        EventPaddingCollator(smaller)(rows)


# --- 8. inputs with the same basename ----------------------------------------------------------


def test_inputs_with_the_same_basename_are_told_apart(two_tokenizers, tmp_path):
    import datasets
    from hf_samples import isolated_hf_cache

    from treasure_hf.hf.tokenize import tokenize_to_dataset

    root = two_tokenizers[0]
    for sub in ("a", "b"):
        shutil.copytree(root / "s.pcdf", tmp_path / sub / "ev.pcdf")
    paths = [str(tmp_path / "a" / "ev.pcdf"), str(tmp_path / "b" / "ev.pcdf")]
    with isolated_hf_cache(tmp_path / "cache"):
        out = tokenize_to_dataset(root / "tokB", paths, tmp_path / "data", progress=False)
        features = datasets.load_dataset(str(out), split="train").features
    assert features["source"].names == paths
    with pytest.raises(ArgumentError, match="same input"):
        tokenize_to_dataset(root / "tokB", [paths[0], str(tmp_path / "a" / ".." / "a" / "ev.pcdf")], tmp_path / "d2")


# --- 9. damaged tokenizer configs --------------------------------------------------------------


@pytest.mark.parametrize("damage", ["zero scale", "NaN mean", "codebook shape", "truncated weights", "bad JSON"])
def test_a_damaged_tokenizer_is_refused_naming_the_file_and_key(damage, two_tokenizers, tmp_path):
    from safetensors.torch import load_file, save_file

    from treasure_hf.tokenization import EventTokenizer

    tok = shutil.copytree(two_tokenizers[0] / "tokA", tmp_path / "tok")
    layout = json.loads((tok / "event_tokenizer.json").read_text())
    if damage == "zero scale":
        layout["quantizers"]["muons"]["feature_std"][0] = 0.0
    elif damage == "NaN mean":
        layout["quantizers"]["jets"]["feature_mean"][1] = float("nan")
    if damage in ("zero scale", "NaN mean"):
        (tok / "event_tokenizer.json").write_text(json.dumps(layout))
    elif damage == "codebook shape":
        state = load_file(tok / "quantizers.safetensors")
        key = next(k for k in state if k.startswith("muons.") and "codebook" in k and state[k].ndim >= 2)
        state[key] = state[key][..., :-1].contiguous()
        save_file(state, tok / "quantizers.safetensors")
    elif damage == "truncated weights":
        data = (tok / "quantizers.safetensors").read_bytes()
        (tok / "quantizers.safetensors").write_bytes(data[: len(data) // 2])
    else:
        (tok / "event_tokenizer.json").write_text("{not json")
    expected = {
        "zero scale": r"event_tokenizer\.json: quantizers/muons: .*feature_std .* finite and positive",
        "NaN mean": r"event_tokenizer\.json: quantizers/jets: .*feature_mean .* not a finite number",
        "codebook shape": r"quantizers\.safetensors: muons\..*has shape",
        "truncated weights": r"quantizers\.safetensors: cannot be read as safetensors",
        "bad JSON": r"event_tokenizer\.json: is not valid JSON",
    }[damage]
    with pytest.raises(FormatError, match=expected):
        EventTokenizer.from_pretrained(tok)


# --- 10. one-line errors -----------------------------------------------------------------------


def test_failures_are_one_line_errors(events, two_tokenizers, tmp_path, capsys, monkeypatch):
    pcdf, h5 = events
    root, _, data, _ = two_tokenizers
    (tmp_path / "file").write_text("x")
    if Path("/sys").is_dir():  # a folder nobody may write into, root included
        assert "cannot be written" in refused(["h5-to-pcdf", str(h5), "/sys/treasure-out.pcdf"], capsys)
    assert "is a file" in refused(["h5-to-pcdf", str(h5), str(tmp_path / "file" / "out.pcdf")], capsys)
    assert "--max-objects" in refused(
        ["pcdf-to-h5", str(pcdf), str(tmp_path / "y.h5"), "--max-objects", "jets=-2"], capsys
    )
    assert "--max-objects" in refused(
        ["pcdf-to-h5", str(pcdf), str(tmp_path / "y.h5"), "--max-objects", "jet=2"], capsys
    )
    assert "--lr" in refused(["finetune", "--data", str(data), "--out", str(tmp_path / "ft"), "--lr", "fast"], capsys)
    line = refused(
        ["tokenize", "--tokenizer", str(tmp_path / "missing"), "--data", str(pcdf), "--out", str(tmp_path / "t")],
        capsys,
    )
    assert str(tmp_path / "missing") in line
    broken = shutil.copytree(root / "tokA", tmp_path / "broken-tok")
    (broken / "quantizers.safetensors").unlink()
    assert "quantizers.safetensors: is missing" in refused(
        ["tokenize", "--tokenizer", str(broken), "--data", str(pcdf), "--out", str(tmp_path / "t")], capsys
    )
    model = shutil.copytree(root / "modelA", tmp_path / "broken-model")
    (model / "model.safetensors").write_bytes(b"\x00" * 16)
    refused(
        ["finetune", "--data", str(data), "--model", str(model), "--out", str(tmp_path / "ft2"), "--report-to", "none"],
        capsys,
    )
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # a hub nobody answers at
    assert "http://127.0.0.1:9: a/b: cannot reach the hub" in refused(
        ["push", str(root / "tokA"), "--repo-id", "a/b", "--endpoint", "http://127.0.0.1:9"], capsys
    )


# --- 11. leftovers, whole swaps, file modes -----------------------------------------------------


def test_temporaries_of_killed_runs_are_removed_and_logged(events, tmp_path, caplog):
    from treasure_hf.data.atomic import _HOST

    dead = 2**22 + 12345  # beyond pid_max of most systems: no such process
    left = [tmp_path / f".out.pcdf.tmp-{_HOST}-{dead}-0123abcd", tmp_path / f".out.pcdf.tmp-{dead}-89abcdef"]
    for p in left:
        (p / "events").mkdir(parents=True)
    other_host = tmp_path / f".out.pcdf.tmp-elsewhere-{dead}-00000000"
    other_host.mkdir()
    with caplog.at_level("WARNING", logger="treasure_hf"):
        h5_to_pcdf(events[1], tmp_path / "out.pcdf", progress=False)
    assert not any(p.exists() for p in left) and other_host.exists()
    assert "left by a killed run" in caplog.text


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    start = time.monotonic()
    while not ready():
        assert proc.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() - start < timeout
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_killed_conversion_leaves_nothing_visible_and_the_rerun_matches(events, tmp_path):
    big = write_pcdf(tmp_path / "big.pcdf", random_events(6000, 9, sub_groups=("constituents",)), events_per_part=100)
    out = tmp_path / "out" / "big.h5"
    proc = subprocess.Popen([*TREASURE, "-q", "pcdf-to-h5", str(big), str(out), "--step", "50"])
    _kill_when(proc, lambda: any(p.name.startswith(".big.h5.tmp-") for p in out.parent.glob(".*")))
    assert not out.exists()
    assert main(["-q", "pcdf-to-h5", str(big), str(out), "--step", "50"]) == 0
    assert [p.name for p in out.parent.iterdir()] == ["big.h5"]
    assert out.read_bytes() == pcdf_to_h5(big, tmp_path / "straight.h5", progress=False).read_bytes()


def test_a_killed_tokenizer_training_keeps_the_old_tokenizer_and_resumes_to_the_same_weights(events, tmp_path):
    from safetensors.torch import load_file

    pcdf = events[0]
    base = [
        "train-tokenizer",
        "--data",
        str(pcdf),
        "--types",
        "muons,jets",
        "--codebook-size",
        "16",
        "--stages",
        "2",
        "--latent-dim",
        "4",
        "--hidden-size",
        "16",
        "--batch-size",
        "64",
        "--checkpoint-every",
        "10",
    ]
    out = tmp_path / "tok"
    assert main(["-q", *base, "--steps", "5", "--out", str(out)]) == 0
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    proc = subprocess.Popen([*TREASURE, "-q", *base, "--steps", "400", "--out", str(out)])
    _kill_when(proc, lambda: any((partial_dir(out) / "checkpoints" / "muons").glob("step-*")))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == old  # the old one, whole
    assert main(["-q", *base, "--steps", "400", "--out", str(out), "--resume"]) == 0
    assert not partial_dir(out).exists()
    assert main(["-q", *base, "--steps", "400", "--out", str(tmp_path / "straight")]) == 0
    a, b = load_file(out / "quantizers.safetensors"), load_file(tmp_path / "straight" / "quantizers.safetensors")
    assert a.keys() == b.keys()
    assert all(
        np.array_equal(a[k].numpy(), b[k].numpy())
        for k in a
        if "codebook_mean" not in k and "codebook_variance" not in k
    )


def test_file_modes_follow_the_umask(two_tokenizers):
    mask = os.umask(0)
    os.umask(mask)
    for path in (two_tokenizers[0] / "tokA").rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


def test_a_pcdf_writer_refuses_before_it_writes(tmp_path):
    folder = user_folder(tmp_path / "d")
    with pytest.raises(OutputError):
        PCDFWriter(folder, random_events(3, 1).metadata, Layout(("atlas",)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
