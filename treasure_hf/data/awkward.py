"""Events from awkward arrays: collections an analysis already holds (coffea NanoEvents'
``events.Electron``, ``events.Muon``, ``events.Jet``, ``events.MET``; uproot ``arrays()``) as the
padded :class:`EventBatch` the tokenizer takes, through the same converters as the files.

The collections are laid out as the experiment's file names its branches: a NanoAOD collection
``Electron`` with fields ``pt, eta, ...`` becomes the branches ``Electron_pt, ...`` and the counter
``nElectron``; a PHYSLITE container ``AnalysisElectronsAuxDyn`` becomes
``AnalysisElectronsAuxDyn.pt, ...``. The converter then reads them as it reads a file: the same
aliases, units, derived fields and checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from .events import EventBatch
from .sources.reader import RootSource

SEPARATOR = {"cms": "_", "atlas": "."}
"""How the experiment's files join a collection and a field into a branch name."""


class ArraySource(RootSource):
    """awkward arrays standing in for the branches of an experiment's file (a converter reads
    them like a :class:`RootSource`)."""

    def __init__(self, branches: Mapping[str, Any], name: str = "<awkward arrays>"):
        lengths = {len(v) for v in branches.values()}
        if len(lengths) > 1:
            raise ValueError(f"the arrays disagree on the number of events: {sorted(lengths)}")
        self.path = Path(name)
        self._branches = dict(branches)
        self._index = {k: k for k in self._branches}
        self._fields = {}
        self.n_events = lengths.pop() if lengths else 0
        self.is_rntuple = False
        self.tree_name = name

    def read(self, names, start: int, stop: int) -> dict[str, ak.Array]:
        return {n: ak.Array(self._branches[n])[start:stop] for n in names}

    def close(self) -> None:
        pass


def _numeric(array: ak.Array) -> bool:
    layout = ak.to_layout(array)
    while hasattr(layout, "content"):
        layout = layout.content
    return isinstance(layout, ak.contents.NumpyArray)


def branches_of(collections: Mapping[str, Any], experiment: str = "cms") -> dict[str, ak.Array]:
    """The branches of ``collections`` as the experiment's file would name them: records are split
    into one branch per numeric field (nested records and cross-references are skipped), jagged
    NanoAOD collections get their ``nX`` counter."""
    sep = SEPARATOR[experiment]
    out: dict[str, ak.Array] = {}
    for name, value in collections.items():
        arr = ak.Array(value)
        fields = ak.fields(arr)
        if not fields:
            out[name] = arr
            continue
        for f in fields:
            if _numeric(arr[f]):
                out[f"{name}{sep}{f}"] = arr[f]
        if experiment == "cms" and arr.ndim > 1:
            out.setdefault(f"n{name}", ak.num(arr, axis=1))
    return out


def events_from_awkward(
    collections: Mapping[str, Any],
    *,
    experiment: str = "cms",
    pt_cuts: Mapping[str, float] | None = None,
    max_objects: Mapping[str, int] | None = None,
) -> EventBatch:
    """A padded :class:`EventBatch` (``batch["common/jets/pt"]`` is ``(n_events, max_jets)`` in
    GeV) from awkward collections, e.g.::

        events = NanoEventsFactory.from_root({"nano.root": "Events"}).events()   # coffea
        batch = events_from_awkward({"Electron": events.Electron, "Muon": events.Muon, "Jet": events.Jet,
                                     "Tau": events.Tau, "Photon": events.Photon, "MET": events.MET,
                                     "PV": events.PV, "run": events.run, "event": events.event})
        tokenizer(batch)

    ``experiment``: ``cms`` (NanoAOD collection names) or ``atlas`` (PHYSLITE container names).
    A field the converter needs and the collections lack is an error naming the branch, as for a
    file."""
    from .sources.convert import converter_class

    if experiment not in SEPARATOR:
        raise ValueError(
            f"events_from_awkward reads {sorted(SEPARATOR)} collections, not {experiment!r} (EDM4hep "
            "files go through treasure convert edm4hep)"
        )
    cls = converter_class(experiment)
    source = ArraySource(branches_of(collections, experiment))
    conv = cls(source, pt_cuts, max_objects)
    ragged = conv.convert(source.read(conv.branches(), 0, source.n_events), source.n_events)
    batch = ragged.to_padded(conv.layout.max_objects)
    batch.metadata.update(
        {"experiment": cls.EXPERIMENT, "n_events": batch.n_events, "missing_fields": conv.missing_fields}
    )
    return batch


__all__ = ["ArraySource", "branches_of", "events_from_awkward"]
_ = np  # numpy arrays are accepted wherever awkward ones are
