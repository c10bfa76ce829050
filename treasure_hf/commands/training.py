"""``treasure tokenize``, ``treasure export``, ``treasure pretrain``, ``treasure finetune`` and
``treasure push``."""

from __future__ import annotations

import argparse

from ..errors import ArgumentError
from .options import add_overwrite, nonnegative_int, positive_int


def _labels(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        path, sep, cls = item.rpartition("=")
        if not sep or not path or not cls:
            raise ArgumentError("--label", f"{item!r} is not PATH=CLASS")
        out[path] = cls
    return out


def _tokenize(args: argparse.Namespace) -> int:
    from ..hf.tokenize import tokenize_to_dataset

    labels = _labels(args.label)
    if labels:
        unknown = [p for p in labels if p not in args.data]
        if unknown:
            raise ArgumentError("--label", f"names {unknown[0]}, which is not among --data")
    out = tokenize_to_dataset(
        args.tokenizer,
        args.data,
        args.out,
        split=args.split,
        labels=labels,
        seed=args.seed,
        step=args.step,
        max_length=args.max_length,
        rows_per_shard=args.rows_per_shard,
        skip_types=tuple(t for t in (args.skip_types or "").split(",") if t),
        progress=args.progress,
        overwrite=args.overwrite,
        continuous=args.with_continuous,
        sub_objects=args.with_sub_objects,
    )
    print(out)
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..hf.export import export_events

    splits: dict[str, list[str]] = {"train": list(args.data)} if args.data else {}
    for item in args.split or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ArgumentError("--split", f"{item!r} is not NAME=PATH")
        splits.setdefault(name, []).append(path)
    if not splits:
        raise ArgumentError("--data", "give --data PATH... or --split NAME=PATH")
    types = tuple(t for t in args.types.split(",") if t) if args.types else None
    kwargs = {"types": types} if types else {}
    out = export_events(
        splits,
        args.out,
        sub_groups=tuple(s for s in (args.sub_objects or "").split(",") if s),
        step=args.step,
        rows_per_shard=args.rows_per_shard,
        progress=args.progress,
        overwrite=args.overwrite,
        **kwargs,
    )
    print(out)
    return 0


def _push(args: argparse.Namespace) -> int:
    from ..hf.hub import push_to_hub

    url = push_to_hub(
        args.path,
        args.repo_id,
        kind=args.kind,
        private=args.private or None,
        commit_message=args.message,
        endpoint=args.endpoint,
    )
    print(url)
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from ..training.arguments import PretrainArguments, from_namespace
    from ..training.pretrain import pretrain

    print(pretrain(from_namespace(PretrainArguments, args)).out)
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from ..training.arguments import FinetuneArguments, from_namespace
    from ..training.finetune import finetune

    print(finetune(from_namespace(FinetuneArguments, args)).out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenize",
        help="tokenize events into a data set of Parquet shards with its card",
        description="Tokenize common-format events (PCDF or HDF5) with a saved EventTokenizer and write "
        "Parquet shards data/SPLIT-*.parquet plus a README.md card to --out: stock "
        "datasets.load_dataset(OUT) reads it (streaming=True too). Columns: input_ids, token_type_ids, "
        "length, labels, process_id, weight, source, event_index.",
    )
    p.add_argument("--tokenizer", required=True, help="directory of a saved EventTokenizer")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="PCDF directories or HDF5 files")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--split",
        default="train=0.8,validation=0.1,test=0.1",
        help="NAME=FRACTION,...; events are assigned by a seeded hash of (file, event index)",
    )
    p.add_argument(
        "--label",
        action="append",
        metavar="PATH=CLASS",
        help="class of every event of an input (repeat per input); default: truth/event/process_id",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the split hash (default %(default)s)")
    p.add_argument("--max-length", type=positive_int, help="truncate longer events, lowest-pT objects first")
    p.add_argument("--skip-types", help="comma-separated object types to leave out")
    p.add_argument(
        "--step", type=positive_int, default=10_000, help="events tokenized at once (memory only; default %(default)s)"
    )
    p.add_argument("--rows-per-shard", type=positive_int, default=250_000)
    p.add_argument(
        "--with-continuous",
        action="store_true",
        help="also write each token's original kinematics and features (for treasure finetune --inputs continuous)",
    )
    p.add_argument(
        "--with-sub-objects",
        action="store_true",
        help="also write each jet token's constituents and each track token's hits (for treasure "
        "finetune --variant constituent)",
    )
    add_overwrite(p)
    p.set_defaults(func=_tokenize)

    p = sub.add_parser(
        "export",
        help="events as Parquet shards, one row per event, with a dataset card",
        description="Write PCDF directories or HDF5 files as Parquet shards data/SPLIT-*.parquet, one row per event "
        "with a list of objects per type (the rows of treasure_hf.load_pcdf), plus a README.md card: "
        "stock datasets.load_dataset(OUT) reads it without treasure_hf.",
    )
    p.add_argument("--data", nargs="+", metavar="PATH", help="inputs of the train split")
    p.add_argument("--split", action="append", metavar="NAME=PATH", help="an input of another split (repeatable)")
    p.add_argument("--out", required=True)
    p.add_argument("--types", help="comma-separated object types (default: all)")
    p.add_argument(
        "--sub-objects", help="comma-separated sub-object groups nested in their parents (constituents,hits)"
    )
    p.add_argument("--step", type=positive_int, default=10_000, help="events converted at once (memory only)")
    p.add_argument("--rows-per-shard", type=positive_int, default=250_000)
    add_overwrite(p)
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "push",
        help="push a tokenizer, model or tokenized data set to a hub, with its card",
        description="Upload a saved EventTokenizer, a trained model (with its tokenizer) or a tokenized data set "
        "to a Hugging Face hub in one commit, with a generated README.md card. "
        "The hub is HF_ENDPOINT (or --endpoint); the token comes from HF_TOKEN or `hf auth login`.",
    )
    p.add_argument("path", help="the saved folder")
    p.add_argument("--repo-id", required=True, help="NAMESPACE/NAME on the hub")
    p.add_argument("--kind", choices=("tokenizer", "model", "dataset"), help="default: recognised from the files")
    p.add_argument("--private", action="store_true")
    p.add_argument("--message", help="commit message")
    p.add_argument("--endpoint", help="hub URL (default: HF_ENDPOINT or huggingface.co)")
    p.set_defaults(func=_push)

    from ..training.arguments import add_finetune_arguments, add_pretrain_arguments

    p = sub.add_parser(
        "pretrain",
        help="masked-event-modeling pretraining with Accelerate",
        description="Pretrain an EventTransformerForMaskedEventModeling on a tokenized data set (treasure tokenize) "
        "with Accelerate: mixed precision, gradient accumulation, safetensors + JSON checkpoints every "
        "--save-steps and --resume from the latest. Under `accelerate launch` it runs on every "
        "process; scripts/pretrain.py is the same entry point.",
    )
    add_pretrain_arguments(p)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser(
        "finetune",
        help="fine-tune an event classifier with the transformers Trainer",
        description="Fine-tune EventTransformerForSequenceClassification (from scratch or from a pretrained "
        "encoder) on a tokenized data set with the Trainer: ROC AUC and accuracy on the validation "
        "split, early stopping, best model kept, test-set metrics in training_summary.json and the card.",
    )
    add_finetune_arguments(p)
    p.set_defaults(func=_finetune)
