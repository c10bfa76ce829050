"""Generator truth from the Pythia record: hadron flavour from PDG codes, ancestry of final-state
particles (prompt, from a b/c hadron, from a tau, from a light hadron) and the heavy-flavour
hadrons and hadronic taus used as ghosts for jet flavour labelling.

All functions are vectorised over the rows of a :class:`~.pythia.Record`.
"""

from __future__ import annotations

import numpy as np

from .. import schema
from .pythia import Record

MAX_DEPTH = 1000
"""Longest ancestry chain walked (Pythia's records hold a few dozen generations)."""

HEAVY_HADRON_MIN_PT_GEV = 5.0
"""B/C hadrons (and hadronic taus) used as ghosts need pT > 5 GeV, the ATLAS truth-labelling
convention (ATLAS, Eur. Phys. J. C 79 (2019) 970, Sec. 2)."""

NEUTRINOS = (12, 14, 16)
BEAM_STATUS = 12
"""Pythia's status code of the incoming beam particles (protons are hadrons, but not ancestors
that make a particle non-prompt)."""


def quark_content(ids: np.ndarray, quark: int) -> np.ndarray:
    """True for hadrons whose PDG code holds ``quark`` (5 = b, 4 = c) among its quark digits."""
    a = np.abs(ids)
    hadron = is_hadron(ids)
    digits = ((a // 10) % 10 == quark) | ((a // 100) % 10 == quark) | ((a // 1000) % 10 == quark)
    return hadron & digits


def is_hadron(ids: np.ndarray) -> np.ndarray:
    """Mesons and baryons by PDG code (not quarks, leptons, bosons, diquarks or specials)."""
    a = np.abs(ids)
    core = a % 10000
    return (a < 1_000_000) & (core >= 100) & ((a // 10) % 10 != 0) & ~((core >= 1000) & ((a // 10) % 10 == 0))


def b_hadron(ids: np.ndarray) -> np.ndarray:
    return quark_content(ids, 5)


def c_hadron(ids: np.ndarray) -> np.ndarray:
    return quark_content(ids, 4) & ~quark_content(ids, 5)


def classify(rec: Record) -> dict[str, np.ndarray]:
    """Per record row: ``hadron`` (not a beam particle), ``b`` (b hadron), ``c`` (c hadron without
    b), ``tau``; computed once per record and cached on it."""
    cached = getattr(rec, "_truth_flags", None)
    if cached is not None:
        return cached
    a = np.abs(rec.id)
    hadron = is_hadron(rec.id)
    d1, d2, d3 = (a // 10) % 10, (a // 100) % 10, (a // 1000) % 10
    b = hadron & ((d1 == 5) | (d2 == 5) | (d3 == 5))
    c = hadron & ~b & ((d1 == 4) | (d2 == 4) | (d3 == 4))
    flags = {"hadron": hadron & (np.abs(rec.status) != BEAM_STATUS), "b": b, "c": c, "tau": a == 15}
    rec._truth_flags = flags
    return flags


def ancestry(rec: Record, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Walk ``mother1`` from each of ``rows`` up to the beams and flag what was met on the way:
    ``b`` (a b hadron), ``c`` (a c hadron), ``tau`` (a tau lepton), ``hadron`` (any hadron but the
    beam protons)."""
    table = classify(rec)
    n = len(rows)
    flags = {k: np.zeros(n, bool) for k in table}
    current = rec.mother1[rows].copy()
    active = current >= 0
    for _ in range(MAX_DEPTH):
        if not active.any():
            break
        idx = np.nonzero(active)[0]
        anc = current[idx]
        for k, v in table.items():
            flags[k][idx] |= v[anc]
        nxt = rec.mother1[anc]
        current[idx] = nxt
        active[idx] = nxt >= 0
    return flags


def origin(rec: Record, rows: np.ndarray, *, count_taus: bool = True) -> np.ndarray:
    """``truth/*/origin`` codes (:data:`schema.TRUTH_ORIGINS`) of final-state particles: from a b or
    c hadron -> heavy_flavour; else from a tau -> tau; else from any other hadron (pi0 -> gamma,
    Dalitz decays) -> fake; else prompt (from the hard process, W/Z/H, or radiation off it)."""
    o = schema.TRUTH_ORIGINS
    f = ancestry(rec, rows)
    out = np.full(len(rows), o["prompt"], np.int8)
    out[f["hadron"]] = o["fake"]
    if count_taus:  # off for taus themselves, whose earlier copies are taus
        out[f["tau"] & ~(f["b"] | f["c"])] = o["tau"]
    out[f["b"] | f["c"]] = o["heavy_flavour"]
    return out


def _has_child(rec: Record, child_mask: np.ndarray) -> np.ndarray:
    """For every row, whether some row flagged by ``child_mask`` names it as ``mother1``."""
    out = np.zeros(len(rec.id), bool)
    m = rec.mother1[child_mask]
    out[m[m >= 0]] = True
    return out


def heavy_hadrons(rec: Record) -> dict[str, np.ndarray]:
    """Rows of the weakly decaying (last in their chain) b and c hadrons with pT > 5 GeV: ``{"b": rows, "c": rows}``."""
    pt = rec.pt
    out = {}
    table = classify(rec)
    for name in ("b", "c"):
        flag = table[name]
        last = flag & ~_has_child(rec, flag)
        out[name] = np.nonzero(last & (pt > HEAVY_HADRON_MIN_PT_GEV))[0]
    return out


def hadronic_taus(rec: Record) -> dict[str, np.ndarray]:
    """Last-copy taus decaying to hadrons: ``rows``, visible 4-momentum ``px py pz e`` (sum of the
    direct decay products without neutrinos), ``n_charged`` direct charged products and
    ``n_neutral`` direct neutral (pi0, ...) products; ``origin`` code of the tau itself."""
    tau = np.abs(rec.id) == 15
    last = tau & ~_has_child(rec, tau)
    rows = np.nonzero(last)[0]
    # direct products: every row whose mother1 is one of these taus
    parent = rec.mother1
    child = np.nonzero((parent >= 0) & last[np.maximum(parent, 0)])[0]
    slot = np.searchsorted(rows, parent[child])
    a = np.abs(rec.id[child])
    leptonic = np.zeros(len(rows), bool)
    np.logical_or.at(leptonic, slot, (a == 11) | (a == 13))
    visible = ~np.isin(a, NEUTRINOS)
    out = {"rows": rows}
    for c in ("px", "py", "pz", "e"):
        s = np.zeros(len(rows))
        np.add.at(s, slot[visible], getattr(rec, c)[child][visible])
        out[c] = s
    charged = visible & (rec.charge[child] != 0)
    out["n_charged"] = np.bincount(slot[charged], minlength=len(rows))
    out["n_neutral"] = np.bincount(slot[visible & ~charged], minlength=len(rows))
    keep = ~leptonic & (out["n_charged"] > 0)
    out = {k: v[keep] for k, v in out.items()}
    out["origin"] = origin(rec, out["rows"], count_taus=False)
    out["charge"] = np.sign(-rec.id[out["rows"]]).astype(np.int8)  # tau- is id 15
    return out
