"""The main job of ``make demo``, as it stands: real experiment files into the common format and
back, bit for bit, every output validated; plus a generated sample and a tokenizer trained on it.

1. Every PHYSLITE and NanoAOD file in ``TREASURE_TESTDATA`` (default ``../shared/testdata``) is
   converted to common HDF5, then HDF5 -> PCDF -> HDF5; the two HDF5 files must hold identical
   events and every output must pass ``treasure validate``. Where the folder is absent (a user's
   clone), this step says so and is skipped.
2. A small ``zjets`` sample is generated with Pythia 8 and the ATLAS-like detector (PCDF + HDF5),
   validated, and its dilepton mass peak is measured.
3. An RVQ tokenizer is trained on it, and its fidelity report written.

Prints one JSON summary (also written to ``OUT/summary.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL_FILES = {  # file -> experiment; the tutorial file is no PHYSLITE/NanoAOD
    "atlas_physlite_mc_100ev.ttree.root": "atlas", "atlas_physlite_mc_100ev.rntuple.root": "atlas",
    "cms_nanoaod_2015_ttbar_200ev.root": "cms", "cms_nanoaod_2015_ttbar_10ev.rntuple.root": "cms",
    "cms_nanoaod_dy_40ev.root": "cms", "cms_nanoaod_v15_tt_200ev.root": "cms", "cms_pfnano_10ev.root": "cms",
    "cms_nanoaod_empty.root": "cms",
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
        rows[name] = {"experiment": experiment, "events": first.n_events,
                      "objects": {g: int(first.mask(g).sum()) for g in ("electrons", "muons", "jets", "tracks")},
                      "round_trip_identical": first.equals(second), "problems": problems,
                      "seconds": round(time.perf_counter() - t0, 2)}
        if not rows[name]["round_trip_identical"] or problems:
            raise SystemExit(f"demo failed on {name}: {rows[name]}")
    return rows


def dilepton_peak(batch) -> float | None:
    """Mass of the leading opposite-sign same-flavour pair, per event; the mode near 91 GeV."""
    masses = []
    for g in ("electrons", "muons"):
        m = batch.mask(g)
        pt, eta, phi, q = (batch[f"common/{g}/{f}"] for f in ("pt", "eta", "phi", "charge"))
        ok = m[:, 0] & m[:, 1] & (q[:, 0] * q[:, 1] < 0)
        px, py, pz = (pt * np.cos(phi)), (pt * np.sin(phi)), (pt * np.sinh(eta))
        e = pt * np.cosh(eta)
        s = lambda a: a[:, 0] + a[:, 1]  # noqa: E731
        m2 = s(e) ** 2 - s(px) ** 2 - s(py) ** 2 - s(pz) ** 2
        masses.append(np.sqrt(np.clip(m2[ok], 0, None)))
    masses = np.concatenate(masses)
    window = masses[(masses > 81) & (masses < 101)]
    return float(np.median(window)) if len(window) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo_out")
    parser.add_argument("--events", type=int, default=2000, help="generated zjets events")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    progress = not args.quiet
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    testdata = Path(os.environ.get("TREASURE_TESTDATA", REPO.parent / "shared" / "testdata"))
    if testdata.is_dir():
        summary["real_files"] = round_trip_real_files(testdata, out)
    else:
        summary["real_files"] = f"skipped: no experiment files at {testdata} (set TREASURE_TESTDATA)"

    from treasure_hf import read_events
    from treasure_hf.data.generate.generator import generate
    from treasure_hf.data.validate import validate

    t0 = time.perf_counter()
    pcdf = generate("zjets", args.events, seed=7, out=out / "zjets.pcdf", h5=out / "zjets.h5", workers=1,
                    progress=progress)
    batch = read_events(out / "zjets.h5")
    summary["generated"] = {"process": "zjets", "events": batch.n_events,
                            "valid": validate(pcdf) == [] and validate(out / "zjets.h5") == [],
                            "dilepton_peak_gev": dilepton_peak(batch),
                            "seconds": round(time.perf_counter() - t0, 1)}

    from treasure_hf.tokenization.report import tokenizer_report
    from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

    t0 = time.perf_counter()
    targs = TokenizerTrainingArguments(method="rvq", codebook_size=256, num_stages=3, steps=600, batch_size=1024,
                                       types=("electrons", "muons", "jets", "met"), checkpoint_every=0)
    train_tokenizer([out / "zjets.h5"], out / "tokenizer", targs, progress=progress)
    report = tokenizer_report(out / "tokenizer", [out / "zjets.h5"], out / "tokenizer_report")
    summary["tokenizer"] = {t: {"pt_sigma68_relative": r["fields"]["pt"]["sigma68"], "utilisation": r["utilisation"]}
                            for t, r in report["types"].items()}
    summary["tokenizer"]["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
