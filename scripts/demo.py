"""The main job of ``make demo``: the H -> ZZ* -> 4l tokenization benchmark, quick version.

1. Every PHYSLITE and NanoAOD file in ``TREASURE_TESTDATA`` (default ``../shared/testdata``) is
   converted to common HDF5, then HDF5 -> PCDF -> HDF5; the two HDF5 files must hold identical
   events and every output must pass ``treasure validate`` (a few seconds; skipped, saying so,
   where the folder is absent, as in a user's clone).
2. ``treasure benchmark hzz4l --quick --out OUT/hzz4l``: hzz4l, zz4l and mix samples generated
   with Pythia 8 and the ATLAS-like detector, the four-lepton selection, and every row of the
   benchmark (BDT, continuous, VQ/FSQ/RVQ/PQ tokens of ids alone and of ids + decoded kinematics,
   hierarchical, foundation model against scratch), with progress bars; the table, the goals and
   the plots land in ``OUT/hzz4l/`` (report.md, results.json, auc_vs_bits.png, m4l_vs_bits.png,
   roc.png, label_efficiency.png).

Prints one JSON summary (also written to ``OUT/summary.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_FILES = {  # file -> experiment; the tutorial file is no PHYSLITE/NanoAOD
    "atlas_physlite_mc_100ev.ttree.root": "atlas",
    "atlas_physlite_mc_100ev.rntuple.root": "atlas",
    "cms_nanoaod_2015_ttbar_200ev.root": "cms",
    "cms_nanoaod_2015_ttbar_10ev.rntuple.root": "cms",
    "cms_nanoaod_dy_40ev.root": "cms",
    "cms_nanoaod_v15_tt_200ev.root": "cms",
    "cms_pfnano_10ev.root": "cms",
    "cms_nanoaod_empty.root": "cms",
    "nano_dimuon.root": "cms",
}


def round_trip_real_files(testdata: Path, out: Path) -> dict:
    from treasure_hf import read_events
    from treasure_hf.data.io import h5_to_pcdf, pcdf_to_h5
    from treasure_hf.data.sources.convert import convert_files
    from treasure_hf.data.validate import validate

    rows = {}
    for name, experiment in REAL_FILES.items():
        src = testdata / name
        if not src.exists():
            continue
        t0 = time.perf_counter()
        result = convert_files(experiment, [src], out / "converted", fmt="h5", progress=False)[0]
        h5 = Path(result.task.output)
        pcdf, again = out / "pcdf" / name.replace(".root", ""), out / "again" / f"{name.replace('.root', '')}.h5"
        h5_to_pcdf(h5, pcdf, progress=False)
        pcdf_to_h5(pcdf, again, progress=False)
        first, second = read_events(h5), read_events(again)
        problems = [str(p) for path in (h5, pcdf, again) for p in validate(path)]
        rows[name] = {
            "experiment": experiment,
            "events": first.n_events,
            "round_trip_identical": first.equals(second),
            "problems": problems,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        if not rows[name]["round_trip_identical"] or problems:
            raise SystemExit(f"demo failed on {name}: {rows[name]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo_out")
    parser.add_argument("--skip-conversion", action="store_true", help="leave out step 1")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    t_start = time.perf_counter()
    testdata = Path(os.environ.get("TREASURE_TESTDATA", REPO.parent / "shared" / "testdata"))
    if args.skip_conversion:
        summary["real_files"] = "skipped (--skip-conversion)"
    elif testdata.is_dir():
        t0 = time.perf_counter()
        rows = round_trip_real_files(testdata, out)
        summary["real_files"] = {
            "files": len(rows),
            "all_identical_and_valid": True,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    else:
        summary["real_files"] = f"skipped: no experiment files at {testdata} (set TREASURE_TESTDATA)"

    from treasure_hf.cli import main as treasure

    bench_out = out / "hzz4l"
    argv = ["benchmark", "hzz4l", "--quick", "--out", str(bench_out)]
    status = treasure((["-q"] if args.quiet else []) + argv)
    if status:
        raise SystemExit(f"treasure {' '.join(argv)} failed with status {status}")
    content = json.loads((bench_out / "results.json").read_text())
    summary["benchmark"] = {
        "command": "treasure " + " ".join(argv),
        "auc": {r["name"]: round(r["auc"], 4) for r in content["rows"]},
        "goals": {g["goal"]: g["met"] for g in content["goals"]},
        "m4l_peak_sigma_gev": {
            "original": round(content["m4l_peak"]["original"]["sigma_core"], 3),
            **{d["key"]: [round(w, 3) for w in d["m4l_sigma_core_per_seed"]] for d in content["m4l_peak"]["decoded"]},
        },
        "selected_events": content["selected"],
        "report": str(bench_out / "report.md"),
        "seconds": content["timings_seconds"]["total"],
    }
    summary["seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
