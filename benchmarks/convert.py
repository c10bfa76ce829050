"""Benchmark ``treasure convert`` against uproot alone, on the real test files replicated.

For every PHYSLITE/NanoAOD test file (the empty and the tutorial files excepted) this prints, as
JSON, the converter's wall time and peak RSS for about ``--events`` events, next to the wall time
and peak RSS of plain uproot reading the same branches the same way in the same run, and their
ratio (goal: <= 1.3).

Replication: the test files hold 10 to 200 events, so each is *read repeatedly*: a replicated
stream of ``copies * n`` events is made of ``copies`` passes over the file, and each step of
``--step-size`` events is assembled from real uproot reads of the file (``TTree.arrays`` / RNTuple
field ``array()``, through the thin :class:`RootSource` wrapper) glued with a concatenation.
The converter runs its normal streaming loop
(:func:`treasure_hf.data.sources.convert.convert_source`) on that source. The uproot baseline
reads exactly the same branches in exactly the same steps through the same replicated source (so
the same uproot calls and the same concatenation) and does nothing else: the ratio is the cost of
converting and writing on top of reading, and both peak RSS figures hold one step of events.
``copies`` is capped by ``--max-copies`` so that 10-event files stay quick; the JSON says how many
events each measurement used. Each measurement runs in a fresh subprocess so that its peak RSS is
its own.

    python benchmarks/convert.py [--quick] [--events N] [--step-size S] [--format h5|pcdf] [--files NAME...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

FILES = {  # file -> experiment
    "atlas_physlite_mc_100ev.ttree.root": "atlas",
    "atlas_physlite_mc_100ev.rntuple.root": "atlas",
    "cms_nanoaod_2015_ttbar_200ev.root": "cms",
    "cms_nanoaod_2015_ttbar_10ev.rntuple.root": "cms",
    "cms_nanoaod_dy_40ev.root": "cms",
    "cms_nanoaod_v15_tt_200ev.root": "cms",
    "cms_pfnano_10ev.root": "cms",
    "nano_dimuon.root": "cms",
}
QUICK_FILES = (
    "atlas_physlite_mc_100ev.ttree.root",
    "atlas_physlite_mc_100ev.rntuple.root",
    "cms_nanoaod_v15_tt_200ev.root",
)


class Replicated:
    """A :class:`RootSource` seen ``copies`` times in a row (events ``k*n + i`` are event ``i``)."""

    def __init__(self, source, copies: int):
        self._source = source
        self.n_events = source.n_events * copies
        self.concat_s = 0.0
        """Time spent gluing passes together: a cost of the replication, not of the converter."""

    def __getattr__(self, name):
        return getattr(self._source, name)

    def read(self, names, start, stop):

        n, parts, pos = self._source.n_events, [], start
        while pos < stop:
            lo = pos % n
            hi = min(n, lo + stop - pos)
            parts.append(self._source.read(names, lo, hi))
            pos += hi - lo
        t0 = time.perf_counter()
        out = {k: parts[0][k] if len(parts) == 1 else _concatenate([p[k] for p in parts]) for k in names}
        self.concat_s += time.perf_counter() - t0
        return out

    def steps(self, step_size, start=0):
        for lo in range(start, self.n_events, step_size):
            yield lo, min(lo + step_size, self.n_events)


def _concatenate(arrays):
    """ak.concatenate, with a fast path for the common one-level jagged numeric arrays."""
    import awkward as ak
    import numpy as np

    if arrays[0].ndim == 1 and not arrays[0].fields and not isinstance(arrays[0].type.content, ak.types.ListType):
        try:
            return ak.Array(np.concatenate([ak.to_numpy(a) for a in arrays]))
        except (TypeError, ValueError):
            pass
    if arrays[0].ndim == 2 and not arrays[0].fields and str(arrays[0].type.content.content) in NUMERIC:
        counts = np.concatenate([ak.to_numpy(ak.num(a)) for a in arrays])
        return ak.unflatten(np.concatenate([ak.to_numpy(ak.flatten(a)) for a in arrays]), counts)
    return ak.concatenate(arrays)


NUMERIC = {"float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(mode: str, path: str, experiment: str, copies: int, step_size: int, fmt: str) -> dict:
    """One measurement in this process: ``convert`` or ``uproot``."""
    from treasure_hf.data.sources.convert import ConvertTask, convert_source, converter_class
    from treasure_hf.data.sources.reader import RootSource

    cls = converter_class(experiment)
    rss_before = _peak_rss_mb()
    if mode == "convert":
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / ("out.h5" if fmt == "h5" else "out")
            t0 = time.perf_counter()
            with RootSource(path, cls.TREE_NAMES) as source:
                replicated = Replicated(source, copies)
                n = convert_source(replicated, ConvertTask(experiment, path, str(out), fmt, step_size=step_size))
            wall = time.perf_counter() - t0
            concat = replicated.concat_s
    else:
        t0 = time.perf_counter()
        with RootSource(path, cls.TREE_NAMES) as source:
            branches = cls(source).branches()  # the branches the converter reads
            replicated = Replicated(source, copies)
            n = 0
            for start, stop in replicated.steps(step_size):
                arrays = replicated.read(branches, start, stop)
                n += stop - start
                del arrays
        wall = time.perf_counter() - t0
        concat = replicated.concat_s
    return {
        "wall_s": round(wall, 3),
        "replication_concat_s": round(concat, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_after_imports_mb": round(rss_before, 1),
        "events": n,
    }


def _run_child(mode: str, path: Path, experiment: str, copies: int, step_size: int, fmt: str) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(path), experiment, str(copies), str(step_size), fmt]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {path.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="1e4 events, 3 files (an ATLAS TTree, an ATLAS RNTuple, a NanoAOD v15): a few minutes",
    )
    p.add_argument("--events", type=int, default=None, help="target events per file (default 1e5, quick 1e4)")
    p.add_argument("--max-copies", type=int, default=None, help="cap on passes over a file (default 2000, quick 200)")
    p.add_argument("--step-size", type=int, default=20_000, help="converter step in events (default %(default)s)")
    p.add_argument("--format", choices=("h5", "pcdf"), default="h5")
    p.add_argument("--files", nargs="+", choices=sorted(FILES), help="only these test files")
    p.add_argument("--testdata", default=os.environ.get("TREASURE_TESTDATA", str(REPO.parent / "shared" / "testdata")))
    p.add_argument(
        "--child", nargs=6, metavar=("MODE", "PATH", "EXPERIMENT", "COPIES", "STEP", "FORMAT"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.child:
        mode, path, experiment, copies, step, fmt = args.child
        print(json.dumps(measure(mode, path, experiment, int(copies), int(step), fmt)))
        return 0
    target = args.events or (10_000 if args.quick else 100_000)
    max_copies = args.max_copies or (200 if args.quick else 2000)
    testdata = Path(args.testdata)
    names = tuple(args.files) if args.files else QUICK_FILES if args.quick else tuple(FILES)
    import uproot

    results = []
    for name in names:
        path = testdata / name
        with uproot.open(path) as f:
            n_file = f[
                "CollectionTree" if "CollectionTree" in f else "EventData" if "EventData" in f else "Events"
            ].num_entries
        copies = max(1, min(max_copies, math.ceil(target / n_file)))
        conv = _run_child("convert", path, FILES[name], copies, args.step_size, args.format)
        base = _run_child("uproot", path, FILES[name], copies, args.step_size, args.format)
        results.append(
            {
                "file": name,
                "events": conv["events"],
                "copies": copies,
                "step_size": args.step_size,
                "format": args.format,
                "convert_wall_s": conv["wall_s"],
                "uproot_wall_s": base["wall_s"],
                "ratio": round(conv["wall_s"] / base["wall_s"], 3),
                "replication_concat_s": {
                    "convert": conv["replication_concat_s"],
                    "uproot": base["replication_concat_s"],
                },
                "convert_peak_rss_mb": conv["peak_rss_mb"],
                "uproot_peak_rss_mb": base["peak_rss_mb"],
                "rss_after_imports_mb": {
                    "convert": conv["rss_after_imports_mb"],
                    "uproot": base["rss_after_imports_mb"],
                },
                "convert_events_per_s": round(conv["events"] / conv["wall_s"]),
            }
        )
        print(f"{name}: {results[-1]['ratio']}x", file=sys.stderr)
    report = {
        "benchmark": "treasure convert vs uproot alone",
        "goal_ratio": 1.3,
        "replication": "each file read `copies` times in a row (see the module docstring)",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
        "files": results,
        "worst_ratio": max(r["ratio"] for r in results) if results else None,
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
