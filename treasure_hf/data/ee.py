"""e+e- kinematics shared by the EDM4hep converter, the generator's FCC-ee-like detector and the
analyses: the missing four-momentum against a known initial state, and the recoil mass.

Four-momenta are arrays ``(..., 4)`` of (px, py, pz, E) in GeV.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def signed_mass(p4: np.ndarray) -> np.ndarray:
    """sign(m^2) sqrt(|m^2|) of four-momenta (..., 4) [GeV]: negative where resolution pushes m^2 below 0."""
    p4 = np.asarray(p4, np.float64)
    m2 = p4[..., 3] ** 2 - p4[..., 0] ** 2 - p4[..., 1] ** 2 - p4[..., 2] ** 2
    return np.sign(m2) * np.sqrt(np.abs(m2))


def head_on(sqrt_s: np.ndarray | float) -> np.ndarray:
    """Initial four-momenta (..., 4) of head-on collisions at ``sqrt_s`` GeV: (0, 0, 0, sqrt(s))."""
    s = np.atleast_1d(np.asarray(sqrt_s, np.float64))
    out = np.zeros((*s.shape, 4))
    out[..., 3] = s
    return out


def missing_four_momentum(initial: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
    """``initial - visible`` (both (n, 4)) as the registry's ``missing_*`` fields: ``missing_px``,
    ``missing_py``, ``missing_pz``, ``missing_e`` and ``missing_mass`` (signed, see :func:`signed_mass`)."""
    miss = np.asarray(initial, np.float64) - np.asarray(visible, np.float64)
    return {
        "missing_px": miss[:, 0],
        "missing_py": miss[:, 1],
        "missing_pz": miss[:, 2],
        "missing_e": miss[:, 3],
        "missing_mass": signed_mass(miss),
    }


def recoil_mass(initial: np.ndarray, system: np.ndarray) -> np.ndarray:
    """Mass [GeV] recoiling against ``system`` (n, 4) given the ``initial`` state (n, 4) or (4,):
    in e+e- -> ZH with Z -> l+l-, the recoil against the dilepton peaks at the Higgs mass."""
    return signed_mass(np.asarray(initial, np.float64) - np.asarray(system, np.float64))


def p4_from_pt_eta_phi(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray | float = 0.0) -> np.ndarray:
    """(..., 4) four-momenta from pT [GeV], eta, phi [rad] and mass [GeV]."""
    pt, eta, phi = (np.asarray(x, np.float64) for x in (pt, eta, phi))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + np.asarray(mass, np.float64) ** 2)
    return np.stack([px, py, pz, e], -1)


LEPTON_MASSES_GEV = {"electrons": 0.000511, "muons": 0.105658}
"""Electron and muon masses (PDG Review of Particle Physics)."""
Z_MASS_GEV = 91.1876
"""The Z boson mass (PDG Review of Particle Physics)."""


def z_recoil(arrays: Mapping[str, np.ndarray], initial: np.ndarray, max_leptons: int = 4) -> dict[str, np.ndarray]:
    """Per event, the opposite-sign same-flavour pair of the ``max_leptons`` leading electrons or
    muons (padded ``common/*`` arrays, (n_events, max_objects)) whose mass is nearest the Z's, and the
    mass recoiling against it given the ``initial`` four-momentum ((n_events, 4) or (4,), GeV):
    ``mll``, ``recoil`` [GeV] (NaN without a pair) and ``flavour`` (11, 13, 0 without a pair)."""
    n = len(arrays["common/event/experiment_id"])
    best_mll, best_recoil, flavour = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int64)
    initial = np.broadcast_to(np.asarray(initial, np.float64), (n, 4))
    for group, pdg in (("electrons", 11), ("muons", 13)):
        k = min(max_leptons, arrays[f"common/{group}/mask"].shape[1])
        mask, q = arrays[f"common/{group}/mask"][:, :k], arrays[f"common/{group}/charge"][:, :k]
        p4 = p4_from_pt_eta_phi(
            *(arrays[f"common/{group}/{f}"][:, :k] for f in ("pt", "eta", "phi")), LEPTON_MASSES_GEV[group]
        )
        for i in range(k):
            for j in range(i + 1, k):
                pair = p4[:, i] + p4[:, j]
                mll = signed_mass(pair)
                ok = mask[:, i] & mask[:, j] & (q[:, i] * q[:, j] < 0)
                better = ok & ~(np.abs(best_mll - Z_MASS_GEV) <= np.abs(mll - Z_MASS_GEV))
                best_mll = np.where(better, mll, best_mll)
                best_recoil = np.where(better, recoil_mass(initial, pair), best_recoil)
                flavour = np.where(better, pdg, flavour)
    return {"mll": best_mll, "recoil": best_recoil, "flavour": flavour}


OBSERVABLES: tuple[str, ...] = (
    "recoil",
    "mll",
    "missing_mass",
    "missing_e",
    "missing_pt",
    "n_leptons",
    "n_jets",
    "mjj",
    "jj_recoil",
)
"""The engineered e+e- observables of :func:`observables` (GeV where they have a unit)."""


def observables(arrays: Mapping[str, np.ndarray], initial: np.ndarray) -> dict[str, np.ndarray]:
    """Per event (padded common and edm4hep arrays): the Z -> ll candidate's mass and recoil
    (:func:`z_recoil`; -1 without one), the missing mass, energy and pT, the numbers of leptons and
    jets, and the two leading jets' mass and recoil (-1 with fewer than two) against ``initial``."""
    z = z_recoil(arrays, initial)
    n = len(z["mll"])
    jets = p4_from_pt_eta_phi(
        *(arrays[f"common/jets/{f}"][:, :2] for f in ("pt", "eta", "phi")), arrays["common/jets/mass"][:, :2]
    )
    two = arrays["common/jets/mask"][:, :2].all(1) if arrays["common/jets/mask"].shape[1] >= 2 else np.zeros(n, bool)
    jj = jets.sum(1) if jets.shape[1] == 2 else np.zeros((n, 4))
    initial = np.broadcast_to(np.asarray(initial, np.float64), (n, 4))
    return {
        "recoil": np.nan_to_num(z["recoil"], nan=-1.0),
        "mll": np.nan_to_num(z["mll"], nan=-1.0),
        "missing_mass": arrays["edm4hep/event/missing_mass"].astype(np.float64),
        "missing_e": arrays["edm4hep/event/missing_e"].astype(np.float64),
        "missing_pt": arrays["common/met/pt"].astype(np.float64),
        "n_leptons": (arrays["common/electrons/mask"].sum(1) + arrays["common/muons/mask"].sum(1)).astype(float),
        "n_jets": arrays["common/jets/mask"].sum(1).astype(float),
        "mjj": np.where(two, signed_mass(jj), -1.0),
        "jj_recoil": np.where(two, recoil_mass(initial, jj), -1.0),
    }
