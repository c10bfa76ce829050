"""``treasure predict``: a trained event classifier and its tokenizer applied to experiment files
(PHYSLITE, NanoAOD) or common-format files, one score per class and event.

Events are read (and, for ROOT files, converted in memory) ``step`` at a time, tokenized, and
scored ``batch_size`` at a time: memory is flat in the number of events. The scores are those of
the model applied to ``read_events`` batches of the same file (:func:`score_events`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, positive
from .events import identity, model_inputs, open_stream
from .scores import FORMATS, ScoreWriter, output_path

logger = logging.getLogger(__name__)

DTYPES = ("float32", "bf16")


@dataclass
class PredictArguments:
    """What ``treasure predict`` takes (``scripts`` and the service build the same)."""

    model: str
    """A saved event classifier (directory or hub repo id)."""
    inputs: Sequence[str] = field(default_factory=list)
    """PHYSLITE or NanoAOD ``.root`` files, common HDF5 files or PCDF directories."""
    out: str = "scores"
    """Directory of the outputs (one per input), or with one input the output file itself."""
    tokenizer: str | None = None
    """The EventTokenizer (default: the one saved with the model)."""
    format: str = "parquet"
    batch_size: int = 256
    """Events per forward pass."""
    step: int = 10_000
    """Events read (and converted) at once."""
    device: str = "cpu"
    dtype: str = "float32"
    experiment: str | None = None
    """``atlas`` or ``cms`` for ROOT inputs (default: told from the file)."""
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ArgumentError("--format", f"must be one of {FORMATS}, not {self.format!r}")
        if self.dtype not in DTYPES:
            raise ArgumentError("--dtype", f"must be one of {DTYPES}, not {self.dtype!r}")
        positive("batch_size", self.batch_size)
        positive("step", self.step)
        if not self.inputs:
            raise ArgumentError("INPUT", "give at least one input file")


def load_classifier(
    model: str | os.PathLike, tokenizer: str | os.PathLike | None = None, device: str = "cpu"
) -> tuple[Any, Any]:
    """A saved event classifier (eval mode, on ``device``) and its tokenizer (saved with it, or
    ``tokenizer``), refusing a pair made for other token ids."""
    from ..modeling import EventTransformerForSequenceClassification
    from ..tokenization import EventTokenizer
    from ..training.common import check_compatible

    clf = EventTransformerForSequenceClassification.from_pretrained(os.fspath(model)).eval().to(device)
    tok = EventTokenizer.from_pretrained(os.fspath(tokenizer or model))
    check_compatible(clf, tok, os.fspath(model), os.fspath(tokenizer or model))
    return clf, tok


def event_logits(
    model: Any, tokenizer: Any, events: Any, *, batch_size: int = 256, dtype: str = "float32"
) -> np.ndarray:
    """(n_events, num_labels) logits of ``model`` for ``events`` (an EventBatch), ``batch_size``
    events per forward pass."""
    import torch

    out = []
    device = next(model.parameters()).device
    for lo in range(0, events.n_events, batch_size):
        inputs = model_inputs(tokenizer, model.config, events.slice(lo, min(lo + batch_size, events.n_events)))
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            out.append(model(**inputs).logits.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, int(model.config.num_labels)), np.float32)


def score_events(
    model: Any, tokenizer: Any, events: Any, *, batch_size: int = 256, dtype: str = "float32"
) -> np.ndarray:
    """(n_events, n_classes) class probabilities (softmax; sigmoid for one logit) of ``model``
    for ``events``: what ``treasure predict`` writes."""
    from ..metrics import class_scores

    logits = event_logits(model, tokenizer, events, batch_size=batch_size, dtype=dtype)
    return class_scores(logits) if len(logits) else np.zeros((0, max(2, logits.shape[1])))


def labels_of(model: Any) -> list[str]:
    """Class names of a classifier, in the order of its logits (``id2label``)."""
    id2label = model.config.id2label
    n = max(2, int(model.config.num_labels))
    return [str(id2label.get(i, id2label.get(str(i), i))) for i in range(n)]


def predict(args: PredictArguments | None = None, /, **kwargs: Any) -> list[Path]:
    """Score every event of every input; returns the outputs, one per input (see
    :mod:`.scores` for the formats). ``predict(PredictArguments(...))`` or ``predict(model=...,
    inputs=[...], out=...)``."""
    args = args or PredictArguments(**kwargs)
    model, tokenizer = load_classifier(args.model, args.tokenizer, args.device)
    labels = labels_of(model)
    name = Path(os.fspath(args.model).rstrip("/")).name
    inputs_used = [p for p in (args.model, args.tokenizer) if p and os.path.exists(p)]
    outputs = []
    for path in args.inputs:
        target = output_path(path, args.out, args.format, single=len(args.inputs) == 1)
        with open_stream(path, args.step, experiment=args.experiment, progress=args.progress) as stream:
            writer = ScoreWriter(target, args.format, stream, name, labels, [path, *inputs_used], args.overwrite)
            try:
                for first, batch in stream.steps:
                    scores = score_events(model, tokenizer, batch, batch_size=args.batch_size, dtype=args.dtype)
                    writer.write(batch, identity(batch, first), scores)
            except BaseException:
                writer.abort()
                raise
            outputs.append(writer.close())
        logger.info("%s: %d events scored -> %s", path, stream.n_events, target)
    return outputs
