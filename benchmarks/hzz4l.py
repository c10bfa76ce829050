"""The H -> ZZ* -> 4l physics benchmark as a measurement: every learned row's test AUC against
the limit it should approach, the BDT on the engineered observables (m4l, mZ1, mZ2, pT4l, y4l,
five decay angles) trained on the same events in the same run, and the m4l peak width from
decoded tokens against the original leptons' width.

Runs ``treasure benchmark hzz4l`` (``--quick`` by default: the demo's sizes; ``--full`` for the
documented full run, meant for a GPU) into ``--out`` (samples and tokenizers in ``OUT/work`` are
reused by a later run with the same settings) and prints one JSON document:

- ``rows``: for every row its AUC (mean over seeds), spread, ``auc_minus_bdt`` and
  ``within_bdt_spread`` (the first goal, row by row);
- ``m4l_width``: sigma of the Gaussian core from each tokenizer's decoded leptons over the
  original one (goal: <= 1.05);
- ``goals``: the report's four goals with ``met``;
- ``timings_seconds`` and the device.

Usage: ``python benchmarks/hzz4l.py [--full] [--out DIR] [--seeds N] [--rows bdt,per_type,rvq]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the full benchmark's sizes (default: --quick)")
    parser.add_argument("--out", default="benchmark_hzz4l", help="report directory (default: ./benchmark_hzz4l)")
    parser.add_argument("--seeds", type=int, help="trainings per row")
    parser.add_argument("--rows", help="comma-separated subset of the rows")
    parser.add_argument("--events", type=int, help="generated signal events (background 4x, mix 1x)")
    args = parser.parse_args(argv)

    from treasure_hf.cli import main as treasure

    command = ["--quiet", "benchmark", "hzz4l", "--out", args.out] + ([] if args.full else ["--quick"])
    for flag, value in (("--seeds", args.seeds), ("--rows", args.rows), ("--events", args.events)):
        if value is not None:
            command += [flag, str(value)]
    t0 = time.perf_counter()
    code = treasure(command)
    if code:
        return code
    results = json.loads((Path(args.out) / "results.json").read_text())
    bdt = next((r for r in results["rows"] if r["key"] == "bdt"), None)
    rows = []
    for r in results["rows"]:
        row = {"name": r["name"], "auc": round(r["auc"], 4), "auc_std": round(r["auc_std"], 4),
               "rejection_at_50pct": r["rejection_at_50pct"]}
        if bdt is not None and r is not bdt:
            spread = max(r["auc_std"], bdt["auc_std"],
                         (r["auc_bootstrap_ci68"][1] - r["auc_bootstrap_ci68"][0]) / 2)
            row.update(auc_minus_bdt=round(r["auc"] - bdt["auc"], 4),
                       within_bdt_spread=bool(r["auc"] >= bdt["auc"] - spread))
        rows.append(row)
    widths = results.get("m4l_peak", {})
    original = widths.get("original", {}).get("sigma_core")
    out = {
        "benchmark": "hzz4l", "mode": "full" if args.full else "quick", "command": "treasure " + " ".join(command),
        "limit": "the BDT on engineered observables, same events, same run",
        "bdt_auc": None if bdt is None else round(bdt["auc"], 4),
        "rows": rows,
        "m4l_width": {k: {"sigma_core_gev": round(v["sigma_core"], 3),
                          "over_original": round(v["sigma_core"] / original, 3) if original else None}
                      for k, v in widths.items()},
        "goals": [{"goal": g["goal"], "met": g["met"]} for g in results["goals"]],
        "timings_seconds": {**results["timings_seconds"], "wall": round(time.perf_counter() - t0, 1)},
        "device": results.get("device"), "torch_threads": results.get("torch_threads"),
        "machine": platform.machine(), "python": platform.python_version(),
    }
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
