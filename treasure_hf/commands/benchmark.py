"""``treasure benchmark hzz4l``: the H -> ZZ* -> 4l tokenization benchmark; ``treasure benchmark
foundation``: pretraining against scratch on two tasks, and transfer between the detectors."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from ..errors import ArgumentError
from .options import nonnegative_int, positive_int


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v.replace("_", "")) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def arguments(args: argparse.Namespace):
    """The :class:`~treasure_hf.benchmark.config.BenchmarkArguments` of the command line: a
    configuration, then the options given."""
    from ..benchmark.config import BIT_BUDGETS, CONFIGURATIONS, METHODS
    from ..benchmark.run import FAMILIES

    chosen = [c for c in ("quick", "medium") if getattr(args, c)]
    if len(chosen) > 1:
        raise ArgumentError("--quick", "choose one of --quick and --medium")
    bench = CONFIGURATIONS[chosen[0] if chosen else "full"]()
    over = {
        k: getattr(args, k)
        for k in (
            "events",
            "background_events",
            "test_events",
            "unlabelled_events",
            "labels",
            "seeds",
            "seed",
            "test_seed",
            "detector",
            "workers",
            "threads",
            "bits",
            "methods",
            "rows",
        )
        if getattr(args, k) is not None
    }
    for name, allowed in (("rows", FAMILIES), ("methods", METHODS), ("bits", BIT_BUDGETS)):
        bad = [v for v in over.get(name, ()) if v not in allowed]
        if bad:
            raise ArgumentError(f"--{name}", f"unknown {bad}; choose from {list(allowed)}")
    if args.events is not None and args.background_events is None:
        over["background_events"] = 4 * args.events
    model = {k: v for k, v in (("epochs", args.epochs), ("pretrain_steps", args.pretrain_steps)) if v is not None}
    if model:
        over["model"] = replace(bench.model, **model)
    if args.tokenizer_steps is not None:
        over["tokenizer"] = replace(bench.tokenizer, steps=args.tokenizer_steps)
    return replace(bench, **over)


def _hzz4l(args: argparse.Namespace) -> int:
    from ..benchmark.run import run_benchmark

    report = run_benchmark(arguments(args), args.out, progress=args.progress, overwrite=args.overwrite)
    json.dump({"goals": report.get("goals"), "out": args.out}, sys.stdout, indent=1, default=str)
    print()
    return 0


def foundation_arguments(args: argparse.Namespace):
    """The :class:`~treasure_hf.benchmark.foundation.FoundationArguments` of the command line."""
    from ..benchmark.foundation import CONFIGURATIONS, TASKS
    from ..training.arguments import MASKED_OBJECTIVES

    chosen = [c for c in ("quick", "medium") if getattr(args, c)]
    if len(chosen) > 1:
        raise ArgumentError("--quick", "choose one of --quick and --medium")
    bench = CONFIGURATIONS[chosen[0] if chosen else "full"]()
    over = {
        k: getattr(args, k)
        for k in (
            "corpus_events",
            "labels",
            "transfer_labels",
            "seeds",
            "seed",
            "test_seed",
            "corpus_seed",
            "workers",
            "threads",
            "tasks",
            "objectives",
        )
        if getattr(args, k) is not None
    }
    for name, allowed in (("tasks", tuple(TASKS)), ("objectives", MASKED_OBJECTIVES)):
        bad = [v for v in over.get(name, ()) if v not in allowed]
        if bad:
            raise ArgumentError(f"--{name}", f"unknown {bad}; choose from {list(allowed)}")
    model = {k: v for k, v in (("epochs", args.epochs), ("pretrain_steps", args.pretrain_steps)) if v is not None}
    if model:
        over["model"] = replace(bench.model, **model)
    return replace(bench, **over)


def _foundation(args: argparse.Namespace) -> int:
    from ..benchmark.foundation import run_foundation

    report = run_foundation(foundation_arguments(args), args.out, progress=args.progress, overwrite=args.overwrite)
    json.dump(
        {"goals": report.get("goals"), "out": args.out, "encoder": f"{args.out}/encoder"},
        sys.stdout,
        indent=1,
        default=str,
    )
    print()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="physics benchmarks of the tokenizations and models",
        description="Physics benchmarks. `treasure benchmark hzz4l --help` for the H -> ZZ* -> 4l one, "
        "`treasure benchmark foundation --help` for pretraining and transfer.",
    )
    bsub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    h = bsub.add_parser(
        "hzz4l",
        help="H -> ZZ* -> 4l against ZZ*: which event tokenization keeps the physics",
        description="Generate hzz4l (signal), zz4l (background) and mix (unlabelled) development samples and, "
        "apart, with their own seeds, the test samples, with Pythia 8 and the parametric detector; apply "
        "the four-lepton selection of the detector's experiment; split the development events into "
        "training and validation; then train every row over --seeds seeds (tokenizer, initialisation "
        "and batch order): a BDT on engineered observables, continuous transformers, and for every "
        "tokenization method (VQ, FSQ, RVQ, PQ) and bit budget (8, 16, 32, 64 bits per object) a "
        "transformer of the token ids alone and one of the ids with the kinematics decoded from them, "
        "the hierarchical variant and a pretrained foundation model against scratch on the tokenizer "
        "the validation events pick. Every learned row is trained by the shipped `treasure finetune` "
        "and `treasure pretrain` functions. Writes results.json, report.md, auc_vs_bits.png, "
        "m4l_vs_bits.png, roc.png and label_efficiency.png to --out; a rerun with the same --out "
        "skips what is done. Configurations: --quick (make demo, about 15 minutes on 2 cores), "
        "--medium (the README's numbers, 1 h 30 min on 2 cores from nothing: samples 13 minutes, "
        "tokenizers and token rows 58, the other rows 20, on two worker processes; resumable, and "
        "--rows, --methods and --bits take pieces), neither: full (for a GPU).",
    )
    h.add_argument("--out", required=True, help="report directory (samples, tokenizers and rows go below it)")
    h.add_argument("--quick", action="store_true", help="the demo configuration")
    h.add_argument("--medium", action="store_true", help="the README's configuration")
    h.add_argument("--events", type=positive_int, help="generated development signal events (background 4x)")
    h.add_argument("--background-events", type=positive_int, help="generated development zz4l events")
    h.add_argument("--test-events", type=positive_int, help="generated test signal events (background 4x)")
    h.add_argument("--unlabelled-events", type=nonnegative_int, help="generated mix events for pretraining")
    h.add_argument("--labels", type=_ints, help="label counts of the foundation rows, e.g. 100,1000")
    h.add_argument("--seeds", type=positive_int, help="seeds per row (tokenizer, initialisation, batch order)")
    h.add_argument("--bits", type=_ints, help="bit budgets per object, from 8,16,32,64")
    h.add_argument("--methods", type=_names, help="tokenization methods, from vq,fsq,rvq,pq")
    h.add_argument(
        "--rows",
        type=_names,
        help="row families, from bdt,continuous,tokens,hierarchical,foundation (a later run with the "
        "same --out adds the others)",
    )
    h.add_argument("--seed", type=nonnegative_int, help="seed of the development samples and their split")
    h.add_argument("--test-seed", type=nonnegative_int, help="seed of the test samples (and +1)")
    h.add_argument("--detector", choices=("atlas", "cms"), help="detector response of the generated samples")
    h.add_argument(
        "--workers",
        type=positive_int,
        help="processes that generate the samples and train the rows side by side (a Dask LocalCluster when > 1)",
    )
    h.add_argument("--threads", type=positive_int, help="torch threads for training")
    h.add_argument("--epochs", type=positive_int, help="maximum epochs of each classifier training")
    h.add_argument("--pretrain-steps", type=positive_int, help="masked-modeling pretraining steps")
    h.add_argument("--tokenizer-steps", type=positive_int, help="optimisation steps of each tokenizer type")
    h.add_argument(
        "--overwrite", action="store_true", help="start afresh in an --out that holds a run with other settings"
    )
    h.set_defaults(func=_hzz4l)

    f = bsub.add_parser(
        "foundation",
        help="does pretraining pay: label efficiency on two tasks, transfer between detectors",
        description="Generate an unlabelled corpus (the mix preset) on the ATLAS-like and the CMS-like detector and, "
        "with their own seeds, the development and test samples of two tasks (H -> ZZ* -> 4l against "
        "ZZ*, t tbar -> l + jets against W + jets) on both; train one tokenizer on the corpus; pretrain "
        "the same encoder with each objective (--objectives: codes, continuous) on the same corpus and "
        "steps; at each label count fine-tune it, train the same architecture from scratch and a linear "
        "probe of the frozen encoder over --seeds seeds; then, with the objective the validation events "
        "pick, fine-tune on one detector's labels and test on the other's events (with and without the "
        "experiment token, pretrained on both detectors or on one). Every training goes through "
        "`treasure pretrain` and `treasure finetune`. Writes results.json, report.md, "
        "label_efficiency.png/.json, transfer_gap.png/.json and the publishable encoder OUT/encoder "
        "(`treasure push OUT/encoder --repo-id ...`). A rerun with the same --out continues where the "
        "last one stopped. Configurations: --quick, --medium (2 cores, in pieces), neither: full (a GPU).",
    )
    f.add_argument("--out", required=True, help="report directory (samples, tokenizer, encoders and rows go below)")
    f.add_argument("--quick", action="store_true", help="the small configuration")
    f.add_argument("--medium", action="store_true", help="the medium configuration (>= 200,000 corpus events)")
    f.add_argument("--corpus-events", type=positive_int, help="unlabelled corpus events per detector")
    f.add_argument("--labels", type=_ints, help="label counts of the ladder, e.g. 100,1000")
    f.add_argument("--transfer-labels", type=positive_int, help="label count of the transfer study")
    f.add_argument("--seeds", type=positive_int, help="fine-tuning seeds per row")
    f.add_argument("--tasks", type=_names, help="tasks, from hzz4l,ljets")
    f.add_argument("--objectives", type=_names, help="pretraining objectives, from codes,continuous,codes+continuous")
    f.add_argument("--seed", type=nonnegative_int, help="seed of the development samples and their split")
    f.add_argument("--test-seed", type=nonnegative_int, help="seed of the test samples")
    f.add_argument("--corpus-seed", type=nonnegative_int, help="seed of the corpus")
    f.add_argument("--workers", type=positive_int, help="generation processes")
    f.add_argument("--threads", type=positive_int, help="torch threads for training")
    f.add_argument("--epochs", type=positive_int, help="maximum epochs of each fine-tuning")
    f.add_argument("--pretrain-steps", type=positive_int, help="pretraining steps of every encoder")
    f.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds other settings")
    f.set_defaults(func=_foundation)
