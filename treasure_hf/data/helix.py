"""Charged tracks in a solenoid: pT from the helix curvature, and where a helix crosses the
cylindrical layers of a tracker (mm, GeV, tesla, ns)."""

from __future__ import annotations

import numpy as np

GEV_PER_TESLA_MM = 0.299792458e-3
"""pT [GeV] = 0.299792458 B [T] R [m] for a unit charge (c = 299 792 458 m/s); with the radius in mm."""
C_MM_PER_NS = 299.792458
"""The speed of light in mm/ns."""


def pt_from_omega(omega: np.ndarray, bz: np.ndarray | float) -> np.ndarray:
    """pT [GeV] of tracks of curvature ``omega`` [1/mm] in a field ``bz`` [T]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return GEV_PER_TESLA_MM * np.abs(bz) / np.abs(omega)


def omega_from_pt(pt: np.ndarray, charge: np.ndarray, bz: float) -> np.ndarray:
    """Signed curvature [1/mm] of tracks of ``pt`` [GeV] and ``charge`` [e] (the EDM4hep convention:
    the sign of the charge, for a field along +z)."""
    return np.sign(charge) * GEV_PER_TESLA_MM * abs(bz) / np.maximum(pt, 1e-9)


def cylinder_crossings(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    charge: np.ndarray,
    energy: np.ndarray,
    bz: float,
    layers: tuple[tuple[float, float], ...],
    vz: np.ndarray | None = None,
    r0: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Outgoing crossings of helices from the beam line (at ``vz`` [mm] along it) with barrel layers
    ``(radius, half-length)`` [mm], innermost first: flat ``track`` (row of the input), ``layer``
    (the crossing's rank along the track), ``x``, ``y``, ``z`` [mm] and ``time`` [ns] (path length
    over beta c, with beta = p / E). A layer is crossed when the helix reaches its radius (it does
    not loop inside it), within its half-length, and outside the particle's production radius ``r0``
    [mm] (a decay product is born inside the tracker); the displacement of the production point is
    otherwise neglected."""
    pt, eta, phi, charge, energy = (np.asarray(v, np.float64) for v in (pt, eta, phi, charge, energy))
    vz = np.zeros(len(pt)) if vz is None else np.asarray(vz, np.float64)
    r0 = np.zeros(len(pt)) if r0 is None else np.asarray(r0, np.float64)
    rho = pt / (GEV_PER_TESLA_MM * abs(bz))  # helix radius [mm]
    beta = pt * np.cosh(eta) / np.maximum(energy, 1e-12)
    out = {k: [] for k in ("track", "layer", "x", "y", "z", "time")}
    count = np.zeros(len(pt), np.int64)
    for radius, half_length in layers:
        turn = 2.0 * np.arcsin(np.clip(radius / np.maximum(2.0 * rho, 1e-12), 0.0, 1.0))  # bending angle
        arc = rho * turn  # transverse path length
        z = vz + arc * np.sinh(eta)
        rows = np.flatnonzero((2.0 * rho > radius) & (np.abs(z) < half_length) & (r0 < radius))
        azimuth = phi[rows] - np.sign(charge[rows]) * turn[rows] / 2.0  # positive charges bend clockwise in +Bz
        out["track"].append(rows)
        out["layer"].append(count[rows].copy())
        out["x"].append(radius * np.cos(azimuth))
        out["y"].append(radius * np.sin(azimuth))
        out["z"].append(z[rows])
        out["time"].append(arc[rows] * np.cosh(eta[rows]) / (beta[rows] * C_MM_PER_NS))
        count[rows] += 1
    flat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
    order = np.lexsort((flat["layer"], flat["track"]))
    return {k: v[order] for k, v in flat.items()}
