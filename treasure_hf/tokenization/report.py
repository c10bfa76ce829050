"""Fidelity report of a tokenizer: decoded against original objects.

For each type and field: the resolution of decoded against original (relative for pT and other
``log`` fields: (x_rec - x)/x; absolute for eta, phi and the rest), as ``sigma68`` (half width of
the central 68% interval, robust to tails) and the standard deviation; codebook utilisation and
perplexity per stage; and histograms of original against reconstructed values (PNG).

Sub-object types with a quantizer (jet constituents, track hits) are reported like the others, on
their absolute fields (pT, eta, phi ... put back on the decoded parent) and on the fields taken
relative to the parent (``pt_rel`` = pT / pT(jet), ``eta_rel``, ``phi_rel``), which isolate the
sub-object quantizer's own resolution.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data import schema
from ..data.atomic import write_json
from ..data.events import EventBatch
from ..data.io import open_events
from ..data.outputs import output_directory
from ..metrics import sigma68
from .features import RELATIVE, field_names, field_spec, relative_field, to_relative, wrap_angle
from .tokenization_event import EventTokenizer

logger = logging.getLogger(__name__)


def residuals(f: schema.Field, original: np.ndarray, decoded: np.ndarray, wrap: bool = False) -> tuple[np.ndarray, str]:
    """Decoded minus original: relative for ``log`` fields (pT), wrapped for angles (and with
    ``wrap``, for relative azimuths), else absolute."""
    o, r = original.astype(np.float64), decoded.astype(np.float64)
    if f.transform == "log":
        return (r - o) / np.where(o != 0, o, 1.0), "relative"
    if f.transform == "angle" or wrap:
        return wrap_angle(r - o), "absolute"
    return r - o, "absolute"


def _spec(t: str, name: str) -> tuple[schema.Field, bool, str]:
    """Field, whether its residual wraps at pi, and its report label (``pt``, ``eta_rel`` ...)."""
    rel = relative_field(t, name)
    fname = name.split("/")[1]
    return field_spec(t, name), rel is not None and rel.relation == "angle", f"{fname}_rel" if rel else fname


def resolution(f: schema.Field, original: np.ndarray, decoded: np.ndarray, wrap: bool = False) -> dict[str, Any]:
    resid, kind = residuals(f, original, decoded, wrap)
    empty = len(resid) == 0
    return {
        "resolution": kind,
        "sigma68": sigma68(resid),
        "std": float("nan") if empty else float(resid.std()),
        "bias": float("nan") if empty else float(np.median(resid)),
        "unit": "" if kind == "relative" else f.unit,
    }


def matched_values(
    tokenizer: EventTokenizer, original: EventBatch, decoded: EventBatch
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``{type: {layer/field: (original, decoded)}}`` over the objects the tokenizer keeps (the
    first ``max_objects`` of each type, in the same order in both)."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for t, q in tokenizer.quantizers.items():
        event_level = schema.GROUPS[t].kind == "event"
        mask = None if event_level else original.mask(t)[:, : tokenizer.max_objects[t]]
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


def matched_sub_values(
    tokenizer: EventTokenizer, t: str, original: EventBatch, decoded: EventBatch
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (original, decoded)}`` over the sub-objects of type ``t`` the tokenizer keeps: the
    absolute common fields (``common/pt`` ...; decoded ones sit on the decoded parent) and the
    relative ones (``rel/pt`` ...; each on its own parent)."""
    parent = schema.GROUPS[t].parent
    dmask = decoded.mask(t)
    shape = dmask.shape
    omask = _pad_to(original.mask(t)[:, : shape[1], : shape[2]] & original.mask(parent)[:, : shape[1], None], shape)
    both = omask & dmask
    if not np.array_equal(omask, dmask):
        logger.warning("%s: %d decoded and original sub-objects differ in position", t, int((omask != dmask).sum()))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    absolute = {}
    for side, batch in (("o", original), ("d", decoded)):
        values = {
            f"common/{f.name}": _pad_to(batch[schema.key("common", t, f.name)][:, : shape[1], : shape[2]], shape)[both]
            for f in schema.fields("common", t)
        }
        parents = {
            name.split("/")[1]: np.broadcast_to(
                _pad_to(batch[schema.key("common", parent, name.split("/")[1])][:, : shape[1]], shape[:2])[..., None],
                shape,
            )[both]
            for name in field_names(t)
            if name.startswith(RELATIVE + "/")
        }
        absolute[side] = (values, to_relative(t, values, parents))
    for name in values:
        out[name] = (absolute["o"][0][name], absolute["d"][0][name])
    for name in field_names(t):
        if name.startswith(RELATIVE + "/"):
            out[name] = (absolute["o"][1][name], absolute["d"][1][name])
    return out


def _pad_to(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-pad the leading axes of ``a`` up to ``shape``."""
    return np.pad(a, [(0, s - d) for s, d in zip(shape, a.shape)] + [(0, 0)] * (a.ndim - len(shape)))


def code_usage(tokenizer: EventTokenizer, input_ids: np.ndarray) -> dict[str, dict[str, Any]]:
    """Utilisation (fraction of codes used) and perplexity of each stage of each type (sub-object
    types included: pass their ids flattened with the rest)."""
    out = {}
    ids = np.asarray(input_ids)
    for t, q in {**tokenizer.quantizers, **tokenizer.sub_quantizers}.items():
        stages = []
        for s in range(q.config.num_stages):
            r = tokenizer.id_range(t, s)
            codes = ids[(ids >= r.start) & (ids < r.stop)] - r.start
            hist = np.bincount(codes, minlength=q.config.codebook_size).astype(np.float64)
            p = hist / max(hist.sum(), 1)
            entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
            stages.append(
                {
                    "utilisation": float((hist > 0).mean()),
                    "perplexity": float(np.exp(entropy)),
                    "tokens": int(hist.sum()),
                }
            )
        out[t] = {
            "codebook_size": q.config.codebook_size,
            "method": q.config.method,
            "stages": stages,
            "utilisation": float(np.mean([s["utilisation"] for s in stages])),
            "perplexity": float(np.mean([s["perplexity"] for s in stages])),
        }
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
        f, wrap, fname = _spec(t, name)
        log_x = f.transform == "log" and len(o) and o.min() > 0
        lo, hi = np.percentile(o, [0.5, 99.5]) if len(o) else (0, 1)
        bins = np.geomspace(max(lo, 1e-3), max(hi, 1e-2), 50) if log_x else np.linspace(lo, hi + 1e-9, 50)
        ax = axes[0, i]
        ax.hist(o, bins=bins, histtype="step", label="original", color="k")
        ax.hist(r, bins=bins, histtype="step", label="decoded", color="C1")
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(f"{fname} [{f.unit}]" if f.unit else fname)
        ax.legend(fontsize=7)
        res = fields[fname]
        resid, _ = residuals(f, o, r, wrap)
        s = res["sigma68"]
        ax = axes[1, i]
        ax.hist(resid, bins=np.linspace(-5 * s - 1e-9, 5 * s + 1e-9, 60) if s > 0 else 30, color="C0")
        label = f"({fname}_rec - {fname})/{fname}" if res["resolution"] == "relative" else f"{fname} rec - orig"
        ax.set_xlabel(label, fontsize=8)
        ax.set_title(f"sigma68 = {s:.3g}", fontsize=8)
    fig.suptitle(f"{t}: original vs decoded")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tokenizer_report(
    tokenizer: EventTokenizer | str | os.PathLike,
    data: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    n_events: int = 20_000,
    batch: int = 4096,
    plots: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Tokenize and decode up to ``n_events`` events of ``data``; write ``report.json`` and one PNG
    per type to ``out_dir`` (swapped in whole); return the report."""
    inputs = [*data] + ([tokenizer] if isinstance(tokenizer, (str, os.PathLike)) else [])
    with output_directory(out_dir, "tokenizer-report", inputs=inputs, overwrite=overwrite) as tmp:
        report = _report(tokenizer, data, tmp, n_events=n_events, batch=batch, plots=plots)
    logger.info("tokenizer report written to %s", out_dir)
    return report


def _report(
    tokenizer: EventTokenizer | str | os.PathLike,
    data: Sequence[str | os.PathLike],
    out_dir: Path,
    *,
    n_events: int,
    batch: int,
    plots: bool,
) -> dict[str, Any]:
    if not isinstance(tokenizer, EventTokenizer):
        tokenizer = EventTokenizer.from_pretrained(tokenizer)
    merged: dict[str, dict[str, tuple[list, list]]] = {}
    all_ids = []
    done = 0
    for path in data:
        source = open_events(path)
        try:
            for chunk in source.iter_batches(batch):
                chunk = chunk.slice(0, min(chunk.n_events, n_events - done))
                subs = [t for t in tokenizer.sub_quantizers if schema.key("common", t, schema.MASK) in chunk]
                enc = tokenizer(chunk, skip_types=schema.OBJECT_TYPES, return_sub_ids=bool(subs))
                ids = np.asarray(enc["input_ids"])
                all_ids.append(ids.reshape(-1))
                sub_ids = {t: np.asarray(enc[f"{schema.GROUPS[t].singular}_ids"]) for t in subs}
                decoded = tokenizer.decode_events(
                    ids, **{f"{schema.GROUPS[t].singular}_ids": v for t, v in sub_ids.items()}
                )
                matched = matched_values(tokenizer, chunk, decoded)
                for t in subs:
                    first = tokenizer.id_range(schema.GROUPS[t].parent, 0)
                    at_parent = (ids >= first.start) & (ids < first.stop)  # each sub-object once
                    all_ids.append(sub_ids[t][at_parent].reshape(-1))
                    matched[t] = matched_sub_values(tokenizer, t, chunk, decoded)
                for t, fields in matched.items():
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
        fields = {}
        for name, (o, r) in values.items():
            f, wrap, label = _spec(t, name)
            fields[label] = resolution(f, o, r, wrap)
        report["types"][t] = {"n_objects": int(len(next(iter(values.values()))[0])), "fields": fields, **usage[t]}
        if plots:
            _plot(t, values, fields, out_dir / f"{t}.png")
    write_json(out_dir / "report.json", report, sort_keys=False)
    return report
