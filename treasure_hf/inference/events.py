"""Events streamed from any input a model is applied to, and the model inputs made from them.

An input is an experiment's ROOT file (PHYSLITE or NanoAOD, converted in memory step by step by
the converters of :mod:`treasure_hf.data.sources`) or a common HDF5 file or PCDF directory. Each
step yields padded events with their position in the input (``eventIndex``) and, where the source
has them, the run, luminosity block and event numbers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import schema
from ..data.events import EventBatch, Layout
from ..errors import positive

IDENTITY_FIELDS = ("run_number", "luminosity_block", "event_number")
"""Event-identity fields of the experiment layers (``atlas/event/...``, ``cms/event/...``) that
scores are keyed by, besides ``eventIndex``."""


@dataclass
class EventStream:
    """An opened input: its events in steps, with what a writer of the events needs."""

    path: str
    n_events: int
    metadata: dict[str, Any]
    layout: Layout
    steps: Iterator[tuple[int, EventBatch]]
    """``(first event, padded events)``, in order."""


def is_experiment_file(path: str | os.PathLike) -> bool:
    return Path(path).is_file() and Path(path).suffix == ".root"


@contextlib.contextmanager
def open_stream(
    path: str | os.PathLike, step: int, *, experiment: str | None = None, progress: bool = False
) -> Iterator[EventStream]:
    """Open ``path`` for reading ``step`` events at a time: a ROOT file of the experiments
    (``experiment`` ``atlas``/``cms``, told from the file when None) or a common-format file."""
    positive("step", step)
    if is_experiment_file(path):
        from ..data.sources.convert import converted_metadata, converter_class, experiment_of, stream_converted
        from ..data.sources.reader import RootSource

        cls = converter_class(experiment or experiment_of(path))
        with RootSource(path, cls.TREE_NAMES) as source:
            conv = cls(source)
            yield EventStream(
                os.fspath(path),
                source.n_events,
                converted_metadata(conv, path),
                conv.layout,
                stream_converted(source, conv, step, progress=progress),
            )
        return
    from tqdm.auto import tqdm

    from ..data.io import open_events

    source = open_events(path)
    try:
        first = source.read(0, 0)

        def steps() -> Iterator[tuple[int, EventBatch]]:
            with tqdm(total=source.n_events, unit="ev", desc=Path(path).name, disable=not progress) as bar:
                for lo, hi in source.ranges(step):
                    yield lo, source.read(lo, hi)
                    bar.update(hi - lo)

        layout = first.layout
        layout = Layout(
            layout.layers, layout.sub_groups, {**layout.max_objects, **source.metadata.get("max_objects", {})}
        )
        yield EventStream(os.fspath(path), source.n_events, dict(source.metadata), layout, steps())
    finally:
        source.close()


def identity(batch: EventBatch, first_event: int) -> dict[str, np.ndarray]:
    """``eventIndex`` and the run, luminosity block and event numbers the batch carries (int64)."""
    out = {schema.PCDF_EVENT_INDEX: np.arange(first_event, first_event + batch.n_events, dtype=np.int64)}
    for layer in batch.layers:
        for name in IDENTITY_FIELDS:
            k = schema.key(layer, "event", name)
            if k in batch and name not in out:
                out[name] = np.asarray(batch[k]).astype(np.int64)
    return out


def model_inputs(tokenizer: Any, config: Any, events: Any, max_length: int | None = None) -> dict[str, Any]:
    """The tensors a model made by ``treasure finetune`` reads for ``events`` (an
    :class:`EventBatch` or a mapping of ``layer/group/field`` arrays), collated exactly as in
    training (:func:`~treasure_hf.training.common.model_collator`): token ids, and what the model's
    ``input_kind`` adds (kinematics decoded from the ids, or the events' own continuous values)."""
    from ..errors import CompatibilityError
    from ..training.common import model_collator

    if getattr(config, "event_feature_size", 0):
        raise CompatibilityError(
            None,
            "event_features",
            f"the model also reads per-event values ({', '.join(config.event_feature_names)}) that the "
            "events do not carry: compute them as in its training and call the model on a data set with "
            "an event_features column",
        )
    limit = max_length or config.max_position_embeddings
    collate = model_collator(tokenizer, config, config.input_kind, max_length=limit, keep=())
    enc = tokenizer(
        events, padding="longest", truncation=True, max_length=limit, return_features=bool(collate.sequence_columns)
    )
    ids, types = np.asarray(enc["input_ids"]), np.asarray(enc["token_type_ids"])
    lengths = np.asarray(enc["attention_mask"], bool).sum(1)
    rows = [
        {
            "input_ids": ids[i, :n],
            "token_type_ids": types[i, :n],
            **{c: np.asarray(enc[c])[i, :n] for c in collate.sequence_columns},
        }
        for i, n in enumerate(lengths)
    ]
    return collate(rows)
