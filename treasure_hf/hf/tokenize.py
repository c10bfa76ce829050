"""``treasure tokenize``: events -> a tokenized data set of Parquet shards with its card.

Each row is one event: ``input_ids`` and ``token_type_ids`` (unpadded lists, the
:class:`EventTokenizer` layout), ``length`` (tokens; the collator builds ``attention_mask``),
``labels`` (class of the event), ``process_id`` and ``weight`` (from ``truth/event`` when the
input has them, else -1 and 1), ``source`` (which input file) and ``event_index`` (position in
it). Events go to splits by a seeded hash of (input file, event index): deterministic, the same
for any chunking, and independent of the other events.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..data import schema
from ..data.io import open_events
from ..data.outputs import check_destination
from ..errors import InputError, positive
from ..progress import tqdm
from .export import (
    ParquetShardWriter,
    check_unique_inputs,
    describe_columns,
    describe_inputs,
    hf_schema,
    inputs_text,
    layers_of,
    write_inputs,
)

logger = logging.getLogger(__name__)

DEFAULT_SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}
TOKENIZER_SUBDIR = "tokenizer"
COLUMN_DOCS = {
    "input_ids": "token ids: [CLS] [ATLAS|CMS] e1 e2 [SEP] mu1 [SEP] j1 j2 [SEP] ... [SEP] MET, one per quantizer stage",
    "token_type_ids": ", ".join(
        f"{i} {'event context' if t == 'event' else t}"
        for t, i in schema.TOKEN_TYPE_IDS.items()
        if schema.GROUPS.get(t) is None or schema.GROUPS[t].kind != "sub"
    ),
    "length": "number of tokens (attention_mask = first `length` positions)",
    "labels": "class of the event (see Classes)",
    "process_id": "truth/event/process_id of the generator, -1 where unknown",
    "weight": "truth/event/weight, 1 where the input has none",
    "source": "input the event comes from (its path as given to treasure tokenize)",
    "event_index": "position of the event in its input file",
    "kinematics": "with --with-continuous: pT, eta, phi, E, mass, charge of each token's object (GeV, rad, e), "
    "length x 6 values",
    "features": "with --with-continuous: the standardised columns of each token's object, length x F values",
    "constituents": "with --with-sub-objects: the standardised constituents of each jet token's jet (eta, phi "
    "relative to the jet, pT / pT(jet)), length x N x F values, zero for other tokens",
    "constituents_mask": "with --with-sub-objects: which of the N constituent slots of each token hold one, length x N",
    "hits": "with --with-sub-objects: the standardised hits of each track token's track, length x N x F values",
    "hits_mask": "with --with-sub-objects: which of the N hit slots of each token hold one, length x N",
}


def parse_split(text: str | Mapping[str, float]) -> dict[str, float]:
    """``"train=0.8,validation=0.1,test=0.1"`` -> fractions adding up to 1."""
    if isinstance(text, Mapping):
        fractions = {str(k): float(v) for k, v in text.items()}
    else:
        fractions = {}
        for item in str(text).split(","):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"--split: {item!r} is not NAME=FRACTION")
            fractions[name.strip()] = float(value)
    if any(v < 0 for v in fractions.values()) or not np.isclose(sum(fractions.values()), 1.0, atol=1e-6):
        raise ValueError(f"split fractions must be >= 0 and add up to 1, got {fractions}")
    return fractions


def split_hash(source: int, event_index: np.ndarray, seed: int) -> np.ndarray:
    """Uniform numbers in [0, 1) from (seed, source, event index): splitmix64, vectorised."""
    with np.errstate(over="ignore"):
        x = (
            np.asarray(event_index, np.uint64)
            + np.uint64(source) * np.uint64(0x9E3779B97F4A7C15)
            + np.uint64(seed) * np.uint64(0xD1B54A32D192ED03)
        )
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_splits(u: np.ndarray, fractions: Mapping[str, float]) -> np.ndarray:
    """Split number of each event for uniform ``u``: the first name takes [0, f0), and so on."""
    edges = np.cumsum(list(fractions.values()))
    edges[-1] = 1.0
    return np.minimum(np.searchsorted(edges, u, side="right"), len(edges) - 1)


CONTINUOUS_COLUMNS = {"kinematics": len(schema.FLAT_KINEMATICS), "features": None}
"""Optional per-token columns of the original continuous values (``--with-continuous``), each a
flat list of ``length x width`` float32: ``kinematics`` (pT, eta, phi, E, mass, charge in GeV,
rad, e) and ``features`` (the standardised columns of each object, zero-padded to the widest
type: :meth:`EventTokenizer.feature_group_columns`)."""


SUB_OBJECT_COLUMNS = tuple(schema.SUB_OBJECT_TYPES)
"""Optional per-token columns of sub-objects (``--with-sub-objects``): for ``constituents`` (jet
tokens) and ``hits`` (track tokens), ``NAME`` holds ``length x N x F`` float32 (the standardised
columns of each token's parent's sub-objects, as ``return_constituents=True`` gives them) and
``NAME_mask`` ``length x N`` int8; ``N`` (the sub-object slots) may differ between rows."""


def tokenized_schema(continuous: bool = False, sub_objects: Sequence[str] = ()) -> pa.Schema:
    fields = [
        ("input_ids", pa.list_(pa.int32())),
        ("token_type_ids", pa.list_(pa.int8())),
        ("length", pa.int32()),
        ("labels", pa.int64()),
        ("process_id", pa.int32()),
        ("weight", pa.float32()),
        ("source", pa.int64()),
        ("event_index", pa.int64()),
    ]
    if continuous:
        fields += [(name, pa.list_(pa.float32())) for name in CONTINUOUS_COLUMNS]
    for name in sub_objects:
        fields += [(name, pa.list_(pa.float32())), (f"{name}_mask", pa.list_(pa.int8()))]
    return pa.schema(fields)


def sub_object_columns(tokenizer: Any) -> tuple[str, ...]:
    """The sub-object types whose parents are in ``tokenizer``'s sequence (jets: constituents,
    tracks: hits) and for which it has a fitted scaler."""
    return tuple(
        t
        for t in SUB_OBJECT_COLUMNS
        if schema.GROUPS[t].parent in tokenizer.object_types and t in tokenizer.sub_scalers
    )


def encoded_rows(
    batch: Any,
    enc: Mapping[str, Any],
    labels: np.ndarray,
    source: int,
    first_event: int,
    *,
    continuous: bool = False,
    sub_objects: Sequence[str] = (),
) -> pa.Table:
    """The rows of a tokenized data set for one tokenized batch of events: ``enc`` is the
    tokenizer's padded output (with ``return_features`` for ``continuous``, ``return_constituents``
    for ``sub_objects``), ``labels`` (n,) the class of each event, ``source`` the input's number;
    ``event_index`` counts from ``first_event``. A sub-object type the batch's events lack gets
    rows with no slots."""
    n = len(labels)
    attention = np.asarray(enc["attention_mask"], bool)
    length = attention.sum(1).astype(np.int32)
    offsets = pa.array(np.r_[0, np.cumsum(length)].astype(np.int32))

    def ragged(values: Any, dtype: Any, per_token: int = 1) -> pa.ListArray:
        flat = np.asarray(values)[attention].astype(dtype).reshape(-1)
        return pa.ListArray.from_arrays(pa.array((np.asarray(offsets) * per_token).astype(np.int32)), pa.array(flat))

    process = (
        batch["truth/event/process_id"].astype(np.int32)
        if "truth/event/process_id" in batch
        else np.full(n, -1, np.int32)
    )
    weight = batch["truth/event/weight"].astype(np.float32) if "truth/event/weight" in batch else np.ones(n, np.float32)
    columns = [
        ragged(enc["input_ids"], np.int32),
        ragged(enc["token_type_ids"], np.int8),
        pa.array(length),
        pa.array(np.asarray(labels, np.int64)),
        pa.array(process),
        pa.array(weight),
        pa.array(np.full(n, source, np.int64)),
        pa.array(np.arange(first_event, first_event + n, dtype=np.int64)),
    ]
    if continuous:
        columns += [ragged(enc[name], np.float32, np.asarray(enc[name]).shape[-1]) for name in CONTINUOUS_COLUMNS]
    for name in sub_objects:
        values = np.asarray(enc[name]) if name in enc else np.zeros((*attention.shape, 0, 0), np.float32)
        mask = np.asarray(enc[f"{name}_mask"]) if name in enc else np.zeros((*attention.shape, 0), bool)
        columns += [ragged(values, np.float32, int(np.prod(values.shape[2:]))), ragged(mask, np.int8, mask.shape[-1])]
    return pa.table(columns, schema=tokenized_schema(continuous, sub_objects))


def _features(
    label_names: Sequence[str], sources: Sequence[str], continuous: bool = False, sub_objects: Sequence[str] = ()
):
    import datasets

    feats = datasets.Features.from_arrow_schema(tokenized_schema(continuous, sub_objects))
    if label_names:
        feats["labels"] = datasets.ClassLabel(names=list(label_names))
    feats["source"] = datasets.ClassLabel(names=list(sources))
    return feats


def tokenize_to_dataset(
    tokenizer,
    data: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    split: str | Mapping[str, float] = DEFAULT_SPLIT,
    labels: Mapping[str, str] | None = None,
    seed: int = 0,
    step: int = 10_000,
    max_length: int | None = None,
    rows_per_shard: int = 250_000,
    skip_types: Sequence[str] = (),
    progress: bool = True,
    overwrite: bool = False,
    continuous: bool = False,
    sub_objects: bool = False,
) -> Path:
    """Tokenize events of ``data`` (PCDF directories or HDF5 files) into ``out``.

    ``tokenizer``: an :class:`EventTokenizer` or its directory (saved again under
    ``out/tokenizer``). ``labels``: input path -> class name (every input needs one); without it
    the class is ``truth/event/process_id`` (an error if an input lacks it). ``max_length``:
    truncate longer events, dropping their lowest-pT objects. ``continuous``: also the original
    kinematics and features of every token (:data:`CONTINUOUS_COLUMNS`), for models that read
    continuous inputs. ``sub_objects``: also the jets' constituents and the tracks' hits of every
    token (:data:`SUB_OBJECT_COLUMNS`), for the constituent/hit model. An existing ``out`` is replaced only
    if ``treasure tokenize`` wrote it, or with ``overwrite``. Each event's ``source`` is its input's
    path as given.
    """
    from ..tokenization import EventTokenizer
    from .cards import dataset_card

    tok_source = os.fspath(tokenizer) if isinstance(tokenizer, (str, os.PathLike)) else None
    positive("step", step)
    fractions = parse_split(split)
    names = list(fractions)
    paths = check_unique_inputs(data)
    tok_inputs = [tok_source] if tok_source and os.path.exists(tok_source) else []
    check_destination(out, "tokenize", inputs=[*paths, *tok_inputs], overwrite=overwrite)
    if tok_source is not None:
        tokenizer = EventTokenizer.from_pretrained(tok_source)
    if labels:
        missing = [p for p in paths if p not in labels]
        if missing:
            raise InputError(missing[0], None, "has no class: give --label PATH=CLASS for every input")
        label_names = list(dict.fromkeys(labels[p] for p in paths))
    else:  # fail before any work if an input cannot give its class
        label_names = []
        for p in paths:
            if "truth" not in layers_of(p):
                raise InputError(p, "truth/event/process_id", "is needed as the class without --label PATH=CLASS")
    sources = list(paths)  # the paths as given: unique, where basenames need not be
    subs = sub_object_columns(tokenizer) if sub_objects else ()
    if sub_objects and not subs:
        raise ValueError(
            "--with-sub-objects: the tokenizer has no jets or tracks with fitted constituent or hit "
            "scalers (train it on events carrying common/constituents/* or common/hits/*)"
        )
    features = _features(label_names, sources, continuous, subs)
    target = tokenized_schema(continuous, subs)
    rows = {s: 0 for s in names}
    described = describe_inputs(paths)
    with ParquetShardWriter(
        out,
        hf_schema(target, features),
        rows_per_shard=rows_per_shard,
        producer="tokenize",
        inputs=[*paths, *tok_inputs],
        overwrite=overwrite,
    ) as writer:
        write_inputs(writer.tmp, described)
        for s in names:
            writer.add_split(s)
        for src_id, path in enumerate(paths):
            source = open_events(path)
            try:
                bar = tqdm(total=source.n_events, unit="ev", desc=f"tokenize {Path(path).name}", disable=not progress)
                start = 0
                for batch in source.iter_batches(step):
                    n = batch.n_events
                    enc = tokenizer(
                        batch,
                        padding="longest",
                        truncation=max_length is not None,
                        max_length=max_length,
                        skip_types=skip_types,
                        return_features=continuous,
                        return_constituents=bool(subs),
                    )
                    if labels:
                        label = np.full(n, label_names.index(labels[path]), np.int64)
                    elif "truth/event/process_id" in batch:
                        label = batch["truth/event/process_id"].astype(np.int64)
                    else:
                        raise InputError(
                            path, "truth/event/process_id", "is needed as the class without --label PATH=CLASS"
                        )
                    event_index = np.arange(start, start + n, dtype=np.int64)
                    table = encoded_rows(
                        batch, enc, label, src_id, start, continuous=continuous, sub_objects=subs
                    ).cast(target)
                    which = assign_splits(split_hash(src_id, event_index, seed), fractions)
                    for k, s in enumerate(names):
                        sel = np.nonzero(which == k)[0]
                        if len(sel):
                            writer.write(s, table.take(pa.array(sel)))
                            rows[s] += len(sel)
                    start += n
                    bar.update(n)
                bar.close()
            finally:
                source.close()
        tokenizer.save_pretrained(writer.tmp / TOKENIZER_SUBDIR)

        def card(w: Any) -> str:
            return dataset_card(
                pretty_name=f"treasure-hf tokenized events: {', '.join(sources)}",
                description=(
                    "Collider events tokenized with a treasure-hf EventTokenizer, one row per event, split by "
                    f"a hash of (file, event index) with seed {seed}: "
                    + ", ".join(f"{s} {f:g}" for s, f in fractions.items())
                    + ". "
                    + inputs_text(described)
                ).strip(),
                splits=rows,
                columns=describe_columns(target, COLUMN_DOCS),
                sources=paths,
                dataset_info=w.dataset_info(),
                tokenizer=tok_source or f"{TOKENIZER_SUBDIR}/ (saved with the data)",
                label_names=label_names,
                repo_or_path=os.fspath(out),
                tags=["physics", "collider", "treasure-hf", "tokenized"],
                provenance={
                    "seed": seed,
                    "split": fractions,
                    "max_length": max_length,
                    "labels": dict(labels) if labels else "truth/event/process_id",
                    "inputs": described,
                },
            )

        return writer.close(card)
