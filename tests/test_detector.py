"""Physics checks of the parametric detectors against the published performance they are built
from: the width of a generated Z peak, the low-side tail of the electron response, the
efficiencies against the cited curves, FSR recovery, and isolation that does not see the other
leptons of the quadruplet."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from treasure_hf.benchmark.observables import peak_width
from treasure_hf.benchmark.selection import ATLAS_4L, CMS_4L, select_4l
from treasure_hf.data.generate import validation as v
from treasure_hf.data.generate.detector import ATLAS, CMS
from treasure_hf.data.generate.pythia import Record
from treasure_hf.data.generate.reco import EventInfo, final_state, reconstruct

MZ_GEV, Z_TO_EE_MUMU = 91.1876, ("23:onMode = off", "23:onIfAny = 11 13")


@pytest.fixture(scope="module")
def z_events() -> v.Simulated:
    """2,000 Z -> ee/mumu events (m(ll) > 60 GeV) with the ATLAS-like detector, truth kept."""
    return v.simulate("zjets", 2000, 7, "atlas", Z_TO_EE_MUMU)


@pytest.fixture(scope="module")
def higgs_events() -> v.Simulated:
    return v.simulate("hzz4l", 1500, 8, "atlas")


def _matched(sim: v.Simulated, group: str):
    t, r = v.truth_leptons(sim, group), v.reco_leptons(sim, group)
    return t, r, v.match(t, r, sim.hard.n_events)


def test_z_mumu_peak_is_the_breit_wigner_smeared_by_the_published_muon_resolution(z_events):
    published = v.PUBLISHED["atlas"]["muon_pt_resolution_z"]["value"]  # 2.3% central, 2.9% forward
    t, r, m = _matched(z_events, "muons")
    resp = v.response(t, r, m)
    central = (np.abs(resp["eta"]) < 1.05) & (resp["pt"] > 20)
    assert central.sum() > 300
    assert v.core_sigma(resp["pt_ratio"][central]) == pytest.approx(published["central"], rel=0.15)
    pairs = v.dilepton_pairs(t, r, m)
    assert len(pairs["m_reco"]) > 500
    reco = peak_width(pairs["m_reco"], window=(80.0, 100.0))
    assert reco["median"] == pytest.approx(MZ_GEV, abs=0.6)
    # the same true Z line shape smeared with the published resolution, pair by pair
    sigma_l = np.where(pairs["max_abs_eta"] < 1.05, published["central"], published["forward"])
    rng = np.random.default_rng(0)
    expected = peak_width(
        pairs["m_true"] * (1 + rng.normal(size=len(sigma_l)) * sigma_l / np.sqrt(2)), window=(80.0, 100.0)
    )
    assert 2.0 < reco["sigma_core"] < 3.5  # Gamma_Z = 2.5 GeV and ~1.5-2 GeV of resolution
    assert reco["sigma_core"] == pytest.approx(expected["sigma_core"], rel=0.15)


def test_electron_response_has_a_low_side_tail_that_grows_with_the_material(z_events):
    t, r, m = _matched(z_events, "electrons")
    resp = v.response(t, r, m)
    low, high = v.low_tail_fraction(resp["e_ratio"])
    assert low > 0.02 and low > 3 * high, (low, high)
    # the Bethe-Heitler loss alone, at 15 GeV: more material (|eta| = 1.8, 2.3 X0) -> a larger tail
    rng = np.random.default_rng(1)
    n = 20000
    tails = {}
    for eta in (0.2, 1.8):
        ratio = ATLAS.electron_energy_response(np.full(n, 15.0 * np.cosh(eta)), np.full(n, eta), rng)
        tails[eta] = v.low_tail_fraction(ratio)[0]
    assert ATLAS.brem.thickness(np.array([1.8]))[0] > 3 * ATLAS.brem.thickness(np.array([0.2]))[0]
    assert tails[1.8] > tails[0.2] > 0.0
    # the calibration keeps the peak at 1 wherever the material
    for det in (ATLAS, CMS):
        for eta in (0.2, 1.5):
            assert np.median(det.brem.response(np.full(n, 20.0), np.full(n, eta), rng)) == pytest.approx(1.0, abs=0.005)


def test_efficiencies_match_the_cited_curves_within_their_bins(higgs_events):
    det = higgs_events.det
    for group, table, edges in (
        ("electrons", det.electron_eff, (7.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0)),
        ("muons", det.muon_eff, (5.0, 10.0, 20.0, 40.0)),
    ):
        t, r, m = _matched(higgs_events, group)
        barrel = np.abs(t.eta) < 1.3
        sub = t.take(np.nonzero(barrel)[0])
        checked = 0
        for row in v.efficiency_vs_pt(sub, m[barrel], edges, 1.3):
            if row["n"] < 100:
                continue
            lo, hi = row["pt_gev"]
            centre = 0.5 * (lo + hi) if hi else lo * 1.2
            cited = float(table(np.array([centre]), np.array([0.5]))[0])
            # binomial error plus the migration across the bin edges of a few-percent resolution
            assert abs(row["measured"] - cited) < 3 * row["error"] + 0.02, (group, row, cited)
            checked += 1
        assert checked >= 3


def test_fsr_photons_are_recovered_into_muons_and_electrons():
    """Muons radiate: a photon inside the cone of the experiment's criteria joins the lepton."""
    from treasure_hf.data.generate.reco import recover_fsr

    leptons = {
        11: (np.array([0]), np.array([40.0]), np.array([0.5]), np.array([1.0])),
        13: (np.array([0, 1]), np.array([30.0, 30.0]), np.array([-1.0, 0.0]), np.array([0.0, 2.0])),
    }
    g_event, g_pt = np.array([0, 0, 1]), np.array([5.0, 4.0, 1.0])
    g_eta, g_phi = np.array([-1.05, 0.55, 0.02]), np.array([0.05, 1.0, 2.0])
    for det, taken in ((ATLAS, [True, False, False]), (CMS, [True, True, False])):
        out, got = recover_fsr(det.fsr, leptons, g_event, g_pt, g_eta, g_phi, np.zeros(3), 2)
        assert got.tolist() == taken, det.name  # ATLAS: muons only; nobody takes a 1 GeV photon
        assert out[13][0][0] == pytest.approx(np.hypot(30 + 5 * np.cos(0.05), 5 * np.sin(0.05)), rel=0.01)
        assert out[13][0][1] == 30.0
    assert out[11][0][0] > 43.0  # CMS adds the photon to the electron too


def _record(events: list[list[tuple[int, float, float, float]]]) -> Record:
    """A final-state-only record: per event a list of (pdg id, pT, eta, phi)."""
    rows = [p for ev in events for p in ev]
    counts = np.array([len(ev) for ev in events])
    ids = np.array([p[0] for p in rows])
    pt, eta, phi = (np.array([p[k] for p in rows], np.float64) for k in (1, 2, 3))
    mass = np.where(np.abs(ids) == 13, 0.10566, np.where(np.abs(ids) == 211, 0.1396, 0.0))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    charge = np.select([ids == 13, ids == -13, ids == 211, ids == -211], [-1.0, 1.0, 1.0, -1.0], 0.0)
    none = np.full(len(ids), -1, np.int64)
    zero = np.zeros(len(ids))
    return Record(
        len(events),
        np.concatenate([[0], np.cumsum(counts)]),
        ids,
        np.ones(len(ids), np.int32),
        none,
        none,
        none,
        none,
        px,
        py,
        pz,
        e,
        zero,
        zero,
        zero,
        charge,
        np.ones(len(events)),
    )


def _four_muon_events(n: int, rng: np.random.Generator, close: bool) -> list:
    """Four 30 GeV muons (mu-, mu+, mu-, mu+), the second and fourth with soft charged pions around
    them (the hadronic activity that the cut is for); with ``close`` the third muon sits at dR = 0.2
    from the first, its only neighbour."""
    events = []
    for _ in range(n):
        phis = np.array([0.0, 2.0, 3.5, 5.0]) + rng.uniform(-0.2, 0.2)
        etas = np.array([0.3, -0.6, 1.0, -1.2])
        if close:
            etas[2], phis[2] = etas[0] + 0.2 * np.cos(0.7), phis[0] + 0.2 * np.sin(0.7)
        ev = [(q, 30.0, e, p) for q, e, p in zip((13, -13, 13, -13), etas, phis)]
        for e, p in zip(etas[[1, 3]], phis[[1, 3]]):
            for _ in range(rng.poisson(0.8)):
                r, a = rng.uniform(0.03, 0.28), rng.uniform(0, 2 * np.pi)
                ev.append(
                    (int(rng.choice([211, -211])), rng.exponential(2.0) + 0.6, e + r * np.cos(a), p + r * np.sin(a))
                )
        events.append(ev)
    return events


@pytest.mark.parametrize("det, cuts", [(ATLAS, ATLAS_4L), (CMS, CMS_4L)])
def test_isolation_efficiency_is_unchanged_by_a_second_lepton_at_dr_0p2(det, cuts):
    loose = replace(
        cuts,
        m4l=(0.0, 1e4),
        mz1=(0.0, 1e4),
        mz2=(0.0, 1e4),
        mz2_floor_rise=None,
        jpsi_veto=0.0,
        any_os_min_mass=0.0,
        smart_cut=False,
        min_m4l=0.0,
        leading_pt=(0.0, 0.0, 0.0),
        min_delta_r=0.05,
    )
    passed, base = {}, {}
    for close in (False, True):
        rec = _record(_four_muon_events(300, np.random.default_rng(5), close))
        pv = np.zeros((rec.n_events, 3))
        fs = final_state(rec, None, None, pv, None)
        info = EventInfo(np.ones(rec.n_events, np.int16), np.arange(rec.n_events), 1, 0.0)
        batch = reconstruct(rec, fs, pv, det, np.random.default_rng(6), info).to_padded()
        base[close] = select_4l(batch, loose.without_isolation()).passed  # all four muons reconstructed
        passed[close] = select_4l(batch, loose).passed
        if close:
            counted = select_4l(batch, replace(loose, remove_quadruplet_leptons=False)).passed
    both = base[False] & base[True]
    assert both.mean() > 0.9
    eff = {k: p[both].mean() for k, p in passed.items()}
    counted = counted[both]
    assert 0.3 < eff[False] < 0.97, eff  # the pions make the cut bite
    assert eff[True] == pytest.approx(eff[False], abs=0.02)
    if det is ATLAS:  # track isolation: counting the neighbour would fail nearly every event
        assert counted.mean() < 0.1


def _decay(parent: np.ndarray, mass: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two massless daughters (n, 4) of parents (n, 4) of ``mass`` [GeV], isotropic in its rest frame."""
    from treasure_hf.benchmark.observables import boost

    n = len(parent)
    cos, phi = rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n)
    sin = np.sqrt(1 - cos**2)
    d = 0.5 * mass * np.stack([np.ones(n), sin * np.cos(phi), sin * np.sin(phi), cos], 1)
    beta = parent[:, 1:] / parent[:, :1]
    flip = d * np.array([1.0, -1.0, -1.0, -1.0])
    return boost(d, beta), boost(flip, beta)


def test_z1_mass_constraint_narrows_the_m4l_peak_without_moving_it():
    """H (125 GeV, at rest) -> Z (91.19) Z* (30 GeV) -> 4 leptons, each momentum smeared by 2%: the
    Z1 fit pulls mZ1 to the Z pole, narrows m4l by more than 10% and keeps its median."""
    from treasure_hf.benchmark.observables import z1_mass_constrained
    from treasure_hf.benchmark.selection import MZ_GEV, invariant_mass

    rng = np.random.default_rng(16)
    n, mh, m2 = 4000, 125.0, 30.0
    p = np.sqrt((mh**2 - (MZ_GEV + m2) ** 2) * (mh**2 - (MZ_GEV - m2) ** 2)) / (2 * mh)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    z1 = np.concatenate([np.sqrt(MZ_GEV**2 + p**2) * np.ones((n, 1)), p * axis], 1)
    z2 = np.concatenate([np.sqrt(m2**2 + p**2) * np.ones((n, 1)), -p * axis], 1)
    leptons = np.stack([*_decay(z1, MZ_GEV, rng), *_decay(z2, m2, rng)], 1)  # (n, 4, 4)
    assert np.allclose(invariant_mass(leptons.sum(1)), mh)
    sigma = np.full((n, 4), 0.02)
    measured = leptons * (1 + sigma * rng.normal(size=(n, 4)))[:, :, None]
    fitted = z1_mass_constrained(measured, sigma[:, :2])
    before, after = peak_width(invariant_mass(measured.sum(1))), peak_width(invariant_mass(fitted.sum(1)))
    assert after["sigma_core"] < 0.9 * before["sigma_core"]
    assert after["median"] == pytest.approx(mh, abs=0.1)
    mz1_before, mz1_after = (invariant_mass(x[:, 0] + x[:, 1]) for x in (measured, fitted))
    assert np.std(mz1_after - MZ_GEV) < 0.5 * np.std(mz1_before - MZ_GEV)
    np.testing.assert_array_equal(fitted[:, 2:], measured[:, 2:])  # Z2 as measured
