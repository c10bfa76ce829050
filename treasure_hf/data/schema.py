"""The schema registry: the one place where the common format is declared.

Every object type, field, unit, dtype, feature group, token type id, experiment layer and
metadata attribute of the common format lives here, as data. Readers, writers, the validator,
converters, the generator, tokenizers and models all read this module; a field name typed
anywhere else is a defect.

Units: energies and momenta in GeV, angles in radians, lengths in mm, times in ns (curvatures in
1/mm, magnetic fields in T).

Layout of a file (HDF5 keys, ``LAYER/GROUP/FIELD``)::

    common/electrons/pt      (n_events, max_objects)   float32, GeV
    common/electrons/mask    (n_events, max_objects)   bool, True for a real object
    common/electrons/n       (n_events,)               int32, objects before truncation
    common/jets/...          (n_events, max_jets)
    common/constituents/pt   (n_events, max_jets, 50)  sub-objects of jets, aligned with them
    common/met/pt            (n_events,)
    atlas/electrons/LHTight  (n_events, max_objects)   aligned with common/electrons
    metadata                 a group that only holds attributes

In PCDF (flat Parquet tables) the same fields appear as columns named by :func:`pcdf_column`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

FORMAT_VERSION = "0.1"
"""Version of the common format (v0 of the seeds, revision 1). Readers refuse other versions."""

EXPERIMENTS: dict[str, int] = {"ATLAS": 0, "CMS": 1, "FCC-ee": 2}
"""experiment name -> ``common/event/experiment_id``: the LHC experiments, and the future e+e- collider
whose EDM4hep files (key4hep full and Delphes fast simulation) ``treasure convert edm4hep`` reads and
whose IDEA-like detector the generator models. Ids are never renumbered: a new experiment appends one."""

E_PLUS_E_MINUS: tuple[str, ...] = ("FCC-ee",)
"""The experiments of :data:`EXPERIMENTS` at e+e- colliders: their events carry the initial state's
four-momentum (metadata ``initial_state``) and the missing four-momentum (``edm4hep/event/missing_*``)."""

FEATURE_GROUPS: tuple[str, ...] = ("kinematics", "id", "substructure", "btagging", "impact", "quality")
"""Feature groups of the hierarchical tokenization: each object becomes one sub-token per group."""

TRANSFORMS: tuple[str, ...] = ("log", "log1p", "linear", "angle", "flag", "category", "score", "count")
"""How a field is preprocessed before tokenization: ``log`` (log of a positive scale such as pT),
``log1p`` (non-negative, often zero, such as an isolation ratio), ``linear`` (standardised),
``angle`` (sin/cos of an azimuth), ``flag`` (0/1), ``category`` (small integer code),
``score`` (a probability in [0, 1]), ``count`` (a non-negative integer, log1p-scaled)."""

GroupKind = Literal["event", "object", "sub"]


@dataclass(frozen=True)
class Field:
    """One stored quantity.

    ``dtype`` is a numpy dtype name. ``unit`` is GeV, rad, mm, ns, 1/GeV, 1/mm (a helix curvature),
    T (a magnetic field) or '' (dimensionless).
    ``feature_group`` is one of :data:`FEATURE_GROUPS`; ``transform`` one of :data:`TRANSFORMS`.
    ``absent_in_data``: collision data may lack it (simulation truth: pile-up truth, the MC
    channel, generator-level quantities); a converter of collision data then fills it with
    :attr:`missing_value` and lists it in ``missing_fields``, and the validator accepts exactly
    these fields missing in events with ``is_simulation`` = 0.
    """

    name: str
    dtype: str
    unit: str = ""
    feature_group: str = "kinematics"
    transform: str = "linear"
    doc: str = ""
    absent_in_data: bool = False

    def __post_init__(self) -> None:
        np.dtype(self.dtype)
        if self.feature_group not in FEATURE_GROUPS:
            raise ValueError(f"field {self.name!r}: unknown feature group {self.feature_group!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"field {self.name!r}: unknown transform {self.transform!r}")

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def missing_value(self) -> float | int:
        """What fills this field for a real object when the input lacks it (NaN, or -1 for ints)."""
        return math.nan if self.np_dtype.kind == "f" else -1


@dataclass(frozen=True)
class Group:
    """A group of the format: per-event values (``event``), padded objects (``object``), or
    sub-objects padded per parent object (``sub``: jet constituents, track hits)."""

    name: str
    kind: GroupKind
    type_id: int
    max_objects: int | None = None
    """Default padding size: objects per event (``object``) or sub-objects per parent (``sub``)."""
    pt_cut_gev: float | None = None
    """Default minimum pT in GeV below which converters drop an object (``object`` groups)."""
    parent: str | None = None
    """For ``sub`` groups: the object group they belong to."""
    sort_field: str | None = "pt"
    """Objects are stored in descending order of this common field; None keeps the input order."""
    singular: str = ""
    """One object's name (``electron``, ``hit``): PCDF link columns (``jetIndex``) and per-object
    output names (``constituent_ids``)."""
    sequence_cap: int | None = None
    """Default number of objects (``object``) or sub-objects per parent (``sub``, None: all stored)
    that a tokenized event holds, the highest pT first; smaller than :attr:`max_objects`, the
    padding of the stored format."""
    doc: str = ""

    @property
    def pcdf_table(self) -> str:
        """The PCDF table that holds this group's columns."""
        return "events" if self.kind == "event" else self.name

    @property
    def index_column(self) -> str | None:
        """For ``sub`` groups, the PCDF column that links to the parent's ``index``."""
        if self.parent is None:
            return None
        return f"{GROUPS[self.parent].singular}Index"


def _f(
    name: str,
    dtype: str = "float32",
    unit: str = "",
    group: str = "kinematics",
    transform: str = "linear",
    doc: str = "",
    absent_in_data: bool = False,
) -> Field:
    return Field(name, dtype, unit, group, transform, doc, absent_in_data)


# Kinematics shared by several types (declared once, reused by reference).
_PT = _f("pt", unit="GeV", transform="log", doc="transverse momentum")
_ETA = _f("eta", doc="pseudorapidity")
_PHI = _f("phi", unit="rad", transform="angle", doc="azimuth in [-pi, pi)")
_CHARGE = _f("charge", "int8", transform="category", doc="electric charge in units of e")
_TRK_ISO = _f(
    "trk_iso03",
    group="id",
    transform="log1p",
    doc="sum pT of tracks with dR < 0.3 (see ISOLATION), divided by the object's pT",
)
_D0 = _f("d0", unit="mm", group="impact", doc="transverse impact parameter")
_Z0 = _f("z0", unit="mm", group="impact", doc="longitudinal impact parameter")

GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        Group("event", "event", type_id=1, singular="event", doc="event context: primary vertex, pile-up, experiment"),
        Group("electrons", "object", type_id=2, max_objects=8, pt_cut_gev=5.0, singular="electron", sequence_cap=4),
        Group("muons", "object", type_id=3, max_objects=8, pt_cut_gev=5.0, singular="muon", sequence_cap=4),
        Group("jets", "object", type_id=4, max_objects=20, pt_cut_gev=20.0, singular="jet", sequence_cap=10),
        Group("taus", "object", type_id=5, max_objects=4, pt_cut_gev=20.0, singular="tau", sequence_cap=2),
        Group("photons", "object", type_id=6, max_objects=8, pt_cut_gev=10.0, singular="photon", sequence_cap=4),
        Group("tracks", "object", type_id=7, max_objects=100, pt_cut_gev=0.5, singular="track", sequence_cap=30),
        Group("met", "event", type_id=8, singular="met", doc="missing transverse momentum, one value per event"),
        Group(
            "constituents",
            "sub",
            type_id=9,
            max_objects=50,
            parent="jets",
            singular="constituent",
            doc="jet constituents, up to 50 per jet",
        ),
        Group(
            "hits",
            "sub",
            type_id=10,
            max_objects=30,
            parent="tracks",
            sort_field=None,
            singular="hit",
            doc="track hits, up to 30 per track, in the order the source gives (inside out)",
        ),
    )
}
"""Every group, in token-type order. ``type_id`` 0 is reserved for special tokens."""

SPECIAL_TYPE_ID = 0
TOKEN_TYPE_IDS: dict[str, int] = {"special": SPECIAL_TYPE_ID, **{g.name: g.type_id for g in GROUPS.values()}}
"""Token type ids: specials first, then the event context, electrons, muons, jets, ... (the
order of objects in a tokenized event)."""

OBJECT_TYPES: tuple[str, ...] = tuple(n for n, g in GROUPS.items() if g.kind == "object")
SUB_OBJECT_TYPES: tuple[str, ...] = tuple(n for n, g in GROUPS.items() if g.kind == "sub")
EVENT_GROUPS: tuple[str, ...] = tuple(n for n, g in GROUPS.items() if g.kind == "event")
SEQUENCE_CAPS: dict[str, int] = {n: g.sequence_cap for n, g in GROUPS.items() if g.sequence_cap is not None}
"""Objects of each type a tokenized event holds by default (:attr:`Group.sequence_cap`)."""


@dataclass(frozen=True)
class Layer:
    """A layer of the format: ``common`` (required, experiment-independent) or an experiment's
    own variables (``atlas``, ``cms``) or generator truth (``truth``), aligned slot by slot with
    the common objects."""

    name: str
    fields: Mapping[str, tuple[Field, ...]]
    required: bool = False
    doc: str = ""


_flag_id = dict(dtype="float32", group="id", transform="flag")
_score = dict(dtype="float32", group="id", transform="score")
_iso_gev = dict(unit="GeV", group="id", transform="log1p")

COMMON = Layer(
    "common",
    required=True,
    doc="the experiment-independent core of every file",
    fields={
        "electrons": (_PT, _ETA, _PHI, _CHARGE, _TRK_ISO),
        "muons": (_PT, _ETA, _PHI, _CHARGE, _TRK_ISO),
        "taus": (
            _PT,
            _ETA,
            _PHI,
            _CHARGE,
            _f("is_1prong", "int8", group="substructure", transform="flag", doc="1 for a one-prong decay"),
        ),
        "photons": (_PT, _ETA, _PHI, _TRK_ISO),
        "jets": (
            _PT,
            _ETA,
            _PHI,
            _f("mass", unit="GeV", transform="log1p"),
            _f("n_trk", "int16", group="substructure", transform="count", doc="number of tracks with pT > 0.5 GeV"),
        ),
        "tracks": (_PT, _ETA, _PHI, _D0, _Z0),
        "met": (
            _f("pt", unit="GeV", transform="log1p"),
            _PHI,
            _f("sumet", unit="GeV", transform="log1p", doc="scalar sum of transverse energy"),
        ),
        "event": (
            _f("pvx", unit="mm", doc="primary vertex x"),
            _f("pvy", unit="mm", doc="primary vertex y"),
            _f("pvz", unit="mm", doc="primary vertex z"),
            _f(
                "mu",
                transform="log1p",
                absent_in_data=True,
                doc="average interactions per bunch crossing (pile-up): the simulated mean in simulation; in "
                "collision data the luminosity-based mean where the file has one (ATLAS), else missing "
                "(CMS NanoAOD data has no per-event pile-up)",
            ),
            _f("experiment_id", "int8", transform="category", doc="0 = ATLAS, 1 = CMS, 2 = FCC-ee (see EXPERIMENTS)"),
            _f("is_simulation", "int8", transform="flag", doc="1 = Monte Carlo, 0 = data"),
        ),
        "constituents": (_PT, _ETA, _PHI, _CHARGE, _D0, _Z0),
        "hits": (
            _ETA,
            _PHI,
            _f("energy", unit="GeV", transform="log1p"),
            _f("layer", "int16", group="quality", transform="category"),
            _f("time", unit="ns"),
        ),
    },
)

_topoetcone20 = _f("topoetcone20", **_iso_gev, doc="calorimeter isolation, cone 0.2")
_ptvarcone30 = _f("ptvarcone30", **_iso_gev, doc="track isolation, variable cone up to 0.3")
_event_ids = (
    _f("event_number", "int64", group="quality", doc="event number"),
    _f("run_number", "int64", group="quality", doc="run number"),
)

ATLAS = Layer(
    "atlas",
    doc="ATLAS PHYSLITE variables; floats so that a missing decoration can be NaN",
    fields={
        "electrons": (
            _f("LHLoose", **_flag_id),
            _f("LHMedium", **_flag_id),
            _f("LHTight", **_flag_id),
            _topoetcone20,
            _ptvarcone30,
            _f("mass", unit="GeV"),
        ),
        "muons": (
            _f("quality", group="quality", transform="category", doc="0 Tight, 1 Medium, 2 Loose, 3 VeryLoose"),
            _f("muonType", group="quality", transform="category"),
            _f("passIDCuts", **_flag_id),
            _f("passPresel", **_flag_id),
            _topoetcone20,
            _ptvarcone30,
        ),
        "taus": (
            _f("NNDecayMode", group="substructure", transform="category"),
            _f("RNNJetScore", **_score),
            _f("RNNEleScore", **_score),
            _f("EleRNNLoose_v1", **_flag_id),
            _f("EleRNNMedium_v1", **_flag_id),
            _f("EleRNNTight_v1", **_flag_id),
        ),
        "photons": (
            _f("isLoose", **_flag_id),
            _f("isTight", **_flag_id),
            _f("isCleaning", group="quality", transform="flag"),
            _f("author", group="quality", transform="category"),
            _topoetcone20,
            _f("topoetcone40", **_iso_gev),
            _f("ptcone20", **_iso_gev),
        ),
        "jets": (
            _f("DL1d_pb", group="btagging", transform="score"),
            _f("DL1d_pc", group="btagging", transform="score"),
            _f("DL1d_pu", group="btagging", transform="score"),
            _f("GN2_pb", group="btagging", transform="score"),
            _f("GN2_pc", group="btagging", transform="score"),
            _f("GN2_pu", group="btagging", transform="score"),
            _f("QG_nTracks", group="substructure", transform="count"),
            _f("QG_tracksWidth", group="substructure"),
            _f("QG_tracksC1", group="substructure"),
        ),
        "tracks": (
            _f("q0verP", unit="1/GeV", doc="charge over momentum"),
            _f("chiSquared", group="quality", transform="log1p"),
            _f("nDoF", group="quality", transform="count"),
        ),
        "event": (
            *_event_ids,
            _f(
                "mcChannelNumber",
                "int64",
                group="quality",
                absent_in_data=True,
                doc="MC dataset id; -1 (missing) in collision data",
            ),
        ),
    },
)

CMS = Layer(
    "cms",
    doc="CMS NanoAOD variables; floats so that a missing branch can be NaN",
    fields={
        "electrons": (
            _f("cutBased", group="id", transform="category", doc="0 fail .. 4 tight"),
            _f("mvaIso_WP80", **_flag_id),
            _f("mvaIso_WP90", **_flag_id),
            _f("pfRelIso03_all", group="id", transform="log1p"),
            _f("mass", unit="GeV"),
        ),
        "muons": (
            _f("looseId", **_flag_id),
            _f("mediumId", **_flag_id),
            _f("tightId", **_flag_id),
            _f("pfRelIso04_all", group="id", transform="log1p"),
            _f("isGlobal", group="quality", transform="flag"),
            _f("isTracker", group="quality", transform="flag"),
        ),
        "taus": (
            _f("decayMode", group="substructure", transform="category"),
            _f("idDeepTauVSjet", group="id", transform="category"),
            _f("idDeepTauVSe", group="id", transform="category"),
            _f("idDeepTauVSmu", group="id", transform="category"),
        ),
        "photons": (
            _f("cutBased", group="id", transform="category"),
            _f("mvaID_WP80", **_flag_id),
            _f("mvaID_WP90", **_flag_id),
            _f("pfRelIso03_all", group="id", transform="log1p"),
        ),
        "jets": (
            _f("btagDeepFlavB", group="btagging", transform="score"),
            _f("btagDeepFlavCvL", group="btagging", transform="score"),
            _f("jetId", group="quality", transform="category"),
            _f("puId", group="quality", transform="category"),
            _f("qgl", group="substructure", transform="score"),
        ),
        "tracks": (
            _f("charge", group="kinematics", transform="category"),
            _f("fromPV", group="quality", transform="category"),
            _f("pdgId", group="quality", transform="category"),
        ),
        "event": (
            *_event_ids,
            _f("luminosity_block", "int64", group="quality"),
            _f(
                "npvsGood",
                "int16",
                group="quality",
                transform="count",
                doc="good reconstructed primary vertices (PV_npvsGood): a measured pile-up proxy in data and "
                "simulation alike, not the same quantity as common mu",
            ),
        ),
    },
)

_pdg = _f(
    "pdg",
    "int32",
    group="id",
    transform="category",
    doc="PDG id the reconstruction assigned to the particle (0: none; the Delphes FCC-ee output sets only "
    "photons 22 and neutral hadrons 130)",
)
_goodness = _f("goodness_of_pid", **_score, doc="the reconstructed particle's goodnessOfPID, in [0, 1]")
_pid_likelihood = _f(
    "pid_likelihood",
    group="id",
    doc="likelihood of the highest-likelihood ParticleID linked to the particle; NaN where none is linked",
)
_isolation_var = _f(
    "isolation_var",
    group="id",
    transform="log1p",
    doc="the producer's own relative isolation (Delphes IsolationVar: sum pT of particle-flow "
    "candidates in dR < 0.5 over the object's pT); NaN where the file has none",
)
_cluster = (
    _f(
        "cluster_energy",
        unit="GeV",
        group="substructure",
        transform="log1p",
        doc="energy of the calorimeter clusters linked to the particle (sum)",
    ),
    _f(
        "cluster_n_hits",
        "int16",
        group="substructure",
        transform="count",
        doc="calorimeter hits of those clusters, counted through the podio links",
    ),
    _f(
        "cluster_width",
        unit="rad",
        group="substructure",
        transform="log1p",
        doc="energy-weighted rms angle of the clusters' hits around the cluster direction (unweighted "
        "where the hit energies sum to 0); NaN without hits",
    ),
    _f(
        "shape_parameter_0",
        group="substructure",
        doc="first of the cluster's shapeParameters (their names, where the file gives them, are in the "
        "metadata notes); NaN where the producer stores none",
    ),
    _f("shape_parameter_1", group="substructure", doc="second of the cluster's shapeParameters"),
)

EDM4HEP = Layer(
    "edm4hep",
    doc="EDM4hep (key4hep) quantities of e+e- events: reconstructed-particle PDG ids, "
    "particle-ID likelihoods, cluster shapes, helix parameters, and the event's "
    "centre-of-mass energy and missing four-momentum",
    fields={
        "electrons": (_pdg, _goodness, _pid_likelihood, _isolation_var, *_cluster),
        "muons": (_pdg, _goodness, _pid_likelihood, _isolation_var),
        "photons": (_pdg, _goodness, _pid_likelihood, _isolation_var, *_cluster),
        "jets": (
            _f(
                "n_particles",
                "int16",
                group="substructure",
                transform="count",
                doc="reconstructed particles of the jet, counted through its podio links",
            ),
            _f("charge", group="substructure", doc="the jet's charge as the producer stores it"),
        ),
        "tracks": (
            _f("charge", "int8", transform="category", doc="sign of the helix curvature omega"),
            _f("omega", unit="1/mm", doc="signed curvature of the track state at the interaction point"),
            _f("tan_lambda", doc="dip angle tan(lambda) = cot(theta) of that track state"),
            _f(
                "pt_rel_error",
                group="quality",
                transform="log1p",
                doc="sigma(pT)/pT = sigma(omega)/|omega| from the track state's covariance; NaN without one",
            ),
            _f("chi2", group="quality", transform="log1p"),
            _f("ndf", "int16", group="quality", transform="count"),
            _f(
                "n_hits",
                "int16",
                group="quality",
                transform="count",
                doc="tracker hits linked to the track (all of them, also those beyond the hits padding)",
            ),
            _f(
                "dqdx",
                group="quality",
                transform="log1p",
                doc="dE/dx or dN/dx of the track (RecDqdx linked to it); NaN without one",
            ),
        ),
        "hits": (
            _f(
                "kind",
                "int8",
                group="quality",
                transform="category",
                doc="0: a tracker hit of the track, 1: a calorimeter hit of a cluster of the track's particle",
            ),
            _f("r", unit="mm", doc="transverse distance of the hit from the beam line"),
            _f("z", unit="mm", doc="position of the hit along the beam"),
        ),
        "event": (
            *_event_ids,
            _f("sqrt_s", unit="GeV", doc="centre-of-mass energy of the collision (see metadata initial_state)"),
            _f("bz", unit="T", group="quality", doc="solenoid field used for the tracks' pT"),
            _f("missing_e", unit="GeV", doc="initial-state energy minus the sum over reconstructed particles"),
            _f("missing_px", unit="GeV", doc="initial-state px minus the sum over reconstructed particles"),
            _f("missing_py", unit="GeV", doc="initial-state py minus the sum over reconstructed particles"),
            _f("missing_pz", unit="GeV", doc="initial-state pz minus the sum over reconstructed particles"),
            _f(
                "missing_mass",
                unit="GeV",
                doc="invariant mass of the missing four-momentum, sign(m^2) sqrt(|m^2|); the recoil mass of "
                "everything reconstructed",
            ),
        ),
    },
)

TRUTH_ORIGINS: dict[str, int] = {"prompt": 0, "heavy_flavour": 1, "tau": 2, "fake": 3}
"""Codes of ``truth/*/origin``: prompt lepton/photon, from a b or c hadron, from a tau, fake or other."""

_truth = dict(absent_in_data=True)
TRUTH = Layer(
    "truth",
    doc="generator truth of simulated samples (absent in collision data)",
    fields={
        **{
            t: (
                _f(
                    "origin",
                    "int8",
                    group="quality",
                    transform="category",
                    doc="see TRUTH_ORIGINS; -1 unknown",
                    **_truth,
                ),
            )
            for t in ("electrons", "muons", "taus", "photons")
        },
        "jets": (
            _f(
                "flavour",
                "int8",
                group="btagging",
                transform="category",
                doc="5 b, 4 c, 15 tau, 0 light, by ghost-matched hadrons",
                **_truth,
            ),
        ),
        "tracks": (_f("is_pileup", "int8", group="quality", transform="flag", **_truth),),
        "event": (
            _f("process_id", "int16", group="quality", transform="category", **_truth),
            _f("weight", doc="event weight", **_truth),
        ),
    },
)

LAYERS: dict[str, Layer] = {layer.name: layer for layer in (COMMON, ATLAS, CMS, EDM4HEP, TRUTH)}
EXPERIMENT_LAYERS: dict[str, str] = {"ATLAS": "atlas", "CMS": "cms", "FCC-ee": "edm4hep"}

FLAT_KINEMATICS: tuple[str, ...] = ("pt", "eta", "phi", "energy", "mass", "charge")
"""The seeds' flat continuous input of every object (GeV, rad, e): pT, eta, phi, E, mass, charge,
fed with a one-hot type to one shared linear layer; E is derived from pT, eta and mass, and mass
and charge are 0 for types that store none."""

SCORES = "scores"
"""Model outputs written beside the events by ``treasure predict``: ``scores/MODEL/CLASS``, one
float32 value per event (HDF5 datasets ``(n_events,)``; in PCDF, columns ``MODEL/CLASS`` of the
``scores`` table, linked by ``eventIndex``). Not part of any layer: readers of events skip them."""

MASK, COUNT = "mask", "n"
"""Names of the per-group bookkeeping datasets of object and sub-object groups."""


@dataclass(frozen=True)
class IsolationDefinition:
    """The seed's track isolation: sum pT of tracks with dR < ``cone``, pT > ``pt_floor_gev``,
    |z0 sin(theta)| < ``z0sintheta_cut_mm`` w.r.t. the primary vertex, own track excluded,
    divided by the object's pT."""

    cone: float = 0.3
    pt_floor_gev: float = 0.5
    z0sintheta_cut_mm: float = 3.0


ISOLATION = IsolationDefinition()


@dataclass(frozen=True)
class MetadataAttribute:
    name: str
    kind: Literal["str", "int", "float", "json"]
    required: bool = True
    doc: str = ""


METADATA: dict[str, MetadataAttribute] = {
    a.name: a
    for a in (
        MetadataAttribute("experiment", "str", doc="a name of EXPERIMENTS (ATLAS, CMS, FCC-ee)"),
        MetadataAttribute("format_version", "str", doc="FORMAT_VERSION of the writer"),
        MetadataAttribute("input_file", "str", doc="where the events came from (file names, or a generator)"),
        MetadataAttribute("n_events", "int"),
        MetadataAttribute("git_hash", "str", doc="commit of treasure_hf that wrote the file, or 'unknown'"),
        MetadataAttribute("pt_cuts", "json", doc="object type -> pT cut in GeV"),
        MetadataAttribute("max_objects", "json", doc="group -> padding size"),
        MetadataAttribute("common_iso_cone", "float"),
        MetadataAttribute("common_iso_pt_floor_gev", "float"),
        MetadataAttribute("common_iso_z0sintheta_cut_mm", "float"),
        MetadataAttribute("creator", "str", doc="treasure_hf version that wrote the file"),
        MetadataAttribute("met_definition", "str", doc="how common/met was obtained"),
        MetadataAttribute("common_iso_source", "json", doc="object type -> where its trk_iso03 came from"),
        MetadataAttribute("missing_fields", "json", doc="layer keys the input lacked (filled with NaN or -1)"),
        MetadataAttribute("layers", "json", doc="layers present besides common"),
        MetadataAttribute("tracks_source", "str", required=False, doc="where common/tracks came from"),
        MetadataAttribute(
            "is_simulation",
            "int",
            required=False,
            doc="1 simulation, 0 collision data, as detected from the input (see simulation_evidence)",
        ),
        MetadataAttribute("simulation_evidence", "str", required=False, doc="which branches decided is_simulation"),
        MetadataAttribute(
            "missing_collections",
            "json",
            required=False,
            doc="object types whose collection the input lacks entirely (a skim): their groups are empty",
        ),
        MetadataAttribute(
            "source_branches",
            "json",
            required=False,
            doc="layer key -> the input branch it was read from (which alias of the table matched)",
        ),
        MetadataAttribute(
            "iso_z_reference",
            "str",
            required=False,
            doc="how the tracks' z0 was placed relative to the primary vertex for trk_iso03",
        ),
        MetadataAttribute("generator", "json", required=False, doc="generator settings of simulated samples"),
        MetadataAttribute("notes", "json", required=False, doc="free-form provenance remarks"),
        MetadataAttribute(
            "input_fingerprint",
            "json",
            required=False,
            doc="size, modification time and a hash of the first and last MiB of the converted file",
        ),
        MetadataAttribute(
            "initial_state",
            "json",
            required=False,
            doc="e+e- experiments: the colliding beams, sqrt_s_gev and the initial four-momentum p4_gev "
            "[px, py, pz, E], and where they came from (the file's beam particles or generator "
            "parameters, the generator settings, or --sqrt-s)",
        ),
        MetadataAttribute(
            "magnetic_field",
            "json",
            required=False,
            doc="the solenoid field (tesla) used to turn track curvatures into pT, and its source",
        ),
        MetadataAttribute(
            "podio_layout",
            "json",
            required=False,
            doc="EDM4hep inputs: the EDM4hep/podio versions the file records, the branch form of its "
            "relations (_Collection_relation or Collection#N) and the collection each role was read "
            "from",
        ),
        MetadataAttribute(
            "converter_options",
            "json",
            required=False,
            doc="settings of the converter that change the output (e.g. --bfield, --sqrt-s)",
        ),
        MetadataAttribute(
            "dropped_invalid",
            "json",
            required=False,
            doc="object type -> objects dropped for a NaN, infinite or negative pT (--drop-invalid)",
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# Lookups. Everything below derives from the declarations above.
# ---------------------------------------------------------------------------------------------


def group(name: str) -> Group:
    try:
        return GROUPS[name]
    except KeyError:
        raise KeyError(f"unknown group {name!r}; the registry has {sorted(GROUPS)}") from None


def fields(layer: str, group_name: str) -> tuple[Field, ...]:
    """Fields of ``layer`` for ``group_name`` (empty when the layer has none)."""
    return LAYERS[layer].fields.get(group_name, ())


def key(layer: str, group_name: str, field_name: str) -> str:
    """HDF5 path and in-memory key of a dataset: ``layer/group/field``."""
    return f"{layer}/{group_name}/{field_name}"


def split_key(k: str) -> tuple[str, str, str]:
    layer, group_name, field_name = k.split("/")
    return layer, group_name, field_name


def data_keys(layers: tuple[str, ...] = ("common",), groups: tuple[str, ...] | None = None) -> list[str]:
    """Keys of every declared field of ``layers`` (not mask/n), in registry order."""
    out = []
    for layer in layers:
        for g in GROUPS if groups is None else groups:
            out += [key(layer, g, f.name) for f in fields(layer, g)]
    return out


def absent_in_data(k: str) -> bool:
    """True when collision data may lack the field ``k`` (see :attr:`Field.absent_in_data`)."""
    return field_of(k).absent_in_data


def field_of(k: str) -> Field:
    layer, g, name = split_key(k)
    for f in fields(layer, g):
        if f.name == name:
            return f
    raise KeyError(f"{k!r} is not declared in the schema registry")


def shape_of(group_name: str, n_events: int, max_objects: Mapping[str, int]) -> tuple[int, ...]:
    """Shape of a data array of ``group_name`` for ``n_events`` events."""
    g = group(group_name)
    if g.kind == "event":
        return (n_events,)
    if g.kind == "object":
        return (n_events, max_objects[group_name])
    return (n_events, max_objects[g.parent], max_objects[group_name])


def default_max_objects() -> dict[str, int]:
    return {n: g.max_objects for n, g in GROUPS.items() if g.max_objects is not None}


def default_pt_cuts() -> dict[str, float]:
    return {n: g.pt_cut_gev for n, g in GROUPS.items() if g.pt_cut_gev is not None}


def sub_groups_of(parent: str) -> tuple[str, ...]:
    return tuple(n for n, g in GROUPS.items() if g.parent == parent)


def pcdf_column(layer: str, group_name: str, field_name: str) -> str:
    """Column name of a field in its PCDF table.

    Common object fields keep their name (``pt``); common event fields too (``pvz``) except MET,
    which is prefixed (``met_pt``); other layers are prefixed by the layer (``atlas_LHTight``).
    """
    g = group(group_name)
    if layer != "common":
        return f"{layer}_{field_name}"
    if g.kind == "event" and group_name != "event":
        return f"{group_name}_{field_name}"
    return field_name


PCDF_EVENT_INDEX = "eventIndex"
PCDF_INDEX = "index"


def pcdf_count_column(group_name: str) -> str:
    """Column holding the number of objects before truncation: in ``events`` for object groups
    (``n_electrons``), in the parent table for sub-objects (``n_constituents``)."""
    return f"n_{group_name}"


def _theta(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    return (2.0 * np.arctan(np.exp(-cols["eta"].astype(np.float64)))).astype(np.float32)


def _q_over_p(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    if "atlas_q0verP" in cols:
        return cols["atlas_q0verP"].astype(np.float32)
    p = cols["pt"].astype(np.float64) * np.cosh(cols["eta"].astype(np.float64))
    if "cms_charge" in cols:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (cols["cms_charge"] / p).astype(np.float32)
    return np.full(len(p), np.nan, np.float32)


@dataclass(frozen=True)
class DerivedColumn:
    """A PCDF convenience column computed from stored fields on write and ignored on read."""

    name: str
    unit: str
    compute: object = field(compare=False)
    doc: str = ""


PCDF_DERIVED: dict[str, tuple[DerivedColumn, ...]] = {
    "tracks": (
        DerivedColumn("theta", "rad", _theta, "polar angle from eta"),
        DerivedColumn("q_p", "1/GeV", _q_over_p, "charge over momentum (NaN where the charge is unknown)"),
    ),
}


def describe() -> str:
    """A human-readable table of the registry (``treasure schema`` prints it)."""
    lines = [f"treasure-hf common format {FORMAT_VERSION}"]
    for layer in LAYERS.values():
        lines.append(f"\n[{layer.name}]{' (required)' if layer.required else ''} {layer.doc}")
        for g, fs in layer.fields.items():
            extra = " mask n" if layer.name == "common" and GROUPS[g].kind != "event" else ""
            cols = ", ".join(f"{f.name}[{f.unit}]" if f.unit else f.name for f in fs)
            lines.append(f"  {layer.name}/{g:<13}: {cols}{extra}")
    return "\n".join(lines)
