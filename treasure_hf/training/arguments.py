"""Command-line arguments of ``treasure pretrain`` / ``scripts/pretrain.py`` and ``treasure
finetune`` / ``scripts/finetune.py`` (one definition for both entry points)."""

from __future__ import annotations

import argparse

from ..commands.options import add_overwrite, fraction, nonnegative_float, nonnegative_int, positive_float, positive_int


def _model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (a new one; ignored with --model)")
    g.add_argument("--hidden-size", type=positive_int, default=128)
    g.add_argument("--layers", type=positive_int, default=4, help="transformer layers")
    g.add_argument("--heads", type=positive_int, default=4, help="attention heads")
    g.add_argument("--intermediate-size", type=positive_int, help="MLP width (default 4 x hidden size)")
    g.add_argument("--dropout", type=fraction, default=0.1)
    g.add_argument("--pair-features", choices=("none", "kinematic"), default="none",
                   help="ParT-style attention bias from each pair of objects' kinematics, decoded from the tokens")
    g.add_argument("--combinations", type=nonnegative_int, default=0, metavar="K",
                   help="learned four-vector combinations (plus type sums) in the pooler (0: none)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="tokenized data set (treasure tokenize) or its hub repo id")
    p.add_argument("--tokenizer", help="EventTokenizer directory (default: DATA/tokenizer)")
    p.add_argument("--out", required=True, help="output directory: the model, its tokenizer and checkpoints")
    p.add_argument("--batch-size", type=positive_int, default=64, help="events per device and step")
    p.add_argument("--lr", type=positive_float, default=5e-4)
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.01)
    p.add_argument("--warmup-steps", type=nonnegative_int, default=0)
    p.add_argument("--max-steps", type=positive_int, default=1000, help="optimizer steps")
    p.add_argument("--gradient-accumulation-steps", type=positive_int, default=1)
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    p.add_argument("--max-length", type=positive_int, help="cut longer events to this many tokens")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--report-to", default="auto",
                   help="tensorboard, trackio, none, or auto (whichever is installed; default %(default)s)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is available")
    p.add_argument("--num-workers", type=nonnegative_int, default=0, help="data loader worker processes")
    add_overwrite(p)
    _model_arguments(p)


def add_pretrain_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _common(p)
    p.add_argument("--model", help="continue from a saved masked-modeling model instead of a new one")
    p.add_argument("--mask-rate", type=fraction, default=0.15, help="fraction of objects selected (default %(default)s)")
    p.add_argument("--mask-fraction", type=fraction, default=0.8, help="selected objects set to [MASK]")
    p.add_argument("--random-fraction", type=fraction, default=0.1, help="selected objects set to random ids")
    p.add_argument("--save-steps", type=nonnegative_int, default=500, help="write a checkpoint (safetensors + JSON) every N steps")
    p.add_argument("--save-total-limit", type=nonnegative_int, default=2, help="checkpoints kept (0: all)")
    p.add_argument("--logging-steps", type=positive_int, default=50)
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT/checkpoints")
    p.add_argument("--stop-at-step", type=positive_int,
                   help="stop (after a checkpoint) at this step although --max-steps is larger: for jobs with a "
                        "time limit, continued later with --resume")
    p.add_argument("--split", default="train", help="split to train on (default %(default)s)")
    return p


def add_finetune_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _common(p)
    p.add_argument("--model", help="pretrained encoder to start from (a saved model directory or hub id)")
    p.add_argument("--eval-steps", type=positive_int, default=100, help="evaluate and checkpoint every N steps")
    p.add_argument("--logging-steps", type=positive_int, default=50)
    p.add_argument("--early-stopping-patience", type=nonnegative_int, default=3,
                   help="evaluations without a better validation ROC AUC before stopping (0: never stop)")
    p.add_argument("--metric", default="roc_auc", choices=("roc_auc", "accuracy", "loss"),
                   help="validation metric that picks the best model")
    p.add_argument("--train-split", default="train")
    p.add_argument("--eval-split", default="validation")
    p.add_argument("--test-split", default="test", help="split of the reported test metrics ('' for none)")
    p.add_argument("--save-total-limit", type=nonnegative_int, default=2)
    return p
