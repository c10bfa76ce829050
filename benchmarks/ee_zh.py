"""e+e- -> ZH against ZZ and WW at sqrt(s) = 240 GeV, end to end on the FCC-ee presets and the
IDEA-like detector, with the library's own pieces: samples from ``treasure_hf.benchmark.samples``
(``ee_zh``, ``ee_zz``, ``ee_ww``), one tokenizer (``train_tokenizer``: electrons, muons, photons,
jets, tracks, MET, and the tracks' hits), and the transformer rows trained over seeds with the
shipped fine-tuning (``treasure_hf.benchmark.rows.finetune_row``, the path of ``treasure finetune``):

- ``bdt``: the benchmark's BDT on the engineered e+e- observables (``treasure_hf.data.ee.OBSERVABLES``:
  the Z candidate's recoil and mass, missing mass, energy and pT, multiplicities, the two leading
  jets' mass and recoil): the limit the learned rows should approach;
- ``tokens``: the RVQ tokens of every object (flat variant);
- ``hits``: the same tokens with the constituent/hit variant (jet constituents and track hits
  through gated residuals).

One split by event (60/20/20, from ``--seed``); every row, and the tokenizer, trained on the same
training events (the tokenizer on those alone, the early stopping on the validation ones). Prints one
JSON document: per row the test AUC of each seed, their mean and spread, the bootstrap 68%
interval of the first seed, and the difference to the BDT with its paired 95% bootstrap interval
over seeds and test events.

Usage: ``python benchmarks/ee_zh.py [--events 1000] [--seeds 2] [--epochs 6] [--out DIR]`` (the
background is half ZZ and half WW, as many events as the signal). The defaults are a small quick
configuration sized for two CPU cores (10 tracks of 12 hits per event in the sequences).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000, help="generated ZH events (ZZ and WW: half as many each)")
    parser.add_argument("--seeds", type=int, default=2, help="trainings per learned row")
    parser.add_argument("--seed", type=int, default=0, help="sample and split seed")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--tokenizer-steps", type=int, default=200)
    parser.add_argument("--out", default="benchmark_ee_zh", help="work directory (samples are reused)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    import torch

    from treasure_hf import metrics
    from treasure_hf.benchmark import samples as sample_mod
    from treasure_hf.benchmark.bdt import bdt_scores, train_bdt
    from treasure_hf.benchmark.config import ModelSettings
    from treasure_hf.benchmark.rows import finetune_row, shape_for, splits
    from treasure_hf.data import ee
    from treasure_hf.data.events import EventBatch
    from treasure_hf.data.generate import processes
    from treasure_hf.data.h5 import write_h5
    from treasure_hf.data.io import read_events
    from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

    t_start = time.perf_counter()
    out = Path(args.out)
    requests = [
        sample_mod.SampleRequest("ee_zh", args.events, args.seed),
        sample_mod.SampleRequest("ee_zz", args.events // 2, args.seed + 1),
        sample_mod.SampleRequest("ee_ww", args.events // 2, args.seed + 2),
    ]
    t0 = time.perf_counter()
    paths = sample_mod.generate_samples(requests, out / "samples", detector="idea", progress=False)
    t_samples = time.perf_counter() - t0
    events = EventBatch.concat([read_events(paths[r.process]) for r in requests])
    labels = (events["truth/event/process_id"] == processes.PROCESSES["ee_zh"].process_id).astype(np.int64)
    perm = np.random.default_rng(args.seed).permutation(len(labels))
    n_train, n_val = int(0.6 * len(labels)), int(0.2 * len(labels))
    train, val, test = (
        np.sort(perm[:n_train]),
        np.sort(perm[n_train : n_train + n_val]),
        np.sort(perm[n_train + n_val :]),
    )

    t0 = time.perf_counter()
    obs = ee.observables(events.arrays, ee.head_on(240.0)[0])
    x = np.stack([obs[k] for k in ee.OBSERVABLES], 1)
    scores: dict[str, list[np.ndarray]] = {"bdt": []}
    for s in range(args.seeds):
        clf = train_bdt(x[train], labels[train], x[val], labels[val], seed=s)
        scores["bdt"].append(bdt_scores(clf, x[test]))
    t_bdt = time.perf_counter() - t0

    t0 = time.perf_counter()
    tok_args = TokenizerTrainingArguments(
        method="rvq",
        codebook_size=256,
        objects_per_code=0,  # the stated codebook, whatever the data
        num_stages=4,
        encoder_type="identity",
        pt_loss_weight=3.0,
        types=("electrons", "muons", "photons", "jets", "tracks", "met", "hits"),
        steps=args.tokenizer_steps,
        batch_size=1024,
        checkpoint_every=0,
        seed=args.seed,
        max_objects={"electrons": 4, "muons": 4, "photons": 4, "jets": 6, "tracks": 10, "hits": 12},
    )
    train_file = write_h5(out / "train_events.h5", events.select(train), overwrite=True)  # not the test events
    tokenizer = train_tokenizer([train_file], out / "tokenizer", tok_args, progress=False, overwrite=True)
    t_tok = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = splits(
        tokenizer,
        {
            "train": (events.select(train), labels[train]),
            "validation": (events.select(val), labels[val]),
            "test": (events.select(test), labels[test]),
        },
        sub_objects=True,
    )
    timings = {
        "samples": round(t_samples, 1),
        "bdt": round(t_bdt, 1),
        "tokenizer": round(t_tok, 1),
        "encode": round(time.perf_counter() - t0, 1),
    }
    settings = ModelSettings(
        hidden_size=32,
        layers=2,
        heads=4,
        intermediate_size=64,
        epochs=args.epochs,
        batch_size=128,
        patience=4,
        combinations=4,
    )
    rows = {
        "tokens": shape_for(settings, "ids+decoded"),  # the RVQ tokens of every object, decoded kinematics
        "hits": shape_for(settings, "ids+decoded", variant="constituent"),
    }  # + constituents and hits
    val_auc: dict[str, list[float]] = {}
    for key, shape in rows.items():
        t0 = time.perf_counter()
        seeds = [
            finetune_row(data, tokenizer, shape, settings, s, out / "rows" / key / f"seed{s}")
            for s in range(args.seeds)
        ]
        scores[key] = [r.test_scores for r in seeds]
        val_auc[key] = [round(r.val_auc, 4) for r in seeds]
        timings[key] = round(time.perf_counter() - t0, 1)
    y = labels[test]
    result = {
        "benchmark": "ee_zh",
        "sqrt_s_gev": 240.0,
        "detector": "idea",
        "events": {r.process: r.n_events for r in requests},
        "split": {"train": int(len(train)), "validation": int(len(val)), "test": int(len(test))},
        "signal_fraction_test": round(float(y.mean()), 4),
        "rows": {},
    }
    for key, per_seed in scores.items():
        aucs = [metrics.roc_auc(y, s) for s in per_seed]
        _, lo, hi = metrics.bootstrap_ci(metrics.roc_auc, y, per_seed[0])
        row = {
            "auc_seeds": [round(a, 4) for a in aucs],
            "auc": round(float(np.mean(aucs)), 4),
            "auc_std": round(float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0, 4),
            "auc_bootstrap_ci68": [round(lo, 4), round(hi, 4)],
            "rejection_at_50pct": round(
                float(np.mean([metrics.rejection_at_efficiency(y, s, 0.5) for s in per_seed])), 2
            ),
        }
        if key != "bdt":
            paired = metrics.paired_bootstrap(y, per_seed, scores["bdt"], n_bootstrap=300)
            row["auc_minus_bdt_paired_ci95"] = [round(paired[k], 4) for k in ("difference", "low", "high")]
            row["validation_auc_seeds"] = val_auc[key]
        result["rows"][key] = row
    recoil = obs["recoil"][labels == 1]
    found = recoil > 0
    peak, width = metrics.gaussian_core(recoil[found & (np.abs(recoil - 125.0) < 15)], k=1.0)
    result["zh_recoil_core_gev"] = {
        "mean": round(peak, 3),
        "sigma": round(width, 3),
        "with_z_to_ll_candidate": round(float(found.mean()), 4),
    }
    timings["total"] = round(time.perf_counter() - t_start, 1)
    result.update(
        timings_seconds=timings,
        torch_threads=torch.get_num_threads(),
        device="cuda" if torch.cuda.is_available() else "cpu",
        python=platform.python_version(),
    )
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
