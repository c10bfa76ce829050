"""CMS NanoAOD (TTree or RNTuple ``Events``; NanoAOD v9-era, v15 and PFNano) to the common format.

NanoAOD is in GeV and cm (lengths become mm). :data:`TABLE` maps every schema key of ``common``
and ``cms`` to its branch, with aliases across NanoAOD versions (``mvaFall17V2Iso_WP80`` ->
``mvaIso_WP80``, ``idDeepTau2017v2p1VSjet`` -> ``idDeepTau2018v2p5VSjet``, ``MET`` -> ``PFMET``,
``pfRelIso03_chg`` -> ``pfRelIso03_chg_quadratic``). ``trk_iso03`` is recomputed by the seed's
definition from ``PFCands`` when the file has them (PFNano), otherwise taken from
``*_pfRelIso03_chg``; tracks come from ``PFCands`` (charged) or ``IsoTrack``, else the group is
empty; jet constituents come from ``JetPFCands`` (PFNano).
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from .. import schema
from . import isolation
from .reader import Src, TableConverter, flat, num

TRACK_COLLECTIONS = ("PFCands", "IsoTrack")
"""Where common/tracks come from, in order of preference (the first with every common field)."""
PF = "PFCands"
"""The PFNano list of all PF candidates (pt, eta, phi, charge, d0, dz): isolation and constituents."""
ISO_BRANCHES = ("pt", "eta", "phi", "charge", "dz")
CONSTITUENT_LINKS = ("JetPFCands_jetIdx", "JetPFCands_pFCandsIdx")
OWN_TRACK_DR = 0.01
"""A lepton's own PF candidate: the closest charged candidate within this dR."""
ISO_GROUPS = ("electrons", "muons", "photons")


def _b(prefix: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{n}" for n in names)


TABLE: dict[str, Src] = {
    # common
    **{schema.key("common", g, f): Src(_b(c, f)) for g, c in
       (("electrons", "Electron"), ("muons", "Muon"), ("taus", "Tau"), ("photons", "Photon"), ("jets", "Jet"))
       for f in ("pt", "eta", "phi")},
    **{schema.key("common", g, "charge"): Src(_b(c, "charge")) for g, c in
       (("electrons", "Electron"), ("muons", "Muon"), ("taus", "Tau"))},
    **{schema.key("common", g, "trk_iso03"): Src(_b(c, "pfRelIso03_chg", "pfRelIso03_chg_quadratic")) for g, c in
       (("electrons", "Electron"), ("muons", "Muon"), ("photons", "Photon"))},
    "common/taus/is_1prong": Src(_b("Tau", "decayMode"), op="one_prong"),
    "common/jets/mass": Src(_b("Jet", "mass")),
    "common/jets/n_trk": Src(_b("Jet", "chMultiplicity")),
    "common/tracks/pt": Src(_b("PFCands", "pt") + _b("IsoTrack", "pt")),
    "common/tracks/eta": Src(_b("PFCands", "eta") + _b("IsoTrack", "eta")),
    "common/tracks/phi": Src(_b("PFCands", "phi") + _b("IsoTrack", "phi")),
    "common/tracks/d0": Src(_b("PFCands", "d0") + _b("IsoTrack", "dxy")),
    "common/tracks/z0": Src(_b("PFCands", "dz") + _b("IsoTrack", "dz")),
    "common/met/pt": Src(("MET_pt", "PFMET_pt")),
    "common/met/phi": Src(("MET_phi", "PFMET_phi")),
    "common/met/sumet": Src(("MET_sumEt", "PFMET_sumEt")),
    "common/event/pvx": Src(("PV_x",)),
    "common/event/pvy": Src(("PV_y",)),
    "common/event/pvz": Src(("PV_z",)),
    "common/event/mu": Src(("Pileup_nTrueInt",)),
    "common/constituents/pt": Src(_b(PF, "pt")),
    "common/constituents/eta": Src(_b(PF, "eta")),
    "common/constituents/phi": Src(_b(PF, "phi")),
    "common/constituents/charge": Src(_b(PF, "charge")),
    "common/constituents/d0": Src(_b(PF, "d0")),
    "common/constituents/z0": Src(_b(PF, "dz")),
    # cms layer
    "cms/electrons/cutBased": Src(_b("Electron", "cutBased")),
    "cms/electrons/mvaIso_WP80": Src(_b("Electron", "mvaIso_WP80", "mvaFall17V2Iso_WP80", "mvaFall17V1Iso_WP80")),
    "cms/electrons/mvaIso_WP90": Src(_b("Electron", "mvaIso_WP90", "mvaFall17V2Iso_WP90", "mvaFall17V1Iso_WP90")),
    "cms/electrons/pfRelIso03_all": Src(_b("Electron", "pfRelIso03_all")),
    "cms/electrons/mass": Src(_b("Electron", "mass")),
    "cms/muons/looseId": Src(_b("Muon", "looseId")),
    "cms/muons/mediumId": Src(_b("Muon", "mediumId")),
    "cms/muons/tightId": Src(_b("Muon", "tightId")),
    "cms/muons/pfRelIso04_all": Src(_b("Muon", "pfRelIso04_all")),
    "cms/muons/isGlobal": Src(_b("Muon", "isGlobal")),
    "cms/muons/isTracker": Src(_b("Muon", "isTracker")),
    "cms/taus/decayMode": Src(_b("Tau", "decayMode")),
    "cms/taus/idDeepTauVSjet": Src(_b("Tau", "idDeepTau2018v2p5VSjet", "idDeepTau2017v2p1VSjet")),
    "cms/taus/idDeepTauVSe": Src(_b("Tau", "idDeepTau2018v2p5VSe", "idDeepTau2017v2p1VSe")),
    "cms/taus/idDeepTauVSmu": Src(_b("Tau", "idDeepTau2018v2p5VSmu", "idDeepTau2017v2p1VSmu")),
    "cms/photons/cutBased": Src(_b("Photon", "cutBased")),
    "cms/photons/mvaID_WP80": Src(_b("Photon", "mvaID_WP80")),
    "cms/photons/mvaID_WP90": Src(_b("Photon", "mvaID_WP90")),
    "cms/photons/pfRelIso03_all": Src(_b("Photon", "pfRelIso03_all", "pfRelIso03_all_quadratic")),
    "cms/jets/btagDeepFlavB": Src(_b("Jet", "btagDeepFlavB")),
    "cms/jets/btagDeepFlavCvL": Src(_b("Jet", "btagDeepFlavCvL")),
    "cms/jets/jetId": Src(_b("Jet", "jetId")),
    "cms/jets/puId": Src(_b("Jet", "puId")),
    "cms/jets/qgl": Src(_b("Jet", "qgl")),
    "cms/tracks/charge": Src(_b("PFCands", "charge") + _b("IsoTrack", "charge")),
    "cms/tracks/fromPV": Src(_b("IsoTrack", "fromPV")),
    "cms/tracks/pdgId": Src(_b("PFCands", "pdgId") + _b("IsoTrack", "pdgId")),
    "cms/event/event_number": Src(("event",)),
    "cms/event/run_number": Src(("run",)),
    "cms/event/luminosity_block": Src(("luminosityBlock",)),
}
"""Schema key -> branch aliases (first present wins). Data, not code: a new NanoAOD version adds an alias."""

SCALE = {"mm": 10.0}
"""NanoAOD cm -> mm; energies are already GeV."""


class CmsConverter(TableConverter):
    """NanoAOD / PFNano -> common + cms layers, one code path for TTree and RNTuple files."""

    HEAVY_COUNTERS = (f"n{PF}",)

    EXPERIMENT = "CMS"
    TREE_NAMES = ("Events",)
    TABLE = TABLE
    SCALE = SCALE

    def plan(self) -> None:
        src = self.source
        self.derived["common/event/experiment_id"] = \
            lambda ctx: np.full(ctx["n_events"], schema.EXPERIMENTS["CMS"], np.int8)
        simulation = src.has("genWeight")
        self.derived["common/event/is_simulation"] = lambda ctx: np.full(ctx["n_events"], int(simulation), np.int8)
        # tracks: the first collection holding every common track field, else an empty group
        track_keys = [schema.key(layer, "tracks", f.name) for layer in ("common", self.layer)
                      for f in schema.fields(layer, "tracks")]
        self.tracks_from = next((c for c in TRACK_COLLECTIONS if all(
            src.first(self._only(k, c).branches) for k in track_keys if k.startswith("common/"))), None)
        if self.tracks_from is None:
            for k in track_keys:
                dtype = schema.field_of(k).np_dtype
                self.derived[k] = lambda ctx, d=dtype: ak.unflatten(np.zeros(0, d), np.zeros(ctx["n_events"], np.int64))
            tracks_source = "none: this file has neither PFCands nor IsoTrack, the tracks group is empty"
        else:
            for k in track_keys:
                self.table[k] = self._only(k, self.tracks_from)
            tracks_source = (f"{self.tracks_from}_*" + (" (charged candidates only)" if self.tracks_from == PF else
                                                         " (isolated tracks only: not a full track list)") +
                             "; d0/dxy and dz converted cm -> mm")
            if self.tracks_from == PF:
                charge = self.require(f"{PF}_charge")
                self.selection["tracks"] = lambda ctx: ctx["arrays"][charge] != 0
        # isolation: recomputed from all PF candidates when present, else the stored relative isolation
        self.pf_iso = all(src.has(f"{PF}_{n}") for n in ISO_BRANCHES)
        iso_source: dict[str, str] = {}
        for g in ISO_GROUPS:
            k = schema.key("common", g, "trk_iso03")
            if self.pf_iso:
                self.derived[k] = lambda ctx, g=g: self._iso(g, ctx)
                iso_source[g] = (f"recomputed from {PF} (charged, pT > {schema.ISOLATION.pt_floor_gev} GeV, "
                                 f"|dz sin(theta)| < {schema.ISOLATION.z0sintheta_cut_mm} mm, own candidate "
                                 f"(closest charged within dR {OWN_TRACK_DR}) excluded)")
            else:
                iso_source[g] = self.require(*TABLE[k].branches)
        if self.pf_iso:
            for n in ISO_BRANCHES:
                self.require(f"{PF}_{n}")
        # jet constituents and the jets' track count
        if all(src.has(b) for b in CONSTITUENT_LINKS) and all(
                src.has(b) for f in schema.fields("common", "constituents")
                for b in TABLE[schema.key("common", "constituents", f.name)].branches):
            self.sub_groups = ("constituents",)
            for b in CONSTITUENT_LINKS:
                self.require(b)
        n_trk = "common/jets/n_trk"
        if self.sub_groups:
            self.derived[n_trk] = self._n_trk_from_constituents
            n_trk_source = f"charged {PF} with pT > {schema.ISOLATION.pt_floor_gev} GeV among the JetPFCands"
        elif src.first(TABLE[n_trk].branches):
            n_trk_source = f"{src.first(TABLE[n_trk].branches)} (charged constituents, no pT threshold)"
        else:
            self.derived[n_trk] = self._missing_n_trk
            self.missing_fields.append(n_trk)
            n_trk_source = (f"missing: the file has neither JetPFCands nor {' / '.join(TABLE[n_trk].branches)}; "
                            f"filled with -1")
        met = self.require(*TABLE["common/met/pt"].branches)
        self.extra_metadata = {
            "met_definition": f"stored {met.rsplit('_', 1)[0]} (type-1 corrected PF MET as written in NanoAOD)",
            "common_iso_source": iso_source,
            "tracks_source": tracks_source,
        }
        self.notes = [f"read as {src.layout_name} {src.tree_name}", f"jets n_trk: {n_trk_source}"]

    @staticmethod
    def _only(k: str, collection: str) -> Src:
        """The aliases of ``k`` within one collection (so that no field mixes two collections)."""
        src = TABLE.get(k, Src(()))
        return Src(tuple(b for b in src.branches if b.startswith(collection + "_")), src.via, src.op)

    # --- derived fields ------------------------------------------------------------------
    def _pf(self, ctx: dict[str, Any]) -> dict[str, np.ndarray]:
        if "pf" not in ctx:
            a = ctx["arrays"]
            out = {n: flat(a[f"{PF}_{n}"]).astype(np.float64) for n in ISO_BRANCHES}
            out["counts"] = num(a[f"{PF}_pt"])
            theta = 2.0 * np.arctan(np.exp(-out["eta"]))
            out["z0sintheta"] = out["dz"] * SCALE["mm"] * np.sin(theta)
            out["charged"] = out["charge"] != 0
            ctx["pf"] = out
        return ctx["pf"]

    def _iso(self, group: str, ctx: dict[str, Any]) -> ak.Array:
        counts, pt, eta, phi = self.flat_kinematics(group, ctx)
        pf = self._pf(ctx)
        own = (np.full(len(pt), -1, np.int64) if group == "photons" else
               isolation.nearest_track(counts, eta, phi, pf["counts"], pf["eta"], pf["phi"], OWN_TRACK_DR,
                                       pf["charged"]))
        iso = isolation.trk_iso03(counts, pt, eta, phi, own, pf["counts"], pf["pt"], pf["eta"], pf["phi"],
                                  pf["z0sintheta"], pf["charged"])
        return ak.unflatten(iso, counts)

    def _missing_n_trk(self, ctx: dict[str, Any]) -> ak.Array:
        pt = self.get("common/jets/pt", ctx)
        return ak.unflatten(np.full(int(ak.sum(ak.num(pt))), schema.field_of("common/jets/n_trk").missing_value,
                                    np.int16), num(pt))

    def _links(self, ctx: dict[str, Any]) -> dict[str, np.ndarray]:
        """JetPFCands as flat rows: the jet row (over all jets of the step) and PF candidate row."""
        if "links" not in ctx:
            a = ctx["arrays"]
            jet_idx, cand_idx = (a[b] for b in CONSTITUENT_LINKS)
            counts = num(jet_idx)
            event = np.repeat(np.arange(len(counts)), counts)
            j, c = flat(jet_idx).astype(np.int64), flat(cand_idx).astype(np.int64)
            n_jets = num(self.get("common/jets/pt", ctx))
            n_pf = self._pf(ctx)["counts"]
            ok = (j >= 0) & (j < n_jets[event]) & (c >= 0) & (c < n_pf[event])
            ctx["links"] = {"jet_row": (np.cumsum(n_jets) - n_jets)[event][ok] + j[ok],
                            "cand_row": (np.cumsum(n_pf) - n_pf)[event][ok] + c[ok]}
        return ctx["links"]

    def _n_trk_from_constituents(self, ctx: dict[str, Any]) -> ak.Array:
        links, pf = self._links(ctx), self._pf(ctx)
        n_jets = num(self.get("common/jets/pt", ctx))
        good = pf["charged"][links["cand_row"]] & (pf["pt"][links["cand_row"]] > schema.ISOLATION.pt_floor_gev)
        per_jet = np.bincount(links["jet_row"][good], minlength=int(n_jets.sum())).astype(np.int16)
        return ak.unflatten(per_jet, n_jets)

    def sub_objects(self, g: str, ctx: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        links = self._links(ctx)
        keep = flat(ctx["keep"]["jets"]).astype(bool)
        kept_row = np.cumsum(keep) - 1
        use = keep[links["jet_row"]]
        parent = kept_row[links["jet_row"][use]]
        order = np.argsort(parent, kind="stable")
        cand = links["cand_row"][use][order]
        counts = np.bincount(parent, minlength=int(keep.sum())).astype(np.int64)
        rows = {}
        for f in schema.fields("common", g):
            k = schema.key("common", g, f.name)
            rows[k] = flat(self.value(k, ctx))[cand]
        return counts, rows
