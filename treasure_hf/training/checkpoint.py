"""Pretraining checkpoints in safetensors + JSON (no pickle), written and read under Accelerate.

``OUT/checkpoints/step-N/``:

- ``model.safetensors``: the unwrapped model's weights;
- ``optimizer.safetensors`` + ``optimizer.json``: the optimizer's tensors and its parameter groups
  and scalar state (:mod:`treasure_hf.checkpoint`);
- ``scheduler.json``: the learning-rate scheduler's ``state_dict``;
- ``scaler.json``: the fp16 gradient scaler's state (only with ``--mixed-precision fp16``);
- ``rng-P.safetensors`` + ``rng-P.json``: the random generators of process P (torch CPU/CUDA as
  uint8 tensors; python ``random`` and numpy as JSON);
- ``state.json``: where training stands: optimizer step, batches consumed, Accelerate's
  accumulation counter, number of processes;
- ``complete``: written last; the folder is built as ``.step-N.partial`` and renamed.

The main process writes everything except the per-process generators; all processes wait for it.
DeepSpeed and FSDP shard the optimizer across processes and are not supported here.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from ..checkpoint import load_optimizer, load_rng, read_json, save_optimizer, save_rng, write_json
from ..data.atomic import commit

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
COMPLETE = "complete"


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the complete checkpoints in ``OUT/checkpoints``, oldest first."""
    found = []
    for p in (Path(out) / CHECKPOINTS).glob("step-*"):
        m = re.fullmatch(r"step-(\d+)", p.name)
        if m and (p / COMPLETE).exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def _inner(obj: Any, attribute: str) -> Any:
    """The torch object inside Accelerate's wrapper (``AcceleratedOptimizer.optimizer``,
    ``AcceleratedScheduler.scheduler``)."""
    return getattr(obj, attribute, obj)


def _check_supported(accelerator: Any) -> None:
    kind = str(getattr(accelerator, "distributed_type", ""))
    if "DEEPSPEED" in kind or "FSDP" in kind:
        raise ValueError(
            f"pretraining checkpoints support single-device and data-parallel (DDP) runs, not {kind}: "
            "DeepSpeed and FSDP shard the optimizer state across processes"
        )


def save_checkpoint(
    accelerator: Any,
    out: Path,
    step: int,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    micro_batches: int,
    limit: int = 0,
) -> Path:
    """Write ``OUT/checkpoints/step-STEP`` (see the module docstring) and keep the newest ``limit``
    checkpoints (0: all). Every process must call it; returns the folder."""
    from safetensors.torch import save_model

    _check_supported(accelerator)
    final = Path(out) / CHECKPOINTS / f"step-{step}"
    tmp = final.with_name(f".{final.name}.partial")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_rng(tmp, f"rng-{accelerator.process_index}")
    if accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        save_optimizer(_inner(optimizer, "optimizer"), tmp)
        write_json(tmp / "scheduler.json", _inner(scheduler, "scheduler").state_dict(), "scheduler state")
        if getattr(accelerator, "scaler", None) is not None:
            write_json(tmp / "scaler.json", accelerator.scaler.state_dict(), "grad scaler state")
        write_json(
            tmp / "state.json",
            {
                "step": step,
                "micro_batches": micro_batches,
                "accumulation_counter": accelerator.step,
                "num_processes": accelerator.num_processes,
            },
        )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / COMPLETE).write_text(str(step))
        commit(tmp, final)
        if limit:
            for _, old in checkpoints(out)[:-limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Any, path: Path, *, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore what :func:`save_checkpoint` wrote into the prepared objects; returns ``state.json``."""
    from safetensors.torch import load_model

    _check_supported(accelerator)
    path = Path(path)
    state = read_json(path / "state.json")
    load_model(accelerator.unwrap_model(model), str(path / "model.safetensors"), strict=True)
    load_optimizer(_inner(optimizer, "optimizer"), path)
    _inner(scheduler, "scheduler").load_state_dict(read_json(path / "scheduler.json"))
    if getattr(accelerator, "scaler", None) is not None:
        if (path / "scaler.json").exists():
            accelerator.scaler.load_state_dict(read_json(path / "scaler.json"))
        else:
            logger.warning("%s holds no scaler.json (saved without fp16): the gradient scaler starts afresh", path)
    rng = f"rng-{accelerator.process_index}"
    if (path / f"{rng}.safetensors").exists():
        load_rng(path, rng)
    else:
        logger.warning(
            "%s holds no %s.safetensors (saved with %s processes): random generators not restored",
            path,
            rng,
            state.get("num_processes"),
        )
    if state.get("num_processes", accelerator.num_processes) != accelerator.num_processes:
        logger.warning(
            "%s was saved with %d processes, resumed with %d: the data order differs from an uninterrupted run",
            path,
            state["num_processes"],
            accelerator.num_processes,
        )
    accelerator.step = int(state.get("accumulation_counter", 0))
    return state
