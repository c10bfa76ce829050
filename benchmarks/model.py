"""Event-transformer training speed: forward + backward events/s, peak memory and model FLOP
utilisation of each variant at two sizes, against the machine's own matmul peak measured in the
same run.

- ``peak``: FLOP/s of a large matrix multiply in the benchmark's dtype (float32 on CPU, the
  ceiling of this machine for these models; bf16 on a GPU, next to the datasheet's dense bf16
  peak of the GPU when it is in ``DATASHEET_BF16_TFLOPS``), measured at the start and again
  after each case, the best of all (``matmul_flops_here`` keeps each case's own, measured under
  the same load as the case: ``mfu_vs_matmul_here`` is the fairer ratio on a shared machine);
- each case (variant x size) runs in a fresh process: synthetic events of the contract's layout
  (``[CLS] [ctx] 2 leptons [SEP]s 6 jets 10 tracks MET``, 3 stages an object: ~64 tokens; 30
  constituents a jet and 30 hit slots a track, about half of the hits real, for the constituent
  variant), ``--steps`` timed steps of forward + backward of the classification model after a
  warm-up (median and best step reported: on a shared machine the best is the machine's own
  speed, the median what a user sees); the model FLOPs of one step are counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and attention, forward and backward),
  dropout on as in training; peak memory is the process's peak RSS on CPU
  (with the RSS before the model was built) and ``torch.cuda.max_memory_allocated`` on a GPU.

Prints one JSON document. Goal: MFU (model FLOP/s / peak) as high as these small, short-sequence
models allow; the fraction is reported, not asserted.
Usage: ``python benchmarks/model.py [--quick] [--device cuda --dtype bf16] [--batch-size N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

SIZES = {
    "small": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
    "large": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=8, intermediate_size=1024),
}
VARIANTS = {
    "tokens": dict(input_mode="tokens", variant="flat"),
    "flat_continuous": dict(input_mode="flat", variant="flat"),
    "per_type_continuous": dict(input_mode="per_type", variant="flat"),
    "hierarchical": dict(input_mode="tokens", variant="hierarchical"),
    "constituent": dict(input_mode="tokens", variant="constituent"),
}
DATASHEET_BF16_TFLOPS = {
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
}
"""Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s, by name fragment."""
LAYOUT = {"electrons": 2, "jets": 6, "tracks": 10}
STAGES, CODES, N_CONSTITUENTS, N_HITS = 3, 1024, 30, 30


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of an n x n matrix multiply (best of 5): the ceiling measured in this run."""
    n = 8192 if device.type == "cuda" else 2048
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(6):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def synthetic_batch(n: int, config, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Events of a fixed layout with random codes, features and sub-objects (see module docstring)."""
    from treasure_hf.data import schema

    g = torch.Generator().manual_seed(seed)
    n_ctx = config.num_context_tokens
    ids, types, obj = [1, n_ctx - 1], [0, schema.TOKEN_TYPE_IDS["event"]], [-1, -1]
    number, offset = 0, n_ctx
    for t in ("electrons", "muons", "jets", "tracks", "met"):
        for _ in range(LAYOUT.get(t, 1 if t == "met" else 0)):
            for s in range(STAGES):
                ids.append(offset + s * CODES)
                types.append(schema.TOKEN_TYPE_IDS[t])
                obj.append(number)
            number += 1
        offset += STAGES * CODES
        if t != "met":
            ids.append(2)
            types.append(0)
            obj.append(-1)
    length = len(ids)
    input_ids = torch.tensor(ids).repeat(n, 1)
    token_type_ids = torch.tensor(types).repeat(n, 1)
    object_index = torch.tensor(obj).repeat(n, 1)
    is_obj = object_index >= 0
    input_ids = torch.where(is_obj, input_ids + torch.randint(0, CODES, (n, length), generator=g), input_ids)
    features = torch.randn(n, length, config.feature_size, generator=g) * is_obj[..., None]
    kinematics = torch.rand(n, length, 6, generator=g) * 50 * is_obj[..., None]
    batch = {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": torch.ones_like(input_ids),
        "object_index": object_index,
        "features": features,
        "kinematics": kinematics,
        "labels": torch.randint(0, 2, (n,), generator=g),
    }
    if config.variant == "constituent":
        jets = token_type_ids == config.constituent_parent_type
        tracks = token_type_ids == config.hit_parent_type
        n_const = torch.randint(5, N_CONSTITUENTS + 1, (n, length, 1), generator=g)
        n_hits = torch.randint(8, 23, (n, length, 1), generator=g)
        batch["constituents"] = torch.randn(n, length, N_CONSTITUENTS, config.constituent_feature_size, generator=g)
        batch["constituents_mask"] = (torch.arange(N_CONSTITUENTS) < n_const) & jets[..., None]
        batch["hits"] = torch.randn(n, length, N_HITS, config.hit_feature_size, generator=g)
        batch["hits_mask"] = (torch.arange(N_HITS) < n_hits) & tracks[..., None]
    return {k: v.to(device) for k, v in batch.items()}


def flop_counter():
    """``FlopCounterMode`` that also counts attention on CPU (its fused CPU kernel, with a mask,
    has no formula in torch's table; the same formula as the GPU kernels is used)."""
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten
    extra = {
        aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *a, out_shape=None, **kw: fc.sdpa_flop_count(
            q, k, v
        ),
        aten._scaled_dot_product_flash_attention_for_cpu_backward: lambda g, q, k, v, *a, out_shape=None, **kw: (
            fc.sdpa_backward_flop_count(g, q, k, v)
        ),
    }
    return fc.FlopCounterMode(display=False, custom_mapping=extra)


def run_case(variant: str, size: str, batch_size: int, steps: int, device: torch.device, dtype: str) -> dict:
    """One case, in this process (the driver starts a fresh one for each)."""
    import treasure_hf  # noqa: F401
    from treasure_hf.modeling import EventTransformerConfig, EventTransformerForSequenceClassification

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    config = EventTransformerConfig(
        vocab_size=7 + 5 * STAGES * CODES, max_stages=STAGES, num_labels=2, **SIZES[size], **VARIANTS[variant]
    )
    model = EventTransformerForSequenceClassification(config).to(device).train()
    batch = synthetic_batch(batch_size, config, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with autocast:
            loss = model(**batch).loss
        loss.backward()

    step()  # warm-up
    counter = flop_counter()
    with counter:
        step()
    flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    out = {
        "variant": variant,
        "size": size,
        **SIZES[size],
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch_size": batch_size,
        "tokens_per_event": int(batch["input_ids"].shape[1]),
        "steps": steps,
        "step_s_median": t,
        "step_s_best": min(times),
        "events_per_s": batch_size / t,
        "events_per_s_best": batch_size / min(times),
        "model_flops_per_step": flops,
        "model_flops_per_s": flops / t,
        "model_flops_per_s_best": flops / min(times),
    }
    if device.type == "cuda":
        out["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["rss_before_model_mb"] = rss_before
    model = batch = None  # free them before the matmul peak (step() holds them in its closure)
    out["matmul_flops_here"] = matmul_peak(
        device, torch.bfloat16 if dtype == "bf16" and device.type == "cuda" else torch.float32
    )
    return out


def gpu_datasheet_peak(device: torch.device) -> tuple[str, float | None]:
    name = torch.cuda.get_device_name(device)
    for fragment, tflops in DATASHEET_BF16_TFLOPS.items():
        if fragment in name:
            return name, tflops * 1e12
    return name, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default=None, choices=("fp32", "bf16"), help="default: fp32 on CPU, bf16 on GPU")
    parser.add_argument("--batch-size", type=int, default=None, help="events a step (default 64 CPU, 512 GPU)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps a case (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="batch 16, 2 steps (a smoke run)")
    parser.add_argument("--case", nargs=2, metavar=("VARIANT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    batch = args.batch_size or (16 if args.quick else 512 if device.type == "cuda" else 64)
    steps = 2 if args.quick else args.steps
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(run_case(args.case[0], args.case[1], batch, steps, device, dtype)))
        return
    peak_dtype = torch.bfloat16 if dtype == "bf16" and device.type == "cuda" else torch.float32
    peak = matmul_peak(device, peak_dtype)
    report = {
        "benchmark": "model",
        "device": args.device,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "goal": "model FLOP/s as a fraction of the matmul peak measured in the same run",
        "matmul_peak_flops": peak,
        "matmul_peak_dtype": str(peak_dtype).removeprefix("torch."),
        "cases": [],
    }
    datasheet = None
    if device.type == "cuda":
        report["gpu"], datasheet = gpu_datasheet_peak(device)
        report["datasheet_bf16_peak_flops"] = datasheet
    for variant in args.variants:
        for size in args.sizes:
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--case",
                variant,
                size,
                "--device",
                args.device,
                "--dtype",
                dtype,
                "--batch-size",
                str(batch),
                "--steps",
                str(steps),
            ]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                report["cases"].append({"variant": variant, "size": size, "error": result.stderr[-2000:]})
                continue
            report["cases"].append(json.loads(result.stdout.strip().splitlines()[-1]))
    # A shared machine slows some measurements: the peak is the best matmul of the whole run.
    peak = max([peak] + [row["matmul_flops_here"] for row in report["cases"] if "matmul_flops_here" in row])
    report["matmul_peak_flops"] = peak
    for row in report["cases"]:
        if "error" in row:
            continue
        row["mfu_vs_measured_peak"] = row["model_flops_per_s"] / peak
        row["mfu_vs_measured_peak_best"] = row["model_flops_per_s_best"] / peak
        row["mfu_vs_matmul_here"] = row["model_flops_per_s_best"] / row["matmul_flops_here"]
        if datasheet:
            row["mfu_vs_datasheet_bf16"] = row["model_flops_per_s"] / datasheet
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
