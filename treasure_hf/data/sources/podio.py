"""podio's ROOT layout of EDM4hep files, read by name: which collection holds which datatype, the
branches of relations, vector members and subset collections in both podio branch forms, and the
vectorised walk along ``podio::ObjectID`` links.

A podio event tree holds each collection ``C`` as split branches ``C.member`` (``C.momentum.x``)
and, per element, ranges ``C.rel_begin``/``C.rel_end`` into a vector of ``podio::ObjectID``
(``index`` within the target collection, ``collectionID`` of that collection). Where those vectors
live changed between podio releases; :data:`BRANCH_FORMS` is the one alias table for both:

================== =========================================== ===================================
what               newer podio (EDM4hep 0.99, 1.x)             older podio (FCC Spring2021/Winter2023)
================== =========================================== ===================================
relation ``r``     ``_C_r``                                    ``C#k``: ``k`` is ``r``'s place among
                                                               the datatype's OneToMany, then
                                                               OneToOne relations
vector member m    ``_C_m``                                    ``C_k``: the place among VectorMembers
                                                               (struct members are told by their
                                                               fields: TrackState has D0, omega...)
subset collection  ``C_objIdx``                                ``C#0``
================== =========================================== ===================================

Collections are recognised by their members (:data:`DATATYPES`), not by their ROOT class names, so
that a copy written by another tool reads the same. Collection ids come from the file's id table
(``podio_metadata``, or the older ``metadata`` tree) or, where the file has none, from the 32-bit
MurmurHash3 of the collection name (seed 0), which is how podio assigns them (checked against both
test files' links and id table).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from .reader import RootSource

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Datatype:
    """An EDM4hep datatype as this reader needs it: the members that identify a collection of it
    (all present, dotted as in branch names), its relations in edm4hep.yaml order (OneToMany,
    then OneToOne: the ``C#k`` numbering of older files) and its vector members in order."""

    name: str
    signature: tuple[str, ...]
    relations: tuple[str, ...] = ()
    vector_members: tuple[str, ...] = ()


DATATYPES: dict[str, Datatype] = {
    d.name: d
    for d in (
        Datatype(
            "MCParticle",
            ("generatorStatus", "simulatorStatus", "charge", "mass", "momentum.x", "vertex.x"),
            ("parents", "daughters"),
        ),
        Datatype(
            "ReconstructedParticle",
            ("energy", "momentum.x", "charge", "mass", "goodnessOfPID", "referencePoint.x"),
            ("clusters", "tracks", "particles", "particleIDs"),
        ),
        Datatype(
            "Track",
            ("chi2", "ndf", "trackStates_begin", "trackerHits_begin"),
            ("trackerHits", "tracks"),
            ("subdetectorHitNumbers", "subdetectorHoleNumbers", "trackStates"),
        ),
        Datatype("TrackerHit", ("cellID", "quality", "time", "eDep", "position.x")),
        Datatype("CalorimeterHit", ("cellID", "energy", "energyError", "time", "position.x", "type")),
        Datatype(
            "Cluster",
            ("energy", "energyError", "position.x", "iTheta", "phi", "hits_begin"),
            ("clusters", "hits"),
            ("shapeParameters", "subdetectorEnergies"),
        ),
        Datatype("ParticleID", ("algorithmType", "likelihood", "PDG"), ("particle",)),
        Datatype("RecDqdx", ("dQdx.value",), ("track",)),
        Datatype("Vertex", ("chi2", "position.x", "algorithmType")),
        Datatype("EventHeader", ("eventNumber", "runNumber")),
        Datatype("GeneratorEventParameters", ("sqrts",)),
    )
}
"""The datatypes the EDM4hep converter reads. ReconstructedParticle's relations list the
EDM4hep 0.10 ``particleIDs`` after the three that every version has (clusters, tracks, particles);
older Track vector members were ``subdetectorHitNumbers, trackStates, dxQuantities`` (the track
states are found by their fields in either form)."""

TRACK_STATE_FIELDS = ("D0", "phi", "omega", "Z0", "tanLambda")
"""Fields of an edm4hep::TrackState (same names in every EDM4hep version)."""

BRANCH_FORMS: dict[str, tuple[str, ...]] = {
    "relation": ("_{c}_{r}", "{c}#{k}"),
    "vector": ("_{c}_{r}", "{c}_{k}"),
    "subset": ("{c}_objIdx", "{c}#0"),
}
"""Branch name patterns, newest first (the alias order): ``c`` collection, ``r`` relation or
member name, ``k`` its number in the older form."""


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 (x86, 32 bit) of ``data``: podio's collection id of a collection named ``data``."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask

    def mix(k: int) -> int:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        return (k * c2) & mask

    n = len(data) // 4
    for i in range(n):
        h ^= mix(int.from_bytes(data[4 * i : 4 * i + 4], "little"))
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[4 * n :]
    if tail:
        h ^= mix(int.from_bytes(tail, "little"))
    h ^= len(data)
    for shift, factor in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        h ^= h >> shift
        h = (h * factor) & mask
    return h ^ (h >> 16)


ID_TABLES: tuple[tuple[str, str, str], ...] = (
    ("podio_metadata", "events___idTable/m_collectionIDs", "events___idTable/m_names"),
    ("metadata", "CollectionIDs/m_collectionIDs", "CollectionIDs/m_names"),
)
"""Where files keep their collection id table: (tree, ids branch, names branch)."""

VERSION_BRANCHES: tuple[tuple[str, str, str], ...] = (
    ("podio_metadata", "edm4hep", "edm4hep___Version"),
    ("podio_metadata", "podio", "PodioBuildVersion"),
)
"""Where files record the EDM4hep and podio versions: (tree, what, branch with major/minor/patch)."""


@dataclass
class PodioFile:
    """What an EDM4hep event tree holds: ``collections`` (name -> datatype name, found by
    members), ``members`` (name -> its member names), the collection ids, the branch form of its
    relations and the versions it records."""

    source: RootSource
    collections: dict[str, str] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)
    id_source: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, source: RootSource) -> PodioFile:
        out = cls(source)
        for name in source.names():
            coll, dot, member = name.partition(".")
            if dot and not coll.startswith("_") and "#" not in coll:
                out.members.setdefault(coll, set()).add(member)
        for coll, members in out.members.items():
            for d in DATATYPES.values():
                if all(m in members for m in d.signature):
                    out.collections[coll] = d.name
                    break
        out._read_ids()
        out._read_versions()
        return out

    def _read_ids(self) -> None:
        trees = set(self.source.trees())
        for tree, ids, names in ID_TABLES:
            if tree in trees:
                got = self.source.read_tree(tree, (ids, names))
                if ids in got and names in got and len(got[ids]):
                    self.ids = {int(i): str(n) for i, n in zip(ak.to_list(got[ids][0]), ak.to_list(got[names][0]))}
                    self.id_source = f"{tree} id table"
                    return
        names = {n.split(".")[0] for n in self.source.names()}
        self.ids = {murmur3_32(n.encode()): n for n in names}
        self.id_source = "MurmurHash3 of the collection names (the file has no id table)"

    def _read_versions(self) -> None:
        trees = set(self.source.trees())
        for tree, what, branch in VERSION_BRANCHES:
            if tree not in trees:
                continue
            parts = self.source.read_tree(tree, [f"{branch}/{p}" for p in ("major", "minor", "patch")])
            if len(parts) == 3 and all(len(v) for v in parts.values()):
                self.versions[what] = ".".join(str(int(ak.to_list(v)[0])) for v in parts.values())

    # --- finding collections -------------------------------------------------------------------
    def of_type(self, datatype: str) -> list[str]:
        """Collections of ``datatype``, in file order."""
        return [c for c, d in self.collections.items() if d == datatype]

    def has_member(self, coll: str, member: str) -> bool:
        return member in self.members.get(coll, ())

    def branch(self, kind: str, coll: str, name: str = "", *, fields: Sequence[str] = ()) -> str | None:
        """The branch of a relation, vector member or subset collection (``kind``, a key of
        :data:`BRANCH_FORMS`) of ``coll`` in whichever form the file uses, or None: relations and
        subsets are ObjectID vectors (``B.index``, ``B.collectionID``); a vector member
        of structs is found by its ``fields`` (``B.D0``...), a plain one is the branch ``B``."""
        for b in self._candidates(kind, coll, name, bool(fields)):
            if kind == "vector":
                found = all(self.source.has(f"{b}.{f}") for f in fields) if fields else self.source.has(b)
            else:
                found = self.source.has(f"{b}.index") and self.source.has(f"{b}.collectionID")
            if found:
                return b
        return None

    def _candidates(self, kind: str, coll: str, name: str, by_fields: bool) -> list[str]:
        datatype = DATATYPES.get(self.collections.get(coll, ""))
        out = []
        for pattern in BRANCH_FORMS[kind]:
            if "{k}" not in pattern:
                out.append(pattern.format(c=coll, r=name))
            elif kind == "vector" and by_fields:  # struct members are told by their fields
                out += [pattern.format(c=coll, k=k) for k in range(8)]
            else:
                order = (datatype.relations if kind == "relation" else datatype.vector_members) if datatype else ()
                if name in order:
                    out.append(pattern.format(c=coll, k=order.index(name)))
        return out

    def describe(self) -> dict[str, Any]:
        """The podio layout for the metadata: versions, relation branch form, id source."""
        names = self.source.names()
        named = any(n.startswith("_") and n.endswith(".index") for n in names)
        numbered = any("#" in n.split(".")[0] for n in names)
        form = (
            "_Collection_relation"
            if named and not numbered
            else "Collection#N"
            if numbered and not named
            else "both"
            if named
            else "no relations"
        )
        return {
            "versions": dict(self.versions) or "not recorded in the file",
            "relation_branches": form,
            "collection_ids": self.id_source,
        }


# --- vectorised links ------------------------------------------------------------------------------


def flat(a: Any) -> np.ndarray:
    """Flat numpy values of a one-level jagged (per event) array."""
    return np.asarray(ak.to_numpy(ak.flatten(a, axis=1)))


def counts(a: Any) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.num(a, axis=1)), np.int64)


def starts(n: np.ndarray) -> np.ndarray:
    """First flat row of each group of ``n`` rows."""
    n = np.asarray(n, np.int64)
    return np.cumsum(n) - n


@dataclass(frozen=True)
class Links:
    """Flat pairs of one relation: source element row (flat over the step) -> target collection
    name and target row (flat over the step, in that collection). ``order`` numbers each link
    within its source element, as the file gives them."""

    source: np.ndarray
    target: np.ndarray
    collection: np.ndarray  # object array of names ('' where the id is unknown)
    order: np.ndarray

    def to(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(source rows, target rows, order)`` of the links into collection ``name``."""
        sel = self.collection == name
        return self.source[sel], self.target[sel], self.order[sel]


def follow(
    begin: Any,
    end: Any,
    index: Any,
    collection_id: Any,
    target_counts: Mapping[str, np.ndarray],
    ids: Mapping[int, str],
) -> Links:
    """The links of a one-to-many relation: ``begin``/``end`` (per event, per source element) delimit
    each element's entries of the ObjectID vector (``index``, ``collection_id`` per event);
    ``target_counts[name]`` are the elements per event of each possible target collection. Links to
    an unknown collection or out of its range are kept with ``collection`` '' (counted, not used)."""
    b, e = flat(begin).astype(np.int64), flat(end).astype(np.int64)
    n_src = counts(begin)
    event = np.repeat(np.arange(len(n_src)), n_src)
    n_links = np.maximum(e - b, 0)
    link_counts = counts(index)
    link_start = starts(link_counts)
    src = np.repeat(np.arange(len(b)), n_links)
    within = np.arange(int(n_links.sum()), dtype=np.int64) - np.repeat(starts(n_links), n_links)
    pos = link_start[event[src]] + b[src] + within
    ok = (b[src] + within) < link_counts[event[src]]
    idx = flat(index).astype(np.int64)
    cid = flat(collection_id).astype(np.int64)
    pos_ok = np.where(ok, pos, 0)
    t_index = np.where(ok, idx[pos_ok] if len(idx) else 0, -1)
    t_id = np.where(ok, cid[pos_ok] if len(cid) else -1, -1)
    names = np.array([ids.get(int(i), "") for i in t_id], dtype=object) if len(t_id) else np.zeros(0, object)
    target = np.full(len(src), -1, np.int64)
    for name, n_t in target_counts.items():
        sel = (names == name) & (t_index >= 0)
        ev = event[src[sel]]
        good = t_index[sel] < np.asarray(n_t, np.int64)[ev]
        rows = np.where(good, starts(n_t)[ev] + t_index[sel], -1)
        target[np.flatnonzero(sel)] = rows
    names = np.where(target >= 0, names, "")
    return Links(src, target, names, within)


def follow_subset(
    index: Any, collection_id: Any, target: str, target_counts: np.ndarray, ids: Mapping[int, str]
) -> tuple[np.ndarray, np.ndarray]:
    """A subset collection (``C_objIdx``/``C#0``) pointing into ``target``: ``(counts per event,
    flat target rows)``; an entry pointing elsewhere or out of range is an :class:`InputError`'s
    business of the caller (returned as -1)."""
    n = counts(index)
    event = np.repeat(np.arange(len(n)), n)
    idx, cid = flat(index).astype(np.int64), flat(collection_id).astype(np.int64)
    names = np.array([ids.get(int(i), "") for i in cid], dtype=object)
    ok = (names == target) & (idx >= 0) & (idx < np.asarray(target_counts, np.int64)[event])
    return n, np.where(ok, starts(target_counts)[event] + idx, -1)
