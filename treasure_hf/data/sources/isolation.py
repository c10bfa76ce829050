"""The seed's charged-track isolation ``trk_iso03``, vectorised over flat (ragged) numpy arrays.

Objects and tracks are given as flat rows grouped by event (``counts`` per event). For every
object the scalar pT sum of the tracks with dR < ``cone``, pT > ``pt_floor_gev`` and
|z0 sin(theta)| < ``z0sintheta_cut_mm`` (z0 taken w.r.t. the primary vertex by the caller) is
divided by the object's pT; every track that belongs to the object (all its linked tracks, given as
(object row, track index within the event) pairs) is excluded. The constants come from
:data:`treasure_hf.data.schema.ISOLATION`.
"""

from __future__ import annotations

import numpy as np

from ...kinematics import delta_phi
from ..schema import ISOLATION, IsolationDefinition


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _pairs(obj_counts: np.ndarray, trk_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (object row, track row) pair of the same event: object rows, track rows, and the
    track's index within its event."""
    obj_counts = np.asarray(obj_counts, np.int64)
    trk_counts = np.asarray(trk_counts, np.int64)
    obj_event = np.repeat(np.arange(len(obj_counts)), obj_counts)
    per_obj = trk_counts[obj_event]
    pair_obj = np.repeat(np.arange(len(obj_event)), per_obj)
    local = np.arange(int(per_obj.sum()), dtype=np.int64) - np.repeat(_starts(per_obj), per_obj)
    pair_trk = _starts(trk_counts)[obj_event][pair_obj] + local
    return pair_obj, pair_trk, local


PAIR_BLOCK = 4_000_000
"""Object-track pairs formed at once: bounds memory for events with thousands of candidates."""


def _blocks(obj_counts: np.ndarray, trk_counts: np.ndarray, limit: int | None = None):
    """Consecutive event ranges ``(ev_lo, ev_hi, obj_lo, obj_hi, trk_lo, trk_hi)`` holding at
    most about ``limit`` object-track pairs each (at least one event)."""
    limit = PAIR_BLOCK if limit is None else limit
    pairs = np.cumsum(obj_counts * trk_counts)
    obj_end, trk_end = np.cumsum(obj_counts), np.cumsum(trk_counts)
    lo, n = 0, len(obj_counts)
    while lo < n:
        base = pairs[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(pairs, base + limit, side="right")))
        hi = min(hi, n)
        yield (
            lo,
            hi,
            int(obj_end[lo - 1]) if lo else 0,
            int(obj_end[hi - 1]),
            int(trk_end[lo - 1]) if lo else 0,
            int(trk_end[hi - 1]),
        )
        lo = hi


def trk_iso03(
    obj_counts: np.ndarray,
    obj_pt: np.ndarray,
    obj_eta: np.ndarray,
    obj_phi: np.ndarray,
    excluded: tuple[np.ndarray, np.ndarray] | None,
    trk_counts: np.ndarray,
    trk_pt: np.ndarray,
    trk_eta: np.ndarray,
    trk_phi: np.ndarray,
    trk_z0sintheta: np.ndarray,
    trk_selected: np.ndarray | None = None,
    definition: IsolationDefinition = ISOLATION,
) -> np.ndarray:
    """``trk_iso03`` of every object row (float32, dimensionless; 0 for an object with pT <= 0).

    pT in GeV, z0 sin(theta) in mm w.r.t. the primary vertex. ``excluded``: the tracks that belong
    to an object, as pairs ``(object rows, track indices within the event)`` (every track linked
    to it: all of an electron's tracks, a muon's inner-detector track); they never count for that
    object. None: no track excluded. ``trk_selected``: an optional extra track mask (e.g. charged
    candidates only).
    """
    obj_counts = np.asarray(obj_counts, np.int64)
    trk_counts = np.asarray(trk_counts, np.int64)
    n_obj = int(obj_counts.sum())
    good = (trk_pt > definition.pt_floor_gev) & (np.abs(trk_z0sintheta) < definition.z0sintheta_cut_mm)
    if trk_selected is not None:
        good &= trk_selected
    kept_rows = np.flatnonzero(good)
    trk_event = np.repeat(np.arange(len(trk_counts)), trk_counts)
    kept_counts = np.bincount(trk_event[good], minlength=len(trk_counts)).astype(np.int64)
    excluded_keys = _excluded_keys(obj_counts, trk_counts, excluded)
    n_trk = max(int(trk_counts.sum()), 1)
    pt, eta, phi = trk_pt[good], trk_eta[good], trk_phi[good]
    sums = np.zeros(n_obj)
    for e0, e1, o0, o1, t0, t1 in _blocks(obj_counts, kept_counts):
        pair_obj, pair_trk, _ = _pairs(obj_counts[e0:e1], kept_counts[e0:e1])
        pair_obj += o0
        pair_trk += t0
        deta = obj_eta[pair_obj] - eta[pair_trk]
        dphi = delta_phi(obj_phi[pair_obj], phi[pair_trk])
        inside = np.flatnonzero(deta * deta + dphi * dphi < definition.cone**2)
        if excluded_keys.size and inside.size:
            keys = pair_obj[inside] * n_trk + kept_rows[pair_trk[inside]]
            inside = inside[~np.isin(keys, excluded_keys)]
        sums[o0:o1] = np.bincount(pair_obj[inside] - o0, weights=pt[pair_trk[inside]], minlength=o1 - o0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iso = np.where(obj_pt > 0, sums / obj_pt, 0.0)
    return iso.astype(np.float32)


def _excluded_keys(
    obj_counts: np.ndarray, trk_counts: np.ndarray, excluded: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """``object row * n_tracks + track row`` of each valid excluded pair (out-of-range indices,
    thinned-away or invalid links, are dropped)."""
    if excluded is None:
        return np.zeros(0, np.int64)
    rows, local = (np.asarray(x, np.int64) for x in excluded)
    obj_event = np.repeat(np.arange(len(obj_counts)), obj_counts)
    ok = (rows >= 0) & (rows < len(obj_event))
    rows, local = rows[ok], local[ok]
    event = obj_event[rows]
    ok = (local >= 0) & (local < trk_counts[event])
    n_trk = max(int(trk_counts.sum()), 1)
    return np.unique(rows[ok] * n_trk + _starts(trk_counts)[event[ok]] + local[ok])


def nearest_track(
    obj_counts: np.ndarray,
    obj_eta: np.ndarray,
    obj_phi: np.ndarray,
    trk_counts: np.ndarray,
    trk_eta: np.ndarray,
    trk_phi: np.ndarray,
    max_dr: float,
    trk_selected: np.ndarray | None = None,
) -> np.ndarray:
    """Index within its event of the (selected) track closest to each object in dR, -1 when none
    is closer than ``max_dr``: the own track of objects whose file carries no link to it."""
    obj_counts = np.asarray(obj_counts, np.int64)
    trk_counts = np.asarray(trk_counts, np.int64)
    out = np.full(int(obj_counts.sum()), -1, np.int64)
    for e0, e1, o0, o1, t0, t1 in _blocks(obj_counts, trk_counts):
        pair_obj, pair_trk, local = _pairs(obj_counts[e0:e1], trk_counts[e0:e1])
        pair_obj += o0
        pair_trk += t0
        dr2 = (obj_eta[pair_obj] - trk_eta[pair_trk]) ** 2 + delta_phi(obj_phi[pair_obj], trk_phi[pair_trk]) ** 2
        ok = dr2 < max_dr**2
        if trk_selected is not None:
            ok &= trk_selected[pair_trk]
        if not np.any(ok):
            continue
        po, d, lo = pair_obj[ok], dr2[ok], local[ok]
        order = np.lexsort((d, po))
        po, lo = po[order], lo[order]
        first = np.ones(len(po), bool)
        first[1:] = po[1:] != po[:-1]
        out[po[first]] = lo[first]
    return out


def own_pairs(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(object rows, track indices)`` exclusion pairs from one own-track index per object
    (-1: none), as :func:`nearest_track` gives them."""
    index = np.asarray(index, np.int64)
    rows = np.flatnonzero(index >= 0)
    return rows, index[rows]


def follow_links(
    rows: np.ndarray,
    events: np.ndarray,
    index: np.ndarray,
    counts: np.ndarray,
    link_counts: np.ndarray,
    link_index: np.ndarray,
    link_valid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step along ElementLinks, vectorised.

    ``(rows, events, index)``: for each origin row (an object), the event and the index within
    that event of an element of a container with ``counts`` elements per event. Each element holds
    a list of links: ``link_counts`` per element (flat over the container's elements),
    ``link_index`` and ``link_valid`` (a non-zero persistent key) per link, flat. Returns the
    ``(rows, events, index)`` the valid links point to (an origin appears once per link);
    out-of-range elements and invalid links are dropped."""
    counts = np.asarray(counts, np.int64)
    rows, events, index = (np.asarray(x, np.int64) for x in (rows, events, index))
    ok = (index >= 0) & (index < counts[events])
    rows, events, index = rows[ok], events[ok], index[ok]
    element = _starts(counts)[events] + index
    n = np.asarray(link_counts, np.int64)[element]
    first = _starts(np.asarray(link_counts, np.int64))[element]
    position = np.repeat(first, n) + np.arange(int(n.sum()), dtype=np.int64) - np.repeat(_starts(n), n)
    rows, events = np.repeat(rows, n), np.repeat(events, n)
    ok = np.asarray(link_valid, bool)[position]
    return rows[ok], events[ok], np.asarray(link_index, np.int64)[position][ok]


def agreement(ours: np.ndarray, reference: np.ndarray, tolerance: float = 0.1) -> dict[str, float | int]:
    """How a recomputed isolation agrees with an experiment's own, object by object (both
    relative isolations): ``n`` objects, Pearson ``correlation``, and ``within`` the fraction
    with ``|ours - reference| <= tolerance * reference`` (both zero counts as agreeing)."""
    a, b = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    corr = float(np.corrcoef(a, b)[0, 1]) if a.size > 1 and a.std() > 0 and b.std() > 0 else float("nan")
    within = float(np.mean(np.abs(a - b) <= tolerance * np.abs(b))) if a.size else float("nan")
    return {"n": int(a.size), "correlation": corr, "within": within}
