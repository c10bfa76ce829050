"""The four-lepton selection of H -> ZZ* -> 4l as ATLAS and CMS apply it, vectorised over events.

:data:`ATLAS_4L` (the default) follows ATLAS, JHEP 03 (2018) 095, arXiv:1712.02304, Sec. 4, with the
channel priority of Eur. Phys. J. C 80 (2020) 957, arXiv:2004.03447, Sec. 4; :data:`CMS_4L` follows
CMS, JHEP 11 (2017) 047, arXiv:1706.09936, Sec. 3. Each cut of :class:`Selection4l` names its source.
Both are applied to the first :data:`MAX_PER_FLAVOUR` electrons and muons of each event (pT-ordered,
as tokenized):

- lepton pT and |eta| thresholds;
- a quadruplet is two same-flavour opposite-sign (SFOS) pairs (4e, 4mu, 2e2mu); leading-lepton pT
  thresholds; a minimum dR between any two of its leptons; Z1 is the pair with the mass closest to
  mZ = 91.1876 GeV, Z2 the other, each in its mass window (ATLAS: the Z2 floor rises from 12 GeV at
  m4l = 140 GeV to 50 GeV at 190 GeV); the J/psi veto on the alternative pairs (ATLAS: alternative
  SFOS pairs of 4e/4mu above 5 GeV; CMS: every opposite-sign pair above 4 GeV, and the "smart cut"
  on the alternative pairing of 4e/4mu);
- isolation of each lepton of the quadruplet with the other three removed from its sums: ATLAS
  track isolation in the variable cone min(0.3, 10 GeV / pT) (``ptvarcone30``) below 0.15 pT and
  calorimeter isolation (``topoetcone20``) below 0.20 pT for electrons, 0.30 pT for muons; CMS
  relative PF isolation below 0.35 (PF sums hold no leptons, so nothing is left to remove). Without
  the experiment layer the common ``trk_iso03`` (fixed cone 0.3) is used, with the same removal;
- the best quadruplet: ATLAS takes the channel with the highest expected signal acceptance first
  (4mu, 2e2mu, 2mu2e, 4e; "2e2mu" has the ee pair as Z1), then mZ1 closest to mZ, then mZ2 closest
  to mZ; CMS takes mZ1 closest to mZ, then the largest scalar pT sum of the Z2 leptons (its Run-1
  rule, CMS Phys. Rev. D 89 (2014) 092007, arXiv:1312.5353, Sec. 4; since 2016 CMS keeps the
  candidate with the highest matrix-element discriminant D_bkg^kin, which needs MELA);
- the m4l window: ATLAS 115-130 GeV, CMS 105-140 GeV (their fiducial/signal windows).

Not modelled: the impact-parameter significance cuts (ATLAS |d0|/sigma < 5 for electrons, 3 for
muons; CMS SIP3D < 4), because leptons carry no impact parameter in the common format (prompt
signal leptons pass them at ~99%), ATLAS's common-vertex chi2 cut, and ATLAS's matrix-element choice
in events with a fifth lepton.

:func:`select_4l` returns which leptons were chosen, so that the same four objects can be read
again from decoded tokens.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from ..data.events import EventBatch
from ..errors import InputError
from ..kinematics import delta_phi

MZ_GEV = 91.1876
MAX_PER_FLAVOUR = 4
"""Leptons of each flavour considered (the tokenizer's default ``max_objects`` for e and mu)."""
ELECTRON_MASS_GEV, MUON_MASS_GEV = 0.000511, 0.10566
CHANNELS = ("4e", "4mu", "2e2mu")
SUB_CHANNELS = ("4e", "4mu", "2e2mu", "2mu2e")
"""(Z1, Z2) flavours: ee+ee, mumu+mumu, ee+mumu, mumu+ee; 2e2mu and 2mu2e are both ``CHANNELS[2]``."""
INF = float("inf")


@dataclass(frozen=True)
class Selection4l:
    """Cut values (GeV, dimensionless); the defaults are ATLAS's (module docstring)."""

    experiment: str = "ATLAS"
    electron_pt: float = 7.0  # ATLAS arXiv:1712.02304 Sec. 4: ET > 7 GeV, |eta| < 2.47
    electron_eta: float = 2.47
    muon_pt: float = 5.0  # pT > 5 GeV, |eta| < 2.7
    muon_eta: float = 2.7
    leading_pt: tuple[float, float, float] = (20.0, 15.0, 10.0)  # the three leading leptons
    min_delta_r: float = 0.1  # dR(l, l') > 0.1
    mz1: tuple[float, float] = (50.0, 106.0)
    mz2: tuple[float, float] = (12.0, 115.0)
    mz2_floor_rise: tuple[float, float, float] | None = (140.0, 190.0, 50.0)
    """(m4l where the Z2 floor starts to rise, m4l where it stops, the floor there): ATLAS's
    m4l-dependent mZ2 threshold, linear in between; None: a fixed floor."""
    jpsi_veto: float = 5.0  # alternative SFOS pairs of 4e/4mu above 5 GeV
    any_os_min_mass: float = 0.0  # CMS: every opposite-sign pair (any flavour) above 4 GeV
    smart_cut: bool = False  # CMS's veto of 4e/4mu whose alternative pairing has a better Z1 and mZb < 12 GeV
    min_m4l: float = 0.0  # CMS: m4l > 70 GeV
    m4l: tuple[float, float] = (115.0, 130.0)  # ATLAS's signal window
    track_isolation: float = 0.15  # ptvarcone30 (or trk_iso03 * pT) minus the other leptons < 0.15 pT
    variable_cone: bool = True  # cone min(0.3, 10 GeV / pT) (ptvarcone30)
    calo_isolation: tuple[float, float] = (0.20, 0.30)  # topoetcone20 minus the other electrons < 0.2 / 0.3 pT (e, mu)
    pf_isolation: float = INF  # CMS: relative PF isolation < 0.35
    channel_priority: tuple[str, ...] | None = ("4mu", "2e2mu", "2mu2e", "4e")  # arXiv:2004.03447 Sec. 4
    tie_break: str = "mz2"  # "mz2": mZ2 closest to mZ (ATLAS); "z2_pt": largest Z2 scalar pT sum (CMS)
    isolation: bool = True
    """False drops every isolation cut (to measure the isolation efficiency of a sample)."""
    remove_quadruplet_leptons: bool = True
    """False counts the other leptons of the quadruplet in each lepton's sums (the fixed-cone cut that
    issue 16 found to lose 21% of the signal); for comparisons only."""

    def without_isolation(self) -> Selection4l:
        return replace(self, isolation=False)

    def describe(self) -> str:
        iso = (
            "no isolation"
            if not self.isolation
            else f"relative PF isolation < {self.pf_isolation:g}"
            if np.isfinite(self.pf_isolation)
            else f"track isolation ({'ptvarcone30, cone min(0.3, 10 GeV/pT)' if self.variable_cone else 'cone 0.3'}) "
            f"< {self.track_isolation:g} pT and calorimeter isolation (topoetcone20) < "
            f"{self.calo_isolation[0]:g} pT (e), {self.calo_isolation[1]:g} pT (mu)"
        )
        prio = f"the first channel of {', '.join(self.channel_priority)}, then " if self.channel_priority else ""
        tie = "mZ2 closest to mZ" if self.tie_break == "mz2" else "the largest Z2 scalar pT sum"
        vetoes = [f"alternative SFOS pairs > {self.jpsi_veto:g} GeV in 4e/4mu"] if self.jpsi_veto > 0 else []
        if self.any_os_min_mass > 0:
            vetoes.append(f"every opposite-sign pair > {self.any_os_min_mass:g} GeV")
        if self.smart_cut:
            vetoes.append("the smart cut on the alternative 4e/4mu pairing")
        lead = ", ".join(f"{x:g}" for x in self.leading_pt if x > 0)
        return (
            f"{self.experiment}: electrons pT > {self.electron_pt:g} GeV, |eta| < {self.electron_eta}; muons pT > "
            f"{self.muon_pt:g} GeV, |eta| < {self.muon_eta}; two same-flavour opposite-sign pairs (4e, 4mu, "
            f"2e2mu); leading lepton pT > {lead} GeV; dR(l, l') > {self.min_delta_r:g}; Z1 = pair closest to mZ, "
            f"{self.mz1[0]:g} < mZ1 < {self.mz1[1]:g} GeV; {self.mz2[0]:g} < mZ2 < {self.mz2[1]:g} GeV; "
            f"{'; '.join(vetoes)}; {iso}, each with the other leptons of the quadruplet removed; best "
            f"quadruplet: {prio}mZ1 closest to mZ, then {tie}; {self.m4l[0]:g} < m4l < {self.m4l[1]:g} GeV"
        )


ATLAS_4L = Selection4l()
"""ATLAS, JHEP 03 (2018) 095, arXiv:1712.02304, Sec. 4 (channel priority: arXiv:2004.03447, Sec. 4)."""

CMS_4L = Selection4l(
    experiment="CMS",
    electron_pt=7.0,
    electron_eta=2.5,
    muon_pt=5.0,
    muon_eta=2.4,  # arXiv:1706.09936 Sec. 3
    leading_pt=(20.0, 10.0, 0.0),  # one lepton above 20 GeV, another above 10 GeV
    min_delta_r=0.02,  # dR > 0.02 between any two leptons
    mz1=(40.0, 120.0),
    mz2=(12.0, 120.0),
    mz2_floor_rise=None,  # 12 < mll < 120 GeV, mZ1 > 40 GeV
    jpsi_veto=0.0,
    any_os_min_mass=4.0,
    smart_cut=True,
    min_m4l=70.0,
    m4l=(105.0, 140.0),  # the fiducial window (arXiv:1706.09936 Sec. 9)
    track_isolation=0.35,
    variable_cone=False,
    calo_isolation=(INF, INF),  # used only without the cms layer
    pf_isolation=0.35,  # RelPFiso (dR = 0.3) < 0.35, FSR photons removed from the sums
    channel_priority=None,
    tie_break="z2_pt",
)
"""CMS, JHEP 11 (2017) 047, arXiv:1706.09936, Sec. 3."""

SELECTIONS: dict[str, Selection4l] = {"atlas": ATLAS_4L, "cms": CMS_4L}
"""The selection of each detector name of ``treasure generate --detector``."""

PTVARCONE_MAX, PTVARCONE_KT_GEV = 0.3, 10.0
"""ATLAS ptvarcone30: cone min(0.3, 10 GeV / pT) (ATLAS, Eur. Phys. J. C 76 (2016) 292, Sec. 7)."""
SMART_CUT_MZB_GEV = 12.0
"""CMS's smart cut: the alternative pairing's lighter pair below 12 GeV (arXiv:1706.09936, Sec. 3)."""
TOPOETCONE_CONE, TRK_ISO_CONE = 0.2, 0.3
"""The cones of topoetcone20 and of the common ``trk_iso03``."""


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

_ISO_FIELDS = {
    "ATLAS": {"track": "atlas/{g}/ptvarcone30", "calo": "atlas/{g}/topoetcone20"},
    "CMS": {"pf": {"electrons": "cms/electrons/pfRelIso03_all", "muons": "cms/muons/pfRelIso04_all"}},
}
"""Experiment-layer isolation variables (absolute GeV for ATLAS, relative for CMS). The CMS layer
holds NanoAOD's cone 0.3 for electrons and 0.4 for muons (CMS H -> 4l uses 0.3 for both; 0.4 is
the stricter)."""


def _leptons(batch: EventBatch) -> dict[str, np.ndarray]:
    """(n_events, 2 * MAX_PER_FLAVOUR) arrays: pt, eta, phi, charge, iso (trk_iso03), mask, flavour,
    slot, and where the experiment layer has them trk_var, calo (absolute, GeV) and pf (relative),
    NaN where an object lacks the value."""
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
    out = {k: np.concatenate(v, 1) for k, v in cols.items()}
    extra = {
        "trk_var": [_ISO_FIELDS["ATLAS"]["track"].format(g=g) for g in ("electrons", "muons")],
        "calo": [_ISO_FIELDS["ATLAS"]["calo"].format(g=g) for g in ("electrons", "muons")],
        "pf": [_ISO_FIELDS["CMS"]["pf"][g] for g in ("electrons", "muons")],
    }
    for name, keys in extra.items():
        if all(k in batch for k in keys):
            out[name] = np.concatenate([_width(np.asarray(batch[k], np.float64), MAX_PER_FLAVOUR) for k in keys], 1)
    return out


def _width(a: np.ndarray, width: int) -> np.ndarray:
    if a.shape[1] >= width:
        return a[:, :width]
    return np.pad(a, [(0, 0), (0, width - a.shape[1])])


def lepton_p4(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, flavour: np.ndarray) -> np.ndarray:
    """(..., 4) four-momenta (E, px, py, pz) in GeV of leptons given pT [GeV], eta, phi [rad]."""
    mass = np.where(flavour == 0, ELECTRON_MASS_GEV, MUON_MASS_GEV)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    return np.stack([e, px, py, pz], -1)


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    """Mass [GeV] of (..., 4) four-momenta (E, px, py, pz); 0 where m^2 < 0."""
    m2 = p4[..., 0] ** 2 - p4[..., 1] ** 2 - p4[..., 2] ** 2 - p4[..., 3] ** 2
    return np.sqrt(np.clip(m2, 0.0, None))


def _pair_dr(eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """(n, slots, slots) dR between every two lepton slots."""
    dphi = delta_phi(phi[:, :, None], phi[:, None, :])
    return np.hypot(eta[:, :, None] - eta[:, None, :], dphi)


def quadruplet_isolation(lep: dict[str, np.ndarray], q: np.ndarray, cuts: Selection4l) -> np.ndarray:
    """(n, Q) bool: every lepton of quadruplet ``q`` (Q, 4) isolated once the other three are removed
    from its sums (``lep`` as :func:`_leptons` returns, n events)."""
    return lepton_isolation(lep, q, cuts).all(-1)


def lepton_isolation(lep: dict[str, np.ndarray], q: np.ndarray, cuts: Selection4l) -> np.ndarray:
    """(n, Q, 4) bool: each lepton of quadruplet ``q`` (Q, 4) isolated once the other three are
    removed from its sums (:func:`quadruplet_isolation`, lepton by lepton)."""
    pt, is_e = lep["pt"], lep["flavour"] == 0
    dr = _pair_dr(lep["eta"], lep["phi"])
    own = np.eye(pt.shape[1], dtype=bool)[None]
    ok = np.ones((len(pt), len(q), q.shape[1]), bool)

    def removed(cone: np.ndarray, from_electrons_only: bool = False) -> np.ndarray:
        """(n, Q, 4): pT of the quadruplet's other leptons inside each lepton's cone."""
        inside = (dr < cone[:, :, None]) & ~own & cuts.remove_quadruplet_leptons
        if from_electrons_only:
            inside &= is_e[:, None, :]
        contrib = np.where(inside, pt[:, None, :], 0.0)  # (n, i, j)
        return contrib[:, q[:, :, None], q[:, None, :]].sum(-1)

    def passes(total: np.ndarray, cone: np.ndarray, limit: np.ndarray, electrons_only: bool = False) -> np.ndarray:
        left = np.maximum(total[:, q] - removed(cone, electrons_only), 0.0)
        lim = limit[:, q]
        finite = np.isfinite(lim)
        return ~finite | (left < np.where(finite, lim, 0.0) * pt[:, q])

    use_pf = np.isfinite(cuts.pf_isolation) and "pf" in lep
    if use_pf:  # PF sums hold no leptons: nothing to remove
        rel = np.where(np.isfinite(lep["pf"]), lep["pf"], lep["iso"])
        ok &= rel[:, q] < cuts.pf_isolation
    else:
        if cuts.variable_cone and "trk_var" in lep:
            var = np.isfinite(lep["trk_var"])
            track = np.where(var, lep["trk_var"], lep["iso"] * pt)
            cone = np.where(var, np.minimum(PTVARCONE_MAX, PTVARCONE_KT_GEV / np.maximum(pt, 1e-9)), TRK_ISO_CONE)
        else:
            track, cone = lep["iso"] * pt, np.full(pt.shape, TRK_ISO_CONE)
        ok &= passes(track, cone, np.full(pt.shape, cuts.track_isolation))
        if np.isfinite(cuts.calo_isolation).any() and "calo" in lep:
            calo = np.where(np.isfinite(lep["calo"]), lep["calo"], 0.0)
            limit = np.where(is_e, cuts.calo_isolation[0], cuts.calo_isolation[1])
            ok &= passes(calo, np.full(pt.shape, TOPOETCONE_CONE), limit, electrons_only=True)
    return ok


def select_4l(batch: EventBatch, cuts: Selection4l | None = None) -> FourLeptons:
    """Apply the four-lepton selection (module docstring) to every event of ``batch``."""
    cuts = cuts or Selection4l()
    lep = _leptons(batch)
    n_events = batch.n_events
    is_e = lep["flavour"] == 0
    good = lep["mask"] & np.where(
        is_e,
        (lep["pt"] > cuts.electron_pt) & (np.abs(lep["eta"]) < cuts.electron_eta),
        (lep["pt"] > cuts.muon_pt) & (np.abs(lep["eta"]) < cuts.muon_eta),
    )
    q = QUADRUPLETS
    p4 = lepton_p4(lep["pt"], lep["eta"], lep["phi"], lep["flavour"])  # (n, 8, 4)
    ok = good[:, q].all(-1)
    charge = lep["charge"][:, q]
    cutflow = {"events": n_events, ">= 4 leptons": int((good.sum(1) >= 4).sum())}
    ok &= (charge[..., 0] * charge[..., 1] < 0) & (charge[..., 2] * charge[..., 3] < 0)
    cutflow["two SFOS pairs"] = int(ok.any(1).sum())
    pts = np.sort(lep["pt"][:, q], -1)[..., ::-1]
    for k, threshold in enumerate(cuts.leading_pt):
        ok &= pts[..., k] > threshold
    cutflow["leading pT"] = int(ok.any(1).sum())
    dr = _pair_dr(lep["eta"], lep["phi"])
    for i, j in itertools.combinations(range(4), 2):
        ok &= dr[:, q[:, i], q[:, j]] > cuts.min_delta_r
    cutflow["dR"] = int(ok.any(1).sum())
    qp4 = p4[:, q]  # (n, Q, 4 leptons, 4)
    m_ab, m_cd = invariant_mass(qp4[:, :, 0] + qp4[:, :, 1]), invariant_mass(qp4[:, :, 2] + qp4[:, :, 3])
    first_is_z1 = np.abs(m_ab - MZ_GEV) <= np.abs(m_cd - MZ_GEV)
    mz1, mz2 = np.where(first_is_z1, m_ab, m_cd), np.where(first_is_z1, m_cd, m_ab)
    m4l = invariant_mass(qp4.sum(2))
    ok &= (mz1 > cuts.mz1[0]) & (mz1 < cuts.mz1[1])
    cutflow["mZ1"] = int(ok.any(1).sum())
    floor = np.full(m4l.shape, cuts.mz2[0])
    if cuts.mz2_floor_rise is not None:
        lo, hi, top = cuts.mz2_floor_rise
        floor = np.interp(m4l, [lo, hi], [cuts.mz2[0], top])
    ok &= (mz2 > floor) & (mz2 < cuts.mz2[1])
    cutflow["mZ2"] = int(ok.any(1).sum())
    same = lep["flavour"][:, q[:, 0]] == lep["flavour"][:, q[:, 2]]  # 4e or 4mu
    for x, y in ((0, 2), (0, 3), (1, 2), (1, 3)):  # the alternative pairs (opposite-sign ones only)
        osign = charge[..., x] * charge[..., y] < 0
        m_xy = invariant_mass(qp4[:, :, x] + qp4[:, :, y])
        ok &= ~(same & osign & (m_xy < cuts.jpsi_veto))
        ok &= ~(osign & (m_xy < cuts.any_os_min_mass))
    for x, y in ((0, 1), (2, 3)):
        ok &= invariant_mass(qp4[:, :, x] + qp4[:, :, y]) > cuts.any_os_min_mass
    if cuts.smart_cut:
        # the alternative pairings of 4e/4mu, (a, c)(b, d) and (a, d)(b, c), where opposite-sign: veto if
        # its Z closer to mZ (Za) beats Z1 while the other (Zb) is below 12 GeV
        for x, y, u, v in ((0, 2, 1, 3), (0, 3, 1, 2)):
            ma = invariant_mass(qp4[:, :, x] + qp4[:, :, y])
            mb = invariant_mass(qp4[:, :, u] + qp4[:, :, v])
            a_first = np.abs(ma - MZ_GEV) < np.abs(mb - MZ_GEV)
            za, zb = np.where(a_first, ma, mb), np.where(a_first, mb, ma)
            valid = same & (charge[..., x] * charge[..., y] < 0)
            ok &= ~(valid & (np.abs(za - MZ_GEV) < np.abs(mz1 - MZ_GEV)) & (zb < SMART_CUT_MZB_GEV))
    ok &= m4l > cuts.min_m4l
    cutflow["J/psi veto"] = int(ok.any(1).sum())
    if cuts.isolation:
        rows = np.nonzero(ok.any(1))[0]
        iso = np.zeros(ok.shape, bool)
        if len(rows):
            iso[rows] = quadruplet_isolation({k: v[rows] for k, v in lep.items()}, q, cuts)
        ok &= iso
    cutflow["isolation"] = int(ok.any(1).sum())
    ok &= (m4l > cuts.m4l[0]) & (m4l < cuts.m4l[1])
    cutflow["m4l window"] = int(ok.any(1).sum())
    best = _best_quadruplet(ok, lep, q, first_is_z1, mz1, mz2, cuts)
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


def _best_quadruplet(
    ok: np.ndarray,
    lep: dict[str, np.ndarray],
    q: np.ndarray,
    first_is_z1: np.ndarray,
    mz1: np.ndarray,
    mz2: np.ndarray,
    cuts: Selection4l,
) -> np.ndarray:
    """(n,) index into ``q`` of the kept quadruplet of each event (meaningful where ``ok.any(1)``)."""
    n, n_q = ok.shape
    keys = [np.abs(mz1 - MZ_GEV)]
    if cuts.tie_break == "mz2":
        keys.insert(0, np.abs(mz2 - MZ_GEV))
    else:
        pt_q = lep["pt"][:, q]
        keys.insert(0, -np.where(first_is_z1, pt_q[..., 2] + pt_q[..., 3], pt_q[..., 0] + pt_q[..., 1]))
    if cuts.channel_priority:
        fl = lep["flavour"][:, q]  # (n, Q, 4)
        z1_mu, z2_mu = np.where(first_is_z1, fl[..., 0], fl[..., 2]), np.where(first_is_z1, fl[..., 2], fl[..., 0])
        sub = np.select(
            [~z1_mu.astype(bool) & ~z2_mu.astype(bool), z1_mu.astype(bool) & z2_mu.astype(bool), ~z1_mu.astype(bool)],
            [0, 1, 2],
            3,
        )  # index into SUB_CHANNELS
        rank = np.array([cuts.channel_priority.index(c) for c in SUB_CHANNELS])
        keys.append(rank[sub])
    keys.append(~ok)
    order = np.lexsort([np.broadcast_to(k, (n, n_q)).ravel() for k in keys] + [np.repeat(np.arange(n), n_q)])
    first = order[np.r_[True, order[1:] // n_q != order[:-1] // n_q]]
    return first % n_q


def chosen_p4(batch: EventBatch, chosen: FourLeptons) -> np.ndarray:
    """(n_selected, 4 leptons, 4) four-momenta (E, px, py, pz) [GeV] of the chosen leptons of the
    passed events, read from ``batch`` (the original events or the same events decoded from tokens)."""
    lep = _leptons(batch)
    rows = np.nonzero(chosen.passed)[0]
    col = chosen.flavour * MAX_PER_FLAVOUR + chosen.slot
    pick = {k: np.take_along_axis(lep[k][rows], col, 1) for k in ("pt", "eta", "phi")}
    return lepton_p4(pick["pt"], pick["eta"], pick["phi"], chosen.flavour)
