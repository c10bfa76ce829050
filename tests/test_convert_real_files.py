"""Files as analysts hold them: collision data, skims, every NanoAOD version, data-taking ATLAS
files, and files that are neither NanoAOD nor PHYSLITE. Copies are written with uproot from the
real test files (renamed or thinned as each case needs), never made up."""

from __future__ import annotations

import functools
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from root_copies import nanoaod_copy, physlite_copy

from treasure_hf.cli import main
from treasure_hf.data import schema
from treasure_hf.data.io import read_events
from treasure_hf.data.sources.atlas import AtlasConverter
from treasure_hf.data.sources.cms import CmsConverter
from treasure_hf.data.sources.convert import ConvertTask, convert_file
from treasure_hf.data.sources.reader import RootSource
from treasure_hf.data.validate import validate
from treasure_hf.errors import InputError

NO_CUTS = {g: 0.0 for g in schema.OBJECT_TYPES}
WIDE = {"electrons": 20, "muons": 20, "taus": 20, "photons": 20, "jets": 80, "tracks": 400}
SIMULATION = {"nano_dimuon.root": 0}
"""is_simulation of each NanoAOD/PHYSLITE test file (1 where not listed)."""


def _experiment(name: str) -> str | None:
    if name.startswith("atlas_physlite"):
        return "atlas"
    if name.startswith(("cms_nanoaod", "cms_pfnano", "nano_")):
        return "cms"
    return None


def _convert(src, out, fmt="h5", experiment="cms", **kw):
    task = ConvertTask(experiment, str(src), str(out), fmt, **kw)
    convert_file(task)
    return read_events(out)


# --- every file of the test set ---------------------------------------------------------------


def test_every_file_in_the_test_set_converts_or_is_refused_clearly(testdata, tmp_path, capsys):
    """Each NanoAOD/PHYSLITE file becomes valid HDF5 and PCDF with the right is_simulation; every
    other file gets one line naming what it lacks and that it is not a supported format."""
    seen = 0
    for path in sorted(testdata.glob("*.root")):
        experiment = _experiment(path.name)
        if experiment is None:
            for exp, fmt_name in (("cms", "CMS NanoAOD"), ("atlas", "ATLAS PHYSLITE")):
                status = main(["-q", "convert", exp, str(path), "--out", str(tmp_path / "refused")])
                err = capsys.readouterr().err.strip()
                assert status == 2 and len(err.splitlines()) == 1, (path.name, err)
                assert err.startswith("error: ") and path.name in err and "Traceback" not in err
                assert f"not a supported {fmt_name} file" in err
            continue
        expected = SIMULATION.get(path.name, 1)
        for fmt in ("h5", "pcdf"):
            out = tmp_path / (f"{path.stem}.h5" if fmt == "h5" else path.stem)
            batch = _convert(path, out, fmt, experiment)
            assert validate(out) == [], (path.name, fmt)
            assert batch.metadata["is_simulation"] == expected, path.name
            assert np.all(batch["common/event/is_simulation"] == expected), path.name
        seen += 1
    assert seen == 9  # the PHYSLITE and NanoAOD files of ../shared/testdata (README)


# --- CMS collision data ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["h5", "pcdf"])
def test_cms_collision_data_converts_without_simulation_truth(testdata, tmp_path, fmt):
    path = testdata / "nano_dimuon.root"
    out = tmp_path / ("d.h5" if fmt == "h5" else "d")
    batch = _convert(path, out, fmt, max_objects=WIDE)
    assert validate(out) == []
    meta = batch.metadata
    assert meta["is_simulation"] == 0 and "collision data" in meta["simulation_evidence"]
    assert "genWeight" in meta["simulation_evidence"] and "Pileup_" in meta["simulation_evidence"]
    # pile-up truth exists only in simulation: missing, and said so
    assert "common/event/mu" in meta["missing_fields"] and np.all(np.isnan(batch["common/event/mu"]))
    # the measured stand-in keeps its own name
    tree = uproot.open(path)["Events"]
    np.testing.assert_array_equal(batch["cms/event/npvsGood"], tree["PV_npvsGood"].array(library="np"))
    assert np.all(tree["run"].array(library="np") == 315267)  # 2018 collision run
    np.testing.assert_array_equal(batch["cms/event/run_number"], tree["run"].array(library="np"))
    # the dimuon data set: most events hold two muons of opposite charge
    q = batch["common/muons/charge"][:, :2].astype(int)
    two = batch.counts("muons") >= 2
    assert two.mean() > 0.5 and np.mean(q[two].sum(axis=1) == 0) > 0.5


def test_validator_accepts_missing_pileup_truth_in_data_only(testdata, tmp_path):
    """NaN mu is fine in collision-data events that list it as missing; in simulation it is not."""
    import h5py

    out = tmp_path / "d.h5"
    _convert(testdata / "nano_dimuon.root", out)
    with h5py.File(out, "r+") as f:
        f["common/event/is_simulation"][:5] = 1
    problems = [str(p) for p in validate(out)]
    assert any("common/event/mu: is missing in simulated events" in p for p in problems)
    assert any("disagrees with metadata is_simulation" in p for p in problems)
    sim = tmp_path / "s.h5"
    _convert(testdata / "cms_nanoaod_dy_40ev.root", sim)
    with h5py.File(sim, "r+") as f:
        f["common/event/mu"][3] = np.nan
    assert [str(p) for p in validate(sim)] == [
        "common/event/mu: is missing in simulated events (only collision data may lack it)"
    ]


# --- skims --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["h5", "pcdf"])
def test_a_skim_without_photons_and_taus_gives_empty_groups_named_in_the_metadata(testdata, tmp_path, fmt):
    full_src = testdata / "cms_nanoaod_v15_tt_200ev.root"
    skim = nanoaod_copy(full_src, tmp_path / "skim.root", drop=("Photon_", "Tau_"))
    out = tmp_path / ("skim.h5" if fmt == "h5" else "skim")
    batch = _convert(skim, out, fmt, pt_cuts=NO_CUTS, max_objects=WIDE)
    assert validate(out) == []
    assert batch.metadata["missing_collections"] == ["taus", "photons"]
    assert not batch.mask("photons").any() and not batch.mask("taus").any()
    assert batch.metadata["common_iso_source"]["photons"].startswith("none")
    # everything else is what the unskimmed file gives
    full = _convert(full_src, tmp_path / f"full.{fmt}", "h5", pt_cuts=NO_CUTS, max_objects=WIDE)
    assert full.metadata["missing_collections"] == []
    for k in ("common/muons/pt", "common/electrons/trk_iso03", "common/jets/pt", "common/met/pt", "cms/event/npvsGood"):
        np.testing.assert_array_equal(batch[k], full[k], err_msg=k)


def test_require_turns_a_missing_collection_into_an_error(testdata, tmp_path, capsys):
    skim = nanoaod_copy(testdata / "cms_nanoaod_dy_40ev.root", tmp_path / "skim.root", drop=("Photon_",))
    status = main(["-q", "convert", "cms", str(skim), "--out", str(tmp_path / "out"), "--require", "muons,photons"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "skim.root" in err and "photons (Photon_*)" in err and "--require" in err
    assert not (tmp_path / "out" / "skim.h5").exists()
    assert main(["-q", "convert", "cms", str(skim), "--out", str(tmp_path / "out"), "--require", "muons"]) == 0
    with pytest.raises(SystemExit) as usage:  # not an object type: argparse refuses it before any work
        main(["-q", "convert", "cms", str(skim), "--out", str(tmp_path / "out"), "--require", "muon"])
    assert usage.value.code == 2
    # an output written without --require is not taken as complete for a run that requires the lacking type
    out = tmp_path / "out" / "skim.h5"
    assert read_events(out).metadata["missing_collections"] == ["photons"]
    assert main(["-q", "convert", "cms", str(skim), "--out", str(tmp_path / "out"), "--require", "photons"]) == 2


def test_a_missing_field_of_a_present_collection_stays_an_error_naming_the_branch(testdata, tmp_path):
    broken = nanoaod_copy(testdata / "cms_nanoaod_dy_40ev.root", tmp_path / "broken.root", drop=("Photon_eta",))
    with RootSource(broken, CmsConverter.TREE_NAMES) as source:
        with pytest.raises(InputError, match=r"broken\.root: Photon_eta: branch is missing"):
            CmsConverter(source)


# --- NanoAOD versions ---------------------------------------------------------------------------

RUN2 = "cms_nanoaod_dy_40ev.root"
"""A Run 2 NanoAOD (v9-era names: Fall17V2 electron MVA, DeepTau 2017v2p1, MET, CHS jet ids)."""
_MVA = {f"Electron_mvaFall17V2Iso_{wp}": wp for wp in ("WP80", "WP90")}
_TAU = {f"Tau_idDeepTau2017v2p1{vs}": vs for vs in ("VSjet", "VSe", "VSmu")}
_MET = {f"MET_{b}": f"PFMET_{b}" for b in ("pt", "phi", "sumEt")}
_PHO = {
    "Photon_pfRelIso03_chg": "Photon_pfRelIso03_chg_quadratic",
    "Photon_pfRelIso03_all": "Photon_pfRelIso03_all_quadratic",
}
VERSIONS = {
    # version: (rename old -> new, extra copies new -> old, dropped prefixes), read off the CMS
    # NanoAOD documentation (see the NanoAOD versions table in docs/sources.md)
    "v10": (
        {k: f"Electron_mvaIso_{wp}" for k, wp in _MVA.items()},
        {f"Tau_idDeepTau2018v2p5{vs}": k for k, vs in _TAU.items()},
        (),
    ),
    "v11": (
        {**{k: f"Electron_mvaIso_Fall17V2_{wp}" for k, wp in _MVA.items()}, **_PHO},
        {
            **{f"Electron_mvaIso_{wp}": k for k, wp in _MVA.items()},
            **{f"Tau_idDeepTau2018v2p5{vs}": k for k, vs in _TAU.items()},
        },
        ("Jet_puId", "Jet_qgl"),
    ),
    "v12": (
        {
            **{k: f"Electron_mvaIso_{wp}" for k, wp in _MVA.items()},
            **{k: f"Tau_idDeepTau2018v2p5{vs}" for k, vs in _TAU.items()},
            **_PHO,
        },
        {},
        ("Jet_puId", "Jet_qgl"),
    ),
    "v14": (
        {
            **{k: f"Electron_mvaIso_{wp}" for k, wp in _MVA.items()},
            **{k: f"Tau_idDeepTau2018v2p5{vs}" for k, vs in _TAU.items()},
            **_PHO,
            **_MET,
        },
        {},
        ("Jet_puId", "Jet_qgl"),
    ),
}
VERSIONS["v13"] = VERSIONS["v12"]
EXPECTED = {  # schema key -> the branch each version's file must be read from
    "cms/electrons/mvaIso_WP80": {
        "v10": "Electron_mvaIso_WP80",
        "v11": "Electron_mvaIso_WP80",
        "v12": "Electron_mvaIso_WP80",
        "v13": "Electron_mvaIso_WP80",
        "v14": "Electron_mvaIso_WP80",
    },
    "cms/taus/idDeepTauVSjet": {
        "v10": "Tau_idDeepTau2018v2p5VSjet",
        "v11": "Tau_idDeepTau2018v2p5VSjet",
        "v12": "Tau_idDeepTau2018v2p5VSjet",
        "v14": "Tau_idDeepTau2018v2p5VSjet",
    },
    "common/photons/trk_iso03": {
        "v10": "Photon_pfRelIso03_chg",
        "v11": "Photon_pfRelIso03_chg_quadratic",
        "v14": "Photon_pfRelIso03_chg_quadratic",
    },
    "common/met/pt": {"v10": "MET_pt", "v13": "MET_pt", "v14": "PFMET_pt"},
}


@functools.lru_cache(maxsize=4)
def _raw(path: str, branch: str) -> list:
    return uproot.open(path)["Events"][branch].array().to_list()


def _sorted_by_pt(pt, values):
    return [
        list(np.asarray(v, np.float64)[np.argsort(-np.asarray(p, np.float64), kind="stable")])
        for p, v in zip(pt, values)
    ]


@pytest.mark.parametrize("version", ["v10", "v11", "v12", "v13", "v14"])
def test_nanoaod_versions_without_a_file_read_through_one_alias_table(testdata, tmp_path, version):
    rename, copies, drop = VERSIONS[version]
    src = testdata / RUN2
    copy = nanoaod_copy(src, tmp_path / f"{version}.root", rename, drop, copies)
    batch = _convert(copy, tmp_path / f"{version}.h5", pt_cuts=NO_CUTS, max_objects=WIDE)
    assert validate(tmp_path / f"{version}.h5") == []
    used = batch.metadata["source_branches"]
    for k, per_version in EXPECTED.items():
        if version in per_version:
            assert (
                used.get(k, batch.metadata["common_iso_source"].get(schema.split_key(k)[1])) == per_version[version]
            ), k
    # the values are those of the original branches, whatever their name
    original = {
        "cms/electrons/mvaIso_WP80": "Electron_mvaFall17V2Iso_WP80",
        "cms/taus/idDeepTauVSjet": "Tau_idDeepTau2017v2p1VSjet",
        "common/photons/trk_iso03": "Photon_pfRelIso03_chg",
    }
    for k, branch in original.items():
        group = schema.split_key(k)[1]
        collection = branch.split("_")[0]
        expected = _sorted_by_pt(_raw(str(src), f"{collection}_pt"), _raw(str(src), branch))
        got, mask = batch[k], batch.mask(group)
        for i, exp in enumerate(expected):
            np.testing.assert_allclose(got[i][mask[i]], exp[: mask.shape[1]], rtol=1e-6, err_msg=f"{k} {i}")
    np.testing.assert_allclose(batch["common/met/pt"], _raw(str(src), "MET_pt"), rtol=1e-6)
    if drop:  # AK4 PUPPI jets of v11+ carry no pile-up ID: missing, and said so
        assert {"cms/jets/puId", "cms/jets/qgl"} <= set(batch.metadata["missing_fields"])


def test_the_sources_page_holds_the_version_table_of_the_code():
    from treasure_hf.data.sources.cms import NANOAOD_VERSIONS, RENAMED, version_table

    readme = (Path(__file__).resolve().parents[1] / "docs" / "sources.md").read_text()
    assert version_table() in readme
    assert all(v in readme for v in NANOAOD_VERSIONS)
    assert all(r.source for r in RENAMED)


# --- files that are not NanoAOD ------------------------------------------------------------------


def test_a_scouting_nanoaod_is_refused_naming_the_collections_it_lacks(tmp_path, capsys):
    """Run 3 scouting NanoAOD: an Events tree whose collections are Scouting* (no Electron_*, Muon_*,
    Jet_*, ...)."""
    path = tmp_path / "scouting.root"
    pt = ak.Array([[30.0, 12.5], [8.0]])
    data = {
        "run": np.array([362695, 362695], np.uint32),
        "event": np.array([1, 2], np.uint64),
        "ScoutingMuonVtx": ak.zip({"pt": pt, "eta": pt * 0.01, "phi": pt * 0.02}),
        "ScoutingPFJet": ak.zip({"pt": pt * 2, "eta": pt * 0.0, "phi": pt * 0.0}),
        "ScoutingMET_pt": np.array([20.0, 5.0], np.float32),
    }
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()})
        f["Events"].extend(data)
    status = main(["-q", "convert", "cms", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "scouting.root" in err and "not a supported CMS NanoAOD file" in err
    assert "electrons (Electron_*)" in err and "jets (Jet_*)" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- --out ---------------------------------------------------------------------------------------


def test_out_ending_in_h5_with_one_input_writes_that_file(testdata, tmp_path, capsys):
    src = str(testdata / "cms_pfnano_10ev.root")
    assert main(["-q", "convert", "cms", src, "--out", str(tmp_path / "a.h5")]) == 0
    assert (tmp_path / "a.h5").is_file() and validate(tmp_path / "a.h5") == []
    status = main(
        ["-q", "convert", "cms", src, str(testdata / "cms_nanoaod_dy_40ev.root"), "--out", str(tmp_path / "b.h5")]
    )
    err = capsys.readouterr().err
    assert status == 2 and "--out is a directory" in err and not (tmp_path / "b.h5").exists()
    assert main(["-q", "convert", "cms", src, "--out", str(tmp_path / "c.h5"), "--format", "pcdf"]) == 2


# --- ATLAS data-taking files --------------------------------------------------------------------

PHYSLITE = "atlas_physlite_mc_100ev.rntuple.root"
SIMULATION_ONLY = ("EventInfoAuxDyn.mcChannelNumber", "EventInfoAuxDyn.mcEventNumber", "EventInfoAuxDyn.mcEventWeights")


@pytest.mark.parametrize("how", ["bitmask says data", "no EventInfo simulation branches"])
def test_an_atlas_data_file_converts_with_is_simulation_zero(testdata, tmp_path, how):
    drop = SIMULATION_ONLY + (("EventInfoAuxDyn.eventTypeBitmask",) if how.startswith("no") else ())
    data = physlite_copy(testdata / PHYSLITE, tmp_path / "data.root", drop, data_bitmask=how.startswith("bitmask"))
    with uproot.open(data) as f:
        assert "EventInfoAuxDyn:mcChannelNumber" not in f["EventData"].keys()
    for fmt in ("h5", "pcdf"):
        out = tmp_path / ("data.h5" if fmt == "h5" else "data")
        batch = _convert(data, out, fmt, "atlas", pt_cuts=NO_CUTS, max_objects=WIDE)
        assert validate(out) == []
        assert batch.metadata["is_simulation"] == 0 and np.all(batch["common/event/is_simulation"] == 0)
        assert "atlas/event/mcChannelNumber" in batch.metadata["missing_fields"]
        assert np.all(batch["atlas/event/mcChannelNumber"] == -1)
    # the reconstructed objects are those of the original, event by event
    sim = _convert(testdata / PHYSLITE, tmp_path / "sim.h5", "h5", "atlas", pt_cuts=NO_CUTS, max_objects=WIDE)
    assert sim.metadata["is_simulation"] == 1 and np.all(sim["atlas/event/mcChannelNumber"] > 0)
    for k in ("common/electrons/pt", "common/muons/trk_iso03", "common/jets/pt", "common/met/pt", "common/event/mu"):
        np.testing.assert_array_equal(batch[k], sim[k], err_msg=k)


def test_an_atlas_skim_without_taus_gives_an_empty_group(testdata, tmp_path):
    skim = physlite_copy(testdata / PHYSLITE, tmp_path / "skim.root", ("AnalysisTauJetsAuxDyn.",))
    batch = _convert(skim, tmp_path / "skim.h5", "h5", "atlas")
    assert validate(tmp_path / "skim.h5") == []
    assert batch.metadata["missing_collections"] == ["taus"] and not batch.mask("taus").any()
    with RootSource(skim, AtlasConverter.TREE_NAMES) as source:
        with pytest.raises(InputError, match="taus .*AnalysisTauJetsAuxDyn.*--require"):
            AtlasConverter(source, require=("taus",))


def test_tracks_without_vz_are_placed_by_the_beam_spot_and_the_metadata_says_so(testdata, tmp_path):
    no_vz = physlite_copy(testdata / PHYSLITE, tmp_path / "novz.root", ("InDetTrackParticlesAuxDyn.vz",))
    batch = _convert(no_vz, tmp_path / "novz.h5", "h5", "atlas")
    assert "beamPosZ" in batch.metadata["iso_z_reference"]
    with_vz = _convert(testdata / PHYSLITE, tmp_path / "vz.h5", "h5", "atlas")
    assert "InDetTrackParticlesAuxDyn.vz" in with_vz.metadata["iso_z_reference"]
    # in this simulation the beam spot sits at z = 0 and every track's vz is 0: the same isolation
    np.testing.assert_array_equal(batch["common/electrons/trk_iso03"], with_vz["common/electrons/trk_iso03"])
    neither = physlite_copy(
        testdata / PHYSLITE, tmp_path / "neither.root", ("InDetTrackParticlesAuxDyn.vz", "EventInfoAuxDyn.beamPosZ")
    )
    with RootSource(neither, AtlasConverter.TREE_NAMES) as source:
        with pytest.raises(InputError, match=r"InDetTrackParticlesAuxDyn\.vz or EventInfoAuxDyn\.beamPosZ"):
            AtlasConverter(source)
