"""ATLAS DAOD_PHYSLITE (TTree ``CollectionTree`` or RNTuple ``EventData``) to the common format.

PHYSLITE is in MeV and mm. :data:`TABLE` maps every schema key of ``common`` and ``atlas`` to its
branch, with aliases for decorations renamed between releases (GN2v00 -> GN2v01, ``ptvarcone30``
-> ``ptvarcone30_Nonprompt_All_MaxWeightTTVA*``). b-tagging scores are reached through the jets'
``btaggingLink`` ElementLinks; muon ``quality`` is unpacked (``quality & 3``). Tracks' pT and eta
come from q/p and theta; ``trk_iso03`` is recomputed from the (thinned) ``InDetTrackParticles``,
excluding every track linked to the object (all of an electron's GSF tracks' original tracks, a
muon's inner-detector track, a converted photon's conversion tracks); MET is rebuilt from the
objects plus the stored track soft term (PHYSLITE stores no final MET).

Simulation or collision data is read from ``EventInfo``: bit 0 of ``eventTypeBitmask``
(``IS_SIMULATION``), else ``mcChannelNumber``; nothing assumes simulation. In data
``atlas/event/mcChannelNumber`` is missing (-1). A container the file lacks entirely gives an
empty group named in ``missing_collections``.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from ...errors import InputError
from ...kinematics import delta_phi
from .. import schema
from . import isolation
from .reader import Src, TableConverter, flat, gather, num

EL, MU, TAU, PH, JET = (
    "AnalysisElectronsAuxDyn",
    "AnalysisMuonsAuxDyn",
    "AnalysisTauJetsAuxDyn",
    "AnalysisPhotonsAuxDyn",
    "AnalysisJetsAuxDyn",
)
TRK, PV, EVT, BTAG, GSF = (
    "InDetTrackParticlesAuxDyn",
    "PrimaryVerticesAuxDyn",
    "EventInfoAuxDyn",
    "BTagging_AntiKt4EMPFlowAuxDyn",
    "GSFTrackParticlesAuxDyn",
)
MET = "MET_Core_AnalysisMETAuxDyn"
CONV = "GSFConversionVerticesAuxDyn"
COLLECTIONS = {
    "electrons": (f"{EL}.",),
    "muons": (f"{MU}.",),
    "taus": (f"{TAU}.",),
    "photons": (f"{PH}.",),
    "jets": (f"{JET}.",),
}
"""Object type -> the branch prefix of its PHYSLITE container."""
IS_SIMULATION_BIT = 1
"""Bit 0 of ``EventInfo::eventTypeBitmask`` is ``IS_SIMULATION`` (xAOD::EventInfo_v1::EventType)."""
DETECTION_SAMPLE = 1000
"""Events read when the converter is set up to tell simulation from data (every step checks the rest)."""
BTAG_LINK = f"{JET}.btaggingLink.m_persIndex"
SOFT_TERM = "PVSoftTrkCore"
"""The stored soft term added to the rebuilt MET (track-based, from the primary vertex)."""
PRIMARY_VERTEX_TYPE = 1
"""``vertexType`` of the primary vertex (xAOD::VxType::PriVtx)."""
MET_JET_OVERLAP_DR = 0.2
OWN_TRACK_DR = 0.01
"""Files without the track-link branches: a lepton's own track is the closest one within this dR."""


def _b(container: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{container}.{n}" for n in names)


TABLE: dict[str, Src] = {
    # common: kinematics straight from the containers (MeV -> GeV by unit)
    **{
        schema.key("common", g, f): Src(_b(c, b))
        for g, c in (("electrons", EL), ("muons", MU), ("taus", TAU), ("photons", PH), ("jets", JET))
        for f, b in (("pt", "pt"), ("eta", "eta"), ("phi", "phi"))
    },
    **{
        schema.key("common", g, "charge"): Src(_b(c, "charge"))
        for g, c in (("electrons", EL), ("muons", MU), ("taus", TAU))
    },
    "common/taus/is_1prong": Src(_b(TAU, "NNDecayMode", "PanTau_DecayMode"), op="one_prong"),
    "common/jets/mass": Src(_b(JET, "m")),
    "common/jets/n_trk": Src(_b(JET, "NumTrkPt500"), op="at_pv"),
    "common/tracks/phi": Src(_b(TRK, "phi")),
    "common/tracks/d0": Src(_b(TRK, "d0")),
    "common/tracks/z0": Src(_b(TRK, "z0")),
    "common/event/mu": Src(_b(EVT, "averageInteractionsPerCrossing")),
    # atlas layer
    "atlas/electrons/LHLoose": Src(_b(EL, "DFCommonElectronsLHLoose")),
    "atlas/electrons/LHMedium": Src(_b(EL, "DFCommonElectronsLHMedium")),
    "atlas/electrons/LHTight": Src(_b(EL, "DFCommonElectronsLHTight")),
    "atlas/electrons/topoetcone20": Src(_b(EL, "topoetcone20")),
    "atlas/electrons/ptvarcone30": Src(
        _b(
            EL,
            "ptvarcone30",
            "ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000",
            "ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt500",
        )
    ),
    "atlas/electrons/mass": Src(_b(EL, "m")),
    "atlas/muons/quality": Src(_b(MU, "quality"), op="low2bits"),
    "atlas/muons/muonType": Src(_b(MU, "muonType")),
    "atlas/muons/passIDCuts": Src(_b(MU, "DFCommonMuonPassIDCuts", "DFCommonMuonsPassIDCuts")),
    "atlas/muons/passPresel": Src(_b(MU, "DFCommonMuonPassPreselection", "DFCommonMuonsPassPreselection")),
    "atlas/muons/topoetcone20": Src(_b(MU, "topoetcone20")),
    "atlas/muons/ptvarcone30": Src(
        _b(
            MU,
            "ptvarcone30",
            "ptvarcone30_Nonprompt_All_MaxWeightTTVA_pt1000",
            "ptvarcone30_Nonprompt_All_MaxWeightTTVA_pt500",
        )
    ),
    "atlas/taus/NNDecayMode": Src(_b(TAU, "NNDecayMode")),
    "atlas/taus/RNNJetScore": Src(_b(TAU, "RNNJetScore")),
    "atlas/taus/RNNEleScore": Src(_b(TAU, "RNNEleScore", "RNNEleScore_v1")),
    "atlas/taus/EleRNNLoose_v1": Src(_b(TAU, "EleRNNLoose_v1", "EleRNNLoose")),
    "atlas/taus/EleRNNMedium_v1": Src(_b(TAU, "EleRNNMedium_v1", "EleRNNMedium")),
    "atlas/taus/EleRNNTight_v1": Src(_b(TAU, "EleRNNTight_v1", "EleRNNTight")),
    "atlas/photons/isLoose": Src(_b(PH, "DFCommonPhotonsIsEMLoose")),
    "atlas/photons/isTight": Src(_b(PH, "DFCommonPhotonsIsEMTight")),
    "atlas/photons/isCleaning": Src(_b(PH, "DFCommonPhotonsCleaning")),
    "atlas/photons/author": Src(_b(PH, "author")),
    "atlas/photons/topoetcone20": Src(_b(PH, "topoetcone20")),
    "atlas/photons/topoetcone40": Src(_b(PH, "topoetcone40")),
    "atlas/photons/ptcone20": Src(_b(PH, "ptcone20")),
    **{
        f"atlas/jets/DL1d_{p}": Src(_b(BTAG, f"DL1dv01_{p}", f"DL1dv00_{p}"), via=BTAG_LINK) for p in ("pb", "pc", "pu")
    },
    **{f"atlas/jets/GN2_{p}": Src(_b(BTAG, f"GN2v01_{p}", f"GN2v00_{p}"), via=BTAG_LINK) for p in ("pb", "pc", "pu")},
    "atlas/jets/QG_nTracks": Src(_b(JET, "DFCommonJets_QGTagger_NTracks")),
    "atlas/jets/QG_tracksWidth": Src(_b(JET, "DFCommonJets_QGTagger_TracksWidth")),
    "atlas/jets/QG_tracksC1": Src(_b(JET, "DFCommonJets_QGTagger_TracksC1")),
    "atlas/tracks/q0verP": Src(_b(TRK, "qOverP")),
    "atlas/tracks/chiSquared": Src(_b(TRK, "chiSquared")),
    "atlas/tracks/nDoF": Src(_b(TRK, "numberDoF")),
    "atlas/event/event_number": Src(_b(EVT, "eventNumber")),
    "atlas/event/run_number": Src(_b(EVT, "runNumber")),
    "atlas/event/mcChannelNumber": Src(_b(EVT, "mcChannelNumber")),
}
"""Schema key -> branch aliases (first present wins). Data, not code: a new release adds an alias."""

SCALE = {"GeV": 1e-3, "1/GeV": 1e3}
"""PHYSLITE MeV -> GeV (and 1/MeV -> 1/GeV); lengths are already mm."""

MET_DEFINITION = (
    f"rebuilt from PHYSLITE (which stores only soft terms): minus the vector sum of the pT of the stored "
    f"electrons, muons and photons passing the pT cuts (metadata pt_cuts) and of the jets passing the jet pT cut "
    f"farther than dR {MET_JET_OVERLAP_DR} from any of those electrons and photons, plus the stored track soft "
    f"term {MET.replace('AuxDyn', '')} '{SOFT_TERM}'; sumet is the scalar sum of the same objects plus the soft "
    f"term's sumet. No identification or further overlap removal."
)

TRACKS_SOURCE = (
    f"{TRK.replace('AuxDyn', '')}: pt = sin(theta)/|qOverP|, eta = -ln tan(theta/2); z0 as stored "
    f"(w.r.t. the beam line, add vz for the global z). PHYSLITE tracks are thinned (a few dozen an event)."
)

THINNING_NOTE = (
    "PHYSLITE InDetTrackParticles are thinned (tracks near the objects are kept): common trk_iso03 is "
    "recomputed from them by the fixed-cone seed definition, which differs from ATLAS's ptvarcone30 (see "
    "the README); an object whose linked tracks were all thinned away has none to exclude. The "
    "experiment's own ptvarcone30/ptcone20 are kept in the atlas layer."
)


class AtlasConverter(TableConverter):
    """PHYSLITE -> common + atlas layers, one code path for TTree and RNTuple files."""

    EXPERIMENT = "ATLAS"
    FORMAT_NAME = "ATLAS PHYSLITE"
    TREE_NAMES = ("CollectionTree", "EventData")
    TABLE = TABLE
    SCALE = SCALE
    COLLECTIONS = COLLECTIONS

    def detect_simulation(self) -> tuple[bool, str]:
        src = self.source
        self.bitmask = src.first(_b(EVT, "eventTypeBitmask"))
        channel = src.first(_b(EVT, "mcChannelNumber"))
        n = min(src.n_events, DETECTION_SAMPLE)
        if self.bitmask is not None:
            if n == 0:
                return channel is not None, (
                    f"no events; {self.bitmask} present, "
                    + ("mcChannelNumber present: simulation" if channel else "no mcChannelNumber: collision data")
                )
            bits = np.unique(np.asarray(src.read([self.bitmask], 0, n)[self.bitmask]) & IS_SIMULATION_BIT)
            if len(bits) > 1:
                raise InputError(src.path, self.bitmask, "mixes simulated and collision events (bit 0, IS_SIMULATION)")
            simulation = bool(bits[0])
            return simulation, f"{self.bitmask} bit 0 (IS_SIMULATION) = {int(simulation)}"
        if channel is not None:
            values = np.asarray(src.read([channel], 0, n)[channel]) if n else np.zeros(0)
            simulation = bool(n == 0 or np.all(values > 0))
            return simulation, (
                f"no eventTypeBitmask; {channel} "
                + ("present and non-zero: simulation" if simulation else "is 0: collision data")
            )
        return False, (
            "collision data: the file has neither EventInfoAuxDyn.eventTypeBitmask nor EventInfoAuxDyn.mcChannelNumber"
        )

    def plan(self) -> None:
        present = [g for g in schema.OBJECT_TYPES if g not in self.missing_collections]
        if self.bitmask is not None:
            self.needed.add(self.bitmask)
        self.trk = {n: self.require(f"{TRK}.{n}") for n in ("qOverP", "theta", "phi", "z0")}
        self.trk_vz = self.optional(f"{TRK}.vz")
        self.beam_z = None if self.trk_vz else self.optional(f"{EVT}.beamPosZ")
        if self.trk_vz is None and self.beam_z is None:
            raise InputError(
                self.source.path,
                f"{TRK}.vz or {EVT}.beamPosZ",
                "branch is missing (needed to place the tracks' z0, given w.r.t. the beam spot, "
                "relative to the primary vertex for trk_iso03)",
            )
        z_reference = (
            f"z0 + {self.trk_vz} (each track's reference point) - primary vertex z"
            if self.trk_vz
            else f"z0 + {self.beam_z} (the beam spot: the tracks carry no vz) - primary vertex z"
        )
        self.pv = {n: self.require(f"{PV}.{n}") for n in ("x", "y", "z", "vertexType")}
        self.met = {n: self.require(f"{MET}.{n}") for n in ("mpx", "mpy", "sumet", "name")}

        # own-track links: muon -> InDet track; electron -> GSF tracks -> their original InDet tracks;
        # photon -> conversion vertices -> their GSF tracks -> original InDet tracks
        def link(*names: str) -> tuple:
            return tuple(self.optional(n) for n in names)

        self.gsf_orig = link(f"{GSF}.originalTrackParticle.m_persIndex", f"{GSF}.originalTrackParticle.m_persKey")
        self.links = {
            "muons": link(f"{MU}.inDetTrackParticleLink.m_persIndex", f"{MU}.inDetTrackParticleLink.m_persKey"),
            "electrons": link(f"{EL}.trackParticleLinks.m_persIndex", f"{EL}.trackParticleLinks.m_persKey"),
            "photons": link(
                f"{PH}.vertexLinks.m_persIndex",
                f"{PH}.vertexLinks.m_persKey",
                f"{CONV}.trackParticleLinks.m_persIndex",
                f"{CONV}.trackParticleLinks.m_persKey",
            ),
        }
        for g in ("electrons", "muons", "photons"):
            if g in present:
                for f in ("eta", "phi"):
                    self.require(*TABLE[schema.key("common", g, f)].branches)
        self.derived = {
            "common/tracks/pt": self._track_pt,
            "common/tracks/eta": self._track_eta,
            "common/met/pt": lambda ctx: self._met(ctx)[0],
            "common/met/phi": lambda ctx: self._met(ctx)[1],
            "common/met/sumet": lambda ctx: self._met(ctx)[2],
            "common/event/pvx": lambda ctx: self._pv_value("x", ctx),
            "common/event/pvy": lambda ctx: self._pv_value("y", ctx),
            "common/event/pvz": lambda ctx: self._pv_value("z", ctx),
            "common/event/experiment_id": lambda ctx: np.full(ctx["n_events"], schema.EXPERIMENTS["ATLAS"], np.int8),
            "common/event/is_simulation": self._is_simulation,
            **{
                f"common/{g}/trk_iso03": (lambda ctx, g=g: self._iso(g, ctx)) for g in ("electrons", "muons", "photons")
            },
        }
        if not self.is_simulation:
            self.missing("atlas/event/mcChannelNumber")
        iso_source = {}
        for g in ("electrons", "muons", "photons"):
            excluded = self._exclusion_source(g)
            iso_source[g] = (
                f"recomputed from the thinned PHYSLITE InDetTrackParticles (see notes); excluded: {excluded}"
                if g in present
                else "none: the file lacks this collection"
            )
        self.extra_metadata = {
            "met_definition": MET_DEFINITION,
            "common_iso_source": iso_source,
            "tracks_source": TRACKS_SOURCE,
            "iso_z_reference": z_reference,
        }
        self.notes = [THINNING_NOTE, f"read as {self.source.layout_name} {self.source.tree_name}"]

    def _exclusion_source(self, group: str) -> str:
        """Which tracks count as the object's own, in words (for the metadata)."""
        if group == "muons" and all(self.links["muons"]):
            return "the muon's inDetTrackParticleLink"
        if group == "electrons" and all(self.links["electrons"] + self.gsf_orig):
            return "every GSF track of trackParticleLinks, through its originalTrackParticle"
        if group == "photons" and all(self.links["photons"] + self.gsf_orig):
            return "every track of the photon's conversion vertices (vertexLinks), through originalTrackParticle"
        if group == "photons":
            return "nothing (the file has no conversion-vertex links)"
        return f"the closest track within dR {OWN_TRACK_DR} (the file has no track links)"

    # --- per-step quantities -------------------------------------------------------------
    def prepare(self, ctx: dict[str, Any]) -> None:
        a = ctx["arrays"]
        vtype = a[self.pv["vertexType"]]
        is_pv = vtype == PRIMARY_VERTEX_TYPE
        first = ak.argmax(is_pv, axis=1, keepdims=False)
        has = ak.any(is_pv, axis=1)
        ctx["pv_index"] = ak.to_numpy(ak.where(has, ak.fill_none(first, -1), -1)).astype(np.int64)

    def _pv_value(self, name: str, ctx: dict[str, Any]) -> np.ndarray:
        values = ctx["arrays"][self.pv[name]]
        idx = ak.unflatten(ctx["pv_index"], 1)
        return flat(gather(values, idx, np.nan)).astype(np.float32)

    def _tracks(self, ctx: dict[str, Any]) -> dict[str, np.ndarray]:
        if "tracks" not in ctx:
            a = ctx["arrays"]
            qop = flat(a[self.trk["qOverP"]]).astype(np.float64)
            theta = flat(a[self.trk["theta"]]).astype(np.float64)
            counts = num(a[self.trk["qOverP"]])
            z0 = flat(a[self.trk["z0"]]).astype(np.float64)
            event = np.repeat(np.arange(len(counts)), counts)
            if self.trk_vz is not None:
                z0 = z0 + flat(a[self.trk_vz])
            else:
                z0 = z0 + np.asarray(a[self.beam_z], np.float64)[event]
            pvz = np.asarray(self._pv_value("z", ctx), np.float64)[event]
            with np.errstate(divide="ignore"):
                pt = np.sin(theta) / np.abs(qop) * SCALE["GeV"]
            ctx["tracks"] = {
                "counts": counts,
                "pt": pt,
                "eta": -np.log(np.tan(theta / 2.0)),
                "phi": flat(a[self.trk["phi"]]).astype(np.float64),
                "z0sintheta": (z0 - pvz) * np.sin(theta),
            }
        return ctx["tracks"]

    def _track_pt(self, ctx: dict[str, Any]) -> ak.Array:
        t = self._tracks(ctx)
        return ak.unflatten(t["pt"].astype(np.float32), t["counts"])

    def _track_eta(self, ctx: dict[str, Any]) -> ak.Array:
        t = self._tracks(ctx)
        return ak.unflatten(t["eta"].astype(np.float32), t["counts"])

    def _is_simulation(self, ctx: dict[str, Any]) -> np.ndarray:
        flag = int(self.is_simulation)
        if self.bitmask is not None:
            bits = np.asarray(ctx["arrays"][self.bitmask]) & IS_SIMULATION_BIT
            if np.any(bits != flag):
                raise InputError(
                    self.source.path, self.bitmask, "mixes simulated and collision events (bit 0, IS_SIMULATION)"
                )
        return np.full(ctx["n_events"], flag, np.int8)

    def _own_tracks(
        self, group: str, ctx: dict[str, Any], counts: np.ndarray, eta: np.ndarray, phi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(object rows, InDet track indices within the event)`` of every track linked to each
        object (None: nothing to exclude)."""
        a = ctx["arrays"]
        t = self._tracks(ctx)
        rows = np.arange(int(counts.sum()), dtype=np.int64)
        events = np.repeat(np.arange(len(counts)), counts)
        local = rows - np.repeat(np.cumsum(counts) - counts, counts)

        def step(r, e, i, container_counts, index_branch, key_branch):
            idx, key = a[index_branch], a[key_branch]
            nested = idx.ndim == 3
            link_counts = flat(ak.num(idx, axis=2)) if nested else np.ones(int(ak.sum(ak.num(idx))), np.int64)
            return isolation.follow_links(
                r, e, i, container_counts, link_counts, ak.flatten(idx, axis=None), ak.flatten(key, axis=None) != 0
            )

        def gsf_to_indet(r, e, i):
            return step(r, e, i, num(a[self.gsf_orig[0]]), *self.gsf_orig)

        if group == "muons" and all(self.links["muons"]):
            r, _, i = step(rows, events, local, counts, *self.links["muons"])
            return r, i
        if group == "electrons" and all(self.links["electrons"] + self.gsf_orig):
            r, e, i = step(rows, events, local, counts, *self.links["electrons"])
            r, _, i = gsf_to_indet(r, e, i)
            return r, i
        if group == "photons":
            if not all(self.links["photons"] + self.gsf_orig):
                return None
            vertex_idx, vertex_key, conv_idx, conv_key = self.links["photons"]
            r, e, i = step(rows, events, local, counts, vertex_idx, vertex_key)
            r, e, i = step(r, e, i, num(a[conv_idx]), conv_idx, conv_key)
            r, _, i = gsf_to_indet(r, e, i)
            return r, i
        return isolation.own_pairs(
            isolation.nearest_track(counts, eta, phi, t["counts"], t["eta"], t["phi"], OWN_TRACK_DR)
        )

    def _iso(self, group: str, ctx: dict[str, Any]) -> ak.Array:
        counts, pt, eta, phi = self.flat_kinematics(group, ctx)
        t = self._tracks(ctx)
        own = self._own_tracks(group, ctx, counts, eta, phi)
        iso = isolation.trk_iso03(counts, pt, eta, phi, own, t["counts"], t["pt"], t["eta"], t["phi"], t["z0sintheta"])
        return ak.unflatten(iso, counts)

    def _met(self, ctx: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if "met" in ctx:
            return ctx["met"]
        a, keep = ctx["arrays"], ctx["keep"]

        def kept(g: str) -> dict[str, ak.Array]:
            return {f: self.get(schema.key("common", g, f), ctx)[keep[g]] for f in ("pt", "eta", "phi")}

        leptons = [kept(g) for g in ("electrons", "muons", "photons")]
        jets = kept("jets")
        eg_eta = ak.concatenate([leptons[0]["eta"], leptons[2]["eta"]], axis=1)
        eg_phi = ak.concatenate([leptons[0]["phi"], leptons[2]["phi"]], axis=1)
        pairs = ak.cartesian(
            {"j": ak.zip({"eta": jets["eta"], "phi": jets["phi"]}), "e": ak.zip({"eta": eg_eta, "phi": eg_phi})},
            nested=True,
        )
        dphi = delta_phi(pairs.j.phi, pairs.e.phi)
        overlap = ak.any((pairs.j.eta - pairs.e.eta) ** 2 + dphi**2 < MET_JET_OVERLAP_DR**2, axis=2)
        objects = leptons + [{f: v[~overlap] for f, v in jets.items()}]
        px = sum(ak.sum(o["pt"] * np.cos(o["phi"]), axis=1) for o in objects)
        py = sum(ak.sum(o["pt"] * np.sin(o["phi"]), axis=1) for o in objects)
        sumet = sum(ak.sum(o["pt"], axis=1) for o in objects)
        soft = a[self.met["name"]] == SOFT_TERM
        mpx = ak.sum(a[self.met["mpx"]][soft], axis=1) * SCALE["GeV"]
        mpy = ak.sum(a[self.met["mpy"]][soft], axis=1) * SCALE["GeV"]
        soft_sumet = ak.sum(a[self.met["sumet"]][soft], axis=1) * SCALE["GeV"]
        mx = ak.to_numpy(-px + mpx).astype(np.float64)
        my = ak.to_numpy(-py + mpy).astype(np.float64)
        ctx["met"] = (
            np.hypot(mx, my).astype(np.float32),
            np.arctan2(my, mx).astype(np.float32),
            ak.to_numpy(sumet + soft_sumet).astype(np.float32),
        )
        return ctx["met"]
