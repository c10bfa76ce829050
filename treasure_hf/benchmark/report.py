"""The benchmark's report: ``results.json`` (one record per row, every figure readable without
parsing prose; the settings, seeds, choices and goals at the top level), ``report.md`` (the same
as Markdown tables) and the figures ``auc_vs_bits.png``, ``m4l_vs_bits.png`` (with their data,
``auc_vs_bits.json`` and ``m4l_vs_bits.json``), ``roc.png`` and ``label_efficiency.png``.

A row's record: ``name``, ``key``, ``method`` (``bdt``, ``continuous``, ``vq``, ``fsq``, ``rvq``,
``pq``), ``bits_per_object``, ``inputs`` (``continuous``, ``ids``, ``ids+decoded``, ``hybrid``),
``auc`` and ``auc_std`` over the seeds, ``auc_seeds``, ``validation_auc`` (what picked between
rows), ``rejection_at_50pct``, and ``paired_vs_bdt`` / ``paired_vs_best_continuous``: the
difference of AUCs with its 95% interval (:func:`treasure_hf.metrics.paired_bootstrap`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..data.atomic import atomic_output, write_json
from .plots import bits_curves, plot_bits, plot_label_efficiency, plot_roc

GOAL_IDS = 0.01
GOAL_DECODED = 0.005
GOAL_M4L = 0.05
GOAL_BITS = 32


def records(rows: Sequence[Any], y_test: np.ndarray, n_bootstrap: int) -> list[dict]:
    """One record per row, with its paired intervals against the BDT and against the continuous
    row with the best validation AUC."""
    by_key = {r.key: r for r in rows}
    continuous = [r for r in rows if r.method == "continuous"]
    best_cont = max(continuous, key=lambda r: r.val_auc) if continuous else None
    out = []
    for r in rows:
        scores = [s.test_scores for s in r.seeds]
        aucs = [metrics.roc_auc(y_test, x) for x in scores]
        rej = [metrics.rejection_at_efficiency(y_test, x, 0.5) for x in scores]
        rec = {
            "name": r.name,
            "key": r.key,
            "method": r.method,
            "bits_per_object": r.bits_per_object,
            "inputs": r.inputs,
            "auc": float(np.mean(aucs)),
            "auc_std": _std(aucs),
            "auc_seeds": aucs,
            "validation_auc": r.val_auc,
            "rejection_at_50pct": float(np.mean(rej)),
            "seeds": [s.info for s in r.seeds],
            **r.extra,
        }
        for name, ref in (("paired_vs_bdt", by_key.get("bdt")), ("paired_vs_best_continuous", best_cont)):
            if ref is not None and ref is not r:
                rec[name] = metrics.paired_bootstrap(
                    y_test, scores, [s.test_scores for s in ref.seeds], n_bootstrap=n_bootstrap, seed=len(out)
                )
        out.append(rec)
    return out


def _std(values: Sequence[float]) -> float:
    v = np.asarray(values, np.float64)
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def _best(recs: Sequence[dict], pick) -> dict | None:
    chosen = [r for r in recs if pick(r)]
    return max(chosen, key=lambda r: r["validation_auc"]) if chosen else None


def evaluate_goals(recs: Sequence[dict], m4l: Mapping[str, Any]) -> list[dict]:
    """The study's goals, each met only when its paired 95% interval says so, with the margin.
    Every "best" row is the one with the best validation AUC (never the test)."""
    goals = []
    bc = _best(recs, lambda r: r["method"] == "continuous")
    if bc and "paired_vs_bdt" in bc:
        pair = bc["paired_vs_bdt"]
        goals.append(
            {
                "goal": "the best continuous row not below the BDT",
                "row": bc["name"],
                **pair,
                "met": pair["high"] >= 0,
                "margin": pair["high"],
            }
        )
    for family, limit, bits in (("ids", GOAL_IDS, None), ("ids+decoded", GOAL_DECODED, GOAL_BITS)):
        best = _best(
            recs,
            lambda r: (
                r["inputs"] == family
                and r["key"].endswith(("_ids", "_decoded"))
                and (bits is None or (r["bits_per_object"] or 0) <= bits + 1e-6)
            ),
        )
        if best and "paired_vs_best_continuous" in best:
            pair = best["paired_vs_best_continuous"]
            where = f" at {bits} bits per object or fewer" if bits else ""
            goals.append(
                {
                    "goal": f"the best {family} row within {limit} AUC of the best continuous row{where}",
                    "row": best["name"],
                    **pair,
                    "met": pair["low"] >= -limit,
                    "margin": pair["low"] + limit,
                }
            )
    decoded = [d for d in m4l.get("decoded", []) if d["bits_per_object"] <= GOAL_BITS + 1e-6]
    if decoded:  # the budget whose validation width is closest to the validation original's
        orig_val = m4l["validation_original"]["sigma_core"]

        def distance(d: Mapping[str, Any]) -> float:
            finite = [v for v in d["validation_m4l_sigma_core_per_seed"] if np.isfinite(v)]
            return abs(np.mean(finite) / orig_val - 1) if finite and np.isfinite(orig_val) else np.inf

        d = min(decoded, key=distance)
        orig = m4l["original"]["sigma_core"]
        widths = np.asarray(d["m4l_sigma_core_per_seed"]) / orig - 1
        goals.append(
            {
                "goal": f"m4l core width from decoded tokens within {GOAL_M4L:.0%} of the original at "
                f"{GOAL_BITS} bits per object or fewer",
                "row": d["key"],
                "relative_difference": float(np.mean(widths)),
                "per_seed": widths.tolist(),
                "met": bool(np.all(np.abs(widths) <= GOAL_M4L)),
                "sigma_original_gev": orig,
            }
        )
    ft = {r["labels"]: r for r in recs if r.get("mode") == "fine-tuned"}
    for n, r in sorted(ft.items()):
        if "paired_vs_bdt" in r:
            scratch = next((x for x in recs if x.get("mode") == "scratch" and x.get("labels") == n), None)
            if scratch:
                goals.append(
                    {
                        "goal": f"foundation against scratch at {n} labels (reported, the goal is issue 18's)",
                        "row": r["name"],
                        "fine_tuned": r["auc"],
                        "scratch": scratch["auc"],
                        "difference": r["auc"] - scratch["auc"],
                        "met": None,
                    }
                )
    return goals


def _interval(p: Mapping[str, float] | None) -> str:
    return "" if not p else f"{p['difference']:+.4f} [{p['low']:+.4f}, {p['high']:+.4f}]"


def markdown(report: Mapping[str, Any], recs: Sequence[dict], goals: Sequence[dict]) -> str:
    a, sel = report["arguments"], report["selected"]
    lines = [
        "# H -> ZZ* -> 4l: which event tokenization keeps the physics",
        "",
        f"Configuration `{report['configuration']}`. Training / validation events from the development "
        f"samples (seeds {report['development_seeds']}): {sel['train']} / {sel['validation']} selected. Test "
        f"events from samples generated apart (seeds {report['test_seeds']}) and used for nothing else: "
        f"{sel['test']} selected ({sel['test_signal']} signal, {sel['test_background']} background). AUC: mean "
        f"+- standard deviation over {a['seeds']} seeds (each seed trains the tokenizer, initialises the model "
        "and orders the batches); differences: paired bootstrap 95% intervals over seeds and test events "
        f"({a['bootstrap']} resamples). Every choice is made on the validation events.",
        "",
        "| row | inputs | bits/object | AUC | rejection @ 50% | vs BDT | vs best continuous |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        bits = "" if r["bits_per_object"] is None else f"{r['bits_per_object']:.1f}"
        rej = r["rejection_at_50pct"]
        lines.append(
            f"| {r['name']} | {r['inputs']} | {bits} | {r['auc']:.4f} +- {r['auc_std']:.4f} | "
            f"{'inf' if math.isinf(rej) else f'{rej:.1f}'} | {_interval(r.get('paired_vs_bdt'))} | "
            f"{_interval(r.get('paired_vs_best_continuous'))} |"
        )
    m4l = report["m4l_peak"]
    lines += [
        "",
        f"**m4l core width of the test signal** (original leptons: {m4l['original']['sigma_core']:.3f} GeV), "
        "from the same leptons decoded from the tokens (mean over seeds):",
        "",
        "| tokenization | bits/object | encoder | sigma core [GeV] | relative |",
        "|---|---|---|---|---|",
    ]
    for d in m4l["decoded"]:
        finite = [v for v in d["m4l_sigma_core_per_seed"] if np.isfinite(v)]
        w = float(np.mean(finite)) if finite else float("nan")
        lines.append(
            f"| {d['key']} | {d['bits_per_object']:.1f} | {d['encoder']} | {w:.3f} | "
            f"{w / m4l['original']['sigma_core'] - 1:+.1%} |"
        )
    lines += ["", "**Goals** (met only where the interval says so):", ""]
    for g in goals:
        state = {True: "met", False: "missed", None: "reported"}[g["met"]]
        detail = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in g.items() if k not in ("goal", "met")}
        lines.append(f"- {g['goal']}: **{state}** {json.dumps(detail, default=str)}")
    skipped = report.get("skipped_budgets") or []
    if skipped:
        lines += ["", "**Not run**: " + "; ".join(f"{s['method']} at {s['bits']} bits ({s['why']})" for s in skipped)]
    lines += [
        "",
        "**Choices on the validation events**: " + json.dumps(report["choices_on_validation"], default=str),
        "",
        "**Selection**: " + report["selection"] + ".",
        "",
        "**Cutflow**: " + json.dumps(report["cutflow"]),
        "",
        f"**Timings** [s]: {json.dumps(report['timings_seconds'])}; device {report['device']}, "
        f"{report['torch_threads']} torch threads.",
        "",
    ]
    if report.get("pretraining"):
        lines += [f"**Pretraining**: {json.dumps(report['pretraining'], default=str)}", ""]
    return "\n".join(lines)


def write_report(
    report: dict, rows: Sequence[Any], y_test: np.ndarray, m4l_original: np.ndarray, out: str | Path, n_bootstrap: int
) -> dict:
    """Write ``results.json``, ``report.md`` and the PNGs into ``out``; returns the JSON content."""
    out = Path(out)
    recs = records(rows, y_test, n_bootstrap)
    goals = evaluate_goals(recs, report["m4l_peak"])
    content = {**report, "rows": recs, "goals": goals}
    write_json(out / "results.json", _finite(content), sort_keys=False, default=_default, allow_nan=False)
    with atomic_output(out / "report.md") as tmp:
        tmp.write_text(markdown(report, recs, goals))
    token = [r for r in recs if r["key"].endswith(("_ids", "_decoded"))]
    if token:
        curves = bits_curves(
            token,
            report["m4l_peak"],
            reference={r["name"]: r["auc"] for r in recs if r["method"] in ("bdt", "continuous")},
        )
        for name in ("auc", "m4l"):
            write_json(out / f"{name}_vs_bits.json", _finite(curves[name]), sort_keys=False, default=_default)
        plot_bits(curves, out / "auc_vs_bits.png", out / "m4l_vs_bits.png")
    by_key = {r.key: r for r in rows}
    named = [r for r in recs if r["method"] in ("bdt", "continuous")]
    for family in ("ids", "ids+decoded"):
        best = _best(token, lambda r, f=family: r["inputs"] == f)
        if best:
            named.append(best)
    curves = {}
    for rec in named:
        fpr, tpr, _ = metrics.roc_curve(y_test, by_key[rec["key"]].seeds[0].test_scores)
        curves[rec["name"]] = (fpr, tpr, rec["auc"])
    if curves:
        plot_roc(curves, out / "roc.png")
    found = [r for r in recs if r.get("mode") in ("fine-tuned", "scratch")]
    if found:
        labels = sorted({r["labels"] for r in found})
        curves_le = {}
        for mode in ("fine-tuned", "scratch"):
            rs = {r["labels"]: r for r in found if r["mode"] == mode}
            curves_le[mode] = (np.array([rs[n]["auc"] for n in labels]), np.array([rs[n]["auc_std"] for n in labels]))
        plot_label_efficiency(labels, curves_le, out / "label_efficiency.png")
    return content


def _finite(x: Any) -> Any:
    """Infinite or NaN floats (a rejection with no background left) become null: strict JSON."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)) and not math.isfinite(float(x)):
        return None
    return x


def _default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
