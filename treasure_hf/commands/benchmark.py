"""``treasure benchmark hzz4l``: the H -> ZZ* -> 4l tokenization benchmark."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from ..errors import ArgumentError
from .options import nonnegative_int, positive_float, positive_int


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v.replace("_", "")) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _hzz4l(args: argparse.Namespace) -> int:
    from ..benchmark.run import ROW_KEYS, BenchmarkArguments, quick_arguments, run_benchmark

    bench = quick_arguments() if args.quick else BenchmarkArguments()
    over = {}
    if args.events is not None:
        over["events"] = args.events
        over["background_events"] = args.background_events or 4 * args.events
        over["unlabelled_events"] = args.unlabelled_events if args.unlabelled_events is not None else args.events
    else:
        if args.background_events is not None:
            over["background_events"] = args.background_events
        if args.unlabelled_events is not None:
            over["unlabelled_events"] = args.unlabelled_events
    for name in ("labels", "seeds", "seed", "detector", "workers", "threads"):
        if getattr(args, name) is not None:
            over[name] = getattr(args, name)
    if args.rows:
        rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
        unknown = [r for r in rows if r not in ROW_KEYS]
        if unknown:
            raise ArgumentError("--rows", f"unknown row(s) {unknown}; choose from {list(ROW_KEYS)}")
        over["rows"] = rows
    if args.pretrain_on_selected:
        over["pretrain_on_selected"] = True
    if args.data:
        over["data"] = tuple(args.data)
    if args.unlabelled:
        over["unlabelled_data"] = tuple(args.unlabelled)
    if args.epochs is not None:
        over["model"] = replace(bench.model, epochs=args.epochs)
    if args.pretrain_steps is not None:
        over["model"] = replace(over.get("model", bench.model), pretrain_steps=args.pretrain_steps)
    if args.finetune_lr is not None:
        over["model"] = replace(over.get("model", bench.model), finetune_learning_rate=args.finetune_lr)
    model_over = {k: v for k, v in (("pair_features", args.pair_features),
                                     ("kinematic_combinations", args.combinations),
                                     ("pair_readout", True if args.pair_readout else None)) if v is not None}
    if model_over:
        over["model"] = replace(over.get("model", bench.model), **model_over)
    tok_over = {k: v for k, v in (("steps", args.tokenizer_steps), ("stages", args.tokenizer_stages),
                                   ("encoder_type", args.tokenizer_encoder), ("pt_weight", args.tokenizer_pt_weight))
                if v is not None}
    if tok_over:  # an explicit encoder or pT weight applies to every method
        per_method = {m: {k: v for k, v in o.items() if k not in tok_over}
                      for m, o in bench.tokenizer.per_method.items()}
        over["tokenizer"] = replace(bench.tokenizer, per_method=per_method, **tok_over)
    bench = replace(bench, **over)
    report = run_benchmark(bench, args.out, progress=args.progress)
    if not args.quiet:
        content = json.loads((__import__("pathlib").Path(args.out) / "results.json").read_text())
        summary = {"rows": {r["name"]: round(r["auc"], 4) for r in content["rows"]},
                   "goals": {g["goal"]: g["met"] for g in content["goals"]},
                   "seconds": report["timings_seconds"]["total"], "report": f"{args.out}/report.md"}
        json.dump(summary, sys.stdout, indent=1)
        print()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="physics benchmarks of the tokenizations and models",
                       description="Physics benchmarks. `treasure benchmark hzz4l --help` for the H -> ZZ* -> 4l one.")
    bsub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    h = bsub.add_parser(
        "hzz4l", help="H -> ZZ* -> 4l against ZZ*: BDT, continuous, VQ/FSQ/RVQ/PQ tokens, foundation model",
        description="Generate hzz4l (signal), zz4l (background) and mix (unlabelled) with Pythia 8 and the "
                    "parametric detector (or read --data), apply the four-lepton selection of the detector's experiment "
                    "(ATLAS or CMS, as it applies it), split the "
                    "selected events once (60/20/20), then train and evaluate every row on the same events: a BDT on "
                    "engineered observables, flat and per-type continuous transformers, transformers on VQ-VAE, FSQ, "
                    "RVQ and PQ tokens, the hierarchical and constituent variants on the best tokenizer, and a "
                    "masked-object pretrained foundation model against scratch at each --labels size. Writes "
                    "results.json, report.md, roc.png, m4l.png and label_efficiency.png to --out. On a GPU, run it "
                    "with `accelerate launch -m treasure_hf.cli benchmark hzz4l ...` or plainly: CUDA is used when "
                    "visible.")
    h.add_argument("--out", required=True, help="report directory (generated samples and tokenizers go to OUT/work)")
    h.add_argument("--quick", action="store_true",
                   help="the demo: 6,000 signal, 24,000 background and 6,000 mix events, small tokenizers and "
                        "models, 2 seeds, labels 100,300,1000 (about 11 minutes on 2 idle cores)")
    h.add_argument("--events", type=positive_int,
                   help="generated signal events (default 100,000; then background 4x and mix 1x unless set)")
    h.add_argument("--background-events", type=positive_int, help="generated zz4l events")
    h.add_argument("--unlabelled-events", type=nonnegative_int, help="generated mix events for pretraining")
    h.add_argument("--labels", type=_ints, help="labelled-set sizes of the label-efficiency curve, e.g. 1000,10000")
    h.add_argument("--seeds", type=positive_int, help="trainings per row (default 3; 2 with --quick)")
    h.add_argument("--rows", help=f"comma-separated subset of the rows (default all): bdt, flat, per_type, vq, fsq, "
                                  "rvq, pq, hierarchical, constituent, foundation")
    h.add_argument("--data", nargs="+", metavar="PATH",
                   help="labelled events (HDF5 or PCDF with truth/event/process_id) instead of generating")
    h.add_argument("--unlabelled", nargs="+", metavar="PATH", help="unlabelled events for pretraining (with --data)")
    h.add_argument("--seed", type=nonnegative_int, help="seed of the samples and of the split (default 0)")
    h.add_argument("--detector", choices=("atlas", "cms"), help="detector response of generated samples")
    h.add_argument("--workers", type=positive_int, help="generation processes (a Dask LocalCluster when > 1)")
    h.add_argument("--threads", type=positive_int,
                   help="torch threads for training (default: torch's choice; 1 with --quick, where small models "
                        "gain nothing from a second thread shared with the generator and other jobs)")
    h.add_argument("--epochs", type=positive_int, help="maximum epochs of each classifier training")
    h.add_argument("--pretrain-steps", type=positive_int, help="masked-modeling pretraining steps")
    h.add_argument("--finetune-lr", type=positive_float,
                   help="learning rate of the pretrained encoder when fine-tuning (default 1e-4; the new pooler "
                        "and classifier train at 1e-3)")
    h.add_argument("--pretrain-on-selected", action="store_true",
                   help="pretrain on the selected training events too (their labels unused), besides the mix")
    h.add_argument("--tokenizer-steps", type=positive_int, help="optimisation steps of each tokenizer type")
    h.add_argument("--tokenizer-stages", type=positive_int,
                   help="tokens per object of RVQ, PQ and FSQ (default 8; 4 with --quick)")
    h.add_argument("--tokenizer-encoder", choices=("mlp", "identity"),
                   help="every quantizer's encoder: an MLP autoencoder, or identity (the codebooks quantize the "
                        "standardised features; RVQ is then residual k-means). Default: identity for RVQ "
                        "(pT weight 3), mlp for VQ-VAE, FSQ and PQ (pT weight 30)")
    h.add_argument("--tokenizer-pt-weight", type=positive_float,
                   help="weight of the pT (log-column) reconstruction error against the other features, "
                        "for every quantizer")
    h.add_argument("--pair-features", choices=("none", "kinematic"),
                   help="ParT-style attention bias from each pair of objects' kinematics (default kinematic; token "
                        "rows use the kinematics decoded from their tokens)")
    h.add_argument("--combinations", type=nonnegative_int, metavar="K",
                   help="learned four-vector combinations in the classifier's pooler (default 8; 0 disables)")
    h.add_argument("--pair-readout", action="store_true",
                   help="also attention-pool the pairs of objects (their masses: Z candidates) into the pooler")
    h.set_defaults(func=_hzz4l)
