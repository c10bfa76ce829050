"""The four-lepton selection of H -> ZZ* -> 4l, vectorised over events.

ATLAS-like (ATLAS, Eur. Phys. J. C 80 (2020) 957, arXiv:2004.03447, section 4), applied to the
first :data:`MAX_PER_FLAVOUR` electrons and muons of each event (pT-ordered, as tokenized):

- electrons pT > 7 GeV, |eta| < 2.47; muons pT > 5 GeV, |eta| < 2.7; relative track isolation
  ``trk_iso03`` < 0.15 (sum pT of tracks in dR < 0.3 over the lepton pT);
- a quadruplet is two same-flavour opposite-sign (SFOS) pairs (4e, 4mu, 2e2mu); its three leading
  leptons have pT > 20, 15, 10 GeV; every two leptons are separated by dR > 0.1;
- Z1 is the pair with the mass closest to mZ = 91.1876 GeV, 50 < mZ1 < 106 GeV; Z2 is the other,
  12 < mZ2 < 115 GeV; in 4e and 4mu the two alternative SFOS pairings exceed 5 GeV (J/psi veto);
- of several quadruplets, the one with mZ1 closest to mZ, then with the largest scalar pT sum of
  the Z2 leptons (the CMS tie-break), is kept;
- the mass window 115 < m4l < 130 GeV (ATLAS's fiducial window).

:func:`select_4l` returns which leptons were chosen, so that the same four objects can be read
again from decoded tokens.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..data.events import EventBatch
from ..errors import InputError

MZ_GEV = 91.1876
MAX_PER_FLAVOUR = 4
"""Leptons of each flavour considered (the tokenizer's default ``max_objects`` for e and mu)."""
ELECTRON_MASS_GEV, MUON_MASS_GEV = 0.000511, 0.10566
CHANNELS = ("4e", "4mu", "2e2mu")


@dataclass(frozen=True)
class Selection4l:
    """Cut values (GeV, dimensionless); see the module docstring."""

    electron_pt: float = 7.0
    electron_eta: float = 2.47
    muon_pt: float = 5.0
    muon_eta: float = 2.7
    isolation: float = 0.15
    leading_pt: tuple[float, float, float] = (20.0, 15.0, 10.0)
    min_delta_r: float = 0.1
    mz1: tuple[float, float] = (50.0, 106.0)
    mz2: tuple[float, float] = (12.0, 115.0)
    jpsi_veto: float = 5.0
    m4l: tuple[float, float] = (115.0, 130.0)

    def describe(self) -> str:
        return (f"electrons pT > {self.electron_pt} GeV, |eta| < {self.electron_eta}; muons pT > {self.muon_pt} GeV, "
                f"|eta| < {self.muon_eta}; trk_iso03 < {self.isolation} (relative); two same-flavour opposite-sign "
                f"pairs (4e, 4mu, 2e2mu); leading lepton pT > {self.leading_pt[0]:g}, {self.leading_pt[1]:g}, "
                f"{self.leading_pt[2]:g} GeV; dR(l, l') > {self.min_delta_r}; Z1 = pair closest to mZ, "
                f"{self.mz1[0]:g} < mZ1 < {self.mz1[1]:g} GeV; {self.mz2[0]:g} < mZ2 < {self.mz2[1]:g} GeV; "
                f"alternative SFOS pairs > {self.jpsi_veto:g} GeV in 4e/4mu; best quadruplet: mZ1 closest to mZ, "
                f"then the largest Z2 scalar pT sum; {self.m4l[0]:g} < m4l < {self.m4l[1]:g} GeV")


@dataclass
class FourLeptons:
    """The chosen quadruplet of the selected events.

    ``passed`` (n_events,) bool over all input events; the arrays below cover the passed events
    only, in order: ``flavour`` (n, 4) 0 = electron, 1 = muon; ``slot`` (n, 4) the object's index
    in its collection; leptons ordered (Z1 l-, Z1 l+, Z2 l-, Z2 l+). ``channel`` (n,) index into
    :data:`CHANNELS`. ``cutflow``: events left after each step."""

    passed: np.ndarray
    flavour: np.ndarray
    slot: np.ndarray
    channel: np.ndarray
    cutflow: dict[str, int] = field(default_factory=dict)

    @property
    def n_selected(self) -> int:
        return int(self.passed.sum())


def _quadruplets() -> np.ndarray:
    """Every (a, b, c, d) over the 2 * MAX_PER_FLAVOUR lepton slots (electrons first) with (a, b)
    and (c, d) disjoint same-flavour pairs, a < b, c < d; each unordered pair of pairs once."""
    n = MAX_PER_FLAVOUR
    pairs = [p for p in itertools.combinations(range(2 * n), 2) if (p[0] < n) == (p[1] < n)]
    out = [(*p, *q) for p, q in itertools.combinations(pairs, 2) if not set(p) & set(q)]
    return np.array(out, np.int64)


QUADRUPLETS = _quadruplets()


def _leptons(batch: EventBatch) -> dict[str, np.ndarray]:
    """(n_events, 2 * MAX_PER_FLAVOUR) arrays: pt, eta, phi, charge, iso, mask, flavour, slot."""
    names = ("pt", "eta", "phi", "charge", "iso", "mask", "flavour", "slot")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in names}
    n_events = batch.n_events
    for flav, g in enumerate(("electrons", "muons")):
        for name, k in (("pt", "pt"), ("eta", "eta"), ("phi", "phi"), ("charge", "charge"), ("iso", "trk_iso03")):
            key = f"common/{g}/{k}"
            if key not in batch:
                raise InputError(None, key, "the four-lepton selection needs this field")
            cols[name].append(_width(np.asarray(batch[key], np.float64), MAX_PER_FLAVOUR))
        cols["mask"].append(_width(np.asarray(batch.mask(g), bool), MAX_PER_FLAVOUR))
        cols["flavour"].append(np.full((n_events, MAX_PER_FLAVOUR), flav))
        cols["slot"].append(np.broadcast_to(np.arange(MAX_PER_FLAVOUR), (n_events, MAX_PER_FLAVOUR)))
    return {k: np.concatenate(v, 1) for k, v in cols.items()}


def _width(a: np.ndarray, width: int) -> np.ndarray:
    if a.shape[1] >= width:
        return a[:, :width]
    return np.pad(a, [(0, 0), (0, width - a.shape[1])])


def lepton_p4(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, flavour: np.ndarray) -> np.ndarray:
    """(..., 4) four-momenta (E, px, py, pz) in GeV of leptons given pT [GeV], eta, phi [rad]."""
    mass = np.where(flavour == 0, ELECTRON_MASS_GEV, MUON_MASS_GEV)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px ** 2 + py ** 2 + pz ** 2 + mass ** 2)
    return np.stack([e, px, py, pz], -1)


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    """Mass [GeV] of (..., 4) four-momenta (E, px, py, pz); 0 where m^2 < 0."""
    m2 = p4[..., 0] ** 2 - p4[..., 1] ** 2 - p4[..., 2] ** 2 - p4[..., 3] ** 2
    return np.sqrt(np.clip(m2, 0.0, None))


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """a (n, slots) gathered at idx (q, 4) -> (n, q, 4)."""
    return a[:, idx]


def select_4l(batch: EventBatch, cuts: Selection4l | None = None) -> FourLeptons:
    """Apply the four-lepton selection (module docstring) to every event of ``batch``."""
    cuts = cuts or Selection4l()
    lep = _leptons(batch)
    n_events = batch.n_events
    is_e = lep["flavour"] == 0
    good = lep["mask"] & (lep["iso"] < cuts.isolation) & np.where(
        is_e, (lep["pt"] > cuts.electron_pt) & (np.abs(lep["eta"]) < cuts.electron_eta),
        (lep["pt"] > cuts.muon_pt) & (np.abs(lep["eta"]) < cuts.muon_eta))
    q = QUADRUPLETS
    p4 = lepton_p4(lep["pt"], lep["eta"], lep["phi"], lep["flavour"])  # (n, 8, 4)
    ok = good[:, q].all(-1)
    charge = lep["charge"][:, q]
    cutflow = {"events": n_events, ">= 4 leptons": int((good.sum(1) >= 4).sum())}
    ok &= (charge[..., 0] * charge[..., 1] < 0) & (charge[..., 2] * charge[..., 3] < 0)
    cutflow["two SFOS pairs"] = int(ok.any(1).sum())
    pts = np.sort(lep["pt"][:, q], -1)[..., ::-1]
    ok &= (pts[..., 0] > cuts.leading_pt[0]) & (pts[..., 1] > cuts.leading_pt[1]) & (pts[..., 2] > cuts.leading_pt[2])
    cutflow["leading pT"] = int(ok.any(1).sum())
    eta, phi = lep["eta"][:, q], lep["phi"][:, q]
    for i, j in itertools.combinations(range(4), 2):
        dphi = (phi[..., i] - phi[..., j] + np.pi) % (2 * np.pi) - np.pi
        ok &= np.hypot(eta[..., i] - eta[..., j], dphi) > cuts.min_delta_r
    cutflow["dR"] = int(ok.any(1).sum())
    qp4 = p4[:, q]  # (n, Q, 4 leptons, 4)
    m_ab, m_cd = invariant_mass(qp4[:, :, 0] + qp4[:, :, 1]), invariant_mass(qp4[:, :, 2] + qp4[:, :, 3])
    first_is_z1 = np.abs(m_ab - MZ_GEV) <= np.abs(m_cd - MZ_GEV)
    mz1, mz2 = np.where(first_is_z1, m_ab, m_cd), np.where(first_is_z1, m_cd, m_ab)
    ok &= (mz1 > cuts.mz1[0]) & (mz1 < cuts.mz1[1])
    cutflow["mZ1"] = int(ok.any(1).sum())
    ok &= (mz2 > cuts.mz2[0]) & (mz2 < cuts.mz2[1])
    cutflow["mZ2"] = int(ok.any(1).sum())
    same = lep["flavour"][:, q[:, 0]] == lep["flavour"][:, q[:, 2]]  # 4e or 4mu
    for x, y in ((0, 2), (0, 3), (1, 2), (1, 3)):  # the alternative pairs (opposite-sign ones only)
        osign = charge[..., x] * charge[..., y] < 0
        ok &= ~(same & osign & (invariant_mass(qp4[:, :, x] + qp4[:, :, y]) < cuts.jpsi_veto))
    cutflow["J/psi veto"] = int(ok.any(1).sum())
    m4l = invariant_mass(qp4.sum(2))
    ok &= (m4l > cuts.m4l[0]) & (m4l < cuts.m4l[1])
    cutflow["m4l window"] = int(ok.any(1).sum())
    # best quadruplet: smallest |mZ1 - mZ|, then largest scalar pT sum of the Z2 leptons
    pt_q = lep["pt"][:, q]
    z2_pt = np.where(first_is_z1, pt_q[..., 2] + pt_q[..., 3], pt_q[..., 0] + pt_q[..., 1])
    score = np.where(ok, np.abs(mz1 - MZ_GEV) - 1e-6 * z2_pt, np.inf)
    best = np.argmin(score, 1)
    passed = ok.any(1)
    rows = np.nonzero(passed)[0]
    chosen = q[best[rows]]  # (n, 4) slot indices into the 8 lepton columns
    swap = ~first_is_z1[rows, best[rows]]
    chosen = np.where(swap[:, None], chosen[:, [2, 3, 0, 1]], chosen)
    # within each pair, the negative lepton first
    ch = np.take_along_axis(lep["charge"][rows], chosen, 1)
    for a in (0, 2):
        flip = ch[:, a] > 0
        chosen[flip, a], chosen[flip, a + 1] = chosen[flip, a + 1], chosen[flip, a].copy()
    flavour = np.take_along_axis(lep["flavour"][rows], chosen, 1)
    slot = np.take_along_axis(lep["slot"][rows], chosen, 1)
    n_mu = flavour.sum(1)
    channel = np.select([n_mu == 0, n_mu == 4], [0, 1], 2)
    return FourLeptons(passed, flavour.astype(np.int64), slot.astype(np.int64), channel.astype(np.int64), cutflow)


def chosen_p4(batch: EventBatch, chosen: FourLeptons) -> np.ndarray:
    """(n_selected, 4 leptons, 4) four-momenta (E, px, py, pz) [GeV] of the chosen leptons of the
    passed events, read from ``batch`` (the original events or the same events decoded from tokens)."""
    lep = _leptons(batch)
    rows = np.nonzero(chosen.passed)[0]
    col = chosen.flavour * MAX_PER_FLAVOUR + chosen.slot
    pick = {k: np.take_along_axis(lep[k][rows], col, 1) for k in ("pt", "eta", "phi")}
    return lepton_p4(pick["pt"], pick["eta"], pick["phi"], chosen.flavour)
