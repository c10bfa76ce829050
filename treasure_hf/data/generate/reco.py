"""From generator records to reconstructed objects in the common schema: the event assembly of
the parametric detector (:mod:`.detector` holds the numbers, this module applies them).

Everything is vectorised over all events of a shard: final-state particles of the hard scatter
and of the pile-up vertices form one table sorted by event; tracks, leptons, photons, taus, jets
(with constituents), isolation and MET are computed with numpy group operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...kinematics import delta_phi
from .. import ee, schema
from ..events import RaggedEvents
from ..helix import cylinder_crossings, omega_from_pt
from . import jets as jetlib
from . import truth
from .detector import (
    ATLAS_ELECTRON_ID,
    ATLAS_MUON_QUALITY,
    ATLAS_PHOTON_TIGHT,
    CMS_ELECTRON_CUTBASED,
    CMS_MUON_ID,
    CMS_PHOTON_CUTBASED,
    ELECTRON_DRESSING_CONE,
    PTVARCONE_KT_GEV,
    PTVARCONE_TRACK_PT,
    TAU_CORE_CONE,
    TAU_CORE_TRACK_PT,
    Detector,
    FsrRecovery,
)
from .pythia import Record

ELECTRON_MASS_GEV = 0.000511  # PDG
JET_CLUSTER_MIN_PT_GEV = 10.0
"""Jets are clustered down to 10 GeV, smeared, then cut at the registry's jet threshold."""
ATLAS_NDOF_TRT, ATLAS_NDOF_SILICON, ATLAS_TRT_ETA = 41, 11, 2.0
"""A simple model of ATLAS track nDoF: 4 pixel layers (2 coordinates each) and 4 SCT double layers
(8 coordinates) give 16 silicon measurements, the TRT adds ~30 straws for |eta| < 2.0 (ATLAS,
JINST 3 (2008) S08003); minus the 5 helix parameters."""

ISO = schema.ISOLATION


# ---------------------------------------------------------------------------------------------
# group helpers
# ---------------------------------------------------------------------------------------------


def _offsets(event: np.ndarray, n_events: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(event, minlength=n_events))]).astype(np.int64)


def _pairs(a_event: np.ndarray, b_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (a, b) pairs in the same event; ``b`` rows are sorted by event with ``b_offsets``."""
    counts = (b_offsets[a_event + 1] - b_offsets[a_event]).astype(np.int64)
    ia = np.repeat(np.arange(len(a_event)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    ib = b_offsets[a_event][ia] + (np.arange(len(ia)) - starts)
    return ia, ib


def _dr2(eta1, phi1, eta2, phi2) -> np.ndarray:
    return (eta1 - eta2) ** 2 + delta_phi(phi1, phi2) ** 2


def _eta_phi(px, py, pz) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    return pt, eta, np.arctan2(py, px)


C1_BETA = 0.2
"""Exponent of the two-point energy correlation ratio C1 used by ATLAS's quark/gluon tagging
(ATLAS, Eur. Phys. J. C 74 (2014) 3023: C1 with beta = 0.2 on tracks)."""


def _track_c1(
    jet: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, n_jets: int, sum_pt: np.ndarray
) -> np.ndarray:
    """C1(beta = 0.2) = sum_{i<j} pT_i pT_j dR_ij^beta / (sum_i pT_i)^2 over each jet's tracks
    (``jet`` sorted ascending); -1 for jets without tracks."""
    order = np.argsort(jet, kind="stable")
    jet, pt, eta, phi = jet[order], pt[order], eta[order], phi[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(jet, minlength=n_jets))])
    ia, ib = _pairs(jet, offsets)
    upper = ib > np.arange(len(jet))[ia]
    ia, ib = ia[upper], ib[upper]
    corr = pt[ia] * pt[ib] * _dr2(eta[ia], phi[ia], eta[ib], phi[ib]) ** (C1_BETA / 2)
    total = np.bincount(jet[ia], corr, minlength=n_jets)
    return np.where(sum_pt > 0, total / np.where(sum_pt > 0, sum_pt, 1.0) ** 2, -1.0)


def cone_sum(
    obj_event: np.ndarray,
    obj_eta: np.ndarray,
    obj_phi: np.ndarray,
    cone: np.ndarray | float,
    cand_offsets: np.ndarray,
    cand_eta: np.ndarray,
    cand_phi: np.ndarray,
    cand_pt: np.ndarray,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Per object, sum pT of the candidates of its event within dR < ``cone`` (candidates sorted by
    event with ``cand_offsets``), leaving out candidate ``exclude[i]`` (-1: none) of object ``i``."""
    ia, ib = _pairs(obj_event, cand_offsets)
    cone = np.broadcast_to(np.asarray(cone, np.float64), obj_eta.shape)
    inside = _dr2(obj_eta[ia], obj_phi[ia], cand_eta[ib], cand_phi[ib]) < cone[ia] ** 2
    if exclude is not None:
        inside &= ib != exclude[ia]
    return np.bincount(ia[inside], cand_pt[ib[inside]], minlength=len(obj_event))


def _first_of_groups(keys: np.ndarray) -> np.ndarray:
    """Mask of the first row of each run of equal ``keys`` (rows already sorted by key)."""
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    return first


def recover_fsr(
    fsr: FsrRecovery,
    leptons: dict[int, tuple[np.ndarray, ...]],
    g_event: np.ndarray,
    g_pt: np.ndarray,
    g_eta: np.ndarray,
    g_phi: np.ndarray,
    g_rel_iso: np.ndarray,
    n_events: int,
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """Add final-state photons to leptons with the experiment's criteria (:class:`FsrRecovery`).

    ``leptons`` maps a PDG id (11, 13) to ``(event, pt, eta, phi)`` of its reconstructed leptons;
    photons are given by event, pT (GeV), eta, phi and relative isolation. Returns the leptons' new
    ``(pt, eta, phi)`` per id (the sum of the lepton and its photon, massless) and which photons
    were taken."""
    flavs = list(leptons)
    sizes = [len(leptons[f][0]) for f in flavs]
    ev, pt, eta, phi = (np.concatenate([np.asarray(leptons[f][k], np.float64) for f in flavs]) for k in range(4))
    ev = ev.astype(np.int64)
    flav = np.repeat(flavs, sizes)
    taken = np.zeros(len(g_pt), bool)
    cand = np.nonzero((g_pt > fsr.min_pt) & (np.abs(g_eta) < fsr.max_eta) & (g_rel_iso < fsr.max_rel_iso))[0]
    li = np.nonzero(np.isin(flav, fsr.flavours))[0]
    if len(cand) and len(li):
        li = li[np.argsort(ev[li], kind="stable")]
        ia, ib = _pairs(g_event[cand], _offsets(ev[li], n_events))
        gp, ll = cand[ia], li[ib]
        dr = np.sqrt(_dr2(g_eta[gp], g_phi[gp], eta[ll], phi[ll]))
        ok = (dr < fsr.max_dr) & (dr / g_pt[gp] ** 2 < fsr.max_dr_over_et2)
        gp, ll, dr = gp[ok], ll[ok], dr[ok]
        o = np.lexsort((dr, gp))  # each photon to its nearest lepton
        o = o[_first_of_groups(gp[o])]
        gp, ll, dr = gp[o], ll[o], dr[o]
        rank = -g_pt[gp] if fsr.rank == "pt" else dr / g_pt[gp] ** 2
        o = np.lexsort((rank, ll))  # each lepton keeps its best photon
        o = o[_first_of_groups(ll[o])]
        gp, ll = gp[o], ll[o]
        px = pt[ll] * np.cos(phi[ll]) + g_pt[gp] * np.cos(g_phi[gp])
        py = pt[ll] * np.sin(phi[ll]) + g_pt[gp] * np.sin(g_phi[gp])
        pz = pt[ll] * np.sinh(eta[ll]) + g_pt[gp] * np.sinh(g_eta[gp])
        pt, eta, phi = pt.copy(), eta.copy(), phi.copy()
        pt[ll], eta[ll], phi[ll] = _eta_phi(px, py, pz)
        taken[gp] = True
    bounds = np.cumsum([0, *sizes])
    return {f: (pt[a:b], eta[a:b], phi[a:b]) for f, a, b in zip(flavs, bounds[:-1], bounds[1:])}, taken


# ---------------------------------------------------------------------------------------------
# the final-state table
# ---------------------------------------------------------------------------------------------


@dataclass
class FinalState:
    """Final-state particles of hard scatter and pile-up, sorted by event (momenta GeV, vertices mm)."""

    event: np.ndarray
    id: np.ndarray
    charge: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    is_pileup: np.ndarray
    record_row: np.ndarray  # row in the hard-scatter record, -1 for pile-up
    offsets: np.ndarray

    def __post_init__(self) -> None:
        self.pt, self.eta, self.phi = _eta_phi(self.px, self.py, self.pz)


def final_state(
    hard: Record,
    pileup: Record | None,
    pileup_event: np.ndarray | None,
    pv: np.ndarray,
    pileup_vertex: np.ndarray | None,
) -> FinalState:
    """Join the hard scatter (shifted to its vertex ``pv`` (n_events, 3)) and pile-up events
    (``pileup_event[k]``: hard event of pile-up event ``k``, shifted to ``pileup_vertex[k]``)."""
    rows = np.nonzero(hard.status > 0)[0]
    ev = hard.event[rows]
    cols = {
        "event": ev,
        "id": hard.id[rows],
        "charge": hard.charge[rows],
        "px": hard.px[rows],
        "py": hard.py[rows],
        "pz": hard.pz[rows],
        "e": hard.e[rows],
        "vx": hard.vx[rows] + pv[ev, 0],
        "vy": hard.vy[rows] + pv[ev, 1],
        "vz": hard.vz[rows] + pv[ev, 2],
        "is_pileup": np.zeros(len(rows), np.int8),
        "record_row": rows,
    }
    if pileup is not None and len(pileup.id):
        k = pileup.event  # pile-up event of each particle
        parts = {
            "event": pileup_event[k],
            "id": pileup.id,
            "charge": pileup.charge,
            "px": pileup.px,
            "py": pileup.py,
            "pz": pileup.pz,
            "e": pileup.e,
            "vx": pileup.vx + pileup_vertex[k, 0],
            "vy": pileup.vy + pileup_vertex[k, 1],
            "vz": pileup.vz + pileup_vertex[k, 2],
            "is_pileup": np.ones(len(k), np.int8),
            "record_row": np.full(len(k), -1, np.int64),
        }
        cols = {c: np.concatenate([cols[c], parts[c]]) for c in cols}
        order = np.argsort(cols["event"], kind="stable")
        cols = {c: v[order] for c, v in cols.items()}
    return FinalState(**cols, offsets=_offsets(cols["event"], hard.n_events))


# ---------------------------------------------------------------------------------------------
# reconstruction
# ---------------------------------------------------------------------------------------------


@dataclass
class EventInfo:
    """Per-event values passed in by the generator."""

    process_id: np.ndarray
    event_number: np.ndarray
    luminosity_block: int
    mu: float


class _Builder:
    def __init__(self, det: Detector, rng: np.random.Generator, n_events: int):
        self.det, self.rng, self.n_events = det, rng, n_events
        self.event: dict[str, np.ndarray] = {}
        self.objects: dict[str, np.ndarray] = {}
        self.counts: dict[str, np.ndarray] = {}
        self.n: dict[str, np.ndarray] = {}

    def put(self, group: str, event: np.ndarray, sort_pt: np.ndarray, values: dict[str, np.ndarray]) -> np.ndarray:
        """Store an object group (rows sorted by event, then descending pT); returns the order used."""
        order = np.lexsort((-sort_pt, event))
        for k, v in values.items():
            self.objects[k] = np.asarray(v)[order].astype(schema.field_of(k).np_dtype)
        self.counts[group] = np.bincount(event, minlength=self.n_events).astype(np.int64)
        return order

    def uniform(self, n: int) -> np.ndarray:
        return self.rng.random(n)


@dataclass
class _Kinematics:
    """Reconstructed objects of one type: final-state ``rows`` (-1: none), their event, pT (GeV),
    eta and phi (rad), (n,) each."""

    rows: np.ndarray
    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray


@dataclass
class _Tracks(_Kinematics):
    """Reconstructed tracks, plus ``d0``/``z0`` (mm), ``iso`` (used in isolation sums: close to
    the primary vertex) and ``of_row`` (n_final_state,): the track of each particle, -1 for none."""

    d0: np.ndarray
    z0: np.ndarray
    iso: np.ndarray
    of_row: np.ndarray


@dataclass
class _Jets(_Kinematics):
    """Selected jets, plus their constituents' jet and final-state rows (``cons_jet``,
    ``cons_rows``), which of these are tracks (``has_track``), the tracks' distance to the axis
    (``dr_track``) and the jet variables of the registry."""

    mass: np.ndarray
    flavour: np.ndarray
    n_trk: np.ndarray
    width: np.ndarray
    c1: np.ndarray
    cons_jet: np.ndarray
    cons_rows: np.ndarray
    has_track: np.ndarray
    dr_track: np.ndarray


class _Shard:
    """What the reconstruction of one shard shares between the object types: the final state,
    the detector, the random stream (drawn in a fixed order: electrons, muons, FSR, photons, jets,
    taus), the particles already taken by an object (``used``) and the calorimeter-like pT each
    particle adds to isolation sums (``calo_pt``, GeV, zero once it is part of an object)."""

    def __init__(self, hard: Record, fs: FinalState, pv: np.ndarray, det: Detector, rng: np.random.Generator):
        self.hard, self.fs, self.pv, self.det, self.rng = hard, fs, pv, det, rng
        self.n_events = hard.n_events
        self.b = _Builder(det, rng, self.n_events)
        self.absid = np.abs(fs.id)
        self.used = np.zeros(len(fs.id), bool)
        self.d0, self.z0 = _impact_parameters(fs, det, rng)
        self.tracks = _tracks(self)
        neutrino = np.isin(self.absid, truth.NEUTRINOS)
        self.visible = ~neutrino & (self.absid != 13) & (np.abs(fs.eta) < det.calo_eta)
        self.calo_pt = np.where(self.visible & (fs.pt > ISO.pt_floor_gev), fs.pt, 0.0)
        iso_idx = np.nonzero(self.tracks.iso)[0]
        self._iso_idx = iso_idx
        self._iso_offsets = _offsets(self.tracks.event[iso_idx], self.n_events)
        self._iso_pos = np.full(len(self.tracks.rows), -1, np.int64)
        self._iso_pos[iso_idx] = np.arange(len(iso_idx))

    def track_cone(self, obj_event, obj_eta, obj_phi, obj_rows, cone, min_pt=ISO.pt_floor_gev) -> np.ndarray:
        """Sum pT (GeV) of the isolation tracks within ``cone`` of each object, its own track excluded."""
        t, idx = self.tracks, self._iso_idx
        own = np.where(obj_rows >= 0, t.of_row[np.maximum(obj_rows, 0)], -1)
        own = np.where(own >= 0, self._iso_pos[np.maximum(own, 0)], -1)
        pts = np.where(t.pt[idx] > min_pt, t.pt[idx], 0.0)
        return cone_sum(obj_event, obj_eta, obj_phi, cone, self._iso_offsets, t.eta[idx], t.phi[idx], pts, own)

    def calo_cone(self, obj_event, obj_eta, obj_phi, obj_rows, cone, weights=None) -> np.ndarray:
        """Sum of ``weights`` (default ``calo_pt``, GeV) of the particles within ``cone``, the object's own excluded."""
        fs = self.fs
        return cone_sum(
            obj_event,
            obj_eta,
            obj_phi,
            cone,
            fs.offsets,
            fs.eta,
            fs.phi,
            self.calo_pt if weights is None else weights,
            np.where(obj_rows >= 0, obj_rows, -1),
        )


def _impact_parameters(fs: FinalState, det: Detector, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Measured d0 and z0 (mm) of every charged particle (a straight line to the beam line), 0 for neutrals."""
    charged = fs.charge != 0
    sin_phi, cos_phi = np.sin(fs.phi), np.cos(fs.phi)
    cot_theta = np.sinh(fs.eta)
    d0_true = fs.vx * sin_phi - fs.vy * cos_phi
    z0_true = fs.vz - (fs.vx * cos_phi + fs.vy * sin_phi) * cot_theta
    pt_safe = np.maximum(fs.pt, 0.1)
    n = len(fs.id)
    d0 = np.where(charged, d0_true + rng.normal(size=n) * det.d0_resolution_mm(pt_safe, fs.eta), 0.0)
    z0 = np.where(charged, z0_true + rng.normal(size=n) * det.z0_resolution_mm(pt_safe, fs.eta), 0.0)
    return d0, z0


def _tracks(s: _Shard) -> _Tracks:
    """Charged particles in the tracker, found with the detector's efficiency, pT smeared."""
    fs, det, rng = s.fs, s.det, s.rng
    n_fs = len(fs.id)
    cand = (fs.charge != 0) & (fs.pt > ISO.pt_floor_gev) & (np.abs(fs.eta) < det.tracker_eta)
    cand &= rng.random(n_fs) < det.track_efficiency(fs.pt, fs.eta)
    rows = np.nonzero(cand)[0]
    pt = fs.pt[rows] * np.abs(1.0 + rng.normal(size=len(rows)) * det.track_pt_resolution(fs.pt[rows], fs.eta[rows]))
    keep = pt > ISO.pt_floor_gev
    rows, pt = rows[keep], pt[keep]
    of_row = np.full(n_fs, -1, np.int64)
    of_row[rows] = np.arange(len(rows))
    event, d0, z0 = fs.event[rows], s.d0[rows], s.z0[rows]
    # isolation tracks: |(z0 - z_PV) sin(theta)| < 3 mm w.r.t. the primary vertex (pT > 0.5 GeV already)
    sin_theta = 1.0 / np.cosh(fs.eta[rows])
    iso = np.abs((z0 - s.pv[event, 2]) * sin_theta) < ISO.z0sintheta_cut_mm
    return _Tracks(rows, event, pt, fs.eta[rows], fs.phi[rows], d0, z0, iso, of_row)


def _electrons(s: _Shard, photon_rows: np.ndarray) -> _Kinematics:
    """Electrons dressed with the photons nearest them (their cluster), energy smeared, found
    with the detector's efficiency; the electrons and their photons are marked used."""
    fs, det, n_events = s.fs, s.det, s.n_events
    rows = np.nonzero((s.absid == 11) & (fs.is_pileup == 0) & (fs.pt > 1.0))[0]
    energy = fs.e[rows].copy()
    dressing_of = np.full(len(photon_rows), -1, np.int64)
    if len(rows) and len(photon_rows):
        ia, ib = _pairs(fs.event[rows], _offsets(fs.event[photon_rows], n_events))
        dr2 = _dr2(fs.eta[rows][ia], fs.phi[rows][ia], fs.eta[photon_rows][ib], fs.phi[photon_rows][ib])
        close = dr2 < ELECTRON_DRESSING_CONE**2
        ia, ib, dr2 = ia[close], ib[close], dr2[close]
        order = np.lexsort((dr2, ib))  # nearest electron per photon
        sel = order[_first_of_groups(ib[order])]
        dressing_of[ib[sel]] = ia[sel]
        np.add.at(energy, ia[sel], fs.e[photon_rows][ib[sel]])
    eta, phi = fs.eta[rows], fs.phi[rows]
    energy = energy * det.electron_energy_response(energy, eta, s.rng)
    pt = np.maximum(energy, 0.0) / np.cosh(eta)
    ok = (pt > schema.GROUPS["electrons"].pt_cut_gev) & (s.b.uniform(len(rows)) < det.electron_efficiency(pt, eta))
    s.used[rows[ok]] = True
    dressed = dressing_of >= 0
    dressed[dressed] &= ok[dressing_of[dressed]]
    s.used[photon_rows[dressed]] = True
    s.calo_pt[photon_rows[dressed]] = 0.0  # part of the electron's cluster, not of its isolation
    return _Kinematics(rows[ok], fs.event[rows[ok]], pt[ok], eta[ok], phi[ok])


def _muons(s: _Shard) -> _Kinematics:
    """Muons, pT smeared with the detector's resolution, found with its efficiency."""
    fs, det = s.fs, s.det
    rows = np.nonzero((s.absid == 13) & (fs.is_pileup == 0))[0]
    eta, phi = fs.eta[rows], fs.phi[rows]
    pt = fs.pt[rows] * np.abs(1.0 + s.rng.normal(size=len(rows)) * det.muon_resolution(fs.pt[rows], eta))
    ok = (pt > schema.GROUPS["muons"].pt_cut_gev) & (s.b.uniform(len(rows)) < det.muon_efficiency(pt, eta))
    return _Kinematics(rows[ok], fs.event[rows[ok]], pt[ok], eta[ok], phi[ok])


def _recover_fsr(s: _Shard, photon_rows: np.ndarray, electrons: _Kinematics, muons: _Kinematics) -> None:
    """Final-state radiation recovered into the leptons as the experiment does it (their
    kinematics updated in place); the photons taken are marked used."""
    fs, det = s.fs, s.det
    rows = photon_rows[~s.used[photon_rows]]
    eta, phi = fs.eta[rows], fs.phi[rows]
    pt = np.maximum(
        fs.e[rows] * (1.0 + s.rng.normal(size=len(rows)) * det.ecal_resolution(fs.e[rows], eta)), 0.0
    ) / np.cosh(eta)
    ok = det.in_photon_acceptance(eta) & (pt > det.fsr.min_pt) & (np.abs(eta) < det.fsr.max_eta)
    rows, pt, eta, phi = rows[ok], pt[ok], eta[ok], phi[ok]
    iso = (
        s.calo_cone(fs.event[rows], eta, phi, rows, det.fsr.iso_cone) / np.maximum(pt, 1e-9)
        if np.isfinite(det.fsr.max_rel_iso)
        else np.zeros(len(rows))
    )
    leptons = {11: electrons, 13: muons}
    recovered, taken = recover_fsr(
        det.fsr,
        {k: (v.event, v.pt, v.eta, v.phi) for k, v in leptons.items()},
        fs.event[rows],
        pt,
        eta,
        phi,
        iso,
        s.n_events,
    )
    for k, lep in leptons.items():
        lep.pt, lep.eta, lep.phi = recovered[k]
    s.used[rows[taken]] = True
    s.calo_pt[rows[taken]] = 0.0  # part of the lepton, removed from the isolation sums


def _photons(s: _Shard, photon_rows: np.ndarray) -> _Kinematics:
    """The photons no electron or lepton took, energy smeared, calorimeter-isolated, found with
    the detector's efficiency; marked used."""
    fs, det = s.fs, s.det
    rows = photon_rows[~s.used[photon_rows]]
    eta, phi = fs.eta[rows], fs.phi[rows]
    energy = fs.e[rows] * (1.0 + s.rng.normal(size=len(rows)) * det.ecal_resolution(fs.e[rows], eta))
    pt = np.maximum(energy, 0.0) / np.cosh(eta)
    ok = (pt > schema.GROUPS["photons"].pt_cut_gev) & det.in_photon_acceptance(eta)
    rows, pt, eta, phi = rows[ok], pt[ok], eta[ok], phi[ok]
    event = fs.event[rows]
    iso = s.calo_cone(event, eta, phi, rows, det.photon_iso_cone)
    ok = (iso < det.photon_iso_ratio * pt) & (s.b.uniform(len(rows)) < det.photon_efficiency(pt, eta))
    s.used[rows[ok]] = True
    return _Kinematics(rows[ok], event[ok], pt[ok], eta[ok], phi[ok])


def _jet_ghosts(hard: Record, taus: dict[str, np.ndarray]) -> dict[int, tuple[np.ndarray, ...]]:
    """Ghost four-momenta of the b and c hadrons and the hadronic taus, by flavour (5, 4, 15)."""
    heavy = truth.heavy_hadrons(hard)
    ghosts = {
        flav: (hard.event[heavy[q]], hard.px[heavy[q]], hard.py[heavy[q]], hard.pz[heavy[q]], hard.e[heavy[q]])
        for flav, q in ((5, "b"), (4, "c"))
    }
    tg = np.hypot(taus["px"], taus["py"]) > truth.HEAVY_HADRON_MIN_PT_GEV
    ghosts[15] = (hard.event[taus["rows"]][tg], taus["px"][tg], taus["py"][tg], taus["pz"][tg], taus["e"][tg])
    return ghosts


def _jets(s: _Shard, taus: dict[str, np.ndarray], pf: dict[str, np.ndarray] | None) -> _Jets:
    """Anti-kt jets of the visible particles no other object took (particle-flow inputs where
    the detector has them, else smeared jets), ghost-matched flavour, track multiplicity, width
    and C1 from their tracks."""
    fs, det, n_events = s.fs, s.det, s.n_events
    j_in = np.nonzero(s.visible & ~s.used)[0]
    ghosts = _jet_ghosts(s.hard, taus)
    if pf is not None:  # particle-flow jets: each input measured by its own detector, no jet smearing
        j_in = j_in[pf["measured"][j_in]]
        jc = jetlib.cluster(
            fs.event[j_in],
            *(pf[c][j_in] for c in ("px", "py", "pz", "e")),
            n_events,
            ghosts,
            min_pt=JET_CLUSTER_MIN_PT_GEV,
        )
    else:
        jc = jetlib.cluster(
            fs.event[j_in],
            fs.px[j_in],
            fs.py[j_in],
            fs.pz[j_in],
            fs.e[j_in],
            n_events,
            ghosts,
            min_pt=JET_CLUSTER_MIN_PT_GEV,
        )
    jpt, jeta, jphi = _eta_phi(jc.px, jc.py, jc.pz)
    scale = np.ones(len(jpt)) if pf is not None else 1.0 + s.rng.normal(size=len(jpt)) * det.jet_resolution(jpt, jeta)
    scale = np.maximum(scale, 0.0)
    jpt_s = jpt * scale
    jmass = np.sqrt(np.maximum(jc.e**2 - jc.px**2 - jc.py**2 - jc.pz**2, 0.0)) * scale
    j_ok = (jpt_s > schema.GROUPS["jets"].pt_cut_gev) & (np.abs(jeta) < det.jet_eta)
    cons_jet_all = np.repeat(np.arange(len(jpt)), jc.n_constituents)
    cons_rows_all = j_in[jc.constituents]
    # keep the selected jets and their constituents
    idx = np.nonzero(j_ok)[0]
    jet_new = np.full(len(jpt), -1, np.int64)
    jet_new[idx] = np.arange(len(idx))
    ck = j_ok[cons_jet_all]
    cons_jet, cons_rows = jet_new[cons_jet_all[ck]], cons_rows_all[ck]
    eta, phi = jeta[idx], jphi[idx]
    has_track = s.tracks.of_row[cons_rows] >= 0
    n_trk = np.bincount(cons_jet[has_track], minlength=len(idx))
    # track width: sum pT_i dR_i / sum pT_i over the jet's tracks
    tr = cons_rows[has_track]
    dr_track = np.sqrt(_dr2(fs.eta[tr], fs.phi[tr], eta[cons_jet[has_track]], phi[cons_jet[has_track]]))
    sum_pt = np.bincount(cons_jet[has_track], fs.pt[tr], minlength=len(idx))
    width = np.bincount(cons_jet[has_track], fs.pt[tr] * dr_track, minlength=len(idx))
    with np.errstate(invalid="ignore", divide="ignore"):
        width = np.where(sum_pt > 0, width / np.where(sum_pt > 0, sum_pt, 1.0), -1.0)
    c1 = _track_c1(cons_jet[has_track], fs.pt[tr], fs.eta[tr], fs.phi[tr], len(idx), sum_pt)
    return _Jets(
        np.full(len(idx), -1),
        jc.event[idx],
        jpt_s[idx],
        eta,
        phi,
        jmass[idx],
        jc.flavour[idx],
        n_trk,
        width,
        c1,
        cons_jet,
        cons_rows,
        has_track,
        dr_track,
    )


def _taus(s: _Shard, taus: dict[str, np.ndarray], jets: _Jets) -> _Objects:
    """True hadronic taus (one or three prongs, pT smeared, found with the detector's
    efficiency) and jets faking them (by their core tracks within dR < 0.2)."""
    fs, det, b = s.fs, s.det, s.b
    tpt, teta, tphi = _eta_phi(taus["px"], taus["py"], taus["pz"])
    tpt = tpt * np.abs(1.0 + s.rng.normal(size=len(tpt)) * det.tau_res)
    nprong = taus["n_charged"]
    ok = (tpt > schema.GROUPS["taus"].pt_cut_gev) & (b.uniform(len(tpt)) < det.tau_efficiency(nprong, teta))
    ok &= (nprong == 1) | (nprong == 3)
    # jets -> taus: core tracks with pT > 1 GeV within dR < 0.2 of the jet axis
    cj, tr = jets.cons_jet, jets.cons_rows[jets.has_track]
    core = jets.has_track.copy()
    core[jets.has_track] = (fs.pt[tr] > TAU_CORE_TRACK_PT) & (jets.dr_track < TAU_CORE_CONE)
    n_core = np.bincount(cj[core], minlength=len(jets.pt))
    core_q = np.bincount(cj[core], fs.charge[jets.cons_rows[core]], minlength=len(jets.pt))
    p_fake = np.select([n_core == 1, (n_core >= 2) & (n_core <= 3)], [det.tau_fake[0], det.tau_fake[1]], 0.0)
    fake = (jets.flavour != 15) & det.in_tau_acceptance(jets.eta) & (b.uniform(len(jets.pt)) < p_fake)
    n_fake = int(fake.sum())
    fake_q = np.where(core_q[fake] != 0, np.sign(core_q[fake]), np.where(b.uniform(n_fake) < 0.5, 1, -1))
    n_prong = np.concatenate([nprong[ok], np.where(n_core[fake] == 1, 1, 3)])
    event = np.concatenate([s.hard.event[taus["rows"]][ok], jets.event[fake]])
    return _Objects(
        s.rng,
        event,
        np.full(len(event), -1),
        pt=np.concatenate([tpt[ok], jets.pt[fake]]),
        eta=np.concatenate([teta[ok], jets.eta[fake]]),
        phi=np.concatenate([tphi[ok], jets.phi[fake]]),
        charge=np.concatenate([taus["charge"][ok], fake_q]).astype(np.int8),
        is_1prong=(n_prong == 1).astype(np.int8),
        origin=np.concatenate([taus["origin"][ok], np.full(n_fake, schema.TRUTH_ORIGINS["fake"])]),
        n_prong=n_prong,
        n_neutral=np.concatenate([taus["n_neutral"][ok], np.zeros(n_fake, np.int64)]),
    )


def _met(
    s: _Shard, objects: tuple[_Kinematics, ...], jets: _Jets, pf: dict[str, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Missing transverse momentum (mex, mey, sumet, GeV, (n_events,)): minus the sum of the
    ``objects`` (electrons, muons, photons), the jets and the unclustered primary-vertex tracks;
    at an e+e- collider every measured particle against the beams (plus the missing
    four-momentum, sqrt(s) and the field as event fields)."""
    fs, t, n_events = s.fs, s.tracks, s.n_events
    if pf is not None:  # e+e-: everything measured, against the known initial state (the beams of the record)
        m = pf["measured"]
        visible = np.stack([np.bincount(fs.event[m], pf[c][m], minlength=n_events) for c in ("px", "py", "pz", "e")], 1)
        sumet = np.bincount(fs.event[m], np.hypot(pf["px"][m], pf["py"][m]), minlength=n_events)
        initial = beam_four_momenta(s.hard)
        extra = {
            **ee.missing_four_momentum(initial, visible),
            "sqrt_s": ee.signed_mass(initial),
            "bz": np.full(n_events, s.det.bfield_t),
        }
        return -visible[:, 0], -visible[:, 1], sumet, extra
    in_jet = np.zeros(len(fs.id), bool)
    in_jet[jets.cons_rows] = True
    soft = ~in_jet[t.rows] & t.iso
    for lep in objects[:2]:  # the leptons' own tracks are in the leptons
        own = t.of_row[lep.rows]
        soft[own[own >= 0]] = False
    s_idx = np.nonzero(soft)[0]
    mex, mey, sumet = np.zeros(n_events), np.zeros(n_events), np.zeros(n_events)
    parts = [(o.event, o.pt, o.phi) for o in (*objects, jets)] + [(t.event[s_idx], t.pt[s_idx], t.phi[s_idx])]
    for ev, pt, phi in parts:
        mex -= np.bincount(ev, pt * np.cos(phi), minlength=n_events)
        mey -= np.bincount(ev, pt * np.sin(phi), minlength=n_events)
        sumet += np.bincount(ev, pt, minlength=n_events)
    return mex, mey, sumet, {}


def _put_constituents(s: _Shard, jets: _Jets, jet_order: np.ndarray, layers: tuple[str, ...]) -> None:
    """Jet constituents grouped by (sorted) jet, descending pT, at most the registry's
    ``max_objects`` per jet; ``n`` keeps the full count."""
    fs, b = s.fs, s.b
    nj = len(jets.event)
    rank = np.empty(nj, np.int64)
    rank[jet_order] = np.arange(nj)
    cj = rank[jets.cons_jet]
    order = np.lexsort((-fs.pt[jets.cons_rows], cj))
    cj, cr = cj[order], jets.cons_rows[order]
    per_jet = np.bincount(cj, minlength=nj)
    slot = np.arange(len(cj)) - (np.cumsum(per_jet) - per_jet)[cj]
    cap = schema.GROUPS["constituents"].max_objects
    cr = cr[slot < cap]
    cons = _Objects(
        s.rng,
        fs.event[cr],
        cr,
        pt=fs.pt[cr],
        eta=fs.eta[cr],
        phi=fs.phi[cr],
        charge=fs.charge[cr],
        d0=s.d0[cr],
        z0=s.z0[cr],
    )
    for k, v in _values(cons, "constituents", layers, {}).items():
        b.objects[k] = v.astype(schema.field_of(k).np_dtype)
    b.counts["constituents"] = np.minimum(per_jet, cap).astype(np.int64)
    b.n["constituents"] = per_jet.astype(np.int64)


def reconstruct(
    hard: Record, fs: FinalState, pv: np.ndarray, det: Detector, rng: np.random.Generator, info: EventInfo
) -> RaggedEvents:
    """The detector-level events of one shard in the common schema (common, experiment and truth
    layers, jet constituents, track hits): one function per object type, in a fixed order (each
    takes particles the ones before it left)."""
    s = _Shard(hard, fs, pv, det, rng)
    n_events, t, hard_row = s.n_events, s.tracks, fs.record_row
    photon_rows = np.nonzero((fs.id == 22) & (fs.is_pileup == 0))[0]
    e = _electrons(s, photon_rows)
    m = _muons(s)
    _recover_fsr(s, photon_rows, e, m)
    g = _photons(s, photon_rows)
    tau_truth = truth.hadronic_taus(hard)
    pf = particle_flow(det, fs, rng) if det.hcal_res is not None else None
    jets = _jets(s, tau_truth, pf)
    taus = _taus(s, tau_truth, jets)
    # isolation: PF isolation sums charged and neutral hadrons and photons, reconstructed electrons are not in it
    pf_pt = s.calo_pt.copy()
    pf_pt[e.rows] = 0.0
    trk_iso = {
        k: s.track_cone(o.event, o.eta, o.phi, rows, ISO.cone) / o.pt
        for k, o, rows in (("e", e, e.rows), ("m", m, m.rows), ("g", g, np.full(len(g.rows), -1)))
    }
    mex, mey, sumet, ee_event = _met(s, (e, m, g), jets, pf)
    hits = track_hits(det, fs, t.rows) if det.hit_layers else None
    t_hits = np.bincount(hits["track"], minlength=len(t.rows)) if hits is not None else np.zeros(len(t.rows), np.int64)
    j_cons = np.bincount(jets.cons_jet, minlength=len(jets.pt))
    j_charge = np.bincount(jets.cons_jet, fs.charge[jets.cons_rows], minlength=len(jets.pt))

    # ============================ the groups, named as the registry's fields =====================
    ctx = _Context(det, rng, s.track_cone, s.calo_cone, pv, pf_pt)
    groups = {
        "event": _Objects(
            rng,
            np.arange(n_events),
            pvx=pv[:, 0],
            pvy=pv[:, 1],
            pvz=pv[:, 2],
            mu=np.full(n_events, info.mu),
            experiment_id=np.full(n_events, det.experiment_id),
            is_simulation=np.ones(n_events),
            process_id=info.process_id,
            weight=hard.weight,
            event_number=info.event_number,
            luminosity_block=info.luminosity_block,
            **ee_event,
        ),
        "met": _Objects(rng, np.arange(n_events), pt=np.hypot(mex, mey), phi=np.arctan2(mey, mex), sumet=sumet),
        "electrons": _Objects(
            rng,
            e.event,
            e.rows,
            pt=e.pt,
            eta=e.eta,
            phi=e.phi,
            charge=fs.charge[e.rows],
            trk_iso03=trk_iso["e"],
            origin=truth.origin(hard, hard_row[e.rows]),
        ),
        "muons": _Objects(
            rng,
            m.event,
            m.rows,
            pt=m.pt,
            eta=m.eta,
            phi=m.phi,
            charge=fs.charge[m.rows],
            trk_iso03=trk_iso["m"],
            origin=truth.origin(hard, hard_row[m.rows]),
        ),
        "taus": taus,
        "photons": _Objects(
            rng,
            g.event,
            g.rows,
            pt=g.pt,
            eta=g.eta,
            phi=g.phi,
            trk_iso03=trk_iso["g"],
            origin=truth.origin(hard, hard_row[g.rows]),
        ),
        "jets": _Objects(
            rng,
            jets.event,
            jets.rows,
            pt=jets.pt,
            eta=jets.eta,
            phi=jets.phi,
            mass=jets.mass,
            n_trk=jets.n_trk,
            flavour=jets.flavour,
            width=jets.width,
            c1=jets.c1,
            n_particles=j_cons,
            jet_charge=j_charge,
        ),
        "tracks": _Objects(
            rng,
            t.event,
            t.rows,
            pt=t.pt,
            eta=t.eta,
            phi=t.phi,
            d0=t.d0,
            z0=t.z0,
            is_pileup=fs.is_pileup[t.rows],
            charge=fs.charge[t.rows],
            pdg=fs.id[t.rows],
            n_hits=t_hits,
        ),
    }
    layers = ("common", det.layer, "truth")
    providers = _providers(det, ctx)
    orders = {}
    for name, obj in groups.items():
        vals = _values(obj, name, layers, providers.get(name, {}))
        if schema.GROUPS[name].kind == "event":
            s.b.event.update({k: v.astype(schema.field_of(k).np_dtype) for k, v in vals.items()})
        else:
            orders[name] = s.b.put(name, obj.event, obj.pt, vals)
    if det.hit_layers:
        _put_hits(s.b, hits, len(t.rows), orders["tracks"], layers, providers.get("hits", {}))
    _put_constituents(s, jets, orders["jets"], layers)
    b = s.b
    return RaggedEvents(n_events, b.event, b.objects, b.counts, b.n)


def particle_flow(det: Detector, fs: FinalState, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every final-state particle as a particle-flow detector (``det.hcal_res``) measures it, over the
    rows of ``fs``: ``measured`` (charged particles the tracker finds, with their pT smeared by the
    tracking resolution; neutral ones in the calorimeter, photons with the ECAL's and hadrons with the
    HCAL's energy resolution, direction kept; neutrinos never) and the measured four-momenta."""
    absid = np.abs(fs.id)
    charged = fs.charge != 0
    neutral = ~charged & ~np.isin(absid, truth.NEUTRINOS) & (np.abs(fs.eta) < det.calo_eta)
    tracked = charged & (rng.random(len(fs.id)) < det.track_efficiency(fs.pt, fs.eta))
    px, py, pz, e = (getattr(fs, c).astype(np.float64).copy() for c in ("px", "py", "pz", "e"))
    rows = np.flatnonzero(tracked)
    k = np.abs(1.0 + rng.normal(size=len(rows)) * det.track_pt_resolution(fs.pt[rows], fs.eta[rows]))
    m2 = np.maximum(e[rows] ** 2 - px[rows] ** 2 - py[rows] ** 2 - pz[rows] ** 2, 0.0)
    px[rows], py[rows], pz[rows] = px[rows] * k, py[rows] * k, pz[rows] * k
    e[rows] = np.sqrt(px[rows] ** 2 + py[rows] ** 2 + pz[rows] ** 2 + m2)
    rows = np.flatnonzero(neutral)
    photon = absid[rows] == 22
    rel = np.where(photon, det.ecal_resolution(e[rows], fs.eta[rows]), det.hcal_resolution(e[rows], fs.eta[rows]))
    k = np.maximum(1.0 + rng.normal(size=len(rows)) * rel, 0.0)
    for arr in (px, py, pz, e):
        arr[rows] *= k
    return {"measured": tracked | neutral, "px": px, "py": py, "pz": pz, "e": e}


def beam_four_momenta(hard: Record) -> np.ndarray:
    """(n_events, 4) sum of the two incoming beam particles of each event's record (GeV): the
    initial state, including the beam energy spread Pythia drew."""
    beams = np.abs(hard.status) == truth.BEAM_STATUS
    ev = hard.event[beams]
    return np.stack(
        [np.bincount(ev, getattr(hard, c)[beams], minlength=hard.n_events) for c in ("px", "py", "pz", "e")], 1
    )


def track_hits(det: Detector, fs: FinalState, t_rows: np.ndarray) -> dict[str, np.ndarray]:
    """Crossings of the reconstructed tracks' true helices with ``det.hit_layers`` (see
    :func:`treasure_hf.data.helix.cylinder_crossings`; ``track`` indexes ``t_rows``)."""
    return cylinder_crossings(
        fs.pt[t_rows],
        fs.eta[t_rows],
        fs.phi[t_rows],
        fs.charge[t_rows],
        fs.e[t_rows],
        det.bfield_t,
        det.hit_layers,
        fs.vz[t_rows],
        np.hypot(fs.vx[t_rows], fs.vy[t_rows]),
    )


def _put_hits(
    b: _Builder,
    hits: dict[str, np.ndarray],
    n_tracks: int,
    track_order: np.ndarray,
    layers: tuple[str, ...],
    providers: dict,
) -> None:
    """Store the hits (``track`` indexes the tracks before sorting) grouped by the sorted tracks,
    inside out, at most the registry's ``max_objects`` per track (``n`` keeps the full count)."""
    rank = np.empty(n_tracks, np.int64)
    rank[track_order] = np.arange(n_tracks)
    parent = rank[hits["track"]]
    order = np.lexsort((hits["layer"], parent))
    parent = parent[order]
    per_track = np.bincount(parent, minlength=n_tracks)
    slot = np.arange(len(parent)) - (np.cumsum(per_track) - per_track)[parent]
    keep = order[slot < schema.GROUPS["hits"].max_objects]
    x, y, z = hits["x"][keep], hits["y"][keep], hits["z"][keep]
    r = np.hypot(x, y)
    obj = _Objects(
        None,
        np.zeros(len(keep), np.int64),
        None,
        eta=np.arcsinh(z / r),
        phi=np.arctan2(y, x),
        energy=np.zeros(len(keep)),
        layer=hits["layer"][keep],
        time=hits["time"][keep],
        r=r,
        z=z,
    )
    for k, v in _values(obj, "hits", layers, providers).items():
        b.objects[k] = v.astype(schema.field_of(k).np_dtype)
    b.counts["hits"] = np.minimum(per_track, schema.GROUPS["hits"].max_objects).astype(np.int64)
    b.n["hits"] = per_track.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# filling the registry's fields
# ---------------------------------------------------------------------------------------------


class _Objects:
    """One group's reconstructed objects: attributes named like the registry's common and truth
    fields (``pt``, ``origin``, ...) plus helpers; ``rows`` are final-state rows (-1: none)."""

    def __init__(self, rng: np.random.Generator, event: np.ndarray, rows: np.ndarray | None = None, **values):
        self.rng, self.event = rng, event
        self.rows = np.full(len(event), -1) if rows is None else rows
        self.n = len(event)
        self.__dict__.update(values)
        self._draws: dict[str, np.ndarray] = {}
        self._cache: dict[str, object] = {}

    def draw(self, tag: str) -> np.ndarray:
        """One uniform number per object, shared by every field that asks for ``tag`` (nested working points)."""
        if tag not in self._draws:
            self._draws[tag] = self.rng.random(self.n)
        return self._draws[tag]

    def cached(self, tag: str, make):
        if tag not in self._cache:
            self._cache[tag] = make()
        return self._cache[tag]


@dataclass
class _Context:
    det: Detector
    rng: np.random.Generator
    track_cone: object
    calo_cone: object
    pv: np.ndarray
    pf_pt: np.ndarray

    def trk(self, o: _Objects, cone, min_pt: float = ISO.pt_floor_gev) -> np.ndarray:
        return self.track_cone(o.event, o.eta, o.phi, o.rows, cone, min_pt)

    def calo(self, o: _Objects, cone: float) -> np.ndarray:
        return self.calo_cone(o.event, o.eta, o.phi, o.rows, cone)

    def pf(self, o: _Objects, cone: float) -> np.ndarray:
        """PF-style isolation: visible particles other than reconstructed electrons, muons and FSR photons."""
        return self.calo_cone(o.event, o.eta, o.phi, o.rows, cone, self.pf_pt)


def _values(obj: _Objects, group: str, layers: tuple[str, ...], providers: dict) -> dict[str, np.ndarray]:
    """Arrays of every declared field of ``group`` in ``layers``: common and truth fields are the
    object's attributes of the same name, experiment fields come from ``providers`` (the field's
    missing value, NaN or -1, without one)."""
    out = {}
    for layer in layers:
        for f in schema.fields(layer, group):
            k = schema.key(layer, group, f.name)
            if layer in schema.EXPERIMENT_LAYERS.values():
                fn = providers.get(f.name)
                out[k] = np.asarray(fn(obj) if fn else np.full(obj.n, f.missing_value))
            else:
                out[k] = np.asarray(getattr(obj, f.name))
            if out[k].ndim == 0:
                out[k] = np.full(obj.n, out[k])
    return out


def _levels(o: _Objects, table: dict[int, float], tag: str) -> np.ndarray:
    """Category from nested working points: the highest level whose efficiency exceeds the draw."""
    draw = o.draw(tag)
    out = np.zeros(o.n)
    for level, eff in sorted(table.items()):
        out[draw < eff] = level
    return out


def _flags(table: dict[str, float], tag: str) -> dict:
    return {name: (lambda o, eff=eff: (o.draw(tag) < eff).astype(np.float32)) for name, eff in table.items()}


def _providers(det: Detector, ctx: _Context | None) -> dict[str, dict]:
    """Experiment-layer field -> function of the group's objects. ``ctx`` may be None when only the
    names are wanted (the functions are not called then)."""

    def tags(o: _Objects, tagger: str) -> dict[str, np.ndarray]:
        return o.cached(tagger, lambda: det.taggers[tagger].scores(o.flavour, ctx.rng))

    ids = {"event_number": lambda o: o.event_number, "run_number": lambda o: np.full(o.n, det.mc_run_number)}
    if det.layer == "atlas":
        iso = {
            "topoetcone20": lambda o: ctx.calo(o, 0.2),
            "topoetcone40": lambda o: ctx.calo(o, 0.4),
            "ptvarcone30": lambda o: ctx.trk(o, np.minimum(0.3, PTVARCONE_KT_GEV / o.pt), PTVARCONE_TRACK_PT),
            "ptcone20": lambda o: ctx.trk(o, 0.2, PTVARCONE_TRACK_PT),
            "mass": lambda o: np.full(o.n, ELECTRON_MASS_GEV),
        }

        def ndof(o: _Objects) -> np.ndarray:
            return o.cached("ndof", lambda: np.where(np.abs(o.eta) < ATLAS_TRT_ETA, ATLAS_NDOF_TRT, ATLAS_NDOF_SILICON))

        scores = {
            f"{name}_{cls}": (lambda o, name=name, cls=cls: tags(o, name)[cls])
            for name in det.taggers
            for cls in ("pb", "pc", "pu")
        }

        def in_id(o: _Objects) -> np.ndarray:
            return np.abs(o.eta) < det.tracker_eta

        quality = {v: i for i, v in enumerate(("Tight", "Medium", "Loose"))}
        return {
            "electrons": {**iso, **_flags(ATLAS_ELECTRON_ID, "id")},
            "muons": {
                **iso,
                "quality": lambda o: np.select(
                    [o.draw("id") < ATLAS_MUON_QUALITY["Tight"], o.draw("id") < ATLAS_MUON_QUALITY["Medium"]],
                    [quality["Tight"], quality["Medium"]],
                    quality["Loose"],
                ),
                "muonType": lambda o: np.where(in_id(o), 0, 1),  # xAOD Combined = 0, MuonStandAlone = 1
                "passIDCuts": lambda o: in_id(o).astype(np.float32),
                "passPresel": lambda o: np.ones(o.n),
            },
            # NNDecayMode: 0 1p0n, 1 1p1n, 2 1pXn, 3 3p0n, 4 3pXn
            "taus": {
                "NNDecayMode": lambda o: np.where(
                    o.n_prong == 1, np.minimum(o.n_neutral, 2), 3 + np.minimum(o.n_neutral, 1)
                )
            },
            "photons": {
                **iso,
                "isLoose": lambda o: np.ones(o.n),
                "isTight": lambda o: (o.draw("id") < ATLAS_PHOTON_TIGHT).astype(np.float32),
                "isCleaning": lambda o: np.ones(o.n),
                "author": lambda o: np.full(o.n, 4),
            },  # xAOD egammaParameters::AuthorPhoton
            "jets": {
                **scores,
                "QG_nTracks": lambda o: o.n_trk,
                "QG_tracksWidth": lambda o: o.width,
                "QG_tracksC1": lambda o: o.c1,
            },
            "tracks": {
                "q0verP": lambda o: o.charge / (o.pt * np.cosh(o.eta)),
                "nDoF": ndof,
                "chiSquared": lambda o: ctx.rng.chisquare(ndof(o)),
            },
            "event": {**ids, "mcChannelNumber": lambda o: o.process_id},
        }
    if det.layer == "edm4hep":
        return _edm4hep_providers(det, ctx)
    rel = {
        "pfRelIso03_all": lambda o: ctx.pf(o, 0.3) / o.pt,
        "pfRelIso04_all": lambda o: ctx.pf(o, 0.4) / o.pt,
        "mass": lambda o: np.full(o.n, ELECTRON_MASS_GEV),
    }

    def egamma(table: dict[int, float]) -> dict:
        return {"cutBased": lambda o: _levels(o, table, "id")}

    def tagger(o: _Objects) -> dict[str, np.ndarray]:
        return tags(o, next(iter(det.taggers)))

    mva = {"WP80": lambda o: (o.draw("mva") < 0.80 / 0.90).astype(np.float32), "WP90": lambda o: np.ones(o.n)}
    return {
        "electrons": {**rel, **egamma(CMS_ELECTRON_CUTBASED), **{f"mvaIso_{wp}": fn for wp, fn in mva.items()}},
        "muons": {
            **rel,
            **_flags(CMS_MUON_ID, "id"),
            "isGlobal": lambda o: np.ones(o.n),
            "isTracker": lambda o: (np.abs(o.eta) < det.tracker_eta).astype(np.float32),
        },
        # NanoAOD (HPS) decayMode = 5 (prongs - 1) + pi0s: 0, 1, 2 (one prong), 10, 11 (three prongs)
        "taus": {
            "decayMode": lambda o: np.where(o.n_prong == 1, np.minimum(o.n_neutral, 2), 10 + np.minimum(o.n_neutral, 1))
        },
        "photons": {**rel, **egamma(CMS_PHOTON_CUTBASED), **{f"mvaID_{wp}": fn for wp, fn in mva.items()}},
        "jets": {
            "btagDeepFlavB": lambda o: tagger(o)["pb"],
            "btagDeepFlavCvL": lambda o: tagger(o)["pc"] / (tagger(o)["pc"] + tagger(o)["pu"]),
            "jetId": lambda o: np.full(o.n, 6),
        },
        "tracks": {
            "charge": lambda o: o.charge,
            "fromPV": lambda o: np.select(
                [np.abs(o.z0 - ctx.pv[o.event, 2]) < cut for cut in (0.1, 1.0, 3.0)], [3, 2, 1], 0
            ),
            # PF candidate type: electron and muon ids kept, other charged particles as pions
            "pdgId": lambda o: np.where(np.isin(np.abs(o.pdg), (11, 13)), o.pdg, 211 * np.sign(o.charge)),
        },
        "event": {**ids, "luminosity_block": lambda o: np.full(o.n, o.luminosity_block)},
    }


ISOLATION_VAR_CONE = 0.5
"""The Delphes IDEA card's lepton and photon isolation: visible particles with pT > 0.5 GeV in
dR < 0.5, over the object's pT (ElectronIsolation, MuonIsolation, PhotonIsolation: DeltaRMax 0.5)."""


def _edm4hep_providers(det: Detector, ctx: _Context | None) -> dict[str, dict]:
    """edm4hep-layer fields a parametric detector gives (PDG ids of the particles it reconstructs,
    Delphes-style isolation, cluster energies, helix parameters, the e+e- event quantities); the
    particle-ID likelihoods, cluster shapes, chi2 and dN/dx need a full simulation (missing)."""
    iso = {"isolation_var": lambda o: ctx.calo(o, ISOLATION_VAR_CONE) / o.pt}
    energy = {"cluster_energy": lambda o: o.pt * np.cosh(o.eta)}
    event = ("sqrt_s", "bz", "missing_e", "missing_px", "missing_py", "missing_pz", "missing_mass")
    return {
        "electrons": {"pdg": lambda o: -11 * np.sign(o.charge), **iso, **energy},
        "muons": {"pdg": lambda o: -13 * np.sign(o.charge), **iso},
        "photons": {"pdg": lambda o: np.full(o.n, 22), **iso, **energy},
        "jets": {"n_particles": lambda o: o.n_particles, "charge": lambda o: o.jet_charge},
        "tracks": {
            "charge": lambda o: o.charge,
            "omega": lambda o: omega_from_pt(o.pt, o.charge, det.bfield_t),
            "tan_lambda": lambda o: np.sinh(o.eta),
            "n_hits": lambda o: o.n_hits,
            "pt_rel_error": lambda o: det.track_pt_resolution(o.pt, o.eta),
        },
        "hits": {"kind": lambda o: np.zeros(o.n), "r": lambda o: o.r, "z": lambda o: o.z},
        "event": {
            "event_number": lambda o: o.event_number,
            "run_number": lambda o: np.full(o.n, det.mc_run_number),
            **{name: (lambda o, name=name: getattr(o, name)) for name in event},
        },
    }


def missing_fields(det: Detector) -> list[str]:
    """Experiment-layer keys that this parametric detector cannot provide (filled with NaN)."""
    providers = _providers(det, None)
    return [
        schema.key(det.layer, g, f.name)
        for g in schema.GROUPS
        for f in schema.fields(det.layer, g)
        if f.name not in providers.get(g, {})
    ]
