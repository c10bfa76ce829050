"""Event and object selections of the CLI: ``pcdf-to-h5 --pt-cut``, ``treasure select --preset 4l``
and the ragged selections under them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from treasure_hf import read_events
from treasure_hf.benchmark.selection import chosen_p4, invariant_mass, select_4l
from treasure_hf.data.outputs import producer_of
from treasure_hf.data.pcdf import write_pcdf
from treasure_hf.data.synthetic import random_events
from treasure_hf.progress import reporting, tqdm

TREASURE = [sys.executable, "-m", "treasure_hf.cli"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TREASURE, *args], capture_output=True, text=True, timeout=300)


def test_selecting_ragged_events_equals_selecting_padded_ones():
    ev = random_events(300, 4, sub_groups=("constituents",))
    keep = np.random.default_rng(0).random(300) < 0.4
    assert ev.select(keep).to_padded().equals(ev.to_padded().select(keep))
    assert ev.select(np.zeros(300, bool)).n_events == 0


def test_pt_cut_drops_soft_objects_and_their_constituents():
    ev = random_events(400, 5, sub_groups=("constituents",))
    cut = ev.apply_pt_cuts({"jets": 30.0})
    jets = ev.objects["common/jets/pt"]
    assert int(cut.counts["jets"].sum()) == int((jets >= 30.0).sum())  # every jet above 30 GeV kept, no other
    assert np.all(cut.objects["common/jets/pt"] >= 30.0)
    kept_parent = np.repeat(jets >= 30.0, ev.counts["constituents"])
    np.testing.assert_array_equal(
        cut.objects["common/constituents/pt"], ev.objects["common/constituents/pt"][kept_parent]
    )
    np.testing.assert_array_equal(cut.counts["muons"], ev.counts["muons"])  # types without a cut untouched


def test_pcdf_to_h5_pt_cut_from_the_shell(tmp_path):
    ev = random_events(500, 6)
    write_pcdf(tmp_path / "in.pcdf", ev, events_per_part=200)
    out = _run(
        "-q",
        "pcdf-to-h5",
        str(tmp_path / "in.pcdf"),
        str(tmp_path / "cut.h5"),
        "--pt-cut",
        "jets=35",
        "--max-objects",
        "jets=6",
        "--step",
        "130",
    )
    assert out.returncode == 0, out.stderr
    batch = read_events(tmp_path / "cut.h5")
    pt, mask = batch["common/jets/pt"], batch.mask("jets")
    assert pt.shape == (500, 6) and np.all(pt[mask] >= 35.0)
    expected = np.bincount(
        np.repeat(np.arange(500), ev.counts["jets"])[ev.objects["common/jets/pt"] >= 35.0], minlength=500
    )
    np.testing.assert_array_equal(batch.counts("jets"), expected)  # n: the jets passing the cut, before the padding
    assert batch.metadata["pt_cuts"]["jets"] == 35.0 and batch.metadata["pt_cuts"]["muons"] == 5.0
    bad = _run("pcdf-to-h5", str(tmp_path / "in.pcdf"), str(tmp_path / "x.h5"), "--pt-cut", "met=10")
    assert bad.returncode == 2 and "--pt-cut" in bad.stderr and not (tmp_path / "x.h5").exists()


@pytest.fixture(scope="module")
def higgs(tmp_path_factory):
    from treasure_hf.data.generate.generator import generate

    return generate("hzz4l", 200, seed=11, out=tmp_path_factory.mktemp("select") / "hzz4l.pcdf", progress=False)


@pytest.mark.parametrize("fmt", ["pcdf", "h5"])
def test_select_4l_keeps_exactly_the_selected_events(higgs, tmp_path, fmt):
    src = higgs
    if fmt == "h5":
        assert _run("-q", "pcdf-to-h5", str(higgs), str(tmp_path / "in.h5")).returncode == 0
        src = tmp_path / "in.h5"
    dst = tmp_path / ("sel.h5" if fmt == "h5" else "sel.pcdf")
    out = _run("-q", "select", str(src), str(dst), "--preset", "4l", "--step", "70")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    events = read_events(src)
    passed = select_4l(events).passed
    assert summary == {"output": str(dst), "n_events": 200, "n_selected": int(passed.sum())} and passed.sum() >= 20
    selected = read_events(dst)
    assert selected.equals(events.select(passed))  # every object and field of the selected events, bit for bit
    m4l = invariant_mass(chosen_p4(selected, select_4l(selected)).sum(1))
    assert np.all((m4l > 115) & (m4l < 130))  # the fiducial window
    assert "4l" in selected.metadata["notes"]["selection"] and producer_of(dst) == "select"
    again = _run("select", str(dst), str(tmp_path / "other"), "--preset", "none")
    assert again.returncode == 2 and "--preset" in again.stderr


def test_progress_bars_report_to_a_listener_hidden_or_not():
    heard = []
    with reporting(lambda desc, done, total: heard.append((desc, done, total))):
        with tqdm(total=10, desc="work", disable=True) as bar:
            bar.update(4)
            bar.update(6)
    assert heard == [("work", 4, 10), ("work", 10, 10)]
    with tqdm(total=3, disable=True) as bar:  # outside the context: nobody listens
        bar.update(3)
    assert len(heard) == 2
