"""Nearest-code lookup speed against the machine's own sgemm peak, and end-to-end tokenizer speed.

- ``sgemm``: FLOP/s of a large float32 matrix multiply measured in this run (the bound);
- ``lookup``: our chunked matmul + argmin (:func:`treasure_hf.tokenization.lookup.nearest_code`)
  in vectors/s for K = 512 and 8192 codes of dimension 16, with the FLOP/s it reaches
  (2 K d per vector) as a fraction of sgemm; next to vector-quantize-pytorch's own lookup
  (``VectorQuantize.forward`` in eval mode) on the same vectors;
- ``tokenizer``: events/s of ``EventTokenizer.__call__`` (read batch -> input_ids) for a small RVQ
  tokenizer trained here on synthetic events.

Prints one JSON document. Goal: lookup >= 30% of the sgemm bound.
Usage: ``python benchmarks/tokenize.py [--quick]``.
"""

from __future__ import annotations

import os
import sys

# This file's name shadows the standard library's `tokenize` (which linecache imports): take its
# folder off the import path before anything else is imported.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if p and os.path.abspath(p) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile
import time
from pathlib import Path

import torch


def best_of(fn, repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def sgemm_flops(n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / best_of(lambda: a @ b)


def lookup(n_vectors: int, codes: int, dim: int) -> dict:
    from vector_quantize_pytorch import VectorQuantize

    from treasure_hf.tokenization.lookup import nearest_code

    g = torch.Generator().manual_seed(0)
    x, book = torch.randn(n_vectors, dim, generator=g), torch.randn(codes, dim, generator=g)
    ours = best_of(lambda: nearest_code(x, book))
    vq = VectorQuantize(dim=dim, codebook_size=codes).eval()
    vq._codebook.embed.copy_(book[None])
    n_lib = min(n_vectors, 20_000)
    with torch.no_grad():
        lib = best_of(lambda: vq(x[None, :n_lib]), repeat=1)
        agree = float((vq(x[None, :n_lib])[1][0] == nearest_code(x[:n_lib], book)).float().mean())
    flops = 2 * codes * dim
    return {"codes": codes, "dim": dim, "vectors": n_vectors, "ours_vectors_per_s": n_vectors / ours,
            "ours_flops": n_vectors * flops / ours, "library_vectors_per_s": n_lib / lib,
            "speedup_vs_library": (n_vectors / ours) / (n_lib / lib), "same_codes_as_library": agree}


def tokenizer_speed(n_events: int, quick: bool) -> dict:
    from treasure_hf import read_events
    from treasure_hf.data.h5 import write_h5
    from treasure_hf.data.synthetic import random_events
    from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.h5"
        write_h5(path, random_events(n_events, 0).to_padded())
        args = TokenizerTrainingArguments(method="rvq", codebook_size=1024, num_stages=3, steps=50 if quick else 300,
                                          batch_size=2048, checkpoint_every=0, max_objects_per_type=50_000)
        tokenizer = train_tokenizer([path], Path(tmp) / "tok", args, progress=False)
        batch = read_events(path)
        seconds = best_of(lambda: tokenizer(batch, return_tensors="np"), repeat=2)
        tokens = int(tokenizer(batch, return_tensors="np")["attention_mask"].sum())
    return {"events": n_events, "events_per_s": n_events / seconds, "tokens_per_event": tokens / n_events,
            "method": "rvq", "codebook_size": 1024, "stages": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer vectors and events")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    peak = sgemm_flops()
    report = {"benchmark": "tokenize", "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                                   "python": platform.python_version(), "torch": torch.__version__},
              "goal": "lookup >= 30% of the sgemm FLOP/s bound", "sgemm_flops": peak, "lookup": []}
    for codes in (512, 8192):
        row = lookup(n, codes, 16)
        row["fraction_of_sgemm"] = row["ours_flops"] / peak
        report["lookup"].append(row)
    report["tokenizer"] = tokenizer_speed(5_000 if args.quick else 50_000, args.quick)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
