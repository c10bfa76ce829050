"""Training state without pickle: tensors in safetensors, everything else in JSON.

Shared by the tokenizer trainer (:mod:`treasure_hf.tokenization.training`) and pretraining
(:mod:`treasure_hf.training.checkpoint`). An optimizer's ``state_dict()`` is split into its tensors
(``state.<param index>.<name>``, e.g. ``state.0.exp_avg``; safetensors) and the rest (``param_groups``
and any non-tensor per-parameter state; JSON). Random generators: torch CPU and CUDA states are
uint8 tensors (``torch``, ``cuda.<device>``), python ``random`` and numpy's global state JSON.
JSON floats round-trip exactly, so a resumed run repeats an uninterrupted one bit for bit.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import atomic

TENSOR_PREFIX = "state."


def to_json(value: Any, what: str) -> Any:
    """``value`` as plain JSON types (tuples become lists); a TypeError naming ``what`` otherwise."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.requires_grad:
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_json(v, f"{what}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): to_json(v, f"{what}.{k}") for k, v in value.items()}
    raise TypeError(f"{what}: a {type(value).__name__} cannot be stored as JSON in a checkpoint")


def _like(template: Any, value: Any) -> Any:
    """``value`` read back from JSON, with the tuples of ``template`` restored."""
    if isinstance(template, tuple) and isinstance(value, list):
        return tuple(_like(t, v) for t, v in zip(template, value)) if len(template) == len(value) else tuple(value)
    return value


def write_json(path: Path, obj: Any, what: str | None = None) -> None:
    """``obj`` to ``path`` as JSON (NaN and infinities as ``NaN``/``Infinity``, which python's json reads)."""
    atomic.write_json(path, to_json(obj, what or Path(path).name))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` as (tensors for safetensors, JSON-able rest)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for index, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{TENSOR_PREFIX}{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                other.setdefault(str(index), {})[name] = to_json(value, f"optimizer state {index}.{name}")
    groups = [to_json(g, f"optimizer param_groups[{i}]") for i, g in enumerate(sd["param_groups"])]
    return tensors, {"param_groups": groups, "state": other}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Inverse of :func:`optimizer_state`: load its two parts into ``optimizer`` (tensors are moved
    to the parameters' devices by ``load_state_dict``)."""
    state: dict[int | str, dict[str, Any]] = {}

    def key(index: str) -> int | str:
        return int(index) if index.lstrip("-").isdigit() else index

    for name, value in tensors.items():
        if not name.startswith(TENSOR_PREFIX):
            raise ValueError(f"optimizer tensor {name!r}: expected names {TENSOR_PREFIX}<param>.<state name>")
        index, field = name[len(TENSOR_PREFIX) :].split(".", 1)
        state.setdefault(key(index), {})[field] = value
    for index, fields in meta.get("state", {}).items():
        state.setdefault(key(index), {}).update(fields)
    current = optimizer.param_groups
    if len(meta["param_groups"]) != len(current):
        raise ValueError(
            f"the checkpoint has {len(meta['param_groups'])} optimizer parameter groups, the optimizer {len(current)}"
        )
    groups = [{k: _like(now.get(k), v) for k, v in saved.items()} for now, saved in zip(current, meta["param_groups"])]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_optimizer(optimizer: torch.optim.Optimizer, directory: Path, name: str = "optimizer") -> None:
    """``NAME.safetensors`` (tensors) and ``NAME.json`` (param groups, scalar state) in ``directory``."""
    from safetensors.torch import save_file

    tensors, meta = optimizer_state(optimizer)
    save_file(tensors, Path(directory) / f"{name}.safetensors")
    write_json(Path(directory) / f"{name}.json", meta)


def load_optimizer(optimizer: torch.optim.Optimizer, directory: Path, name: str = "optimizer") -> None:
    from safetensors.torch import load_file

    load_optimizer_state(
        optimizer, load_file(Path(directory) / f"{name}.safetensors"), read_json(Path(directory) / f"{name}.json")
    )


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The global generators of this process: torch CPU/CUDA states (uint8 tensors) and the
    python ``random`` and numpy states (JSON)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "python": {"version": version, "state": list(internal), "gauss_next": gauss},
        "numpy": {
            "kind": kind,
            "keys": np.asarray(keys).tolist(),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(tensors["torch"])
    cuda = sorted((int(k.split(".", 1)[1]), v) for k, v in tensors.items() if k.startswith("cuda."))
    if cuda and torch.cuda.is_available():
        n = torch.cuda.device_count()
        for i, s in cuda:
            if i < n:
                torch.cuda.set_rng_state(s, i)
    py = meta["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    n = meta["numpy"]
    cached = n["cached_gaussian"]
    np.random.set_state(
        (
            n["kind"],
            np.asarray(n["keys"], dtype=np.uint32),
            n["pos"],
            n["has_gauss"],
            0.0 if cached is None or (isinstance(cached, float) and math.isnan(cached)) else cached,
        )
    )


def save_rng(directory: Path, name: str = "rng") -> None:
    """``NAME.safetensors`` and ``NAME.json`` with this process's generator states."""
    from safetensors.torch import save_file

    tensors, meta = rng_state()
    save_file(tensors, Path(directory) / f"{name}.safetensors")
    write_json(Path(directory) / f"{name}.json", meta)


def load_rng(directory: Path, name: str = "rng") -> None:
    from safetensors.torch import load_file

    set_rng_state(load_file(Path(directory) / f"{name}.safetensors"), read_json(Path(directory) / f"{name}.json"))
