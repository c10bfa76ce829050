"""Validation of the parametric detectors against the experiments' published performance.

    python benchmarks/detector.py [--detector atlas|cms|both] [--events N] [--z-events N] [--seed S]
                                  [--plot m4l_per_channel.png]

Generates ``hzz4l`` (H -> ZZ* -> 4l) and Z -> ee/mumu events with each detector, keeping the Pythia
truth, and prints one JSON object: for each detector the measured figure beside the published one
and its source (treasure_hf.data.generate.validation.PUBLISHED):

- the H -> 4l m4l Gaussian-core width per channel (4mu, 4e, 2e2mu) after the experiment's
  four-lepton selection (treasure_hf.benchmark.selection.SELECTIONS), with its statistical error;
  and after the Z1 mass-constrained fit of the experiments' mass measurements
  (treasure_hf.benchmark.observables.z1_mass_constrained);
- the Z -> mumu and Z -> ee peaks: the detector resolution of the dilepton mass (core width of
  m_reco - m_true, truth leptons dressed within dR < 0.1) and the lepton resolution in Z events;
- electron and muon reconstruction efficiency against true pT (prompt leptons of the hzz4l
  events) beside the cited curves;
- the signal efficiency of the isolation cut, with the other leptons of the quadruplet removed
  (as the experiments do) and, for comparison, counted; its track and calorimeter cuts alone; the
  efficiency per lepton of the quadruplet vs pT;
- the isolation efficiency of each prompt lepton in the Z events vs pT (the tag-and-probe quantity
  the experiments publish) beside the published range;
- the MET resolution against sumET in the Z events (measured only);
- the goals of issue 16: each published width matched within 15%, the electron channels wider
  than the muon channel, an isolation efficiency of at least 95%.

``--plot`` draws m4l per channel with a Gaussian of the measured and of the published width.
Goals that miss are reported, not hidden: see the README's detector section for their causes.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from treasure_hf.benchmark.observables import peak_width, z1_mass_constrained
from treasure_hf.benchmark.selection import (
    CHANNELS,
    INF,
    MAX_PER_FLAVOUR,
    QUADRUPLETS,
    SELECTIONS,
    _leptons,
    chosen_p4,
    invariant_mass,
    lepton_isolation,
    select_4l,
)
from treasure_hf.data.generate import validation as v

logger = logging.getLogger("benchmarks.detector")

GOAL_REL = 0.15
"""Every published width matched within 15% (issue 16)."""
GOAL_ISOLATION = 0.95
Z_TO_EE_MUMU = ("23:onMode = off", "23:onIfAny = 11 13")
"""The zjets preset restricted to Z -> ee, mumu."""
MUON_PT_EDGES = (5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)
ISOLATION_PT_EDGES = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0)
FLAVOURS = ("electrons", "muons")


def _r(x, digits: int = 4):
    if isinstance(x, dict):
        return {k: _r(val, digits) for k, val in x.items()}
    if isinstance(x, (list, tuple)):
        return [_r(val, digits) for val in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else round(float(x), digits)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _width_error(sigma: float, n: int) -> float:
    """Statistical error of a Gaussian width from n events (sigma / sqrt(2 n), inflated by 1.2 for the
    truncated core fit)."""
    return 1.2 * sigma / np.sqrt(2 * max(n, 1))


def m4l_widths(sim: v.Simulated, detector: str) -> tuple[dict, dict[str, np.ndarray], dict]:
    """Core widths per channel, the m4l values per channel and the isolation efficiencies."""
    cuts = SELECTIONS[detector]
    sel = select_4l(sim.batch, cuts)
    p4 = chosen_p4(sim.batch, sel)
    m4l = invariant_mass(p4.sum(1))
    m4l_fit = invariant_mass(z1_mass_constrained(p4, z1_resolution(sim.det, p4, sel.flavour)).sum(1))
    published = v.PUBLISHED[detector]["m4l_sigma_gev"]
    out, values = {}, {}
    for c, name in enumerate(CHANNELS):
        m = m4l[sel.channel == c]
        w = peak_width(m)
        w_fit = peak_width(m4l_fit[sel.channel == c])
        pub = (published["value"] or {}).get(name)
        out[name] = {
            "measured_gev": w["sigma_core"],
            "stat_error_gev": _width_error(w["sigma_core"], w["n"]),
            "z1_mass_constrained_gev": w_fit["sigma_core"],
            "sigma68_gev": w["sigma68"],
            "median_gev": w["median"],
            "events": w["n"],
            "published_gev": pub,
            "ratio": w["sigma_core"] / pub if pub else None,
        }
        values[name] = m
    n_iso = sel.n_selected
    n_all = select_4l(sim.batch, cuts.without_isolation()).n_selected
    from dataclasses import replace

    n_counted = select_4l(sim.batch, replace(cuts, remove_quadruplet_leptons=False)).n_selected
    parts = {}
    if not np.isfinite(cuts.pf_isolation):  # ATLAS: the track and the calorimeter cut alone
        parts["track_isolation_alone"] = select_4l(sim.batch, replace(cuts, calo_isolation=(INF, INF))).n_selected
        parts["calorimeter_isolation_alone"] = select_4l(sim.batch, replace(cuts, track_isolation=INF)).n_selected
    iso = {
        "measured": n_iso / max(n_all, 1),
        "events_before": n_all,
        "events_after": n_iso,
        "with_quadruplet_leptons_counted": n_counted / max(n_all, 1),
        **{k: n / max(n_all, 1) for k, n in parts.items()},
        "per_lepton_vs_pt": signal_lepton_isolation(sim, cuts),
        "published": v.PUBLISHED[detector]["isolation_efficiency"]["value"],
        "source": v.PUBLISHED[detector]["isolation_efficiency"]["source"],
        "selection": cuts.describe(),
    }
    return {"channels": out, "source": published["source"]}, values, iso


def z1_resolution(det, p4: np.ndarray, flavour: np.ndarray) -> np.ndarray:
    """(n, 2) relative momentum resolution of the two Z1 leptons of ``p4`` (n, 4, 4) from the
    detector's parametrisation (electrons: the calorimeter's sigma(E)/E; muons: sigma(pT)/pT)."""
    e, px, py, pz = (p4[:, :2, k] for k in range(4))
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-9))
    return np.where(flavour[:, :2] == 0, det.ecal_resolution(e, eta), det.muon_resolution(pt, eta))


def _binned_pass(passed: np.ndarray, pt: np.ndarray, flavour: np.ndarray) -> dict:
    """Pass fraction and binomial error per lepton flavour in bins of reconstructed pT (GeV)."""
    return {
        name: v.binned_fraction(passed[flavour == f], pt[flavour == f], ISOLATION_PT_EDGES)
        for f, name in enumerate(FLAVOURS)
    }


def signal_lepton_isolation(sim: v.Simulated, cuts) -> dict:
    """Isolation efficiency of each lepton of the chosen quadruplet (the selection without its
    isolation cut), the quadruplet's other leptons removed from the sums, vs the lepton's pT."""
    base = select_4l(sim.batch, cuts.without_isolation())
    rows = np.nonzero(base.passed)[0]
    lep = {k: val[rows] for k, val in _leptons(sim.batch).items()}
    col = base.flavour * MAX_PER_FLAVOUR + base.slot
    index = {frozenset((frozenset(r[:2]), frozenset(r[2:]))): i for i, r in enumerate(QUADRUPLETS.tolist())}
    qi = np.array([index[frozenset((frozenset(c[:2]), frozenset(c[2:])))] for c in col.tolist()], np.int64)
    every = np.arange(len(rows))
    passed = lepton_isolation(lep, QUADRUPLETS, cuts)[every, qi]  # (n, 4) in QUADRUPLETS[qi] order
    slots = QUADRUPLETS[qi]
    return _binned_pass(passed, lep["pt"][every[:, None], slots], lep["flavour"][every[:, None], slots])


def prompt_lepton_isolation(sim: v.Simulated, cuts) -> dict:
    """Isolation efficiency of the reconstructed leptons matched to prompt truth leptons in Z
    events, each lepton alone (the cuts of the four-lepton selection), vs its pT: the quantity the
    experiments' tag-and-probe measurements publish."""
    lep = _leptons(sim.batch)
    alone = np.arange(2 * MAX_PER_FLAVOUR)[:, None]  # every lepton slot as its own "quadruplet"
    passed = lepton_isolation(lep, alone, cuts)[..., 0]  # (n_events, slots)
    prompt = np.zeros(passed.shape, bool)
    for f, group in enumerate(FLAVOURS):
        t, r = v.truth_leptons(sim, group), v.reco_leptons(sim, group)
        m = v.match(t, r, sim.hard.n_events)
        flat = m[m >= 0]
        start = np.r_[0, np.cumsum(sim.events.counts[group])][r.event[flat]]
        slot = flat - start
        keep = slot < MAX_PER_FLAVOUR
        prompt[r.event[flat][keep], f * MAX_PER_FLAVOUR + slot[keep]] = True
    sel = prompt & lep["mask"].astype(bool)
    return _binned_pass(passed[sel], lep["pt"][sel], lep["flavour"][sel])


def efficiencies(sim: v.Simulated) -> dict:
    """Electron and muon efficiency vs true pT in each |eta| region of the cited curves."""
    det = sim.det
    out = {}
    for group, table, edges in (
        ("electrons", det.electron_eff, det.electron_eff.pt_edges),
        ("muons", det.muon_eff, MUON_PT_EDGES),
    ):
        t, r = v.truth_leptons(sim, group), v.reco_leptons(sim, group)
        m = v.match(t, r, sim.hard.n_events)
        regions = []
        lower = 0.0
        eta_max = det.electron_eta if group == "electrons" else det.muon_eta
        for upper in table.eta_edges:
            upper_cut = min(upper, eta_max)
            inside = (np.abs(t.eta) >= lower) & (np.abs(t.eta) < upper_cut)
            sub = t.take(np.nonzero(inside)[0])
            rows = v.efficiency_vs_pt(sub, m[inside], edges, upper_cut)
            for row in rows:
                lo, hi = row["pt_gev"]
                centre = np.array([lo * 1.0001 if hi is None else 0.5 * (lo + hi)])
                row["published"] = float(table(centre, np.array([0.5 * (lower + upper_cut)]))[0])
            regions.append({"abs_eta": [lower, upper_cut], "bins": rows})
            lower = upper
        pub = v.PUBLISHED[det.name].get(f"{group[:-1]}_efficiency", {})
        out[group] = {
            "regions": regions,
            "source": pub.get("source"),
            **({"published_summary": pub["value"]} if "value" in pub else {}),
        }
    return out


def z_peaks(sim: v.Simulated) -> dict:
    """Dilepton mass resolution and lepton resolution in Z -> ee, mumu events."""
    pub = v.PUBLISHED[sim.det.name]
    out = {}
    for group in ("muons", "electrons"):
        t, r = v.truth_leptons(sim, group), v.reco_leptons(sim, group)
        m = v.match(t, r, sim.hard.n_events)
        pairs = v.dilepton_pairs(t, r, m)
        near_z = (pairs["m_true"] > 80) & (pairs["m_true"] < 100)
        central = near_z & (pairs["max_abs_eta"] < 1.05)
        d = pairs["m_reco"] - pairs["m_true"]
        peak = peak_width(pairs["m_reco"], window=(80.0, 100.0))
        entry = {
            "pairs": int(near_z.sum()),
            "mass_resolution_gev": {"all": v.core_sigma(d[near_z]), "both_central": v.core_sigma(d[central])},
            "reco_peak": {
                "median_gev": peak["median"],
                "sigma_core_gev": peak["sigma_core"],
                "note": "the visible Z peak, the Breit-Wigner width (2.4952 GeV, PDG) included",
            },
        }
        resp = v.response(t, r, m)
        key = "pt_ratio" if group == "muons" else "e_ratio"
        in_z = np.isin(t.event[resp["index"]], np.nonzero(np.bincount(t.event, minlength=sim.hard.n_events) >= 2)[0])
        target = pub.get("muon_pt_resolution_z" if group == "muons" else "electron_energy_resolution_z")
        lepton = {}
        if target:
            for region, (lo, hi) in target["eta"].items():
                sel = in_z & (np.abs(resp["eta"]) >= lo) & (np.abs(resp["eta"]) < hi) & (resp["pt"] > 20)
                measured = v.core_sigma(resp[key][sel])
                value = target["value"][region]
                row = {"abs_eta": [lo, hi], "leptons": int(sel.sum()), "measured": measured, "published": value}
                if isinstance(value, (int, float)):
                    row["ratio"] = measured / value
                    if group == "muons" and region == "central":
                        entry["mass_resolution_gev"]["published_both_central"] = 91.1876 * value / np.sqrt(2)
                        entry["mass_resolution_gev"]["published_note"] = (
                            "91.19 GeV x sigma(pT)/pT / sqrt(2): the published muon resolution carried to the pair"
                        )
                lepton[region] = row
            entry["lepton_resolution"] = {
                "regions": lepton,
                "source": target["source"],
                "quantity": "sigma(pT)/pT" if group == "muons" else "sigma(E)/E",
            }
        out["z_" + ("mumu" if group == "muons" else "ee")] = entry
    return out


def met_resolution(sim: v.Simulated, edges: tuple[float, ...] = (0.0, 100.0, 200.0, 300.0, 500.0)) -> dict:
    """Core width of the MET components in Z events (no true MET: the width is the resolution) in bins
    of sumET, and the stochastic coefficient k of sigma = k sqrt(sumET) fitted through them."""
    b = sim.batch
    met, phi, sumet = (np.asarray(b[f"common/met/{f}"], np.float64) for f in ("pt", "phi", "sumet"))
    comps = np.concatenate([met * np.cos(phi), met * np.sin(phi)])
    s2 = np.concatenate([sumet, sumet])
    rows = []
    for lo, hi in zip(edges, (*edges[1:], np.inf)):
        inside = (s2 >= lo) & (s2 < hi)
        rows.append(
            {
                "sumet_gev": [lo, hi if np.isfinite(hi) else None],
                "components": int(inside.sum()),
                "sigma_gev": v.core_sigma(comps[inside]),
                "median_sumet_gev": float(np.median(s2[inside])) if inside.any() else None,
            }
        )
    ok = [r for r in rows if r["components"] > 50 and np.isfinite(r["sigma_gev"])]
    k = float(np.sqrt(np.mean([r["sigma_gev"] ** 2 / r["median_sumet_gev"] for r in ok]))) if ok else float("nan")
    return {
        "bins": rows,
        "stochastic_k_sqrt_gev": k,
        "published": None,
        "note": "MET from the reconstructed objects and soft tracks (the detector's resolutions propagate); "
        "no published curve was at hand to set beside it",
    }


def goals(result: dict) -> dict:
    m4l = result["m4l"]["channels"]
    out = {}
    widths = {c: m4l[c]["measured_gev"] for c in CHANNELS}
    out["electron_channels_wider_than_4mu"] = bool(widths["4e"] > widths["4mu"] and widths["2e2mu"] > widths["4mu"])
    out["4e_widest"] = bool(widths["4e"] >= max(widths.values()))
    ratios = {c: m4l[c]["ratio"] for c in CHANNELS if m4l[c]["ratio"] is not None}
    if ratios:
        out["m4l_within_15pct"] = {c: bool(abs(r - 1) <= GOAL_REL) for c, r in ratios.items()}
    zm = result["z"]["z_mumu"]["mass_resolution_gev"]
    if "published_both_central" in zm:
        out["z_mumu_within_15pct"] = bool(abs(zm["both_central"] / zm["published_both_central"] - 1) <= GOAL_REL)
    for name in ("z_mumu", "z_ee"):
        lep = result["z"][name].get("lepton_resolution", {}).get("regions", {})
        for region, row in lep.items():
            value = row["published"]
            if isinstance(value, (int, float)):
                ok = abs(row["measured"] / value - 1) <= GOAL_REL
                if name == "z_ee" and region == "central":  # "better than 2%": an upper bound
                    ok = row["measured"] <= value * (1 + GOAL_REL)
            else:
                ok = value[0] * (1 - GOAL_REL) <= row["measured"] <= value[1] * (1 + GOAL_REL)
            out[f"{name}_{region}_lepton_resolution_matches"] = bool(ok)
    out["isolation_efficiency_at_least_95pct"] = bool(result["isolation"]["measured"] >= GOAL_ISOLATION)
    return out


def run(detector: str, n_events: int, n_z: int, seed: int) -> tuple[dict, dict[str, np.ndarray]]:
    t0 = time.perf_counter()
    sim_h = v.simulate("hzz4l", n_events, seed, detector)
    m4l, values, iso = m4l_widths(sim_h, detector)
    eff = efficiencies(sim_h)
    sim_z = v.simulate("zjets", n_z, seed + 1, detector, Z_TO_EE_MUMU)
    result = {
        "m4l": m4l,
        "isolation": iso,
        "efficiency": eff,
        "z": z_peaks(sim_z),
        "isolation_prompt_leptons_z": {
            "per_lepton_vs_pt": prompt_lepton_isolation(sim_z, SELECTIONS[detector]),
            "published": v.PUBLISHED[detector]["isolation_efficiency"]["value"],
            "source": v.PUBLISHED[detector]["isolation_efficiency"]["source"],
        },
        "met_z": met_resolution(sim_z),
        "events": {"hzz4l": n_events, "z_to_ee_mumu": n_z, "seed": seed},
        "seconds": time.perf_counter() - t0,
    }
    result["goals"] = goals(result)
    return result, values


def plot(values: dict[str, dict[str, np.ndarray]], results: dict, path: Path) -> None:
    from treasure_hf.benchmark.plots import _pyplot, _save

    plt = _pyplot()
    dets = list(values)
    fig, axes = plt.subplots(len(dets), 3, figsize=(12, 3.6 * len(dets)), squeeze=False)
    bins = np.linspace(115.0, 135.0, 41)
    width = bins[1] - bins[0]
    for i, det in enumerate(dets):
        for j, ch in enumerate(("4mu", "2e2mu", "4e")):
            ax = axes[i, j]
            m = values[det][ch]
            row = results[det]["m4l"]["channels"][ch]
            ax.hist(m, bins, histtype="stepfilled", alpha=0.35, color="k", label=f"simulated ({len(m)} events)")
            x = np.linspace(bins[0], bins[-1], 400)
            centre = row["median_gev"] or 125.0
            n_core = np.sum(np.abs(m - centre) < 2 * (row["measured_gev"] or 1.0))
            for sigma, style, label in (
                (row["measured_gev"], "-", "measured core"),
                (row["published_gev"], "--", "published"),
            ):
                if sigma:
                    norm = n_core / 0.9545 * width / (sigma * np.sqrt(2 * np.pi))
                    ax.plot(
                        x,
                        norm * np.exp(-0.5 * ((x - centre) / sigma) ** 2),
                        style,
                        label=f"{label}: sigma {sigma:.2f} GeV",
                    )
            ax.set_title(f"{det.upper()} {ch}")
            ax.set_xlabel("m4l [GeV]")
            ax.set_ylabel(f"events / {width:.1f} GeV")
            ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--detector", choices=("atlas", "cms", "both"), default="both")
    p.add_argument("--events", type=int, default=10_000, help="hzz4l events per detector (default 10,000)")
    p.add_argument("--z-events", type=int, default=10_000, help="Z -> ee/mumu events per detector")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--plot", help="write the m4l-per-channel figure here (PNG)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dets = ["atlas", "cms"] if args.detector == "both" else [args.detector]
    results, values = {}, {}
    for det in dets:
        logger.info("simulating %d hzz4l and %d Z events with the %s detector", args.events, args.z_events, det)
        results[det], values[det] = run(det, args.events, args.z_events, args.seed)
    if args.plot:
        plot(values, results, Path(args.plot))
    doc = {
        "benchmark": "detector",
        "python": platform.python_version(),
        "goal_relative": GOAL_REL,
        "goal_isolation": GOAL_ISOLATION,
        "detectors": results,
    }
    print(json.dumps(_r(doc), indent=1))


if __name__ == "__main__":
    main()
