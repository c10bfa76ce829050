"""`treasure validate` accepts what the writers write and refuses broken files, naming the key."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from treasure_hf.cli import main
from treasure_hf.data.h5 import write_h5
from treasure_hf.data.pcdf import write_pcdf
from treasure_hf.data.synthetic import random_events
from treasure_hf.data.validate import validate


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("good")
    ev = random_events(400, 11, layers=("atlas", "truth"), sub_groups=("constituents",))
    write_h5(tmp / "good.h5", ev.to_padded())
    write_pcdf(tmp / "good.pcdf", ev, events_per_part=150)
    return tmp / "good.h5", tmp / "good.pcdf"


def _broken_h5(good, tmp_path, edit):
    path = tmp_path / "broken.h5"
    shutil.copy(good, path)
    with h5py.File(path, "a") as f:
        edit(f)
    return path


def _first_padding(mask):
    return tuple(np.argwhere(~mask)[0])


H5_BREAKAGES = {
    "missing key": (lambda f: f.__delitem__("common/jets/eta"), "common/jets/eta", "missing"),
    "wrong dtype": (
        lambda f: (
            f.__delitem__("common/muons/charge"),
            f.create_dataset("common/muons/charge", data=np.zeros((400, 8), np.float32)),
        ),
        "common/muons/charge",
        "dtype",
    ),
    "mask and n disagree": (
        lambda f: f["common/electrons/n"].__setitem__(0, f["common/electrons/n"][0] + 1),
        "common/electrons/mask",
        "mask and n disagree",
    ),
    "non-zero padding": (
        lambda f: f["common/jets/mass"].__setitem__(_first_padding(f["common/jets/mask"][:]), 3.0),
        "common/jets/mass",
        "padding",
    ),
    "MeV units": (
        lambda f: f["common/jets/pt"].__setitem__(slice(None), f["common/jets/pt"][:] * 1000),
        "common/jets/pt",
        "MeV",
    ),
    "missing metadata attribute": (
        lambda f: f["metadata"].attrs.__delitem__("git_hash"),
        "metadata/git_hash",
        "missing",
    ),
    "wrong format_version": (
        lambda f: f["metadata"].attrs.__setitem__("format_version", "9.9"),
        "metadata/format_version",
        "9.9",
    ),
    "unsorted objects": (
        lambda f: f["common/tracks/pt"].__setitem__((0, slice(0, 2)), [1.0, 50.0]),
        "common/tracks/pt",
        "sorted",
    ),
    "experiment disagrees": (
        lambda f: f["common/event/experiment_id"].__setitem__(3, 1),
        "common/event/experiment_id",
        "experiment",
    ),
    "wrong shape": (
        lambda f: (
            f.__delitem__("common/taus/pt"),
            f.create_dataset("common/taus/pt", data=np.zeros((400, 7), np.float32)),
        ),
        "common/taus/pt",
        "shape",
    ),
}


def test_written_files_are_valid(good_files):
    h5, pcdf = good_files
    assert validate(h5) == []
    assert validate(pcdf) == []


@pytest.mark.parametrize("breakage", sorted(H5_BREAKAGES))
def test_broken_hdf5_is_refused_with_the_key_named(good_files, tmp_path, breakage, capsys):
    edit, key, words = H5_BREAKAGES[breakage]
    path = _broken_h5(good_files[0], tmp_path, edit)
    problems = validate(path)
    assert any(p.key == key and words.lower() in p.message.lower() for p in problems), problems
    assert main(["-q", "validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(key in line for line in out) and len(out) == len(problems)


def test_truncated_hdf5_is_refused(good_files, tmp_path):
    data = good_files[0].read_bytes()
    for cut in (len(data) // 2, 1000):
        path = tmp_path / f"truncated{cut}.h5"
        path.write_bytes(data[:cut])
        problems = validate(path)
        assert problems and any("truncated" in p.message or "corrupt" in p.message for p in problems), problems


def test_broken_pcdf_is_refused_with_the_key_named(good_files, tmp_path):
    src = good_files[1]

    def fresh(name):
        dst = tmp_path / name
        shutil.copytree(src, dst)
        return dst

    no_manifest = fresh("no_manifest")
    (no_manifest / "pcdf.json").unlink()
    assert any(p.key == "pcdf.json" for p in validate(no_manifest))

    missing_column = fresh("missing_column")
    part = missing_column / "muons" / "part-00001.parquet"
    table = pq.read_table(part)
    pq.write_table(table.drop_columns(["charge"]).replace_schema_metadata(table.schema.metadata), part)
    assert any(p.key == "muons/charge" and "missing" in p.message for p in validate(missing_column))

    wrong_type = fresh("wrong_type")
    part = wrong_type / "jets" / "part-00000.parquet"
    table = pq.read_table(part)
    i = table.schema.get_field_index("n_trk")
    table = table.set_column(i, "n_trk", table.column("n_trk").cast("float64"))
    pq.write_table(table, part)
    assert any(p.key == "jets/n_trk" and "type" in p.message for p in validate(wrong_type))

    dangling = fresh("dangling")
    part = dangling / "electrons" / "part-00000.parquet"
    table = pq.read_table(part)
    i = table.schema.get_field_index("eventIndex")
    table = table.set_column(i, "eventIndex", pa.array(np.asarray(table.column("eventIndex")) + 10_000))
    pq.write_table(table, part)
    assert any(p.key.endswith("eventIndex") for p in validate(dangling))

    bad_version = fresh("bad_version")
    manifest = json.loads((bad_version / "pcdf.json").read_text())
    manifest["metadata"]["format_version"] = "0.0"
    (bad_version / "pcdf.json").write_text(json.dumps(manifest))
    assert any(p.key == "metadata/format_version" for p in validate(bad_version))

    mev = fresh("mev")
    for part in sorted((mev / "jets").glob("*.parquet")):
        table = pq.read_table(part)
        i = table.schema.get_field_index("pt")
        table = table.set_column(i, "pt", pa.array((np.asarray(table.column("pt")) * 1000).astype(np.float32)))
        pq.write_table(table.replace_schema_metadata(table.schema.metadata), part)
    assert any(p.key == "common/jets/pt" and "MeV" in p.message for p in validate(mev))


def test_validate_names_a_missing_path(tmp_path):
    assert main(["-q", "validate", str(tmp_path / "nothing.h5")]) == 1
