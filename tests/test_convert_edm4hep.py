"""EDM4hep files (key4hep) to the common format, checked against independent uproot reads of the
real test files: the FCC-ee Delphes sample p8_ee_WW_ecm240 (IDEA, B = 2 T, 10 events) and the
EDM4hep example file edm4hep.root (3 events whose every value is a counter from 42: a layout test,
not physics)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from root_copies import edm4hep_numbered_copy

from treasure_hf.data import schema, validate
from treasure_hf.data.helix import GEV_PER_TESLA_MM
from treasure_hf.data.io import open_events
from treasure_hf.data.sources.convert import convert_files
from treasure_hf.data.sources.edm4hep import Edm4hepOptions
from treasure_hf.errors import InputError

P8, EXAMPLE = "p8_ee_WW_ecm240_edm4hep.root", "edm4hep.root"
EXAMPLE_SETTINGS = dict(options=Edm4hepOptions(bfield_tesla=2.0), pt_cuts={"tracks": 0.0})
"""edm4hep.root records no field, and its track curvatures (omega = 50/mm) mean pT ~ 1e-5 GeV."""


def _convert(src: Path, out: Path, fmt: str = "h5", **kw) -> Path:
    (result,) = convert_files("edm4hep", [src], out, fmt=fmt, progress=False, **kw)
    if not result.ok:
        raise result.error
    return Path(result.value["output"])


def _read(path: Path):
    source = open_events(path)
    try:
        return next(source.iter_batches(1000))
    finally:
        source.close()


@pytest.fixture(scope="module")
def converted(testdata: Path, tmp_path_factory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("edm4hep")
    return {
        (name, fmt): _convert(testdata / name, out / fmt, fmt, **(EXAMPLE_SETTINGS if name == EXAMPLE else {}))
        for name in (P8, EXAMPLE)
        for fmt in ("h5", "pcdf")
    }


@pytest.fixture(scope="module")
def p8(testdata: Path) -> dict[str, ak.Array]:
    with uproot.open(testdata / P8) as f:
        return f["events"].arrays(
            how=dict,
            filter_name=[
                "ReconstructedParticles.*",
                "_ReconstructedParticles_tracks.index",
                "Electron_objIdx.index",
                "Muon_objIdx.index",
                "Jet.momentum.*",
                "EFlowTrack.trackStates_begin",
                "EFlowTrack.trackerHits_*",
                "_EFlowTrack_trackStates.omega",
                "_EFlowTrack_trackStates.tanLambda",
                "_EFlowTrack_trackStates.covMatrix*",
                "magFieldBz",
            ],
        )


def test_both_files_convert_to_both_formats_and_validate(converted):
    for (name, fmt), path in converted.items():
        assert validate.validate(path) == [], (name, fmt)
    for name in (P8, EXAMPLE):
        h5, pcdf = _read(converted[(name, "h5")]), _read(converted[(name, "pcdf")])
        assert set(h5.keys()) == set(pcdf.keys())
        for k in h5.keys():
            assert np.array_equal(h5[k], pcdf[k], equal_nan=True), (name, k)
    batch = _read(converted[(P8, "h5")])
    meta = batch.metadata
    assert meta["experiment"] == "FCC-ee" and np.all(batch["common/event/experiment_id"] == 2)
    assert meta["initial_state"]["sqrt_s_gev"] == pytest.approx(240.0)
    assert meta["magnetic_field"]["source"].startswith("the file's magFieldBz")
    assert "hit times converted s -> ns" in " ".join(meta["notes"])
    assert meta["podio_layout"]["collections"]["tracks"] == "EFlowTrack"
    assert "taus" in meta["missing_collections"]


def test_missing_four_momentum_is_the_beams_minus_every_reconstructed_particle(converted, p8):
    batch = _read(converted[(P8, "h5")])
    energy = ak.sum(p8["ReconstructedParticles.energy"], axis=1).to_numpy()
    px = ak.sum(p8["ReconstructedParticles.momentum.x"], axis=1).to_numpy()
    np.testing.assert_allclose(batch["edm4hep/event/missing_e"], 240.0 - energy, atol=1e-3)
    np.testing.assert_allclose(batch["edm4hep/event/missing_px"], -px, atol=1e-3)
    np.testing.assert_allclose(
        batch["common/met/pt"],
        np.hypot(batch["edm4hep/event/missing_px"], batch["edm4hep/event/missing_py"]),
        rtol=1e-5,
    )
    np.testing.assert_allclose(batch["edm4hep/event/sqrt_s"], 240.0, rtol=1e-6)


def test_track_pt_agrees_with_the_linked_particle_within_its_resolution(converted, p8):
    pulls, ours, theirs = [], [], []
    batch = _read(converted[(P8, "h5")])
    for e in range(len(p8["magFieldBz"])):
        field = float(p8["magFieldBz"][e][0])
        assert field == 2.0  # IDEA's solenoid
        state = p8["EFlowTrack.trackStates_begin"][e].to_numpy()
        omega = p8["_EFlowTrack_trackStates.omega"][e].to_numpy()[state]
        cov = p8["_EFlowTrack_trackStates.covMatrix.values[21]"][e].to_numpy()[state]
        pt = GEV_PER_TESLA_MM * field / np.abs(omega)
        sigma = np.sqrt(cov[:, 5]) / np.abs(omega) * pt  # (2, 2) of the lower triangle: sigma(omega)^2
        begin = p8["ReconstructedParticles.tracks_begin"][e].to_numpy()
        one = (p8["ReconstructedParticles.tracks_end"][e].to_numpy() - begin) == 1
        track = p8["_ReconstructedParticles_tracks.index"][e].to_numpy()[begin[one]]
        particle_pt = np.hypot(
            p8["ReconstructedParticles.momentum.x"][e].to_numpy(), p8["ReconstructedParticles.momentum.y"][e].to_numpy()
        )[one]
        pulls.append((pt[track] - particle_pt) / sigma[track])
        theirs.append(np.sort(pt[pt >= schema.GROUPS["tracks"].pt_cut_gev])[::-1])
        ours.append(batch["common/tracks/pt"][e][batch["common/tracks/mask"][e]])
    pulls = np.concatenate(pulls)
    assert len(pulls) > 250 and np.max(np.abs(pulls)) < 3.0, np.percentile(np.abs(pulls), [50, 99, 100])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert "100.0% within 5 sigma" in " ".join(batch.metadata["notes"])


def test_leptons_and_jets_agree_with_independent_uproot_reads(converted, p8):
    batch = _read(converted[(P8, "pcdf")])
    px, py = p8["ReconstructedParticles.momentum.x"], p8["ReconstructedParticles.momentum.y"]
    pz, q = p8["ReconstructedParticles.momentum.z"], p8["ReconstructedParticles.charge"]
    for group, branch in (("electrons", "Electron_objIdx.index"), ("muons", "Muon_objIdx.index")):
        idx = p8[branch]
        pt = np.hypot(px[idx], py[idx])
        eta, charge = np.arcsinh(pz[idx] / pt), q[idx]
        n_found = 0
        for e in range(len(idx)):
            keep = pt[e].to_numpy() >= schema.GROUPS[group].pt_cut_gev
            order = np.argsort(-pt[e].to_numpy()[keep], kind="stable")
            mask = batch[f"common/{group}/mask"][e]
            np.testing.assert_allclose(batch[f"common/{group}/pt"][e][mask], pt[e].to_numpy()[keep][order], rtol=1e-6)
            np.testing.assert_allclose(batch[f"common/{group}/eta"][e][mask], eta[e].to_numpy()[keep][order], atol=1e-5)
            assert np.array_equal(batch[f"common/{group}/charge"][e][mask], charge[e].to_numpy()[keep][order])
            n_found += int(mask.sum())
        assert n_found == int(ak.sum(pt >= schema.GROUPS[group].pt_cut_gev)) > 0
    jet_pt = np.hypot(p8["Jet.momentum.x"], p8["Jet.momentum.y"])
    for e in range(len(jet_pt)):
        want = np.sort(jet_pt[e].to_numpy()[jet_pt[e].to_numpy() >= schema.GROUPS["jets"].pt_cut_gev])[::-1]
        np.testing.assert_allclose(batch["common/jets/pt"][e][batch["common/jets/mask"][e]], want, rtol=1e-6)


def test_every_track_carries_the_hits_its_links_name(converted, p8, testdata):
    # p8: every EFlowTrack links 3 TrackerHits (its point of closest approach, the first layer at
    # r = 12 mm, the calorimeter entrance at r = 2250 mm or |z| = 2500 mm); charged particles have no cluster
    n_links = p8["EFlowTrack.trackerHits_end"] - p8["EFlowTrack.trackerHits_begin"]
    assert set(np.unique(ak.flatten(n_links).to_numpy())) == {3}
    charged = p8["ReconstructedParticles.charge"] != 0
    assert ak.all(
        (p8["ReconstructedParticles.clusters_end"] - p8["ReconstructedParticles.clusters_begin"])[charged] == 0
    )
    batch = _read(converted[(P8, "h5")])
    real = batch["common/tracks/mask"]
    assert np.all(batch["common/hits/n"][real] == 3) and np.all(batch["edm4hep/tracks/n_hits"][real] == 3)
    assert np.array_equal(batch["common/hits/mask"][real].sum(-1), batch["common/hits/n"][real])
    layers = batch["common/hits/layer"][real][:, :3]
    assert np.all(layers == [0, 1, 2])  # inside out
    outer = batch["edm4hep/hits/r"][real][:, 2], batch["edm4hep/hits/z"][real][:, 2]
    assert np.all(np.isclose(outer[0], 2250.0, atol=0.01) | np.isclose(np.abs(outer[1]), 2500.0, atol=0.01))
    # times now in ns: light needs L / c to get there, and the particles are nearly as fast
    length = np.hypot(*outer)
    beta = length / (299.792458 * batch["common/hits/time"][real][:, 2])
    assert 0.85 < np.median(beta) <= 1.0 + 1e-3
    # edm4hep.root: each track links 1 tracker hit, its particle 1 cluster of 1 calorimeter hit
    with uproot.open(testdata / EXAMPLE) as f:
        t = f["events"]
        tracker = t["TrackCollection.trackerHits_end"].array() - t["TrackCollection.trackerHits_begin"].array()
        calo = t["ClusterCollection.hits_end"].array() - t["ClusterCollection.hits_begin"].array()
    example = _read(converted[(EXAMPLE, "h5")])
    first = example["common/hits/n"][:, 0]
    assert np.array_equal(first, (ak.sum(tracker, axis=1) + ak.sum(calo, axis=1)).to_numpy()) and np.all(first == 2)
    assert np.array_equal(example["common/hits/layer"][:, 0, :2], [[0, 100]] * 3)
    assert np.array_equal(example["edm4hep/hits/kind"][:, 0, :2], [[0, 1]] * 3)


def test_the_older_podio_branch_form_reads_the_same(converted, testdata, tmp_path):
    copy = edm4hep_numbered_copy(testdata / P8, tmp_path / "p8_numbered.root")
    names = uproot.open(copy)["events"].keys()
    assert "ReconstructedParticles#1.index" in names and "Electron#0.index" in names and "EFlowTrack_1.omega" in names
    assert "ReconstructedParticles.type" in names and not any(n.startswith("_") for n in names)
    old, new = _read(_convert(copy, tmp_path / "out")), _read(converted[(P8, "h5")])
    assert old.metadata["podio_layout"]["relation_branches"] == "Collection#N"
    assert old.metadata["podio_layout"]["collections"]["selections"]["electrons"] == "Electron#0"
    assert old.metadata["missing_fields"] == ["edm4hep/tracks/pt_rel_error"]  # the copy has no covariances
    for k in new.keys():
        if k != "edm4hep/tracks/pt_rel_error":
            assert np.array_equal(old[k], new[k], equal_nan=True), k


def test_a_file_without_its_field_needs_one_and_a_wrong_one_is_refused(testdata, tmp_path):
    copy = edm4hep_numbered_copy(testdata / P8, tmp_path / "no_field.root", drop=("magFieldBz",))
    with pytest.raises(InputError, match="records no magnetic field.*pass --bfield"):
        _convert(copy, tmp_path / "a")
    with pytest.raises(InputError, match="the particles' momenta imply 2 T"):
        _convert(copy, tmp_path / "b", options=Edm4hepOptions(bfield_tesla=3.5))
    batch = _read(_convert(copy, tmp_path / "c", options=Edm4hepOptions(bfield_tesla=2.0)))
    assert batch.metadata["converter_options"] == {"bfield_tesla": 2.0}
    assert np.all(batch["edm4hep/event/bz"] == 2.0)


def test_an_unknown_layout_is_one_error_naming_the_collections_looked_for(testdata, tmp_path):
    # the ROOT tutorial's TTree is also called "events", but holds flat Px/Py/Pz branches
    with pytest.raises(
        InputError,
        match="not a supported EDM4hep file.*ReconstructedParticle collection "
        r"\(PandoraPFOs.*Track collection",
    ):
        _convert(testdata / "root_tutorial_hzz_2421ev.root", tmp_path)
    assert not any(tmp_path.iterdir())
