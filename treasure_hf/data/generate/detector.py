"""The parametric detector response: acceptance, efficiencies and resolutions as functions of
pT (GeV) and eta, for an ATLAS-like and a CMS-like detector at the LHC and an IDEA-like detector at
FCC-ee (the ``idea`` entry: the concept's published fast-simulation card, see :data:`FCCEE_IDEA`).

Every number carries its source in a comment: the experiments' performance papers (arXiv number,
section, table or figure) and, where a paper gives no number, the Delphes 3 cards
``cards/delphes_card_ATLAS.tcl`` and ``cards/delphes_card_CMS.tcl`` (github.com/delphes/delphes),
themselves built from those papers. "Read off" marks values taken from a published figure rather
than a table. A few quantities that no parametric detector provides are modelled simply and listed
in :data:`SIMPLE_MODELS` (written to the output metadata ``notes``). ``benchmarks/detector.py``
measures the resulting Z and H -> 4l peaks and efficiencies against the published figures.

All functions take numpy arrays and return arrays of the same shape; efficiencies are
probabilities, resolutions are relative (sigma/value) unless the name says otherwise.
"""

from __future__ import annotations

import functools
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
        logl = {
            lab: np.log(prior[lab]) - 0.5 * ((x[:, 0] - m[0]) ** 2 + (x[:, 1] - m[1]) ** 2) for lab, m in means.items()
        }
        top = np.maximum.reduce(list(logl.values()))
        w = {lab: np.exp(v - top) for lab, v in logl.items()}
        total = w[5] + w[4] + w[0]
        return {"pb": w[5] / total, "pc": w[4] / total, "pu": w[0] / total}


@dataclass(frozen=True)
class BinnedEfficiency:
    """An efficiency in bins of pT (GeV) and |eta|: ``values[i][j]`` for ``|eta|`` below
    ``eta_edges[i]`` (and above the previous edge) and ``pt_edges[j] <= pT < pt_edges[j + 1]`` (the
    last pT bin is open); 0 below the first pT edge and beyond the last |eta| edge."""

    pt_edges: tuple[float, ...]
    eta_edges: tuple[float, ...]
    values: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.eta_edges) or any(len(v) != len(self.pt_edges) for v in self.values):
            raise ValueError("BinnedEfficiency: one value per (|eta| bin, pT bin)")

    def __call__(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        pt, a = np.asarray(pt, np.float64), np.abs(np.asarray(eta, np.float64))
        i = np.searchsorted(self.eta_edges, a, side="left")  # |eta| == edge belongs to the lower bin
        j = np.searchsorted(self.pt_edges, pt, side="right") - 1
        table = np.array(self.values + ((0.0,) * len(self.pt_edges),))  # extra row: beyond |eta| coverage
        return np.where(j >= 0, table[np.minimum(i, len(self.eta_edges)), np.maximum(j, 0)], 0.0)


@dataclass(frozen=True)
class Bremsstrahlung:
    """The electron's radiative energy loss in the tracker and the part of it that misses the cluster.

    The electron crosses ``material`` radiation lengths (X/X0 along a straight line, vs |eta|) before
    the calorimeter. The fraction z of its energy left at the end follows the Bethe-Heitler law:
    -ln z is Gamma-distributed with shape t / ln 2 (Bethe and Heitler, Proc. R. Soc. A 146 (1934) 83;
    as used by the CMS GSF electron fit, CMS JINST 10 (2015) P06005, arXiv:1502.02701, Sec. 4). The
    radiation is emitted at one point, uniform in transverse radius along the track in the tracker;
    from there the photons fly straight and the softened electron (pT' = z pT) bends in the solenoid
    field, so at the calorimeter they are ``dphi = 0.3 B (R - r)^2 / (2 R pT')`` apart (R, r in m, B in
    T). Within the cluster's half-width in phi everything is collected; beyond it the cluster keeps
    the larger of the two deposits (z or 1 - z of the energy). A calibration derived from this same
    simulation, as the experiments derive theirs (the median collected fraction per |eta| and pT),
    sets the peak back to 1, so that what remains is the low-side tail, larger where the material is
    thicker and the electron softer."""

    material_eta: tuple[float, ...]
    material_x0: tuple[float, ...]
    field_t: float
    calo_radius_m: float
    calo_z_m: float
    tracker_radius_m: float
    tracker_z_m: float
    cluster_half_dphi: float

    def thickness(self, eta: np.ndarray) -> np.ndarray:
        """Material in radiation lengths at ``eta`` (linear between the tabulated points)."""
        return np.interp(np.abs(eta), self.material_eta, self.material_x0)

    def collected(self, pt: np.ndarray, eta: np.ndarray, minus_log_z: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Fraction of the energy in the cluster, given the draws -ln z (Bethe-Heitler) and ``u`` ~ U(0, 1)
        (the emission point as a fraction of the tracker's transverse extent)."""
        a = np.maximum(np.abs(eta), 1e-6)
        r_end = np.minimum(self.tracker_radius_m, self.tracker_z_m / np.sinh(a))
        r_cal = np.minimum(self.calo_radius_m, self.calo_z_m / np.sinh(a))
        r = u * r_end
        z = np.exp(-minus_log_z)
        dphi = 0.2998 * self.field_t * (r_cal - r) ** 2 / (2.0 * r_cal * np.maximum(z * pt, 1e-3))
        return np.where(dphi > self.cluster_half_dphi, np.maximum(z, 1.0 - z), 1.0)

    def draw(self, pt: np.ndarray, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Collected fraction for electrons of ``pt`` (GeV) and ``eta``, before calibration."""
        shape = np.maximum(self.thickness(eta), 1e-6) / np.log(2.0)
        return self.collected(pt, eta, rng.gamma(shape), rng.random(np.shape(pt)))

    def response(self, pt: np.ndarray, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Calibrated cluster energy over electron energy (1 for most electrons, a low-side tail)."""
        return self.draw(pt, eta, rng) / _brem_calibration(self, np.asarray(pt, np.float64), np.asarray(eta))


_CALIB_ETA = np.linspace(0.0, 2.5, 26)
_CALIB_PT = np.geomspace(4.0, 1000.0, 25)


@functools.cache
def _brem_table(brem: Bremsstrahlung) -> np.ndarray:
    """(eta, pT) grid of the median collected fraction, from 4,000 simulated electrons a cell
    (a fixed seed: the calibration is part of the detector, not of the sample)."""
    rng = np.random.default_rng(20_160_001)
    eta, pt = np.meshgrid(_CALIB_ETA, _CALIB_PT, indexing="ij")
    draws = brem.draw(np.repeat(pt[..., None], 4000, -1), np.repeat(eta[..., None], 4000, -1), rng)
    return np.median(draws, -1)


def _brem_calibration(brem: Bremsstrahlung, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    table = _brem_table(brem)
    x = np.clip(np.abs(eta), _CALIB_ETA[0], _CALIB_ETA[-1])
    y = np.clip(np.log(np.maximum(pt, 1e-3)), np.log(_CALIB_PT[0]), np.log(_CALIB_PT[-1]))
    lx, ly = _CALIB_ETA, np.log(_CALIB_PT)
    i = np.clip(np.searchsorted(lx, x) - 1, 0, len(lx) - 2)
    j = np.clip(np.searchsorted(ly, y) - 1, 0, len(ly) - 2)
    fx, fy = (x - lx[i]) / (lx[i + 1] - lx[i]), (y - ly[j]) / (ly[j + 1] - ly[j])
    return (
        (1 - fx) * (1 - fy) * table[i, j]
        + fx * (1 - fy) * table[i + 1, j]
        + (1 - fx) * fy * table[i, j + 1]
        + fx * fy * table[i + 1, j + 1]
    )


@dataclass(frozen=True)
class FsrRecovery:
    """Final-state-radiation photons added to a lepton's four-momentum, as the experiment's
    H -> 4l selection does it: photons with pT > ``min_pt`` GeV and |eta| < ``max_eta`` within
    dR < ``max_dr`` of a lepton of ``flavours`` (PDG ids), with dR / ET^2 < ``max_dr_over_et2``
    (GeV^-2) and relative isolation (visible particles within ``iso_cone``, over the photon pT) below
    ``max_rel_iso``; each photon goes to its nearest lepton, and each lepton keeps one photon:
    the highest-pT one (``rank = "pt"``) or the one with the smallest dR / ET^2."""

    flavours: tuple[int, ...]
    min_pt: float
    max_eta: float
    max_dr: float
    max_dr_over_et2: float = float("inf")
    max_rel_iso: float = float("inf")
    iso_cone: float = 0.3
    rank: str = "pt"


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
    ecal_crack: tuple[float, float]
    """Barrel-endcap transition of the EM calorimeter: photons (and ATLAS taus) there are not
    reconstructed; electrons are, with the efficiencies of :attr:`electron_eff`."""
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
    sqrt(c^2 E^2 + s^2 E + n^2); with ``ecal_noise_in_et`` n is a transverse energy (n cosh(eta) in
    E); for CMS the barrel/endcap eta-shape factors are applied on top."""
    ecal_noise_in_et: bool
    brem: Bremsstrahlung
    jet_res: tuple[tuple[float, float, float, float], ...]
    """(|eta| upper edge, noise N in GeV, stochastic S in sqrt(GeV), constant C) of the jet pT
    resolution sigma(pT)/pT = N/pT (+) S/sqrt(pT) (+) C; jets are calibrated (mean response 1)."""
    muon_res: tuple[tuple[float, float, float], ...]
    electron_eff: BinnedEfficiency
    """Reconstruction x identification (the H -> 4l working point) efficiency vs true pT and |eta|."""
    muon_eff: BinnedEfficiency
    fsr: FsrRecovery
    photon_eff: tuple[float, float]
    photon_iso_cone: float
    photon_iso_ratio: float
    tau_eff: tuple[float, float]  # (1 prong, 3 prong)
    tau_fake: tuple[float, float]  # jets with 1 or 2-3 core tracks (pT > 1 GeV, dR < 0.2)
    tau_res: float
    taggers: dict[str, FlavourTagger]
    mc_run_number: int
    """Run number written to the experiment layer's event ids."""
    collider: str = "lhc"
    """Which presets' events it sees: a key of ``processes.COLLIDER_SETTINGS``."""
    beam_spot_y_mm: float | None = None
    """Vertical size of the luminous region where it differs from the horizontal one (flat e+e- beams)."""
    track_eff: BinnedEfficiency | None = None
    """Tracking efficiency vs pT and |eta|; None: the Delphes LHC cards' formula of :meth:`track_efficiency`."""
    hcal_res: tuple[tuple[float, float, float, float], ...] | None = None
    """Hadron calorimeter resolution in the form of :attr:`ecal_res`. Given: jets are particle-flow jets,
    clustered from particles measured one by one (charged ones by the tracker, photons and electrons by
    the ECAL, neutral hadrons by the HCAL) instead of being smeared with :attr:`jet_res`."""
    hit_layers: tuple[tuple[float, float], ...] = ()
    """(radius, half-length) in mm of the barrel tracking layers whose crossings become track hits."""
    bfield_t: float = 0.0
    """Solenoid field in tesla (for track curvatures and hits)."""

    @property
    def experiment_id(self) -> int:
        from .. import schema

        return schema.EXPERIMENTS[self.experiment]

    # --- tracking ---------------------------------------------------------------------------
    def track_efficiency(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        if self.track_eff is not None:
            return np.where(np.abs(eta) <= self.tracker_eta, self.track_eff(pt, eta), 0.0)
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
        """Relative energy resolution sigma(E)/E of electrons and photons (the Gaussian core)."""
        noise_scale = np.cosh(eta) if self.ecal_noise_in_et else 1.0
        sigma = _binned_calo(self.ecal_res, energy, eta, noise_scale)
        if self.experiment == "CMS":
            a = np.abs(eta)
            # Delphes CMS card ECal eta shapes: (1 + 0.64 eta^2) in the barrel, (2.16 + 5.6 (|eta| - 2)^2)
            # in the endcaps (from CMS arXiv:1306.2016)
            sigma = sigma * np.where(a <= 1.5, 1.0 + 0.64 * eta**2, 2.16 + 5.6 * (a - 2.0) ** 2)
        return sigma / np.maximum(energy, 1e-9)

    def electron_energy_response(self, energy: np.ndarray, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Measured over true energy of electrons: the bremsstrahlung response (:class:`Bremsstrahlung`)
        times the Gaussian calorimeter resolution."""
        pt = energy / np.cosh(eta)
        return self.brem.response(pt, eta, rng) * (
            1.0 + rng.normal(size=np.shape(energy)) * self.ecal_resolution(energy, eta)
        )

    def electron_efficiency(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        return np.where(self.in_electron_acceptance(eta), self.electron_eff(pt, eta), 0.0)

    def in_electron_acceptance(self, eta: np.ndarray) -> np.ndarray:
        return np.abs(eta) < self.electron_eta

    def in_crack(self, eta: np.ndarray) -> np.ndarray:
        a = np.abs(eta)
        lo, hi = self.ecal_crack
        return (a > lo) & (a < hi)

    def in_photon_acceptance(self, eta: np.ndarray) -> np.ndarray:
        return (np.abs(eta) < self.photon_eta) & ~self.in_crack(eta)

    def photon_efficiency(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        a = np.abs(eta)
        eff = np.where(a <= 1.5, self.photon_eff[0], self.photon_eff[1])
        return np.where(self.in_photon_acceptance(eta), eff, 0.0)

    # --- muons -------------------------------------------------------------------------------
    def muon_resolution(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        return _binned_linear(self.muon_res, pt, eta)

    def muon_efficiency(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        return np.where(np.abs(eta) < self.muon_eta, self.muon_eff(pt, eta), 0.0)

    # --- taus, jets --------------------------------------------------------------------------
    def tau_efficiency(self, n_prong: np.ndarray, eta: np.ndarray) -> np.ndarray:
        eff = np.where(n_prong == 1, self.tau_eff[0], self.tau_eff[1])
        return np.where(self.in_tau_acceptance(eta), eff, 0.0)

    def in_tau_acceptance(self, eta: np.ndarray) -> np.ndarray:
        ok = np.abs(eta) < self.tau_eta
        if self.experiment == "ATLAS":
            ok &= ~self.in_crack(eta)  # ATLAS taus also exclude the calorimeter crack
        return ok

    def hcal_resolution(self, energy: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Relative energy resolution sigma(E)/E of neutral hadrons (particle-flow detectors only)."""
        return _binned_calo(self.hcal_res, energy, eta) / np.maximum(energy, 1e-9)

    def jet_resolution(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Relative jet pT resolution sigma(pT)/pT (see :attr:`jet_res`)."""
        a = np.abs(eta)
        out = np.zeros(np.shape(pt))
        lower = -1.0
        pt = np.maximum(pt, 1e-3)
        for upper, n, s, c in self.jet_res:
            sel = (a > lower) & (a <= upper)
            out = np.where(sel, _quad(n / pt, s / np.sqrt(pt), c), out)
            lower = upper
        last = self.jet_res[-1]
        return np.where(a > lower, _quad(last[1] / pt, last[2] / np.sqrt(pt), last[3]), out)


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


def _binned_calo(table, energy: np.ndarray, eta: np.ndarray, noise_scale: np.ndarray | float = 1.0) -> np.ndarray:
    a = np.abs(eta)
    out = np.full(np.shape(energy), np.nan)
    lower = -1.0
    for upper, c, s, n in table:
        sel = (a > lower) & (a <= upper)
        out = np.where(sel, np.sqrt((c * energy) ** 2 + s**2 * energy + (n * noise_scale) ** 2), out)
        lower = upper
    c, s, n = table[-1][1:]
    return np.where(np.isnan(out), np.sqrt((c * energy) ** 2 + s**2 * energy + (n * noise_scale) ** 2), out)


ATLAS = Detector(
    name="atlas",
    experiment="ATLAS",
    layer="atlas",
    # luminous region: ~10-15 um transverse and ~45-50 mm longitudinal (ATLAS primary-vertex paper,
    # Eur. Phys. J. C 77 (2017) 332); the issue asks for ~45 mm
    beam_spot_xy_mm=0.010,
    beam_spot_z_mm=45.0,
    tracker_eta=2.5,  # inner detector coverage (ATLAS, JINST 3 (2008) S08003)
    calo_eta=4.9,  # calorimeter coverage incl. forward calorimeter (JINST 3 (2008) S08003)
    # electrons |eta| < 2.47, crack 1.37-1.52 included: the H -> 4l selection keeps electrons there
    # (ATLAS, Eur. Phys. J. C 80 (2020) 957, arXiv:2004.03447, Sec. 4: "|eta| < 2.47"); photons
    # |eta| < 2.37 without the crack (ATLAS, Eur. Phys. J. C 79 (2019) 639, arXiv:1902.04655)
    electron_eta=2.47,
    ecal_crack=(1.37, 1.52),
    photon_eta=2.37,
    muon_eta=2.7,  # muon spectrometer coverage (JINST 3 (2008) S08003)
    tau_eta=2.5,  # ATL-PHYS-PUB-2015-045
    jet_eta=4.5,  # as the issue asks (ATLAS jets are used up to |eta| = 4.5)
    # sigma(q/pT) = 0.34 TeV^-1 (1 (+) 44 GeV/pT) at eta ~ 0.25 (ATLAS, JINST 3 (2008) S08003, Table 10.2):
    # sigma(pT)/pT = 1.5% (+) 0.034% pT; for 1.5 < |eta| < 1.75 the table gives 0.41 TeV^-1 (1 (+) 80 GeV/pT),
    # i.e. 3.3% (+) 0.041% pT, used up to |eta| = 2.5
    track_pt_res=((1.5, 0.015, 3.4e-4), (2.5, 0.033, 4.1e-4)),
    # sigma(d0) = 10 um (1 (+) 14 GeV/pT), sigma(z0 sin theta) = 91 um (1 (+) 2.3 GeV/pT)
    # (JINST 3 (2008) S08003, Table 10.2)
    d0_res_mm=(0.010, 0.140),
    z0_res_mm=(0.091, 0.210),
    # EM calorimeter: sigma(E)/E = 10%/sqrt(E) (+) 0.7% (the performance goal of ATLAS, JINST 3 (2008)
    # S08003, Table 1.1, met in the barrel and endcaps: Sec. 5.1) with a noise term of 350 MeV x cosh(eta)
    # (electronic and pile-up noise at <mu> ~ 20; ATLAS, Eur. Phys. J. C 74 (2014) 3071, arXiv:1407.5063,
    # Sec. 2), up to |eta| = 3.2; FCal (3.2-4.9): Delphes ATLAS card ECal sqrt(E^2 0.035^2 + E 0.285^2)
    ecal_res=((3.2, 0.007, 0.10, 0.35), (4.9, 0.0350, 0.285, 0.0)),
    ecal_noise_in_et=True,
    brem=Bremsstrahlung(
        # inner-detector material in front of the calorimeter, X/X0 vs |eta| (ATLAS, JINST 3 (2008) S08003,
        # Sec. 4.9, figure of the material distribution of the inner detector; approximate values (the
        # figure was not at hand when they were entered, check them):
        # ~0.5 X0 at eta = 0 rising to ~2.3 X0 where the services leave the ID near |eta| = 1.8)
        material_eta=(0.0, 0.5, 1.0, 1.4, 1.8, 2.2, 2.5),
        material_x0=(0.5, 0.6, 0.9, 1.5, 2.3, 1.7, 1.4),
        # 2 T solenoid; EM barrel accordion from r = 1.5 m, EMEC front face at |z| = 3.7 m; ID envelope
        # r < 1.15 m, |z| < 3.512 m (JINST 3 (2008) S08003, Secs. 1, 4 and 5)
        field_t=2.0,
        calo_radius_m=1.5,
        calo_z_m=3.7,
        tracker_radius_m=1.15,
        tracker_z_m=3.512,
        # electron clusters span 3 x 7 second-layer cells of 0.025 x 0.0245 in the barrel, i.e. +-0.086 in phi
        # (ATLAS, Eur. Phys. J. C 79 (2019) 639, arXiv:1902.04655, Sec. 3)
        cluster_half_dphi=0.086,
    ),
    # jet pT resolution: (24 +- 1.5)% at 20 GeV and (6 +- 0.5)% at 300 GeV for central jets (ATLAS,
    # Eur. Phys. J. C 81 (2021) 689, arXiv:2007.02645, abstract); N = 1.24 GeV and S = 1.04 sqrt(GeV) go
    # through both points (C = 0); the same is used at all |eta| (forward jets are not measured here)
    jet_res=((4.9, 1.24, 1.04, 0.0),),
    # muons (combined ID + MS): sigma(pT)/pT = 1.7% for muons from J/psi and 2.3% for muons from Z decays in
    # the central region, 2.9% for Z muons at |eta| > 2.2 (ATLAS, Eur. Phys. J. C 76 (2016) 292,
    # arXiv:1603.05598, abstract and Sec. 8). Read as r1 (+) r2 pT through the J/psi (pT ~ 10 GeV) and Z
    # (pT ~ 45 GeV) points: r1 = 1.66%, r2 = 0.0353%/GeV for |eta| < 1.05; beyond, r1 = 2.43% with the same r2
    # (2.9% at 45 GeV; the paper's forward value, used from the end of the barrel on)
    muon_res=((1.05, 0.0166, 3.53e-4), (2.7, 0.0243, 3.53e-4)),
    # electrons: reconstruction x LooseLH (the H -> 4l working point, arXiv:2004.03447 Sec. 4) efficiency
    # vs ET in the barrel, the crack and the endcaps (ATLAS, Eur. Phys. J. C 79 (2019) 639,
    # arXiv:1902.04655: reconstruction efficiency vs ET, Sec. 5 figures, 97-99% above 15 GeV; LooseLH vs
    # ET, Sec. 6 figures, 93% at 40 GeV in the text; approximate values of those curves, to ~0.03: the
    # figures were not at hand when they were entered, check them against the paper)
    electron_eff=BinnedEfficiency(
        pt_edges=(4.5, 7.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 80.0),
        eta_edges=(1.37, 1.52, 2.47),
        values=(
            (0.75, 0.82, 0.86, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96),
            (0.65, 0.72, 0.76, 0.79, 0.81, 0.83, 0.85, 0.86, 0.87),
            (0.72, 0.79, 0.83, 0.86, 0.88, 0.90, 0.92, 0.93, 0.94),
        ),
    ),
    # muons (Loose, the H -> 4l working point): reconstruction efficiency close to 99% for |eta| < 2.5 and
    # 5 < pT < 100 GeV (ATLAS, arXiv:1603.05598, abstract and Sec. 6); 2.5-2.7 (stand-alone muons) the same
    muon_eff=BinnedEfficiency(pt_edges=(5.0,), eta_edges=(2.7,), values=((0.99,),)),
    # collinear FSR recovery for muons: the highest-ET photon with ET > 1.5 GeV within dR < 0.15 of the muon
    # (ATLAS, JHEP 03 (2018) 095, arXiv:1712.02304, Sec. 4; electrons need none: their cluster holds it)
    fsr=FsrRecovery(flavours=(13,), min_pt=1.5, max_eta=2.37, max_dr=0.15),
    photon_eff=(0.95, 0.85),  # Delphes ATLAS card PhotonEfficiency (pT > 10 GeV)
    photon_iso_cone=0.5,
    photon_iso_ratio=0.12,  # Delphes ATLAS card PhotonIsolation
    # Delphes ATLAS card TauTagging (ATL-PHYS-PUB-2015-045, medium): eff 0.70 (1 prong), 0.60 (3 prongs);
    # mistag 0.02 (1 core track), 0.01 (2-3 core tracks)
    tau_eff=(0.70, 0.60),
    tau_fake=(0.02, 0.01),
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
    name="cms",
    experiment="CMS",
    layer="cms",
    # luminous region as for ATLAS (same LHC beams)
    beam_spot_xy_mm=0.010,
    beam_spot_z_mm=45.0,
    tracker_eta=2.5,  # CMS tracker (JINST 3 (2008) S08004)
    calo_eta=5.0,  # HF up to |eta| = 5 (JINST 3 (2008) S08004; Delphes CMS card)
    # ECAL |eta| < 2.5 with the barrel-endcap gap 1.4442-1.566 (CMS, JINST 16 (2021) P05014); electrons in the
    # gap are kept, as the H -> 4l selection does (pT > 7 GeV, |eta| < 2.5: CMS, JHEP 11 (2017) 047,
    # arXiv:1706.09936, Sec. 3); photons there are not reconstructed
    electron_eta=2.5,
    ecal_crack=(1.4442, 1.566),
    photon_eta=2.5,
    muon_eta=2.4,  # Delphes CMS card MuonEfficiency; CMS JINST 13 (2018) P06015
    tau_eta=2.3,  # CMS DeepTau selections (CMS, JINST 17 (2022) P07023)
    jet_eta=4.7,  # CMS PF jets up to |eta| = 4.7 (CMS, JINST 12 (2017) P02014)
    # Delphes CMS card ChargedHadronMomentumSmearing (from CMS arXiv:1405.6569):
    # sqrt(0.01^2 + pT^2 1.5e-4^2) |eta| <= 0.5, sqrt(0.015^2 + pT^2 2.5e-4^2) up to 1.5, 0.025/5.5e-4 up to 2.5
    track_pt_res=((0.5, 0.010, 1.5e-4), (1.5, 0.015, 2.5e-4), (2.5, 0.025, 5.5e-4)),
    # CMS tracker impact parameters (CMS, JINST 9 (2014) P10009, resolution plots read off for |eta| < 0.9):
    # sigma(d0) ~ 10 um at high pT and ~ 95 um at pT = 1 GeV; sigma(dz) ~ 30 um and ~ 110 um
    d0_res_mm=(0.010, 0.095),
    z0_res_mm=(0.030, 0.105),
    # Delphes CMS card ECal: sqrt(E^2 0.008^2 + E 0.11^2 + 0.40^2) (eta shapes in ecal_resolution) up to 2.5,
    # sqrt(E^2 0.107^2 + E 2.08^2) in HF; an in-situ parametrisation (from CMS arXiv:1306.2016: electrons from
    # Z decays better than 2% for |eta| < 0.8, 2-5% elsewhere)
    ecal_res=((2.5, 0.008, 0.11, 0.40), (5.0, 0.107, 2.08, 0.0)),
    ecal_noise_in_et=False,
    brem=Bremsstrahlung(
        # tracker material, X/X0 vs |eta| (CMS, JINST 3 (2008) S08004, Sec. 3.1, tracker material budget
        # figure; approximate values, entered without the figure at hand: ~0.4 X0 at eta = 0, ~1.8 X0 at
        # |eta| ~ 1.4, ~1 X0 at |eta| = 2.5)
        material_eta=(0.0, 0.6, 1.0, 1.2, 1.45, 1.8, 2.0, 2.5),
        material_x0=(0.4, 0.5, 0.9, 1.3, 1.8, 1.5, 1.2, 0.9),
        # 3.8 T solenoid; ECAL barrel from r = 1.29 m, endcap front at |z| = 3.154 m; tracker r < 1.1 m,
        # |z| < 2.8 m (CMS, JINST 3 (2008) S08004, Secs. 1, 3 and 4)
        field_t=3.8,
        calo_radius_m=1.29,
        calo_z_m=3.154,
        tracker_radius_m=1.1,
        tracker_z_m=2.8,
        # superclusters collect brem in a road of +-17 crystals (+-0.3 rad) in phi
        # (CMS, JINST 10 (2015) P06005, arXiv:1502.02701, Sec. 3.1)
        cluster_half_dphi=0.3,
    ),
    # jet pT resolution at central rapidities: 15-20% at 30 GeV, ~10% at 100 GeV, 5% at 1 TeV (CMS, JINST 12
    # (2017) P02014, arXiv:1607.03663, abstract); N = 1.25 GeV, S = 0.90 sqrt(GeV), C = 0.041 go through
    # 17.5%, 10% and 5%; used at all |eta|
    jet_res=((5.0, 1.25, 0.90, 0.041),),
    # Delphes CMS card MuonMomentumSmearing (same functional form and numbers as the ATLAS card): 1-3%
    # below 100 GeV, within "1% to 6% depending on pseudorapidity for pT < 100 GeV" (CMS, JINST 7 (2012)
    # P10002, arXiv:1206.4071, abstract)
    muon_res=((0.5, 0.010, 1.0e-4), (1.5, 0.015, 1.5e-4), (2.4, 0.025, 3.5e-4)),
    # electrons: reconstruction (above 95% for pT > 20 GeV) x the H -> 4l identification working point vs pT
    # in the barrel, the gap and the endcaps (CMS, JINST 16 (2021) P05014, arXiv:2012.06888, Secs. 5 and 7;
    # arXiv:1706.09936, Sec. 3; approximate values of the efficiency curves, to ~0.03: the figures were not
    # at hand when they were entered, check them against the paper)
    electron_eff=BinnedEfficiency(
        pt_edges=(5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 80.0),
        eta_edges=(1.4442, 1.566, 2.5),
        values=(
            (0.60, 0.70, 0.78, 0.84, 0.88, 0.91, 0.93, 0.94, 0.95),
            (0.50, 0.58, 0.65, 0.71, 0.75, 0.78, 0.80, 0.81, 0.82),
            (0.55, 0.65, 0.73, 0.80, 0.85, 0.88, 0.90, 0.91, 0.92),
        ),
    ),
    # muons: reconstruction and loose identification, above 95% for pT above a few GeV over |eta| < 2.4
    # (CMS, JINST 7 (2012) P10002, abstract), ~99% for the loose ID in Run 2 (CMS, JINST 13 (2018) P06015, Sec. 6)
    muon_eff=BinnedEfficiency(pt_edges=(5.0,), eta_edges=(2.4,), values=((0.99,),)),
    # FSR recovery for electrons and muons: photons with pT > 2 GeV, |eta| < 2.4, relative PF isolation
    # (dR = 0.3) < 1.8, dR(l, gamma) < 0.5 and dR / ET^2 < 0.012 GeV^-2, attached to the closest lepton; each
    # lepton keeps the one with the smallest dR / ET^2 (CMS, JHEP 11 (2017) 047, arXiv:1706.09936, Sec. 3)
    fsr=FsrRecovery(
        flavours=(11, 13),
        min_pt=2.0,
        max_eta=2.4,
        max_dr=0.5,
        max_dr_over_et2=0.012,
        max_rel_iso=1.8,
        iso_cone=0.3,
        rank="dr_over_et2",
    ),
    photon_eff=(0.95, 0.85),  # Delphes CMS card PhotonEfficiency
    photon_iso_cone=0.5,
    photon_iso_ratio=0.12,  # Delphes CMS card PhotonIsolation
    # DeepTau vs jets, Medium: ~0.65 tau efficiency at ~0.5% jet misidentification
    # (CMS, JINST 17 (2022) P07023)
    tau_eff=(0.65, 0.65),
    tau_fake=(0.005, 0.005),
    tau_res=0.10,  # ~10% (CMS, JINST 17 (2022) P07023)
    taggers={
        # DeepJet medium working point: b efficiency ~0.80 at 1% light and ~13% c misidentification
        # (CMS-DP-2018-058)
        "DeepFlav": FlavourTagger(eff_b=0.80, rej_c=1 / 0.13, rej_light=100.0),
    },
    mc_run_number=1,  # CMS simulation is produced as run 1
)

IDEA_TRACKING_SOURCE = (
    "fit to the track-state covariances that the IDEA card's TrackCovariance module (its IDEA geometry: "
    "vertex layers at 13.7-315 mm with 3-7 um resolution, 112 drift-chamber layers 0.36-2.0 m at 100 um, "
    "silicon wrapper at 2.04/2.06 m, B = 2 T) wrote into the FCC-ee sample p8_ee_WW_ecm240_edm4hep "
    "(scikit-hep-testdata; 287 tracks, pT 0.7-60 GeV)"
)

FCCEE_IDEA = Detector(
    name="idea",
    experiment="FCC-ee",
    layer="edm4hep",
    collider="fcc-ee",
    # luminous region at 240 GeV: sigma_x = 9.70 um (13.7 um / sqrt 2), sigma_y = 25.5 nm, sigma_z = 0.64 mm
    # (the FCC-ee Pythia 8 cards, HEP-FCC/FCC-config FCCee/Generator/Pythia8/p8_ee_ZH_ecm240.cmd)
    beam_spot_xy_mm=9.70e-3,
    beam_spot_y_mm=25.5e-6,
    beam_spot_z_mm=0.64,
    tracker_eta=2.56,  # IDEA card tracking efficiencies: 0 beyond |eta| = 2.56
    calo_eta=3.0,  # IDEA card DualReadoutCalorimeter EtaMax = 3.0 (100 mrad)
    # electrons are tracks matched to the calorimeter (IDEA card ElectronFilter on eflow tracks): the tracker's
    # coverage; muons likewise; photons: the calorimeter's (PhotonEfficiency up to |eta| = 3.0)
    electron_eta=2.56,
    ecal_crack=(0.0, 0.0),
    photon_eta=3.0,
    muon_eta=2.56,
    tau_eta=3.0,
    jet_eta=3.0,  # IDEA card TauTagging TauEtaMax 3.0; jets from eflow within the calorimeter
    # sigma(pT)/pT = a (+) b pT: |eta| < 0.9: a = 0.029%, b = 0.0065%/GeV; 0.9-1.6: 0.057%, 0.0076%/GeV;
    # 1.6-2.56: 0.24%, 0.016%/GeV (IDEA_TRACKING_SOURCE: 152, 15 and 9 tracks of those bins)
    track_pt_res=((0.9, 2.9e-4, 6.5e-5), (1.6, 5.7e-4, 7.6e-5), (2.56, 2.4e-3, 1.55e-4)),
    # sigma(d0) = 2.7 um (+) 12.7 um GeV / (pT sin^1/2 theta), sigma(z0 sin theta) = 2.1 um (+) 2.0 um GeV / (...)
    # (IDEA_TRACKING_SOURCE, all |eta|: 188 and 160 tracks); the IDEA concept quotes sigma(d0) ~ 2 um at high momentum
    # (A. Ilg, "The IDEA detector concept for FCC-ee", arXiv:2510.26195)
    d0_res_mm=(0.0027, 0.0127),
    z0_res_mm=(0.0021, 0.0020),
    # crystal ECAL: sigma(E) = sqrt(E^2 0.005^2 + E 0.03^2 + 0.002^2), i.e. 3%/sqrt(E) (+) 0.5% (+) 2 MeV, up to
    # |eta| = 3.0 (IDEA card ECalResolutionFormula, from arXiv:2008.00338; arXiv:2510.26195 quotes 3%/sqrt(E) (+) 0.5%)
    ecal_res=((3.0, 0.005, 0.03, 0.002),),
    ecal_noise_in_et=False,
    brem=Bremsstrahlung(
        # material in front of the calorimeter at eta = 0, summed over the IDEA card's DetectorGeometry (thickness /
        # X0 of each layer): beam pipe 0.0068, five vertex layers 0.0188, drift-chamber walls 0.0128 and gas
        # 0.0029, silicon wrapper 0.0100: 0.051 X0, growing as 1 / sin(theta) to the end of the barrel
        # (|eta| = 0.88), then the chamber's end plate (DCHWALL 0.25 m / 5.55 m = 0.045 X0) on top (approximate:
        # forward tracks cross fewer barrel layers than the 1 / sin(theta) scaling counts)
        material_eta=(0.0, 0.5, 0.88, 1.0, 2.0, 2.56),
        material_x0=(0.051, 0.058, 0.072, 0.12, 0.23, 0.35),
        # 2 T; calorimeter entrance at r = 2.25 m, |z| = 2.5 m; drift chamber r < 2.02 m, |z| < 2.125 m (IDEA card
        # B, R, HL, DCHRMAX, DCHZMAX)
        field_t=2.0,
        calo_radius_m=2.25,
        calo_z_m=2.5,
        tracker_radius_m=2.02,
        tracker_z_m=2.125,
        # towers of 0.02 x 0.02 in eta x phi (IDEA card EtaPhiRes): a 3 x 3 cluster spans +-0.03 in phi
        cluster_half_dphi=0.03,
    ),
    jet_res=(),  # particle-flow jets (hcal_res): no overall jet smearing
    muon_res=((0.9, 2.9e-4, 6.5e-5), (1.6, 5.7e-4, 7.6e-5), (2.56, 2.4e-3, 1.55e-4)),  # the tracker's (card: tracks)
    # electrons and muons: 99% for E >= 2 GeV (IDEA card ElectronEfficiency, MuonEfficiency; here in pT, which is
    # below E: the registry's 5 GeV lepton threshold is above both)
    electron_eff=BinnedEfficiency(pt_edges=(2.0,), eta_edges=(2.56,), values=((0.99,),)),
    muon_eff=BinnedEfficiency(pt_edges=(2.0,), eta_edges=(2.56,), values=((0.99,),)),
    # no FSR recovery: the FCC-ee ZH recoil analyses use the bare leptons, and the card recovers none
    fsr=FsrRecovery(flavours=(), min_pt=2.0, max_eta=3.0, max_dr=0.0),
    photon_eff=(0.99, 0.99),  # IDEA card PhotonEfficiency (E >= 2 GeV)
    photon_iso_cone=0.5,
    photon_iso_ratio=9999.0,  # IDEA card PhotonIsolation: DeltaRMax 0.5, PTRatioMax 9999 (none)
    # IDEA card TauTagging: 85% for hadronic taus, 1% mistag
    tau_eff=(0.85, 0.85),
    tau_fake=(0.01, 0.01),
    # not in the card (taus are particle-flow jets there); their visible decay products are tracks and photons,
    # measured to 0.03-0.3% and ~1% at 10 GeV above: 2% is an upper bound of that, not a published number
    tau_res=0.02,
    taggers={},  # the edm4hep layer holds no flavour tags
    mc_run_number=0,  # the run number of the FCC-ee Delphes production (p8_ee_WW_ecm240_edm4hep EventHeader)
    # tracking efficiency 100% for pT >= 0.1 GeV, |eta| <= 2.56 (IDEA card ChargedHadronTrackingEfficiency)
    track_eff=BinnedEfficiency(pt_edges=(0.1,), eta_edges=(2.56,), values=((1.0,),)),
    # dual-readout fibre HCAL: sigma(E) = sqrt(E^2 0.01^2 + E 0.30^2 + 0.05^2) up to |eta| = 3.0 (IDEA card
    # HCalResolutionFormula; arXiv:2510.26195 quotes ~30%/sqrt(E))
    hcal_res=((3.0, 0.01, 0.30, 0.05),),
    # hits: the five vertex barrel layers (r, half-length in mm: 13.7/96.5, 23.7/160.9, 34.0/257, 141/163.1,
    # 315/340), every eighth of the 112 drift-chamber layers (0.36-2.0 m, |z| < 2 m) and the two silicon-wrapper
    # layers (2040, 2060 mm, |z| < 2350 mm), from the IDEA card's DetectorGeometry
    hit_layers=(
        (13.7, 96.5),
        (23.7, 160.9),
        (34.0, 257.0),
        (141.0, 163.1),
        (315.0, 340.0),
        *((360.0 + 14.7748 * k, 2000.0) for k in range(0, 112, 8)),
        (2040.0, 2350.0),
        (2060.0, 2350.0),
    ),
    bfield_t=2.0,  # IDEA card B = 2.0 T
)

DETECTORS: dict[str, Detector] = {d.name: d for d in (ATLAS, CMS, FCCEE_IDEA)}

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
    "calorimeter": "jets from particles (not towers) with the published pT resolution (detector.jet_res); "
    "electrons dressed with photons within dR < 0.1, their bremsstrahlung in the tracker "
    "material from the Bethe-Heitler law and the field geometry (detector.Bremsstrahlung); "
    "topoetcone from visible particles (pile-up included) in the cone; cms pfRelIso from "
    "visible particles other than electrons, muons and recovered FSR photons (PF isolation "
    "sums hadrons and photons only)",
    "fsr": "final-state photons added to the leptons' momenta with the experiment's H -> 4l photon criteria "
    "(detector.FsrRecovery); ATLAS's conditions on the Z1 mass (66 < mZ1 < 89 GeV, m(ll gamma) < 100 GeV) "
    "and its far-FSR recovery are not applied",
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


EE_SIMPLE_MODELS: dict[str, str] = {
    "beams": "head-on e+e- beams (the 30 mrad crossing angle of FCC-ee, CDR Vol. 2 Sec. 2.2, is not simulated, as in "
    "the FCC-ee Delphes samples); the beam energy spread and the luminous region of the FCC-ee Pythia cards",
    "particle_flow": "every visible particle measured by its own detector (charged ones by the tracker, photons by the "
    "ECAL, neutral hadrons by the HCAL, with the resolutions of detector.FCCEE_IDEA), without the "
    "calorimeter's significance thresholds, tower granularity or confusion between showers; jets "
    "(anti-kt R = 0.4) are clustered from them, and the missing four-momentum is the beams' minus "
    "their sum",
    "hits": "crossings of each track's true helix (from its production vertex, in the 2 T field) with the IDEA "
    "barrel layers of detector.FCCEE_IDEA.hit_layers, unsmeared, energy 0 (as the FCC-ee Delphes hits), "
    "time = path / (beta c); layer = the crossing's rank along the track, as the EDM4hep converter numbers "
    "them; endcap disks are not modelled (a helix leaving the barrel stops giving hits)",
    "identification": SIMPLE_MODELS["identification"],
    "tracks": "straight-line extrapolation from the true production vertex to the beam line for d0/z0, then Gaussian "
    "smearing with the IDEA resolutions; eta/phi unsmeared",
    "isolation": "edm4hep isolation_var as the IDEA card computes it: visible particles with pT > 0.5 GeV in "
    "dR < 0.5 over the object's pT",
}
"""The simple models of the particle-flow (e+e-) detectors, written to the metadata notes."""
