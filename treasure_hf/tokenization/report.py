"""Fidelity report of a tokenizer: decoded against original objects.

For each type and field: the resolution of decoded against original (relative for pT and other
``log`` fields: (x_rec - x)/x; absolute for eta, phi and the rest), as ``sigma68`` (half width of
the central 68% interval, robust to tails) and the standard deviation; codebook utilisation and
perplexity per stage; and histograms of original against reconstructed values (PNG).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data import schema
from ..data.atomic import atomic_output
from ..data.events import EventBatch
from ..data.io import open_events
from .tokenization_event import EventTokenizer

logger = logging.getLogger(__name__)


def sigma68(x: np.ndarray) -> float:
    """Half the width of the central 68.27% interval: a Gaussian's sigma, robust to tails."""
    if len(x) == 0:
        return float("nan")
    lo, hi = np.percentile(x, [15.865, 84.135])
    return float(hi - lo) / 2


def _wrap(dphi: np.ndarray) -> np.ndarray:
    return (dphi + np.pi) % (2 * np.pi) - np.pi


def residuals(f: schema.Field, original: np.ndarray, decoded: np.ndarray) -> tuple[np.ndarray, str]:
    """Decoded minus original: relative for ``log`` fields (pT), wrapped for angles, else absolute."""
    o, r = original.astype(np.float64), decoded.astype(np.float64)
    if f.transform == "log":
        return (r - o) / np.where(o != 0, o, 1.0), "relative"
    if f.transform == "angle":
        return _wrap(r - o), "absolute"
    return r - o, "absolute"


def resolution(f: schema.Field, original: np.ndarray, decoded: np.ndarray) -> dict[str, Any]:
    resid, kind = residuals(f, original, decoded)
    empty = len(resid) == 0
    return {"resolution": kind, "sigma68": sigma68(resid), "std": float("nan") if empty else float(resid.std()),
            "bias": float("nan") if empty else float(np.median(resid)), "unit": "" if kind == "relative" else f.unit}


def matched_values(tokenizer: EventTokenizer, original: EventBatch, decoded: EventBatch
                   ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``{type: {layer/field: (original, decoded)}}`` over the objects the tokenizer keeps (the
    first ``max_objects`` of each type, in the same order in both)."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for t, q in tokenizer.quantizers.items():
        event_level = schema.GROUPS[t].kind == "event"
        mask = None if event_level else original.mask(t)[:, :tokenizer.max_objects[t]]
        out[t] = {}
        for name in q.config.fields:
            layer, fname = name.split("/")
            k = schema.key(layer, t, fname)
            if event_level:
                out[t][name] = (original[k], decoded[k])
            else:
                width = mask.shape[1]
                out[t][name] = (original[k][:, :width][mask], decoded[k][:, :width][mask])
    return out


def code_usage(tokenizer: EventTokenizer, input_ids: np.ndarray) -> dict[str, dict[str, Any]]:
    """Utilisation (fraction of codes used) and perplexity of each stage of each type."""
    out = {}
    ids = np.asarray(input_ids)
    for t, q in tokenizer.quantizers.items():
        stages = []
        for s in range(q.config.num_stages):
            r = tokenizer.id_range(t, s)
            codes = ids[(ids >= r.start) & (ids < r.stop)] - r.start
            hist = np.bincount(codes, minlength=q.config.codebook_size).astype(np.float64)
            p = hist / max(hist.sum(), 1)
            entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
            stages.append({"utilisation": float((hist > 0).mean()), "perplexity": float(np.exp(entropy)),
                           "tokens": int(hist.sum())})
        out[t] = {"codebook_size": q.config.codebook_size, "method": q.config.method, "stages": stages,
                  "utilisation": float(np.mean([s["utilisation"] for s in stages])),
                  "perplexity": float(np.mean([s["perplexity"] for s in stages]))}
    return out


def _plot(t: str, values: dict[str, tuple[np.ndarray, np.ndarray]], fields: dict[str, Any], path: Path) -> None:
    """Top row: original and decoded distributions; bottom row: the residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(values)
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 5.6), squeeze=False)
    for i, name in enumerate(names):
        o, r = values[name]
        layer, fname = name.split("/")
        f = schema.field_of(schema.key(layer, t, fname))
        log_x = f.transform == "log" and len(o) and o.min() > 0
        lo, hi = (np.percentile(o, [0.5, 99.5]) if len(o) else (0, 1))
        bins = np.geomspace(max(lo, 1e-3), max(hi, 1e-2), 50) if log_x else np.linspace(lo, hi + 1e-9, 50)
        ax = axes[0, i]
        ax.hist(o, bins=bins, histtype="step", label="original", color="k")
        ax.hist(r, bins=bins, histtype="step", label="decoded", color="C1")
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(f"{fname} [{f.unit}]" if f.unit else fname)
        ax.legend(fontsize=7)
        res = fields[fname]
        resid, _ = residuals(f, o, r)
        s = res["sigma68"]
        ax = axes[1, i]
        ax.hist(resid, bins=np.linspace(-5 * s - 1e-9, 5 * s + 1e-9, 60) if s > 0 else 30, color="C0")
        label = f"({fname}_rec - {fname})/{fname}" if res["resolution"] == "relative" else f"{fname}_rec - {fname}"
        ax.set_xlabel(label, fontsize=8)
        ax.set_title(f"sigma68 = {s:.3g}", fontsize=8)
    fig.suptitle(f"{t}: original vs decoded")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tokenizer_report(tokenizer: EventTokenizer | str | os.PathLike, data: Sequence[str | os.PathLike],
                     out_dir: str | os.PathLike, *, n_events: int = 20_000, batch: int = 4096,
                     plots: bool = True) -> dict[str, Any]:
    """Tokenize and decode up to ``n_events`` events of ``data``; write ``report.json`` and one PNG
    per type to ``out_dir``; return the report."""
    if not isinstance(tokenizer, EventTokenizer):
        tokenizer = EventTokenizer.from_pretrained(tokenizer)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged: dict[str, dict[str, tuple[list, list]]] = {}
    all_ids = []
    done = 0
    for path in data:
        source = open_events(path)
        try:
            for chunk in source.iter_batches(batch):
                chunk = chunk.slice(0, min(chunk.n_events, n_events - done))
                ids = np.asarray(tokenizer(chunk, skip_types=schema.OBJECT_TYPES)["input_ids"])
                all_ids.append(ids.reshape(-1))
                for t, fields in matched_values(tokenizer, chunk, tokenizer.decode_events(ids)).items():
                    for name, (o, r) in fields.items():
                        acc = merged.setdefault(t, {}).setdefault(name, ([], []))
                        acc[0].append(o)
                        acc[1].append(r)
                done += chunk.n_events
                if done >= n_events:
                    break
        finally:
            source.close()
        if done >= n_events:
            break
    report: dict[str, Any] = {"n_events": done, "types": {}}
    usage = code_usage(tokenizer, np.concatenate(all_ids) if all_ids else np.zeros(0, np.int64))
    for t, m in merged.items():
        values = {name: (np.concatenate(o), np.concatenate(r)) for name, (o, r) in m.items()}
        fields = {name.split("/")[1]: resolution(schema.field_of(schema.key(name.split("/")[0], t, name.split("/")[1])),
                                                 o, r) for name, (o, r) in values.items()}
        report["types"][t] = {"n_objects": int(len(next(iter(values.values()))[0])), "fields": fields, **usage[t]}
        if plots:
            _plot(t, values, fields, out_dir / f"{t}.png")
    with atomic_output(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    logger.info("tokenizer report written to %s", out_dir)
    return report
