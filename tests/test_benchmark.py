"""The H -> ZZ* -> 4l benchmark: the four-lepton selection, the decay angles (against events built
from known angles), the metrics, the report writer, and a tiny end-to-end run."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from treasure_hf import metrics
from treasure_hf.benchmark.observables import boost, decay_angles, four_lepton_observables, peak_width, to_rest_frame
from treasure_hf.benchmark.selection import MZ_GEV, Selection4l, chosen_p4, invariant_mass, select_4l
from treasure_hf.data.events import EventBatch


# --- events built from known angles -------------------------------------------------------------
def _two_body(m: float, m1: float, m2: float) -> float:
    return np.sqrt((m * m - (m1 + m2) ** 2) * (m * m - (m1 - m2) ** 2)) / (2 * m)


def _massless(direction: np.ndarray, energy: float) -> np.ndarray:
    return np.r_[energy, energy * direction]


def build_4l(m4l, mz1, mz2, cos_star, cos1, cos2, phi1, phi2) -> np.ndarray:
    """(4, 4) massless leptons (Z1 l-, Z1 l+, Z2 l-, Z2 l+) in the 4l rest frame. Z1 flies along
    u = (sin t*, 0, cos t*); in the right-handed frame (x', y', u) with x' = (cos t*, 0, -sin t*),
    l1- has polar angle t1 around u and azimuth phi1, l2- polar angle t2 around -u, azimuth phi2."""
    s_star = np.sqrt(1 - cos_star**2)
    u = np.array([s_star, 0.0, cos_star])
    x = np.array([cos_star, 0.0, -s_star])
    y = np.cross(u, x)
    p = _two_body(m4l, mz1, mz2)
    out = []
    for m, c, ph, axis, sign in ((mz1, cos1, phi1, u, 1.0), (mz2, cos2, phi2, -u, -1.0)):
        t = np.cos(ph) * x + np.sin(ph) * y
        d = c * axis + np.sqrt(1 - c * c) * t
        beta = sign * u * p / np.hypot(p, m)
        out += [boost(_massless(d, m / 2), beta), boost(_massless(-d, m / 2), beta)]
    return np.array(out)


def test_angles_of_events_built_from_known_angles():
    rng = np.random.default_rng(3)
    for _ in range(50):
        cs, c1, c2 = rng.uniform(-0.95, 0.95, 3)
        f1, f2 = rng.uniform(-np.pi, np.pi, 2)
        lep = build_4l(125.0, 90.0, 28.0, cs, c1, c2, f1, f2)
        assert abs(invariant_mass(lep.sum(0)) - 125.0) < 1e-6
        assert abs(invariant_mass(lep[0] + lep[1]) - 90.0) < 1e-6
        a = {k: float(v[0]) for k, v in decay_angles(lep[None]).items()}
        assert a["cos_theta_star"] == pytest.approx(cs, abs=1e-9)
        assert a["cos_theta1"] == pytest.approx(c1, abs=1e-9)
        assert a["cos_theta2"] == pytest.approx(c2, abs=1e-9)
        # derived by hand from the definitions: Phi = phi1 - phi2 (wrapped); n1 . n_sc = -cos phi1
        assert a["Phi"] == pytest.approx((f1 - f2 + np.pi) % (2 * np.pi) - np.pi, abs=1e-7)
        assert a["Phi1"] == pytest.approx(np.sign(np.sin(f1)) * (np.pi - abs(f1)), abs=1e-7)


def test_angles_invariant_under_beam_rotations_and_longitudinal_boosts_and_odd_under_parity():
    rng = np.random.default_rng(4)
    lep = np.array([build_4l(125.0, 91.0, 25.0, *rng.uniform(-0.9, 0.9, 3), *rng.uniform(-3, 3, 2)) for _ in range(20)])
    a = decay_angles(lep)
    rot = np.eye(4)
    rot[1:3, 1:3] = [[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]]
    moved = boost(lep @ rot.T, np.array([0.0, 0.0, 0.6]))
    b = decay_angles(moved)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], atol=1e-7)
    mirrored = lep * np.array([1.0, -1.0, 1.0, 1.0])  # y -> -y: a reflection
    c = decay_angles(mirrored)
    np.testing.assert_allclose(c["Phi"], -a["Phi"], atol=1e-7)
    np.testing.assert_allclose(c["Phi1"], -a["Phi1"], atol=1e-7)
    np.testing.assert_allclose(c["cos_theta1"], a["cos_theta1"], atol=1e-9)
    swapped = lep[:, [1, 0, 2, 3]]  # exchanging Z1's leptons reverses cos theta1
    np.testing.assert_allclose(decay_angles(swapped)["cos_theta1"], -a["cos_theta1"], atol=1e-9)


def test_rest_frame_boost_round_trip():
    p = np.array([[50.0, 10.0, -20.0, 30.0]])
    frame = np.array([[200.0, 30.0, 40.0, -50.0]])
    at_rest = to_rest_frame(frame, frame)
    np.testing.assert_allclose(at_rest[0, 1:], 0.0, atol=1e-9)
    assert at_rest[0, 0] == pytest.approx(invariant_mass(frame)[0])
    back = boost(to_rest_frame(p, frame), frame[:, 1:] / frame[:, :1])
    np.testing.assert_allclose(back, p, atol=1e-9)


# --- selection on hand-built events --------------------------------------------------------------
def _batch(events: list[dict[str, list[tuple[float, float, float, int]]]]) -> EventBatch:
    """events: [{"electrons": [(pt, eta, phi, charge[, trk_iso03]), ...], "muons": [...]}]."""
    n, width = len(events), 8
    arrays = {}
    for g in ("electrons", "muons"):
        cols = {f: np.zeros((n, width), np.float32) for f in ("pt", "eta", "phi", "charge", "trk_iso03")}
        mask = np.zeros((n, width), bool)
        for i, ev in enumerate(events):
            for j, (pt, eta, phi, q, *iso) in enumerate(sorted(ev.get(g, []), key=lambda o: -o[0])):
                cols["pt"][i, j], cols["eta"][i, j], cols["phi"][i, j], cols["charge"][i, j] = pt, eta, phi, q
                cols["trk_iso03"][i, j] = iso[0] if iso else 0.0
                mask[i, j] = True
        arrays.update({f"common/{g}/{f}": v for f, v in cols.items()})
        arrays[f"common/{g}/mask"] = mask
        arrays[f"common/{g}/n"] = mask.sum(1).astype(np.int32)
    return EventBatch(arrays)


def _leptons_of(p4: np.ndarray) -> list[tuple[float, float, float]]:
    out = []
    for e, px, py, pz in p4:
        pt = np.hypot(px, py)
        out.append((float(pt), float(np.arcsinh(pz / pt)), float(np.arctan2(py, px))))
    return out


def test_selection_finds_the_z_pairs_of_a_hand_built_2e2mu_event():
    lep = boost(build_4l(125.0, 91.0, 30.0, 0.3, 0.5, -0.4, 1.0, -2.0), np.array([0.1, 0.0, 0.2]))
    (m1, m2, e1, e2) = _leptons_of(lep)  # Z1 -> mu- mu+, Z2 -> e- e+
    good = {"muons": [(*m1, -1), (*m2, 1)], "electrons": [(*e1, -1), (*e2, 1)]}
    same_sign = {"muons": [(*m1, -1), (*m2, -1)], "electrons": [(*e1, -1), (*e2, 1)]}
    soft = {"muons": [(*m1, -1), (*m2, 1)], "electrons": [(3.0, 0.1, 0.2, -1), (4.0, 0.3, 1.2, 1)]}
    sel = select_4l(_batch([good, same_sign, soft]), Selection4l(m4l=(100.0, 150.0)))
    assert sel.passed.tolist() == [True, False, False]
    assert sel.channel.tolist() == [2]  # 2e2mu
    assert sel.flavour.tolist() == [[1, 1, 0, 0]]  # Z1 = the muons (closest to mZ)
    obs = four_lepton_observables(chosen_p4(_batch([good]), select_4l(_batch([good]), Selection4l(m4l=(100.0, 150.0)))))
    assert obs["m4l"][0] == pytest.approx(125.0, abs=0.01)
    assert obs["mZ1"][0] == pytest.approx(91.0, abs=0.01) and obs["mZ2"][0] == pytest.approx(30.0, abs=0.01)
    assert obs["cos_theta1"][0] == pytest.approx(0.5, abs=1e-3)


def test_selection_picks_the_pairing_closest_to_mz_in_4mu():
    lep = build_4l(125.0, 89.0, 32.0, -0.2, 0.1, 0.6, 0.4, 2.5)
    lep = boost(lep, np.array([0.0, 0.1, 0.1]))
    leptons = _leptons_of(lep)
    ev = {"muons": [(*leptons[0], -1), (*leptons[1], 1), (*leptons[2], -1), (*leptons[3], 1)]}
    b = _batch([ev])
    sel = select_4l(b, Selection4l(m4l=(100.0, 150.0)))
    assert sel.passed.tolist() == [True] and sel.channel.tolist() == [1]
    obs = four_lepton_observables(chosen_p4(b, sel))
    assert abs(obs["mZ1"][0] - MZ_GEV) < abs(obs["mZ2"][0] - MZ_GEV)
    assert obs["m4l"][0] == pytest.approx(125.0, abs=0.01)


def _event_4mu_and_4e() -> dict:
    """Two muon pairs and two electron pairs: valid 4mu, 4e and 2e2mu quadruplets; the electron
    pair is the one nearest mZ."""
    mu = _leptons_of(boost(build_4l(125.0, 86.0, 30.0, 0.2, 0.4, -0.3, 0.9, -1.8), np.array([0.1, 0.0, 0.1])))
    el = _leptons_of(boost(build_4l(125.0, 91.0, 25.0, -0.4, -0.2, 0.5, 2.1, 0.3), np.array([-0.1, 0.05, -0.2])))
    return {
        "muons": [(*mu[0], -1), (*mu[1], 1), (*mu[2], -1), (*mu[3], 1)],
        "electrons": [(*el[0], -1), (*el[1], 1), (*el[2], -1), (*el[3], 1)],
    }


def test_atlas_takes_the_4mu_channel_first_cms_the_z1_nearest_mz():
    from treasure_hf.benchmark.selection import ATLAS_4L, CMS_4L

    b = _batch([_event_4mu_and_4e()])
    wide = {"m4l": (0.0, 1e4), "mz2": (5.0, 200.0), "mz2_floor_rise": None}
    atlas = select_4l(b, replace(ATLAS_4L, **wide))
    cms = select_4l(b, replace(CMS_4L, **wide))
    assert atlas.channel.tolist() == [1] and atlas.flavour.tolist() == [[1, 1, 1, 1]]  # 4mu, by priority
    assert cms.flavour[0, :2].tolist() == [0, 0]  # Z1 = the electron pair at 91 GeV
    obs = four_lepton_observables(chosen_p4(b, cms))
    assert obs["mZ1"][0] == pytest.approx(91.0, abs=0.05)


def test_isolation_ignores_the_other_leptons_of_the_quadruplet():
    """The Z2 electrons at dR = 0.15 each count the other in trk_iso03 (cone 0.3): the cut must not."""
    lep = _leptons_of(boost(build_4l(125.0, 91.0, 12.0, 0.3, 0.5, -0.4, 1.0, -2.0), np.array([0.0, 0.3, 0.0])))
    (m1, m2, e1, e2) = lep
    e2 = (e2[0], e1[1] + 0.15, e1[2])  # a boosted, collimated Z2 (mZ2 recomputed below)
    ev = {"muons": [(*m1, -1), (*m2, 1)], "electrons": [(*e1, -1, e2[0] / e1[0]), (*e2, 1, e1[0] / e2[0])]}
    b = _batch([ev])
    wide = replace(
        Selection4l(), m4l=(0.0, 1e4), mz2=(0.0, 200.0), mz2_floor_rise=None, jpsi_veto=0.0, leading_pt=(0.0, 0.0, 0.0)
    )
    assert select_4l(b, wide).passed.tolist() == [True]
    assert select_4l(b, replace(wide, remove_quadruplet_leptons=False)).passed.tolist() == [False]
    # a genuine track of 20% of the electron's pT still fails it
    ev["electrons"][0] = (*e1, -1, e2[0] / e1[0] + 0.2)
    assert select_4l(_batch([ev]), wide).passed.tolist() == [False]


# --- metrics -------------------------------------------------------------------------------------
def test_auc_of_known_distributions_and_rejection():
    rng = np.random.default_rng(0)
    n = 20000
    # two unit Gaussians 1 apart: AUC = Phi(1 / sqrt 2) = 0.7602
    y = np.r_[np.ones(n), np.zeros(n)]
    s = np.r_[rng.normal(1, 1, n), rng.normal(0, 1, n)]
    assert metrics.roc_auc(y, s) == pytest.approx(0.7602, abs=0.006)
    from sklearn.metrics import roc_auc_score

    assert metrics.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # 50% signal efficiency: cut at 1; background passes 1 - Phi(1) = 0.1587 -> rejection 6.3
    assert metrics.rejection_at_efficiency(y, s, 0.5) == pytest.approx(1 / 0.1587, rel=0.05)
    assert metrics.roc_auc([1, 1, 0, 0], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert metrics.roc_auc([1, 0], [1.0, 0.0]) == 1.0
    _, lo, hi = metrics.bootstrap_ci(metrics.roc_auc, y[::20], s[::20], n_bootstrap=100)
    assert lo < metrics.roc_auc(y[::20], s[::20]) < hi and hi - lo < 0.05


def test_peak_width_of_a_gaussian_with_tails():
    rng = np.random.default_rng(1)
    m = np.r_[rng.normal(125.0, 1.6, 4000), rng.uniform(110, 140, 400)]
    w = peak_width(m)
    assert w["sigma_core"] == pytest.approx(1.6, rel=0.08)
    assert w["median"] == pytest.approx(125.0, abs=0.2)


# --- report and goals ----------------------------------------------------------------------------
def _rec(key, method, inputs, bits, auc, val, low, high):
    pair = {"difference": (low + high) / 2, "low": low, "high": high}
    return {
        "key": key,
        "name": key,
        "method": method,
        "inputs": inputs,
        "bits_per_object": bits,
        "auc": auc,
        "validation_auc": val,
        "paired_vs_bdt": pair,
        "paired_vs_best_continuous": pair,
    }


def test_goals_are_met_only_where_the_paired_interval_says_so():
    from treasure_hf.benchmark.report import evaluate_goals

    records = [
        _rec("flat", "continuous", "continuous", None, 0.90, 0.91, -0.004, 0.002),
        _rec("per_type", "continuous", "continuous", None, 0.91, 0.89, 0.01, 0.02),
        _rec("rvq32_ids", "rvq", "ids", 32.0, 0.895, 0.90, -0.012, -0.001),
        _rec("rvq64_decoded", "rvq", "ids+decoded", 64.0, 0.90, 0.95, -0.001, 0.001),
        _rec("rvq32_decoded", "rvq", "ids+decoded", 32.0, 0.899, 0.90, -0.006, 0.001),
    ]
    m4l = {
        "original": {"sigma_core": 1.6},
        "validation_original": {"sigma_core": 1.6},
        "decoded": [
            {
                "key": "rvq32",
                "bits_per_object": 32.0,
                "m4l_sigma_core_per_seed": [1.65, 1.70],
                "validation_m4l_sigma_core_per_seed": [1.66, 1.64],
            },
            {
                "key": "rvq8",
                "bits_per_object": 8.0,
                "m4l_sigma_core_per_seed": [3.0, 3.1],
                "validation_m4l_sigma_core_per_seed": [3.0, 3.0],
            },
        ],
    }
    goals = {g["goal"].split(" row")[0]: g for g in evaluate_goals(records, m4l)}
    cont = goals["the best continuous"]
    assert cont["row"] == "flat" and cont["met"]  # the best by validation AUC, not by test AUC
    ids = goals["the best ids"]
    assert ids["met"] is False and ids["margin"] == pytest.approx(-0.002)
    dec = goals["the best ids+decoded"]
    assert dec["row"] == "rvq32_decoded" and dec["met"] is False  # 64 bits is over the budget of the goal
    m = next(g for g in goals.values() if g["goal"].startswith("m4l"))
    assert m["row"] == "rvq32" and m["met"] is False and m["relative_difference"] == pytest.approx(0.046875)


def test_bit_budgets_are_what_the_report_says():
    from treasure_hf.benchmark.config import BIT_BUDGETS, METHODS, budget

    for m in METHODS:
        for bits in BIT_BUDGETS:
            b = budget(m, bits)
            if b is None:
                assert m == "vq" and bits > 16  # one codebook of 2^32 codes is not trained
                continue
            assert b.bits_per_object == pytest.approx(bits)
            stages, size = (1, 2**bits) if m == "vq" else (bits // 8, 256)
            assert (b.stages, b.codebook_size) == (stages, size)
    from treasure_hf.benchmark.config import medium_arguments

    medium = medium_arguments()  # no codebook above 256 codes: VQ at 8 bits only
    assert [b.key for b in medium.budgets() if b.method == "vq"] == ["vq8"]
    assert {(s["method"], s["bits"]) for s in medium.skipped_budgets()} == {("vq", 16), ("vq", 32), ("vq", 64)}
    assert all(b.codebook_size <= 256 and b.bits_per_object == b.bits for b in medium.budgets())


def test_paired_bootstrap_sees_a_real_difference_and_not_a_fake_one():
    from treasure_hf.metrics import paired_bootstrap

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 4000)
    base = rng.normal(y * 1.0, 1.0)
    same = paired_bootstrap(y, [base + rng.normal(0, 0.05, 4000) for _ in range(3)], [base] * 3, n_bootstrap=300)
    assert same["low"] < 0 < same["high"]
    better = paired_bootstrap(y, [base + 0.5 * y for _ in range(3)], [base] * 3, n_bootstrap=300)
    assert better["low"] > 0 and better["difference"] > 0.03


def test_bootstrap_auc_of_a_resample_is_the_auc_of_the_resampled_events():
    """The paired bootstrap scores each resample from event counts over one sort; a resample's AUC
    is exactly the AUC of the drawn events (duplicates and tied scores included)."""
    from treasure_hf import metrics

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 3000)
    scores = np.round(y * 0.4 + rng.normal(size=3000), 1)  # ~60 distinct values: many ties
    draws = [rng.integers(0, 3000, 3000) for _ in range(5)]
    counts = np.stack([np.bincount(i, minlength=3000) for i in draws]).astype(float)
    got = metrics._CountAuc(y, scores)(counts)
    want = [metrics.fast_auc(y[i], scores[i]) for i in draws]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_pairing_shares_the_test_sets_fluctuations():
    """Two classifiers on one test set: the paired interval of their difference is narrower than
    the two separate intervals combined, and identical scores differ by exactly nothing."""
    from treasure_hf import metrics

    rng = np.random.default_rng(3)
    y = np.r_[np.ones(400), np.zeros(400)]
    good = y + rng.normal(size=800)  # separation 1 sigma: AUC 0.76
    poor = 0.3 * y + rng.normal(size=800)  # 0.3 sigma: AUC 0.58
    same = metrics.paired_bootstrap(y, [good], [good], n_bootstrap=100, confidence=0.68)
    assert same["difference"] == same["low"] == same["high"] == 0.0
    paired = metrics.paired_bootstrap(y, [good], [poor], n_bootstrap=300, confidence=0.68)
    assert paired["difference"] == pytest.approx(metrics.roc_auc(y, good) - metrics.roc_auc(y, poor))
    assert 0.1 < paired["low"] < paired["difference"] < paired["high"]
    _, lo_g, hi_g = metrics.bootstrap_ci(metrics.roc_auc, y, good, n_bootstrap=300)
    _, lo_p, hi_p = metrics.bootstrap_ci(metrics.roc_auc, y, poor, n_bootstrap=300)
    assert paired["high"] - paired["low"] < np.hypot(hi_g - lo_g, hi_p - lo_p)


# --- the whole chain on a tiny generated sample ---------------------------------------------------
@pytest.fixture(scope="module")
def tiny_samples(tmp_path_factory):
    from treasure_hf.benchmark.samples import BACKGROUND_SETTINGS
    from treasure_hf.data.generate.generator import generate

    d = tmp_path_factory.mktemp("hzz4l_bench")
    sig = generate("hzz4l", 300, seed=11, out=d / "hzz4l.pcdf", progress=False)
    bkg = generate("zz4l", 700, seed=12, out=d / "zz4l.pcdf", extra=BACKGROUND_SETTINGS, progress=False)
    return sig, bkg


def test_signal_sample_peaks_at_the_higgs_mass(tiny_samples):
    from treasure_hf.benchmark.samples import read_selected

    batch, labels, cutflow = read_selected(tiny_samples, select_4l, step=250, progress=False)
    assert cutflow["signal"]["events"] == 300 and cutflow["background"]["events"] == 700
    from treasure_hf.benchmark.samples import BACKGROUND_SETTINGS, SampleRequest, is_complete

    assert is_complete(tiny_samples[1], SampleRequest("zz4l", 700, 12, BACKGROUND_SETTINGS), "atlas")  # reused
    assert not is_complete(tiny_samples[1], SampleRequest("zz4l", 700, 12), "atlas")  # other Pythia settings
    assert not is_complete(tiny_samples[0], SampleRequest("hzz4l", 300, 11), "cms")
    assert cutflow["signal"]["m4l window"] == labels.sum() and cutflow["background"]["m4l window"] == (1 - labels).sum()
    sel = select_4l(batch)
    assert sel.passed.all()
    obs = four_lepton_observables(chosen_p4(batch, sel))
    sig = labels == 1
    assert sig.sum() >= 30 and (~sig).sum() >= 15
    w = peak_width(obs["m4l"][sig])
    assert w["median"] == pytest.approx(125.0, abs=1.0)
    assert 0.5 < w["sigma_core"] < 3.0  # the ATLAS-like lepton resolution: about 1.6 GeV
    assert np.median(obs["mZ1"][sig]) == pytest.approx(MZ_GEV, abs=3.0)
    assert 12 < np.median(obs["mZ2"][sig]) < 40  # the off-shell Z*: m4l - mZ at most
    for k in ("cos_theta_star", "cos_theta1", "cos_theta2"):
        assert np.all(np.abs(obs[k]) <= 1)
    assert np.all(np.abs(obs["Phi"]) <= np.pi) and np.all(np.abs(obs["Phi1"]) <= np.pi)
    # background in the window is flat: its m4l spreads far wider than the signal peak
    assert np.std(obs["m4l"][~sig]) > 2 * w["sigma_core"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny benchmark run end to end: generation of development and test samples, every family of rows."""
    from treasure_hf.benchmark.config import ModelSettings, TokenizerSettings, quick_arguments
    from treasure_hf.benchmark.run import run_benchmark

    args = quick_arguments(
        events=250,
        background_events=1000,
        test_events=250,
        unlabelled_events=300,
        seeds=2,
        labels=(40,),
        bits=(8,),
        methods=("rvq", "fsq"),
        bootstrap=50,
        workers=2,  # the rows train on two worker processes, read back by the main one
        tokenizer=TokenizerSettings(steps=10, batch_size=256, hidden_size=16),
        model=ModelSettings(
            hidden_size=16,
            layers=1,
            heads=2,
            intermediate_size=32,
            epochs=2,
            batch_size=64,
            patience=2,
            pretrain_steps=3,
            pretrain_batch_size=32,
            finetune_lrs=(3e-4,),
            combinations=2,
        ),
    )
    out = tmp_path_factory.mktemp("bench") / "out"
    return args, out, run_benchmark(args, out, progress=False)


def test_benchmark_runs_every_row_end_to_end(tiny_run):
    args, out, report = tiny_run
    content = json.loads((out / "results.json").read_text())
    keys = [r["key"] for r in content["rows"]]
    assert keys[:5] == ["bdt", "rvq8_ids", "rvq8_decoded", "fsq8_ids", "fsq8_decoded"]
    assert {"flat", "per_type", "hierarchical", "foundation_ft_40", "foundation_scratch_40"} <= set(keys)
    for r in content["rows"]:
        assert (
            0.0 <= r["auc"] <= 1.0
            and len(r["auc_seeds"]) == 2
            and r["inputs"] in ("continuous", "ids", "ids+decoded", "hybrid")
        )
        if r["key"] != "bdt":
            pair = r["paired_vs_bdt"]
            assert pair["low"] <= pair["difference"] <= pair["high"] and pair["seeds"] == 2
    by_key = {r["key"]: r for r in content["rows"]}
    assert by_key["rvq8_ids"]["bits_per_object"] == pytest.approx(8.0) and by_key["bdt"]["auc"] > 0.6
    from treasure_hf.benchmark.rows import tokenizer_budget
    from treasure_hf.tokenization import EventTokenizer

    for folder in (out / "work" / "tokenizers").glob("*/seed-0"):  # what each trained tokenizer really spends
        method_bits = folder.parent.name.split("-")[0]
        bits = by_key[f"{method_bits}_ids"]["bits_per_object"] if f"{method_bits}_ids" in by_key else 32
        assert method_bits in ("rvq8", "fsq8", "rvq32"), folder  # rvq32: the encoder is chosen at 32 bits
        assert tokenizer_budget(EventTokenizer.from_pretrained(folder)) == pytest.approx(bits), folder
    assert content["test_seeds"] == [args.test_seed, args.test_seed + 1]
    chosen = content["choices_on_validation"]["tokenizer_of_later_rows"]
    for key in ("hierarchical", "foundation_ft_40", "foundation_scratch_40"):  # kept under the chosen tokenizer
        assert (out / "rows" / key / chosen / "seed-1" / "result.json").exists(), key
    for f in ("report.md", "roc.png", "auc_vs_bits.png", "m4l_vs_bits.png", "label_efficiency.png"):
        assert (out / f).stat().st_size > 0
    curves = json.loads((out / "auc_vs_bits.json").read_text())["curves"]  # each figure's data, as JSON
    assert curves["RVQ ids"]["bits"] == [8.0] and curves["RVQ ids"]["auc"] == [by_key["rvq8_ids"]["auc"]]
    widths = json.loads((out / "m4l_vs_bits.json").read_text())
    assert widths["original_sigma_core_gev"] == pytest.approx(content["m4l_peak"]["original"]["sigma_core"])
    for d in content["m4l_peak"]["decoded"]:  # a method whose decoded widths are all undefined draws no line
        finite = [v for v in d["m4l_sigma_core_per_seed"] if v is not None and np.isfinite(v)]
        curve = widths["curves"].get(f"{d['method'].upper()} decoded")
        assert (curve is None) == (not finite)
        if curve:
            assert curve["bits"] == [8.0] and curve["sigma_core_gev"] == [pytest.approx(np.mean(finite))]
    assert "paired bootstrap 95% intervals" in (out / "report.md").read_text()


def test_the_test_events_are_no_event_any_choice_saw(tiny_run):
    """The test samples are generated apart, with their own seeds: none of their events is among
    the training or validation events (their generator seeds and event numbers differ)."""
    from treasure_hf.data.io import read_events

    args, out, _ = tiny_run
    samples = out / "work" / "samples"
    dev = {
        json.loads((samples / f"{p}.pcdf" / "pcdf.json").read_text())["metadata"]["generator"]["seed"]
        for p in ("hzz4l", "zz4l", "mix")
    }
    test = {
        json.loads((samples / f"{p}-test.pcdf" / "pcdf.json").read_text())["metadata"]["generator"]["seed"]
        for p in ("hzz4l", "zz4l")
    }
    assert dev.isdisjoint(test) and test == {args.test_seed, args.test_seed + 1}

    def kinematics(p):
        return {tuple(np.round(r, 4)) for r in read_events(p)["common/muons/pt"][:, :2]}

    assert kinematics(samples / "hzz4l.pcdf").isdisjoint(kinematics(samples / "hzz4l-test.pcdf") - {(0.0, 0.0)})


def test_a_rerun_skips_what_is_done_and_refuses_other_settings(tiny_run, capsys):
    import dataclasses

    from treasure_hf.benchmark.run import run_benchmark
    from treasure_hf.errors import ArgumentError

    args, out, report = tiny_run
    stamp = (out / "rows" / "rvq8_ids" / "seed-0" / "result.json").stat().st_mtime_ns
    again = run_benchmark(dataclasses.replace(args, rows=("bdt", "tokens")), out, progress=False)
    assert (out / "rows" / "rvq8_ids" / "seed-0" / "result.json").stat().st_mtime_ns == stamp
    assert again["selected"] == report["selected"]
    with pytest.raises(ArgumentError, match="other settings"):
        run_benchmark(dataclasses.replace(args, seed=5), out, progress=False)


def _small_config(**kwargs):
    from treasure_hf.modeling import EventTransformerConfig

    return EventTransformerConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
        **kwargs,
    )


def test_a_model_of_ids_alone_refuses_decoded_inputs():
    import torch

    from treasure_hf.modeling import EventTransformerConfig, EventTransformerForSequenceClassification

    model = EventTransformerForSequenceClassification(_small_config(input_kind="ids")).eval()
    ids = torch.randint(7, 64, (2, 5))
    model(input_ids=ids)
    with pytest.raises(ValueError, match="reads token ids alone"):
        model(input_ids=ids, kinematics=torch.zeros(2, 5, 6))
    with pytest.raises(ValueError, match="reads token ids alone"):  # nor observables computed from anything
        model(input_ids=ids, event_features=torch.zeros(2, 10))
    with pytest.raises(ValueError, match="no event features"):
        EventTransformerConfig(
            vocab_size=64, hidden_size=16, num_attention_heads=2, input_kind="ids", event_feature_size=3
        )
    with pytest.raises(ValueError, match="input_kind='ids'"):
        EventTransformerConfig(
            vocab_size=64, hidden_size=16, num_attention_heads=2, input_kind="ids", pair_features="kinematic"
        )


def test_a_model_reads_the_events_observables_standardised_as_on_its_training_events(tmp_path):
    """The observables enter at [CLS]: changing them changes the output; the standardisation
    fitted on the training events is saved in the config and read back; a model given none, or
    the wrong number, refuses to run."""
    import torch

    from treasure_hf.modeling import EventTransformerForSequenceClassification

    config = _small_config(
        event_feature_size=2,
        event_feature_names=["m4l", "mZ1"],
        event_feature_mean=[125.0, 91.0],
        event_feature_scale=[10.0, 5.0],
    )
    torch.manual_seed(0)
    model = EventTransformerForSequenceClassification(config).eval()
    ids = torch.randint(7, 64, (2, 5))
    near = torch.tensor([[125.0, 91.0], [120.0, 85.0]])
    a = model(input_ids=ids, event_features=near).logits
    b = model(input_ids=ids, event_features=near + torch.tensor([40.0, 0.0])).logits
    assert not torch.allclose(a, b)
    model.save_pretrained(tmp_path)
    again = EventTransformerForSequenceClassification.from_pretrained(tmp_path).eval()
    assert again.config.event_feature_names == ["m4l", "mZ1"]
    assert again.transformer.event_embedding.mean.tolist() == [125.0, 91.0]
    assert torch.allclose(again(input_ids=ids, event_features=near).logits, a)
    with pytest.raises(ValueError, match="reads `event_features`"):
        model(input_ids=ids)
    with pytest.raises(ValueError, match="shape"):
        model(input_ids=ids, event_features=torch.zeros(2, 3))


def test_decoded_rows_read_the_observables_of_the_decoded_kinematics(tiny_run):
    """The ids+decoded rows' observables come from the kinematics decoded from the token ids (the same
    m4l whose width the report quotes), the continuous rows' from the original ones."""
    from treasure_hf.benchmark.observables import FEATURES
    from treasure_hf.benchmark.run import m4l_from_tokens, observables_read, prepare
    from treasure_hf.tokenization import EventTokenizer

    args, out, _ = tiny_run
    p = prepare(args, out / "work", progress=False)
    assert observables_read(p.test) is p.test.features
    tokenizer = EventTokenizer.from_pretrained(next((out / "work" / "tokenizers").glob("rvq8-*/seed-0")))
    decoded = observables_read(p.test, tokenizer)
    m4l = FEATURES.index("m4l")
    assert decoded.shape == p.test.features.shape
    assert np.median(np.abs(decoded[:, m4l] - p.test.features[:, m4l])) > 0.1  # not the original values
    signal = p.test.labels == 1  # the m4l the report's decoded widths are taken of
    assert np.allclose(decoded[signal, m4l], m4l_from_tokens(tokenizer, p.test), equal_nan=True)


def test_cli_rejects_unknown_rows(capsys):
    from treasure_hf.cli import main

    assert main(["benchmark", "hzz4l", "--out", "x", "--rows", "bdt,nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err
    assert main(["benchmark", "hzz4l", "--out", "x", "--bits", "12"]) == 2


def test_event_feature_scaling_reads_the_rows_of_the_split_it_is_given():
    """Mean and scale come from the split's own events (a selection of a larger table too), and
    a column with the wrong number of values per event is refused."""
    import datasets

    from treasure_hf.errors import InputError
    from treasure_hf.training.common import event_feature_scaling

    table = datasets.Dataset.from_dict({"event_features": [[1.0, 10.0], [3.0, 10.0], [100.0, 50.0]]})
    scaling = event_feature_scaling(table.select([0, 1]), 2)
    assert scaling["event_feature_mean"] == [2.0, 10.0] and scaling["event_feature_scale"] == [1.0, 1.0]
    with pytest.raises(InputError, match="not 3 each"):
        event_feature_scaling(table, 3)
