"""CMS NanoAOD (TTree or RNTuple ``Events``) to the common format: the 2015 Open Data format,
NanoAOD v9 to v15 (and the older Run 2 v6-v8), PFNano, skims, simulation and collision data.

NanoAOD is in GeV and cm (lengths become mm). :data:`TABLE` maps every schema key of ``common``
and ``cms`` to its branch; where a name changed between NanoAOD versions, :data:`RENAMED` says
which version writes which name (and cites the CMS documentation) and supplies the aliases.
``trk_iso03`` is recomputed by the seed's definition from ``PFCands`` when the file has them
(PFNano), the lepton's own candidate (the closest charged one within dR 0.01: NanoAOD has no link)
excluded; otherwise it is the stored ``*_pfRelIso03_chg``. Tracks come from ``PFCands`` (charged) or
``IsoTrack``, else the group is empty; jet constituents come from ``JetPFCands`` (PFNano).

Collision data is told from simulation by the generator, pile-up and ``genWeight`` branches
(:data:`SIMULATION_PREFIXES`): data has none, so ``common/event/mu`` (pile-up truth) is missing
there, and the measured ``PV_npvsGood`` is kept as ``cms/event/npvsGood``. A collection the file
lacks entirely (a skim without ``Photon_*``) gives an empty group named in ``missing_collections``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
"""A lepton's own PF candidate, the one that carries its track: the closest charged candidate within
this dR (NanoAOD stores no link from a lepton to its candidate; other charged candidates this close
are other particles, e.g. in a collimated jet, and count)."""
ISO_GROUPS = ("electrons", "muons", "photons")
COLLECTIONS = {
    "electrons": ("Electron_",),
    "muons": ("Muon_",),
    "taus": ("Tau_",),
    "photons": ("Photon_",),
    "jets": ("Jet_",),
}
"""Object type -> the branch prefix of its NanoAOD collection."""
SIMULATION_PREFIXES = ("genWeight", "Generator_", "Pileup_", "GenPart_")
"""Branches only simulation writes (generator weight and record, pile-up truth): a file with none
of them holds collision data."""


def _b(prefix: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{n}" for n in names)


NANOAOD_VERSIONS = ("2015 Open Data", "v9", "v10", "v11", "v12", "v13", "v14", "v15")
"""The public NanoAOD formats the alias table covers (older Run 2 files, v6-v8, use the v9 names)."""

SOURCES: dict[str, str] = {
    "autoDoc": "CMS XPOG NanoAOD autoDoc, https://cms-xpog.docs.cern.ch/autoDoc/ (the branch list of every "
    "NanoAOD version)",
    "egamma": "CMSSW PhysicsTools/NanoAOD/python/V10/electrons_cff.py and photons_cff.py (v10: the Fall17V2 "
    "electron MVA as mvaIso_*, photon pfRelIso03_*); electrons_cff.py and photons_cff.py of CMSSW_12_6 "
    "and 13_0 (v11: RunIIIWinter22V1 as mvaIso_*, Fall17V2 as mvaIso_Fall17V2_*, photon "
    "pfRelIso03_*_quadratic; v12: Run 3 IDs and isolations only)",
    "tau": "CMSSW PhysicsTools/NanoAOD/python/V10/taus_cff.py (v10: DeepTau 2017v2p1 and 2018v2p5) and "
    "taus_cff.py of CMSSW_13_0 (v12: 2018v2p5 only); the 2015 Open Data files carry only the "
    "MVA-based 2015 IDs (branch titles end in '(2015)')",
    "met": "cms-sw/cmssw#44038 and its CMSSW_14_0 backport #44495 (PFMet and PuppiMET branches: MET -> PFMET)",
    "jet": "autoDoc of v11-v15: AK4 jets are PUPPI jets from v11 (no Jet_puId, Jet_qgl; Jet_chMultiplicity "
    "added), and v15 drops Jet_jetId (recomputed from the JetID recipe)",
}
"""The CMS documentation behind :data:`RENAMED` (key -> citation)."""


@dataclass(frozen=True)
class Renamed:
    """A field whose NanoAOD branch changed name: ``names`` pairs each branch (newest first: the
    alias order) with the versions that write it; ``absent`` the versions that write none."""

    key: str
    names: tuple[tuple[str, str], ...]
    absent: str
    source: str
    """A key of :data:`SOURCES`."""

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(b for b, _ in self.names)


RENAMED: tuple[Renamed, ...] = (
    *(
        Renamed(
            f"cms/electrons/mvaIso_{wp}",
            (
                (
                    f"Electron_mvaIso_{wp}",
                    "v10 (Fall17V2 training), v11-v15 (Run 3 Winter22V1 training: the same name, another ID)",
                ),
                (f"Electron_mvaFall17V2Iso_{wp}", "2015 Open Data, v9 (and v6-v8)"),
                (f"Electron_mvaFall17V1Iso_{wp}", "Run 2 files that predate the Fall17 V2 ID"),
            ),
            "none",
            "egamma",
        )
        for wp in ("WP80", "WP90")
    ),
    *(
        Renamed(
            f"cms/taus/idDeepTau{vs}",
            ((f"Tau_idDeepTau2018v2p5{vs}", "v10-v15"), (f"Tau_idDeepTau2017v2p1{vs}", "v9-v11 (and v6-v8)")),
            "2015 Open Data (MVA 2015 IDs only): missing",
            "tau",
        )
        for vs in ("VSjet", "VSe", "VSmu")
    ),
    Renamed(
        "common/photons/trk_iso03",
        (("Photon_pfRelIso03_chg", "2015 Open Data, v9, v10"), ("Photon_pfRelIso03_chg_quadratic", "v11-v15")),
        "none (recomputed instead where the file has PFCands)",
        "egamma",
    ),
    Renamed(
        "cms/photons/pfRelIso03_all",
        (("Photon_pfRelIso03_all", "2015 Open Data, v9, v10"), ("Photon_pfRelIso03_all_quadratic", "v11-v15")),
        "none",
        "egamma",
    ),
    *(
        Renamed(f"common/met/{f}", ((f"MET_{b}", "2015 Open Data, v9-v13"), (f"PFMET_{b}", "v14, v15")), "none", "met")
        for f, b in (("pt", "pt"), ("phi", "phi"), ("sumet", "sumEt"))
    ),
    Renamed(
        "common/jets/n_trk",
        (("Jet_chMultiplicity", "v11-v15"),),
        "2015 Open Data, v9: missing (-1) unless the file has JetPFCands",
        "jet",
    ),
    Renamed("cms/jets/puId", (("Jet_puId", "2015 Open Data, v9, v10 (CHS jets)"),), "v11-v15: missing", "jet"),
    Renamed("cms/jets/qgl", (("Jet_qgl", "2015 Open Data, v9, v10 (CHS jets)"),), "v11-v15: missing", "jet"),
    Renamed("cms/jets/jetId", (("Jet_jetId", "2015 Open Data, v9-v14"),), "v15: missing", "jet"),
    Renamed(
        "cms/tracks/charge",
        (("PFCands_charge", "PFNano"), ("IsoTrack_charge", "v11-v15")),
        "IsoTrack of 2015 Open Data, v9: missing",
        "autoDoc",
    ),
)
"""Every field of :data:`TABLE` whose branch name depends on the NanoAOD version, with the
versions of each name; :func:`version_table` renders it for the README."""


def version_table() -> str:
    """:data:`RENAMED` as a Markdown table with its sources (README: 'NanoAOD versions')."""
    keys = list(SOURCES)
    lines = ["| field | branch: versions | absent in | source |", "|---|---|---|---|"]
    for r in RENAMED:
        names = "; ".join(f"`{b}`: {v}" for b, v in r.names)
        lines.append(f"| `{r.key}` | {names} | {r.absent} | [{keys.index(r.source) + 1}] |")
    lines.append("")
    lines += [f"[{i + 1}] {SOURCES[k]}" + ("  " if i + 1 < len(keys) else "") for i, k in enumerate(keys)]
    return "\n".join(lines)


_RENAMED = {r.key: r.branches for r in RENAMED}

TABLE: dict[str, Src] = {
    # common
    **{
        schema.key("common", g, f): Src(_b(c, f))
        for g, c in (
            ("electrons", "Electron"),
            ("muons", "Muon"),
            ("taus", "Tau"),
            ("photons", "Photon"),
            ("jets", "Jet"),
        )
        for f in ("pt", "eta", "phi")
    },
    **{
        schema.key("common", g, "charge"): Src(_b(c, "charge"))
        for g, c in (("electrons", "Electron"), ("muons", "Muon"), ("taus", "Tau"))
    },
    **{
        schema.key("common", g, "trk_iso03"): Src(_b(c, "pfRelIso03_chg"))
        for g, c in (("electrons", "Electron"), ("muons", "Muon"))
    },
    "common/taus/is_1prong": Src(_b("Tau", "decayMode"), op="one_prong"),
    "common/jets/mass": Src(_b("Jet", "mass")),
    "common/tracks/pt": Src(_b("PFCands", "pt") + _b("IsoTrack", "pt")),
    "common/tracks/eta": Src(_b("PFCands", "eta") + _b("IsoTrack", "eta")),
    "common/tracks/phi": Src(_b("PFCands", "phi") + _b("IsoTrack", "phi")),
    "common/tracks/d0": Src(_b("PFCands", "d0") + _b("IsoTrack", "dxy")),
    "common/tracks/z0": Src(_b("PFCands", "dz") + _b("IsoTrack", "dz")),
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
    "cms/electrons/pfRelIso03_all": Src(_b("Electron", "pfRelIso03_all")),
    "cms/electrons/mass": Src(_b("Electron", "mass")),
    "cms/muons/looseId": Src(_b("Muon", "looseId")),
    "cms/muons/mediumId": Src(_b("Muon", "mediumId")),
    "cms/muons/tightId": Src(_b("Muon", "tightId")),
    "cms/muons/pfRelIso04_all": Src(_b("Muon", "pfRelIso04_all")),
    "cms/muons/isGlobal": Src(_b("Muon", "isGlobal")),
    "cms/muons/isTracker": Src(_b("Muon", "isTracker")),
    "cms/taus/decayMode": Src(_b("Tau", "decayMode")),
    "cms/photons/cutBased": Src(_b("Photon", "cutBased")),
    "cms/photons/mvaID_WP80": Src(_b("Photon", "mvaID_WP80")),
    "cms/photons/mvaID_WP90": Src(_b("Photon", "mvaID_WP90")),
    "cms/jets/btagDeepFlavB": Src(_b("Jet", "btagDeepFlavB")),
    "cms/jets/btagDeepFlavCvL": Src(_b("Jet", "btagDeepFlavCvL")),
    "cms/tracks/fromPV": Src(_b("IsoTrack", "fromPV")),
    "cms/tracks/pdgId": Src(_b("PFCands", "pdgId") + _b("IsoTrack", "pdgId")),
    "cms/event/event_number": Src(("event",)),
    "cms/event/run_number": Src(("run",)),
    "cms/event/luminosity_block": Src(("luminosityBlock",)),
    "cms/event/npvsGood": Src(("PV_npvsGood",)),
    # names that changed between NanoAOD versions (see RENAMED)
    **{k: Src(branches) for k, branches in _RENAMED.items()},
}
"""Schema key -> branch aliases (first present wins). Data, not code: a new NanoAOD version adds an
alias (in :data:`RENAMED` when it renames a branch)."""

SCALE = {"mm": 10.0}
"""NanoAOD cm -> mm; energies are already GeV."""


class CmsConverter(TableConverter):
    """NanoAOD / PFNano -> common + cms layers, one code path for TTree and RNTuple files."""

    HEAVY_COUNTERS = (f"n{PF}",)

    EXPERIMENT = "CMS"
    FORMAT_NAME = "CMS NanoAOD"
    TREE_NAMES = ("Events",)
    TABLE = TABLE
    SCALE = SCALE
    COLLECTIONS = COLLECTIONS

    def detect_simulation(self) -> tuple[bool, str]:
        found = [p for p in SIMULATION_PREFIXES if self.source.has_prefix(p)]
        names = ", ".join(p + ("*" if p.endswith("_") else "") for p in (found or SIMULATION_PREFIXES))
        if found:
            return True, f"simulation: the file has {names}"
        return False, f"collision data: the file has none of {names}"

    def plan(self) -> None:
        src = self.source
        present = [g for g in schema.OBJECT_TYPES if g not in self.missing_collections]
        self.derived["common/event/experiment_id"] = lambda ctx: np.full(
            ctx["n_events"], schema.EXPERIMENTS["CMS"], np.int8
        )
        simulation = int(self.is_simulation)
        self.derived["common/event/is_simulation"] = lambda ctx: np.full(ctx["n_events"], simulation, np.int8)
        # tracks: the first collection holding every common track field, else an empty group
        track_keys = [
            schema.key(layer, "tracks", f.name)
            for layer in ("common", self.layer)
            for f in schema.fields(layer, "tracks")
        ]
        self.tracks_from = next(
            (
                c
                for c in TRACK_COLLECTIONS
                if all(src.first(self._only(k, c).branches) for k in track_keys if k.startswith("common/"))
            ),
            None,
        )
        if self.tracks_from is None:
            self.missing_collections.append("tracks")
            tracks_source = "none: this file has neither PFCands nor IsoTrack, the tracks group is empty"
        else:
            for k in track_keys:
                self.table[k] = self._only(k, self.tracks_from)
            tracks_source = (
                f"{self.tracks_from}_*"
                + (
                    " (charged candidates only)"
                    if self.tracks_from == PF
                    else " (isolated tracks only: not a full track list)"
                )
                + "; d0/dxy and dz converted cm -> mm"
            )
            if self.tracks_from == PF:
                charge = self.require(f"{PF}_charge")
                self.selection["tracks"] = lambda ctx: ctx["arrays"][charge] != 0
        # isolation: recomputed from all PF candidates when present, else the stored relative isolation
        self.pf_iso = all(src.has(f"{PF}_{n}") for n in ISO_BRANCHES)
        iso_source: dict[str, str] = {}
        for g in ISO_GROUPS:
            k = schema.key("common", g, "trk_iso03")
            if g not in present:
                iso_source[g] = "none: the file lacks this collection"
            elif self.pf_iso:
                self.derived[k] = lambda ctx, g=g: self._iso(g, ctx)
                iso_source[g] = (
                    f"recomputed from {PF} (charged, pT > {schema.ISOLATION.pt_floor_gev} GeV, "
                    f"|dz sin(theta)| < {schema.ISOLATION.z0sintheta_cut_mm} mm"
                    + (
                        f", the lepton's own candidate (the closest charged one within dR {OWN_TRACK_DR}) excluded)"
                        if g != "photons"
                        else ", nothing excluded)"
                    )
                )
            else:
                iso_source[g] = self.require(*TABLE[k].branches)
        if self.pf_iso:
            for n in ISO_BRANCHES:
                self.require(f"{PF}_{n}")
        # jet constituents and the jets' track count
        if (
            "jets" in present
            and all(src.has(b) for b in CONSTITUENT_LINKS)
            and all(
                src.has(b)
                for f in schema.fields("common", "constituents")
                for b in TABLE[schema.key("common", "constituents", f.name)].branches
            )
        ):
            self.sub_groups = ("constituents",)
            for b in CONSTITUENT_LINKS:
                self.require(b)
        n_trk = "common/jets/n_trk"
        if "jets" not in present:
            n_trk_source = "none: the file lacks the jets"
        elif self.sub_groups:
            self.derived[n_trk] = self._n_trk_from_constituents
            n_trk_source = f"charged {PF} with pT > {schema.ISOLATION.pt_floor_gev} GeV among the JetPFCands"
        elif src.first(TABLE[n_trk].branches):
            n_trk_source = f"{src.first(TABLE[n_trk].branches)} (charged constituents, no pT threshold)"
        else:
            self.missing(n_trk)
            n_trk_source = (
                f"missing: the file has neither JetPFCands nor {' / '.join(TABLE[n_trk].branches)}; filled with -1"
            )
        met = self.require(*TABLE["common/met/pt"].branches)
        self.extra_metadata = {
            "met_definition": f"stored {met.rsplit('_', 1)[0]} (type-1 corrected PF MET as written in NanoAOD)",
            "common_iso_source": iso_source,
            "tracks_source": tracks_source,
        }
        self.notes = [f"read as {src.layout_name} {src.tree_name}", f"jets n_trk: {n_trk_source}"]
        if not self.is_simulation:
            self.notes.append(
                "collision data: common/event/mu (pile-up truth, Pileup_nTrueInt) is missing; "
                "cms/event/npvsGood holds the measured number of good primary vertices instead"
            )

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
        own = (
            None
            if group == "photons"
            else isolation.own_pairs(
                isolation.nearest_track(
                    counts, eta, phi, pf["counts"], pf["eta"], pf["phi"], OWN_TRACK_DR, pf["charged"]
                )
            )
        )
        iso = isolation.trk_iso03(
            counts, pt, eta, phi, own, pf["counts"], pf["pt"], pf["eta"], pf["phi"], pf["z0sintheta"], pf["charged"]
        )
        return ak.unflatten(iso, counts)

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
            ctx["links"] = {
                "jet_row": (np.cumsum(n_jets) - n_jets)[event][ok] + j[ok],
                "cand_row": (np.cumsum(n_pf) - n_pf)[event][ok] + c[ok],
            }
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
