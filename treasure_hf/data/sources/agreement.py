"""How the recomputed ``common/*/trk_iso03`` agrees with the experiments' own track isolation.

For every lepton of a file (default pT cuts, file order) the converter's ``trk_iso03`` is set
beside the experiment's relative isolation: ATLAS ``ptvarcone30`` / pT (the alias the file
holds), CMS ``*_pfRelIso03_chg`` (NanoAOD; compared only where ``trk_iso03`` is recomputed from
``PFCands``, elsewhere it is that branch itself). :func:`isolation.agreement` gives the Pearson
correlation and the fraction within 10%.
"""

from __future__ import annotations

import os
from typing import Any

import awkward as ak
import numpy as np

from .. import schema
from . import isolation
from .convert import converter_class
from .reader import RootSource, flat

LEPTONS = ("electrons", "muons")
CMS_COLLECTION = {"electrons": "Electron", "muons": "Muon"}


def _reference(experiment: str, group: str, conv: Any) -> tuple[str | None, str | None]:
    """(the key or branch of the experiment's own isolation, the file's branch behind it)."""
    if experiment == "ATLAS":
        k = schema.key("atlas", group, "ptvarcone30")
        return (k, conv.resolved.get(k))
    branch = f"{CMS_COLLECTION[group]}_pfRelIso03_chg"
    return (branch, branch) if conv.source.has(branch) else (None, None)


def isolation_agreement(
    path: str | os.PathLike, experiment: str, step_size: int = 10_000, tolerance: float = 0.1
) -> dict[str, Any]:
    """``{group: {n, correlation, within, reference}}`` for the leptons of one file; a group
    whose trk_iso03 is the experiment's own value (CMS without PFCands) says so instead."""
    cls = converter_class(experiment)
    with RootSource(path, cls.TREE_NAMES, cls.FORMAT_NAME) as source:
        conv = cls(source)
        refs = {g: _reference(cls.EXPERIMENT, g, conv) for g in LEPTONS if g not in conv.missing_collections}
        ours: dict[str, list[np.ndarray]] = {g: [] for g in refs}
        theirs: dict[str, list[np.ndarray]] = {g: [] for g in refs}
        extra = [b for g, (k, b) in refs.items() if b is not None and k == b]
        for lo, hi in source.steps(step_size):
            arrays = source.read(sorted(set(conv.branches()) | set(extra)), lo, hi)
            ctx: dict[str, Any] = {"arrays": arrays, "cache": {}, "n_events": hi - lo}
            conv.prepare(ctx)
            for g, (k, b) in refs.items():
                if b is None or schema.key("common", g, "trk_iso03") not in conv.derived:
                    continue
                pt = flat(conv.get(schema.key("common", g, "pt"), ctx)).astype(np.float64)
                keep = pt >= conv.pt_cuts[g]
                mine = flat(conv.get(schema.key("common", g, "trk_iso03"), ctx)).astype(np.float64)
                ref = (
                    flat(conv.get(k, ctx)).astype(np.float64) / np.where(pt > 0, pt, np.nan)
                    if k != b
                    else flat(ak.values_astype(arrays[b], np.float64))
                )
                ours[g].append(mine[keep])
                theirs[g].append(ref[keep])
    out: dict[str, Any] = {}
    for g, (k, b) in refs.items():
        if b is None:
            out[g] = {"reference": None, "note": "the file holds no isolation of the experiment's own to compare"}
        elif schema.key("common", g, "trk_iso03") not in conv.derived:
            out[g] = {"reference": b, "note": "trk_iso03 is this branch itself (the file has no PFCands)"}
        else:
            a = np.concatenate(ours[g]) if ours[g] else np.zeros(0)
            r = np.concatenate(theirs[g]) if theirs[g] else np.zeros(0)
            out[g] = {"reference": b, **isolation.agreement(a, r, tolerance)}
    return out
