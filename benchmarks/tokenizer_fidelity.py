"""Tokenizer fidelity: resolution and codebook use of a trained tokenizer on held-out events.

Trains a tokenizer on ``--train`` (or takes ``--tokenizer``), runs ``treasure tokenizer-report`` on
``--test`` and prints one JSON document: per type the resolution (sigma68; relative for pT,
absolute for eta, phi and the constituents' eta_rel and phi_rel), the number of held-out objects
and the codebook utilisation per stage, next to

- the goals of the issue: pT resolution <= 0.5% for leptons and <= 1% for jets, utilisation >= 0.9
  for leptons at <= 3 x 1024 codes;
- the utilisation ceiling of the same number of held-out objects, measured in this run:
  ``1 - (1 - 1/K)^N`` is the expected fraction of K codes that N objects reach when the codes are
  used uniformly; a held-out set of 1,500 leptons cannot show more than 0.77 of 1,024 codes,
  however good the codebook.

Usage::

    python benchmarks/tokenizer_fidelity.py --train mix.h5 zz4l.h5 --test zz4l_test.h5 \\
        --types electrons,muons,jets,met,constituents --steps 250 --batch-size 2048 --pt-weight 100 \\
        --out /tmp/fid/tok
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

GOALS = {
    "pt_sigma68": {"electrons": 0.005, "muons": 0.005, "jets": 0.01},
    "utilisation": {"electrons": 0.9, "muons": 0.9},
}


def utilisation_ceiling(n_objects: int, codebook_size: int) -> float:
    """Expected fraction of ``codebook_size`` uniformly used codes hit by ``n_objects`` draws."""
    return 1.0 - (1.0 - 1.0 / codebook_size) ** n_objects


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", nargs="+", help="common-format files to train on (omit with --tokenizer)")
    p.add_argument("--test", nargs="+", required=True, help="held-out common-format files")
    p.add_argument("--tokenizer", help="an already trained tokenizer directory (skips training)")
    p.add_argument("--out", default="tokenizer_fidelity", help="tokenizer and report directory")
    p.add_argument("--method", default="rvq")
    p.add_argument("--codebook-size", type=int, default=1024)
    p.add_argument("--stages", type=int, default=3)
    p.add_argument("--types", default="electrons,muons,jets,met")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--pt-weight", type=float, default=100.0)
    p.add_argument("--events", type=int, default=100_000, help="held-out events used by the report")
    args = p.parse_args()

    import torch

    from treasure_hf.tokenization.report import tokenizer_report
    from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

    out = Path(args.out)
    result: dict = {
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    tok_dir = Path(args.tokenizer) if args.tokenizer else out / "tokenizer"
    if not args.tokenizer:
        targs = TokenizerTrainingArguments(
            method=args.method,
            codebook_size=args.codebook_size,
            objects_per_code=0,  # the stated codebook, whatever the data
            num_stages=args.stages,
            types=tuple(args.types.split(",")),
            steps=args.steps,
            batch_size=args.batch_size,
            pt_loss_weight=args.pt_weight,
            checkpoint_every=0,
        )
        t0 = time.perf_counter()
        train_tokenizer(args.train, tok_dir, targs, progress=False)
        result["train_seconds"] = round(time.perf_counter() - t0, 1)
        result["training"] = {k: v for k, v in vars(args).items() if k not in ("test", "tokenizer", "out")}
    t0 = time.perf_counter()
    report = tokenizer_report(tok_dir, args.test, out / "report", n_events=args.events)
    result["report_seconds"] = round(time.perf_counter() - t0, 1)
    result["n_events"] = report["n_events"]
    types = {}
    for t, r in report["types"].items():
        row = {
            "n_objects": r["n_objects"],
            "method": r["method"],
            "codebook_size": r["codebook_size"],
            "sigma68": {f: round(v["sigma68"], 5) for f, v in r["fields"].items()},
            "utilisation": round(r["utilisation"], 4),
            "utilisation_per_stage": [round(s["utilisation"], 4) for s in r["stages"]],
            "perplexity_per_stage": [round(s["perplexity"], 1) for s in r["stages"]],
            "utilisation_ceiling": round(utilisation_ceiling(r["stages"][0]["tokens"], r["codebook_size"]), 4),
        }
        for goal, by_type in GOALS.items():
            if t in by_type:
                value = row["sigma68"].get("pt") if goal == "pt_sigma68" else row["utilisation"]
                row[f"goal_{goal}"] = by_type[t]
                row[f"meets_{goal}"] = bool(value <= by_type[t] if goal == "pt_sigma68" else value >= by_type[t])
        types[t] = row
    result["types"] = types
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
