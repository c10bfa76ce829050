"""``treasure train-tokenizer`` and ``treasure tokenizer-report``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..data import schema
from ..errors import ArgumentError
from .options import add_overwrite, fraction, nonnegative_int, positive_float, positive_int


def _train(args: argparse.Namespace) -> int:
    from ..tokenization.training import TokenizerTrainingArguments, train_tokenizer

    types = tuple(t.strip() for t in args.types.split(",")) if args.types else TokenizerTrainingArguments.types
    unknown = [t for t in types if t not in schema.GROUPS or t == "event"]
    if unknown:
        raise ArgumentError(
            "--types", f"unknown type(s) {unknown}; choose from {[g for g in schema.GROUPS if g != 'event']}"
        )
    orphans = [t for t in types if schema.GROUPS[t].kind == "sub" and schema.GROUPS[t].parent not in types]
    if orphans:
        raise ArgumentError(
            "--types",
            f"{orphans[0]} need their parent {schema.GROUPS[orphans[0]].parent} in --types "
            "(their codes are aligned with the parent's tokens)",
        )
    targs = TokenizerTrainingArguments(
        method=args.method,
        codebook_size=args.codebook_size,
        num_stages=args.stages,
        latent_dim=args.latent_dim,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        encoder_type=args.encoder,
        types=types,
        pt_loss_weight=args.pt_weight,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_objects_per_type=args.max_train_objects,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        eval_every=args.eval_every,
        patience=args.patience,
        min_delta=args.min_delta,
        patience_fraction=args.patience_fraction,
        cooldown=args.cooldown,
        kmeans_tolerance=args.kmeans_tolerance,
        cpu_threads=args.cpu_threads,
        objects_per_code=args.objects_per_code,
    )
    train_tokenizer(args.data, args.out, targs, resume=args.resume, progress=args.progress, overwrite=args.overwrite)
    log = json.loads((Path(args.out) / "training_log.json").read_text())
    summary = {t: v["final"] for t, v in log["types"].items()}
    json.dump(summary, sys.stdout, indent=1)
    print()
    return 0


def _report(args: argparse.Namespace) -> int:
    from ..tokenization.report import tokenizer_report

    report = tokenizer_report(args.tokenizer, args.data, args.out, n_events=args.events, overwrite=args.overwrite)
    summary = {
        t: {
            "pt_sigma68_rel": v["fields"].get("pt", {}).get("sigma68"),
            "utilisation": v["utilisation"],
            "perplexity": v["perplexity"],
            **{f"{f}_sigma68": v["fields"][f]["sigma68"] for f in ("eta_rel", "phi_rel") if f in v["fields"]},
        }
        for t, v in report["types"].items()
    }
    json.dump(summary, sys.stdout, indent=1)
    print()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-tokenizer",
        help="train one quantizer per object type and save an EventTokenizer",
        description="Train a VQ-VAE, FSQ, RVQ or PQ quantizer for each object type on common-format events "
        "(HDF5 or PCDF) with Accelerate (CPU here; `accelerate launch` on GPUs) and save the "
        "EventTokenizer to --out (AutoTokenizer.from_pretrained loads it), swapped in whole when "
        "training ends. Checkpoints go to .OUT.partial/checkpoints while it runs (then "
        "OUT/checkpoints); --resume continues from them. Jet constituents and track hits are "
        "encoded relative to their parent (pT / pT(parent), eta - eta(parent), wrapped phi - "
        "phi(parent)).",
    )
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="common-format HDF5 files or PCDF dirs")
    p.add_argument("--method", choices=("vq", "fsq", "rvq", "pq"), default="rvq")
    p.add_argument(
        "--codebook-size", type=positive_int, default=1024, help="codes per stage, at most (default %(default)s)"
    )
    p.add_argument(
        "--objects-per-code",
        type=float,
        default=4.0,
        help="VQ, RVQ, PQ: a type with fewer training objects than this many per code gets a smaller "
        "power-of-two codebook (at least 16; logged), so that a stage does not memorise its objects; "
        "0: --codebook-size for every type (default %(default)s)",
    )
    p.add_argument(
        "--stages", type=positive_int, default=3, help="RVQ stages, PQ groups or FSQ codebooks (default %(default)s)"
    )
    p.add_argument(
        "--types",
        help="comma-separated object types (default: electrons,muons,jets,taus,photons,met); "
        "add constituents (with jets) or hits (with tracks) for a sub-object quantizer "
        "whose codes come aligned with the parent's tokens. Whatever the types, the "
        "feature scaler of the constituents/hits the data carry is fitted and saved "
        "(for return_constituents=True)",
    )
    p.add_argument(
        "--encoder",
        choices=("mlp", "transformer", "identity"),
        default="mlp",
        help="mlp: each object alone; transformer: the objects of the event in context; identity: "
        "no network, the codebooks quantize the standardised features (RVQ: residual k-means)",
    )
    p.add_argument("--latent-dim", type=positive_int, default=12)
    p.add_argument(
        "--pt-weight",
        type=positive_float,
        default=1.0,
        help="weight of the pT reconstruction error against the other features (default %(default)s)",
    )
    p.add_argument("--hidden-size", type=positive_int, default=128)
    p.add_argument("--layers", type=positive_int, default=2, help="hidden layers of encoder and decoder")
    p.add_argument(
        "--steps",
        type=positive_int,
        default=2000,
        help="most optimisation steps per type (default %(default)s); training stops earlier when the "
        "held-out loss stops improving",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=2048,
        help="objects per step, capped at the type's training objects (default %(default)s)",
    )
    p.add_argument(
        "--eval-every", type=positive_int, default=25, help="steps between held-out evaluations (default %(default)s)"
    )
    p.add_argument(
        "--patience",
        type=nonnegative_int,
        default=3,
        help="evaluations without a --min-delta improvement of the held-out reconstruction loss before "
        "the learning-rate cooldown and the stop; 0 runs all --steps (default %(default)s)",
    )
    p.add_argument(
        "--patience-fraction",
        type=fraction,
        default=0.5,
        help="... and for at least this fraction of the steps taken (default %(default)s)",
    )
    p.add_argument(
        "--min-delta",
        type=fraction,
        default=0.01,
        help="relative improvement of the held-out loss that counts (default %(default)s)",
    )
    p.add_argument(
        "--cooldown",
        type=fraction,
        default=0.1,
        help="final linear learning-rate decay, as a fraction of the steps taken (default %(default)s)",
    )
    p.add_argument(
        "--kmeans-tolerance",
        type=fraction,
        default=0.02,
        help="--encoder identity: stop when at most this fraction of held-out objects changed codes "
        "between evaluations (default %(default)s)",
    )
    p.add_argument(
        "--cpu-threads",
        type=nonnegative_int,
        default=1,
        help="torch threads while training on the CPU; 0: one per core (default %(default)s)",
    )
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--max-train-objects", type=positive_int, default=500_000, help="objects (or events) read per type")
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=500)
    p.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"), default="no")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoints of an interrupted run (.OUT.partial) or of OUT/checkpoints",
    )
    p.add_argument("--out", required=True, help="directory of the tokenizer (swapped in whole when training ends)")
    add_overwrite(p)
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "tokenizer-report",
        help="resolution, codebook use and plots of decoded against original objects",
        description="Tokenize and decode events, then write report.json (per type and field: resolution as "
        "sigma68 and std, codebook utilisation and perplexity per stage) and one PNG per type "
        "(original vs reconstructed histograms and residuals); constituents and hits also on "
        "their parent-relative fields (pt_rel, eta_rel, phi_rel).",
    )
    p.add_argument("--tokenizer", required=True, help="directory of a saved EventTokenizer")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH")
    p.add_argument("--events", type=positive_int, default=20_000, help="events used (default %(default)s)")
    p.add_argument("--out", required=True, help="directory of the report")
    add_overwrite(p)
    p.set_defaults(func=_report)
