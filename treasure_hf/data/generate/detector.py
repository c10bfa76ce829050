"""The parametric detector response: acceptance, efficiencies and resolutions as functions of
pT (GeV) and eta, for an ATLAS-like and a CMS-like detector.

Every number carries its source in a comment. "Delphes ATLAS card" and "Delphes CMS card" are
``cards/delphes_card_ATLAS.tcl`` and ``cards/delphes_card_CMS.tcl`` of Delphes 3
(github.com/delphes/delphes), themselves built from the experiments' performance papers. Where a
card has no number, the experiments' papers are cited; a few quantities that no parametric
detector provides are modelled simply and listed in :data:`SIMPLE_MODELS` (written to the output
metadata ``notes``).

All functions take numpy arrays and return arrays of the same shape; efficiencies are
probabilities, resolutions are relative (sigma/value) unless the name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def _quad(*terms: np.ndarray | float) -> np.ndarray:
    return np.sqrt(sum(np.square(t) for t in terms))


@dataclass(frozen=True)
class FlavourTagger:
    """A b-tagger modelled as three Gaussian classes in a 2-d latent space (b-vs-rest, c-vs-light),
    fixed by the published working point: b-jet efficiency ``eff_b`` at a light-jet rejection
    ``rej_light`` and a c-jet rejection ``rej_c``. Scores are the class posteriors for the prior
    fractions ``f_b``, ``f_c`` (the convention of ATLAS's DL1/GN2 outputs pb, pc, pu)."""

    eff_b: float
    rej_c: float
    rej_light: float
    c_separation: float = 1.5  # separation of c from light jets along the c-vs-light axis (modelled)
    f_b: float = 0.2
    f_c: float = 0.1

    def means(self) -> dict[int, tuple[float, float]]:
        inv = NormalDist().inv_cdf
        cut = inv(1.0 - 1.0 / self.rej_light)  # light jets ~ N(0, 1) pass with 1/rej_light
        mu_b = cut + inv(self.eff_b)
        mu_c = cut - inv(1.0 - 1.0 / self.rej_c)
        return {5: (mu_b, 0.5 * self.c_separation), 4: (mu_c, self.c_separation), 0: (0.0, 0.0)}

    def scores(self, flavour: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``pb``, ``pc``, ``pu`` per jet (tau jets are treated as light)."""
        means = self.means()
        n = len(flavour)
        x = rng.normal(size=(n, 2))
        for lab, m in means.items():
            sel = flavour == lab
            x[sel] += m
        prior = {5: self.f_b, 4: self.f_c, 0: 1.0 - self.f_b - self.f_c}
        logl = {lab: np.log(prior[lab]) - 0.5 * ((x[:, 0] - m[0]) ** 2 + (x[:, 1] - m[1]) ** 2)
                for lab, m in means.items()}
        top = np.maximum.reduce(list(logl.values()))
        w = {lab: np.exp(v - top) for lab, v in logl.items()}
        total = w[5] + w[4] + w[0]
        return {"pb": w[5] / total, "pc": w[4] / total, "pu": w[0] / total}


@dataclass(frozen=True)
class Detector:
    """Parameters of one parametric detector (see the module docstring for the sources)."""

    name: str
    experiment: str
    layer: str
    beam_spot_xy_mm: float
    beam_spot_z_mm: float
    tracker_eta: float
    calo_eta: float
    electron_eta: float
    electron_crack: tuple[float, float]
    muon_eta: float
    photon_eta: float
    tau_eta: float
    jet_eta: float
    track_pt_res: tuple[tuple[float, float, float], ...]
    """(|eta| upper edge, constant term, slope per GeV) of sigma(pT)/pT = const (+) slope * pT."""
    d0_res_mm: tuple[float, float]
    """(high-pT limit, multiple-scattering term in mm GeV) of sigma(d0)."""
    z0_res_mm: tuple[float, float]
    ecal_res: tuple[tuple[float, float, float, float], ...]
    """(|eta| upper edge, constant c, stochastic s in sqrt(GeV), noise n in GeV): sigma(E) =
    sqrt(c^2 E^2 + s^2 E + n^2); for CMS the barrel/endcap eta-shape factors are applied on top."""
    hcal_res: tuple[tuple[float, float, float, float], ...]
    muon_res: tuple[tuple[float, float, float], ...]
    electron_eff: tuple[float, float]  # (|eta| < 1.5, 1.5 < |eta|) plateau above 10 GeV
    electron_eff_low_pt: float  # 5 < pT < 10 GeV
    muon_eff: tuple[float, float]
    photon_eff: tuple[float, float]
    photon_iso_cone: float
    photon_iso_ratio: float
    tau_eff: tuple[float, float]  # (1 prong, 3 prong)
    tau_fake: tuple[float, float]  # jets with 1 or 2-3 core tracks (pT > 1 GeV, dR < 0.2)
    tau_res: float
    taggers: dict[str, FlavourTagger]
    mc_run_number: int
    """Run number written to the experiment layer's event ids."""

    @property
    def experiment_id(self) -> int:
        from .. import schema

        return schema.EXPERIMENTS[self.experiment]

    # --- tracking ---------------------------------------------------------------------------
    def track_efficiency(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        # Delphes ATLAS and CMS cards (ChargedHadronTrackingEfficiency, identical in both):
        # 0.70 (0.60) for 0.1 < pT <= 1 GeV and 0.95 (0.85) above, for |eta| <= 1.5 (1.5 < |eta| <= 2.5)
        a = np.abs(eta)
        central = a <= 1.5
        low = pt <= 1.0
        eff = np.where(central, np.where(low, 0.70, 0.95), np.where(low, 0.60, 0.85))
        return np.where(a <= self.tracker_eta, eff, 0.0)

    def track_pt_resolution(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        return _binned_linear(self.track_pt_res, pt, eta)

    def d0_resolution_mm(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        # the multiple-scattering term scales as 1/(p sin^(3/2) theta) = 1/(pT sin^(1/2) theta)
        # (PDG Review of Particle Physics, "Passage of particles through matter", multiple scattering)
        sin_theta = 1.0 / np.cosh(eta)
        a, b = self.d0_res_mm
        return _quad(a, b / (pt * np.sqrt(sin_theta)))

    def z0_resolution_mm(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        # the tables give z0 sin(theta); z0 itself is that divided by sin(theta)
        sin_theta = 1.0 / np.cosh(eta)
        a, b = self.z0_res_mm
        return _quad(a, b / (pt * np.sqrt(sin_theta))) / sin_theta

    # --- electrons, photons ------------------------------------------------------------------
    def ecal_resolution(self, energy: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Relative energy resolution sigma(E)/E of electrons and photons."""
        sigma = _binned_calo(self.ecal_res, energy, eta)
        if self.experiment == "CMS":
            a = np.abs(eta)
            # Delphes CMS card ECal eta shapes: (1 + 0.64 eta^2) in the barrel, (2.16 + 5.6 (|eta| - 2)^2)
            # in the endcaps (from CMS arXiv:1306.2016)
            sigma = sigma * np.where(a <= 1.5, 1.0 + 0.64 * eta ** 2, 2.16 + 5.6 * (a - 2.0) ** 2)
        return sigma / np.maximum(energy, 1e-9)

    def electron_efficiency(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        a = np.abs(eta)
        plateau = np.where(a <= 1.5, self.electron_eff[0], self.electron_eff[1])
        eff = np.where(pt > 10.0, plateau, self.electron_eff_low_pt)
        return np.where(self.in_electron_acceptance(eta), eff, 0.0)

    def in_electron_acceptance(self, eta: np.ndarray) -> np.ndarray:
        a = np.abs(eta)
        lo, hi = self.electron_crack
        return (a < self.electron_eta) & ~((a > lo) & (a < hi))

    def in_photon_acceptance(self, eta: np.ndarray) -> np.ndarray:
        a = np.abs(eta)
        lo, hi = self.electron_crack
        return (a < self.photon_eta) & ~((a > lo) & (a < hi))

    def photon_efficiency(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        a = np.abs(eta)
        eff = np.where(a <= 1.5, self.photon_eff[0], self.photon_eff[1])
        return np.where(self.in_photon_acceptance(eta), eff, 0.0)

    # --- muons -------------------------------------------------------------------------------
    def muon_resolution(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        return _binned_linear(self.muon_res, pt, eta)

    def muon_efficiency(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        a = np.abs(eta)
        eff = np.where(a <= 1.5, self.muon_eff[0], self.muon_eff[1])
        return np.where(a < self.muon_eta, eff, 0.0)

    # --- taus, jets --------------------------------------------------------------------------
    def tau_efficiency(self, n_prong: np.ndarray, eta: np.ndarray) -> np.ndarray:
        eff = np.where(n_prong == 1, self.tau_eff[0], self.tau_eff[1])
        return np.where(self.in_tau_acceptance(eta), eff, 0.0)

    def in_tau_acceptance(self, eta: np.ndarray) -> np.ndarray:
        a = np.abs(eta)
        ok = a < self.tau_eta
        if self.experiment == "ATLAS":
            lo, hi = self.electron_crack  # ATLAS taus also exclude the calorimeter crack
            ok &= ~((a > lo) & (a < hi))
        return ok

    def jet_resolution(self, energy: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Relative jet energy resolution (the hadronic calorimeter's, applied to the whole jet)."""
        return _binned_calo(self.hcal_res, energy, eta) / np.maximum(energy, 1e-9)


def _binned_linear(table, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    a = np.abs(eta)
    out = np.full(np.shape(pt), np.nan)
    lower = 0.0
    for upper, const, slope in table:
        sel = (a >= lower) & (a <= upper) if lower == 0 else (a > lower) & (a <= upper)
        out = np.where(sel, _quad(const, slope * pt), out)
        lower = upper
    # beyond the last edge keep the last bin's value
    last = table[-1]
    return np.where(np.isnan(out), _quad(last[1], last[2] * pt), out)


def _binned_calo(table, energy: np.ndarray, eta: np.ndarray) -> np.ndarray:
    a = np.abs(eta)
    out = np.full(np.shape(energy), np.nan)
    lower = -1.0
    for upper, c, s, n in table:
        sel = (a > lower) & (a <= upper)
        out = np.where(sel, np.sqrt((c * energy) ** 2 + s ** 2 * energy + n ** 2), out)
        lower = upper
    last = table[-1]
    return np.where(np.isnan(out), np.sqrt((last[1] * energy) ** 2 + last[2] ** 2 * energy + last[3] ** 2), out)


ATLAS = Detector(
    name="atlas", experiment="ATLAS", layer="atlas",
    # luminous region: ~10-15 um transverse and ~45-50 mm longitudinal (ATLAS primary-vertex paper,
    # Eur. Phys. J. C 77 (2017) 332); the issue asks for ~45 mm
    beam_spot_xy_mm=0.010, beam_spot_z_mm=45.0,
    tracker_eta=2.5,  # inner detector coverage (ATLAS, JINST 3 (2008) S08003)
    calo_eta=4.9,  # calorimeter coverage incl. forward calorimeter (JINST 3 (2008) S08003)
    # electrons |eta| < 2.47 without 1.37-1.52; photons |eta| < 2.37 (ATLAS, Eur. Phys. J. C 79 (2019) 639)
    electron_eta=2.47, electron_crack=(1.37, 1.52), photon_eta=2.37,
    muon_eta=2.7,  # muon spectrometer coverage (JINST 3 (2008) S08003)
    tau_eta=2.5,  # ATL-PHYS-PUB-2015-045
    jet_eta=4.5,  # as the issue asks (ATLAS jets are used up to |eta| = 4.5)
    # sigma(q/pT) = 0.34 TeV^-1 (1 (+) 44 GeV/pT) at eta ~ 0.25 (ATLAS, JINST 3 (2008) S08003, Table 10.2):
    # sigma(pT)/pT = 1.5% (+) 0.034% pT; for 1.5 < |eta| < 1.75 the table gives 0.41 TeV^-1 (1 (+) 80 GeV/pT),
    # i.e. 3.3% (+) 0.041% pT, used up to |eta| = 2.5
    track_pt_res=((1.5, 0.015, 3.4e-4), (2.5, 0.033, 4.1e-4)),
    # sigma(d0) = 10 um (1 (+) 14 GeV/pT), sigma(z0 sin theta) = 91 um (1 (+) 2.3 GeV/pT)
    # (JINST 3 (2008) S08003, Table 10.2)
    d0_res_mm=(0.010, 0.140), z0_res_mm=(0.091, 0.210),
    # Delphes ATLAS card ECal: sigma(E) = sqrt(E^2 0.0017^2 + E 0.101^2) for |eta| <= 3.2,
    # sqrt(E^2 0.035^2 + E 0.285^2) for 3.2 < |eta| <= 4.9
    ecal_res=((3.2, 0.0017, 0.101, 0.0), (4.9, 0.0350, 0.285, 0.0)),
    # Delphes ATLAS card HCal: sqrt(E^2 0.0302^2 + E 0.5205^2 + 1.59^2) for |eta| <= 1.7,
    # sqrt(E^2 0.05^2 + E 0.706^2) up to 3.2, sqrt(E^2 0.0942^2 + E 1.00^2) up to 4.9
    hcal_res=((1.7, 0.0302, 0.5205, 1.59), (3.2, 0.0500, 0.706, 0.0), (4.9, 0.0942, 1.00, 0.0)),
    # Delphes ATLAS card MuonMomentumSmearing: sqrt(0.01^2 + pT^2 1.0e-4^2) for |eta| <= 0.5,
    # sqrt(0.015^2 + pT^2 1.5e-4^2) up to 1.5, sqrt(0.025^2 + pT^2 3.5e-4^2) beyond
    muon_res=((0.5, 0.010, 1.0e-4), (1.5, 0.015, 1.5e-4), (2.7, 0.025, 3.5e-4)),
    # Delphes ATLAS card ElectronEfficiency: 0.95 (|eta| <= 1.5), 0.85 (1.5-2.5) above 10 GeV;
    # 5-10 GeV: ~0.70 (Medium identification at low ET, Eur. Phys. J. C 79 (2019) 639)
    electron_eff=(0.95, 0.85), electron_eff_low_pt=0.70,
    muon_eff=(0.95, 0.85),  # Delphes ATLAS card MuonEfficiency (|eta| <= 1.5, 1.5-2.7)
    photon_eff=(0.95, 0.85),  # Delphes ATLAS card PhotonEfficiency (pT > 10 GeV)
    photon_iso_cone=0.5, photon_iso_ratio=0.12,  # Delphes ATLAS card PhotonIsolation
    # Delphes ATLAS card TauTagging (ATL-PHYS-PUB-2015-045, medium): eff 0.70 (1 prong), 0.60 (3 prongs);
    # mistag 0.02 (1 core track), 0.01 (2-3 core tracks)
    tau_eff=(0.70, 0.60), tau_fake=(0.02, 0.01),
    tau_res=0.10,  # ~10% tau energy resolution (ATL-PHYS-PUB-2015-045, energy calibration section)
    taggers={
        # DL1r at the 77% working point: c rejection ~5, light rejection ~170
        # (ATLAS, Eur. Phys. J. C 83 (2023) 681; DL1d is its successor, with similar performance)
        "DL1d": FlavourTagger(eff_b=0.77, rej_c=5.0, rej_light=170.0),
        # GN2 at 77%: roughly doubled c and light rejections w.r.t. DL1d (ATL-PHYS-PUB-2022-027 for GN1,
        # ATLAS FTAG public plots for GN2): c ~10, light ~400
        "GN2": FlavourTagger(eff_b=0.77, rej_c=10.0, rej_light=400.0),
    },
    mc_run_number=284500,  # the run number of ATLAS mc16a simulation (2015-2016 conditions)
)

CMS = Detector(
    name="cms", experiment="CMS", layer="cms",
    # luminous region as for ATLAS (same LHC beams)
    beam_spot_xy_mm=0.010, beam_spot_z_mm=45.0,
    tracker_eta=2.5,  # CMS tracker (JINST 3 (2008) S08004)
    calo_eta=5.0,  # HF up to |eta| = 5 (JINST 3 (2008) S08004; Delphes CMS card)
    # ECAL |eta| < 2.5 without the barrel-endcap gap 1.4442-1.566 (CMS, JINST 16 (2021) P05014)
    electron_eta=2.5, electron_crack=(1.4442, 1.566), photon_eta=2.5,
    muon_eta=2.4,  # Delphes CMS card MuonEfficiency; CMS JINST 13 (2018) P06015
    tau_eta=2.3,  # CMS DeepTau selections (CMS, JINST 17 (2022) P07023)
    jet_eta=4.7,  # CMS PF jets up to |eta| = 4.7 (CMS, JINST 12 (2017) P02014)
    # Delphes CMS card ChargedHadronMomentumSmearing (from CMS arXiv:1405.6569):
    # sqrt(0.01^2 + pT^2 1.5e-4^2) |eta| <= 0.5, sqrt(0.015^2 + pT^2 2.5e-4^2) up to 1.5, 0.025/5.5e-4 up to 2.5
    track_pt_res=((0.5, 0.010, 1.5e-4), (1.5, 0.015, 2.5e-4), (2.5, 0.025, 5.5e-4)),
    # CMS tracker impact parameters (CMS, JINST 9 (2014) P10009, resolution plots read off for |eta| < 0.9):
    # sigma(d0) ~ 10 um at high pT and ~ 95 um at pT = 1 GeV; sigma(dz) ~ 30 um and ~ 110 um
    d0_res_mm=(0.010, 0.095), z0_res_mm=(0.030, 0.105),
    # Delphes CMS card ECal: sqrt(E^2 0.008^2 + E 0.11^2 + 0.40^2) (eta shapes in ecal_resolution) up to 2.5,
    # sqrt(E^2 0.107^2 + E 2.08^2) in HF
    ecal_res=((2.5, 0.008, 0.11, 0.40), (5.0, 0.107, 2.08, 0.0)),
    # Delphes CMS card HCal: sqrt(E^2 0.05^2 + E 1.50^2) for |eta| <= 3, sqrt(E^2 0.13^2 + E 2.70^2) beyond
    hcal_res=((3.0, 0.050, 1.50, 0.0), (5.0, 0.130, 2.70, 0.0)),
    # Delphes CMS card MuonMomentumSmearing (same functional form and numbers as the ATLAS card)
    muon_res=((0.5, 0.010, 1.0e-4), (1.5, 0.015, 1.5e-4), (2.4, 0.025, 3.5e-4)),
    # Delphes CMS card ElectronEfficiency; 5-10 GeV: ~0.70 (CMS, JINST 16 (2021) P05014, MVA WP90 at low pT)
    electron_eff=(0.95, 0.85), electron_eff_low_pt=0.70,
    muon_eff=(0.95, 0.95),  # Delphes CMS card MuonEfficiency: 0.95 for |eta| <= 2.4
    photon_eff=(0.95, 0.85),  # Delphes CMS card PhotonEfficiency
    photon_iso_cone=0.5, photon_iso_ratio=0.12,  # Delphes CMS card PhotonIsolation
    # DeepTau vs jets, Medium: ~0.65 tau efficiency at ~0.5% jet misidentification
    # (CMS, JINST 17 (2022) P07023)
    tau_eff=(0.65, 0.65), tau_fake=(0.005, 0.005),
    tau_res=0.10,  # ~10% (CMS, JINST 17 (2022) P07023)
    taggers={
        # DeepJet medium working point: b efficiency ~0.80 at 1% light and ~13% c misidentification
        # (CMS-DP-2018-058)
        "DeepFlav": FlavourTagger(eff_b=0.80, rej_c=1 / 0.13, rej_light=100.0),
    },
    mc_run_number=1,  # CMS simulation is produced as run 1
)

DETECTORS: dict[str, Detector] = {d.name: d for d in (ATLAS, CMS)}

ELECTRON_DRESSING_CONE = 0.1
"""Photons within dR < 0.1 of an electron join its cluster (ATLAS egamma clusters span 3x7 cells of
0.025 x 0.0245, i.e. 0.075 x 0.17 in eta x phi; Eur. Phys. J. C 79 (2019) 639, Sec. 3)."""

TAU_CORE_CONE, TAU_CORE_TRACK_PT = 0.2, 1.0
"""Core tracks counted for the jet -> tau misidentification: dR < 0.2, pT > 1 GeV (Delphes ATLAS card
TauTagging: DeltaRTrack 0.2, TrackPTMin 1.0)."""

PTVARCONE_KT_GEV, PTVARCONE_TRACK_PT = 10.0, 1.0
"""ATLAS ptvarcone30: cone min(0.3, 10 GeV / pT), tracks with pT > 1 GeV (Eur. Phys. J. C 79 (2019) 639,
Sec. 9)."""

# Relative working-point efficiencies (inclusive: each tighter point is a subset of the looser one).
ATLAS_ELECTRON_ID = {"LHLoose": 1.0, "LHMedium": 0.88 / 0.93, "LHTight": 0.80 / 0.93}
"""Loose/Medium/Tight: 93/88/80% for 40 GeV electrons (ATLAS, Eur. Phys. J. C 79 (2019) 639, Sec. 8);
reconstructed electrons are taken to pass Loose."""
ATLAS_MUON_QUALITY = {"Tight": 0.918 / 0.981, "Medium": 0.961 / 0.981, "Loose": 1.0}
"""Tight/Medium/Loose: 91.8/96.1/98.1% (ATLAS, Eur. Phys. J. C 76 (2016) 292, Table 3)."""
ATLAS_PHOTON_TIGHT = 0.90
"""Tight given Loose for isolated photons above ~25 GeV (ATLAS, Eur. Phys. J. C 79 (2019) 205, Sec. 5)."""
CMS_ELECTRON_CUTBASED = {1: 1.0, 2: 0.90 / 0.95, 3: 0.80 / 0.95, 4: 0.70 / 0.95}
"""Veto/Loose/Medium/Tight: ~95/90/80/70% (CMS, JINST 16 (2021) P05014, Sec. 8.1)."""
CMS_MUON_ID = {"looseId": 1.0, "mediumId": 0.99, "tightId": 0.97}
"""Loose ~99.8%, Medium ~98-99%, Tight ~96-97% (CMS, JINST 13 (2018) P06015, Sec. 6)."""
CMS_PHOTON_CUTBASED = {1: 1.0, 2: 0.80 / 0.90, 3: 0.70 / 0.90}
"""Loose/Medium/Tight: ~90/80/70% (CMS, JINST 16 (2021) P05014, Sec. 8.2)."""


SIMPLE_MODELS: dict[str, str] = {
    "identification": "working-point flags and categories are drawn with the published relative efficiencies "
                      "(detector.py), independently of the event; fakes other than jet->tau are not modelled "
                      "(non-prompt leptons and photons come from hadron decays)",
    "tracks": "straight-line extrapolation from the true production vertex to the beam line for d0/z0 "
              "(helix curvature neglected), then Gaussian smearing; eta/phi unsmeared; atlas nDoF is 41 "
              "where the TRT covers (|eta| < 2) and 11 beyond, chiSquared ~ chi2(nDoF); cms fromPV from "
              "|z0 - pvz|",
    "calorimeter": "jets from particles (not towers) smeared with the hadronic-calorimeter resolution; "
                   "electrons dressed with photons within dR < 0.1; topoetcone/pfRelIso from visible "
                   "particles (pile-up included) in the cone",
    "btagging": "latent-Gaussian tagger fixed by the published working point (detector.FlavourTagger)",
    "jets": "anti-kt R = 0.4 on visible final-state particles (pile-up included, no pile-up subtraction), "
            "without neutrinos, muons and the particles of reconstructed electrons and photons; cms jetId = 6 "
            "(tight + lepton veto) for every jet",
    "constituents": "generator particles of the jet (pT, eta, phi unsmeared); d0/z0 are the smeared impact "
                    "parameters for charged constituents, 0 for neutral ones",
    "pileup": "Poisson(mu) Pythia SoftQCD:inelastic events per hard scatter, each at its own vertex drawn "
              "from the luminous region; their particles enter tracks, jets, isolation and MET",
    "mix": "processes of a mix are drawn per shard (multinomial on the weights) and interleaved in a seeded "
           "random order",
}
