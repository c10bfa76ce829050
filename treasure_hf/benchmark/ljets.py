"""The second task of ``treasure benchmark foundation``: t tbar -> l + jets against W + jets.

The selection (one set of cuts for both detectors, on the common layer): exactly one lepton (an
electron or a muon) with pT > 25 GeV, |eta| < 2.5 and relative track isolation ``trk_iso03`` <
0.15, no second such lepton above 10 GeV, and at least :data:`MIN_JETS` jets with pT > 25 GeV and
|eta| < 2.5. The signal is the ``ttbar`` preset (any decay: the selection keeps the l + jets and
the dilepton events with one lepton lost); the background is W + one hard parton, W -> l nu
(:data:`WJETS_SETTINGS`: q qbar -> W g and q g -> W q with pTHat > 30 GeV instead of the
``wjets`` preset's 2 -> 1 W, whose jets come from the shower alone and rarely pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.events import EventBatch
from ..errors import InputError

LEPTON_PT_GEV, VETO_PT_GEV, JET_PT_GEV, ETA_MAX, ISOLATION = 25.0, 10.0, 25.0, 2.5, 0.15
MIN_JETS = 2
WJETS_SETTINGS: tuple[str, ...] = (
    "WeakSingleBoson:ffbar2W = off",
    "WeakBosonAndParton:qqbar2Wg = on",
    "WeakBosonAndParton:qg2Wq = on",
    "PhaseSpace:pTHatMin = 30.",
)
"""Pythia settings added to the ``wjets`` preset (after it, so they win): W + one hard parton."""


@dataclass
class LeptonJets:
    """``passed`` (n_events,) bool; ``cutflow``: events left after each step."""

    passed: np.ndarray
    cutflow: dict[str, int] = field(default_factory=dict)


def _column(batch: EventBatch, key: str) -> np.ndarray:
    if key not in batch:
        raise InputError(None, key, "the lepton + jets selection needs this field")
    return np.asarray(batch[key], np.float64)


def select_ljets(batch: EventBatch) -> LeptonJets:
    """The lepton + jets selection (module docstring) of every event of ``batch``."""
    good, loose = np.zeros(batch.n_events, np.int64), np.zeros(batch.n_events, np.int64)
    for g in ("electrons", "muons"):
        pt, eta = _column(batch, f"common/{g}/pt"), np.abs(_column(batch, f"common/{g}/eta"))
        iso, real = _column(batch, f"common/{g}/trk_iso03"), np.asarray(batch.mask(g), bool)
        central = real & (eta < ETA_MAX) & (iso < ISOLATION)
        good += (central & (pt > LEPTON_PT_GEV)).sum(1)
        loose += (central & (pt > VETO_PT_GEV)).sum(1)
    jet_pt, jet_eta = _column(batch, "common/jets/pt"), np.abs(_column(batch, "common/jets/eta"))
    jets = (np.asarray(batch.mask("jets"), bool) & (jet_pt > JET_PT_GEV) & (jet_eta < ETA_MAX)).sum(1)
    one = good == 1
    veto = one & (loose == 1)
    passed = veto & (jets >= MIN_JETS)
    cutflow = {
        "all": int(batch.n_events),
        "one lepton": int(one.sum()),
        "no second lepton": int(veto.sum()),
        f">= {MIN_JETS} jets": int(passed.sum()),
    }
    return LeptonJets(passed, cutflow)


def describe() -> str:
    return (
        f"exactly one isolated (trk_iso03 < {ISOLATION:g}) electron or muon with pT > {LEPTON_PT_GEV:g} GeV, "
        f"|eta| < {ETA_MAX:g}, none other above {VETO_PT_GEV:g} GeV; >= {MIN_JETS} jets with pT > "
        f"{JET_PT_GEV:g} GeV, |eta| < {ETA_MAX:g}"
    )
