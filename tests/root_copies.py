"""Copies of the real test files written with uproot: renamed, thinned or stripped as a test
needs (NanoAOD versions without a file, skims, data-taking PHYSLITE files)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from treasure_hf.data.sources.atlas import AtlasConverter
from treasure_hf.data.sources.cms import CmsConverter
from treasure_hf.data.sources.reader import RootSource


def nanoaod_branches(src: Path, copy: dict[str, str] | None = None) -> dict[str, ak.Array]:
    """The branches the converter reads of ``src`` (and the simulation markers), with counters."""
    with RootSource(src, CmsConverter.TREE_NAMES) as source:
        names = set(CmsConverter(source).branches()) | {b for b in ("genWeight", "Pileup_nTrueInt") if source.has(b)}
        names |= {old for old in (copy or {}).values() if source.has(old)}
        return source.read(sorted(names), 0, source.n_events)


def nanoaod_collections(arrays: dict[str, ak.Array]) -> dict[str, ak.Array]:
    """Branches as an analysis holds them (coffea NanoEvents' ``events.Electron``...): one record
    array per jagged collection, flat branches (``MET_pt``, ``run``) as they are."""
    scalars = {k: v for k, v in arrays.items() if v.ndim == 1 and not k.startswith("n")}
    collections: dict[str, dict[str, ak.Array]] = {}
    for k, v in arrays.items():
        if v.ndim == 2:
            prefix, _, field = k.partition("_")
            collections.setdefault(prefix, {})[field] = v
    return {**scalars, **{c: ak.zip(fields) for c, fields in collections.items()}}


def nanoaod_copy(
    src: Path,
    dst: Path,
    rename: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    copy: dict[str, str] | None = None,
    edit: Callable[[dict[str, ak.Array]], None] | None = None,
) -> Path:
    """A NanoAOD TTree written with uproot from the branches the converter reads of ``src`` (and
    the simulation markers), with branches renamed (``rename``: old -> new), dropped (by prefix),
    duplicated under a second name (``copy``: new -> old) or changed in place by ``edit``."""
    rename, copy = rename or {}, copy or {}
    arrays = nanoaod_branches(src, copy)
    arrays = {**arrays, **{new: arrays[old] for new, old in copy.items() if old in arrays}}
    if edit is not None:
        edit(arrays)
    arrays = {rename.get(k, k): v for k, v in arrays.items() if not k.startswith(drop) and not k.startswith("n")}
    data = {k: (ak.to_numpy(v) if v.ndim == 1 else v) for k, v in nanoaod_collections(arrays).items()}
    with uproot.recreate(dst) as f:
        f.mktree("Events", {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()})
        if len(next(iter(data.values()))):
            f["Events"].extend(data)
    return dst


def physlite_copy(src: Path, dst: Path, drop: tuple[str, ...] = (), data_bitmask: bool = False) -> Path:
    """An RNTuple ``EventData`` written with uproot from the branches the converter reads of a
    PHYSLITE file (and the beam spot), without the branches starting with ``drop``; ``data_bitmask``: bit 0 of
    ``eventTypeBitmask`` (IS_SIMULATION) cleared, as in data-taking files."""
    with RootSource(src, AtlasConverter.TREE_NAMES) as source:
        names = [
            n
            for n in sorted(set(AtlasConverter(source).branches()) | {"EventInfoAuxDyn.beamPosZ"})
            if not n.startswith(drop)
        ]
        arrays = source.read(names, 0, source.n_events)
    fields: dict[str, ak.Array | dict[str, ak.Array]] = {}
    for name, values in arrays.items():
        container, field, *member = name.split(".")
        if name == "EventInfoAuxDyn.eventTypeBitmask" and data_bitmask:
            values = values & ~np.uint32(1)
        if member:
            fields.setdefault(f"{container}:{field}", {})[member[0]] = values
        else:
            fields[f"{container}:{field}"] = values
    with uproot.recreate(dst) as f:
        f.mkrntuple("EventData", {k: ak.zip(v) if isinstance(v, dict) else v for k, v in fields.items()})
    return dst


def edm4hep_numbered_copy(src: Path, dst: Path, drop: tuple[str, ...] = ()) -> Path:
    """An EDM4hep ``events`` TTree written with uproot from every numeric branch of ``src``, in the
    older podio branch form: relations ``C#k``, vector members ``C_k``, subset collections ``C#0``,
    EDM4hep 0.10 names (ReconstructedParticle ``type`` for ``PDG``); each branch flat
    (``C.member``), as a tool other than podio may write it. Fixed-size arrays (the covariance
    matrices) are left out: uproot reads the ``[21]`` of their names as a second dimension; so are
    the branches starting with ``drop``."""
    from treasure_hf.data.sources.podio import DATATYPES, PodioFile

    with RootSource(src, ("events",)) as source:
        names = source.names()
        parents = {n.split(".")[0] for n in names if "." in n}
        keep = [n for n in names if ("." in n or n not in parents) and not n.startswith(("GP", *drop)) and "[" not in n]
        arrays = source.read(keep, 0, source.n_events)
        datatypes = PodioFile.open(source).collections
    collections = sorted({n.split(".")[0] for n in names if not n.startswith("_")}, key=len, reverse=True)
    numbers: dict[tuple[str, str], int] = {}
    renamed: dict[str, ak.Array] = {}
    for name, values in arrays.items():
        head, _, member = name.partition(".")
        if head.endswith("_objIdx"):
            head = head[: -len("_objIdx")] + "#0"
        elif head.startswith("_"):
            coll = next(c for c in collections if head.startswith(f"_{c}_"))
            rel = head[len(coll) + 2 :]
            d = DATATYPES.get(datatypes.get(coll, ""))
            is_relation = member in ("index", "collectionID")
            if is_relation:
                known = (d.relations if d else ()) + ("from", "to")
                k = (
                    known.index(rel)
                    if rel in known and (d is None or rel not in ("from", "to"))
                    else ("from", "to").index(rel)
                    if rel in ("from", "to")
                    else 10 + len(numbers)
                )
                head = f"{coll}#{numbers.setdefault((coll, rel), k)}"
            else:  # EDM4hep 0.10 vector members (Track: subdetectorHitNumbers, trackStates, ...)
                order = {"Track": ("subdetectorHitNumbers", "trackStates", "subdetectorHoleNumbers")}.get(
                    datatypes.get(coll, ""), d.vector_members if d else ()
                )
                head = (
                    f"{coll}_{numbers.setdefault((coll, rel), order.index(rel) if rel in order else 5 + len(numbers))}"
                )
        elif member == "PDG" and datatypes.get(head) == "ReconstructedParticle":
            member = "type"
        renamed[f"{head}.{member}" if member else head] = values
    groups: dict[str, dict[str, ak.Array]] = {}
    for name, values in renamed.items():
        head, _, member = name.partition(".")
        groups.setdefault(head, {})[member] = values
    data = {head: ak.zip(fields, depth_limit=2) if "" not in fields else fields[""] for head, fields in groups.items()}
    with uproot.recreate(dst) as f:  # one counter per collection, C#size
        f.mktree(
            "events",
            {k: v.type for k, v in data.items()},
            counter_name=lambda counted: f"{counted}#size",
            field_name=lambda outer, inner: f"{outer}.{inner}" if outer else inner,
        )
        f["events"].extend(data)
    return dst
