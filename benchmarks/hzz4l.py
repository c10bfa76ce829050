"""The H -> ZZ* -> 4l physics benchmark as a measurement: every learned row's test AUC against
the limit it should approach, the BDT on the engineered observables (m4l, mZ1, mZ2, pT4l, y4l,
five decay angles) trained on the same events in the same run, and the m4l peak width from
decoded tokens against the original leptons' width.

Runs ``treasure benchmark hzz4l`` (``--quick`` by default: the demo's sizes; ``--full`` for the
documented full run, meant for a GPU) into ``--out`` (samples and tokenizers in ``OUT/work`` are
reused by a later run with the same settings) and prints one JSON document:

- ``rows``: for every row what it reads, its bits per object, its AUC (mean over seeds, spread)
  and its paired 95% intervals against the BDT and the best continuous row;
- ``m4l_width_over_original``: the m4l core width from each tokenization's decoded leptons
  over the original one, per seed (goal: within 5%);
- ``goals``: the report's goals with ``met``;
- ``timings_seconds`` and the device.

Usage: ``python benchmarks/hzz4l.py [--medium|--full] [--out DIR] [--seeds N] [--rows bdt,tokens]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the full benchmark's sizes (default: --quick)")
    parser.add_argument("--medium", action="store_true", help="the medium configuration (the README's numbers)")
    parser.add_argument("--out", default="benchmark_hzz4l", help="report directory (default: ./benchmark_hzz4l)")
    parser.add_argument("--seeds", type=int, help="trainings per row")
    parser.add_argument("--rows", help="comma-separated subset of the rows")
    parser.add_argument("--events", type=int, help="generated signal events (background 4x, mix 1x)")
    args = parser.parse_args(argv)

    from treasure_hf.cli import main as treasure

    command = ["--quiet", "benchmark", "hzz4l", "--out", args.out] + (
        [] if args.full else ["--medium"] if args.medium else ["--quick"]
    )
    for flag, value in (("--seeds", args.seeds), ("--rows", args.rows), ("--events", args.events)):
        if value is not None:
            command += [flag, str(value)]
    t0 = time.perf_counter()
    code = treasure(command)
    if code:
        return code
    results = json.loads((Path(args.out) / "results.json").read_text())
    rows = [
        {
            "name": r["name"],
            "inputs": r["inputs"],
            "bits_per_object": r["bits_per_object"],
            "auc": round(r["auc"], 4),
            "auc_std": round(r["auc_std"], 4),
            "vs_bdt": r.get("paired_vs_bdt"),
            "vs_best_continuous": r.get("paired_vs_best_continuous"),
        }
        for r in results["rows"]
    ]
    m4l = results["m4l_peak"]
    original = m4l["original"]["sigma_core"]
    out = {
        "benchmark": "hzz4l",
        "configuration": results["configuration"],
        "command": "treasure " + " ".join(command),
        "limit": "the BDT on engineered observables and the best continuous row, same test events, same run "
        "(paired 95% intervals over seeds and events)",
        "rows": rows,
        "m4l_width_over_original": {
            d["key"]: [round(w / original, 3) for w in d["m4l_sigma_core_per_seed"]] for d in m4l["decoded"]
        },
        "goals": [{"goal": g["goal"], "met": g["met"]} for g in results["goals"]],
        "timings_seconds": {**results["timings_seconds"], "wall": round(time.perf_counter() - t0, 1)},
        "device": results.get("device"),
        "torch_threads": results.get("torch_threads"),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
