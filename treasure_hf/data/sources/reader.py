"""One streaming reader for the experiments' ROOT files, TTree or RNTuple, and the table-driven
machinery that turns an experiment's alias table into common-format columns.

Branch names are written once, in the dotted form ``Container.field`` (``AnalysisMuonsAuxDyn.pt``,
``AnalysisJetsAuxDyn.btaggingLink.m_persIndex``, ``Muon_pt``). :class:`RootSource` resolves them
to what the file really holds: ``Container.field`` in a TTree (ElementLink members as
``X.link/X.link.m_persIndex``), ``Container:field`` in an RNTuple. Reads are done in steps of
events (``uproot.iterate`` style), so memory is flat in the number of events.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from ...errors import FormatError, InputError, SchemaError
from .. import schema
from ..events import Layout, RaggedEvents

logger = logging.getLogger(__name__)

DEFAULT_STEP = 20_000
"""Events read per step."""


class RootSource:
    """An experiment's event tree (TTree or RNTuple) opened with uproot, read in entry ranges."""

    def __init__(self, path: str | os.PathLike, tree_names: Sequence[str], format_name: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, None, "no such file")
        try:
            self._file = uproot.open(self.path)
            present = {k.split(";")[0] for k in self._file.keys(recursive=False)}
            name = next((n for n in tree_names if n in present), None)
            if name is None:
                what = f"is not a supported {format_name} file: it" if format_name else "it"
                raise InputError(
                    self.path,
                    None,
                    f"{what} holds none of the event trees {list(tree_names)} (found {sorted(present)[:10]})",
                )
            self._tree = self._file[name]
            self.n_events = int(self._tree.num_entries)
            self.is_rntuple = "RNTuple" in type(self._tree).__name__
            keys = _rntuple_keys(self._tree) if self.is_rntuple else self._tree.keys(recursive=True)
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(
                self.path, None, f"cannot be read as a ROOT file (truncated or corrupt): {_one_line(exc)}"
            ) from None
        self.tree_name = name
        self._fields: dict[str, Any] = {}
        self._index: dict[str, str] = {}
        for k in keys:
            logical = k.replace(":", ".", 1) if self.is_rntuple else k.rsplit("/", 1)[-1]
            self._index.setdefault(logical, k)

    @property
    def layout_name(self) -> str:
        return "RNTuple" if self.is_rntuple else "TTree"

    def resolve(self, name: str) -> tuple[str, str | None] | None:
        """``(key in the file, member to take from it or None)`` for a dotted branch name, or None
        when the file lacks it."""
        if name in self._index:
            return self._index[name], None
        parent, _, member = name.rpartition(".")
        if parent in self._index and parent.count(".") >= 1 and not self.is_rntuple:
            return self._index[parent], member  # a TTree vector<vector<ElementLink>>: one object branch
        return None

    def has(self, name: str) -> bool:
        return self.resolve(name) is not None

    def has_prefix(self, prefix: str) -> bool:
        """True when some dotted branch name starts with ``prefix`` (``Photon_``,
        ``AnalysisPhotonsAuxDyn.``): the file holds that collection at all."""
        return any(k.startswith(prefix) for k in self._index)

    def names(self) -> list[str]:
        """Every dotted branch name the event tree holds (``Container.field``), in file order."""
        return list(self._index)

    def trees(self) -> list[str]:
        """Names of the file's top-level trees and RNTuples besides the event tree (metadata trees)."""
        return sorted({k.split(";")[0] for k in self._file.keys(recursive=False)} - {self.tree_name})

    def read_tree(self, tree: str, branches: Sequence[str]) -> dict[str, Any]:
        """Whole branches of another (small, metadata) tree of the file: those of ``branches`` it
        holds, as awkward arrays; a damaged tree is a :class:`FormatError`."""
        try:
            t = self._file[tree]
            present = set(t.keys(recursive=True))
            return {b: t[b].array() for b in branches if b in present}
        except Exception as exc:
            raise FormatError(self.path, tree, f"cannot be read: {_one_line(exc)}") from None

    def first(self, names: Sequence[str]) -> str | None:
        """The first of ``names`` (aliases) that the file holds."""
        return next((n for n in names if self.has(n)), None)

    def read(self, names: Sequence[str], start: int, stop: int) -> dict[str, ak.Array]:
        """Arrays of the dotted branch ``names`` for entries ``[start, stop)``."""
        targets = {}
        for n in names:
            where = self.resolve(n)
            if where is None:
                raise InputError(self.path, n, "branch is missing")
            targets[n] = where
        keys = sorted({k for k, _ in targets.values()})
        try:
            if self.is_rntuple:
                # field by field: uproot's RNTuple.arrays() rescans the whole header on every call
                raw = {k: self._field(k).array(entry_start=start, entry_stop=stop) for k in keys}
            else:
                raw = self._tree.arrays(keys, entry_start=start, entry_stop=stop, how=dict)
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(
                self.path, None, f"entries {start}-{stop} cannot be read (corrupt or truncated): {_one_line(exc)}"
            ) from None
        out = {}
        for n, (k, member) in targets.items():
            arr = raw[k]
            out[n] = arr[member] if member is not None else arr
        return out

    def _field(self, key: str) -> Any:
        if key not in self._fields:
            self._fields[key] = self._tree[key]
        return self._fields[key]

    def steps(self, step_size: int = DEFAULT_STEP, start: int = 0) -> Iterator[tuple[int, int]]:
        """Entry ranges ``[lo, hi)`` of at most ``step_size`` entries from ``start`` to the end."""
        step = max(1, int(step_size))
        for lo in range(start, self.n_events, step):
            yield lo, min(lo + step, self.n_events)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RootSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ITEM_FIELD = re.compile(r"^:?_\d+$")


def _rntuple_keys(ntuple: Any) -> list[str]:
    """Dotted paths of every field of an RNTuple, as uproot names them (``A:b.m_persIndex``), built
    from the header's field records (uproot's own ``keys()`` takes seconds on a PHYSLITE header).
    Collection item fields (``_0``) are skipped, as uproot does."""
    records = ntuple.field_records
    paths: dict[int, str] = {}
    for i in range(len(records)):
        chain = []
        j = i
        while j not in paths:
            chain.append(j)
            parent = records[j].parent_field_id
            if parent == j:
                break
            j = parent
        base = paths.get(j, "")
        for j in reversed(chain):
            name = records[j].field_name
            if _ITEM_FIELD.match(name):
                paths[j] = base
            else:
                paths[j] = f"{base}.{name}" if base and j != records[j].parent_field_id else name
            base = paths[j]
    return [p for p in dict.fromkeys(paths.values()) if p]


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: " + " ".join(str(exc).split())


# --- alias tables ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Src:
    """Where a field comes from: the first present of ``branches`` (aliases across releases or
    NanoAOD versions); ``via`` an index branch (an ElementLink's ``m_persIndex``) selecting the
    value per object from another container; ``op`` a named transform of :data:`OPS`."""

    branches: tuple[str, ...]
    via: str | None = None
    op: str | None = None


def _low2bits(x: ak.Array, ctx: Mapping[str, Any]) -> ak.Array:
    return x & 3


def _one_prong(x: ak.Array, ctx: Mapping[str, Any]) -> ak.Array:
    """Decay modes 0, 1, 2 (ATLAS NNDecayMode/PanTau and CMS HPS alike) are one-prong."""
    return (x >= 0) & (x <= 2)


def _at_pv(x: ak.Array, ctx: Mapping[str, Any]) -> ak.Array:
    """A per-vertex vector of each object, taken at the event's primary vertex (-1 without one)."""
    pv = ctx["pv_index"]
    n_vtx = ak.num(x, axis=2)
    pv_b = ak.broadcast_arrays(pv, ak.num(x, axis=2))[0]
    ok = (pv_b >= 0) & (pv_b < n_vtx)
    padded = ak.pad_none(x, 1, axis=2)
    picked = padded[ak.local_index(padded, axis=2) == ak.where(ok, pv_b, 0)]
    return ak.where(ok, ak.fill_none(ak.firsts(picked, axis=2), -1), -1)


OPS: dict[str, Callable[[ak.Array, Mapping[str, Any]], ak.Array]] = {
    "low2bits": _low2bits,
    "one_prong": _one_prong,
    "at_pv": _at_pv,
}


def gather(values: ak.Array, index: ak.Array, fill: float) -> ak.Array:
    """``values[event][index[event][i]]`` for every event and i; ``fill`` where the index is out of
    range (an invalid or thinned-away ElementLink)."""
    v_counts = ak.to_numpy(ak.num(values)).astype(np.int64)
    v_flat = ak.to_numpy(ak.flatten(values))
    i_counts = ak.to_numpy(ak.num(index)).astype(np.int64)
    i_flat = ak.to_numpy(ak.flatten(index)).astype(np.int64)
    event = np.repeat(np.arange(len(i_counts)), i_counts)
    ok = (i_flat >= 0) & (i_flat < v_counts[event])
    out = np.full(len(i_flat), fill, dtype=np.result_type(v_flat.dtype, np.float32))
    out[ok] = v_flat[(np.cumsum(v_counts) - v_counts)[event][ok] + i_flat[ok]]
    return ak.unflatten(out, i_counts)


class TableConverter:
    """Turns steps of an experiment's file into :class:`RaggedEvents` of the common format.

    Subclasses give the experiment, its layer, the tree names, the alias ``TABLE`` (schema key ->
    :class:`Src`), the unit ``SCALE`` (unit -> factor to the common units) and ``derived``
    (schema key -> function computing it); ``plan`` may narrow ``self.table`` and add row
    ``selection`` masks per group (e.g. charged candidates only). A common field neither in the table nor derived, or
    whose branches the file lacks, is an :class:`InputError` naming the branch; an experiment-layer
    field the file lacks is filled with ``Field.missing_value`` and listed in :attr:`missing_fields`.

    Collision data and simulation: :meth:`detect_simulation` decides from the file which one it
    holds; in collision data a field the registry marks ``absent_in_data`` is missing (filled and
    listed), never an error. Skims: an object type none of whose :attr:`COLLECTIONS` prefixes the
    file holds gets an empty group and is listed in :attr:`missing_collections` (an error for the
    types in ``require``); a missing field of a collection that is present stays an error.
    """

    EXPERIMENT: str = ""
    FORMAT_NAME: str = ""
    """The input format in words (``CMS NanoAOD``), for the error on a file that is not one."""
    TREE_NAMES: tuple[str, ...] = ()
    TABLE: Mapping[str, Src] = {}
    SCALE: Mapping[str, float] = {}
    COLLECTIONS: Mapping[str, tuple[str, ...]] = {}
    """Object type -> the branch-name prefixes of its collection (``Photon_``)."""
    HEAVY_COUNTERS: tuple[str, ...] = ()
    """Per-event counters of the largest collections (PF candidates): they size the steps."""
    ROWS_PER_STEP = 4_000_000
    """Rows of the heaviest collection read in one step; bounds memory for files with PF candidates."""
    OPTIONS: type | None = None
    """The dataclass of this converter's own settings (``treasure convert ... --bfield``), or None."""

    def step_size(self, requested: int) -> int:
        """``requested`` events per step, lowered so that a step holds at most ``ROWS_PER_STEP``
        rows of the heaviest collection (estimated from the first 1000 events)."""
        step = max(1, int(requested))
        for counter in self.HEAVY_COUNTERS:
            if self.source.has(counter) and self.source.n_events:
                sample = self.source.read([counter], 0, min(1000, self.source.n_events))[counter]
                per_event = max(float(np.mean(np.asarray(sample))), 1.0)
                step = min(step, max(100, int(self.ROWS_PER_STEP / per_event)))
        return step

    def __init__(
        self,
        source: RootSource,
        pt_cuts: Mapping[str, float] | None = None,
        max_objects: Mapping[str, int] | None = None,
        require: Sequence[str] = (),
        *,
        drop_invalid: bool = False,
        options: Any = None,
    ):
        if options is not None and (self.OPTIONS is None or not isinstance(options, self.OPTIONS)):
            raise SchemaError(
                f"{type(self).__name__} takes {self.OPTIONS.__name__ if self.OPTIONS else 'no'} "
                f"options, not {type(options).__name__}"
            )
        self.options = options if options is not None else (self.OPTIONS() if self.OPTIONS else None)
        self.source = source
        self.drop_invalid = drop_invalid
        self.dropped: dict[str, int] = {}
        self.layer = schema.EXPERIMENT_LAYERS[self.EXPERIMENT]
        self.pt_cuts = {**schema.default_pt_cuts(), **(pt_cuts or {})}
        self.max_objects = {**schema.default_max_objects(), **(max_objects or {})}
        self.derived: dict[str, Callable[[dict[str, Any]], ak.Array]] = {}
        self.notes: list[str] = []
        self.extra_metadata: dict[str, Any] = {}
        self.sub_groups: tuple[str, ...] = ()
        self.missing_fields: list[str] = []
        self.resolved: dict[str, str] = {}
        self.needed: set[str] = set()
        self.table: dict[str, Src] = dict(self.TABLE)
        self.selection: dict[str, Callable[[dict[str, Any]], ak.Array]] = {}
        self.absent: set[str] = set()
        self.is_simulation, self.simulation_evidence = self.detect_simulation()
        self.missing_collections: list[str] = [
            g for g, prefixes in self.COLLECTIONS.items() if not any(source.has_prefix(p) for p in prefixes)
        ]
        if self.COLLECTIONS and len(self.missing_collections) == len(self.COLLECTIONS):
            sought = ", ".join(f"{g} ({'/'.join(p + '*' for p in ps)})" for g, ps in self.COLLECTIONS.items())
            raise InputError(
                source.path,
                source.tree_name,
                f"is not a supported {self.FORMAT_NAME} file: its {source.tree_name} tree holds none "
                f"of the collections {sought}",
            )
        self.plan()
        unknown = [g for g in require if g not in schema.OBJECT_TYPES]
        if unknown:
            raise SchemaError(
                f"--require names {unknown}, not object types of the registry {list(schema.OBJECT_TYPES)}"
            )
        lacking = [g for g in require if g in self.missing_collections]
        if lacking:
            names = " and ".join(
                f"{g} ({'/'.join(p + '*' for p in self.COLLECTIONS[g])})" if g in self.COLLECTIONS else g
                for g in lacking
            )
            raise InputError(source.path, None, f"lacks the collection of {names}, required by --require")
        for g in self.missing_collections:
            for layer in ("common", self.layer):
                for f in schema.fields(layer, g):
                    self.derived[schema.key(layer, g, f.name)] = self.empty(f.np_dtype)
        if self.missing_collections:
            logger.info("%s lacks the collections %s: their groups are empty", source.path, self.missing_collections)
        self._resolve()

    # --- planning ------------------------------------------------------------------------
    def detect_simulation(self) -> tuple[bool, str]:
        """Subclass hook: ``(is the file simulation, which branches said so)``."""
        raise NotImplementedError

    def plan(self) -> None:
        """Subclass hook: decide derived fields, sub-groups and metadata from what the file holds."""

    @staticmethod
    def empty(dtype: np.dtype) -> Callable[[dict[str, Any]], ak.Array]:
        """A derived field with no objects in any event (a collection the file lacks)."""
        return lambda ctx: ak.unflatten(np.zeros(0, dtype), np.zeros(ctx["n_events"], np.int64))

    def missing(self, k: str) -> None:
        """Leave field ``k`` unread: it is filled with its missing value (NaN or -1) for every real
        object or event and listed in :attr:`missing_fields`."""
        self.absent.add(k)
        if k not in self.missing_fields:
            self.missing_fields.append(k)

    def metadata(self) -> dict[str, Any]:
        """The metadata attributes this conversion adds to the registry's defaults."""
        order = {g: i for i, g in enumerate(schema.OBJECT_TYPES)}
        return {
            "is_simulation": int(self.is_simulation),
            "simulation_evidence": self.simulation_evidence,
            "missing_collections": sorted(self.missing_collections, key=order.__getitem__),
            "source_branches": dict(sorted(self.resolved.items())),
            **self.extra_metadata,
        }

    def require(self, *names: str) -> str:
        """The first present of the alias ``names``; InputError naming them when none is."""
        found = self.source.first(names)
        if found is None:
            raise InputError(self.source.path, " or ".join(names), "branch is missing (needed for the common layer)")
        self.needed.add(found)
        return found

    def optional(self, *names: str) -> str | None:
        found = self.source.first(names)
        if found is not None:
            self.needed.add(found)
        return found

    def layer_fields(self) -> Iterator[tuple[str, str, schema.Field]]:
        """``(key, group, field)`` of every field of ``common`` and this converter's layer, the
        sub-object groups only where the converter builds them."""
        for layer in ("common", self.layer):
            for g in schema.GROUPS:
                if schema.GROUPS[g].kind == "sub" and g not in self.sub_groups:
                    continue
                for f in schema.fields(layer, g):
                    yield schema.key(layer, g, f.name), g, f

    def _resolve(self) -> None:
        for k, g, f in self.layer_fields():
            layer = k.split("/", 1)[0]
            if k in self.derived or k in self.absent:
                continue
            src = self.table.get(k)
            found = self.source.first(src.branches) if src else None
            if src is not None and src.via is not None and found is not None and not self.source.has(src.via):
                found = None
            if found is None:
                if layer == "common" and (self.is_simulation or not schema.absent_in_data(k)):
                    names = " or ".join(src.branches) if src else k
                    raise InputError(self.source.path, names, f"branch is missing (needed for {k})")
                self.missing(k)
                continue
            self.resolved[k] = found
            self.needed.add(found)
            if src.via is not None:
                self.needed.add(src.via)
        if self.missing_fields:
            logger.info(
                "%s lacks %d %s fields (filled with NaN/-1): %s",
                self.source.path,
                len(self.missing_fields),
                self.layer,
                self.missing_fields,
            )

    @property
    def layout(self) -> Layout:
        return Layout((self.layer,), self.sub_groups, self.max_objects)

    def branches(self) -> list[str]:
        """Every branch a step reads."""
        return sorted(self.needed)

    # --- conversion ----------------------------------------------------------------------
    def value(self, k: str, ctx: dict[str, Any]) -> ak.Array:
        """The table value of ``k`` in common units (after ``via`` and ``op``)."""
        src = self.table[k]
        arr = ctx["arrays"][self.resolved[k]]
        if src.via is not None:
            arr = gather(arr, ctx["arrays"][src.via], schema.field_of(k).missing_value)
        if src.op is not None:
            arr = OPS[src.op](arr, ctx)
        factor = self.SCALE.get(schema.field_of(k).unit)
        if factor is not None:
            arr = arr * factor
        return arr

    def flat_kinematics(self, group: str, ctx: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Objects per event, then flat pT (GeV), eta and phi (float64) of a group's objects."""
        pt = self.get(schema.key("common", group, "pt"), ctx)
        counts = num(pt)
        eta, phi = (flat(self.get(schema.key("common", group, f), ctx)).astype(np.float64) for f in ("eta", "phi"))
        return counts, flat(pt).astype(np.float64), eta, phi

    def get(self, k: str, ctx: dict[str, Any]) -> ak.Array:
        """Field ``k`` for the step (cached in ``ctx``): derived, from the table, or None if missing."""
        cache = ctx["cache"]
        if k not in cache:
            if k in self.derived:
                cache[k] = self.derived[k](ctx)
            elif k in self.resolved:
                cache[k] = self.value(k, ctx)
            else:
                cache[k] = None
        return cache[k]

    def prepare(self, ctx: dict[str, Any]) -> None:
        """Subclass hook: per-step quantities shared by several fields (primary vertex, ...)."""

    def branch_of(self, k: str) -> str:
        """The branch a schema key is read from (or the key itself, marked derived)."""
        return self.resolved.get(k, f"{k} (derived)")

    def invalid_objects(self, g: str, ctx: dict[str, Any], first_entry: int) -> ak.Array:
        """Objects of ``g`` with a NaN, infinite or negative pT, or a non-finite eta or phi: an
        :class:`InputError` naming the branch and entry, or with ``drop_invalid`` counted in
        :attr:`dropped` and returned to be dropped."""
        bad = None
        for name in ("pt", "eta", "phi"):
            k = schema.key("common", g, name)
            v = self.get(k, ctx)
            if v is None:
                continue
            wrong = ~np.isfinite(v) | (v < 0) if name == "pt" else ~np.isfinite(v)
            if not self.drop_invalid and ak.any(wrong):
                entry = first_entry + int(np.argmax(ak.to_numpy(ak.any(wrong, axis=1))))
                raise InputError(
                    self.source.path,
                    self.branch_of(k),
                    f"entry {entry}: a {g[:-1] if g.endswith('s') else g} with {name} = "
                    f"{ak.to_list(ak.flatten(v[wrong]))[0]} (pass --drop-invalid to drop such objects "
                    "and count them in the metadata)",
                )
            bad = wrong if bad is None else bad | wrong
        if bad is not None and self.drop_invalid:
            n_bad = int(ak.sum(bad))
            if n_bad:
                self.dropped[g] = self.dropped.get(g, 0) + n_bad
                logger.warning("%s: dropped %d %s with invalid kinematics", self.source.path, n_bad, g)
        return bad

    def convert(self, arrays: dict[str, ak.Array], n_events: int, first_entry: int = 0) -> RaggedEvents:
        """One step of events (entries ``first_entry`` onwards) as ragged common-format events
        (pT cuts applied, not truncated)."""
        ctx: dict[str, Any] = {"arrays": arrays, "cache": {}, "n_events": n_events}
        self.prepare(ctx)
        event: dict[str, np.ndarray] = {}
        objects: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        keep_masks: dict[str, ak.Array] = {}
        for g, spec in schema.GROUPS.items():
            if spec.kind == "event":
                for layer in ("common", self.layer):
                    for f in schema.fields(layer, g):
                        k = schema.key(layer, g, f.name)
                        v = self.get(k, ctx)
                        event[k] = (
                            np.full(n_events, f.missing_value, f.np_dtype) if v is None else _numpy(v, f.np_dtype, k)
                        )
            elif spec.kind == "object":
                pt = self.get(schema.key("common", g, "pt"), ctx)
                keep = pt >= self.pt_cuts.get(g, 0.0)
                bad = self.invalid_objects(g, ctx, first_entry)
                if bad is not None:
                    keep = keep & ~bad
                if g in self.selection:
                    keep = keep & self.selection[g](ctx)
                keep_masks[g] = keep
                ctx["keep"] = keep_masks
                counts[g] = ak.to_numpy(ak.sum(keep, axis=1)).astype(np.int64)
                total = int(counts[g].sum())
                for layer in ("common", self.layer):
                    for f in schema.fields(layer, g):
                        k = schema.key(layer, g, f.name)
                        v = self.get(k, ctx)
                        objects[k] = (
                            np.full(total, f.missing_value, f.np_dtype)
                            if v is None
                            else _numpy(ak.flatten(v[keep]), f.np_dtype, k)
                        )
            elif g in self.sub_groups:
                sub_counts, rows = self.sub_objects(g, ctx)
                counts[g] = sub_counts
                for layer in ("common", self.layer):
                    for f in schema.fields(layer, g):
                        k = schema.key(layer, g, f.name)
                        objects[k] = (
                            np.full(int(sub_counts.sum()), f.missing_value, f.np_dtype)
                            if rows.get(k) is None
                            else np.asarray(rows[k]).astype(f.np_dtype)
                        )
        ragged = RaggedEvents(n_events, event, objects, counts)
        ragged.check(str(self.source.path))
        return ragged

    def sub_objects(self, g: str, ctx: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sub-objects of the kept parent objects: counts per kept parent row and flat fields."""
        raise SchemaError(f"{type(self).__name__} declares sub-objects {g!r} but does not build them")


def _numpy(v: Any, dtype: np.dtype, k: str) -> np.ndarray:
    arr = ak.to_numpy(v) if isinstance(v, ak.Array) else np.asarray(v)
    if dtype.kind in "iu" and arr.dtype.kind == "f":
        arr = np.where(np.isfinite(arr), np.rint(arr), -1)
    return arr.astype(dtype)


def flat(v: ak.Array) -> np.ndarray:
    """Flat numpy values of a one-level jagged array."""
    return ak.to_numpy(ak.flatten(v))


def num(v: ak.Array) -> np.ndarray:
    return ak.to_numpy(ak.num(v)).astype(np.int64)
