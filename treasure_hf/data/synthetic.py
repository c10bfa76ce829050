"""Random events in the registry's layout, for format tests and benchmarks.

Not physics: values have the right units, ranges and dtypes (falling pT spectra in GeV, eta in
[-2.5, 2.5], phi in [-pi, pi)), so that the validator's sanity checks pass; multiplicities are
Poisson; rows come sorted by descending pT within their event (or parent jet). Physics samples come from the generator and the converters.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import schema
from .events import RaggedEvents
from .metadata import make_metadata

MEAN_MULTIPLICITY: dict[str, float] = {
    "electrons": 1.0,
    "muons": 1.0,
    "taus": 0.3,
    "photons": 0.8,
    "jets": 5.0,
    "tracks": 40.0,
    "constituents": 15.0,
    "hits": 12.0,
}


def _values(f: schema.Field, n: int, rng: np.random.Generator) -> np.ndarray:
    if f.transform == "log":
        v = 5.0 + rng.exponential(30.0, n)
    elif f.transform == "angle":
        v = rng.uniform(-np.pi, np.pi, n)
    elif f.transform in ("flag",):
        v = rng.integers(0, 2, n)
    elif f.transform in ("category", "count"):
        v = rng.integers(-1 if f.name == "charge" else 0, 2 if f.name == "charge" else 10, n)
    elif f.transform == "score":
        v = rng.uniform(0, 1, n)
    elif f.transform == "log1p":
        v = rng.exponential(2.0, n)
    elif f.name == "eta":
        v = rng.uniform(-2.5, 2.5, n)
    else:
        v = rng.normal(0.0, 1.0, n)
    return v.astype(f.np_dtype)


def random_events(
    n_events: int,
    seed: int = 0,
    *,
    layers: tuple[str, ...] = ("atlas",),
    sub_groups: tuple[str, ...] = (),
    multiplicity: Mapping[str, float] | None = None,
    experiment: str = "ATLAS",
) -> RaggedEvents:
    """``n_events`` random events with every field of ``common`` and ``layers``."""
    rng = np.random.default_rng(seed)
    mult = {**MEAN_MULTIPLICITY, **(multiplicity or {})}
    event: dict[str, np.ndarray] = {}
    objects: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for g in schema.GROUPS:
        spec = schema.GROUPS[g]
        if spec.kind == "sub" and g not in sub_groups:
            continue
        if spec.kind == "event":
            n_rows = n_events
        else:
            owners = n_events if spec.kind == "object" else int(counts[spec.parent].sum())
            counts[g] = rng.poisson(mult[g], owners).astype(np.int64)
            n_rows = int(counts[g].sum())
        target = event if spec.kind == "event" else objects
        for layer in ("common", *layers):
            for f in schema.fields(layer, g):
                target[schema.key(layer, g, f.name)] = _values(f, n_rows, rng)
        sort_key = schema.key("common", g, spec.sort_field) if spec.sort_field else None
        if spec.kind != "event" and sort_key in objects:  # rows in descending pT within their owner, as writers emit
            owner = np.repeat(np.arange(len(counts[g])), counts[g])
            order = np.lexsort((-objects[sort_key], owner))
            for k in [k for k in objects if k.split("/")[1] == g]:
                objects[k] = objects[k][order]
    event["common/met/sumet"] += event["common/met/pt"]  # a scalar sum is never below the vector sum
    event["common/event/experiment_id"][:] = schema.EXPERIMENTS[experiment]
    event["common/event/is_simulation"][:] = 1
    meta = make_metadata(
        experiment,
        f"synthetic(seed={seed})",
        layers=layers,
        met_definition="synthetic",
        common_iso_source={"electrons": "synthetic"},
    )
    meta["n_events"] = n_events
    return RaggedEvents(n_events, event, objects, counts, {}, meta)
