"""ATLAS PHYSLITE -> common format, checked against raw uproot reads of the real test files."""

from __future__ import annotations

import functools
import math

import awkward as ak
import numpy as np
import pytest
import uproot

from treasure_hf.data import schema
from treasure_hf.data.io import read_events
from treasure_hf.data.sources.atlas import AtlasConverter
from treasure_hf.data.sources.convert import ConvertTask, convert_file
from treasure_hf.data.sources.reader import RootSource
from treasure_hf.data.validate import validate
from treasure_hf.errors import InputError

FILES = {"ttree": "atlas_physlite_mc_100ev.ttree.root", "rntuple": "atlas_physlite_mc_100ev.rntuple.root"}
NO_CUTS = {g: 0.0 for g in schema.OBJECT_TYPES}
WIDE = {"electrons": 20, "muons": 20, "taus": 20, "photons": 20, "jets": 80, "tracks": 400}


@functools.lru_cache(maxsize=4)
def _tree(path):
    f = uproot.open(path)
    return f["EventData"] if "EventData" in f else f["CollectionTree"]


@functools.lru_cache(maxsize=256)
def raw(path, name: str):
    """A branch read with plain uproot, spelled the file's way (``X.y`` in a TTree, ``X:y`` in an RNTuple)."""
    tree = _tree(path)
    if "RNTuple" in type(tree).__name__:
        return tree[name.replace(".", ":", 1)].array()
    container, field, *member = name.split(".")
    if member:
        arr = tree[f"{container}.{field}"]
        sub = f"{container}.{field}.{member[0]}"
        return arr[sub].array() if sub in arr.keys() else arr.array()[member[0]]
    return tree[name].array()


@pytest.fixture(scope="module")
def converted(testdata, tmp_path_factory):
    """Each PHYSLITE file converted with no pT cut and wide padding (HDF5), read back padded."""
    out = tmp_path_factory.mktemp("atlas")
    result = {}
    for kind, name in FILES.items():
        task = ConvertTask("atlas", str(testdata / name), str(out / f"{kind}.h5"), "h5", NO_CUTS, WIDE, step_size=37)
        convert_file(task)
        result[kind] = (testdata / name, read_events(task.output))
    return result


@pytest.mark.parametrize("kind", FILES)
@pytest.mark.parametrize("fmt", ["h5", "pcdf"])
def test_converts_and_validates_with_defaults(testdata, tmp_path, kind, fmt):
    out = tmp_path / ("out.h5" if fmt == "h5" else "out")
    summary = convert_file(ConvertTask("atlas", str(testdata / FILES[kind]), str(out), fmt))
    assert summary["n_events"] == 100
    assert validate(out) == []
    batch = read_events(out)
    assert batch.metadata["pt_cuts"] == schema.default_pt_cuts()
    assert batch.metadata["experiment"] == "ATLAS"
    assert np.all(batch["common/event/experiment_id"] == 0)
    real = batch["common/muons/pt"][batch.mask("muons")]
    assert real.size and real.min() >= schema.default_pt_cuts()["muons"]


def test_ttree_and_rntuple_share_one_code_path(testdata):
    sources = {k: RootSource(testdata / n, AtlasConverter.TREE_NAMES) for k, n in FILES.items()}
    assert not sources["ttree"].is_rntuple and sources["rntuple"].is_rntuple
    convs = {k: AtlasConverter(s) for k, s in sources.items()}
    # the same logical branch names resolve in both layouts, to the file's own spelling
    assert sources["ttree"].resolve("AnalysisMuonsAuxDyn.pt")[0] == "AnalysisMuonsAuxDyn.pt"
    assert sources["rntuple"].resolve("AnalysisMuonsAuxDyn.pt")[0] == "AnalysisMuonsAuxDyn:pt"
    link = "AnalysisJetsAuxDyn.btaggingLink.m_persIndex"
    assert sources["ttree"].resolve(link)[0].endswith("/" + link)
    assert sources["rntuple"].resolve(link)[0] == "AnalysisJetsAuxDyn:btaggingLink.m_persIndex"
    # the alias table picks the release's own decoration
    assert convs["ttree"].resolved["atlas/jets/GN2_pb"].endswith("GN2v00_pb")
    assert convs["rntuple"].resolved["atlas/jets/GN2_pb"].endswith("GN2v01_pb")
    for s in sources.values():
        s.close()


def test_rntuple_muons_match_uproot(converted):
    path, batch = converted["rntuple"]
    assert int(batch["common/muons/n"].sum()) == 88
    real = batch["common/muons/pt"][batch.mask("muons")]
    assert real.size == 88
    assert real.mean() == pytest.approx(28.218, abs=5e-4)
    assert float(np.mean(np.concatenate(raw(path, "AnalysisMuonsAuxDyn.pt").to_list() + [[]]))) / 1e3 == pytest.approx(
        real.mean(), rel=1e-5
    )


def _sorted_by_pt(pt_mev, values):
    """Per event, values sorted as the writer sorts: descending pT."""
    out = []
    for p, v in zip(pt_mev, values):
        order = np.argsort(-np.asarray(p, np.float64), kind="stable")
        out.append(np.asarray(v)[order])
    return out


def _compare(batch, group, field, expected, rtol=1e-6):
    arr, mask = batch[schema.key("common", group, field)], batch.mask(group)
    for i, exp in enumerate(expected):
        n = min(len(exp), mask.shape[1])
        got = arr[i][mask[i]]
        assert len(got) == n, (group, field, i)
        np.testing.assert_allclose(
            got, np.asarray(exp[:n], np.float64), rtol=rtol, atol=1e-6, err_msg=f"{group}/{field} event {i}"
        )


CONTAINERS = {
    "electrons": "AnalysisElectronsAuxDyn",
    "muons": "AnalysisMuonsAuxDyn",
    "taus": "AnalysisTauJetsAuxDyn",
    "photons": "AnalysisPhotonsAuxDyn",
    "jets": "AnalysisJetsAuxDyn",
}


@pytest.mark.parametrize("kind", FILES)
def test_common_fields_match_raw_branches(converted, kind):
    path, batch = converted[kind]
    for group, c in CONTAINERS.items():
        pt = raw(path, f"{c}.pt").to_list()
        _compare(batch, group, "pt", _sorted_by_pt(pt, [np.asarray(p) / 1e3 for p in pt]))
        for f in ("eta", "phi"):
            _compare(batch, group, f, _sorted_by_pt(pt, raw(path, f"{c}.{f}").to_list()))
        if group in ("electrons", "muons", "taus"):
            _compare(batch, group, "charge", _sorted_by_pt(pt, raw(path, f"{c}.charge").to_list()))
    jets_pt = raw(path, "AnalysisJetsAuxDyn.pt").to_list()
    _compare(
        batch,
        "jets",
        "mass",
        _sorted_by_pt(jets_pt, [np.asarray(m) / 1e3 for m in raw(path, "AnalysisJetsAuxDyn.m").to_list()]),
    )
    # taus: one-prong from the decay mode; jets: tracks with pT > 500 MeV at the primary vertex
    taus_pt = raw(path, "AnalysisTauJetsAuxDyn.pt").to_list()
    modes = raw(path, "AnalysisTauJetsAuxDyn.NNDecayMode").to_list()
    _compare(batch, "taus", "is_1prong", _sorted_by_pt(taus_pt, [[int(m in (0, 1, 2)) for m in ev] for ev in modes]))
    vtype = raw(path, "PrimaryVerticesAuxDyn.vertexType").to_list()
    pv = [t.index(1) if 1 in t else -1 for t in vtype]
    ntrk = raw(path, "AnalysisJetsAuxDyn.NumTrkPt500").to_list()
    _compare(
        batch,
        "jets",
        "n_trk",
        _sorted_by_pt(jets_pt, [[v[pv[i]] if 0 <= pv[i] < len(v) else -1 for v in ev] for i, ev in enumerate(ntrk)]),
    )
    # tracks: pT and eta from q/p and theta
    qop, theta = (
        raw(path, "InDetTrackParticlesAuxDyn.qOverP").to_list(),
        raw(path, "InDetTrackParticlesAuxDyn.theta").to_list(),
    )
    tpt = [[math.sin(t) / abs(q) / 1e3 for q, t in zip(qs, ts)] for qs, ts in zip(qop, theta)]
    tpt_mev = [[p * 1e3 for p in ev] for ev in tpt]
    _compare(batch, "tracks", "pt", _sorted_by_pt(tpt_mev, tpt), rtol=1e-5)
    _compare(
        batch,
        "tracks",
        "eta",
        _sorted_by_pt(tpt_mev, [[-math.log(math.tan(t / 2)) for t in ts] for ts in theta]),
        rtol=1e-5,
    )
    for f in ("phi", "d0", "z0"):
        _compare(batch, "tracks", f, _sorted_by_pt(tpt_mev, raw(path, f"InDetTrackParticlesAuxDyn.{f}").to_list()))
    # event: primary vertex = vertexType 1; pile-up
    for f, b in (("pvx", "x"), ("pvy", "y"), ("pvz", "z")):
        values = raw(path, f"PrimaryVerticesAuxDyn.{b}").to_list()
        np.testing.assert_allclose(batch[f"common/event/{f}"], [v[i] if i >= 0 else np.nan for v, i in zip(values, pv)])
    np.testing.assert_allclose(batch["common/event/mu"], raw(path, "EventInfoAuxDyn.averageInteractionsPerCrossing"))
    assert np.all(batch["common/event/is_simulation"] == 1) and batch.metadata["is_simulation"] == 1
    assert np.all(raw(path, "EventInfoAuxDyn.eventTypeBitmask") & 1)  # IS_SIMULATION, as the metadata says
    assert "eventTypeBitmask" in batch.metadata["simulation_evidence"]


@pytest.mark.parametrize("kind", FILES)
def test_met_rebuilt_from_objects_and_track_soft_term(converted, kind):
    path, batch = converted[kind]
    names, mpx, mpy = (raw(path, f"MET_Core_AnalysisMETAuxDyn.{b}").to_list() for b in ("name", "mpx", "mpy"))
    objs = {
        g: [raw(path, f"{CONTAINERS[g]}.{f}").to_list() for f in ("pt", "eta", "phi")]
        for g in ("electrons", "muons", "photons", "jets")
    }
    for i in range(0, 100, 7):
        px = py = 0.0
        eg = []
        for g in ("electrons", "muons", "photons"):
            for p, e, f in zip(*(o[i] for o in objs[g])):
                px, py = px + p * math.cos(f), py + p * math.sin(f)
                if g != "muons":
                    eg.append((e, f))
        for p, e, f in zip(*(o[i] for o in objs["jets"])):
            if all((e - e2) ** 2 + ((f - f2 + math.pi) % (2 * math.pi) - math.pi) ** 2 >= 0.04 for e2, f2 in eg):
                px, py = px + p * math.cos(f), py + p * math.sin(f)
        k = names[i].index("PVSoftTrkCore")
        mx, my = (-px + mpx[i][k]) / 1e3, (-py + mpy[i][k]) / 1e3
        assert batch["common/met/pt"][i] == pytest.approx(math.hypot(mx, my), rel=1e-4, abs=1e-3)
    assert "PVSoftTrkCore" in batch.metadata["met_definition"]
    assert any("thinned" in n for n in batch.metadata["notes"])


def _own_tracks(path, group: str) -> list[list[set[int]]]:
    """Per event and object, the InDet tracks linked to it, followed link by link in plain Python:
    a muon's inDetTrackParticleLink; every GSF track of an electron's trackParticleLinks, through
    its originalTrackParticle; every GSF track of a photon's conversion vertices (vertexLinks)."""
    c = CONTAINERS[group]
    orig = raw(path, "GSFTrackParticlesAuxDyn.originalTrackParticle.m_persIndex").to_list()
    orig_key = raw(path, "GSFTrackParticlesAuxDyn.originalTrackParticle.m_persKey").to_list()

    def indet(ev, gsf):
        return {orig[ev][g] for g in gsf if 0 <= g < len(orig[ev]) and orig_key[ev][g]}

    if group == "muons":
        return [
            [{i} if k else set() for i, k in zip(ix, ky)]
            for ix, ky in zip(
                raw(path, f"{c}.inDetTrackParticleLink.m_persIndex").to_list(),
                raw(path, f"{c}.inDetTrackParticleLink.m_persKey").to_list(),
            )
        ]
    if group == "electrons":
        links = raw(path, f"{c}.trackParticleLinks.m_persIndex").to_list()
        keys = raw(path, f"{c}.trackParticleLinks.m_persKey").to_list()
        return [
            [indet(ev, [i for i, k in zip(li, ki) if k]) for li, ki in zip(ls, ks)]
            for ev, (ls, ks) in enumerate(zip(links, keys))
        ]
    vertices = raw(path, f"{c}.vertexLinks.m_persIndex").to_list()
    vkeys = raw(path, f"{c}.vertexLinks.m_persKey").to_list()
    conv = raw(path, "GSFConversionVerticesAuxDyn.trackParticleLinks.m_persIndex").to_list()
    ckeys = raw(path, "GSFConversionVerticesAuxDyn.trackParticleLinks.m_persKey").to_list()
    out = []
    for ev, (vs, ks) in enumerate(zip(vertices, vkeys)):
        row = []
        for vl, kl in zip(vs, ks):
            gsf = [
                g
                for v, k in zip(vl, kl)
                if k and 0 <= v < len(conv[ev])
                for g, gk in zip(conv[ev][v], ckeys[ev][v])
                if gk
            ]
            row.append(indet(ev, gsf))
        out.append(row)
    return out


def _slow_iso(path, group: str, own: list[list[set[int]]] | None = None) -> list[list[float]]:
    """trk_iso03 by the seed's definition, one track at a time, from raw branches (``own``: the
    tracks each object excludes, by default every track linked to it)."""
    c = CONTAINERS[group]
    pt, eta, phi = (raw(path, f"{c}.{f}").to_list() for f in ("pt", "eta", "phi"))
    trk = {f: raw(path, f"InDetTrackParticlesAuxDyn.{f}").to_list() for f in ("qOverP", "theta", "phi", "z0", "vz")}
    vtype, pvz = raw(path, "PrimaryVerticesAuxDyn.vertexType").to_list(), raw(path, "PrimaryVerticesAuxDyn.z").to_list()
    own = _own_tracks(path, group) if own is None else own
    iso = definition = schema.ISOLATION
    out = []
    for ev in range(len(pt)):
        z_pv = pvz[ev][vtype[ev].index(1)] if 1 in vtype[ev] else math.nan
        row = []
        for j in range(len(pt[ev])):
            total = 0.0
            for t in range(len(trk["qOverP"][ev])):
                th = trk["theta"][ev][t]
                tpt = math.sin(th) / abs(trk["qOverP"][ev][t]) / 1e3
                teta = -math.log(math.tan(th / 2))
                dphi = (phi[ev][j] - trk["phi"][ev][t] + math.pi) % (2 * math.pi) - math.pi
                z0st = (trk["z0"][ev][t] + trk["vz"][ev][t] - z_pv) * math.sin(th)
                if (
                    t not in own[ev][j]
                    and tpt > definition.pt_floor_gev
                    and abs(z0st) < definition.z0sintheta_cut_mm
                    and (eta[ev][j] - teta) ** 2 + dphi**2 < iso.cone**2
                ):
                    total += tpt
            row.append(total / (pt[ev][j] / 1e3))
        out.append(row)
    return out


@pytest.mark.parametrize("kind", FILES)
@pytest.mark.parametrize("group", ["muons", "electrons", "photons"])
def test_trk_iso03_matches_a_slow_loop(converted, kind, group):
    path, batch = converted[kind]
    expected = _slow_iso(path, group)
    pt = raw(path, f"{CONTAINERS[group]}.pt").to_list()
    _compare(batch, group, "trk_iso03", _sorted_by_pt(pt, expected), rtol=1e-4)
    real = batch[f"common/{group}/trk_iso03"][batch.mask(group)]
    if kind == "rntuple":
        assert np.any(real > 0)  # not trivially zero


def test_every_track_linked_to_an_electron_is_excluded(converted):
    """An electron excludes the tracks of all its GSF links: in event 7 of the TTree file, excluding
    only the first one would leave an electron with 27.8 GeV of a track linked to it through its
    second GSF track (the neighbouring electron's track)."""
    path, batch = converted["ttree"]
    own = _own_tracks(path, "electrons")
    links = raw(path, "AnalysisElectronsAuxDyn.trackParticleLinks.m_persIndex").to_list()
    first_only = [[_own_first(path, ev, li) for li in ls] for ev, ls in enumerate(links)]
    full, partial = _slow_iso(path, "electrons"), _slow_iso(path, "electrons", first_only)
    pt = raw(path, "AnalysisElectronsAuxDyn.pt").to_list()
    gained = [(p / 1e3) * (b - a) for p, a, b in zip(pt[7], full[7], partial[7])]
    assert max(gained) == pytest.approx(27.8, abs=0.1)  # GeV of the electron's own second track
    assert any(o != f for o, f in zip(own[7], first_only[7]))  # a track linked through its second GSF link
    assert "every GSF track" in batch.metadata["common_iso_source"]["electrons"]
    assert "vz" in batch.metadata["iso_z_reference"]


def _own_first(path, ev: int, gsf_links: list[int]) -> set[int]:
    """The InDet track of an electron's first GSF link only (the old, partial exclusion)."""
    orig = raw(path, "GSFTrackParticlesAuxDyn.originalTrackParticle.m_persIndex").to_list()[ev]
    key = raw(path, "GSFTrackParticlesAuxDyn.originalTrackParticle.m_persKey").to_list()[ev]
    g = gsf_links[0] if gsf_links else -1
    return {orig[g]} if 0 <= g < len(orig) and key[g] else set()


@pytest.mark.parametrize("kind", FILES)
def test_atlas_layer_aliases_links_and_quality(converted, kind):
    path, batch = converted[kind]
    jets_pt = raw(path, "AnalysisJetsAuxDyn.pt").to_list()
    link = raw(path, "AnalysisJetsAuxDyn.btaggingLink.m_persIndex").to_list()
    name = "GN2v00_pb" if kind == "ttree" else "GN2v01_pb"
    scores = raw(path, f"BTagging_AntiKt4EMPFlowAuxDyn.{name}").to_list()
    expected = [[s[k] if k < len(s) else np.nan for k in ks] for ks, s in zip(link, scores)]
    got, mask = batch["atlas/jets/GN2_pb"], batch.mask("jets")
    for i, exp in enumerate(_sorted_by_pt(jets_pt, expected)):
        np.testing.assert_allclose(got[i][mask[i]], exp, rtol=1e-6)
    mu_pt = raw(path, "AnalysisMuonsAuxDyn.pt").to_list()
    quality = _sorted_by_pt(mu_pt, [[q & 3 for q in ev] for ev in raw(path, "AnalysisMuonsAuxDyn.quality").to_list()])
    got, mask = batch["atlas/muons/quality"], batch.mask("muons")
    for i, exp in enumerate(quality):
        np.testing.assert_array_equal(got[i][mask[i]], exp)
    # the release-specific isolation decoration is found through the alias table (MeV -> GeV)
    iso = batch["atlas/muons/ptvarcone30"][batch.mask("muons")]
    assert iso.size and np.all(np.isfinite(iso))


def test_missing_atlas_field_is_nan_and_listed(converted):
    path, batch = converted["rntuple"]
    assert "atlas/taus/RNNJetScore" in batch.metadata["missing_fields"]
    real = batch["atlas/taus/RNNJetScore"][batch.mask("taus")]
    assert real.size and np.all(np.isnan(real))
    assert validate  # the file as a whole stays valid (checked in test_converts_and_validates_with_defaults)
    assert "atlas/taus/RNNJetScore" not in converted["ttree"][1].metadata["missing_fields"]


def test_missing_common_branch_is_an_error_naming_it(tmp_path):
    path = tmp_path / "lite.root"
    with uproot.recreate(path) as f:
        f.mkrntuple(
            "EventData",
            {
                "EventInfoAuxDyn:averageInteractionsPerCrossing": np.ones(3, np.float32),
                "AnalysisMuonsAuxDyn:pt": ak.Array([[3e4], [], [5e4]]),
            },
        )
    with RootSource(path, AtlasConverter.TREE_NAMES) as source:
        with pytest.raises(InputError, match=r"lite\.root.*InDetTrackParticlesAuxDyn\.qOverP.*missing"):
            AtlasConverter(source)
