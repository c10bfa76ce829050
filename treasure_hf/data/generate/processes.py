"""Named Pythia 8 presets, as data: settings strings and the process id that every event of the
preset records in ``truth/event/process_id``.

Each preset belongs to a collider (:data:`COLLIDER_SETTINGS`): the LHC presets run pp collisions at
13 TeV with the Monash tune and the LHC experiments' common decay settings; the FCC-ee presets
(``ee_*``) run e+e- collisions at 240 GeV with the FCC-ee production settings. The settings strings
(collider + preset + user overrides) are written verbatim into the ``generator`` metadata attribute
of the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

COMMON_SETTINGS: tuple[str, ...] = (
    "Beams:eCM = 13000.",
    "Tune:pp = 14",  # Monash 2013 (Pythia's default, stated for provenance)
    # Particles with c*tau > 10 mm are left undecayed (K0S, Lambda, ...), as in the ATLAS and CMS
    # production settings (CMS Pythia8CommonSettings_cfi: limitTau0 = on, tau0Max = 10).
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
)
"""Settings of every hard-scatter instance."""

EE240_SETTINGS: tuple[str, ...] = (
    # e+e- at 240 GeV as the FCC-ee Pythia 8 cards set it (HEP-FCC/FCC-config, FCCee/Generator/Pythia8/
    # p8_ee_ZH_ecm240.cmd and p8_BES_ee_ZH_ecm240.cmd): ISR and FSR on, the beam energy spread 0.165% x
    # 120 GeV = 0.198 GeV per beam, particles decaying beyond the calorimeter entrance (r = 2250 mm,
    # |z| = 2500 mm) left stable; the vertex spread is the detector's beam spot (detector.FCCEE_IDEA)
    "Beams:idA = 11",
    "Beams:idB = -11",
    "Beams:eCM = 240.",
    "Beams:allowMomentumSpread = on",
    "Beams:sigmaPzA = 0.198",
    "Beams:sigmaPzB = 0.198",
    "PartonLevel:ISR = on",
    "PartonLevel:FSR = on",
    "ParticleDecays:limitCylinder = on",
    "ParticleDecays:xyMax = 2250.",
    "ParticleDecays:zMax = 2500.",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
)
"""Settings of every FCC-ee instance (e+e- -> X at sqrt(s) = 240 GeV)."""

COLLIDER_SETTINGS: dict[str, tuple[str, ...]] = {"lhc": COMMON_SETTINGS, "fcc-ee": EE240_SETTINGS}
"""Collider -> the settings every hard-scatter instance of its presets starts from."""

PILEUP_SETTINGS: tuple[str, ...] = (
    "SoftQCD:inelastic = on",  # non-diffractive + single/double/central diffractive, as minimum bias
)
"""Settings of the second Pythia instance that provides the pile-up vertices."""

_Z_TO_LL = ("23:onMode = off", "23:onIfAny = 11 13")
_H_MASS_GEV = 125.0


@dataclass(frozen=True)
class Process:
    """A named preset: ``settings`` go to Pythia after :data:`COMMON_SETTINGS`."""

    name: str
    process_id: int
    settings: tuple[str, ...]
    doc: str
    collider: str = "lhc"
    """A key of :data:`COLLIDER_SETTINGS`: the beams, and which detectors may see the events."""


PROCESSES: dict[str, Process] = {
    p.name: p
    for p in (
        Process(
            "hzz4l",
            1,
            (
                "HiggsSM:gg2H = on",
                "HiggsSM:ff2Hff(t:ZZ) = on",  # VBF through ZZ fusion
                "HiggsSM:ff2Hff(t:WW) = on",  # VBF through WW fusion
                f"25:m0 = {_H_MASS_GEV}",
                "25:onMode = off",
                "25:onIfMatch = 23 23",
                *_Z_TO_LL,  # both the on-shell Z and the Z* decay to ee or mumu
            ),
            "gg -> H and VBF H, mH = 125 GeV, H -> ZZ* -> 4l (l = e, mu)",
        ),
        Process(
            "zz4l",
            2,
            (
                "WeakDoubleBoson:ffbar2gmZgmZ = on",
                *_Z_TO_LL,
                # mHat is the ZZ*/Z gamma* invariant mass, i.e. m(4l) before radiation: a window around the
                # 4l selection window 115-135 GeV (plus room for resolution and final-state radiation)
                "PhaseSpace:mHatMin = 105.",
                "PhaseSpace:mHatMax = 145.",
            ),
            "q qbar -> ZZ*/Z gamma* -> 4l (l = e, mu) with 105 < m4l < 145 GeV: background in the signal window",
        ),
        Process("ttbar", 3, ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"), "top pairs, any decay"),
        Process(
            "zjets",
            4,
            (
                "WeakSingleBoson:ffbar2gmZ = on",
                "23:onMode = off",
                "23:onIfAny = 11 13 15",
                "PhaseSpace:mHatMin = 60.",
            ),
            "Drell-Yan Z/gamma* -> ll (l = e, mu, tau), m(ll) > 60 GeV; jets from the parton shower",
        ),
        Process(
            "wjets",
            5,
            (
                "WeakSingleBoson:ffbar2W = on",
                "24:onMode = off",
                "24:onIfAny = 11 13 15",
            ),
            "W -> l nu (l = e, mu, tau); jets from the parton shower",
        ),
        Process("dijet", 6, ("HardQCD:all = on", "PhaseSpace:pTHatMin = 30."), "QCD 2 -> 2, pTHat > 30 GeV"),
        Process("ww", 7, ("WeakDoubleBoson:ffbar2WW = on",), "q qbar -> WW, any decay"),
        Process("wz", 8, ("WeakDoubleBoson:ffbar2ZW = on",), "q qbar' -> WZ, any decay"),
        Process(
            "ee_zh",
            11,
            ("HiggsSM:ffbar2HZ = on", f"25:m0 = {_H_MASS_GEV}"),
            "e+e- -> ZH at 240 GeV, mH = 125 GeV, Z and H decaying as in the SM (Pythia's tables)",
            "fcc-ee",
        ),
        Process("ee_ww", 12, ("WeakDoubleBoson:ffbar2WW = on",), "e+e- -> W+W- at 240 GeV, any decay", "fcc-ee"),
        Process(
            "ee_zz",
            13,
            ("WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2"),
            "e+e- -> ZZ at 240 GeV (the Z part of Z/gamma* pairs), any decay",
            "fcc-ee",
        ),
        Process(
            "ee_qq",
            14,
            ("WeakSingleBoson:ffbar2gmZ = on", "23:onMode = off", "23:onIfAny = 1 2 3 4 5"),
            "e+e- -> Z/gamma* -> q qbar (q = d, u, s, c, b) at 240 GeV, radiative returns to the Z included",
            "fcc-ee",
        ),
    )
}
"""The physics presets by name."""

MIX_WEIGHTS: Mapping[str, float] = {
    "ttbar": 0.20,
    "zjets": 0.20,
    "wjets": 0.20,
    "dijet": 0.20,
    "ww": 0.05,
    "wz": 0.05,
    "zz4l": 0.05,
    "hzz4l": 0.05,
}
"""``mix``: the fraction of events drawn from each preset (each event keeps its own process id)."""

MIX = "mix"
NAMES: tuple[str, ...] = (*PROCESSES, MIX)


def components(name: str) -> dict[str, float]:
    """``{preset: weight}`` of a process name (one preset with weight 1, or the mix)."""
    if name == MIX:
        return dict(MIX_WEIGHTS)
    if name not in PROCESSES:
        raise KeyError(f"unknown process {name!r}; known: {list(NAMES)}")
    return {name: 1.0}


def settings_for(name: str, extra: tuple[str, ...] = ()) -> list[str]:
    """Full settings list of one preset: its collider's settings, the preset's, then ``extra``."""
    p = PROCESSES[name]
    return [*COLLIDER_SETTINGS[p.collider], *p.settings, *extra]


def collider_of(name: str) -> str:
    """The collider of a process name (every component of the mix is an LHC preset)."""
    colliders = {PROCESSES[n].collider for n in components(name)}
    if len(colliders) != 1:
        raise ValueError(f"process {name!r} mixes colliders {sorted(colliders)}")
    return colliders.pop()
