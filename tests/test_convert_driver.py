"""The multi-file driver and ``treasure convert``: corrupt inputs, --keep-going, resume, Dask."""

from __future__ import annotations

import shutil

import h5py
import pyarrow.parquet as pq
import pytest

from treasure_hf.cli import main
from treasure_hf.data.io import read_events
from treasure_hf.data.sources.convert import ConvertTask, convert_file, convert_files, output_path
from treasure_hf.data.validate import validate
from treasure_hf.errors import FormatError, OutputError

CMS_FILES = ("cms_nanoaod_dy_40ev.root", "cms_pfnano_10ev.root", "cms_nanoaod_2015_ttbar_10ev.rntuple.root")


@pytest.fixture
def truncated(testdata, tmp_path):
    """A copy of a real NanoAOD file with its second half cut off."""
    path = tmp_path / "in" / "truncated_dy.root"
    path.parent.mkdir()
    shutil.copy(testdata / "cms_nanoaod_dy_40ev.root", path)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return path


def _outputs(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("fmt", ["h5", "pcdf"])
def test_truncated_file_is_a_clear_error_and_leaves_nothing(truncated, tmp_path, capsys, fmt):
    out = tmp_path / "out"
    with pytest.raises(FormatError, match="truncated_dy.root"):
        convert_file(ConvertTask("cms", str(truncated), str(output_path(truncated, out, fmt)), fmt))
    status = main(["-q", "convert", "cms", str(truncated), "--out", str(out), "--format", fmt])
    assert status != 0
    err = capsys.readouterr().err
    assert "truncated_dy.root" in err and ("truncated" in err or "corrupt" in err)
    assert _outputs(out) == []  # no output and no temporary leftovers


def test_keep_going_converts_the_others_and_lists_the_failure(testdata, truncated, tmp_path, capsys):
    out = tmp_path / "out"
    inputs = [str(testdata / CMS_FILES[0]), str(truncated), str(testdata / CMS_FILES[1])]
    status = main(["-q", "convert", "cms", *inputs, "--out", str(out), "--keep-going"])
    assert status == 1
    captured = capsys.readouterr()
    assert "failed 1" in captured.out and "truncated_dy.root" in captured.err
    assert _outputs(out) == ["cms_nanoaod_dy_40ev.h5", "cms_pfnano_10ev.h5"]
    for name in _outputs(out):
        assert validate(out / name) == []


def test_rerun_skips_complete_outputs_and_redoes_the_rest(testdata, tmp_path):
    out = tmp_path / "out"
    inputs = [testdata / n for n in CMS_FILES[:2]]
    first = convert_files("cms", inputs, out, progress=False)
    assert [r.value["skipped"] for r in first] == [False, False]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "cms_pfnano_10ev.h5").write_bytes(b"not hdf5: an output damaged after the fact")
    with pytest.raises(OutputError, match="not written by treasure_hf"):  # not ours any more: kept
        convert_files("cms", inputs, out, progress=False)
    assert (out / "cms_pfnano_10ev.h5").read_bytes().startswith(b"not hdf5")
    second = convert_files("cms", inputs, out, progress=False, overwrite=True)
    assert [r.value["skipped"] for r in second] == [True, False]
    assert (out / "cms_nanoaod_dy_40ev.h5").stat().st_mtime_ns == stamps["cms_nanoaod_dy_40ev.h5"]
    assert validate(out / "cms_pfnano_10ev.h5") == []
    # other settings make the existing output stale
    third = convert_files("cms", inputs[:1], out, pt_cuts={"jets": 30.0}, progress=False)
    assert third[0].value["skipped"] is False
    assert read_events(out / "cms_nanoaod_dy_40ev.h5").metadata["pt_cuts"]["jets"] == 30.0


def test_cli_records_cuts_and_padding(testdata, tmp_path):
    out = tmp_path / "out"
    status = main(
        [
            "-q",
            "convert",
            "atlas",
            str(testdata / "atlas_physlite_mc_100ev.rntuple.root"),
            "--out",
            str(out),
            "--pt-cut",
            "muons=0",
            "--max-objects",
            "muons=12",
            "--format",
            "pcdf",
            "--step-size",
            "30",
        ]
    )
    assert status == 0
    batch = read_events(out / "atlas_physlite_mc_100ev.rntuple")
    assert batch.metadata["pt_cuts"]["muons"] == 0.0 and batch.metadata["max_objects"]["muons"] == 12
    assert int(batch.counts("muons").sum()) == 88
    with pytest.raises(SystemExit) as refused:  # argparse's one-line usage error, before any work
        main(["-q", "convert", "atlas", "x.root", "--out", str(out), "--pt-cut", "muon=3"])
    assert refused.value.code == 2


def test_step_size_does_not_change_the_result(testdata, tmp_path):
    src = str(testdata / "cms_pfnano_10ev.root")
    a = convert_file(ConvertTask("cms", src, str(tmp_path / "a.h5"), step_size=3))
    b = convert_file(ConvertTask("cms", src, str(tmp_path / "b.h5"), step_size=1000))
    assert a["n_events"] == b["n_events"] == 10
    assert read_events(tmp_path / "a.h5").equals(read_events(tmp_path / "b.h5"))


def _h5_data(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        meta = dict(f["metadata"].attrs)
    return out, meta


def _pcdf_data(path):
    return {
        str(p.relative_to(path)): pq.read_table(p).replace_schema_metadata(None)
        for p in sorted(path.rglob("*.parquet"))
    }


@pytest.mark.parametrize("fmt", ["h5", "pcdf"])
def test_dask_local_cluster_gives_the_same_bytes_as_serial(testdata, tmp_path, fmt):
    inputs = [testdata / n for n in CMS_FILES]
    serial = convert_files("cms", inputs, tmp_path / "serial", fmt=fmt, progress=False)
    dask = convert_files("cms", inputs, tmp_path / "dask", fmt=fmt, workers=2, progress=False)
    assert all(r.ok for r in serial + dask)
    for name in CMS_FILES:
        a, b = output_path(name, tmp_path / "serial", fmt), output_path(name, tmp_path / "dask", fmt)
        if fmt == "h5":
            (da, ma), (db, mb) = _h5_data(a), _h5_data(b)
            assert set(da) == set(db)
            for k in da:
                assert da[k].dtype == db[k].dtype and da[k].tobytes() == db[k].tobytes(), k
            assert ma == mb  # git_hash included: the same checkout wrote both
        else:
            ta, tb = _pcdf_data(a), _pcdf_data(b)
            assert set(ta) == set(tb)
            for k in ta:
                assert ta[k].schema == tb[k].schema, k
                for c in ta[k].column_names:  # bytes, so that NaN equals NaN
                    x, y = ta[k][c].to_numpy(), tb[k][c].to_numpy()
                    assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (k, c)
            assert read_events(a).metadata == read_events(b).metadata
