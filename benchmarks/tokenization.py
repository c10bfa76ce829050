"""Nearest-code lookup speed against the machine's own sgemm peak, and end-to-end tokenizer speed.

- ``sgemm``: FLOP/s of a large float32 matrix multiply measured in this run (the bound);
- ``lookup``: our chunked matmul + argmin (:func:`treasure_hf.tokenization.lookup.nearest_code`)
  in vectors/s for K = 512 and 8192 codes of dimension 16, with the FLOP/s it reaches
  (2 K d per vector) as a fraction of sgemm; next to vector-quantize-pytorch's own lookup
  (``VectorQuantize.forward`` in eval mode) on the same vectors;
- ``tokenizer``: events/s of ``EventTokenizer.__call__`` (read batch -> input_ids) for a small RVQ
  tokenizer trained here on synthetic events.

Prints one JSON document. Goal: lookup >= 30% of the sgemm bound.
Usage: ``python benchmarks/tokenization.py [--quick] [--device cuda]`` (named so, not
``tokenize.py``, which would shadow the standard library's ``tokenize`` for every script here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


DEVICE = torch.device("cpu")


def best_of(fn, repeat: int = 3) -> float:
    def timed() -> float:
        t0 = time.perf_counter()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    timed()
    return min(timed() for _ in range(repeat))


def sgemm_flops(n: int = 2048) -> float:
    """float32 matrix-multiply speed (TF32 off: the lookup runs in full float32)."""
    if DEVICE.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        n = 8192
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    return 2 * n ** 3 / best_of(lambda: a @ b)


def lookup(n_vectors: int, codes: int, dim: int) -> dict:
    from vector_quantize_pytorch import VectorQuantize

    from treasure_hf.tokenization.lookup import nearest_code

    g = torch.Generator().manual_seed(0)
    x, book = torch.randn(n_vectors, dim, generator=g).to(DEVICE), torch.randn(codes, dim, generator=g).to(DEVICE)
    rows, cols = (65536, codes) if DEVICE.type == "cuda" else (1024, 1024)  # a GPU wants big blocks
    ours = best_of(lambda: nearest_code(x, book, rows=rows, cols=cols))
    vq = VectorQuantize(dim=dim, codebook_size=codes).to(DEVICE).eval()
    vq._codebook.embed.copy_(book[None])
    n_lib = min(n_vectors, 20_000)
    with torch.no_grad():
        lib = best_of(lambda: vq(x[None, :n_lib]), repeat=1)
        agree = float((vq(x[None, :n_lib])[1][0] == nearest_code(x[:n_lib], book, rows=rows, cols=cols)).float().mean())
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
        steps = 50 if quick else 300
        args = TokenizerTrainingArguments(method="rvq", codebook_size=1024, num_stages=3, steps=steps,
                                          batch_size=2048, checkpoint_every=0, max_objects_per_type=50_000,
                                          mixed_precision="bf16" if DEVICE.type == "cuda" else "no")
        t0 = time.perf_counter()
        tokenizer = train_tokenizer([path], Path(tmp) / "tok", args, progress=False)
        train_seconds = time.perf_counter() - t0
        log = json.loads((Path(tmp) / "tok" / "training_log.json").read_text())
        batch = read_events(path)
        seconds = best_of(lambda: tokenizer(batch, return_tensors="np"), repeat=2)
        tokens = int(tokenizer(batch, return_tensors="np")["attention_mask"].sum())
    return {"events": n_events, "events_per_s": n_events / seconds, "tokens_per_event": tokens / n_events,
            "method": "rvq", "codebook_size": 1024, "stages": 3, "training_device": DEVICE.type,
            "training_precision": args.mixed_precision, "training_steps_per_type": steps,
            "training_seconds_all_types": train_seconds,
            "final_eval": {t: v["final"] for t, v in log["types"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer vectors and events")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the lookup and the training run")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    n = 100_000 if args.quick else 1_000_000
    peak = sgemm_flops()
    report = {"benchmark": "tokenize", "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                                   "python": platform.python_version(), "torch": torch.__version__,
                                                   "device": torch.cuda.get_device_name() if DEVICE.type == "cuda"
                                                   else platform.processor() or "cpu"},
              "goal": "lookup >= 30% of the sgemm FLOP/s bound", "sgemm_flops": peak, "lookup": []}
    for codes in (512, 8192):
        row = lookup(n, codes, 16)
        row["fraction_of_sgemm"] = row["ours_flops"] / peak
        report["lookup"].append(row)
    report["tokenizer"] = tokenizer_speed(5_000 if args.quick else 50_000, args.quick)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
