"""PCDF -> common HDF5 conversion speed and peak memory, next to a plain numpy scatter.

For each size, a synthetic PCDF data set (every common and ATLAS field, Poisson multiplicities:
40 tracks, 5 jets ... per event) is written once; then, each in a fresh process so that peak RSS
is its own:

- ``numpy_scatter``: pyarrow reads the same columns part by part, and a bare numpy scatter
  (rows already grouped by event and sorted, no checks, no sort, nothing written) fills padded
  arrays: the floor that a conversion could approach;
- ``numpy_scatter_h5py_gzip``: the same scatter, then each array appended to an HDF5 file with
  h5py's own gzip + shuffle filters at the same level: the plain way to produce the same file;
- ``treasure_pcdf_to_h5``: ``treasure_hf.data.io.pcdf_to_h5`` (checks, sort detection,
  truncation, gzip-compressed HDF5 written to disk under a temporary name);
- ``treasure_uncompressed``: the same without compression, to show what gzip costs.

Prints one JSON document. Goal: treasure within 1.5x of the scatter; peak RSS flat from 1e5 to
1e6 events. Usage: ``python benchmarks/formats.py --sizes 10000 100000 1000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 50_000


def make_pcdf(path: Path, n_events: int) -> None:
    from treasure_hf.data.events import Layout
    from treasure_hf.data.pcdf import PCDFWriter
    from treasure_hf.data.synthetic import random_events

    first = random_events(0, 0)
    with PCDFWriter(path, first.metadata, Layout(("atlas",)), events_per_part=CHUNK) as writer:
        for i, start in enumerate(range(0, n_events, CHUNK)):
            writer.write(random_events(min(CHUNK, n_events - start), seed=i))


def run_numpy_scatter(path: Path, write: bool = False) -> dict:
    import h5py
    import numpy as np
    import pyarrow.parquet as pq

    from treasure_hf.data.pcdf import PCDFSource, table_columns

    source = PCDFSource(path)
    widths = source.layout.max_objects
    t0 = time.perf_counter()
    n_total = 0
    h5 = h5py.File(path.parent / "scatter.h5", "w") if write else None
    for part in source.parts:
        events = pq.read_table(path / "events" / f"{part['name']}.parquet", columns=["eventIndex"])
        n = events.num_rows
        first = part["first_event"]
        for table in source.tables[1:]:
            cols = [c for c, (k, _) in table_columns(source.layout, table).items() if k is not None]
            t = pq.read_table(path / table / f"{part['name']}.parquet", columns=["eventIndex", *cols])
            ev = t.column("eventIndex").to_numpy() - first
            counts = np.bincount(ev, minlength=n)
            slot = np.arange(len(ev)) - np.repeat(np.cumsum(counts) - counts, counts)
            width = widths[table]
            keep = slot < width
            flat = ev[keep] * width + slot[keep]
            for c in cols:
                out = np.zeros(n * width, np.float32 if t.schema.field(c).type == "float" else np.int64)
                out[flat] = t.column(c).to_numpy()[keep]
                if h5 is not None:
                    name = f"{table}/{c}"
                    if name not in h5:
                        h5.create_dataset(
                            name,
                            shape=(0, width),
                            maxshape=(None, width),
                            dtype=out.dtype,
                            chunks=(max(1, (1 << 20) // (width * out.itemsize)), width),
                            compression="gzip",
                            compression_opts=1,
                            shuffle=True,
                        )
                    ds = h5[name]
                    ds.resize(ds.shape[0] + n, axis=0)
                    ds[-n:] = out.reshape(n, width)
        n_total += n
    if h5 is not None:
        h5.close()
        (path.parent / "scatter.h5").unlink()
    return {"events": n_total, "seconds": time.perf_counter() - t0}


def run_treasure(path: Path, compression: str | None) -> dict:
    from treasure_hf.data.io import pcdf_to_h5

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        out = Path(tmp) / "out.h5"
        t0 = time.perf_counter()
        pcdf_to_h5(path, out, progress=False, compression=compression)
        seconds = time.perf_counter() - t0
        size = out.stat().st_size
    from treasure_hf.data.pcdf import PCDFSource

    return {"events": PCDFSource(path).n_events, "seconds": seconds, "h5_bytes": size}


def child(mode: str, path: str) -> None:
    p = Path(path)
    if mode == "numpy_scatter":
        result = run_numpy_scatter(p)
    elif mode == "numpy_scatter_h5py_gzip":
        result = run_numpy_scatter(p, write=True)
    elif mode == "treasure_pcdf_to_h5":
        result = run_treasure(p, "gzip")
    else:
        result = run_treasure(p, None)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["events_per_s"] = result["events"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--workdir", default=None, help="where the synthetic data sets go (default: a temp dir)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    report = {
        "benchmark": "formats: PCDF -> HDF5",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "goal": "treasure within 1.5x of numpy_scatter; peak RSS flat from 1e5 to 1e6",
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"synthetic_{n}.pcdf"
            t0 = time.perf_counter()
            make_pcdf(path, n)
            row = {
                "n_events": n,
                "make_pcdf_s": round(time.perf_counter() - t0, 2),
                "pcdf_bytes": sum(f.stat().st_size for f in path.rglob("*.parquet")),
            }
            for mode in ("numpy_scatter", "numpy_scatter_h5py_gzip", "treasure_pcdf_to_h5", "treasure_uncompressed"):
                row[mode] = measure(mode, path)
            row["ratio_vs_scatter"] = row["numpy_scatter"]["events_per_s"] / row["treasure_pcdf_to_h5"]["events_per_s"]
            row["ratio_vs_scatter_plus_h5py_gzip_write"] = (
                row["numpy_scatter_h5py_gzip"]["events_per_s"] / row["treasure_pcdf_to_h5"]["events_per_s"]
            )
            row["ratio_uncompressed_vs_scatter"] = (
                row["numpy_scatter"]["events_per_s"] / row["treasure_uncompressed"]["events_per_s"]
            )
            report["sizes"].append(row)
            print(json.dumps(row), file=sys.stderr)
            import shutil

            shutil.rmtree(path)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
