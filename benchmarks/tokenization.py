"""Nearest-code lookup speed against the machine's own sgemm peak, and end-to-end tokenizer speed.

- ``sgemm``: FLOP/s of a large float32 matrix multiply (the bound), measured back to back with
  every lookup timing (each round times sgemm, then the lookups) so that a machine shared with
  other jobs loads both alike; the best of the rounds is kept for each;
- ``lookup``: :func:`treasure_hf.tokenization.lookup.nearest_code` in vectors/s for K = 512 and
  8192 codes of dimension 16, for the compiled CPU kernel and for the torch matmul path, with the
  FLOP/s they reach (2 K d per vector: one multiply-add per code component) as a fraction of
  sgemm; next to vector-quantize-pytorch's own lookup (``VectorQuantize.forward`` in eval mode) on
  the same vectors, and the share of vectors where each agrees with the float64 argmin; plus the
  kernel's first-call time with an empty numba cache (the JIT compile, in a fresh process) and
  with the cache this checkout already holds;
- ``tokenizer``: events/s of ``EventTokenizer.__call__`` (read batch -> input_ids) for a small RVQ
  tokenizer trained here on synthetic events, with the default lookup and with the matmul path.

Prints one JSON document. Goal: lookup >= 30% of the sgemm bound.
Usage: ``python benchmarks/tokenization.py [--quick] [--device cuda]`` (named so, not
``tokenize.py``, which would shadow the standard library's ``tokenize`` for every script here).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

DEVICE = torch.device("cpu")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def best_of(fn, repeat: int = 3) -> float:
    timed(fn)
    return min(timed(fn) for _ in range(repeat))


def sgemm(n: int = 2048):
    """A float32 matrix multiply of two n x n matrices and its FLOP count (TF32 off: the lookup runs
    in full float32)."""
    if DEVICE.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        n = 8192
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    return (lambda: a @ b), 2 * n**3


def reference(x: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
    """Argmin of the float64 squared distances sum_i (x_i - c_i)^2, without the matmul expansion."""
    x, book = x.double().cpu(), book.double().cpu()
    step = max(1, 2**22 // (book.shape[0] * book.shape[1]))
    return torch.cat([((part[:, None] - book[None]) ** 2).sum(-1).argmin(-1) for part in x.split(step)])


def cold_compile_seconds() -> float | None:
    """First-call time of the kernel in a fresh process with an empty numba cache (the JIT compile)."""
    code = (
        "import time, torch; from treasure_hf.tokenization.lookup import nearest_code, kernel_available; "
        "kernel_available(); x = torch.randn(100, 16); t = time.perf_counter(); "
        "nearest_code(x, torch.randn(64, 16), method='kernel'); print(time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "NUMBA_CACHE_DIR": cache}
        )
    return float(done.stdout.split()[-1]) if done.returncode == 0 else None


def lookup(n_vectors: int, codes: int, dim: int, rounds: int) -> dict:
    from vector_quantize_pytorch import VectorQuantize

    from treasure_hf.tokenization.lookup import kernel_available, nearest_code

    g = torch.Generator().manual_seed(0)
    x, book = torch.randn(n_vectors, dim, generator=g).to(DEVICE), torch.randn(codes, dim, generator=g).to(DEVICE)
    rows, cols = (65536, codes) if DEVICE.type == "cuda" else (1024, 1024)  # a GPU wants big blocks
    methods = {"matmul": functools.partial(nearest_code, rows=rows, cols=cols, method="matmul")}
    if DEVICE.type == "cpu" and kernel_available():
        methods["kernel"] = functools.partial(nearest_code, method="kernel")
    peak_run, peak_flops = sgemm()
    peak_run()
    for run in methods.values():
        run(x[:1000], book)
    best = {"sgemm": float("inf"), **{m: float("inf") for m in methods}}
    per_round = {m: [] for m in methods}
    for _ in range(rounds):  # back to back, so that the load of a shared machine hits both alike
        t_peak = timed(peak_run)
        best["sgemm"] = min(best["sgemm"], t_peak)
        for name, run in methods.items():
            t = timed(lambda: run(x, book))
            best[name] = min(best[name], t)
            per_round[name].append((n_vectors * 2 * codes * dim / t) / (peak_flops / t_peak))
    peak = peak_flops / best["sgemm"]
    row = {"codes": codes, "dim": dim, "vectors": n_vectors, "flops_per_vector": 2 * codes * dim, "sgemm_flops": peak}
    n_check = min(n_vectors, 5000)
    exact = reference(x[:n_check], book)
    for name in methods:
        flops = n_vectors * 2 * codes * dim / best[name]
        row[name] = {
            "vectors_per_s": n_vectors / best[name],
            "flops": flops,
            "fraction_of_sgemm": flops / peak,
            "fraction_of_sgemm_median_round": sorted(per_round[name])[len(per_round[name]) // 2],
            "same_codes_as_float64": float((methods[name](x[:n_check], book).cpu() == exact).float().mean()),
        }
    vq = VectorQuantize(dim=dim, codebook_size=codes).to(DEVICE).eval()
    vq._codebook.embed.copy_(book[None])
    n_lib = min(n_vectors, 20_000 if codes <= 1024 else 5_000)
    with torch.no_grad():
        lib = best_of(lambda: vq(x[None, :n_lib]), repeat=1)
        lib_codes = vq(x[None, :n_check])[1][0].cpu()
    ours = "kernel" if "kernel" in methods else "matmul"
    row["library"] = {"vectors_per_s": n_lib / lib, "same_codes_as_float64": float((lib_codes == exact).float().mean())}
    row["speedup_vs_library"] = row[ours]["vectors_per_s"] / row["library"]["vectors_per_s"]
    row["speedup_vs_matmul"] = row[ours]["vectors_per_s"] / row["matmul"]["vectors_per_s"]
    return row


def tokenizer_speed(n_events: int, quick: bool) -> dict:
    from treasure_hf import read_events
    from treasure_hf.data.h5 import write_h5
    from treasure_hf.data.synthetic import random_events
    from treasure_hf.tokenization.training import TokenizerTrainingArguments, train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.h5"
        write_h5(path, random_events(n_events, 0).to_padded())
        steps = 50 if quick else 300
        args = TokenizerTrainingArguments(
            method="rvq",
            codebook_size=1024,
            objects_per_code=0,  # the stated codebook, whatever the data
            num_stages=3,
            steps=steps,
            batch_size=2048,
            checkpoint_every=0,
            max_objects_per_type=50_000,
            mixed_precision="bf16" if DEVICE.type == "cuda" else "no",
        )
        t0 = time.perf_counter()
        tokenizer = train_tokenizer([path], Path(tmp) / "tok", args, progress=False)
        train_seconds = time.perf_counter() - t0
        log = json.loads((Path(tmp) / "tok" / "training_log.json").read_text())
        batch = read_events(path)
        seconds = best_of(lambda: tokenizer(batch, return_tensors="np"), repeat=2)
        ids = tokenizer(batch, return_tensors="np")
        tokens = int(ids["attention_mask"].sum())
        # the same with the matmul lookup path, for comparison (identical codes but for float32 near ties)
        from treasure_hf.tokenization import modeling_quantizer
        from treasure_hf.tokenization.lookup import nearest_code

        modeling_quantizer.nearest_code = functools.partial(nearest_code, method="matmul")
        try:
            matmul_seconds = best_of(lambda: tokenizer(batch, return_tensors="np"), repeat=2)
            same = float((tokenizer(batch, return_tensors="np")["input_ids"] == ids["input_ids"]).mean())
        finally:
            modeling_quantizer.nearest_code = nearest_code
    return {
        "events": n_events,
        "events_per_s": n_events / seconds,
        "tokens_per_event": tokens / n_events,
        "events_per_s_matmul_lookup": n_events / matmul_seconds,
        "same_ids_with_matmul_lookup": same,
        "method": "rvq",
        "codebook_size": 1024,
        "stages": 3,
        "training_device": DEVICE.type,
        "training_precision": args.mixed_precision,
        "training_steps_per_type": steps,
        "training_seconds_all_types": train_seconds,
        "final_eval": {t: v["final"] for t, v in log["types"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer vectors, rounds and events")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the lookup and the training run")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (sgemm + lookups back to back)")
    parser.add_argument("--skip-tokenizer", action="store_true", help="lookup only (no tokenizer training)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    rounds = args.rounds or (3 if args.quick else 7)
    scale = 1 if args.quick else 4
    report = {
        "benchmark": "tokenize",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1min": os.getloadavg()[0],
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else platform.processor() or "cpu",
        },
        "goal": "lookup >= 30% of the sgemm FLOP/s bound",
        "rounds": rounds,
        "lookup": [],
    }
    if DEVICE.type == "cpu":
        from treasure_hf.tokenization.lookup import kernel_available, nearest_code

        report["kernel_first_call_seconds"] = {"empty_numba_cache": cold_compile_seconds()}
        if kernel_available():
            t = time.perf_counter()
            nearest_code(torch.randn(100, 16), torch.randn(64, 16), method="kernel")
            report["kernel_first_call_seconds"]["this_checkout"] = time.perf_counter() - t  # cached after a run
    for codes, n in ((512, 100_000 * scale), (8192, 10_000 * scale)):
        report["lookup"].append(lookup(n if DEVICE.type == "cpu" else 100 * n, codes, 16, rounds))
    report["sgemm_flops"] = max(row["sgemm_flops"] for row in report["lookup"])
    if not args.skip_tokenizer:
        report["tokenizer"] = tokenizer_speed(5_000 if args.quick else 50_000, args.quick)
    report["machine"]["load_average_1min_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
