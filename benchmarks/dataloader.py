"""Data loading speed: tokenized Parquet -> padded tensors, against plain pyarrow.

Builds a tokenized data set (synthetic events, a small RVQ tokenizer trained here, ``treasure
tokenize``) unless ``--data`` names one, then measures in the same run, each over the whole
``train`` split:

- ``pyarrow``: ``pyarrow.parquet`` reading the ``input_ids`` and ``token_type_ids`` columns of the
  shards, batch by batch, to numpy (the limit: reading alone, no padding);
- ``datasets_rows``: stock ``load_dataset(DIR)`` + a shuffling ``torch.utils.data.DataLoader`` with
  :class:`EventPaddingCollator` over rows (what the ``Trainer`` and ``treasure pretrain`` do);
- ``datasets_arrow``: the same data set through :func:`treasure_hf.hf.batches.arrow_loader`, one
  Arrow table per batch into the collator's vectorised Arrow path, in order (as pyarrow reads);
- ``datasets_arrow_shuffled``: the same in a random order (what training uses; the rows are gathered
  with numpy index arithmetic on the flat values and offsets, no ``pyarrow.Table.take``);
- ``datasets_streaming``: ``load_dataset(DIR, streaming=True, columns=...)`` in Arrow format, ``.iter(batch_size)``
  tables into the collator (nothing cached: read from the Parquet shards as pyarrow does);
- ``datasets_streaming_shuffled``: the same stream through :func:`treasure_hf.hf.batches.stream_batches`
  with a block shuffle of ``--shuffle-buffer`` events;
- ``model_step``: events/s of one forward + backward of a small masked-modeling model on this
  machine (what a training step consumes; on a GPU the step is faster, see ``--device``).

Data sets are opened before the clock starts (the rates are throughputs); each case passes over
the split until a second has gone by, best of ``--repeats`` rounds (each round runs every case,
so that a shared machine's changing load falls on all of them alike). Goal: ``datasets_*`` >= 50% of
``pyarrow`` and well above ``model_step``. Prints one JSON document.
Usage: ``python benchmarks/dataloader.py [--events 50000] [--batch-size 256] [--data DIR] [--device cuda]
[--shuffle-buffer 10000]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

LOADERS = (
    "datasets_rows",
    "datasets_arrow",
    "datasets_arrow_shuffled",
    "datasets_streaming",
    "datasets_streaming_shuffled",
)


def build(root: Path, n_events: int) -> Path:
    from treasure_hf.data.pcdf import write_pcdf
    from treasure_hf.data.synthetic import random_events
    from treasure_hf.hf.tokenize import tokenize_to_dataset
    from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

    ev = random_events(
        n_events, 1, layers=("atlas", "truth"), multiplicity={"taus": 0.0, "photons": 0.0, "tracks": 0.0, "jets": 6.0}
    )
    pcdf = write_pcdf(root / "events.pcdf", ev, events_per_part=50_000)
    args = TokenizerTrainingArguments(
        method="rvq",
        codebook_size=64,
        objects_per_code=0,  # the stated codebook, whatever the data
        num_stages=3,
        latent_dim=8,
        hidden_size=16,
        num_hidden_layers=1,
        types=("electrons", "muons", "jets", "met"),
        steps=10,
        batch_size=256,
        checkpoint_every=0,
        log_every=1000,
        max_objects_per_type=20_000,
    )
    train_tokenizer([pcdf], root / "tok", args, progress=False)
    return tokenize_to_dataset(
        root / "tok", [pcdf], root / "data", split="train=0.9,test=0.1", step=20_000, progress=False
    )


def timed(fn, min_seconds: float = 1.0) -> tuple[float, int]:
    """Run ``fn`` (one pass over the split, returns events) until ``min_seconds`` have passed."""
    t0, n = time.perf_counter(), 0
    while True:
        n += fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed, n


def bench_pyarrow(data: Path, batch_size: int) -> int:
    import pyarrow.parquet as pq

    n = 0
    for path in sorted((data / "data").glob("train-*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=["input_ids", "token_type_ids"]):
            for name in ("input_ids", "token_type_ids"):
                col = batch.column(name)
                col.values.to_numpy(zero_copy_only=False)
                col.offsets.to_numpy()
            n += batch.num_rows
    return n


def bench_rows(ds, collate, batch_size: int) -> int:
    from torch.utils.data import DataLoader

    n = 0
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=collate):
        n += batch["input_ids"].shape[0]
    return n


def bench_arrow(ds, collate, batch_size: int, shuffle: bool) -> int:
    from treasure_hf.hf.batches import arrow_loader

    n = 0
    for batch in arrow_loader(ds, batch_size, collate, shuffle=shuffle):
        n += batch["input_ids"].shape[0]
    return n


def bench_streaming(stream, collate, batch_size: int) -> int:
    n = 0
    for table in stream.iter(batch_size):
        n += collate(table)["input_ids"].shape[0]
    return n


def bench_streaming_shuffled(stream, collate, batch_size: int, buffer: int) -> int:
    from treasure_hf.hf.batches import stream_batches

    n = 0
    for batch in stream_batches(stream, batch_size, collate, shuffle_buffer=buffer, seed=0):
        n += batch["input_ids"].shape[0]
    return n


def bench_model(data: Path, collate, batch_size: int, device: str, steps: int) -> float:
    import datasets
    import torch

    from treasure_hf.hf.collators import MaskedEventCollator
    from treasure_hf.modeling import (
        EventTransformerConfig,
        EventTransformerForMaskedEventModeling,
        config_kwargs_from_tokenizer,
    )
    from treasure_hf.tokenization import EventTokenizer

    tok = EventTokenizer.from_pretrained(data / "tokenizer")
    config = EventTransformerConfig(
        **config_kwargs_from_tokenizer(tok),
        hidden_size=256,
        num_hidden_layers=6,
        num_attention_heads=8,
        intermediate_size=1024,
        max_position_embeddings=tok.model_max_length,
    )
    model = EventTransformerForMaskedEventModeling(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    masker = MaskedEventCollator.from_config(config)
    ds = datasets.load_dataset(str(data), split="train").with_format("arrow")
    batch = masker.mask(collate(ds[:batch_size]))
    batch = {
        k: v.to(device)
        for k, v in batch.items()
        if k in ("input_ids", "token_type_ids", "attention_mask", "object_index", "labels")
    }

    def step():
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()

    step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--data", help="an existing tokenized data set (skips building one)")
    parser.add_argument("--device", default="cpu", help="device of the model step (default %(default)s)")
    parser.add_argument("--model-steps", type=int, default=5)
    parser.add_argument(
        "--shuffle-buffer",
        type=int,
        default=10_000,
        help="events in the streaming shuffle buffer (default %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each loader (default %(default)s)")
    args = parser.parse_args()
    import datasets

    from treasure_hf.hf.collators import EventPaddingCollator
    from treasure_hf.tokenization import EventTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("HF_DATASETS_CACHE", str(Path(tmp) / "cache"))
        datasets.config.HF_DATASETS_CACHE = Path(os.environ["HF_DATASETS_CACHE"])
        t0 = time.perf_counter()
        data = Path(args.data) if args.data else build(Path(tmp), args.events)
        build_s = time.perf_counter() - t0
        ranges = EventTokenizer.from_pretrained(data / "tokenizer").token_id_ranges()
        collate = EventPaddingCollator(ranges, keep=("labels",))
        ds = datasets.load_dataset(str(data), split="train").select_columns(["input_ids", "token_type_ids", "labels"])
        lengths = np.asarray(
            ds.with_format("arrow")["length"]
            if "length" in ds.column_names
            else datasets.load_dataset(str(data), split="train")["length"]
        )
        stream = datasets.load_dataset(
            str(data), split="train", streaming=True, columns=["input_ids", "token_type_ids", "labels"]
        ).with_format("arrow")
        cases = {
            "pyarrow": lambda: bench_pyarrow(data, args.batch_size),
            "datasets_rows": lambda: bench_rows(ds, collate, args.batch_size),
            "datasets_arrow": lambda: bench_arrow(ds, collate, args.batch_size, shuffle=False),
            "datasets_arrow_shuffled": lambda: bench_arrow(ds, collate, args.batch_size, shuffle=True),
            "datasets_streaming": lambda: bench_streaming(stream, collate, args.batch_size),
            "datasets_streaming_shuffled": lambda: bench_streaming_shuffled(
                stream, collate, args.batch_size, args.shuffle_buffer
            ),
        }
        runs: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
        for _ in range(args.repeats):  # rounds over all cases: a shared machine's load hits each alike
            for name, fn in cases.items():
                runs[name].append(timed(fn))
        results = {}
        for name, timings in runs.items():
            rate, (seconds, events) = max((r[1] / r[0], r) for r in timings)
            results[name] = {"events": events, "seconds": round(seconds, 3), "events_per_s": round(rate)}
        step_rate = bench_model(data, collate, args.batch_size, args.device, args.model_steps)
    base = results["pyarrow"]["events_per_s"]
    for name in LOADERS:
        results[name]["fraction_of_pyarrow"] = round(results[name]["events_per_s"] / base, 3)
        results[name]["times_model_step"] = round(results[name]["events_per_s"] / step_rate, 1)
    print(
        json.dumps(
            {
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(),
                    "model_device": args.device,
                },
                "data": {
                    "path": str(args.data or "built"),
                    "train_events": len(ds),
                    "mean_tokens": float(lengths.mean()),
                    "build_s": round(build_s, 1),
                },
                "batch_size": args.batch_size,
                "repeats": args.repeats,
                "loaders": results,
                "model_step": {
                    "events_per_s": round(step_rate),
                    "model": "6 layers, hidden 256, masked event modeling",
                },
                "goal": ">= 0.5 of pyarrow and well above the model step",
                "goal_met": {
                    k: results[k]["fraction_of_pyarrow"] >= 0.5 and results[k]["times_model_step"] > 2 for k in LOADERS
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
