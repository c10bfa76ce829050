"""The two on-disk formats: exact round trips, truncation bookkeeping, atomic writes, streaming."""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treasure_hf import read_events
from treasure_hf.data import schema
from treasure_hf.data.events import Layout, RaggedEvents
from treasure_hf.data.h5 import H5Source, H5Writer, write_h5
from treasure_hf.data.io import h5_to_pcdf, open_events, pcdf_to_h5
from treasure_hf.data.metadata import make_metadata
from treasure_hf.data.pcdf import PCDFSource, PCDFWriter, write_pcdf
from treasure_hf.data.synthetic import random_events
from treasure_hf.errors import FormatError, InputError

SMALL_MAX = {"electrons": 2, "muons": 3, "taus": 1, "photons": 2, "jets": 3, "tracks": 4, "constituents": 2, "hits": 3}


@st.composite
def ragged_events(draw) -> RaggedEvents:
    """Random ragged events whose multiplicities hit 0, exactly max_objects and more than it,
    with pT ties (so the sort must be stable) and every layer."""
    n_events = draw(st.integers(0, 7))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ev = random_events(n_events, seed, layers=("atlas", "cms", "truth"), sub_groups=("constituents", "hits"))
    counts = {}
    for g in (*schema.OBJECT_TYPES, *schema.SUB_OBJECT_TYPES):
        spec = schema.GROUPS[g]
        owners = n_events if spec.kind == "object" else int(counts[spec.parent].sum())
        counts[g] = np.asarray(
            draw(st.lists(st.integers(0, SMALL_MAX[g] + 2), min_size=owners, max_size=owners)), np.int64
        )
    objects = {}
    for k, v in ev.objects.items():
        g = k.split("/")[1]
        f = schema.field_of(k)
        n_rows = int(counts[g].sum())
        if f.name == "pt":  # few distinct values: ties are common
            objects[k] = rng.integers(1, 4, n_rows).astype(np.float32) * 10
        else:
            objects[k] = (
                rng.normal(size=n_rows).astype(f.np_dtype)
                if f.np_dtype.kind == "f"
                else rng.integers(-1, 3, n_rows).astype(f.np_dtype)
            )
    return RaggedEvents(n_events, ev.event, objects, counts, {}, ev.metadata)


def _reference_padded(ev: RaggedEvents, g: str, k: str) -> np.ndarray:
    """A slow, obvious loop: per event, stable sort by descending pT, keep the first max_objects."""
    width = SMALL_MAX[g]
    out = np.zeros((ev.n_events, width), ev.objects[k].dtype)
    start = 0
    pt = ev.objects[f"common/{g}/pt"]
    for i, c in enumerate(ev.counts[g]):
        rows = list(range(start, start + c))
        rows.sort(key=lambda r: -pt[r])  # Python's sort is stable
        for slot, r in enumerate(rows[:width]):
            out[i, slot] = ev.objects[k][r]
        start += c
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ragged_events())
def test_round_trip_is_exact_for_random_ragged_events(ev: RaggedEvents):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        padded = ev.to_padded(SMALL_MAX)
        # truncation is visible: n counts every object, the mask only the kept ones
        for g in schema.OBJECT_TYPES:
            assert np.array_equal(padded.counts(g), ev.counts[g])
            assert np.array_equal(padded.mask(g).sum(1), np.minimum(ev.counts[g], SMALL_MAX[g]))
            for k in (f"common/{g}/pt", f"atlas/{g}/{schema.fields('atlas', g)[0].name}"):
                assert np.array_equal(padded[k], _reference_padded(ev, g, k)), k
        # HDF5 -> PCDF -> HDF5, in small chunks, bit for bit
        write_h5(tmp / "a.h5", padded)
        h5_to_pcdf(tmp / "a.h5", tmp / "a.pcdf", step=3, progress=False)
        pcdf_to_h5(tmp / "a.pcdf", tmp / "b.h5", step=2, progress=False)
        assert read_events(tmp / "a.h5").equals(padded)
        assert read_events(tmp / "b.h5").equals(padded)
        assert read_events(tmp / "a.pcdf").equals(padded)
        # PCDF keeps every object: written untruncated, it pads to the same events
        write_pcdf(
            tmp / "full.pcdf",
            ev,
            {**ev.metadata, "max_objects": {**schema.default_max_objects(), **SMALL_MAX}},
            events_per_part=3,
        )
        assert read_events(tmp / "full.pcdf").equals(padded)
        full = PCDFSource(tmp / "full.pcdf").read_ragged()
        for g in schema.OBJECT_TYPES:
            assert np.array_equal(full.counts[g], ev.counts[g])


def test_events_with_no_objects_and_an_empty_file_survive(tmp_path):
    ev = random_events(50, 3, multiplicity={"electrons": 0.0, "taus": 0.0})
    assert ev.counts["electrons"].sum() == 0
    write_pcdf(tmp_path / "a.pcdf", ev, events_per_part=20)
    pcdf_to_h5(tmp_path / "a.pcdf", tmp_path / "a.h5", progress=False)
    batch = read_events(tmp_path / "a.h5")
    assert batch.n_events == 50 and not batch.mask("electrons").any()
    empty = random_events(0, 0)
    write_pcdf(tmp_path / "empty.pcdf", empty)
    pcdf_to_h5(tmp_path / "empty.pcdf", tmp_path / "empty.h5", progress=False)
    assert read_events(tmp_path / "empty.h5").n_events == 0
    assert read_events(tmp_path / "empty.pcdf").n_events == 0
    assert PCDFSource(tmp_path / "empty.pcdf").files("jets")  # tables exist, with their schema


def test_slices_of_either_format_match(tmp_path):
    ev = random_events(1000, 5, sub_groups=("constituents",))
    padded = ev.to_padded()
    write_pcdf(tmp_path / "a.pcdf", ev, events_per_part=300)
    write_h5(tmp_path / "a.h5", padded)
    for lo, hi in ((0, 1000), (0, 300), (250, 700), (999, 1000), (400, 400)):
        assert read_events(tmp_path / "a.pcdf", lo, hi).equals(padded.slice(lo, hi)), (lo, hi)
        assert read_events(tmp_path / "a.h5", lo, hi).equals(padded.slice(lo, hi)), (lo, hi)


def test_sub_objects_follow_their_parent_jet(tmp_path):
    """Constituents stay with their jet when jets are re-sorted by pT and truncated."""
    ev = random_events(200, 9, sub_groups=("constituents",), multiplicity={"jets": 8})
    padded = ev.to_padded({"jets": 3})
    jet_pt = ev.objects["common/jets/pt"]
    const_pt = ev.objects["common/constituents/pt"]
    jet_of_const = np.repeat(np.arange(len(jet_pt)), ev.counts["constituents"])
    offsets = np.concatenate([[0], np.cumsum(ev.counts["jets"])])
    for i in range(ev.n_events):
        jets = np.arange(offsets[i], offsets[i + 1])
        kept = jets[np.argsort(-jet_pt[jets], kind="stable")][:3]
        for slot, j in enumerate(kept):
            expected = np.sort(const_pt[jet_of_const == j])[::-1][:50]
            got = padded["common/constituents/pt"][i, slot][padded.mask("constituents")[i, slot]]
            assert np.array_equal(got, expected)
            assert padded.counts("constituents")[i, slot] == (jet_of_const == j).sum()


def test_hdf5_is_chunked_and_compressed_with_a_builtin_filter(tmp_path):
    write_h5(tmp_path / "a.h5", random_events(100, 1).to_padded())
    with h5py.File(tmp_path / "a.h5") as f:
        ds = f["common/jets/pt"]
        assert ds.chunks is not None and ds.compression == "gzip" and ds.shuffle
        assert ds.dtype == np.float32 and f["common/jets/mask"].dtype == bool


def test_pcdf_tables_are_linked_by_indices(tmp_path):
    ev = random_events(300, 2, sub_groups=("constituents",))
    write_pcdf(tmp_path / "a.pcdf", ev, events_per_part=100)
    import pyarrow.dataset as ds

    events = ds.dataset(tmp_path / "a.pcdf" / "events").to_table().to_pydict()
    jets = ds.dataset(tmp_path / "a.pcdf" / "jets").to_table().to_pydict()
    const = ds.dataset(tmp_path / "a.pcdf" / "constituents").to_table().to_pydict()
    tracks = ds.dataset(tmp_path / "a.pcdf" / "tracks").to_table()
    assert events["eventIndex"] == list(range(300))
    assert set(jets["eventIndex"]) <= set(events["eventIndex"])
    jet_event = dict(zip(jets["index"], jets["eventIndex"]))
    assert all(jet_event[j] == e for j, e in zip(const["jetIndex"], const["eventIndex"]))
    assert {"q_p", "theta", "atlas_q0verP"} <= set(tracks.column_names)
    theta = tracks.column("theta").to_numpy()
    eta = tracks.column("eta").to_numpy()
    assert np.allclose(-np.log(np.tan(theta / 2)), eta, atol=1e-4)
    kv = ds.dataset(tmp_path / "a.pcdf" / "jets").schema.metadata
    assert kv[b"format_version"].decode() == schema.FORMAT_VERSION


def test_failed_writes_leave_no_partial_output(tmp_path):
    meta = make_metadata("ATLAS", "test")
    good = random_events(10, 1, layers=())
    bad = RaggedEvents(10, {}, {}, {})
    with pytest.raises(InputError, match="common/"):
        with H5Writer(tmp_path / "x.h5", meta, Layout()) as w:
            w.write(good)
            w.write(bad)
    with pytest.raises(InputError):
        with PCDFWriter(tmp_path / "x.pcdf", meta, Layout()) as w:
            w.write(good)
            w.write(bad)
    assert list(tmp_path.iterdir()) == []


def test_resumed_pcdf_write_gives_the_same_data_set(tmp_path):
    ev = random_events(90, 4)
    meta = ev.metadata
    layout = Layout(("atlas",))
    parts = [ev.to_padded().slice(i, i + 30) for i in range(0, 90, 30)]
    with pytest.raises(RuntimeError):
        with PCDFWriter(tmp_path / "r.pcdf", meta, layout, resume=True) as w:
            for p in parts[:2]:
                w.write(p)
            raise RuntimeError("interrupted")
    assert not (tmp_path / "r.pcdf").exists()
    with PCDFWriter(tmp_path / "r.pcdf", meta, layout, resume=True) as w:
        assert w.n_events == 60
        for p in parts[w.n_events // 30 :]:
            w.write(p)
    write_pcdf(tmp_path / "once.pcdf", ev, meta, events_per_part=30)
    assert read_events(tmp_path / "r.pcdf").equals(read_events(tmp_path / "once.pcdf"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["once.pcdf", "r.pcdf"]


def test_readers_refuse_other_format_versions_and_corrupt_files(tmp_path):
    write_h5(tmp_path / "a.h5", random_events(10, 1).to_padded())
    with h5py.File(tmp_path / "a.h5", "a") as f:
        f["metadata"].attrs["format_version"] = "99"
    with pytest.raises(FormatError, match="format_version"):
        read_events(tmp_path / "a.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(FormatError, match="junk.h5"):
        open_events(tmp_path / "junk.h5")


def test_h5_source_streams_in_steps(tmp_path):
    padded = random_events(250, 8).to_padded()
    write_h5(tmp_path / "a.h5", padded)
    with H5Source(tmp_path / "a.h5") as src:
        chunks = list(src.iter_batches(100))
    assert [c.n_events for c in chunks] == [100, 100, 50]
    from treasure_hf import EventBatch

    assert EventBatch.concat(chunks).equals(padded)
