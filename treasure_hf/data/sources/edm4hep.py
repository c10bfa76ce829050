"""EDM4hep (key4hep: FCC, CEPC, ILC, CLIC) event trees to the common format: electrons, muons,
photons, jets, tracks from their track states, MET and the missing four-momentum, with the
tracks' tracker and calorimeter hits in ``common/hits`` and the format's own quantities (PDG ids,
particle-ID likelihoods, cluster shapes, helix parameters) in the ``edm4hep`` layer.

Collections are found by what they hold (:mod:`.podio`): the reconstructed particles (the
particle-flow list), jets, tracks, hits and clusters by their datatype, the particle list and the
jets by the names of :data:`ROLE_NAMES` where a file has several collections of one datatype; the
tracks, hits and clusters are those the particles' links reach. Electrons, muons and photons are
the selections ``Electron``/``Muon``/``Photon`` (podio subset collections, as the FCC-ee Delphes
output writes them) or, without them, the particles whose PDG id says so (the key4hep full
simulation's Pandora particles).

Units are EDM4hep's: GeV, mm, ns, tesla. Tracks: pT = 0.299792458e-3 B / |omega| GeV (B in T,
omega in 1/mm), eta = asinh(tan lambda), phi, d0 and z0 of the track state at the interaction point
(the first state where none is marked so). The field is the file's ``magFieldBz`` or its run
parameters, else ``--bfield``; the conversion checks the tracks' pT against the particles linked to
them (a wrong field is an error naming the field the file's momenta imply). Hit times: the FCC-ee
Delphes output writes seconds where EDM4hep says ns; the unit is told from the hits themselves (a
hit at distance L cannot come before L / c) and recorded in the notes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from ...errors import InputError
from ...kinematics import wrap_angle
from .. import ee, schema
from ..helix import C_MM_PER_NS, GEV_PER_TESLA_MM, pt_from_omega
from . import isolation
from .podio import TRACK_STATE_FIELDS, Links, PodioFile, counts, flat, follow, follow_subset, starts
from .reader import TableConverter

logger = logging.getLogger(__name__)

TRACK_STATE_AT_IP = 1
"""edm4hep::TrackState ``location`` AtIP (AtOther 0, AtIP 1, AtFirstHit 2, AtLastHit 3, AtCalorimeter 4,
AtVertex 5: edm4hep.yaml, TrackState)."""
BEAM_STATUS = 4
"""generatorStatus of incoming beam particles (HepMC convention, which EDM4hep MCParticles keep)."""
OVERLAY_BIT = 23
"""Bit of MCParticle ``simulatorStatus`` marking particles overlaid from another event (edm4hep.yaml
MCParticle: BITOverlay = 23): pile-up or beam background."""
PRIMARY_VERTEX_BIT = 1
"""Bit of Vertex ``type`` marking the primary vertex (edm4hep.yaml Vertex, EDM4hep >= 0.99: BITPrimaryVertex)."""
CALORIMETER_LAYER_BASE = 100
"""``common/hits/layer`` of calorimeter hits: 100 + their rank by distance from the interaction
point (tracker hits count 0, 1, ... from the inside out)."""
MIN_LINKED_TRACKS = 20
"""Tracks linked to particles needed before the field check may call the field wrong."""
FIELD_RATIO_TOLERANCE = 0.05
"""A median track-pT / particle-pT ratio further from 1 than this means the field is wrong."""
SAMPLE_EVENTS = 1000
"""Events read once, before converting, to decide the hit time unit and check the field."""

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "particles": (
        "PandoraPFOs",
        "TightSelectedPandoraPFOs",
        "ReconstructedParticles",
        "ReconstructedParticleCollection",
        "PFOs",
    ),
    "jets": ("Jet", "Jets", "RefinedVertexJets", "JetCollection", "FastJets"),
    "tracks": ("SiTracks_Refitted", "EFlowTrack", "SiTracks", "TrackCollection", "Tracks", "MarlinTrkTracks"),
    "mc": ("MCParticles", "Particle", "MCParticleCollection"),
    "vertices": ("PrimaryVertices", "PrimaryVertexCollection", "VertexCollection"),
    "header": ("EventHeader",),
}
"""Collection names, in order of preference, of the roles a file may hold several collections for
(key4hep full simulation, FCC-ee Delphes, the EDM4hep example file)."""
ROLE_TYPES = {
    "particles": "ReconstructedParticle",
    "jets": "ReconstructedParticle",
    "tracks": "Track",
    "mc": "MCParticle",
    "vertices": "Vertex",
    "header": "EventHeader",
}
SELECTIONS: dict[str, tuple[tuple[str, ...], int]] = {
    "electrons": (("Electron", "Electrons"), 11),
    "muons": (("Muon", "Muons"), 13),
    "photons": (("Photon", "Photons"), 22),
}
"""Per lepton/photon type: subset collections selecting them among the particles, and the |PDG| id
that selects them where the file has no such collection."""
FIELD_PARAMETERS = ("magFieldBz", "Bz", "BField", "MagneticField")
"""Run/event parameter names (GP*Keys) that may hold the field in tesla."""


@dataclass(frozen=True)
class Edm4hepOptions:
    """Settings for files that lack them: the solenoid field in tesla (``--bfield``) and the
    centre-of-mass energy in GeV of head-on collisions (``--sqrt-s``). The file's own values win."""

    bfield_tesla: float | None = None
    sqrt_s_gev: float | None = None


@dataclass
class _Flat:
    """One collection of a step as flat rows: ``n`` per event and named flat columns."""

    n: np.ndarray
    cols: dict[str, np.ndarray]

    @property
    def start(self) -> np.ndarray:
        return starts(self.n)

    @property
    def event(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.n)), self.n)


class Edm4hepConverter(TableConverter):
    """EDM4hep ``events`` trees (both podio branch forms, EDM4hep 0.10 to 1.x) -> common + edm4hep."""

    EXPERIMENT = "FCC-ee"
    FORMAT_NAME = "EDM4hep"
    TREE_NAMES = ("events",)
    OPTIONS = Edm4hepOptions

    def __init__(self, source, *args: Any, **kwargs: Any):
        self.podio = PodioFile.open(source)
        self.learnt_ids: dict[int, str] = {}
        super().__init__(source, *args, **kwargs)

    # --- planning ------------------------------------------------------------------------
    def detect_simulation(self) -> tuple[bool, str]:
        mc = self.podio.of_type("MCParticle")
        if mc:
            return True, f"simulation: the file has the MCParticle collection{'s' if len(mc) > 1 else ''} {mc}"
        return False, "collision data: the file has no MCParticle collection"

    def _role(self, role: str, exclude: tuple[str, ...] = ()) -> str | None:
        found = [c for c in self.podio.of_type(ROLE_TYPES[role]) if c not in exclude]
        preferred = [n for n in ROLE_NAMES[role] if n in found]
        if preferred:
            return preferred[0]
        if role == "jets":
            return next((c for c in found if "jet" in c.lower()), None)
        return found[0] if len(found) == 1 else None

    def _looked_for(self) -> str:
        return "; ".join(
            f"{role}: a {ROLE_TYPES[role]} collection ({', '.join(ROLE_NAMES[role])}) with "
            f"{', '.join(f'.{m}' for m in self._signature(ROLE_TYPES[role]))}"
            for role in ("particles", "tracks")
        )

    @staticmethod
    def _signature(datatype: str) -> tuple[str, ...]:
        from .podio import DATATYPES

        return DATATYPES[datatype].signature

    def plan(self) -> None:
        p = self.podio
        rp = p.of_type("ReconstructedParticle")
        jets = self._role("jets")
        self.particles = self._role("particles", exclude=(jets,) if jets else ())
        if self.particles is None and len([c for c in rp if c != jets]) > 1:
            raise InputError(
                self.source.path,
                None,
                f"holds several reconstructed-particle collections "
                f"{[c for c in rp if c != jets]} and none of the names "
                f"{list(ROLE_NAMES['particles'])}: which one is the particle list?",
            )
        self.tracks = self._linked_tracks() or self._role("tracks")
        if self.particles is None and self.tracks is None:
            raise InputError(
                self.source.path,
                self.source.tree_name,
                f"is not a supported EDM4hep file: its {self.source.tree_name} tree holds none of the "
                f"collections looked for ({self._looked_for()}); it holds {self.source.names()[:10]}",
            )
        self.jets = jets if jets != self.particles else None
        self.mc, self.vertices, self.header = self._role("mc"), self._role("vertices"), self._role("header")
        present = {"electrons", "muons", "photons", "jets", "tracks"}
        if self.particles is None:
            present -= {"electrons", "muons", "photons"}
        if self.jets is None:
            present.discard("jets")
        if self.tracks is None:
            present.discard("tracks")
        self.missing_collections += [
            g
            for g in ("electrons", "muons", "photons", "jets", "tracks")
            if g not in present and g not in self.missing_collections
        ]
        self.missing_collections += [g for g in ("taus",) if g not in self.missing_collections]
        self._plan_branches()
        self.bz_source = self._plan_field()
        self.initial_mode, self.initial_source = self._plan_initial_state()
        self.time_scale, time_note = self._plan_time_unit()
        self.pv_source = self._plan_vertex()
        self.sub_groups = ("hits",) if self.tracks and (self.tracker_hits or self.calo_hits) else ()
        for k, g, f in self.layer_fields():
            self.derived.setdefault(k, self._field(g, f.name, f.np_dtype))
        for k in self._absent_fields():
            self.derived.pop(k, None)
            self.missing(k)
        field_check = self._check_field()
        self.extra_metadata = {
            "met_definition": f"minus the vector sum of the reconstructed particles ({self.particles}); sumet is "
            "the scalar sum of their pT"
            if self.particles
            else "none: the file has no particles",
            "common_iso_source": {
                g: (
                    f"recomputed from {self.tracks} (pT > {schema.ISOLATION.pt_floor_gev} GeV, "
                    f"|z0 sin(theta)| < {schema.ISOLATION.z0sintheta_cut_mm} mm w.r.t. the primary "
                    f"vertex), "
                    + ("the particle's own linked tracks excluded" if g != "photons" else "nothing excluded")
                )
                if self.tracks
                else "none: the file has no tracks"
                for g in ("electrons", "muons", "photons")
            },
            "tracks_source": (
                f"{self.tracks}: pT, eta, phi, d0, z0 from the track state at the IP (else the first), "
                f"pT = {GEV_PER_TESLA_MM:g} B / |omega| with B from {self.bz_source}"
                if self.tracks
                else "none: the file has no tracks"
            ),
            "iso_z_reference": self.pv_source,
            "podio_layout": {
                **p.describe(),
                "collections": self._roles_record(),
                **(
                    {"collection_ids_learnt_from_links": {str(k): v for k, v in self.learnt_ids.items()}}
                    if self.learnt_ids
                    else {}
                ),
            },
            "magnetic_field": {
                "source": self.bz_source,
                **({"tesla": self.options.bfield_tesla} if self.bz_source.startswith("--bfield") else {}),
            },
            "initial_state": self.initial_record,
        }
        self.notes = [
            f"read as {self.source.layout_name} {self.source.tree_name}",
            time_note,
            field_check,
            f"hits: tracker hits linked to each track ({', '.join(self.tracker_hits) or 'none'}), sorted "
            f"from the interaction point outwards, layer = their rank; then the calorimeter hits of the "
            f"clusters of the track's particle ({', '.join(self.calo_hits) or 'none'}), layer = "
            f"{CALORIMETER_LAYER_BASE} + their rank",
            "common/event/mu: 0 (no MCParticle carries the overlay bit) where the file is simulation",
        ]
        if self.shape_names:
            self.notes.append(f"cluster shape parameters: {self.shape_names}")

    def _absent_fields(self) -> list[str]:
        """Keys this file cannot fill (left to their missing value and listed in ``missing_fields``)."""
        out = []
        if not self.is_simulation:
            out.append("common/event/mu")
        lacking = {
            "isolation_var": [g for g in SELECTIONS if g not in self.iso_vars],
            "pid_likelihood": list(SELECTIONS) if not self.pid_collections else [],
            "cluster_energy": [] if self.clusters else ["electrons", "photons"],
        }
        for name, groups in lacking.items():
            names = (
                ("cluster_energy", "cluster_n_hits", "cluster_width", "shape_parameter_0", "shape_parameter_1")
                if name == "cluster_energy"
                else (name,)
            )
            out += [
                schema.key(self.layer, g, f)
                for g in groups
                for f in names
                if g not in self.missing_collections and any(x.name == f for x in schema.fields(self.layer, g))
            ]
        if self.clusters and not any((cl, "shape") in self.rel for cl in self.clusters):
            out += [
                schema.key(self.layer, g, f)
                for g in ("electrons", "photons")
                for f in ("shape_parameter_0", "shape_parameter_1")
                if g not in self.missing_collections
            ]
        if self.tracks and not (self.dqdx_collections or self.dedx_member):
            out.append(schema.key(self.layer, "tracks", "dqdx"))
        if self.tracks and not self.cov:
            out.append(schema.key(self.layer, "tracks", "pt_rel_error"))
        if not self.header:
            out += [schema.key(self.layer, "event", f) for f in ("event_number", "run_number")]
        if self.jets and not self.rel.get((self.jets, "particles")):
            out.append(schema.key(self.layer, "jets", "n_particles"))
            if not self.rel.get((self.jets, "tracks")):
                out.append("common/jets/n_trk")
        return list(dict.fromkeys(out))

    def _roles_record(self) -> dict[str, Any]:
        return {
            "particles": self.particles,
            "jets": self.jets,
            "tracks": self.tracks,
            "mc": self.mc,
            "selections": {g: b for g, b in self.selection_branches.items()},
            "tracker_hits": list(self.tracker_hits),
            "clusters": list(self.clusters),
            "calorimeter_hits": list(self.calo_hits),
            "particle_ids": list(self.pid_collections),
            "dqdx": list(self.dqdx_collections),
        }

    def _linked_tracks(self) -> str | None:
        """The track collection the particles' ``tracks`` links reach (read from the first events)."""
        if self.particles is None:
            return None
        tracks = self._targets(self.podio.branch("relation", self.particles, "tracks"), "Track")
        return (
            sorted(tracks, key=lambda n: ROLE_NAMES["tracks"].index(n) if n in ROLE_NAMES["tracks"] else 99)[0]
            if tracks
            else None
        )

    def _targets(self, branch: str | None, datatype: str, prefer: str | None = None) -> list[str]:
        """Collections of ``datatype`` that the ObjectID vector ``branch`` points into (first events).
        An id the file's table does not know (a file written without its id table, with podio's
        older sequential ids) is learnt from the links themselves: the one collection of
        ``datatype`` (``prefer`` among several) that every index under that id fits into."""
        if branch is None:
            return []
        a = self._sample([f"{branch}.collectionID", f"{branch}.index"])
        cid, idx = a[f"{branch}.collectionID"], a[f"{branch}.index"]
        for unknown in (int(i) for i in np.unique(flat(cid)) if int(i) not in self.podio.ids):
            fits = [
                c
                for c in self.podio.of_type(datatype)
                if c not in self.podio.ids.values() or self.podio.id_source.startswith("MurmurHash3")
            ]
            fits = [c for c in fits if self._indices_fit(cid, idx, unknown, c)]
            if prefer in fits:
                fits = [prefer]
            if len(fits) == 1:
                self.podio.ids[unknown] = fits[0]
                self.learnt_ids[unknown] = fits[0]
        names = {self.podio.ids.get(int(i)) for i in np.unique(flat(cid))} - {None}
        return [c for c in self.podio.of_type(datatype) if c in names]

    def _indices_fit(self, cid: ak.Array, idx: ak.Array, collection_id: int, coll: str) -> bool:
        member = next(iter(sorted(self.podio.members[coll])))
        n = counts(self._sample([f"{coll}.{member}"])[f"{coll}.{member}"])
        sel = flat(cid) == collection_id
        event = np.repeat(np.arange(len(n)), counts(cid))
        return bool(np.all(flat(idx)[sel] < n[event[sel]]))

    def _need(self, coll: str, *members: str) -> list[str]:
        return [self.require(f"{coll}.{m}") for m in members]

    def _rel(self, coll: str, rel: str, *, required: bool = False) -> str | None:
        """The ObjectID vector of a relation, its begin/end members registered for reading."""
        b = self.podio.branch("relation", coll, rel)
        if b is None or not self.podio.has_member(coll, f"{rel}_begin"):
            if required:
                raise InputError(
                    self.source.path,
                    f"{coll}.{rel}",
                    f"the relation is missing (looked for _{coll}_{rel} and {coll}#N)",
                )
            return None
        self._need(coll, f"{rel}_begin", f"{rel}_end")
        self.require(f"{b}.index")
        self.require(f"{b}.collectionID")
        return b

    def _one_to_one_rel(self, coll: str, rel: str, member: str) -> None:
        """Register a OneToOne relation's ObjectIDs (one per element) and the member read with it."""
        b = self.podio.branch("relation", coll, rel)
        self._need(coll, member)
        self.require(f"{b}.index")
        self.require(f"{b}.collectionID")
        self.rel[(coll, rel)] = b

    def _plan_branches(self) -> None:
        p = self.podio
        self.selection_branches: dict[str, str] = {}
        self.tracker_hits: tuple[str, ...] = ()
        self.calo_hits: tuple[str, ...] = ()
        self.clusters: tuple[str, ...] = ()
        self.pid_collections: tuple[str, ...] = ()
        self.dqdx_collections: tuple[str, ...] = ()
        self.shape_names: dict[str, Any] = {}
        self.iso_vars: dict[str, str] = {}
        self.rel: dict[tuple[str, str], str | None] = {}
        if self.particles:
            c = self.particles
            self._need(c, "momentum.x", "momentum.y", "momentum.z", "energy", "charge", "mass", "goodnessOfPID")
            self.pdg_member = next((m for m in ("PDG", "type") if p.has_member(c, m)), None)
            if self.pdg_member is None:
                raise InputError(self.source.path, f"{c}.PDG", "branch is missing (PDG, or type before EDM4hep 0.99)")
            self.require(f"{c}.{self.pdg_member}")
            for g, (names, _) in SELECTIONS.items():
                for name in names:
                    b = p.branch("subset", name)
                    if b is not None:
                        self._targets(b, "ReconstructedParticle", prefer=c)
                        self.selection_branches[g] = b
                        self.require(f"{b}.index")
                        self.require(f"{b}.collectionID")
                        iso = f"{name}_IsolationVar"
                        if self.source.has(iso):
                            self.iso_vars[g] = self.require(iso)
                        break
            self.rel[(c, "tracks")] = self._rel(c, "tracks")
            self.rel[(c, "clusters")] = self._rel(c, "clusters")
            self.clusters = tuple(self._targets(self.rel[(c, "clusters")], "Cluster"))
            for cl in self.clusters:
                self._need(cl, "energy", "position.x", "position.y", "position.z")
                self.rel[(cl, "hits")] = self._rel(cl, "hits")
                shape = p.branch("vector", cl, "shapeParameters")
                if shape is not None and p.has_member(cl, "shapeParameters_begin"):
                    self._need(cl, "shapeParameters_begin", "shapeParameters_end")
                    self.rel[(cl, "shape")] = self.require(shape)
            self.calo_hits = tuple(
                dict.fromkeys(
                    h for cl in self.clusters for h in self._targets(self.rel[(cl, "hits")], "CalorimeterHit")
                )
            )
            for h in self.calo_hits:
                self._need(h, "energy", "time", "position.x", "position.y", "position.z")
            self.pid_collections = tuple(
                c2
                for c2 in p.of_type("ParticleID")
                if self.particles
                in self._targets(p.branch("relation", c2, "particle"), "ReconstructedParticle", prefer=c)
            )
            for c2 in self.pid_collections:
                self._one_to_one_rel(c2, "particle", "likelihood")
        if self.jets:
            self._need(self.jets, "momentum.x", "momentum.y", "momentum.z", "energy", "mass", "charge")
            self.rel[(self.jets, "particles")] = self._rel(self.jets, "particles")
            self._targets(self.rel[(self.jets, "particles")], "ReconstructedParticle", prefer=self.particles)
            self.rel[(self.jets, "tracks")] = self._rel(self.jets, "tracks")
        if self.tracks:
            t = self.tracks
            self._need(t, "chi2", "ndf", "trackStates_begin", "trackStates_end")
            states = p.branch("vector", t, "trackStates", fields=TRACK_STATE_FIELDS)
            if states is None:
                raise InputError(
                    self.source.path,
                    f"{t}.trackStates",
                    "the track states are missing (looked for "
                    f"_{t}_trackStates and {t}_N with "
                    f"{', '.join(TRACK_STATE_FIELDS)})",
                )
            self.states = states
            for f in (*TRACK_STATE_FIELDS, "location", "referencePoint.z"):
                self.require(f"{states}.{f}")
            self.cov = self.optional(
                f"{states}.covMatrix.values[21]", f"{states}.covMatrix[21]", f"{states}.covMatrix[15]"
            )
            self.rel[(t, "trackerHits")] = self._rel(t, "trackerHits")
            self.tracker_hits = tuple(self._targets(self.rel[(t, "trackerHits")], "TrackerHit"))
            for h in self.tracker_hits:
                self._need(h, "eDep", "time", "position.x", "position.y", "position.z")
            self.dqdx_collections = tuple(
                c2 for c2 in p.of_type("RecDqdx") if t in self._targets(p.branch("relation", c2, "track"), "Track")
            )
            for c2 in self.dqdx_collections:
                self._one_to_one_rel(c2, "track", "dQdx.value")
            self.dedx_member = None if self.dqdx_collections else self.optional(f"{t}.dEdx")
        if self.mc:
            self._need(
                self.mc,
                "PDG",
                "generatorStatus",
                "simulatorStatus",
                "momentum.x",
                "momentum.y",
                "momentum.z",
                "mass",
                "vertex.x",
                "vertex.y",
                "vertex.z",
            )
        if self.header:
            self._need(self.header, "eventNumber", "runNumber")

    def _sample(self, names: list[str]) -> dict[str, ak.Array]:
        return self.source.read(names, 0, min(self.source.n_events, SAMPLE_EVENTS)) if names else {}

    def _plan_field(self) -> str:
        """Where B comes from: the file's ``magFieldBz`` (per event), its parameters, or --bfield."""
        self.bz_branch = self.source.first(["magFieldBz"])
        if self.bz_branch:
            self.needed.add(self.bz_branch)
            return "the file's magFieldBz branch (per event)"
        for key, values in (("GPFloatKeys", "GPFloatValues"), ("GPDoubleKeys", "GPDoubleValues")):
            if self.source.has(key) and self.source.has(values) and self.source.n_events:
                got = self.source.read([key, values], 0, 1)
                names = ak.to_list(got[key][0])
                for name in FIELD_PARAMETERS:
                    if name in names:
                        self.bz_param = (key, values, name)
                        self.needed.update((key, values))
                        return f"the file's event parameter {name}"
        self.bz_param = None
        if self.options.bfield_tesla is not None:
            return f"--bfield {self.options.bfield_tesla:g} T (the file records no field)"
        if self.tracks is None:
            return "none needed: the file has no tracks"
        raise InputError(
            self.source.path,
            "magFieldBz",
            f"the file records no magnetic field (looked for the "
            f"magFieldBz branch and the parameters {list(FIELD_PARAMETERS)}) "
            "and its tracks need one: pass --bfield TESLA",
        )

    def _bz(self, ctx: dict[str, Any]) -> np.ndarray:
        """Field in tesla per event of the step."""
        n = ctx["n_events"]
        if self.bz_branch:
            v = ak.fill_none(ak.firsts(ctx["arrays"][self.bz_branch]), np.nan)
            return np.asarray(ak.to_numpy(v), np.float64)
        if self.bz_param:
            key, values, name = self.bz_param
            keys, vals = ctx["arrays"][key], ctx["arrays"][values]
            out = np.full(n, np.nan)
            for i, (k, v) in enumerate(zip(ak.to_list(keys), ak.to_list(vals))):
                if name in k and v[k.index(name)]:
                    out[i] = v[k.index(name)][0]
            return out
        return np.full(n, np.nan if self.options.bfield_tesla is None else self.options.bfield_tesla)

    def _plan_initial_state(self) -> tuple[str, str]:
        """Where the initial four-momentum comes from (``beams``, ``sqrts`` or ``option``: the beam
        particles, the generator's sqrt(s), or --sqrt-s) and that in words."""
        sample = self._sample(self._mc_branches()) if self.mc else {}
        self.gep = next(iter(self.podio.of_type("GeneratorEventParameters")), None)
        if self.gep:
            self.require(f"{self.gep}.sqrts")
        beams = self._beams(sample, len(next(iter(sample.values()))) if sample else 0) if sample else None
        if beams is not None and np.all(np.isfinite(beams[:, 3])):
            mode, source = (
                "beams",
                f"the two beam particles (generatorStatus {BEAM_STATUS}) of {self.mc}, event by event",
            )
            p4 = beams
        elif self.gep:
            mode, source = "sqrts", f"{self.gep}.sqrts (head-on collisions), event by event"
            p4 = ee.head_on(self._gep_sqrts(self._sample([f"{self.gep}.sqrts"])))
        elif self.options.sqrt_s_gev is not None:
            mode, source = (
                "option",
                f"--sqrt-s {self.options.sqrt_s_gev:g} GeV (head-on; the file records no initial state)",
            )
            p4 = ee.head_on(np.array([self.options.sqrt_s_gev]))
        else:
            raise InputError(
                self.source.path,
                "sqrt_s",
                "the file records no initial state (looked for beam "
                f"particles with generatorStatus {BEAM_STATUS} and "
                "GeneratorEventParameters.sqrts): pass --sqrt-s GEV",
            )
        first = p4[0] if len(p4) else np.full(4, np.nan)
        self.initial_record = {
            "beams": "e+ e-",
            "source": source,
            "sqrt_s_gev": float(ee.signed_mass(first)),
            "p4_gev": [float(x) for x in first],
            "of": "the first event",
        }
        return mode, source

    @staticmethod
    def _gep_sqrts(got: dict[str, ak.Array]) -> np.ndarray:
        (v,) = got.values()
        return np.asarray(ak.to_numpy(ak.fill_none(ak.firsts(v), np.nan)), np.float64)

    def _mc_branches(self) -> list[str]:
        return [
            f"{self.mc}.{m}"
            for m in (
                "PDG",
                "generatorStatus",
                "simulatorStatus",
                "momentum.x",
                "momentum.y",
                "momentum.z",
                "mass",
                "vertex.x",
                "vertex.y",
                "vertex.z",
            )
        ]

    def _beams(self, a: dict[str, ak.Array], n_events: int) -> np.ndarray | None:
        """Sum of the beam particles' four-momenta per event (NaN where an event has not exactly two
        e+/e- beams), or None when no event has them."""
        c = self.mc
        status = flat(a[f"{c}.generatorStatus"])
        pdg = np.abs(flat(a[f"{c}.PDG"]))
        n = counts(a[f"{c}.PDG"])
        event = np.repeat(np.arange(len(n)), n)
        beam = (status == BEAM_STATUS) & (pdg == 11)
        if not beam.any():
            return None
        px, py, pz = (flat(a[f"{c}.momentum.{x}"]).astype(np.float64) for x in "xyz")
        m = flat(a[f"{c}.mass"]).astype(np.float64)
        e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
        out = np.stack([np.bincount(event[beam], w[beam], minlength=n_events) for w in (px, py, pz, e)], 1)
        out[np.bincount(event[beam], minlength=n_events) != 2] = np.nan
        return out

    def _initial(self, ctx: dict[str, Any]) -> np.ndarray:
        a, n = ctx["arrays"], ctx["n_events"]
        if self.initial_mode == "beams":
            return self._beams(a, n)
        if self.initial_mode == "sqrts":
            return ee.head_on(self._gep_sqrts({0: a[f"{self.gep}.sqrts"]}))
        return ee.head_on(np.full(n, self.options.sqrt_s_gev))

    def _plan_time_unit(self) -> tuple[float, str]:
        """Factor to ns of the hits' times: 1, or 1e9 where the hits' times are in seconds (a hit
        at L > 100 mm from the IP whose c t / L is ~1e-9 instead of >= 1)."""
        ratios = []
        for coll in (*self.tracker_hits, *self.calo_hits):
            a = self._sample([f"{coll}.time", *(f"{coll}.position.{x}" for x in "xyz")])
            t = flat(a[f"{coll}.time"]).astype(np.float64)
            d = np.sqrt(sum(flat(a[f"{coll}.position.{x}"]).astype(np.float64) ** 2 for x in "xyz"))
            ok = (d > 100.0) & (t > 0)
            ratios.append(C_MM_PER_NS * t[ok] / d[ok])
        r = np.concatenate(ratios) if ratios else np.zeros(0)
        if r.size and np.median(r) < 1e-3:
            return 1e9, (
                f"hit times converted s -> ns: the file writes seconds (median c t / L = {np.median(r):.2e} "
                f"over {r.size} hits more than 100 mm from the IP; EDM4hep specifies ns)"
            )
        if r.size:
            return 1.0, f"hit times in ns as EDM4hep specifies (median c t / L = {np.median(r):.3g} over {r.size} hits)"
        return 1.0, "hit times taken as ns (EDM4hep's unit; no hit far enough from the IP to check it)"

    def _plan_vertex(self) -> str:
        self.vertex_primary = None
        if self.vertices:
            self._need(self.vertices, "position.x", "position.y", "position.z")
            self.vertex_primary = next(
                (m for m in ("type", "primary") if self.podio.has_member(self.vertices, m)), None
            )
            if self.vertex_primary:
                self.require(f"{self.vertices}.{self.vertex_primary}")
            return f"the primary vertex of {self.vertices} (z0 - z_PV)"
        if self.mc:
            return f"the production vertex of the first particle of {self.mc} (the file has no reconstructed vertex)"
        return "the nominal interaction point (0, 0, 0): the file has neither vertices nor MC particles"

    def _check_field(self) -> str:
        """Compare the tracks' pT with their linked particles' on the first events: the field is
        wrong when the median ratio is off by more than :data:`FIELD_RATIO_TOLERANCE` over at least
        :data:`MIN_LINKED_TRACKS` tracks (an :class:`InputError` naming the field that fits)."""
        if not (self.tracks and self.particles and self.rel.get((self.particles, "tracks"))):
            return "track pT not checked: no particle-track links"
        n = min(self.source.n_events, SAMPLE_EVENTS)
        ctx = {"arrays": self.source.read(self.branches(), 0, n), "cache": {}, "n_events": n}
        s = self._step(ctx)
        pt_trk, pt_rp, rel = s["check"]
        ok = (pt_trk > 0) & (pt_rp > 0)
        if ok.sum() == 0:
            return "track pT not checked: no track linked to a particle in the first events"
        ratio = np.median(pt_trk[ok] / pt_rp[ok])
        pull = np.abs(pt_trk[ok] - pt_rp[ok]) / (np.where(np.isfinite(rel[ok]), rel[ok], np.nan) * pt_trk[ok])
        within = float(np.nanmean(pull < 5)) if np.isfinite(pull).any() else float("nan")
        msg = (
            f"track pT vs the linked particles' pT over {int(ok.sum())} tracks of the first {n} events: median ratio "
            f"{ratio:.4f}, {within:.1%} within 5 sigma of the track-state covariance"
        )
        if ok.sum() >= MIN_LINKED_TRACKS and abs(ratio - 1) > FIELD_RATIO_TOLERANCE:
            raise InputError(
                self.source.path,
                "magFieldBz",
                f"{msg}: the field used ({self.bz_source}) is wrong; the "
                f"particles' momenta imply {np.nanmedian(s['bz']) / ratio:.3g} T",
            )
        if abs(ratio - 1) > FIELD_RATIO_TOLERANCE:
            logger.warning("%s: %s (too few tracks to call the field wrong)", self.source.path, msg)
        return msg

    # --- conversion ----------------------------------------------------------------------
    def prepare(self, ctx: dict[str, Any]) -> None:
        ctx["ee"] = self._step(ctx)

    def _field(self, g: str, name: str, dtype: np.dtype) -> Callable[[dict[str, Any]], Any]:
        def get(ctx: dict[str, Any]) -> Any:
            group = ctx["ee"].get(g)
            kind = schema.GROUPS[g].kind
            if kind == "event":
                v = group.get(name) if group else None
                return np.full(ctx["n_events"], schema.Field(name, dtype.name).missing_value, dtype) if v is None else v
            if group is None:
                return ak.unflatten(np.zeros(0, dtype), np.zeros(ctx["n_events"], np.int64))
            v = group.cols.get(name)
            if v is None:
                v = np.full(int(group.n.sum()), schema.Field(name, dtype.name).missing_value, dtype)
            return ak.unflatten(v, group.n) if kind == "object" else v

        return get

    def sub_objects(self, g: str, ctx: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        hits = ctx["ee"]["hits"]
        keep = flat(ctx["keep"]["tracks"]).astype(bool)
        per_track = hits.n
        parent = np.repeat(np.arange(len(per_track)), per_track)
        rows = keep[parent]
        out = {
            schema.key(layer, g, f.name): hits.cols[f.name][rows]
            for layer in ("common", self.layer)
            for f in schema.fields(layer, g)
        }
        return per_track[keep].astype(np.int64), out

    def _cols(self, a: dict[str, ak.Array], coll: str, members: tuple[str, ...]) -> _Flat:
        n = counts(a[f"{coll}.{members[0]}"])
        return _Flat(n, {m: flat(a[f"{coll}.{m}"]) for m in members})

    def _links(self, a: dict[str, ak.Array], coll: str, rel: str, targets: dict[str, np.ndarray]) -> Links | None:
        b = self.rel.get((coll, rel))
        if b is None:
            return None
        return follow(
            a[f"{coll}.{rel}_begin"],
            a[f"{coll}.{rel}_end"],
            a[f"{b}.index"],
            a[f"{b}.collectionID"],
            targets,
            self.podio.ids,
        )

    def _one_to_one(
        self, a: dict[str, ak.Array], coll: str, rel: str, target: str, target_n: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Elements of ``coll`` (flat rows) and the flat ``target`` row each one's OneToOne relation points to."""
        b = self.rel[(coll, rel)]
        n, rows = follow_subset(a[f"{b}.index"], a[f"{b}.collectionID"], target, target_n, self.podio.ids)
        src = np.arange(int(n.sum()))
        return src[rows >= 0], rows[rows >= 0]

    def _step(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """Every group of the step as flat rows (see :class:`_Flat`), event fields as arrays."""
        a, n_events = ctx["arrays"], ctx["n_events"]
        out: dict[str, Any] = {}
        bz = self._bz(ctx)
        out["bz"] = bz
        particles = self._particles(a) if self.particles else None
        tracks = self._tracks(a, bz) if self.tracks else None
        pv = self._primary_vertex(a, n_events)
        p_tracks = (
            self._links(a, self.particles, "tracks", {self.tracks: tracks.n})
            if particles is not None and tracks is not None
            else None
        )
        clusters = self._clusters(a, particles) if particles is not None and self.clusters else None
        if particles is not None:
            for g, (_, pdg) in SELECTIONS.items():
                out[g] = self._selected(a, g, pdg, particles, tracks, p_tracks, pv, clusters)
            out["met"], visible = self._met(particles)
        else:
            visible = np.zeros((n_events, 4))
        if self.jets:
            out["jets"] = self._jet_group(a, particles)
        if tracks is not None:
            out["tracks"] = tracks
            out["hits"] = self._hits(a, tracks, particles, p_tracks, clusters)
            out["check"] = self._track_check(tracks, particles, p_tracks)
        out["event"] = self._event(a, n_events, pv, bz, visible)
        return out

    def _particles(self, a: dict[str, ak.Array]) -> _Flat:
        c = self.particles
        p = self._cols(
            a,
            c,
            ("momentum.x", "momentum.y", "momentum.z", "energy", "charge", "mass", "goodnessOfPID", self.pdg_member),
        )
        px, py, pz = (p.cols[f"momentum.{x}"].astype(np.float64) for x in "xyz")
        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * np.inf))
        p.cols.update(
            pt=pt,
            eta=eta,
            phi=np.arctan2(py, px),
            pdg=p.cols[self.pdg_member].astype(np.int64),
            goodness_of_pid=p.cols["goodnessOfPID"],
        )
        likelihood = np.full(int(p.n.sum()), np.nan)
        for pid in self.pid_collections:
            src, rows = self._one_to_one(a, pid, "particle", c, p.n)
            lk = flat(a[f"{pid}.likelihood"]).astype(np.float64)[src]
            with np.errstate(invalid="ignore"):
                np.fmax.at(likelihood, rows, lk)
        p.cols["pid_likelihood"] = likelihood
        return p

    def _tracks(self, a: dict[str, ak.Array], bz: np.ndarray) -> _Flat:
        t, s = self.tracks, self.states
        tr = self._cols(a, t, ("trackStates_begin", "trackStates_end", "chi2", "ndf"))
        event = tr.event
        b = tr.cols["trackStates_begin"].astype(np.int64)
        e = tr.cols["trackStates_end"].astype(np.int64)
        n_states = counts(a[f"{s}.omega"])
        state_start = starts(n_states)[event]
        loc = flat(a[f"{s}.location"]).astype(np.int64)
        n_each = np.maximum(e - b, 0)
        owner = np.repeat(np.arange(len(b)), n_each)
        within = np.arange(int(n_each.sum())) - np.repeat(starts(n_each), n_each)
        pos = state_start[owner] + b[owner] + within
        first_ip = np.full(len(b), np.iinfo(np.int64).max)
        is_ip = loc[pos] == TRACK_STATE_AT_IP if len(pos) else np.zeros(0, bool)
        np.minimum.at(first_ip, owner[is_ip], within[is_ip])
        has_state = n_each > 0
        pick = state_start + b + np.where(first_ip < np.iinfo(np.int64).max, first_ip, 0)
        pick = np.where(has_state, pick, 0)

        def state(name: str) -> np.ndarray:
            v = flat(a[f"{s}.{name}"]).astype(np.float64)
            return np.where(has_state, v[pick] if len(v) else np.nan, np.nan)

        omega, tan_l, phi = state("omega"), state("tanLambda"), state("phi")
        field = bz[event]
        pt = pt_from_omega(omega, field)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.full(len(b), np.nan)
            if self.cov:
                cov = ak.to_numpy(ak.flatten(a[self.cov], axis=1)).astype(np.float64)
                rel = np.where(has_state, np.sqrt(cov[pick, 5]) / np.abs(omega) if len(cov) else np.nan, np.nan)
        tr.cols.update(
            pt=pt,
            eta=np.arcsinh(tan_l),
            phi=wrap_angle(phi),
            d0=state("D0"),
            z0=state("Z0"),
            z_ref=state("referencePoint.z"),
            omega=omega,
            tan_lambda=tan_l,
            charge=np.nan_to_num(np.sign(omega)).astype(np.int8),
            pt_rel_error=rel,
        )
        hit_links = self._links(a, t, "trackerHits", {h: counts(a[f"{h}.time"]) for h in self.tracker_hits})
        n_tracks = len(b)
        tr.cols["n_hits"] = (
            np.bincount(hit_links.source[hit_links.target >= 0], minlength=n_tracks)
            if hit_links is not None
            else np.zeros(n_tracks, np.int64)
        )
        tr.cols["hit_links"] = hit_links
        dqdx = np.full(n_tracks, np.nan)
        for c2 in self.dqdx_collections:
            src, rows = self._one_to_one(a, c2, "track", t, tr.n)
            dqdx[rows] = flat(a[f"{c2}.dQdx.value"]).astype(np.float64)[src]
        if self.dedx_member:
            dqdx = flat(a[self.dedx_member]).astype(np.float64)
        tr.cols["dqdx"] = dqdx
        return tr

    def _primary_vertex(self, a: dict[str, ak.Array], n_events: int) -> np.ndarray:
        """(n_events, 3) primary vertex in mm (see :meth:`_plan_vertex`)."""
        if self.vertices:
            v = self._cols(a, self.vertices, ("position.x", "position.y", "position.z"))
            first = v.start
            has = v.n > 0
            if self.vertex_primary:
                flag = flat(a[f"{self.vertices}.{self.vertex_primary}"]).astype(np.int64)
                prim = ((flag >> PRIMARY_VERTEX_BIT) & 1).astype(bool) if self.vertex_primary == "type" else flag != 0
                pos = np.full(n_events, np.iinfo(np.int64).max)
                rows = np.flatnonzero(prim)
                np.minimum.at(pos, v.event[prim], rows)
                first = np.where(pos < np.iinfo(np.int64).max, pos, first)
            out = np.stack(
                [
                    np.where(
                        has,
                        v.cols[f"position.{x}"][np.minimum(first, max(len(v.event) - 1, 0))]
                        if len(v.event)
                        else np.nan,
                        np.nan,
                    )
                    for x in "xyz"
                ],
                1,
            )
            return out.astype(np.float64)
        if self.mc:
            n = counts(a[f"{self.mc}.vertex.x"])
            first = starts(n)
            return np.stack(
                [
                    np.where(
                        n > 0,
                        flat(a[f"{self.mc}.vertex.{x}"])[np.minimum(first, max(int(n.sum()) - 1, 0))]
                        if n.sum()
                        else 0.0,
                        0.0,
                    )
                    for x in "xyz"
                ],
                1,
            ).astype(np.float64)
        return np.zeros((n_events, 3))

    def _clusters(self, a: dict[str, ak.Array], particles: _Flat) -> dict[str, np.ndarray]:
        """Per particle row: cluster energy, calorimeter hits, hit-angle width and shape parameters."""
        n_p = int(particles.n.sum())
        cl_n = {cl: counts(a[f"{cl}.energy"]) for cl in self.clusters}
        links = self._links(a, self.particles, "clusters", cl_n)
        energy = np.zeros(n_p)
        n_hits = np.zeros(n_p, np.int64)
        shape = np.full((n_p, 2), np.nan)
        hit_pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (particle row, hit collection, row)
        sum_w = np.zeros(n_p)
        sum_w2 = np.zeros(n_p)
        axis = np.zeros((n_p, 3))
        hits = {
            h: self._cols(a, h, ("energy", "time", "position.x", "position.y", "position.z")) for h in self.calo_hits
        }
        first_cluster = np.full(n_p, -1)
        for cl in self.clusters:
            src, rows, order = links.to(cl) if links is not None else (np.zeros(0, int),) * 3
            e_cl = flat(a[f"{cl}.energy"]).astype(np.float64)
            np.add.at(energy, src, e_cl[rows])
            pos = np.stack([flat(a[f"{cl}.position.{x}"]).astype(np.float64) for x in "xyz"], 1)
            np.add.at(axis, src, pos[rows] * np.maximum(e_cl[rows], 1e-9)[:, None])
            if (cl, "shape") in self.rel:
                sb = flat(a[f"{cl}.shapeParameters_begin"]).astype(np.int64)
                se = flat(a[f"{cl}.shapeParameters_end"]).astype(np.int64)
                vec = a[self.rel[(cl, "shape")]]
                vstart = starts(counts(vec))[np.repeat(np.arange(len(cl_n[cl])), cl_n[cl])]
                values = flat(vec).astype(np.float64)
                firsts = (order == 0) & (first_cluster[src] < 0)
                for j in range(2):
                    has = (se[rows] - sb[rows]) > j
                    sel = firsts & has
                    shape[src[sel], j] = values[vstart[rows[sel]] + sb[rows[sel]] + j]
                first_cluster[src[firsts]] = 1
            hl = self._links(a, cl, "hits", {h: hits[h].n for h in self.calo_hits})
            if hl is None:
                continue
            cl_owner = np.full(int(cl_n[cl].sum()), -1)
            cl_owner[rows] = src
            for h in self.calo_hits:
                c_src, h_rows, _ = hl.to(h)
                owner = cl_owner[c_src]
                ok = owner >= 0
                hit_pairs.append((owner[ok], np.full(int(ok.sum()), self.calo_hits.index(h)), h_rows[ok]))
                np.add.at(n_hits, owner[ok], 1)
        direction = axis / np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-12)
        width = np.full(n_p, np.nan)
        if hit_pairs:
            owner = np.concatenate([x[0] for x in hit_pairs])
            which = np.concatenate([x[1] for x in hit_pairs])
            row = np.concatenate([x[2] for x in hit_pairs])
            pos = np.zeros((len(row), 3))
            e_h = np.zeros(len(row))
            for i, h in enumerate(self.calo_hits):
                sel = which == i
                pos[sel] = np.stack([hits[h].cols[f"position.{x}"][row[sel]] for x in "xyz"], 1)
                e_h[sel] = hits[h].cols["energy"][row[sel]]
            u = pos / np.maximum(np.linalg.norm(pos, axis=1, keepdims=True), 1e-12)
            ang = np.arccos(np.clip(np.sum(u * direction[owner], 1), -1.0, 1.0))
            total = np.bincount(owner, e_h, minlength=n_p)
            w = np.where(total[owner] > 0, e_h, 1.0)
            np.add.at(sum_w, owner, w)
            np.add.at(sum_w2, owner, w * ang**2)
            with np.errstate(invalid="ignore", divide="ignore"):
                width = np.where(sum_w > 0, np.sqrt(sum_w2 / sum_w), np.nan)
        else:
            owner = which = row = np.zeros(0, np.int64)
        has_cluster = (
            np.bincount(links.source[links.target >= 0], minlength=n_p) > 0
            if links is not None
            else np.zeros(n_p, bool)
        )
        return {
            "cluster_energy": np.where(has_cluster, energy, np.nan),
            "cluster_n_hits": n_hits,
            "cluster_width": width,
            "shape_parameter_0": shape[:, 0],
            "shape_parameter_1": shape[:, 1],
            "hit_owner": owner,
            "hit_collection": which,
            "hit_row": row,
            "hits": hits,
        }

    def _selected(
        self,
        a: dict[str, ak.Array],
        g: str,
        pdg: int,
        particles: _Flat,
        tracks: _Flat | None,
        p_tracks: Links | None,
        pv: np.ndarray,
        clusters: dict[str, np.ndarray] | None,
    ) -> _Flat:
        """Electrons, muons or photons: rows of the particle list, by the file's selection or by PDG id."""
        b = self.selection_branches.get(g)
        if b is not None:
            n, rows = follow_subset(
                a[f"{b}.index"], a[f"{b}.collectionID"], self.particles, particles.n, self.podio.ids
            )
            if np.any(rows < 0):
                raise InputError(
                    self.source.path, b, f"{int(np.sum(rows < 0))} entries do not point into {self.particles}"
                )
        else:
            rows = np.flatnonzero(np.abs(particles.cols["pdg"]) == pdg)
            n = np.bincount(particles.event[rows], minlength=len(particles.n)).astype(np.int64)
        cols = {k: particles.cols[k][rows] for k in ("pt", "eta", "phi", "pdg", "goodness_of_pid", "pid_likelihood")}
        cols["charge"] = np.rint(particles.cols["charge"][rows]).astype(np.int8)
        if g in self.iso_vars:
            cols["isolation_var"] = flat(a[self.iso_vars[g]]).astype(np.float64)
        if clusters is not None:
            for k in ("cluster_energy", "cluster_n_hits", "cluster_width", "shape_parameter_0", "shape_parameter_1"):
                cols[k] = clusters[k][rows]
        if tracks is not None:
            own = None
            if g != "photons" and p_tracks is not None:
                obj_of = np.full(int(particles.n.sum()), -1)
                obj_of[rows] = np.arange(len(rows))
                src, trk, _ = p_tracks.to(self.tracks)
                o = obj_of[src]
                ok = o >= 0
                own = (o[ok], trk[ok] - tracks.start[tracks.event[trk[ok]]])
            z0_pv = tracks.cols["z0"] + tracks.cols["z_ref"] - pv[tracks.event, 2]
            sin_theta = 1.0 / np.cosh(tracks.cols["eta"])
            cols["trk_iso03"] = isolation.trk_iso03(
                n,
                cols["pt"],
                cols["eta"],
                cols["phi"],
                own,
                tracks.n,
                np.nan_to_num(tracks.cols["pt"]),
                tracks.cols["eta"],
                tracks.cols["phi"],
                z0_pv * sin_theta,
            )
        else:
            cols["trk_iso03"] = np.zeros(len(rows), np.float32)
        return _Flat(n, cols)

    def _met(self, particles: _Flat) -> tuple[dict[str, np.ndarray], np.ndarray]:
        ev, n_events = particles.event, len(particles.n)
        px, py, pz = (particles.cols[f"momentum.{x}"].astype(np.float64) for x in "xyz")
        visible = np.stack(
            [np.bincount(ev, w, minlength=n_events) for w in (px, py, pz, particles.cols["energy"].astype(np.float64))],
            1,
        )
        sumet = np.bincount(ev, particles.cols["pt"], minlength=n_events)
        return {
            "pt": np.hypot(visible[:, 0], visible[:, 1]),
            "phi": np.arctan2(-visible[:, 1], -visible[:, 0]),
            "sumet": sumet,
        }, visible

    def _jet_group(self, a: dict[str, ak.Array], particles: _Flat | None) -> _Flat:
        j = self._cols(a, self.jets, ("momentum.x", "momentum.y", "momentum.z", "energy", "mass", "charge"))
        px, py, pz = (j.cols[f"momentum.{x}"].astype(np.float64) for x in "xyz")
        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * np.inf))
        n_jets = int(j.n.sum())
        j.cols.update(pt=pt, eta=eta, phi=np.arctan2(py, px))
        n_trk = np.full(n_jets, -1, np.int64)
        n_particles = np.full(n_jets, -1, np.int64)
        links = self._links(a, self.jets, "particles", {self.particles: particles.n}) if particles is not None else None
        if links is not None and self.particles:
            src, rows, _ = links.to(self.particles)
            charged = (np.abs(particles.cols["charge"][rows]) > 0) & (
                particles.cols["pt"][rows] > schema.ISOLATION.pt_floor_gev
            )
            n_trk = np.bincount(src[charged], minlength=n_jets)
            n_particles = np.bincount(src, minlength=n_jets)
        elif self.tracks and self.rel.get((self.jets, "tracks")):
            tl = self._links(a, self.jets, "tracks", {self.tracks: counts(a[f"{self.tracks}.chi2"])})
            n_trk = np.bincount(tl.source[tl.target >= 0], minlength=n_jets)
        j.cols.update(n_trk=n_trk, n_particles=n_particles)
        return j

    def _hits(
        self,
        a: dict[str, ak.Array],
        tracks: _Flat,
        particles: _Flat | None,
        p_tracks: Links | None,
        clusters: dict[str, np.ndarray] | None,
    ) -> _Flat:
        """Per track: its tracker hits (inside out), then the calorimeter hits of its particle's clusters."""
        n_tracks = int(tracks.n.sum())
        parts = []  # (track, kind, x, y, z, energy, time)
        hl = tracks.cols["hit_links"]
        for h in self.tracker_hits:
            src, rows, _ = hl.to(h) if hl is not None else (np.zeros(0, int),) * 3
            hc = self._cols(a, h, ("eDep", "time", "position.x", "position.y", "position.z"))
            parts.append(
                (
                    src,
                    np.zeros(len(src), np.int8),
                    *(hc.cols[f"position.{x}"][rows].astype(np.float64) for x in "xyz"),
                    hc.cols["eDep"][rows].astype(np.float64),
                    hc.cols["time"][rows].astype(np.float64),
                )
            )
        if clusters is not None and p_tracks is not None and len(clusters["hit_owner"]):
            src, trk, order = p_tracks.to(self.tracks)
            particle_of_track = np.full(n_tracks, -1)
            first = order == 0
            particle_of_track[trk[first][::-1]] = src[first][::-1]  # the first particle linking each track
            track_of_particle = np.full(int(particles.n.sum()), -1)
            has = particle_of_track >= 0
            track_of_particle[particle_of_track[has]] = np.flatnonzero(has)
            owner = track_of_particle[clusters["hit_owner"]]
            ok = owner >= 0
            which, row = clusters["hit_collection"][ok], clusters["hit_row"][ok]
            pos = np.zeros((int(ok.sum()), 5))
            for i, h in enumerate(self.calo_hits):
                sel = which == i
                hc = clusters["hits"][h]
                pos[sel] = np.stack(
                    [hc.cols[c][row[sel]] for c in ("position.x", "position.y", "position.z", "energy", "time")], 1
                )
            parts.append((owner[ok], np.ones(int(ok.sum()), np.int8), *pos.T))
        if parts:
            trk, kind, x, y, z, energy, time = (np.concatenate([p[i] for p in parts]) for i in range(7))
        else:
            trk = kind = np.zeros(0, np.int64)
            x = y = z = energy = time = np.zeros(0)
        dist = np.sqrt(x**2 + y**2 + z**2)
        order = np.lexsort((dist, kind, trk))
        trk, kind, x, y, z, energy, time, dist = (v[order] for v in (trk, kind, x, y, z, energy, time, dist))
        per = np.bincount(trk, minlength=n_tracks).astype(np.int64)
        group = trk * 2 + kind
        first_of_group = np.ones(len(group), bool)
        first_of_group[1:] = group[1:] != group[:-1]
        start_of = np.maximum.accumulate(np.where(first_of_group, np.arange(len(group)), 0))
        rank = np.arange(len(group)) - start_of
        r = np.hypot(x, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(np.where(r > 0, z / np.where(r > 0, r, 1.0), np.sign(z) * 1e3))
        eta = np.clip(eta, -10.0, 10.0)  # a hit on the beam line (a track's point of closest approach)
        return _Flat(
            per,
            {
                "eta": eta,
                "phi": np.arctan2(y, x),
                "energy": energy,
                "time": time * self.time_scale,
                "layer": np.where(kind == 1, CALORIMETER_LAYER_BASE + rank, rank).astype(np.int16),
                "kind": kind.astype(np.int8),
                "r": r,
                "z": z,
            },
        )

    def _track_check(
        self, tracks: _Flat, particles: _Flat | None, p_tracks: Links | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(track pT, linked particle pT, track sigma(pT)/pT) of every particle-track link."""
        if particles is None or p_tracks is None:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        src, trk, order = p_tracks.to(self.tracks)
        single = np.bincount(src, minlength=int(particles.n.sum()))[src] == 1  # particles with one track
        src, trk = src[single], trk[single]
        return tracks.cols["pt"][trk], particles.cols["pt"][src], tracks.cols["pt_rel_error"][trk]

    def _event(
        self, a: dict[str, ak.Array], n_events: int, pv: np.ndarray, bz: np.ndarray, visible: np.ndarray
    ) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "pvx": pv[:, 0],
            "pvy": pv[:, 1],
            "pvz": pv[:, 2],
            "experiment_id": np.full(n_events, schema.EXPERIMENTS[self.EXPERIMENT], np.int8),
            "is_simulation": np.full(n_events, int(self.is_simulation), np.int8),
            "bz": bz,
        }
        if self.mc:
            status = flat(a[f"{self.mc}.simulatorStatus"]).astype(np.int64)
            n = counts(a[f"{self.mc}.simulatorStatus"])
            overlay = (
                np.bincount(np.repeat(np.arange(n_events), n)[((status >> OVERLAY_BIT) & 1) == 1], minlength=n_events)
                > 0
            )
            out["mu"] = np.where(overlay, np.nan, 0.0)
        if self.header:
            for f, m in (("event_number", "eventNumber"), ("run_number", "runNumber")):
                v = ak.fill_none(ak.firsts(a[f"{self.header}.{m}"]), -1)
                out[f] = np.asarray(ak.to_numpy(v), np.int64)
        initial = self._initial({"arrays": a, "n_events": n_events})
        out["sqrt_s"] = ee.signed_mass(initial)
        out.update(ee.missing_four_momentum(np.broadcast_to(initial, (n_events, 4)), visible))
        return out
