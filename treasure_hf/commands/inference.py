"""``treasure predict`` and ``treasure export-onnx``: trained models applied to events."""

from __future__ import annotations

import argparse

from .options import add_overwrite, positive_int


def _predict(args: argparse.Namespace) -> int:
    from ..inference.predict import PredictArguments, predict

    outputs = predict(
        PredictArguments(
            model=args.model,
            inputs=args.inputs,
            out=args.out,
            tokenizer=args.tokenizer,
            format=args.format,
            batch_size=args.batch_size,
            step=args.step,
            device=args.device,
            dtype=args.dtype,
            experiment=args.experiment,
            overwrite=args.overwrite,
            progress=args.progress,
        )
    )
    for path in outputs:
        print(path)
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from ..inference.onnx_export import export_onnx

    print(
        export_onnx(
            args.model,
            args.out,
            tokenizer=args.tokenizer,
            overwrite=args.overwrite,
            opset=args.opset,
            check_events=args.check_events,
        )
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..inference.scores import FORMATS

    p = sub.add_parser(
        "predict",
        help="score every event of experiment or common-format files with a trained classifier",
        description="Apply a classifier saved by `treasure finetune` (a directory or hub repo) and its tokenizer to "
        "PHYSLITE or NanoAOD files (converted in memory, step by step), common HDF5 files or PCDF "
        "directories. One output per input in OUT (or OUT itself for one input with the format's "
        "extension): parquet, a table keyed by eventIndex and the run, luminosity block and event "
        "numbers where the source has them, with score_CLASS per class; root, the same as a friend "
        "tree 'scores'; h5, the events in the common format plus /scores/MODEL/CLASS; pcdf, the "
        "events plus a 'scores' table. Memory is flat in the number of events.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=".root files of the experiments, .h5 files or PCDF dirs")
    p.add_argument("--model", required=True, help="saved classifier (directory or hub repo id)")
    p.add_argument("--tokenizer", help="EventTokenizer (default: the one saved with the model)")
    p.add_argument("--out", required=True, help="output directory (or file, for one input)")
    p.add_argument("--format", choices=FORMATS, default="parquet", help="output format (default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="events per forward pass")
    p.add_argument("--step", type=positive_int, default=10_000, help="events read at once (memory only)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument(
        "--dtype",
        choices=("float32", "bf16"),
        default="float32",
        help="precision of the forward pass (bf16 autocast; default float32)",
    )
    p.add_argument("--experiment", choices=("atlas", "cms"), help="for .root inputs (default: told from the file)")
    add_overwrite(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser(
        "export-onnx",
        help="export a classifier and its tokenizer's quantizers to ONNX",
        description="Write OUT/model.onnx (input_ids, token_type_ids, attention_mask[, object_index, kinematics] -> "
        "logits, dynamic batch and sequence length) and one OUT/quantizer_TYPE.onnx per object type "
        "(the physical fields of each object -> its codes: the feature transforms, standardisation, "
        "encoder and nearest-code search), plus OUT/onnx_export.json describing every tensor and the "
        "token id offsets. The export is checked with onnxruntime on events generated from the "
        "tokenizer's own scales (logits within 1e-5, codes exactly). Needs the onnx extra.",
    )
    p.add_argument("--model", required=True, help="saved classifier (directory or hub repo id)")
    p.add_argument("--tokenizer", help="EventTokenizer (default: the one saved with the model)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--opset", type=positive_int, default=18, help="ONNX opset (default %(default)s)")
    p.add_argument(
        "--check-events",
        type=positive_int,
        default=64,
        help="events the onnxruntime parity check runs on (default %(default)s)",
    )
    add_overwrite(p)
    p.set_defaults(func=_export_onnx)
