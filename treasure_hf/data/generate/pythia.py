"""Running Pythia 8 (``pythia8mc``) and reading its event record into flat numpy arrays.

Measured on Z -> ll events (~2,300 record entries, 6 ms per ``next()``): looping over
``pythia.event.particles()`` in Python with ten accessors per particle costs ~12 ms an event,
twice Pythia itself; ``Pythia.nextBatch(n)`` fills an awkward array in C++ and costs ~1-2 ms an
event on top of ``next()`` (about 0.5-1 us per record entry), so that is what :class:`PythiaRun`
uses. The awkward-to-numpy flattening afterwards is negligible (~10 us an event).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np

logger = logging.getLogger(__name__)

PYTHIA_MAX_SEED = 900_000_000
"""``Random:seed`` must lie in [0, 900 000 000]."""

BATCH = 100
"""Events per ``nextBatch`` call: bounds the memory of the awkward record."""


@dataclass
class Record:
    """The full event records of ``n_events`` events, flattened.

    Entry ``i`` of event ``e`` is row ``offsets[e] + i``; ``mother1``, ``mother2``, ``daughter1``,
    ``daughter2`` are already global row numbers (-1 where Pythia has 0, i.e. none). Momenta in GeV,
    production vertices in mm (0 where Pythia sets none).
    """

    n_events: int
    offsets: np.ndarray  # (n_events + 1,) int64
    id: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    mother2: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    charge: np.ndarray  # float64, units of e
    weight: np.ndarray  # (n_events,) float64

    @property
    def event(self) -> np.ndarray:
        """Event number of each row."""
        return np.repeat(np.arange(self.n_events), np.diff(self.offsets))

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)


def _global(local: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Pythia's local index (0 = none) -> global row, -1 for none."""
    return np.where(local > 0, local + base, -1)


class PythiaRun:
    """One initialised Pythia instance with fixed settings and seed."""

    def __init__(self, settings: Sequence[str], seed: int):
        import pythia8mc

        self.settings = list(settings)
        self.seed = int(seed) % (PYTHIA_MAX_SEED + 1)
        self.pythia = pythia8mc.Pythia("", False)
        for s in (*self.settings, "Random:setSeed = on", f"Random:seed = {self.seed}"):
            if not self.pythia.readString(s):
                raise ValueError(f"Pythia does not accept the setting {s!r}")
        if not self.pythia.init():
            raise RuntimeError(f"Pythia failed to initialise with settings {self.settings}")
        self._charge_cache: dict[int, float] = {}

    def charges(self, ids: np.ndarray) -> np.ndarray:
        """Electric charge (units of e) of each PDG id, from Pythia's particle data."""
        uniq, inverse = np.unique(ids, return_inverse=True)
        pdata = self.pythia.particleData
        values = np.empty(len(uniq))
        for i, pid in enumerate(uniq.tolist()):
            c = self._charge_cache.get(pid)
            if c is None:
                c = self._charge_cache[pid] = pdata.charge(pid) if pid != 90 else 0.0
            values[i] = c
        return values[inverse]

    def next_only(self, n_events: int) -> int:
        """Generate ``n_events`` with ``next()`` and read nothing (the benchmark's reference)."""
        ok = 0
        for _ in range(n_events):
            ok += bool(self.pythia.next())
        return ok

    def generate(self, n_events: int, *, final_only: bool = False) -> Record:
        """``n_events`` events as one :class:`Record` (``final_only``: keep status > 0 entries, with
        mother/daughter links set to -1)."""
        chunks = []
        done = 0
        while done < n_events:
            want = min(BATCH, n_events - done)
            batch = self.pythia.nextBatch(want)
            got = len(batch)
            if got == 0:
                raise RuntimeError("Pythia produced no events (nextBatch returned an empty batch)")
            chunks.append(self._flatten(batch, final_only))
            done += got
        return concat_records(chunks) if len(chunks) != 1 else chunks[0]

    def _flatten(self, batch: ak.Array, final_only: bool) -> Record:
        prt = batch.prt
        if final_only:
            prt = prt[prt.status > 0]
        counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
        flat = ak.flatten(prt)

        def col(a) -> np.ndarray:
            return np.asarray(ak.to_numpy(a))

        offsets = np.concatenate([[0], np.cumsum(counts)])
        base = np.repeat(offsets[:-1], counts)
        ids = col(flat.id).astype(np.int64)
        vprod = flat.vProd
        vx, vy, vz = (col(ak.fill_none(getattr(vprod, c), 0.0)) for c in ("px", "py", "pz"))
        if final_only:
            none = np.full(len(ids), -1, np.int64)
            m1 = m2 = d1 = d2 = none
        else:
            m1, m2, d1, d2 = (
                _global(col(getattr(flat, c)).astype(np.int64), base)
                for c in ("mother1", "mother2", "daughter1", "daughter2")
            )
        weights = batch.info.weights
        w = ak.to_numpy(ak.fill_none(ak.firsts(weights), 1.0)).astype(np.float64)
        p = flat.p
        return Record(
            len(counts),
            offsets,
            ids,
            col(flat.status).astype(np.int32),
            m1,
            m2,
            d1,
            d2,
            col(p.px),
            col(p.py),
            col(p.pz),
            col(p.e),
            vx,
            vy,
            vz,
            self.charges(ids),
            w,
        )


def concat_records(records: Sequence[Record]) -> Record:
    """Join records event-wise (links are shifted to the joined rows)."""
    if not records:
        raise ValueError("no records to join")
    shifts = np.cumsum([0] + [len(r.id) for r in records[:-1]])
    offsets = [records[0].offsets[:1]] + [r.offsets[1:] + s for r, s in zip(records, shifts)]

    def link(name: str) -> np.ndarray:
        return np.concatenate(
            [np.where(getattr(r, name) >= 0, getattr(r, name) + s, -1) for r, s in zip(records, shifts)]
        )

    cat = {
        name: np.concatenate([getattr(r, name) for r in records])
        for name in ("id", "status", "px", "py", "pz", "e", "vx", "vy", "vz", "charge", "weight")
    }
    return Record(
        sum(r.n_events for r in records),
        np.concatenate(offsets),
        cat["id"],
        cat["status"],
        link("mother1"),
        link("mother2"),
        link("daughter1"),
        link("daughter2"),
        cat["px"],
        cat["py"],
        cat["pz"],
        cat["e"],
        cat["vx"],
        cat["vy"],
        cat["vz"],
        cat["charge"],
        cat["weight"],
    )


def take_events(rec: Record, order: np.ndarray) -> Record:
    """The events of ``rec`` in the order ``order`` (a permutation or selection of event numbers),
    with mother/daughter links renumbered."""
    order = np.asarray(order, np.int64)
    counts = np.diff(rec.offsets)[order]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows = np.repeat(rec.offsets[:-1][order] - offsets[:-1], counts) + np.arange(int(offsets[-1]))
    new_of_old = np.full(len(rec.id), -1, np.int64)
    new_of_old[rows] = np.arange(len(rows))

    def link(values: np.ndarray) -> np.ndarray:
        v = values[rows]
        return np.where(v >= 0, new_of_old[np.maximum(v, 0)], -1)

    return Record(
        len(order),
        offsets,
        rec.id[rows],
        rec.status[rows],
        link(rec.mother1),
        link(rec.mother2),
        link(rec.daughter1),
        link(rec.daughter2),
        rec.px[rows],
        rec.py[rows],
        rec.pz[rows],
        rec.e[rows],
        rec.vx[rows],
        rec.vy[rows],
        rec.vz[rows],
        rec.charge[rows],
        rec.weight[order],
    )
